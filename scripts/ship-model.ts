// Packages a finished run's final weights as the package's pretrained detector: models/<file>.pt
// (weights and calibration only, no optimizer state), models/manifest.json (sha256, config,
// metrics, the command that trained it) and the model card models/README.md.
//
//   npx tsx scripts/ship-model.ts --run runs/res-plus-s42 --preset res-plus --data ../shared/data/cifake-dev.zip \
//     --exclude-list ../shared/data/test-fake-duplicates.txt --command "npm run cifake -- train ..."
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { CifakeModel } from '../src/model';
import { PRETRAINED_DIR, PRETRAINED_MANIFEST, sha256File, type PretrainedManifest } from '../src/pretrained';
import type { EnsembleMeta } from '../src/train/ensemble';
import { evaluate } from '../src/train/evaluate';
import type { RunCalibration } from '../src/calibration/run';
import { isPresetName, type TrainConfig } from '../src/config';
import { readRunCalibration, readRunConfig, resolveCheckpoint } from '../src/run';
import { writeFileAtomic, writeJson } from '../src/util/json-file';

const FILE = 'cifake-detector.pt';

function weightsLine(epoch: number, config: TrainConfig): string {
  const es = config.earlyStopping;
  const pick = es?.restoreBest ? `its best by validation ${es.monitor === 'val_acc' ? 'accuracy' : 'loss'}` : 'its last epoch';
  const ema = config.ema !== null ? `, the moving average of the weights (decay ${config.ema})` : '';
  return `after epoch ${epoch} of the run (${pick})${ema}`;
}

function ensembleLine(e: NonNullable<PretrainedManifest['ensemble']>): string {
  const runs = e.members.map((m) => `\`${m.run}\` (seed ${m.seed}${m.testAccuracy === null ? '' : `, ${(m.testAccuracy * 100).toFixed(2)}% alone`})`);
  return `the mean logit of ${e.members.length} networks (\`cifake ensemble\`): ${runs.join(', ')}`;
}

function splitLine(m: PretrainedManifest, config: TrainConfig): string {
  if (!m.ensemble) return `10% stratified validation carved from it, seed ${config.seed}`;
  const seeds = m.ensemble.members.map((x) => x.seed).join(', ');
  return `10% stratified validation carved from it for each network, seeds ${seeds}; the ensemble calibrated on the ${m.ensemble.valImages ?? '?'} validation images every network held out`;
}

function card(m: PretrainedManifest, config: TrainConfig): string {
  const t = m.test as { accuracy: number; rocAuc: number; n: number; withoutDuplicates?: { accuracy: number; n: number }; tta?: { accuracy: number; rocAuc: number } };
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const cal = (m.test as { calibration?: { eceBefore: number; eceAfter: number; accuracyAt05: number; accuracyAtYouden: number } }).calibration;
  return `# The pretrained CIFAKE detector shipped with cifake-torch

| | |
|---|---|
| file | \`${m.file}\` (${(m.bytes / 1e6).toFixed(2)} MB, libtorch archive; weights + calibration, no optimizer state) |
| sha256 | \`${m.sha256}\` |
| preset | \`${m.preset}\` (ours, not the paper's) |
| parameters | ${m.parameters.toLocaleString('en-US')} |
| weights | ${m.ensemble ? ensembleLine(m.ensemble) : weightsLine(m.trainedEpochs, config)} |
| decision threshold | ${m.threshold !== undefined && m.threshold !== 0.5 ? `${m.threshold.toFixed(4)} on the tempered P(REAL): the Youden threshold chosen on validation, carried in the checkpoint's config (predict, eval, serve use it)` : '0.5'} |
| test accuracy at that threshold | **${pct(t.accuracy)}** on ${t.n.toLocaleString('en-US')} images; ${t.withoutDuplicates ? `${pct(t.withoutDuplicates.accuracy)} without the 197 test/FAKE duplicates of train files (n ${t.withoutDuplicates.n})` : ''} |
| test ROC-AUC | ${t.rocAuc.toFixed(4)} |
${t.tta ? `| with flip TTA (\`--tta\`) | ${pct(t.tta.accuracy)}, AUC ${t.tta.rocAuc.toFixed(4)} |\n` : ''}| temperature (fitted on validation) | ${m.calibration ? m.calibration.temperature.toFixed(4) : 'none'} |
| Youden threshold (validation) | ${m.calibration ? m.calibration.youdenThreshold.toFixed(4) : 'none'} |
${cal ? `| test ECE (15 bins) | ${cal.eceBefore.toFixed(4)} as trained, ${cal.eceAfter.toFixed(4)} with the temperature |\n| test accuracy at the Youden threshold | ${pct(cal.accuracyAtYouden)} (at 0.5: ${pct(cal.accuracyAt05)}) |\n` : ''}
${m.notes}

## Data

Trained from scratch on the official CIFAKE train split only (100,000 32x32 images: 50,000 REAL
from CIFAR-10, 50,000 FAKE generated with Stable Diffusion 1.4; ${splitLine(m, config)}). Test figures are on the half of the official test split the developers have
(5,000 REAL + 5,000 FAKE); the other half is held out. CIFAKE: J. J. Bird and A. Lotfi, "CIFAKE:
Image Classification and Explainable Identification of AI-Generated Synthetic Images", IEEE Access
12 (2024); the dataset is distributed under the MIT licence, its REAL images come from CIFAR-10
(Krizhevsky, 2009). Labels: FAKE = 0, REAL = 1; the model outputs one logit, P(REAL) =
sigmoid(logit / temperature).

## Reproduce

\`\`\`bash
${m.command}
npx tsx scripts/ship-model.ts --run runs/<that run> --preset ${m.preset}${m.threshold !== undefined && m.threshold !== 0.5 ? ' --threshold youden' : ''} --data <cifake.zip> --exclude-list test-fake-duplicates.txt --command "<the command above>"
\`\`\`

CI never trains these weights; a test checks the file against the sha256 above and, where the
real test half is present, its accuracy on 2,000 test images against this card.

## Config

\`\`\`json
${JSON.stringify(config, null, 2)}
\`\`\`

## Limits

32x32 inputs (larger images are resized, which changes what the model sees); trained on one
generator (Stable Diffusion 1.4) and one source of real photos (CIFAR-10): it is not a general
AI-image detector. See the README's robustness section for how it holds up on re-saved, blurred and
resized images.
`;
}

function ensembleOf(meta: Record<string, unknown>): PretrainedManifest['ensemble'] {
  const e = meta.ensemble as EnsembleMeta | undefined;
  if (!e) return undefined;
  return { members: e.members.map((x) => ({ run: path.basename(path.dirname(x.checkpoint)), seed: x.seed, testAccuracy: x.testAccuracy })), valImages: e.valImages };
}

async function main() {
  const { values } = parseArgs({
    options: { run: { type: 'string' }, preset: { type: 'string' }, threshold: { type: 'string', default: '0.5' }, data: { type: 'string' }, 'exclude-list': { type: 'string' }, command: { type: 'string' }, notes: { type: 'string', default: '' } },
  });
  if (!values.run || !values.preset || !values.data || !values.command)
    throw new Error('usage: ship-model.ts --run RUN --preset NAME --data ZIP --command "the training command" [--exclude-list FILE] [--notes TEXT]');
  if (!isPresetName(values.preset)) throw new Error(`--preset: unknown preset ${values.preset}`);
  if (values.threshold !== '0.5' && values.threshold !== 'youden') throw new Error('--threshold: 0.5 or youden (the threshold calibration chose on validation)');
  const checkpoint = resolveCheckpoint(values.run);
  const config = readRunConfig(values.run);
  fs.mkdirSync(PRETRAINED_DIR, { recursive: true });
  const out = path.join(PRETRAINED_DIR, FILE);
  const { model, meta } = await CifakeModel.load(checkpoint, { device: 'cpu', withOptimizer: false });
  const parameters = model.parameters;
  const calibration = (meta as { calibration?: PretrainedManifest['calibration'] }).calibration ?? null;
  const threshold = values.threshold === 'youden' ? calibration?.youdenThreshold : 0.5;
  try {
    if (threshold === undefined) throw new Error(`--threshold youden: ${checkpoint} has no calibration (run cifake calibrate first)`);
    const { format: _f, spec: _s, ...rest } = meta;
    // the operating threshold travels in the config, where Classifier, predict, eval, robustness and serve read it
    const config = values.threshold === 'youden' ? { ...(meta.config as Record<string, unknown>), threshold } : meta.config;
    await model.save(out, { ...rest, config, shippedFrom: path.basename(values.run) });
  } finally {
    model.dispose();
  }
  const clean = await evaluate(out, { data: values.data, excludeList: values['exclude-list'], device: 'cpu' });
  const tta = await evaluate(out, { data: values.data, device: 'cpu', tta: true });
  const runCalibration = readRunCalibration<RunCalibration>(values.run);
  const manifest: PretrainedManifest = {
    file: FILE,
    sha256: sha256File(out),
    bytes: fs.statSync(out).size,
    preset: values.preset,
    threshold,
    parameters,
    command: values.command,
    trainedEpochs: Number((meta as { epoch?: number }).epoch ?? 0),
    test: {
      n: clean.metrics.n,
      accuracy: clean.metrics.accuracy,
      rocAuc: clean.metrics.rocAuc,
      f1: clean.metrics.f1,
      withoutDuplicates: clean.withoutExcluded ? { n: clean.withoutExcluded.metrics.n, accuracy: clean.withoutExcluded.metrics.accuracy, rocAuc: clean.withoutExcluded.metrics.rocAuc } : undefined,
      tta: { accuracy: tta.metrics.accuracy, rocAuc: tta.metrics.rocAuc },
      calibration: runCalibration?.test
        ? { eceBefore: runCalibration.test.eceBefore, eceAfter: runCalibration.test.eceAfter, accuracyAt05: runCalibration.test.accuracyAt05, accuracyAtYouden: runCalibration.test.accuracyAtYouden }
        : undefined,
    },
    calibration: calibration ? { temperature: calibration.temperature, youdenThreshold: calibration.youdenThreshold } : null,
    notes: values.notes,
    ensemble: ensembleOf(meta),
  };
  writeJson(PRETRAINED_MANIFEST, manifest);
  writeFileAtomic(path.join(PRETRAINED_DIR, 'README.md'), card(manifest, config));
  console.log(JSON.stringify(manifest, null, 2));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

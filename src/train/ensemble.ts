/**
 * An ensemble run from trained runs: their networks in one model (spec `members: K`, tensors
 * `member1.` ... `memberK.`, logits averaged), so predict, eval, serve, export and Grad-CAM treat it
 * as any other model. Its validation is the images every member held out (the intersection of the
 * members' validation splits: no member trained on them), where the temperature and Youden
 * threshold are fitted; its scores are the mean of the members' stored logits.
 */
import fs from 'node:fs';
import path from 'node:path';

import { calibrateRun, type RunCalibration } from '../calibration/run';
import { validateConfig, type TrainConfig } from '../config';
import { computeMetrics, type MetricsReport } from '../metrics';
import { CifakeModel, type CheckpointMeta } from '../model';
import type { NativeModelSpec } from '../native';
import {
  createRunDir,
  isRunDir,
  readRunConfig,
  readRunDataSummary,
  readRunSummary,
  readScoresFile,
  RUN_FILES,
  resolveCheckpoint,
  writeRunConfig,
  writeRunDataSummary,
  writeRunSummary,
  writeScores,
  type RunSummary,
} from '../run';

export const MAX_MEMBERS = 8;

export interface EnsembleOptions {
  /** the run directory to create (an existing one is an error) */
  out: string;
  log?: (message: string) => void;
}

export interface EnsembleMember {
  checkpoint: string;
  seed: number;
  /** the member's own test accuracy (its metrics.json), when recorded */
  testAccuracy: number | null;
}

/** What an ensemble checkpoint's meta carries under `ensemble`. */
export interface EnsembleMeta {
  members: EnsembleMember[];
  /** validation images every member held out (null: no scores to intersect) */
  valImages: number | null;
  validation: string;
}

export interface EnsembleResult {
  runDir: string;
  checkpoint: string;
  members: EnsembleMember[];
  parameters: number;
  /** validation images every member held out */
  valImages: number;
  val: MetricsReport | null;
  test: MetricsReport | null;
  calibration: RunCalibration | null;
}

interface Member {
  target: string;
  checkpoint: string;
  meta: CheckpointMeta;
  config: TrainConfig;
  /** the member's run directory when its scores describe this checkpoint (the one the run ended with) */
  runDir: string | null;
  summary: RunSummary | null;
}

function readMember(target: string): Member {
  const checkpoint = resolveCheckpoint(target);
  const meta = CifakeModel.readMeta(checkpoint);
  if ((meta.spec.members ?? 1) > 1) throw new Error(`${checkpoint}: already an ensemble of ${meta.spec.members}; give its members instead`);
  const runDir = isRunDir(target) ? target : null;
  const saved = runDir ? readRunConfig(runDir) : (meta.config as Record<string, unknown> | undefined);
  if (!saved) throw new Error(`${checkpoint}: no training config in the checkpoint (give the run directory)`);
  return { target, checkpoint, meta, config: validateConfig(saved, { source: checkpoint }), runDir, summary: runDir ? readRunSummary(runDir) : null };
}

const specKey = ({ family: _f, ...spec }: NativeModelSpec) => JSON.stringify(spec, Object.keys(spec).sort());

/** One split's ensemble scores: the images every member scored, with the mean of their logits. */
function meanScores(members: Member[], split: 'val' | 'test'): { files: string[]; labels: number[]; logits: number[] } | null {
  const perMember: Map<string, { label: number; logit: number }>[] = [];
  for (const m of members) {
    if (!m.runDir) return null;
    const file = path.join(m.runDir, RUN_FILES.scores(split));
    if (!fs.existsSync(file)) return null;
    const s = readScoresFile(file);
    if (!s.logits || !s.files) throw new Error(`${file}: no per-image logits and file names to average`);
    perMember.push(new Map(s.files.map((f, i) => [f, { label: s.labels[i], logit: s.logits![i] }])));
  }
  const files: string[] = [], labels: number[] = [], logits: number[] = [];
  for (const [file, first] of perMember[0]) {
    const all = perMember.map((p) => p.get(file));
    if (all.some((e) => e === undefined)) continue;
    if (all.some((e) => e!.label !== first.label)) throw new Error(`${split} image ${file}: the members' scores disagree on its label`);
    files.push(file);
    labels.push(first.label);
    logits.push(all.reduce((a, e) => a + e!.logit, 0) / all.length);
  }
  return { files, labels, logits };
}

/**
 * Writes an ensemble of the trained runs (or checkpoints) `targets`, which must share one
 * architecture, as a new run directory; with run directories it also writes the ensemble's
 * scores, metrics.json and a calibration fitted on the validation images all members held out.
 */
export async function composeEnsemble(targets: string[], opts: EnsembleOptions): Promise<EnsembleResult> {
  const log = opts.log ?? (() => {});
  if (targets.length < 2 || targets.length > MAX_MEMBERS) throw new Error(`ensemble: expected 2 to ${MAX_MEMBERS} members, got ${targets.length}`);
  const members = targets.map(readMember);
  const first = members[0];
  for (const m of members.slice(1)) {
    if (specKey(m.meta.spec) !== specKey(first.meta.spec))
      throw new Error(`${m.checkpoint}: its architecture ${JSON.stringify(m.meta.spec)} differs from ${first.checkpoint}'s ${JSON.stringify(first.meta.spec)}`);
  }
  if (new Set(members.map((m) => path.resolve(m.checkpoint))).size !== members.length) throw new Error('ensemble: the same checkpoint is given twice');

  const val = meanScores(members, 'val');
  const test = meanScores(members, 'test');
  if (val && val.files.length === 0) throw new Error("ensemble: the members' validation splits share no image, so nothing is left to calibrate on (train them with the same --seed and validation fraction)");

  const state: Record<string, Float32Array> = {};
  for (const [k, m] of members.entries()) {
    const { model } = await CifakeModel.load(m.checkpoint, { device: 'cpu', threads: 1, withOptimizer: false });
    try {
      for (const [name, values] of Object.entries(await model.state())) state[`member${k + 1}.${name}`] = values;
    } finally {
      model.dispose();
    }
  }
  const spec: NativeModelSpec = { ...first.meta.spec, members: members.length };
  const config = validateConfig({ ...first.config, model: { ...first.config.model, members: members.length }, name: path.basename(opts.out), outDir: path.dirname(opts.out), initFrom: null });
  const memberInfo: EnsembleMember[] = members.map((m) => ({
    checkpoint: m.checkpoint,
    seed: m.config.seed,
    testAccuracy: m.summary?.metrics.test?.accuracy ?? null,
  }));

  const runDir = createRunDir(path.dirname(opts.out), path.basename(opts.out));
  const checkpoint = path.join(runDir, RUN_FILES.best);
  const model = CifakeModel.create(spec, { device: 'cpu', threads: 1 });
  let parameters: number;
  try {
    await model.setState(state);
    parameters = model.parameters;
    writeRunConfig(runDir, config);
    const ensemble: EnsembleMeta = { members: memberInfo, valImages: val?.files.length ?? null, validation: 'the images every member held out' };
    await model.save(checkpoint, { config, epoch: null, ensemble });
  } finally {
    model.dispose();
  }
  log(`${runDir}: ensemble of ${members.length} (${parameters} parameters)`);

  const data = first.runDir ? readRunDataSummary(first.runDir) : null;
  if (data) writeRunDataSummary(runDir, data);
  const written = { checkpoint: RUN_FILES.best, writtenBy: 'cifake ensemble (mean of the members\u2019 logits)' };
  if (val) writeScores(runDir, 'val', val, val.logits, written);
  if (test) writeScores(runDir, 'test', test, test.logits, written);
  const valMetrics = val ? computeMetrics(val.logits, val.labels, { fromLogits: true }) : null;
  const testMetrics = test ? computeMetrics(test.logits, test.labels, { fromLogits: true }) : null;
  if (valMetrics) {
    const summaries = members.map((m) => m.summary);
    writeRunSummary(runDir, {
      runDir,
      epochsRun: Math.max(...summaries.map((s) => s?.epochsRun ?? 0)),
      bestEpoch: Math.max(...summaries.map((s) => s?.bestEpoch ?? 0)),
      stopReason: 'completed',
      trainSeconds: summaries.reduce((a, s) => a + (s?.trainSeconds ?? 0), 0),
      device: summaries[0]?.device ?? 'cpu',
      parameters,
      worldSize: 1,
      metrics: { val: valMetrics, test: testMetrics },
    });
  }
  let calibration: RunCalibration | null = null;
  if (val) calibration = await calibrateRun(runDir);
  else log('no calibration: every member must be a run directory with its scores-val.json');
  return { runDir, checkpoint, members: memberInfo, parameters, valImages: val?.files.length ?? 0, val: valMetrics, test: testMetrics, calibration };
}

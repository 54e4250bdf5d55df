// cifake robustness: a model's metrics under JPEG re-saves, blurs, resizes, noise, ... (or a custom
// suite), on a split of a dataset or on a folder of images with one known label.
import fs from 'node:fs';
import path from 'node:path';

import { Command, InvalidArgumentError, Option } from 'commander';

import { robustness } from '../../src';
import { nonNegativeInt, positive, positiveInt, threadsArg, unit } from '../cli-helpers';

const { DEFAULT_SUITE, formatRobustnessTable, parsePerturbation, runRobustness } = robustness;

const specList = (v: string, prev: string[] | undefined) => {
  const specs = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of specs) {
    try {
      parsePerturbation(s);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  }
  return [...(prev ?? []), ...specs];
};

interface RobustnessFlags {
  model: string;
  data: string;
  split: string;
  label?: 'REAL' | 'FAKE';
  perturb?: string[];
  limit?: number;
  seed: number;
  threshold?: number;
  temperature?: number;
  resize?: boolean;
  cacheDir?: string;
  device?: string;
  threads?: number;
  out?: string;
  json?: boolean;
}

export function robustnessCommand(): Command {
  return new Command('robustness')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .description('evaluate a model under perturbations (JPEG re-saves, blur, resizes, noise, ...) of a split or of a folder of one label')
    .option('-m, --model <runOrCheckpoint>', 'run directory, checkpoint file, or pretrained (default: the weights shipped in the package)')
    .requiredOption('-d, --data <path>', 'CIFAKE zip or folder, or with --label a folder of images')
    .option('--split <name>', 'split to evaluate', 'test')
    .addOption(new Option('--label <class>', 'every image under --data has this label (out-of-distribution check: reports how many are called the other class)').choices(['REAL', 'FAKE']))
    .option('--perturb <specs>', `comma-separated perturbations, repeatable (default suite: ${DEFAULT_SUITE.join(', ')})`, specList)
    .option('--limit <n>', 'at most N images per class (seeded choice)', positiveInt('--limit'))
    .option('--seed <n>', 'seed of the random perturbations and of --limit', nonNegativeInt('--seed'), 0)
    .option('--threshold <x>', 'decision threshold on P(REAL) (default: the run\'s config, 0.5 unless trained otherwise)', unit('--threshold'))
    .option('--temperature <t>', 'logit temperature (default: the run\'s fitted one, else 1)', positive('--temperature'))
    .option('--resize', 'resize images that are not 32x32 (default with --label)')
    .option('--cache-dir <dir>', 'decoded-data cache (default ~/.cache/cifake-torch)')
    .option('--device <d>', 'cpu | cuda | cuda:N | auto')
    .option('--threads <n>', 'CPU threads', threadsArg)
    .option('--out <file>', 'also write the report as JSON to this file')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  cifake robustness --model runs/res-plus --data ~/cifake.zip --limit 1000\n  cifake robustness --model runs/res-plus --data ~/my-photos --label REAL --perturb jpeg:75')
    .action(async (o: RobustnessFlags) => {
      const r = await runRobustness(o.model, {
        data: o.data,
        split: o.split,
        label: o.label,
        suite: o.perturb,
        limit: o.limit,
        seed: o.seed,
        threshold: o.threshold,
        temperature: o.temperature,
        resize: o.resize,
        cacheDir: o.cacheDir,
        device: o.device,
        threads: o.threads,
        onRow: o.json ? undefined : (row) => process.stderr.write(`  ${row.perturbation}: acc ${(row.accuracy * 100).toFixed(2)}%\n`),
      });
      if (o.out) fs.writeFileSync(path.resolve(o.out), `${JSON.stringify(r, null, 2)}\n`);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const what = r.label ? `${r.data} (all ${r.label})` : `${r.split} of ${r.data}`;
      const lines = [`${r.checkpoint} on ${what}`, formatRobustnessTable(r)];
      if (r.label) {
        const clean = r.rows[0];
        const wrong = 1 - clean.accuracy;
        lines.push(`\n${(wrong * 100).toFixed(2)}% of these ${r.label} images are called ${r.label === 'REAL' ? 'FAKE' : 'REAL'} (clean)`);
      }
      if (r.savedTo) lines.push(`saved to ${r.savedTo} (charted by cifake report)`);
      if (r.skipped.length) lines.push(`skipped ${r.skipped.length} unreadable image(s): ${r.skipped.slice(0, 5).map((s) => s.name).join(', ')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

// cifake eval: metrics of a trained model on a split of a dataset (optionally without listed images, with TTA).
import { Command } from 'commander';

import { data, describeCheckpoint, evaluate } from '../../src';
import { metricsTable, num, print, threadsArg } from '../cli-helpers';

interface EvalFlags {
  model: string;
  data: string;
  split: string;
  excludeList?: string;
  tta?: boolean;
  resize?: boolean;
  cacheDir?: string;
  threshold?: number;
  device?: string;
  threads?: number;
  json?: boolean;
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate a trained model on a split of a dataset')
    .option('-m, --model <runOrCheckpoint>', 'run directory, checkpoint file, or pretrained (default: the weights shipped in the package)')
    .requiredOption('-d, --data <path>', 'CIFAKE zip or folder')
    .option('--split <name>', 'split to evaluate', 'test')
    .option('--exclude-list <file>', 'also report metrics without the images listed in this file')
    .option('--tta', 'test-time augmentation: average each image with its horizontal mirror')
    .option('--resize', 'resize images that are not 32x32 (default: as the model was trained)')
    .option('--cache-dir <dir>', 'decoded-data cache (default ~/.cache/cifake-torch)')
    .option('--threshold <x>', 'decision threshold on P(REAL)', num('--threshold'))
    .option('--device <d>', 'cpu | cuda | cuda:N | auto')
    .option('--threads <n>', 'CPU threads (default: all available)', threadsArg)
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  cifake eval --model runs/hoc --data ~/cifake.zip --exclude-list test-fake-duplicates.txt')
    .action(async (o: EvalFlags) => {
      const bar = !o.json && process.stderr.isTTY ? data.progressBar(`decode ${o.split}`) : undefined;
      const { model, json: _json, ...rest } = o;
      const r = await evaluate(model, { ...rest, onProgress: bar });
      const lines = [`${describeCheckpoint(r.checkpoint)} on ${r.split} of ${r.data}${r.tta ? ' (with horizontal-flip TTA)' : ''}${r.temperature !== 1 ? ` (temperature ${r.temperature.toFixed(3)}, threshold ${r.metrics.threshold})` : ''}`, metricsTable(r.split, r.metrics)];
      if (r.withoutExcluded) lines.push(metricsTable(`${r.split} without ${r.withoutExcluded.excluded} listed images`, r.withoutExcluded.metrics));
      print(!!o.json, r, lines.join('\n'));
    });
}

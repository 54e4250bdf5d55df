// cifake data prepare | info | synth: the decoded-data cache and the embedded demo set.
import { Command } from 'commander';

import { data, synthesize } from '../../src';
import { int, print } from '../cli-helpers';

function prepareCommand(): Command {
  return new Command('prepare')
    .description('decode a CIFAKE zip or folder once into the cache and print a summary')
    .requiredOption('-d, --data <path>', 'CIFAKE zip or folder')
    .option('--split <names>', 'comma-separated splits (default: all found)')
    .option('--resize', 'resize images that are not 32x32 (bilinear)')
    .option('--strict', 'fail on the first unreadable image instead of skipping it')
    .option('--cache-dir <dir>', 'cache location')
    .option('--json', 'machine-readable output')
    .action(async (o: { data: string; split?: string; resize?: boolean; strict?: boolean; cacheDir?: string; json?: boolean }) => {
      const bar = !o.json && process.stderr.isTTY ? data.progressBar('decode') : undefined;
      const summaries = await data
        .prepare(o.data, { splits: o.split?.split(','), resize: o.resize, strict: o.strict, cacheDir: o.cacheDir, onProgress: bar })
        .finally(() => bar?.stop());
      print(!!o.json, summaries, summaries.map((s) => data.formatSummary(s)).join('\n\n'));
    });
}

function cacheInfoCommand(): Command {
  return new Command('info')
    .description('list what is cached')
    .option('--cache-dir <dir>', 'cache location')
    .option('--json', 'machine-readable output')
    .action(async (o: { cacheDir?: string; json?: boolean }) => {
      const info = await data.cacheInfo(o.cacheDir);
      const lines = [`cache: ${info.dir} (${(info.bytes / 2 ** 20).toFixed(1)} MiB)`, ...info.entries.map((e) => `  ${JSON.stringify(e)}`)];
      print(!!o.json, info, lines.join('\n'));
    });
}

function synthCommand(): Command {
  return new Command('synth')
    .description('write the deterministic synthetic demo set (CIFAKE layout) to a folder')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--train-per-class <n>', 'train images per class', int('--train-per-class'), 2000)
    .option('--test-per-class <n>', 'test images per class', int('--test-per-class'), 500)
    .option('--seed <n>', 'seed', int('--seed'), 1)
    .action(async (o: { out: string; trainPerClass: number; testPerClass: number; seed: number }) => {
      const r = await synthesize(o.out, { trainPerClass: o.trainPerClass, testPerClass: o.testPerClass, seed: o.seed });
      process.stdout.write(`${r.root}: ${JSON.stringify(r.counts)}\n`);
    });
}

export function dataCommand(): Command {
  const cmd = new Command('data').description('datasets: prepare the cache, inspect it, generate the demo set');
  for (const sub of [prepareCommand(), cacheInfoCommand(), synthCommand()]) cmd.addCommand(sub.exitOverride().showHelpAfterError('(run with --help for usage)'));
  return cmd;
}

#!/usr/bin/env node
// cifake: a thin commander layer over the library. Exit codes: 0 ok, 1 failure, 2 usage.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import cliProgress from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';

import { ConfigError, PRESET_NAMES, PRESETS, readConfigFile, resolveConfig, type PresetName } from '../src/config';
import { cacheInfo, formatSummary, prepare, progressBar } from '../src/data';
import { synthesize } from '../src/data/synth';
import { availableCpus, loadedBlasLibraries, loadNative, PACKAGE_ROOT } from '../src/native';
import { evaluate } from '../src/train/evaluate';
import { NonFiniteLoss, train, TrainingInterrupted, type EpochLog } from '../src/train/fit';
import { launchLocal } from '../src/parallel/launch';
import { distOptionsFrom, type DistOptions } from '../src/parallel/options';
import { Classifier } from '../src/classifier';
import { packageVersion } from '../src/version';
import { sweepCommand } from './commands/sweep';
import { reportCommand } from './commands/report';
import { writeReport } from '../src/report';
import { gradcamCommand } from './commands/gradcam';
import { int, metricsTable, num, onInterrupt, parseClassMap, print, threadsArg, UsageError } from './cli-helpers';

const program = new Command();
program
  .name('cifake')
  .description('Train, evaluate, explain and serve detectors of AI-generated images (CIFAKE) on libtorch')
  .version(packageVersion())
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('info')
  .description('package, libtorch, devices and BLAS in use')
  .option('--json', 'machine-readable output')
  .action((o: { json?: boolean }) => {
    const info = loadNative().info();
    const blasInfo = /BLAS_INFO=([^,\s]+)/.exec(info.config)?.[1] ?? 'unknown';
    const blasLibs = loadedBlasLibraries();
    const blas = blasLibs.length ? `${blasInfo} (${blasLibs.join(', ')})` : blasInfo;
    const mkldnn = /USE_MKLDNN=(\w+)/.exec(info.config)?.[1] ?? 'unknown';
    const out = {
      package: packageVersion(),
      libtorch: info.torchVersion,
      libtorchFrom: info.torchSource,
      cpu: { threads: info.threads, available: availableCpus(), ompNumThreads: process.env.OMP_NUM_THREADS },
      blas,
      mkldnn,
      cuda: info.cuda,
    };
    const gpus = info.cuda.devices.map((d) => `  cuda:${d.index} ${d.name} (${(d.memory / 2 ** 30).toFixed(1)} GiB, sm ${d.capability})`);
    print(
      !!o.json,
      { ...out, distributed: info.distributed },
      [
        `cifake-torch ${out.package}`,
        `libtorch ${out.libtorch} (${out.libtorchFrom})`,
        `cpu: ${out.cpu.threads} intra-op threads of ${out.cpu.available} available CPUs; BLAS ${blas}; oneDNN ${mkldnn}`,
        `cuda: ${info.cuda.available ? `${info.cuda.devices.length} device(s)` : info.cuda.built ? 'built, but no device visible' : 'not in this libtorch build'}`,
        ...gpus,
        `data-parallel (c10d/Gloo): ${info.distributed ? 'yes' : 'no (built without c10d/gloo headers)'}`,
      ].join('\n'),
    );
  });

program
  .command('build')
  .description('(re)build the native addon against the libtorch found (LIBTORCH, Torch_DIR, python3 torch, system)')
  .action(() => {
    const r = spawnSync(process.execPath, [path.join(PACKAGE_ROOT, 'scripts', 'build-native.js'), '--force'], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  });

const trainCmd = program
  .command('train')
  .description('train a detector; without --data, on the embedded synthetic demo set')
  .addOption(new Option('-p, --preset <name>', 'training preset').choices([...PRESET_NAMES]).default('hoc'))
  .option('-d, --data <path>', 'CIFAKE zip or folder (train/ and test/ with REAL/ and FAKE/)')
  .option('-c, --config <file>', 'JSON config file (flags override it)')
  .option('--model <family>', 'model family: original | lightweight | hoc')
  .option('--epochs <n>', 'maximum epochs', int('--epochs'))
  .option('--batch-size <n>', 'batch size', int('--batch-size'))
  .option('--lr <x>', 'learning rate', num('--lr'))
  .option('--optimizer <name>', 'adam | adamw')
  .option('--weight-decay <x>', 'weight decay', num('--weight-decay'))
  .option('--patience <n>', 'early-stopping patience (epochs)', int('--patience'))
  .option('--min-delta <x>', 'early-stopping minimum improvement', num('--min-delta'))
  .option('--monitor <m>', 'early-stopping monitor: val_loss | val_acc')
  .option('--no-early-stopping', 'train all epochs')
  .option('--no-restore-best', 'keep the last weights instead of the best epoch')
  .option('--seed <n>', 'random seed', int('--seed'))
  .option('--device <d>', 'cpu | cuda | cuda:N | auto')
  .option('--threads <n>', 'CPU threads (default: all available)', threadsArg)
  .option('--val-fraction <x>', 'share of train held out for validation', num('--val-fraction'))
  .option('--limit <n>', 'at most N images per class (quick runs)', int('--limit'))
  .option('--out-dir <dir>', 'parent of run directories (default runs)')
  .option('--name <name>', 'run directory name (default: a timestamp)')
  .option('--threshold <x>', 'decision threshold on P(REAL)', num('--threshold'))
  .option('--shard-size <n>', 'stream the train split to the device in shards of N images (bounded memory)', int('--shard-size'))
  .option('--no-channels-last', 'NCHW activations instead of channels-last (NHWC)')
  .addOption(new Option('--amp <mode>', 'mixed precision: bf16 (CPU or CUDA autocast) or fp16 (CUDA, loss scaling)').choices(['none', 'bf16', 'fp16']))
  .option('--nproc <n>', 'data-parallel: start N ranks on this host (CPU threads split between them; one GPU each)', int('--nproc'))
  .option('--rank <n>', 'data-parallel: this process\'s rank (default: env RANK)', int('--rank'))
  .option('--world-size <n>', 'data-parallel: number of ranks (default: env WORLD_SIZE)', int('--world-size'))
  .option('--local-rank <n>', 'data-parallel: rank on this host, picks cuda:N (default: env LOCAL_RANK)', int('--local-rank'))
  .option('--master-addr <host>', 'data-parallel: host of rank 0 (default: env MASTER_ADDR, else 127.0.0.1)')
  .option('--master-port <port>', 'data-parallel: rendezvous port on rank 0 (default: env MASTER_PORT, else 29500)', int('--master-port'))
  .option('--dist-timeout <s>', 'data-parallel: give up when a rank is missing or silent this long (default 300)', num('--dist-timeout'))
  .option('--resize', 'resize images that are not 32x32 (bilinear) instead of rejecting them')
  .option('--strict', 'fail on the first unreadable image instead of skipping it')
  .option('--class-map <json>', 'class folder -> label, e.g. \'{"ai":0,"photo":1}\' (default {"FAKE":0,"REAL":1})', parseClassMap)
  .option('--cache-dir <dir>', 'decoded-data cache (default ~/.cache/cifake-torch)')
  .option('--no-cache', 'decode without reading or writing the cache')
  .option('--resume <runDir>', 'continue an interrupted run from its last checkpoint')
  .option('--report', 'write the HTML report (learning curves, ROC, confusion, Grad-CAM) at the end')
  .option('--json', 'print one JSON object per event instead of progress bars')
  .option('-q, --quiet', 'print only the final result')
  .addHelpText(
    'after',
    `
Presets (paper = the CIFAKE seed's protocol; ours = our improvements):
${PRESET_NAMES.map((n) => `  ${n.padEnd(17)} [${PRESETS[n].origin}] ${PRESETS[n].description}`).join('\n')}

Examples:
  cifake train                                   # demo data, hoc preset
  cifake train --data ~/cifake.zip --preset paper-cnn
  cifake train --data ~/cifake.zip --preset hoc --limit 2000 --epochs 3
  cifake train --resume runs/20261129-101500
  cifake train --data ~/cifake.zip --nproc 2      # 2 data-parallel ranks (c10d/Gloo), threads split
  MASTER_ADDR=node0 MASTER_PORT=29500 WORLD_SIZE=4 RANK=1 LOCAL_RANK=1 cifake train --data ...  # torchrun-style`,
  );

interface TrainFlags {
  preset: PresetName;
  data?: string;
  config?: string;
  model?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: string;
  weightDecay?: number;
  patience?: number;
  minDelta?: number;
  monitor?: string;
  earlyStopping: boolean;
  restoreBest: boolean;
  seed?: number;
  device?: string;
  threads?: number;
  valFraction?: number;
  limit?: number;
  outDir?: string;
  name?: string;
  threshold?: number;
  resume?: string;
  report?: boolean;
  resize?: boolean;
  strict?: boolean;
  classMap?: Record<string, 0 | 1>;
  cacheDir?: string;
  cache: boolean;
  channelsLast: boolean;
  shardSize?: number;
  amp?: string;
  nproc?: number;
  rank?: number;
  worldSize?: number;
  localRank?: number;
  masterAddr?: string;
  masterPort?: number;
  distTimeout?: number;
  json?: boolean;
  quiet?: boolean;
}

function trainOverrides(f: TrainFlags): Record<string, unknown> {
  const o: Record<string, unknown> = {
    data: f.data,
    epochs: f.epochs,
    batchSize: f.batchSize,
    seed: f.seed,
    device: f.device,
    threads: f.threads,
    valFraction: f.valFraction,
    limit: f.limit,
    outDir: f.outDir,
    name: f.name,
    threshold: f.threshold,
    resize: f.resize,
    strict: f.strict,
    classMap: f.classMap,
    cacheDir: f.cache ? f.cacheDir : false,
    channelsLast: f.channelsLast ? undefined : false,
    shardSize: f.shardSize,
    amp: f.amp,
  };
  if (f.model) o.model = f.model;
  if (f.lr !== undefined || f.optimizer || f.weightDecay !== undefined) o.optimizer = { name: f.optimizer, lr: f.lr, weightDecay: f.weightDecay };
  if (!f.earlyStopping) o.earlyStopping = null;
  else if (f.patience !== undefined || f.minDelta !== undefined || f.monitor || !f.restoreBest)
    o.earlyStopping = { patience: f.patience, minDelta: f.minDelta, monitor: f.monitor, restoreBest: f.restoreBest ? undefined : false };
  return o;
}

/** `--nproc N`: this process only supervises N ranks of the same command. */
async function launchRanks(f: TrainFlags): Promise<void> {
  if (f.rank !== undefined || f.worldSize !== undefined || process.env.WORLD_SIZE)
    throw new UsageError('--nproc: starts its own ranks; do not combine it with --rank/--world-size or WORLD_SIZE');
  // --threads, if given, stays in the arguments: it is per rank.
  const args = process.argv.slice(2).filter((a, i, all) => a !== '--nproc' && all[i - 1] !== '--nproc' && !a.startsWith('--nproc='));
  process.on('SIGINT', () => {}); // the ranks get Ctrl-C themselves and stop together
  const r = await launchLocal({
    nproc: f.nproc ?? 1,
    script: process.argv[1],
    args,
    followerArgs: ['--quiet'],
    masterPort: f.masterPort,
  });
  if (r.failedRank !== null && r.failedRank !== 0) {
    const failed = r.ranks.find((x) => x.rank === r.failedRank);
    process.stderr.write(`cifake: rank ${r.failedRank} of ${f.nproc} failed (${failed?.signal ?? `exit ${failed?.code}`}); the job stopped\n`);
  }
  process.exitCode = r.exitCode;
}

trainCmd.action(async (f: TrainFlags) => {
  if (f.nproc !== undefined && f.nproc > 1) return launchRanks(f);
  let dist: DistOptions | null;
  try {
    dist = distOptionsFrom({ rank: f.rank, worldSize: f.worldSize, localRank: f.localRank, masterAddr: f.masterAddr, masterPort: f.masterPort, distTimeout: f.distTimeout });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const follower = dist !== null && dist.rank !== 0;
  const json = !!f.json && !follower;
  const quiet = !!f.quiet || follower;
  const say = (m: string) => {
    if (json) print(true, { event: 'log', message: m }, '');
    else if (!quiet) process.stderr.write(`${m}\n`);
  };
  let config: Record<string, unknown> = {};
  if (!f.resume) {
    const file = f.config ? readConfigFile(f.config) : undefined;
    config = resolveConfig({ preset: f.preset, file, overrides: trainOverrides(f) });
    say(`preset ${f.preset}: ${PRESETS[f.preset].description}`);
  }
  const interrupt = onInterrupt(say, 'finishing the current batch');

  let bar: cliProgress.SingleBar | null = null;
  const showBars = !json && !quiet && process.stderr.isTTY;
  try {
    const result = await train(config, {
      resume: f.resume,
      dist,
      signal: interrupt.signal,
      onLog: say,
      onDataProgress: (split) => (showBars ? progressBar(`decode ${split}`) : Object.assign(() => {}, { stop: () => {} })),
      onEpochStart: (epoch, epochs, batches) => {
        if (!showBars) return;
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: `epoch ${epoch}/${epochs} [{bar}] {value}/{total} batches | loss {loss} acc {acc} | {ips} img/s | ETA {eta_formatted}`,
            hideCursor: false,
          },
          cliProgress.Presets.legacy,
        );
        bar.start(batches, 0, { loss: '-', acc: '-', ips: '-' });
      },
      onBatch: (epoch, p) => {
        bar?.update(p.batch, { loss: p.loss.toFixed(4), acc: (p.accuracy * 100).toFixed(2) + '%', ips: Math.round(p.imagesPerSec) });
        if (json) print(true, { event: 'progress', epoch, ...p }, '');
      },
      onEpochEnd: (e: EpochLog) => {
        if (bar) {
          bar.update(bar.getTotal());
          bar.stop();
          bar = null;
        }
        const line =
          `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)} acc ${(e.trainAcc * 100).toFixed(2)}% | ` +
          `val loss ${e.valLoss.toFixed(4)} acc ${(e.valAcc * 100).toFixed(2)}% AUC ${e.valAuc?.toFixed(4) ?? '-'} | ` +
          `${e.seconds.toFixed(1)} s, ${Math.round(e.imagesPerSec)} img/s${e.improved ? ' *' : ''}`;
        if (json) print(true, { event: 'epoch', ...e }, '');
        else if (!quiet) process.stderr.write(`${line}\n`);
      },
    });
    const summary = {
      event: 'result',
      runDir: result.runDir,
      epochsRun: result.epochsRun,
      bestEpoch: result.bestEpoch,
      stopReason: result.stopReason,
      trainSeconds: result.trainSeconds,
      device: result.device,
      parameters: result.parameters,
      worldSize: result.worldSize,
      metrics: result.metrics,
    };
    if (follower) return; // rank 0 reports the run
    const text = [
      `run: ${result.runDir} (${result.epochsRun} epochs, ${result.stopReason}, best epoch ${result.bestEpoch}, ${result.trainSeconds.toFixed(1)} s training on ${result.device}${result.worldSize > 1 ? ` x ${result.worldSize} ranks` : ''})`,
      metricsTable('validation', result.metrics.val),
      result.metrics.test ? metricsTable('test', result.metrics.test) : 'test: no test split in the data',
    ].join('\n');
    print(json, summary, text);
    if (f.report) {
      const r = await writeReport(result.runDir, { device: f.device, threads: f.threads, onLog: say });
      print(json, { event: 'report', html: r.html }, `report: ${r.html}`);
    }
  } catch (e) {
    (bar as cliProgress.SingleBar | null)?.stop();
    if (e instanceof TrainingInterrupted) {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 130;
      return;
    }
    if (e instanceof NonFiniteLoss) {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  } finally {
    interrupt.off();
  }
});

program
  .command('eval')
  .description('evaluate a trained model on a split of a dataset')
  .requiredOption('-m, --model <runOrCheckpoint>', 'run directory (the model it ended with: best.pt if restored, else last.pt) or a checkpoint file')
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
  .action(async (o: { model: string; data: string; split: string; excludeList?: string; tta?: boolean; resize?: boolean; cacheDir?: string; threshold?: number; device?: string; threads?: number; json?: boolean }) => {
    const bar = !o.json && process.stderr.isTTY ? progressBar(`decode ${o.split}`) : undefined;
    const r = await evaluate(o.model, { data: o.data, split: o.split, excludeList: o.excludeList, tta: o.tta, resize: o.resize, cacheDir: o.cacheDir, threshold: o.threshold, device: o.device, threads: o.threads, onProgress: bar });
    const lines = [`${r.checkpoint} on ${r.split} of ${r.data}${r.tta ? ' (with horizontal-flip TTA)' : ''}`, metricsTable(r.split, r.metrics)];
    if (r.withoutExcluded) lines.push(metricsTable(`${r.split} without ${r.withoutExcluded.excluded} listed images`, r.withoutExcluded.metrics));
    print(!!o.json, r, lines.join('\n'));
  });

program
  .command('predict')
  .description('classify image files (JPEG, PNG, WebP; other sizes are resized to 32x32)')
  .requiredOption('-m, --model <runOrCheckpoint>', 'run directory or checkpoint file')
  .argument('<images...>', 'image files')
  .option('--device <d>', 'cpu | cuda | cuda:N | auto', 'cpu')
  .option('--threads <n>', 'CPU threads (default: all available)', threadsArg)
  .option('--threshold <x>', 'decision threshold on P(REAL)', num('--threshold'))
  .option('--json', 'JSON output')
  .addHelpText('after', '\nExample:\n  cifake predict --model runs/hoc photo1.jpg photo2.png')
  .action(async (images: string[], o: { model: string; device: string; threads?: number; threshold?: number; json?: boolean }) => {
    const clf = await Classifier.load(o.model, { device: o.device, threads: o.threads, threshold: o.threshold });
    try {
      const rows: { file: string; pReal: number | null; label: string; error?: string }[] = [];
      for (const file of images) {
        try {
          const p = (await clf.predictBatch([file]))[0];
          rows.push({ file, pReal: p.pReal, label: p.label });
        } catch (e) {
          rows.push({ file, pReal: null, label: 'ERROR', error: (e as Error).message });
          process.exitCode = 1;
        }
      }
      const width = Math.max(4, ...rows.map((r) => r.file.length));
      print(
        !!o.json,
        rows,
        [`${'file'.padEnd(width)}  P(REAL)  label`, ...rows.map((r) => `${r.file.padEnd(width)}  ${r.pReal === null ? '   -   ' : r.pReal.toFixed(4).padStart(7)}  ${r.label}${r.error ? ` (${r.error})` : ''}`)].join('\n'),
      );
    } finally {
      clf.dispose();
    }
  });

const dataCmd = program.command('data').description('datasets: prepare the cache, inspect it, generate the demo set');
dataCmd
  .command('prepare')
  .description('decode a CIFAKE zip or folder once into the cache and print a summary')
  .requiredOption('-d, --data <path>', 'CIFAKE zip or folder')
  .option('--split <names>', 'comma-separated splits (default: all found)')
  .option('--resize', 'resize images that are not 32x32 (bilinear)')
  .option('--strict', 'fail on the first unreadable image instead of skipping it')
  .option('--cache-dir <dir>', 'cache location')
  .option('--json', 'machine-readable output')
  .action(async (o: { data: string; split?: string; resize?: boolean; strict?: boolean; cacheDir?: string; json?: boolean }) => {
    const bar = !o.json && process.stderr.isTTY ? progressBar('decode') : undefined;
    const summaries = await prepare(o.data, { splits: o.split?.split(','), resize: o.resize, strict: o.strict, cacheDir: o.cacheDir, onProgress: bar }).finally(() => bar?.stop());
    print(!!o.json, summaries, summaries.map((s) => formatSummary(s)).join('\n\n'));
  });
dataCmd
  .command('info')
  .description('list what is cached')
  .option('--cache-dir <dir>', 'cache location')
  .option('--json', 'machine-readable output')
  .action(async (o: { cacheDir?: string; json?: boolean }) => {
    const info = await cacheInfo(o.cacheDir);
    print(
      !!o.json,
      info,
      [`cache: ${info.dir} (${(info.bytes / 2 ** 20).toFixed(1)} MiB)`, ...info.entries.map((e) => `  ${JSON.stringify(e)}`)].join('\n'),
    );
  });
dataCmd
  .command('synth')
  .description('write the deterministic synthetic demo set (CIFAKE layout) to a folder')
  .requiredOption('-o, --out <dir>', 'output folder')
  .option('--train-per-class <n>', 'train images per class', int('--train-per-class'), 2000)
  .option('--test-per-class <n>', 'test images per class', int('--test-per-class'), 500)
  .option('--seed <n>', 'seed', int('--seed'), 1)
  .action(async (o: { out: string; trainPerClass: number; testPerClass: number; seed: number }) => {
    const r = await synthesize(o.out, { trainPerClass: o.trainPerClass, testPerClass: o.testPerClass, seed: o.seed });
    process.stdout.write(`${r.root}: ${JSON.stringify(r.counts)}\n`);
  });

// addCommand does not pass exitOverride down: set it so usage errors exit with 2 everywhere.
for (const cmd of [sweepCommand(), reportCommand(), gradcamCommand()])
  program.addCommand(cmd.exitOverride().showHelpAfterError('(run with --help for usage)'));

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (e instanceof ConfigError || e instanceof UsageError) {
      process.stderr.write(`cifake: invalid configuration:\n${e.message}\n`);
      return 2;
    }
    process.stderr.write(`cifake: ${(e as Error).message}\n`);
    if (process.env.CIFAKE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}

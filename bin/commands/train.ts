// cifake train: one run directory from a preset, a config file and flags; --resume continues one;
// --nproc N starts N data-parallel ranks of this same command.
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';

import {
  data,
  distOptionsFrom,
  launchLocal,
  NonFiniteLoss,
  PRESET_NAMES,
  PRESETS,
  readConfigFile,
  report,
  resolveConfig,
  train,
  TrainingInterrupted,
  type DistOptions,
  type EpochLog,
  type PresetName,
  type RunResult,
  type TrainOptions,
} from '../../src';
import { int, metricsTable, num, onInterrupt, parseClassMap, print, threadsArg, UsageError } from '../cli-helpers';

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
  initFrom?: string;
  ema?: number;
  cutmix?: number;
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
    initFrom: f.initFrom,
    ema: f.ema,
  };
  if (f.model) o.model = f.model;
  if (f.cutmix !== undefined) o.augment = { cutmix: f.cutmix };
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


/** Where a rank's output goes: rank 0 prints (JSON events or text), followers stay quiet. */
interface Output {
  json: boolean;
  quiet: boolean;
  follower: boolean;
  say: (m: string) => void;
}

function outputOf(f: TrainFlags, dist: DistOptions | null): Output {
  const follower = dist !== null && dist.rank !== 0;
  const json = !!f.json && !follower;
  const quiet = !!f.quiet || follower;
  const say = (m: string) => {
    if (json) print(true, { event: 'log', message: m }, '');
    else if (!quiet) process.stderr.write(`${m}\n`);
  };
  return { json, quiet, follower, say };
}

function epochLine(e: EpochLog): string {
  return (
    `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)} acc ${(e.trainAcc * 100).toFixed(2)}% | ` +
    `val loss ${e.valLoss.toFixed(4)} acc ${(e.valAcc * 100).toFixed(2)}% AUC ${e.valAuc?.toFixed(4) ?? '-'} | ` +
    `${e.seconds.toFixed(1)} s, ${Math.round(e.imagesPerSec)} img/s${e.improved ? ' *' : ''}`
  );
}

/** Progress bars on a terminal, JSON events with --json, epoch lines otherwise. */
function progressCallbacks(out: Output): Pick<TrainOptions, 'onLog' | 'onDataProgress' | 'onEpochStart' | 'onBatch' | 'onEpochEnd'> & { stop: () => void } {
  const showBars = !out.json && !out.quiet && process.stderr.isTTY;
  let bar: cliProgress.SingleBar | null = null;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const format = (epoch: number, epochs: number) =>
    `epoch ${epoch}/${epochs} [{bar}] {value}/{total} batches | loss {loss} acc {acc} | {ips} img/s | ETA {eta_formatted}`;
  return {
    stop,
    onLog: out.say,
    onDataProgress: (split) => (showBars ? data.progressBar(`decode ${split}`) : Object.assign(() => {}, { stop: () => {} })),
    onEpochStart: (epoch, epochs, batches) => {
      if (!showBars) return;
      bar = new cliProgress.SingleBar({ stream: process.stderr, format: format(epoch, epochs), hideCursor: false }, cliProgress.Presets.legacy);
      bar.start(batches, 0, { loss: '-', acc: '-', ips: '-' });
    },
    onBatch: (epoch, p) => {
      bar?.update(p.batch, { loss: p.loss.toFixed(4), acc: (p.accuracy * 100).toFixed(2) + '%', ips: Math.round(p.imagesPerSec) });
      if (out.json) print(true, { event: 'progress', epoch, ...p }, '');
    },
    onEpochEnd: (e: EpochLog) => {
      if (bar) bar.update(bar.getTotal());
      stop();
      if (out.json) print(true, { event: 'epoch', ...e }, '');
      else if (!out.quiet) process.stderr.write(`${epochLine(e)}\n`);
    },
  };
}

function printResult(result: RunResult, json: boolean): void {
  const { history: _h, config: _c, ...summary } = result;
  const ranks = result.worldSize > 1 ? ` x ${result.worldSize} ranks` : '';
  const text = [
    `run: ${result.runDir} (${result.epochsRun} epochs, ${result.stopReason}, best epoch ${result.bestEpoch}, ${result.trainSeconds.toFixed(1)} s training on ${result.device}${ranks})`,
    metricsTable('validation', result.metrics.val),
    result.metrics.test ? metricsTable('test', result.metrics.test) : 'test: no test split in the data',
  ].join('\n');
  print(json, { event: 'result', ...summary }, text);
}

function distOf(f: TrainFlags): DistOptions | null {
  try {
    return distOptionsFrom({ rank: f.rank, worldSize: f.worldSize, localRank: f.localRank, masterAddr: f.masterAddr, masterPort: f.masterPort, distTimeout: f.distTimeout });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Flags that change where and how a resumed run goes on, not what it trains (camelCase names). */
const RESUME_FLAGS = new Set(['resume', 'threads', 'device', 'cacheDir', 'cache', 'report', 'json', 'quiet', 'nproc', 'rank', 'worldSize', 'localRank', 'masterAddr', 'masterPort', 'distTimeout']);

/** --resume continues the run's config.json: a flag that would change it is an error, not ignored. */
function checkResumeFlags(cmd: Command): void {
  const given = cmd.options.filter((o) => cmd.getOptionValueSource(o.attributeName()) === 'cli' && !RESUME_FLAGS.has(o.attributeName()));
  if (given.length)
    throw new UsageError(
      `${given.map((o) => o.long).join(', ')}: a resumed run continues with its config.json; with --resume only --threads, --device, --cache-dir/--no-cache and the output and data-parallel flags apply`,
    );
}

async function trainAction(f: TrainFlags, cmd: Command): Promise<void> {
  if (f.resume) checkResumeFlags(cmd);
  if (f.nproc !== undefined && f.nproc > 1) return launchRanks(f);
  const dist = distOf(f);
  const out = outputOf(f, dist);
  let config: Record<string, unknown> = {};
  if (!f.resume) {
    config = resolveConfig({ preset: f.preset, file: f.config ? readConfigFile(f.config) : undefined, overrides: trainOverrides(f) });
    out.say(`preset ${f.preset}: ${PRESETS[f.preset].description}`);
  }
  const interrupt = onInterrupt(out.say, 'finishing the current batch');
  const progress = progressCallbacks(out);
  try {
    const resumeRuntime = f.resume ? { threads: f.threads, device: f.device, cacheDir: f.cache ? f.cacheDir : (false as const) } : undefined;
    const result = await train(config, { resume: f.resume, resumeRuntime, dist, signal: interrupt.signal, ...progress });
    if (out.follower) return; // rank 0 reports the run
    printResult(result, out.json);
    if (f.report) {
      const r = await report.writeReport(result.runDir, { device: f.device, threads: f.threads, onLog: out.say });
      print(out.json, { event: 'report', html: r.html }, `report: ${r.html}`);
    }
  } catch (e) {
    progress.stop();
    if (!(e instanceof TrainingInterrupted || e instanceof NonFiniteLoss)) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exitCode = e instanceof TrainingInterrupted ? 130 : 1;
  } finally {
    interrupt.off();
  }
}

export function trainCommand(): Command {
  return new Command('train')
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
  .option('--init-from <runOrCheckpoint>', "fine-tune: start from these weights (a run, a checkpoint or 'pretrained'; same model), fresh optimizer")
  .option('--ema <decay>', 'keep a moving average of the weights (e.g. 0.999); validation, best.pt and the final model use it', num('--ema'))
  .option('--cutmix <p>', "CutMix: the share of train batches that get a box pasted from other images, targets mixed by area (config 'augment.cutmix')", num('--cutmix'))
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
  cifake train --data my-images --preset res-ema-duo --init-from pretrained --epochs 5 --lr 5e-4   # fine-tune the shipped detector (two networks)
  cifake train --data ~/cifake.zip --nproc 2      # 2 data-parallel ranks (c10d/Gloo), threads split
  MASTER_ADDR=node0 MASTER_PORT=29500 WORLD_SIZE=4 RANK=1 LOCAL_RANK=1 cifake train --data ...  # torchrun-style`,
  )
    .action(trainAction);
}

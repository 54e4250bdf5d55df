// The fit loop: TS orchestration over the native epoch. Data in, run directory out.
//   train(config) -> load + split data -> hand it to the device once -> per epoch: native train,
//   native predict on val, metrics + early stopping here, checkpoints + history -> final metrics.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { lrAtEpoch, modelSpecOf, resolveThreads, validateConfig, type TrainConfig } from '../config';
import { loadSplit, openSplit, stratifiedSplit, stratifiedSplitIndices, type ImageSet, type ProgressCallback, type SplitHandle } from '../data';
import { DistContext } from '../parallel/group';
import type { DistOptions } from '../parallel/options';
import { bceWithLogits, computeMetrics, type MetricsReport } from '../metrics';
import { CifakeModel, type EpochProgress, type EpochResult } from '../model';
import { loadNative } from '../native';
import { packageVersion } from '../version';
import { EarlyStopping, type EarlyStoppingState } from './early-stopping';
import {
  createRunDir,
  discardUnstartedRun,
  readHistory,
  readRunConfig,
  resolveData,
  RUN_FILES,
  writeHistory,
  writeRunConfig,
  writeRunDataSummary,
  writeRunSummary,
  writeScores,
  type RunSummary,
  type StopReason,
} from '../run';

export interface EpochLog {
  epoch: number; // 1-based
  lr: number;
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  valAuc: number | null;
  seconds: number;
  imagesPerSec: number;
  improved: boolean;
  bestEpoch: number;
  /** Data-parallel runs: seconds rank 0 spent in gradient / buffer collectives this epoch. */
  commSeconds?: number;
}

export type { StopReason };

/** What train() resolves with: the run's summary (metrics.json) plus its config and history. */
export interface RunResult extends RunSummary {
  config: TrainConfig;
  history: EpochLog[];
}

export interface TrainCallbacks {
  /** Human-readable notes (data source, run directory, early stop...). */
  onLog?: (message: string) => void;
  /** Progress of decoding images (first run on a dataset). */
  onDataProgress?: (split: string) => ProgressCallback & { stop?: () => void };
  onEpochStart?: (epoch: number, epochs: number, batches: number) => void;
  onBatch?: (epoch: number, p: EpochProgress) => void;
  onEpochEnd?: (log: EpochLog) => void | Promise<void>;
}

export interface TrainOptions extends TrainCallbacks {
  /** Aborting finishes the current batch, keeps the last epoch's checkpoint and rejects with TrainingInterrupted. */
  signal?: AbortSignal;
  /** Continue the run in this directory from its last checkpoint (its config.json is used). */
  resume?: string;
  /**
   * The value early stopping monitors, computed from an epoch's log (default: its valLoss or valAcc,
   * per config.earlyStopping.monitor, which also fixes whether lower or higher is better).
   */
  monitorValue?: (log: Omit<EpochLog, 'improved' | 'bestEpoch'>) => number;
  /**
   * Data-parallel training: this process is one rank of a c10d job (see src/parallel and
   * `distOptionsFrom`). Every rank calls train() with the same config; rank 0 writes the run.
   */
  dist?: DistOptions | null;
}

export class TrainingInterrupted extends Error {
  constructor(
    readonly runDir: string,
    readonly completedEpochs: number,
  ) {
    super(
      `training interrupted during epoch ${completedEpochs + 1}; ` +
        (completedEpochs > 0
          ? `checkpoint of epoch ${completedEpochs} kept in ${runDir}; continue with: cifake train --resume ${runDir}`
          : `no epoch was completed; nothing was kept`),
    );
    this.name = 'TrainingInterrupted';
  }
}

export class NonFiniteLoss extends Error {
  constructor(
    readonly runDir: string,
    readonly epoch: number,
  ) {
    super(
      `the training loss became NaN or infinite in epoch ${epoch}; stopped. ` +
        `The last good checkpoint (epoch ${epoch - 1}) is kept in ${runDir}. Try a lower learning rate.`,
    );
    this.name = 'NonFiniteLoss';
  }
}

interface CheckpointState {
  epoch: number;
  earlyStopping: EarlyStoppingState;
}

/** Everything a checkpoint's meta records besides the spec. */
function checkpointMeta(config: TrainConfig, state: CheckpointState, extra: Record<string, unknown> = {}) {
  return {
    config,
    classNames: ['FAKE', 'REAL'],
    ...state,
    versions: { cifakeTorch: packageVersion(), libtorch: loadNative().info().torchVersion },
    ...extra,
  };
}

/** How the config asks for images to be decoded and cached. */
export function dataOptions(config: TrainConfig) {
  return {
    resize: config.resize,
    strict: config.strict,
    classMap: config.classMap ?? undefined,
    cacheDir: config.cacheDir ?? undefined,
  };
}

/** The train split for training: all in memory, or (with shardSize) a handle streamed per epoch. */
interface TrainData {
  count: number;
  labels: Uint8Array;
  summary: ImageSet['summary'];
  /** Whole split, handed to the device once. */
  set?: ImageSet;
  /** Sharded: read from the cache per epoch, in a seeded order. */
  handle?: SplitHandle;
  indices?: Uint32Array;
}

async function loadTrainVal(config: TrainConfig, data: string, cb: TrainCallbacks): Promise<{ train: TrainData; val: ImageSet }> {
  const bar = cb.onDataProgress?.('train');
  let handle: SplitHandle;
  try {
    handle = await openSplit(data, { ...dataOptions(config), split: 'train', limit: config.limit ?? undefined, seed: config.seed, onProgress: bar });
  } finally {
    bar?.stop?.();
  }
  const s = handle.summary;
  cb.onLog?.(
    `data: ${s.source} train split: ${handle.count} images (FAKE ${s.counts.FAKE}, REAL ${s.counts.REAL})` +
      (s.skipped.count ? `, ${s.skipped.count} skipped` : '') +
      (s.cache.hit ? ' [cached]' : ''),
  );
  if (config.shardSize === null) {
    const { train, val } = stratifiedSplit(await handle.load(), config.valFraction, config.seed);
    return { train: { count: train.count, labels: train.labels, summary: train.summary, set: train }, val };
  }
  const split = stratifiedSplitIndices(handle.labels, handle.files, config.valFraction, config.seed);
  const valImages = new Uint8Array(split.val.length * 3072);
  for await (const shard of handle.iterateShards(config.shardSize, split.val)) valImages.set(shard.images, shard.start * 3072);
  const val: ImageSet = {
    images: valImages,
    labels: Uint8Array.from(split.val, (i) => handle.labels[i]),
    files: Array.from(split.val, (i) => handle.files[i]),
    classNames: ['FAKE', 'REAL'],
    count: split.val.length,
    summary: { ...s, count: split.val.length, subset: 'val' },
  };
  cb.onLog?.(`streaming ${split.train.length} train images in shards of ${config.shardSize}`);
  const labels = Uint8Array.from(split.train, (i) => handle.labels[i]);
  return { train: { count: split.train.length, labels, summary: { ...s, count: split.train.length, subset: 'train' }, handle, indices: split.train }, val };
}

/** A seeded permutation (Fisher-Yates on a splitmix stream) of `indices`, for shard order per epoch. */
function permuted(indices: Uint32Array, seed: number, epoch: number): Uint32Array {
  const out = Uint32Array.from(indices);
  let state = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(epoch + 1));
  const next = () => {
    state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
    let z = state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return Number((z ^ (z >> 31n)) >> 11n) / 2 ** 53;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** One epoch over the train data: one native call, or one per shard (each shard shuffled natively too). */
async function trainOneEpoch(
  model: CifakeModel,
  data: TrainData,
  config: TrainConfig,
  epoch: number,
  lr: number,
  opts: TrainOptions,
): Promise<EpochResult> {
  const base = { batchSize: config.batchSize, seed: config.seed, lr, augment: config.augment };
  const call = { signal: opts.signal, onProgress: opts.onBatch ? (p: EpochProgress) => opts.onBatch?.(epoch + 1, p) : undefined };
  if (!data.handle || !data.indices) return model.trainEpoch({ ...base, data: 'train', epoch }, call);
  const total: EpochResult = { loss: 0, accuracy: 0, images: 0, batches: 0, seconds: 0, imagesPerSec: 0, cancelled: false, nonFinite: false };
  const shardSize = config.shardSize ?? data.count;
  const shards = Math.ceil(data.count / shardSize);
  let k = 0;
  for await (const shard of data.handle.iterateShards(shardSize, permuted(data.indices, config.seed, epoch))) {
    await model.setData('train', shard.images, shard.labels);
    // Distinct RNG streams per (epoch, shard), reproducible for resume.
    const r = await model.trainEpoch({ ...base, data: 'train', epoch: epoch * shards + k++ }, call);
    total.loss += r.loss * r.images;
    total.accuracy += r.accuracy * r.images;
    total.images += r.images;
    total.batches += r.batches;
    total.seconds += r.seconds;
    total.cancelled ||= r.cancelled;
    total.nonFinite ||= r.nonFinite;
    if (r.cancelled || r.nonFinite) break;
  }
  total.loss /= Math.max(1, total.images);
  total.accuracy /= Math.max(1, total.images);
  total.imagesPerSec = total.images / Math.max(1e-9, total.seconds);
  return total;
}

/** Logits and metrics of a stored dataset; with ranks, each predicts its shard and all gather. */
async function evaluate(model: CifakeModel, key: string, labels: Uint8Array, threshold: number, ctx: DistContext | null) {
  let logits = await model.predictLogits(key);
  if (ctx) logits = await ctx.gather(logits);
  return { logits, loss: bceWithLogits(logits, labels), metrics: computeMetrics(logits, labels, { fromLogits: true, threshold }) };
}


/** Hands `images` (all, or this rank's shard) to the device under `key`. */
async function setShard(model: CifakeModel, key: string, set: ImageSet, ctx: DistContext | null): Promise<void> {
  if (!ctx) return model.setData(key, set.images, set.labels);
  if (set.count < ctx.size) throw new Error(`the ${key} split has ${set.count} images, fewer than the ${ctx.size} ranks`);
  const { start, end } = ctx.shard(set.count);
  return model.setData(key, set.images.subarray(start * 3072, end * 3072), set.labels.subarray(start, end));
}

/** With ranks, rank 0's checkpoint file as a local path on every rank (copied through the group). */
async function leaderCheckpoint(ctx: DistContext | null, file: string, tmpDir: string): Promise<string | null> {
  if (!ctx) return fs.existsSync(file) ? file : null;
  const bytes = await ctx.shareBytesFromLeader(ctx.isLeader && fs.existsSync(file) ? fs.readFileSync(file) : null);
  if (bytes.length === 0) return null;
  if (ctx.isLeader) return file;
  const local = path.join(tmpDir, path.basename(file));
  fs.writeFileSync(local, bytes);
  return local;
}

/** Data-parallel: cuda/auto picks this rank's GPU (cuda:LOCAL_RANK); CPU threads are split between local ranks. */
function rankDevice(device: string, dist: DistOptions | null | undefined): string {
  if (!dist || !(device === 'cuda' || device === 'auto')) return device;
  const cuda = loadNative().info().cuda;
  if (!cuda.available) return device === 'auto' ? 'cpu' : device;
  return `cuda:${dist.localRank % Math.max(1, cuda.devices.length)}`;
}

function rankThreads(threads: number | null, dist: DistOptions | null | undefined): number {
  if (threads !== null || !dist) return resolveThreads(threads);
  return Math.max(1, Math.floor(resolveThreads(null) / dist.localWorldSize));
}

export async function train(input: TrainConfig | Record<string, unknown>, opts: TrainOptions = {}): Promise<RunResult> {
  const ctx = opts.dist && opts.dist.worldSize > 1 ? await DistContext.connect(opts.dist) : null;
  try {
    return await trainRank(input, opts, ctx);
  } finally {
    ctx?.close();
  }
}

async function trainRank(input: TrainConfig | Record<string, unknown>, opts: TrainOptions, ctx: DistContext | null): Promise<RunResult> {
  const lead = !ctx || ctx.isLeader;
  let config: TrainConfig | undefined;
  let runDir: string | undefined;
  if (lead) {
    if (opts.resume) {
      runDir = opts.resume;
      config = readRunConfig(runDir);
    } else {
      config = validateConfig(input);
      runDir = createRunDir(config.outDir, config.name);
    }
  } else if (!opts.resume) {
    validateConfig(input); // the same mistake is reported by every rank, not only rank 0
  }
  if (ctx) {
    // Rank 0 decides the config and the run directory for everyone.
    const shared = await ctx.shareFromLeader(lead ? { config, runDir } : undefined);
    config = validateConfig(shared.config as Record<string, unknown>);
    runDir = shared.runDir as string;
  }
  if (!config || !runDir) throw new Error('internal: no config');
  try {
    return await trainInRunDir(config, runDir, opts, ctx);
  } catch (e) {
    // A run that never finished an epoch leaves nothing behind (it would block --name and --resume).
    if (lead && !opts.resume) discardUnstartedRun(runDir);
    throw e;
  }
}

async function trainInRunDir(config: TrainConfig, runDir: string, opts: TrainOptions, ctx: DistContext | null): Promise<RunResult> {
  const lead = !ctx || ctx.isLeader;
  let startEpoch = 0;
  let history: EpochLog[] = [];
  const log = opts.onLog ?? (() => {});
  // Rank 0 decodes first (filling the cache); the others then read the cache.
  if (ctx && !lead) await ctx.barrier();
  const data = await resolveData(config, log);
  const { train: trainSet, val: valSet } = await loadTrainVal(config, data, opts);
  if (ctx && lead) await ctx.barrier();

  const model = CifakeModel.create(modelSpecOf(config.model), {
    device: rankDevice(config.device, opts.dist),
    seed: config.seed,
    threads: rankThreads(config.threads, opts.dist),
    optimizer: config.optimizer,
    channelsLast: config.channelsLast,
    amp: config.amp,
  });
  const tmpDir = ctx && !lead ? fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-rank-')) : null;
  try {
    if (ctx) await model.attachGroup(ctx.group);
    // Without early stopping the best epoch (by val loss) is still tracked for best.pt.
    let es = new EarlyStopping(config.earlyStopping ?? { monitor: 'val_loss', patience: null });
    if (opts.resume) {
      // Every rank resumes from rank 0's checkpoints (sent through the group: no shared disk needed).
      const last = await leaderCheckpoint(ctx, path.join(runDir, RUN_FILES.last), tmpDir ?? '');
      if (!last) throw new Error(`cannot resume ${runDir}: it has no ${RUN_FILES.last} (no epoch was completed)`);
      const best = await leaderCheckpoint(ctx, path.join(runDir, RUN_FILES.best), tmpDir ?? '');
      if (best) {
        await model.loadWeights(best, false);
        await model.snapshot();
      }
      const meta = (await model.loadWeights(last, true)) as unknown as CheckpointState;
      startEpoch = meta.epoch;
      es = EarlyStopping.fromJSON(meta.earlyStopping);
      if (lead) {
        history = readHistory<EpochLog>(runDir).filter((h) => h.epoch <= startEpoch);
        writeHistory(runDir, history);
      }
      if (ctx) history = await ctx.shareFromLeader(lead ? history : undefined);
      log(`resuming ${runDir} after epoch ${startEpoch}`);
    } else {
      if (lead) {
        writeRunConfig(runDir, config);
        writeRunDataSummary(runDir, { train: trainSet.summary, val: valSet.summary });
      }
      log(`run directory: ${runDir}`);
      // Like DDP: every rank starts from rank 0's initial weights.
      if (ctx) await model.broadcastState(0);
    }
    if (ctx) log(`data-parallel: rank ${ctx.rank} of ${ctx.size}, rendezvous ${ctx.options.masterAddr}:${ctx.options.masterPort}`);
    log(`model: ${config.model.family}, ${model.parameters} parameters, device ${model.description.device}`);

    if (trainSet.set) await model.setData('train', trainSet.set.images, trainSet.set.labels);
    await setShard(model, 'val', valSet, ctx);

    let stopReason: StopReason = 'completed';
    let trainSeconds = history.reduce((s, h) => s + h.seconds, 0);
    const batches = Math.ceil(trainSet.count / config.batchSize);
    if (es.stopped) stopReason = 'early-stopped';
    for (let epoch = startEpoch; epoch < config.epochs && stopReason === 'completed'; epoch++) {
      const lr = lrAtEpoch(config, epoch);
      opts.onEpochStart?.(epoch + 1, config.epochs, batches);
      const r = await trainOneEpoch(model, trainSet, config, epoch, lr, opts);
      if (r.cancelled) throw new TrainingInterrupted(runDir, epoch);
      if (r.nonFinite) throw new NonFiniteLoss(runDir, epoch + 1);
      trainSeconds += r.seconds;
      const val = await evaluate(model, 'val', valSet.labels, config.threshold, ctx);
      const measured = {
        epoch: epoch + 1,
        lr,
        trainLoss: r.loss,
        trainAcc: r.accuracy,
        valLoss: val.loss,
        valAcc: val.metrics.accuracy,
        valAuc: val.metrics.rocAuc,
        seconds: r.seconds,
        imagesPerSec: r.imagesPerSec,
      };
      const monitored = opts.monitorValue
        ? opts.monitorValue(measured)
        : config.earlyStopping?.monitor === 'val_acc'
          ? measured.valAcc
          : measured.valLoss;
      let update = es.update(epoch + 1, monitored);
      if (ctx) {
        // Rank 0's early-stopping state and decision are everyone's: all ranks stop together.
        const shared = await ctx.shareFromLeader(lead ? { update, state: es.toJSON() } : undefined);
        update = shared.update;
        es = EarlyStopping.fromJSON(shared.state);
      }
      const entry: EpochLog = { ...measured, improved: update.improved, bestEpoch: update.bestEpoch ?? epoch + 1 };
      if (ctx) entry.commSeconds = r.commSeconds ?? 0;
      const state: CheckpointState = { epoch: epoch + 1, earlyStopping: es.toJSON() };
      if (update.improved) {
        await model.snapshot();
        if (lead) await model.save(path.join(runDir, RUN_FILES.best), checkpointMeta(config, state, { val: val.metrics }));
      }
      if (lead) await model.save(path.join(runDir, RUN_FILES.last), checkpointMeta(config, state));
      history.push(entry);
      if (lead) writeHistory(runDir, history);
      await opts.onEpochEnd?.(entry);
      if (update.stop) {
        stopReason = 'early-stopped';
        log(`early stopping after epoch ${epoch + 1}: no ${es.monitor} improvement for ${config.earlyStopping?.patience} epochs; best epoch ${update.bestEpoch}`);
      }
    }

    const restoreBest = config.earlyStopping?.restoreBest ?? false;
    const bestEpoch = es.bestEpoch ?? history.at(-1)?.epoch ?? 0;
    if (restoreBest && es.bestEpoch !== null) {
      await model.restore();
      log(`restored the weights of the best epoch (${es.bestEpoch})`);
    }
    const val = await evaluate(model, 'val', valSet.labels, config.threshold, ctx);
    if (lead) writeScores(runDir, 'val', valSet, val.logits);
    await model.dropData('train');
    let test: MetricsReport | null = null;
    const testBar = opts.onDataProgress?.('test');
    const testSet = await loadSplit(data, { ...dataOptions(config), split: 'test', onProgress: testBar })
      .catch((e: Error) => {
        log(`no test evaluation: ${e.message.split('\n')[0]}`);
        return null;
      })
      .finally(() => testBar?.stop?.());
    if (testSet) {
      await setShard(model, 'test', testSet, ctx);
      const t = await evaluate(model, 'test', testSet.labels, config.threshold, ctx);
      if (lead) writeScores(runDir, 'test', testSet, t.logits);
      test = t.metrics;
    }
    const result: RunResult = {
      runDir,
      config,
      history,
      epochsRun: history.length,
      bestEpoch,
      stopReason,
      trainSeconds,
      device: model.description.device,
      parameters: model.parameters,
      worldSize: ctx?.size ?? 1,
      metrics: { val: val.metrics, test },
    };
    const { history: _h, config: _c, ...summary } = result;
    if (lead) writeRunSummary(runDir, summary);
    return result;
  } finally {
    model.dispose();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

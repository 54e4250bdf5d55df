// The fit loop: TS orchestration over the native epoch. Data in, run directory out.
//   train(config) -> load + split data -> hand it to the device once -> per epoch: native train,
//   native predict on val, metrics + early stopping here, checkpoints + history -> final metrics.
// One shape for every mode: the loop talks to a RankSync (src/parallel/sync.ts: a single process,
// or one rank of a c10d job) and a Recorder (recorder.ts: writes the run directory on rank 0 only).
import fs from 'node:fs';
import path from 'node:path';

import { ConfigError, describeModel, describeTraining, lrAtEpoch, modelSpecOf, validateConfig, type TrainConfig } from '../config';
import { loadSplit, type ImageSet, type ProgressCallback } from '../data';
import { bceWithLogits, computeMetrics, type MetricsReport } from '../metrics';
import { CifakeModel, type EpochProgress, type EpochResult } from '../model';
import { loadNative } from '../native';
import { connectRanks, type RankSync } from '../parallel/sync';
import type { DistOptions } from '../parallel/options';
import { resolveModelTarget } from '../pretrained';
import { createRunDir, readRunConfig, resolveCheckpoint, resolveData, RUN_FILES, type RunSummary, type StopReason } from '../run';
import { canonicalJson } from '../util/canonical-json';
import { packageVersion } from '../version';
import { EarlyStopping, type EarlyStoppingState } from './early-stopping';
import { NO_RECORDER, RunRecorder, type Recorder } from './recorder';
import { dataOptions, loadTrainVal, trainOneEpoch, type TrainData } from './train-data';

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
  /** With `ema`: the trained weights' validation loss and accuracy (valLoss / valAcc are the average's). */
  rawValLoss?: number;
  rawValAcc?: number;
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
   * With `resume`: where and how fast the rest runs (CPU threads, device, decoded-data cache), in
   * place of what config.json says; they do not change what is trained.
   */
  resumeRuntime?: Partial<Pick<TrainConfig, 'threads' | 'device' | 'cacheDir'>>;
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

/** One run in progress: what every step of the loop needs. */
interface Fit {
  config: TrainConfig;
  runDir: string;
  opts: TrainOptions;
  sync: RankSync;
  rec: Recorder;
  log: (m: string) => void;
  model: CifakeModel;
}

/** Where the loop starts: epoch 0, or the resumed checkpoint's epoch with its early-stopping state and history. */
interface Start {
  epoch: number;
  es: EarlyStopping;
  history: EpochLog[];
}

/** Logits and metrics of a stored dataset; with ranks, each predicts its shard and all gather. */
async function evaluateSplit(f: Fit, key: string, labels: Uint8Array) {
  const logits = await f.sync.gather(await f.model.predictLogits(key));
  return { logits, loss: bceWithLogits(logits, labels), metrics: computeMetrics(logits, labels, { fromLogits: true, threshold: f.config.threshold }) };
}

export async function train(input: TrainConfig | Record<string, unknown>, opts: TrainOptions = {}): Promise<RunResult> {
  const sync = await connectRanks(opts.dist);
  try {
    if (!sync.isLeader && !opts.resume) validateConfig(input); // the same mistake is reported by every rank, not only rank 0
    // Rank 0 decides the config and the run directory for everyone.
    const decided = await sync.fromLeader(() => {
      if (opts.resume) return { config: resumedConfig(opts), runDir: opts.resume };
      const config = validateConfig(input);
      return { config, runDir: createRunDir(config.outDir, config.name) };
    });
    const config = sync.size > 1 ? validateConfig(decided.config) : decided.config;
    const rec = sync.isLeader ? new RunRecorder(decided.runDir) : NO_RECORDER;
    try {
      return await fit(config, decided.runDir, opts, sync, rec);
    } catch (e) {
      // A run that never finished an epoch leaves nothing behind (it would block --name and --resume).
      if (!opts.resume) rec.discardUnstarted();
      throw e;
    }
  } finally {
    sync.close();
  }
}

/** The resumed run's config.json with the runtime settings the caller gave instead (logged). */
function resumedConfig(opts: TrainOptions): TrainConfig {
  const runDir = opts.resume as string;
  const best = path.join(runDir, RUN_FILES.best);
  if (!fs.existsSync(path.join(runDir, RUN_FILES.last)) && fs.existsSync(best) && CifakeModel.readMeta(best).ensemble)
    throw new Error(`cannot resume ${runDir}: it is an ensemble written by cifake ensemble, not a training run (resume its members' runs instead)`);
  const config = readRunConfig(runDir);
  const changed: string[] = [];
  for (const [k, v] of Object.entries(opts.resumeRuntime ?? {}) as [keyof NonNullable<TrainOptions['resumeRuntime']>, unknown][]) {
    if (v === undefined || v === config[k]) continue;
    changed.push(`${k} ${JSON.stringify(v)} (the run had ${JSON.stringify(config[k])})`);
    (config as Record<string, unknown>)[k] = v;
  }
  if (changed.length) opts.onLog?.(`resume: ${changed.join(', ')}`);
  // checked against this machine (its CPUs) once the runtime settings are in
  return validateConfig(config, { source: path.join(runDir, RUN_FILES.config), forThisMachine: true });
}

async function fit(config: TrainConfig, runDir: string, opts: TrainOptions, sync: RankSync, rec: Recorder): Promise<RunResult> {
  const log = opts.onLog ?? (() => {});
  const init = initCheckpointOf(config, sync, !!opts.resume);
  // Rank 0 decodes first (filling the cache); the others then read the cache.
  const { data, train: trainSet, val: valSet } = await sync.leaderFirst(async () => {
    const dir = await resolveData(config, log);
    try {
      return { data: dir, ...(await loadTrainVal(config, dir, opts)) };
    } catch (e) {
      if (opts.signal?.aborted) throw new Error('interrupted while decoding the training data: no epoch was trained and nothing was kept');
      throw e;
    }
  });
  const model = CifakeModel.create(modelSpecOf(config.model), {
    device: sync.device(config.device),
    seed: config.seed,
    threads: sync.threads(config.threads),
    optimizer: config.optimizer,
    channelsLast: config.channelsLast,
    amp: config.amp,
  });
  const f: Fit = { config, runDir, opts, sync, rec, log, model };
  try {
    const start = opts.resume ? await resume(f) : await begin(f, { train: trainSet.summary, val: valSet.summary }, init);
    const ranks = sync.describe();
    if (ranks) log(ranks);
    log(`model: ${describeModel(config.model)}, ${model.parameters} parameters, device ${model.description.device}`);
    log(`training: ${describeTraining(config)}`);
    if (trainSet.set) await model.setData('train', trainSet.set.images, trainSet.set.labels);
    await sync.setData(model, 'val', valSet);
    const stopReason = await epochs(f, start, trainSet, valSet);
    return await finish(f, start, stopReason, data, valSet);
  } finally {
    model.dispose();
  }
}

/**
 * config.initFrom's checkpoint, checked before any data is decoded: it exists and holds this
 * config's model (rank 0 only; the others get its weights with the initial broadcast).
 */
function initCheckpointOf(config: TrainConfig, sync: RankSync, resuming: boolean): string | null {
  if (!config.initFrom || resuming || !sync.isLeader) return null;
  let checkpoint: string;
  try {
    checkpoint = resolveCheckpoint(resolveModelTarget(config.initFrom));
  } catch (e) {
    throw new ConfigError([{ path: 'initFrom', message: (e as Error).message }]);
  }
  const theirs = CifakeModel.readMeta(checkpoint).spec;
  const ours = modelSpecOf(config.model);
  if (canonicalJson(theirs) !== canonicalJson(ours))
    throw new ConfigError([{ path: 'initFrom', message: `${checkpoint} holds another model (${canonicalJson(theirs)}) than this config's (${canonicalJson(ours)})` }]);
  return checkpoint;
}

async function begin(f: Fit, data: { train: ImageSet['summary']; val: ImageSet['summary'] }, init: string | null): Promise<Start> {
  if (init) {
    await f.model.loadWeights(init, false);
    f.log(`initial weights: ${init}`);
  }
  await f.sync.attach(f.model, true);
  f.rec.begin(f.config, data);
  f.log(`run directory: ${f.runDir}`);
  // Without early stopping the best epoch (by val loss) is still tracked for best.pt.
  return { epoch: 0, es: new EarlyStopping(f.config.earlyStopping ?? { monitor: 'val_loss', patience: null }), history: [] };
}

/** Every rank resumes from rank 0's checkpoints (sent through the group: no shared disk needed). */
async function resume(f: Fit): Promise<Start> {
  await f.sync.attach(f.model, false);
  const last = await f.sync.leaderFile(path.join(f.runDir, RUN_FILES.last));
  if (!last) throw new Error(`cannot resume ${f.runDir}: it has no ${RUN_FILES.last} (no epoch was completed)`);
  const best = await f.sync.leaderFile(path.join(f.runDir, RUN_FILES.best));
  if (best) {
    await f.model.loadWeights(best, false);
    await f.model.snapshot();
  }
  const meta = (await f.model.loadWeights(last, true)) as unknown as CheckpointState;
  const history = await f.sync.fromLeader(() => f.rec.resumeHistory<EpochLog>(meta.epoch));
  f.log(`resuming ${f.runDir} after epoch ${meta.epoch}`);
  return { epoch: meta.epoch, es: EarlyStopping.fromJSON(meta.earlyStopping), history };
}

function monitored(f: Fit, measured: Omit<EpochLog, 'improved' | 'bestEpoch'>): number {
  if (f.opts.monitorValue) return f.opts.monitorValue(measured);
  return f.config.earlyStopping?.monitor === 'val_acc' ? measured.valAcc : measured.valLoss;
}

/** The epoch loop; returns why it ended. Mutates start.es and start.history. */
async function epochs(f: Fit, start: Start, trainSet: TrainData, valSet: ImageSet): Promise<StopReason> {
  const { config, opts } = f;
  if (start.es.stopped) return 'early-stopped';
  const batches = Math.ceil(trainSet.count / config.batchSize);
  for (let epoch = start.epoch; epoch < config.epochs; epoch++) {
    const lr = lrAtEpoch(config, epoch);
    opts.onEpochStart?.(epoch + 1, config.epochs, batches);
    const r = await trainOneEpoch(f.model, trainSet, config, epoch, lr, opts);
    if (r.cancelled) throw new TrainingInterrupted(f.runDir, epoch);
    if (r.nonFinite) throw new NonFiniteLoss(f.runDir, epoch + 1);
    // With ema, validation, the snapshot and best.pt take the average; last.pt keeps the trained
    // weights (with the average beside them) for --resume.
    const raw = config.ema !== null ? await evaluateSplit(f, 'val', valSet.labels) : null;
    if (raw) await f.model.swapEma();
    const val = await evaluateSplit(f, 'val', valSet.labels);
    const measured = {
      epoch: epoch + 1, lr, trainLoss: r.loss, trainAcc: r.accuracy, valLoss: val.loss, valAcc: val.metrics.accuracy, valAuc: val.metrics.rocAuc, seconds: r.seconds, imagesPerSec: r.imagesPerSec,
      ...(raw ? { rawValLoss: raw.loss, rawValAcc: raw.metrics.accuracy } : {}),
    };
    // Rank 0's early-stopping state and decision are everyone's: all ranks stop together.
    const shared = await f.sync.fromLeader(() => ({ update: start.es.update(epoch + 1, monitored(f, measured)), state: start.es.toJSON() }));
    if (!f.sync.isLeader) start.es = EarlyStopping.fromJSON(shared.state);
    const { update } = shared;
    const entry: EpochLog = { ...measured, improved: update.improved, bestEpoch: update.bestEpoch ?? epoch + 1, ...f.sync.epochExtras(r) };
    const state: CheckpointState = { epoch: epoch + 1, earlyStopping: start.es.toJSON() };
    if (update.improved) {
      await f.model.snapshot();
      await f.rec.checkpoint(f.model, 'best', checkpointMeta(config, state, { val: val.metrics }));
    }
    if (raw) await f.model.swapEma();
    await f.rec.checkpoint(f.model, 'last', checkpointMeta(config, state));
    start.history.push(entry);
    f.rec.history(start.history);
    await opts.onEpochEnd?.(entry);
    if (update.stop) {
      f.log(`early stopping after epoch ${epoch + 1}: no ${start.es.monitor} improvement for ${config.earlyStopping?.patience} epochs; best epoch ${update.bestEpoch}`);
      return 'early-stopped';
    }
  }
  return 'completed';
}

/** The final model (best weights restored if asked) on val and test; scores and metrics.json. */
async function finish(f: Fit, start: Start, stopReason: StopReason, data: string, valSet: ImageSet): Promise<RunResult> {
  const { config, model, es, history } = { ...f, ...start };
  if ((config.earlyStopping?.restoreBest ?? false) && es.bestEpoch !== null) {
    await model.restore();
    f.log(`restored the weights of the best epoch (${es.bestEpoch})${config.ema !== null ? ', their moving average' : ''}`);
  } else if (config.ema !== null) {
    await model.swapEma();
    f.log(`final weights: the moving average of the last epoch's (ema ${config.ema})`);
  }
  const val = await evaluateSplit(f, 'val', valSet.labels);
  f.rec.scores('val', valSet, val.logits);
  await model.dropData('train');
  const testBar = f.opts.onDataProgress?.('test');
  const testSet = await loadSplit(data, { ...dataOptions(config), split: 'test', onProgress: testBar, signal: f.opts.signal })
    .catch((e: Error) => {
      f.log(`no test evaluation: ${e.message.split('\n')[0]}`);
      return null;
    })
    .finally(() => testBar?.stop?.());
  let test: MetricsReport | null = null;
  if (testSet) {
    await f.sync.setData(model, 'test', testSet);
    const t = await evaluateSplit(f, 'test', testSet.labels);
    f.rec.scores('test', testSet, t.logits);
    test = t.metrics;
  }
  const summary: RunSummary = {
    runDir: f.runDir,
    epochsRun: history.length,
    bestEpoch: es.bestEpoch ?? history.at(-1)?.epoch ?? 0,
    stopReason,
    trainSeconds: history.reduce((s, h) => s + h.seconds, 0),
    device: model.description.device,
    parameters: model.parameters,
    worldSize: f.sync.size,
    metrics: { val: val.metrics, test },
  };
  f.rec.finish(summary);
  await f.rec.calibrate(f.log);
  return { ...summary, config, history };
}

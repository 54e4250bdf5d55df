// The train and validation data of a run: decoded (or streamed in shards from the cache), split
// stratified and seeded, and one epoch over it (one native call, or one per shard).
import type { TrainConfig } from '../config';
import { openSplit, stratifiedSplit, stratifiedSplitIndices, type ImageSet, type SplitHandle } from '../data';
import type { CifakeModel, EpochProgress, EpochResult } from '../model';
import { robustEpochImages } from '../robustness/augment';
import type { TrainCallbacks, TrainOptions } from './fit';

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
export interface TrainData {
  count: number;
  labels: Uint8Array;
  summary: ImageSet['summary'];
  /** Whole split, handed to the device once. */
  set?: ImageSet;
  /** Sharded: read from the cache per epoch, in a seeded order. */
  handle?: SplitHandle;
  indices?: Uint32Array;
}

export async function loadTrainVal(config: TrainConfig, data: string, cb: TrainCallbacks & { signal?: AbortSignal }): Promise<{ train: TrainData; val: ImageSet }> {
  const bar = cb.onDataProgress?.('train');
  let handle: SplitHandle;
  try {
    handle = await openSplit(data, { ...dataOptions(config), split: 'train', limit: config.limit ?? undefined, seed: config.seed, onProgress: bar, signal: cb.signal });
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
export async function trainOneEpoch(
  model: CifakeModel,
  data: TrainData,
  config: TrainConfig,
  epoch: number,
  lr: number,
  opts: TrainOptions,
): Promise<EpochResult> {
  const base = { batchSize: config.batchSize, seed: config.seed, lr, augment: config.augment, labelSmoothing: config.labelSmoothing, emaDecay: config.ema ?? 0 };
  const call = { signal: opts.signal, onProgress: opts.onBatch ? (p: EpochProgress) => opts.onBatch?.(epoch + 1, p) : undefined };
  const robust = config.robustAugment;
  if (!data.handle || !data.indices) {
    // Robustness augmentation: this epoch's degraded copy replaces the resident train set.
    if (robust && data.set) await model.setData('train', await robustEpochImages(data.set.images, robust, config.seed, epoch), data.set.labels);
    return model.trainEpoch({ ...base, data: 'train', epoch }, call);
  }
  const total: EpochResult = { loss: 0, accuracy: 0, images: 0, batches: 0, seconds: 0, imagesPerSec: 0, cancelled: false, nonFinite: false };
  const shardSize = config.shardSize ?? data.count;
  const shards = Math.ceil(data.count / shardSize);
  let k = 0;
  for await (const shard of data.handle.iterateShards(shardSize, permuted(data.indices, config.seed, epoch))) {
    const images = robust ? await robustEpochImages(shard.images, robust, config.seed, epoch * shards + k) : shard.images;
    await model.setData('train', images, shard.labels);
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

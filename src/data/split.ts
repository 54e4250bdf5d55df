// Seeded, deterministic selections: the validation split carved from train, and `limit` subsets.
//
// Every file gets a pseudo-random key from (seed, file name); a class's files are taken in key
// order. Keys depend only on the name and the seed, so a selection does not change when other
// files are added, removed or fail to decode, and it is the same whether the images come from the
// source or from the cache.
import { DataError } from './errors';
import { CLASS_NAMES, IMAGE_BYTES, ImageSet } from './types';

/** 53-bit hash of a string with a seed (cyrb53), as a float in [0, 2^53). */
export function seededKey(seed: number, name: string): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export function checkSeed(seed: number, what = 'seed'): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new DataError(`${what} must be an integer in [0, 2^32), got ${seed}`);
  return seed;
}

/** Indices (into names) ordered by their seeded key; ties by name. */
export function orderByKey(indices: readonly number[], names: readonly string[], seed: number): number[] {
  const keyed = indices.map((i) => ({ i, k: seededKey(seed, names[i]) }));
  keyed.sort((a, b) => a.k - b.k || (names[a.i] < names[b.i] ? -1 : names[a.i] > names[b.i] ? 1 : a.i - b.i));
  return keyed.map((x) => x.i);
}

/** Indices of at most `limit` items per class, chosen by seeded key, returned in ascending order. */
export function limitIndices(labels: Uint8Array, names: readonly string[], limit: number, seed: number): Uint32Array {
  const out: number[] = [];
  for (let c = 0; c < CLASS_NAMES.length; c++) {
    const idx: number[] = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === c) idx.push(i);
    out.push(...orderByKey(idx, names, seed).slice(0, limit));
  }
  return Uint32Array.from(out.sort((a, b) => a - b));
}

/**
 * Stratified train/validation indices: in each class, round(n * valFraction) items (at least one
 * when valFraction > 0 and the class has two or more) go to validation. Disjoint, ascending order,
 * deterministic for a seed.
 */
export function stratifiedSplitIndices(labels: Uint8Array, names: readonly string[], valFraction: number, seed: number): { train: Uint32Array; val: Uint32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new DataError(`valFraction must be in [0, 1), got ${valFraction}`);
  checkSeed(seed);
  if (names.length !== labels.length) throw new DataError(`stratifiedSplit: ${labels.length} labels but ${names.length} file names`);
  const train: number[] = [];
  const val: number[] = [];
  for (let c = 0; c < CLASS_NAMES.length; c++) {
    const idx: number[] = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === c) idx.push(i);
    let nVal = Math.round(idx.length * valFraction);
    if (valFraction > 0 && nVal === 0 && idx.length >= 2) nVal = 1;
    if (nVal >= idx.length && idx.length > 0) nVal = idx.length - 1;
    const ordered = orderByKey(idx, names, seed);
    val.push(...ordered.slice(0, nVal));
    train.push(...ordered.slice(nVal));
  }
  const asc = (a: number, b: number): number => a - b;
  return { train: Uint32Array.from(train.sort(asc)), val: Uint32Array.from(val.sort(asc)) };
}

/** The images of `set` at `indices` (copied), with a summary updated to match. */
export function subsetImageSet(set: ImageSet, indices: Uint32Array, subset?: 'train' | 'val'): ImageSet {
  const images = new Uint8Array(indices.length * IMAGE_BYTES);
  const labels = new Uint8Array(indices.length);
  const files: string[] = new Array(indices.length);
  const counts = { FAKE: 0, REAL: 0 };
  indices.forEach((src, k) => {
    if (src >= set.count) throw new DataError(`subset index ${src} out of range (set has ${set.count} images)`);
    images.set(set.images.subarray(src * IMAGE_BYTES, (src + 1) * IMAGE_BYTES), k * IMAGE_BYTES);
    labels[k] = set.labels[src];
    files[k] = set.files[src];
    counts[CLASS_NAMES[set.labels[src]]]++;
  });
  const summary = { ...set.summary, count: indices.length, counts };
  if (subset !== undefined) summary.subset = subset;
  return { images, labels, files, classNames: ['FAKE', 'REAL'], count: indices.length, summary };
}

/**
 * Carves a stratified validation set out of a (train) set: same class ratio, disjoint,
 * deterministic for a seed. Never use it on the test split.
 */
export function stratifiedSplit(set: ImageSet, valFraction: number, seed: number): { train: ImageSet; val: ImageSet } {
  const { train, val } = stratifiedSplitIndices(set.labels, set.files, valFraction, seed);
  return { train: subsetImageSet(set, train, 'train'), val: subsetImageSet(set, val, 'val') };
}

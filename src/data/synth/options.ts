// Options, layout and on-disk marker of the synthetic demo set (see index.ts for what it is).

/** Bump when the image model or layout changes (invalidates cached sets). */
export const SYNTH_VERSION = 1;
export const SYNTH_MARKER = '.cifake-synth.json';
export const SYNTH_README = 'SYNTHETIC.md';
export const MARKER_FORMAT = 'cifake-synth';
export const README_SIGNATURE = '<!-- cifake-synth demo data set -->';
export const SIZE = 32;

export type SynthSplit = 'train' | 'test';
export type SynthClass = 'REAL' | 'FAKE';
export type SynthCounts = Record<SynthSplit, Record<SynthClass, number>>;

export interface SynthOptions {
  /** Images per class in train/ (default 2000). */
  trainPerClass?: number;
  /** Images per class in test/ (default 500). */
  testPerClass?: number;
  /** PRNG seed, integer in [0, 2^32) (default 1). */
  seed?: number;
  /** JPEG quality 1-100 (default 75, as CIFAKE). */
  quality?: number;
  /** Called after each written image. */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthResult {
  /** Absolute path of the generated set. */
  root: string;
  counts: SynthCounts;
}

/** Contents of `<root>/.cifake-synth.json`. */
export interface SynthMarker {
  format: typeof MARKER_FORMAT;
  version: number;
  seed: number;
  quality: number;
  size: number;
  counts: SynthCounts;
  /** Total JPEG bytes per split/class, to detect truncated files. */
  bytes: SynthCounts;
  encoder: string;
  note: string;
}

export const SPLITS: readonly SynthSplit[] = ['train', 'test'];
export const CLASSES: readonly SynthClass[] = ['REAL', 'FAKE'];

export interface ResolvedOptions {
  trainPerClass: number;
  testPerClass: number;
  seed: number;
  quality: number;
}

export function resolveOptions(opts: SynthOptions = {}): ResolvedOptions {
  const r: ResolvedOptions = {
    trainPerClass: opts.trainPerClass ?? 2000,
    testPerClass: opts.testPerClass ?? 500,
    seed: opts.seed ?? 1,
    quality: opts.quality ?? 75,
  };
  for (const k of ['trainPerClass', 'testPerClass'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) {
      throw new RangeError(`synthesize: ${k} must be a non-negative integer, got ${r[k]}`);
    }
  }
  if (!Number.isInteger(r.seed) || r.seed < 0 || r.seed > 0xffffffff) {
    throw new RangeError(`synthesize: seed must be an integer in [0, 2^32), got ${r.seed}`);
  }
  if (!Number.isInteger(r.quality) || r.quality < 1 || r.quality > 100) {
    throw new RangeError(`synthesize: quality must be an integer in [1, 100], got ${r.quality}`);
  }
  return r;
}

export function countsOf(o: ResolvedOptions): SynthCounts {
  return {
    train: { REAL: o.trainPerClass, FAKE: o.trainPerClass },
    test: { REAL: o.testPerClass, FAKE: o.testPerClass },
  };
}

/** File name of image `index` (same in every class directory). */
export function synthFileName(index: number): string {
  return `synth_${String(index).padStart(5, '0')}.jpg`;
}

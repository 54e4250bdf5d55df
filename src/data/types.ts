// Shared types and constants of the data pipeline.

/** Side of the square images the models take (CIFAKE: 32x32). */
export const IMAGE_SIZE = 32;
/** Bytes of one decoded image: 3 planes (R, G, B) of IMAGE_SIZE x IMAGE_SIZE uint8, CHW. */
export const IMAGE_BYTES = 3 * IMAGE_SIZE * IMAGE_SIZE;
/** Class names, indexed by label: FAKE = 0, REAL = 1. */
export const CLASS_NAMES = ['FAKE', 'REAL'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];
export type Label = 0 | 1;

/** Maps class folder names (case-insensitive) to labels. */
export type ClassMap = Record<string, Label>;
export const DEFAULT_CLASS_MAP: Readonly<ClassMap> = Object.freeze({ FAKE: 0, REAL: 1 });

export interface ProgressInfo {
  /** Files processed so far (decoded or skipped). */
  done: number;
  total: number;
  /** Average rate since the start of this load. */
  imagesPerSec: number;
}
export type ProgressCallback = (p: ProgressInfo) => void;

export interface SkippedFile {
  /** Where the file is: `/abs/data.zip:archive/train/REAL/x.jpg` or `/abs/folder/train/REAL/x.jpg`. */
  file: string;
  reason: string;
}

export interface DatasetSummary {
  /** Absolute path of the zip or folder. */
  source: string;
  sourceKind: 'zip' | 'folder';
  split: string;
  /** Folder of the split inside the source, e.g. `archive/train`. */
  splitPath: string;
  /** Images in the set. */
  count: number;
  counts: Record<ClassName, number>;
  /** Folder names (inside the split) that fed each class. */
  classFolders: Record<ClassName, string[]>;
  /** Files listed in the split (before limit / skipping). */
  listed: number;
  /** Corrupt, truncated, empty or non-image files that were left out (up to 50 are named). */
  skipped: { count: number; files: SkippedFile[] };
  /** Files in the split folder itself (not in a class folder), which are not used (up to 50 named). */
  ignored: { count: number; files: string[] };
  /** How the images were decoded (when they were decoded in this run or when the cache was written). */
  decoded: { native: number; sharp: number; resized: number };
  resize: boolean;
  limit: number | null;
  seed: number;
  cache: {
    /** The binary cache file, or null when caching is off. */
    path: string | null;
    /** true when the images came from the cache. */
    hit: boolean;
    /** true when this run wrote the cache. */
    written: boolean;
    /** Why the existing cache was not used (rebuilt), or why writing it failed. */
    note?: string;
  };
  /** Wall time of the load, seconds. */
  seconds: number;
  /** For subsets made by stratifiedSplit. */
  subset?: 'train' | 'val';
}

export interface ImageSet {
  /** count x 3 x 32 x 32 uint8, CHW per image (all R, then G, then B). */
  images: Uint8Array;
  /** count labels, 0 = FAKE, 1 = REAL. */
  labels: Uint8Array;
  /** Name of each image relative to the data root, e.g. `train/REAL/0000 (10).jpg`. */
  files: string[];
  classNames: ['FAKE', 'REAL'];
  count: number;
  summary: DatasetSummary;
}

/** Result of the addon's decodeJpegBatch: N images, a status and a message per input. */
export interface JpegBatchResult {
  images: Uint8Array;
  status: Int32Array;
  messages: string[];
}

/**
 * What the native addon exports for JPEG decoding (native/jpeg_binding.cc). Declared here, on the
 * ground floor, so that src/native.ts can type it without importing the decoder (no import circle).
 */
export interface JpegBinding {
  /** With `out`, the images are written there (and returned as `images`). */
  decodeJpegBatch(blob: Uint8Array, offsets: Uint32Array, size: number, out?: Uint8Array): Promise<JpegBatchResult>;
}

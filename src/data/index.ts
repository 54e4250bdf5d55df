// The data pipeline's public surface: loading splits (load.ts, on the ingest engine in ingest.ts),
// decoding images (decode.ts), splits and subsets (split.ts), the cache (cache.ts), progress bars.
// Only re-exports live here.
export * from './types';
export { DataError, EXPECTED_LAYOUT } from './errors';
export { decodeImages, DEFAULT_MAX_PIXELS, jpegBinding, PREDICT_MAX_PIXELS, setJpegBinding } from './decode';
export type { DecodeImagesOptions, DecodedImages } from './decode';
export { stratifiedSplit, stratifiedSplitIndices, subsetImageSet, limitIndices, seededKey } from './split';
export { defaultCacheDir, CACHE_VERSION } from './cache';
export type { CacheHeader, Shard } from './cache';
export { cacheInfo, clearCache } from './cache-admin';
export type { CacheEntryInfo } from './cache-admin';
export { progressBar } from './progress';
export type { ProgressBar } from './progress';
export { loadSplit, openSplit, iterateShards, prepare } from './load';
export type { SplitHandle, PrepareOptions } from './load';
export type { LoadOptions } from './ingest';
export { formatSummary } from './summary';

// Loading a split: from the cache when it is valid, else decoded by the ingest engine (and cached).
//
//   const train = await loadSplit('cifake.zip', { split: 'train', onProgress: progressBar('train') });
//   const { train: tr, val } = stratifiedSplit(train, 0.1, seed);
//
// openSplit streams a cached split in shards (bounded memory); prepare caches splits ahead of training.
import {
  CacheExpectation,
  CacheHeader,
  CacheMeta,
  cacheBasePath,
  loadCache,
  loadCacheMeta,
  readCacheShards,
  Shard,
} from './cache';
import { DataError, EXPECTED_LAYOUT } from './errors';
import { cacheOptions, ingestAll, ingestLimited, ingestStats, LoadOptions, locate, Located, Normalized, normalize, SourceContext } from './ingest';
import { listSplits, normalizeClassMap } from './layout';
import { limitIndices, subsetImageSet } from './split';
import { summarize, summaryFromHeader } from './summary';
import { DatasetSummary, IMAGE_BYTES, ImageSet, SkippedFile } from './types';

async function expectation(ctx: SourceContext, o: Normalized): Promise<{ loc: Located | null; exp: CacheExpectation; basePath: string | null }> {
  let loc: Located | null = null;
  let fingerprint: string;
  if (ctx.kind === 'zip') {
    fingerprint = ctx.quickZipFingerprint();
  } else {
    loc = await locate(ctx, o);
    fingerprint = loc.fingerprint;
  }
  const options = cacheOptions(o);
  const basePath = o.cacheDir === null ? null : cacheBasePath(o.cacheDir, ctx.path, o.split, options);
  return { loc, exp: { sourcePath: ctx.path, fingerprint, split: o.split, options }, basePath };
}

/**
 * A strict load fails on a cache that recorded skipped files, as a strict decode fails on the
 * first bad file: the cache key does not include strict, so a non-strict run may have written it.
 */
function checkStrictCache(h: CacheHeader, binPath: string, o: Normalized): void {
  if (!o.strict || h.skipped.count === 0) return;
  const listed = h.skipped.files;
  const first = listed[0] as SkippedFile | undefined;
  const names = listed.slice(0, 5).map((f) => `${f.file}: ${f.reason}`);
  if (h.skipped.count > names.length) names.push(`... and ${h.skipped.count - names.length} more`);
  throw new DataError(
    `${first?.file ?? h.source.path}: cannot decode image: ${first?.reason ?? 'unreadable'} (strict mode; the cache ${binPath} ` +
      `records ${h.skipped.count} file${h.skipped.count === 1 ? '' : 's'} skipped when it was written: ${names.join('; ')})`,
    first?.file ?? binPath,
  );
}

function cacheMissNote(reason: string): string | undefined {
  return reason === 'no cache yet' ? undefined : `cache rebuilt: ${reason}`;
}

/**
 * Loads a split: from the cache when it is valid, else decodes the source (and writes the cache,
 * unless limit is set or cacheDir is false).
 */
export async function loadSplit(data: string, opts: LoadOptions): Promise<ImageSet> {
  const o = normalize(opts);
  o.signal?.throwIfAborted();
  const ctx = await SourceContext.create(data);
  const t0 = process.hrtime.bigint();
  const seconds = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  try {
    const { loc: located, exp, basePath } = await expectation(ctx, o);
    let note: string | undefined;
    if (basePath !== null) {
      const c = await loadCache(basePath, exp);
      if ('header' in c) {
        checkStrictCache(c.header, c.binPath, o);
        let set: ImageSet = {
          images: c.images,
          labels: c.labels,
          files: c.files,
          classNames: ['FAKE', 'REAL'],
          count: c.header.count,
          summary: summarize({
            ctx,
            o,
            ...summaryFromHeader(c.header),
            labels: c.labels,
            cache: { path: c.binPath, hit: true, written: false },
            seconds: 0,
          }),
        };
        if (o.limit !== null) set = subsetImageSet(set, limitIndices(c.labels, c.files, o.limit, o.seed));
        set.summary.seconds = seconds();
        o.onProgress?.({ done: set.count, total: set.count, imagesPerSec: set.count / Math.max(set.summary.seconds, 1e-9) });
        return set;
      }
      note = cacheMissNote(c.reason);
    }
    const loc = located ?? (await locate(ctx, o));
    const r = o.limit !== null ? await ingestLimited(loc, o, o.limit) : await ingestAll(loc, o, basePath, true, false);
    const written = r.header !== null;
    const cacheNote = r.cacheNote ?? note;
    const summary = summarize({
      ctx,
      o,
      ...ingestStats(loc, r.tally),
      labels: r.labels,
      cache: { path: basePath === null || o.limit !== null ? null : `${basePath}.bin`, hit: false, written, ...(cacheNote !== undefined ? { note: cacheNote } : {}) },
      seconds: seconds(),
    });
    return { images: r.images as Uint8Array, labels: r.labels, files: r.files, classNames: ['FAKE', 'REAL'], count: r.labels.length, summary };
  } finally {
    await ctx.close();
  }
}

/** A split on disk (or in memory), for streaming it in shards when it does not fit a memory budget. */
export interface SplitHandle {
  count: number;
  labels: Uint8Array;
  files: string[];
  summary: DatasetSummary;
  /** Bytes all images take in memory (count x 3072). */
  imageBytes: number;
  /** The whole split in memory. */
  load(): Promise<ImageSet>;
  /**
   * The images in shards of at most shardSize, read from the cache file at offsets (bounded memory).
   * With indices (e.g. from stratifiedSplitIndices), only those images, in that order.
   */
  iterateShards(shardSize: number, indices?: Uint32Array): AsyncGenerator<Shard>;
}

function memoryHandle(set: ImageSet): SplitHandle {
  return {
    count: set.count,
    labels: set.labels,
    files: set.files,
    summary: set.summary,
    imageBytes: set.count * IMAGE_BYTES,
    load: async () => set,
    async *iterateShards(shardSize: number, indices?: Uint32Array): AsyncGenerator<Shard> {
      if (!Number.isInteger(shardSize) || shardSize < 1) throw new DataError(`shardSize must be a positive integer, got ${shardSize}`);
      const total = indices?.length ?? set.count;
      for (let start = 0; start < total; start += shardSize) {
        const idx = indices?.subarray(start, start + shardSize) ?? Uint32Array.from({ length: Math.min(shardSize, total - start) }, (_, k) => start + k);
        const sub = subsetImageSet(set, idx);
        yield { images: sub.images, labels: sub.labels, start, count: sub.count };
      }
    },
  };
}

/**
 * Makes sure the split is cached (decoding it with bounded memory if needed) and returns a handle
 * that streams it from the cache file. With limit or cacheDir: false the split is loaded in memory.
 */
export async function openSplit(data: string, opts: LoadOptions): Promise<SplitHandle> {
  const o = normalize(opts);
  if (o.cacheDir === null || o.limit !== null) return memoryHandle(await loadSplit(data, opts));
  const ctx = await SourceContext.create(data);
  try {
    return await openCachedSplit(ctx, o);
  } finally {
    await ctx.close();
  }
}

/** openSplit on an open source (cacheDir set, no limit). Leaves the source open. */
async function openCachedSplit(ctx: SourceContext, o: Normalized): Promise<SplitHandle> {
  o.signal?.throwIfAborted();
  const t0 = process.hrtime.bigint();
  const seconds = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  const { loc: located, exp, basePath } = await expectation(ctx, o);
  const base = basePath as string;
  const cached = await loadCacheMeta(base, exp);
  let m: CacheMeta;
  let note: string | undefined;
  const hit = 'header' in cached;
  if ('header' in cached) {
    checkStrictCache(cached.header, cached.binPath, o);
    m = cached;
  } else {
    note = cacheMissNote(cached.reason);
    const loc = located ?? (await locate(ctx, o));
    const r = await ingestAll(loc, o, base, false, true);
    if (r.header === null) throw new DataError(`the cache could not be written: ${r.cacheNote ?? base}`, `${base}.bin`);
    m = { header: r.header, labels: r.labels, files: r.files, binPath: `${base}.bin` };
  }
  const summary = summarize({
    ctx,
    o,
    ...summaryFromHeader(m.header),
    labels: m.labels,
    cache: { path: m.binPath, hit, written: !hit, ...(note !== undefined ? { note } : {}) },
    seconds: seconds(),
  });
  if (hit) o.onProgress?.({ done: m.header.count, total: m.header.count, imagesPerSec: m.header.count / Math.max(summary.seconds, 1e-9) });
  const fingerprint = m.header.source.fingerprint;
  return {
    count: m.header.count,
    labels: m.labels,
    files: m.files,
    summary,
    imageBytes: m.header.count * IMAGE_BYTES,
    load: async () => {
      const c = await loadCache(base, { ...exp, fingerprint });
      if (!('header' in c)) throw new DataError(`cache ${m.binPath} changed or became unusable: ${c.reason}`, m.binPath);
      return { images: c.images, labels: c.labels, files: c.files, classNames: ['FAKE', 'REAL'], count: c.header.count, summary };
    },
    iterateShards: (shardSize: number, indices?: Uint32Array) => readCacheShards(m.binPath, m.labels, shardSize, indices),
  };
}

/**
 * Streams a split from its cache in shards of at most shardSize images (bounded memory), building
 * the cache first if needed. Shorthand for (await openSplit(data, opts)).iterateShards(...).
 */
export async function* iterateShards(data: string, opts: LoadOptions & { shardSize: number; indices?: Uint32Array }): AsyncGenerator<Shard> {
  const handle = await openSplit(data, opts);
  yield* handle.iterateShards(opts.shardSize, opts.indices);
}

export interface PrepareOptions extends Omit<LoadOptions, 'split' | 'limit'> {
  /** Splits to prepare; default every split folder found (e.g. train and test). */
  splits?: string[];
}

/** Decodes and caches splits ahead of training (`cifake data prepare`); returns their summaries. */
export async function prepare(data: string, opts: PrepareOptions = {}): Promise<DatasetSummary[]> {
  if (opts.cacheDir === false) throw new DataError('prepare writes the cache: cacheDir must not be false');
  const ctx = await SourceContext.create(data); // opened once for all splits
  try {
    let splits = opts.splits;
    if (splits === undefined || splits.length === 0) {
      splits = (await listSplits(await ctx.open(), normalizeClassMap(opts.classMap))).splits;
      if (splits.length === 0) throw new DataError(`no split folders with class folders found in ${ctx.path}.\n${EXPECTED_LAYOUT}`, ctx.path);
    }
    const out: DatasetSummary[] = [];
    for (const split of splits) out.push((await openCachedSplit(ctx, normalize({ ...opts, split }))).summary);
    return out;
  } finally {
    await ctx.close();
  }
}

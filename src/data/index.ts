// Data pipeline: CIFAKE zip or folder -> decoded split (N x 3 x 32 x 32 uint8 CHW + labels), cached.
//
//   const train = await loadSplit('cifake.zip', { split: 'train', onProgress: progressBar('train') });
//   const { train: tr, val } = stratifiedSplit(train, 0.1, seed);
//
// Layout: <split>/<class>/<images> in a zip or folder, optionally inside one wrapper folder
// (Kaggle's archive/). Class folders map to labels with classMap (default FAKE -> 0, REAL -> 1,
// case-insensitive). Images are ordered by label, then by path.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CacheExpectation,
  CacheHeader,
  CacheHeaderFields,
  CacheMeta,
  CacheOptions,
  cacheBasePath,
  CacheWriter,
  loadCache,
  loadCacheMeta,
  readCacheShards,
  resolveCacheDir,
  Shard,
} from './cache';
import { checkMaxPixels, decodeBatch, DEFAULT_MAX_PIXELS, DecodeResult, DecodeScratch } from './decode';
import { DataError, errorMessage, EXPECTED_LAYOUT } from './errors';
import { listSplits, normalizeClassMap, NormalizedClassMap, resolveSplit, SplitLayout } from './layout';
import { checkSeed, limitIndices, orderByKey, subsetImageSet } from './split';
import { openSource } from './open';
import { compareStrings, DataSource, ReadArena, SourceFile } from './source';
import { CLASS_NAMES, ClassMap, ClassName, DatasetSummary, IMAGE_BYTES, IMAGE_SIZE, ImageSet, Label, ProgressCallback, SkippedFile } from './types';
import { zipFingerprint } from './zip';

export * from './types';
export { DataError, EXPECTED_LAYOUT } from './errors';
export { decodeImages, DEFAULT_MAX_PIXELS, jpegBinding, PREDICT_MAX_PIXELS, setJpegBinding } from './decode';
export type { DecodeImagesOptions, DecodedImages, JpegBinding } from './decode';
export { stratifiedSplit, stratifiedSplitIndices, subsetImageSet, limitIndices, seededKey } from './split';
export { cacheInfo, clearCache, defaultCacheDir, CACHE_VERSION } from './cache';
export type { CacheEntryInfo, CacheHeader, Shard } from './cache';
export { progressBar } from './progress';
export type { ProgressBar } from './progress';

export interface LoadOptions {
  /** Split folder to load, e.g. 'train' or 'test' (case-insensitive). */
  split: string;
  /** Resize images that are not 32x32 (bilinear, sharp kernel 'linear', aspect ratio not kept). Default false: they are errors. */
  resize?: boolean;
  /** Fail on the first corrupt / non-image file instead of skipping it. Default false. */
  strict?: boolean;
  /** Class folder name -> label (case-insensitive). Default { FAKE: 0, REAL: 1 }. */
  classMap?: ClassMap;
  /** Cache folder; false disables caching. Default CIFAKE_CACHE_DIR, else $XDG_CACHE_HOME/cifake-torch, else ~/.cache/cifake-torch. */
  cacheDir?: string | false;
  /** At most this many images per class: a seeded subset, the same with or without cache. */
  limit?: number;
  /** Seed of the limit subset. Default 0. */
  seed?: number;
  /**
   * Files whose image header declares more pixels (width x height) are skipped undecoded (strict:
   * an error), before any pixel is decoded. Default DEFAULT_MAX_PIXELS (8192 x 8192).
   */
  maxPixels?: number;
  onProgress?: ProgressCallback;
  /** Aborting stops the decode within a batch of files; the promise rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal;
}

/** Files decoded per batch (per pair of native calls); an abort stops within one batch. */
export const BATCH = 2048;
/** Batches read ahead of the one being consumed. */
const READ_AHEAD = 3;
const MAX_LISTED = 50;

interface Normalized {
  split: string;
  resize: boolean;
  strict: boolean;
  classMap: NormalizedClassMap;
  cacheDir: string | null;
  limit: number | null;
  seed: number;
  maxPixels: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

function normalize(opts: LoadOptions): Normalized {
  if (typeof opts !== 'object' || opts === null) throw new DataError('load options are required ({ split: "train", ... })');
  if (typeof opts.split !== 'string' || opts.split === '') throw new DataError('options.split must be a non-empty string such as "train" or "test"');
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new DataError(`options.limit must be a positive integer, got ${opts.limit}`);
  if (opts.cacheDir !== undefined && opts.cacheDir !== false && typeof opts.cacheDir !== 'string') throw new DataError('options.cacheDir must be a path or false');
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new DataError('options.signal must be an AbortSignal');
  return {
    split: opts.split,
    resize: opts.resize === true,
    strict: opts.strict === true,
    classMap: normalizeClassMap(opts.classMap),
    cacheDir: resolveCacheDir(opts.cacheDir),
    limit: opts.limit ?? null,
    seed: checkSeed(opts.seed ?? 0, 'options.seed'),
    maxPixels: checkMaxPixels(opts.maxPixels, DEFAULT_MAX_PIXELS, 'options.maxPixels'),
    onProgress: opts.onProgress,
    signal: opts.signal,
  };
}

function cacheOptions(o: Normalized): CacheOptions {
  // maxPixels changes which files are skipped; it joins the key only when not the default (older keys stay valid).
  return { resize: o.resize, size: IMAGE_SIZE, classMap: o.classMap, ...(o.maxPixels !== DEFAULT_MAX_PIXELS ? { maxPixels: o.maxPixels } : {}) };
}

/** A zip or folder, opened lazily (a cache hit on a zip needs only its size and mtime). */
class SourceContext {
  private opened: Promise<DataSource> | null = null;
  private constructor(
    readonly path: string,
    readonly kind: 'zip' | 'folder',
    private readonly stat: fs.Stats,
  ) {}

  static async create(data: string): Promise<SourceContext> {
    if (typeof data !== 'string' || data === '') throw new DataError('data must be the path of a CIFAKE zip or folder');
    const abs = path.resolve(data);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new DataError(code === 'ENOENT' ? `data not found: ${abs} (expected a CIFAKE zip or a folder)` : `cannot read ${abs}: ${errorMessage(e)}`, abs);
    }
    if (!st.isDirectory() && !st.isFile()) throw new DataError(`${abs} is neither a zip file nor a folder`, abs);
    return new SourceContext(abs, st.isDirectory() ? 'folder' : 'zip', st);
  }

  open(): Promise<DataSource> {
    if (this.opened === null) this.opened = openSource(this.path);
    return this.opened;
  }

  /** Fingerprint without opening a zip. For folders it walks the split (layout needed). */
  quickZipFingerprint(): string {
    return zipFingerprint(this.stat);
  }

  async close(): Promise<void> {
    if (this.opened !== null) {
      const s = await this.opened.catch(() => null);
      this.opened = null;
      await s?.close();
    }
  }
}

interface Located {
  layout: SplitLayout;
  source: DataSource;
  fingerprint: string;
}

async function locate(ctx: SourceContext, o: Normalized): Promise<Located> {
  const source = await ctx.open();
  const layout = await resolveSplit(source, o.split, o.classMap);
  return { layout, source, fingerprint: source.fingerprint(layout.allFiles) };
}

interface Entry {
  file: SourceFile;
  label: Label;
  /** Path relative to the data root, e.g. 'train/REAL/x.jpg'. */
  name: string;
}

function entriesOf(layout: SplitLayout): Entry[] {
  const cut = layout.root === '' ? 0 : layout.root.length + 1;
  const entries: Entry[] = [];
  for (const c of layout.classes) for (const f of c.files) entries.push({ file: f, label: c.label, name: f.path.slice(cut) });
  entries.sort((a, b) => a.label - b.label || compareStrings(a.name, b.name));
  return entries;
}

function classFolders(layout: SplitLayout): Record<ClassName, string[]> {
  const out: Record<ClassName, string[]> = { FAKE: [], REAL: [] };
  for (const c of layout.classes) out[CLASS_NAMES[c.label]].push(c.folder);
  return out;
}

class Progress {
  private readonly t0 = process.hrtime.bigint();
  done = 0;
  constructor(
    readonly total: number,
    private readonly cb?: ProgressCallback,
  ) {
    this.report();
  }
  add(n: number): void {
    this.done += n;
    this.report();
  }
  seconds(): number {
    return Number(process.hrtime.bigint() - this.t0) / 1e9;
  }
  private report(): void {
    if (this.cb === undefined) return;
    const s = this.seconds();
    this.cb({ done: this.done, total: this.total, imagesPerSec: s > 0 ? this.done / s : 0 });
  }
}

interface Tally {
  skipped: SkippedFile[];
  skippedCount: number;
  native: number;
  sharp: number;
  resized: number;
}

function newTally(): Tally {
  return { skipped: [], skippedCount: 0, native: 0, sharp: 0, resized: 0 };
}

/** Applies the skip / strict / wrong-size policy to one decode result; returns true for a usable image. */
function judge(r: DecodeResult, e: Entry, source: DataSource, o: Normalized, tally: Tally): boolean {
  if (r.status === 'ok') {
    if (r.via === 'native') tally.native++;
    else tally.sharp++;
    if (r.resized) tally.resized++;
    return true;
  }
  const where = source.display(e.file.path);
  if (r.status === 'wrong-size') {
    throw new DataError(`${where}: ${r.message}; pass resize: true (CLI: --resize) to resize images bilinearly to ${IMAGE_SIZE}x${IMAGE_SIZE}`, where);
  }
  if (o.strict) throw new DataError(`${where}: cannot decode image: ${r.message} (strict mode)`, where);
  tally.skippedCount++;
  if (tally.skipped.length < MAX_LISTED) tally.skipped.push({ file: where, reason: r.message });
  return false;
}

interface DecodeInOrderOptions {
  resize: boolean;
  maxPixels: number;
  /** Checked before each batch is decoded and consumed (and per file on the sharp path). */
  signal?: AbortSignal;
  /** Output slot for batch k (exactly `length` x IMAGE_BYTES bytes); default a new array per batch. */
  outFor?: (k: number, length: number) => Uint8Array;
  /** outFor reuses buffers in a ring of this size: decoding batch k waits until batch k - ring is consumed. */
  ring?: number;
}

function decodeOptions(o: Normalized): DecodeInOrderOptions {
  return { resize: o.resize, maxPixels: o.maxPixels, signal: o.signal };
}

type Consume = (k: number, batch: readonly Entry[], images: Uint8Array, results: DecodeResult[]) => Promise<void> | void;

/**
 * Reads and decodes entries in order, BATCH at a time, and hands each batch to `consume` in order.
 * Reads run READ_AHEAD batches ahead (into reused arenas); batch k + 1 is decoded while batch k is
 * consumed. Decodes are serialized (each one already uses both cores). On an abort (or any error)
 * no further batch is decoded, and the work in flight settles before this rejects.
 */
async function decodeInOrder(source: DataSource, entries: readonly Entry[], opts: DecodeInOrderOptions, consume: Consume): Promise<void> {
  const { signal } = opts;
  signal?.throwIfAborted();
  let stopped = false;
  const nBatches = Math.ceil(entries.length / BATCH);
  const arenas = Array.from({ length: READ_AHEAD + 1 }, () => new ReadArena());
  const scratch = new DecodeScratch();
  const consumed: Array<{ promise: Promise<void>; resolve: () => void }> = [];
  const consumedSignal = (k: number): { promise: Promise<void>; resolve: () => void } => {
    if (consumed[k] === undefined) {
      let resolve: () => void = () => undefined;
      const promise = new Promise<void>((r) => (resolve = r));
      consumed[k] = { promise, resolve };
    }
    return consumed[k];
  };
  let decodeChain: Promise<unknown> = Promise.resolve();
  const start = (k: number): Promise<{ images: Uint8Array; results: DecodeResult[] }> => {
    const batch = entries.slice(k * BATCH, (k + 1) * BATCH);
    // Arena k % (READ_AHEAD + 1) was last used by batch k - READ_AHEAD - 1, decoded by now.
    const arena = arenas[k % arenas.length];
    arena.reset();
    const read = source.read(
      batch.map((e) => e.file),
      arena,
    );
    const gate = opts.ring !== undefined && k >= opts.ring ? consumedSignal(k - opts.ring).promise : undefined;
    const decoded = Promise.all([read, decodeChain, gate]).then(([bufs]) => {
      if (stopped) throw new Error('decode stopped'); // never seen: only settled in the finally below
      signal?.throwIfAborted();
      return decodeBatch(bufs, { resize: opts.resize, maxPixels: opts.maxPixels, signal }, { out: opts.outFor?.(k, batch.length), scratch });
    });
    decodeChain = decoded.then(
      () => undefined,
      () => undefined,
    );
    decoded.catch(() => undefined); // consumed in order below; avoid unhandled-rejection noise meanwhile
    return decoded;
  };
  const pending: Array<Promise<{ images: Uint8Array; results: DecodeResult[] }>> = [];
  try {
    for (let k = 0; k < Math.min(READ_AHEAD, nBatches); k++) pending.push(start(k));
    for (let k = 0; k < nBatches; k++) {
      const { images, results } = await pending[k];
      signal?.throwIfAborted();
      if (k + READ_AHEAD < nBatches) pending.push(start(k + READ_AHEAD));
      await consume(k, entries.slice(k * BATCH, (k + 1) * BATCH), images, results);
      consumedSignal(k).resolve();
    }
  } finally {
    // Early exit: release the gated batches (they stop before decoding) and let reads settle
    // before the caller closes the source.
    stopped = true;
    for (const c of consumed) c?.resolve();
    await Promise.allSettled(pending);
  }
}

interface IngestResult {
  /** count x IMAGE_BYTES (null when keepImages is false). */
  images: Uint8Array | null;
  labels: Uint8Array;
  files: string[];
  tally: Tally;
  header: CacheHeader | null;
  cacheNote?: string;
}

/** Decodes a whole split; writes the cache when basePath is given. */
async function ingestAll(
  loc: Located,
  o: Normalized,
  basePath: string | null,
  keepImages: boolean,
  mustCache: boolean,
): Promise<IngestResult> {
  const { source, layout } = loc;
  const entries = entriesOf(layout);
  const progress = new Progress(entries.length, o.onProgress);
  const tally = newTally();
  let cacheNote: string | undefined;
  let writer: CacheWriter | null = null;
  if (basePath !== null) {
    try {
      writer = await CacheWriter.create(basePath);
    } catch (e) {
      if (mustCache) throw new DataError(`cannot write the cache in ${path.dirname(basePath)}: ${errorMessage(e)}`, basePath);
      cacheNote = `cache not written: ${errorMessage(e)}`;
    }
  }
  // Keep: batch k is decoded straight into its slots of the final array (as if no file failed)
  // and compacted downwards when some did. Stream: two reused batch buffers.
  const images = keepImages ? new Uint8Array(entries.length * IMAGE_BYTES) : null;
  const ring = keepImages ? [] : [0, 1].map(() => new Uint8Array(Math.min(BATCH, entries.length) * IMAGE_BYTES));
  const labels = new Uint8Array(entries.length);
  const files: string[] = [];
  let good = 0;
  const perClass = [0, 0];
  const decodeOpts: DecodeInOrderOptions =
    images !== null
      ? { ...decodeOptions(o), outFor: (k, n) => images.subarray(k * BATCH * IMAGE_BYTES, (k * BATCH + n) * IMAGE_BYTES) }
      : { ...decodeOptions(o), outFor: (k, n) => ring[k % 2].subarray(0, n * IMAGE_BYTES), ring: 2 };
  try {
    await decodeInOrder(source, entries, decodeOpts, async (k, batch, batchImages, results) => {
      const first = good;
      const dest = images ?? batchImages;
      const destBase = images !== null ? first : 0; // index in dest of this batch's first kept image
      let kept = 0;
      for (let i = 0; i < batch.length; i++) {
        if (!judge(results[i], batch[i], source, o, tally)) continue;
        const from = images !== null ? k * BATCH + i : i;
        const to = destBase + kept;
        if (from !== to) dest.copyWithin(to * IMAGE_BYTES, from * IMAGE_BYTES, (from + 1) * IMAGE_BYTES);
        labels[good] = batch[i].label;
        files.push(batch[i].name);
        perClass[batch[i].label]++;
        good++;
        kept++;
      }
      if (writer !== null) {
        try {
          await writer.append(dest.subarray(destBase * IMAGE_BYTES, (destBase + kept) * IMAGE_BYTES));
        } catch (e) {
          if (mustCache) throw new DataError(`cannot write the cache ${basePath}.bin: ${errorMessage(e)}`, `${basePath}.bin`);
          cacheNote = `cache not written: ${errorMessage(e)}`;
          await writer.abort();
          writer = null;
        }
      }
      progress.add(batch.length);
    });
    checkClassesNotEmpty(perClass, layout, tally);
    let header: CacheHeader | null = null;
    if (writer !== null) {
      const fields: CacheHeaderFields = {
        source: { path: source.path, kind: source.kind, fingerprint: loc.fingerprint },
        split: o.split,
        splitPath: layout.splitPath,
        options: cacheOptions(o),
        classFolders: classFolders(layout),
        listed: entries.length,
        skipped: { count: tally.skippedCount, files: tally.skipped },
        ignored: { count: layout.ignored.length, files: layout.ignored.slice(0, MAX_LISTED).map((f) => source.display(f)) },
        decoded: { native: tally.native, sharp: tally.sharp, resized: tally.resized },
      };
      try {
        header = await writer.commit(fields, labels.subarray(0, good), files);
      } catch (e) {
        if (mustCache) throw new DataError(`cannot write the cache ${basePath}: ${errorMessage(e)}`, basePath ?? undefined);
        cacheNote = `cache not written: ${errorMessage(e)}`;
        await writer.abort();
      }
      writer = null;
    }
    return { images: images === null ? null : images.subarray(0, good * IMAGE_BYTES), labels: labels.subarray(0, good), files, tally, header, cacheNote };
  } finally {
    if (writer !== null) await writer.abort();
  }
}

function checkClassesNotEmpty(perClass: number[], layout: SplitLayout, tally: Tally): void {
  for (const label of [0, 1] as const) {
    if (perClass[label] > 0) continue;
    const folders = layout.classes.filter((c) => c.label === label);
    const n = folders.reduce((s, c) => s + c.files.length, 0);
    const example = tally.skipped.find((s) => folders.some((c) => s.file.includes(`/${c.folder}/`)));
    throw new DataError(
      `class ${CLASS_NAMES[label]} (${folders.map((c) => `${layout.splitPath}/${c.folder}`).join(', ')}): none of its ${n} files could be decoded` +
        (example !== undefined ? ` (e.g. ${example.file}: ${example.reason})` : ''),
    );
  }
}

/** Decodes only a seeded subset of at most `limit` images per class (no cache written). */
async function ingestLimited(loc: Located, o: Normalized, limit: number): Promise<IngestResult> {
  const { source, layout } = loc;
  const entries = entriesOf(layout);
  const names = entries.map((e) => e.name);
  const tally = newTally();
  const chosen: Array<{ entry: Entry; pixels: Uint8Array }> = [];
  const candidates: number[][] = [0, 1].map((c) => orderByKey(entries.flatMap((e, i) => (e.label === c ? [i] : [])), names, o.seed));
  const total = candidates.reduce((s, c) => s + Math.min(limit, c.length), 0);
  const progress = new Progress(total, o.onProgress);
  const perClass = [0, 0];
  const next = [0, 0];
  // Rounds: take as many candidates as are still missing, in key order, until enough decoded.
  for (;;) {
    const round: Entry[] = [];
    for (const c of [0, 1]) {
      const missing = limit - perClass[c];
      const take = candidates[c].slice(next[c], next[c] + missing);
      next[c] += take.length;
      for (const i of take) round.push(entries[i]);
    }
    if (round.length === 0) break;
    await decodeInOrder(source, round, decodeOptions(o), (_k, batch, images, results) => {
      for (let i = 0; i < batch.length; i++) {
        if (!judge(results[i], batch[i], source, o, tally)) continue;
        chosen.push({ entry: batch[i], pixels: images.slice(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES) });
        perClass[batch[i].label]++;
      }
      progress.add(batch.length);
    });
  }
  checkClassesNotEmpty(perClass, layout, tally);
  chosen.sort((a, b) => a.entry.label - b.entry.label || compareStrings(a.entry.name, b.entry.name));
  const images = new Uint8Array(chosen.length * IMAGE_BYTES);
  const labels = new Uint8Array(chosen.length);
  chosen.forEach((c, k) => {
    images.set(c.pixels, k * IMAGE_BYTES);
    labels[k] = c.entry.label;
  });
  return { images, labels, files: chosen.map((c) => c.entry.name), tally, header: null };
}

interface SummaryParts {
  ctx: SourceContext;
  o: Normalized;
  splitPath: string;
  labels: Uint8Array;
  listed: number;
  classFolders: Record<ClassName, string[]>;
  skipped: { count: number; files: SkippedFile[] };
  ignored: { count: number; files: string[] };
  decoded: { native: number; sharp: number; resized: number };
  cache: DatasetSummary['cache'];
  seconds: number;
}

function summarize(p: SummaryParts): DatasetSummary {
  const counts = { FAKE: 0, REAL: 0 };
  for (const l of p.labels) counts[CLASS_NAMES[l]]++;
  return {
    source: p.ctx.path,
    sourceKind: p.ctx.kind,
    split: p.o.split,
    splitPath: p.splitPath,
    count: p.labels.length,
    counts,
    classFolders: p.classFolders,
    listed: p.listed,
    skipped: p.skipped,
    ignored: p.ignored,
    decoded: p.decoded,
    resize: p.o.resize,
    limit: p.o.limit,
    seed: p.o.seed,
    cache: p.cache,
    seconds: p.seconds,
  };
}

function summaryFromHeader(h: CacheHeader): Pick<SummaryParts, 'splitPath' | 'listed' | 'classFolders' | 'skipped' | 'ignored' | 'decoded'> {
  return { splitPath: h.splitPath, listed: h.listed, classFolders: h.classFolders, skipped: h.skipped, ignored: h.ignored, decoded: h.decoded };
}

function summaryFromLayout(loc: Located, r: IngestResult): Pick<SummaryParts, 'splitPath' | 'listed' | 'classFolders' | 'skipped' | 'ignored' | 'decoded'> {
  const { layout, source } = loc;
  return {
    splitPath: layout.splitPath,
    listed: layout.classes.reduce((s, c) => s + c.files.length, 0),
    classFolders: classFolders(layout),
    skipped: { count: r.tally.skippedCount, files: r.tally.skipped },
    ignored: { count: layout.ignored.length, files: layout.ignored.slice(0, MAX_LISTED).map((f) => source.display(f)) },
    decoded: { native: r.tally.native, sharp: r.tally.sharp, resized: r.tally.resized },
  };
}

/** Fingerprint and cache base path; for folders this lists the split (needed for the fingerprint). */
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
      ...summaryFromLayout(loc, r),
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

/** Human-readable summary (a few lines) for the CLI. */
export function formatSummary(s: DatasetSummary, maxNames = 10): string {
  const lines: string[] = [];
  const src = s.cache.hit ? 'cache' : 'decoded';
  lines.push(
    `${s.split}: ${s.count} images (FAKE ${s.counts.FAKE}, REAL ${s.counts.REAL}) from ${s.source}${s.splitPath ? `:${s.splitPath}` : ''} [${src}, ${s.seconds.toFixed(2)} s]`,
  );
  if (s.limit !== null) lines.push(`  limit ${s.limit} per class (seed ${s.seed}) of ${s.listed} files`);
  if (s.decoded.sharp > 0 || s.decoded.resized > 0) lines.push(`  decoded: ${s.decoded.native} native (libjpeg-turbo), ${s.decoded.sharp} with sharp, ${s.decoded.resized} resized`);
  if (s.skipped.count > 0) {
    lines.push(`  skipped ${s.skipped.count} unreadable file${s.skipped.count === 1 ? '' : 's'}:`);
    for (const f of s.skipped.files.slice(0, maxNames)) lines.push(`    ${f.file}: ${f.reason}`);
    if (s.skipped.count > maxNames) lines.push(`    ... and ${s.skipped.count - maxNames} more`);
  }
  if (s.ignored.count > 0) lines.push(`  ignored ${s.ignored.count} file(s) outside class folders, e.g. ${s.ignored.files.slice(0, 3).join(', ')}`);
  if (s.cache.note !== undefined) lines.push(`  ${s.cache.note}`);
  return lines.join('\n');
}

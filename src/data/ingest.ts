// The ingest engine: a CIFAKE split in a zip or folder -> decoded images (N x 3 x 32 x 32 uint8 CHW)
// and labels, in batches read ahead and decoded in order, streamed into the cache when asked.
// The public entry points (loadSplit, openSplit, prepare) are in load.ts.
//
// Layout: <split>/<class>/<images> in a zip or folder, optionally inside one wrapper folder
// (Kaggle's archive/). Class folders map to labels with classMap (default FAKE -> 0, REAL -> 1,
// case-insensitive). Images are ordered by label, then by path.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheHeader, CacheHeaderFields, CacheOptions, CacheWriter, resolveCacheDir } from './cache';
import { checkMaxPixels, decodeBatch, DEFAULT_MAX_PIXELS, DecodeResult, DecodeScratch } from './decode';
import { DataError, errorMessage } from './errors';
import { normalizeClassMap, NormalizedClassMap, resolveSplit, SplitLayout } from './layout';
import { checkSeed, orderByKey } from './split';
import { openSource, statSource } from './open';
import { compareStrings, DataSource, ReadArena, SourceFile } from './source';
import { CLASS_NAMES, ClassMap, ClassName, IMAGE_BYTES, IMAGE_SIZE, Label, ProgressCallback, SkippedFile } from './types';
import { zipFingerprint } from './zip';

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

export interface Normalized {
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

export function normalize(opts: LoadOptions): Normalized {
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

export function cacheOptions(o: Normalized): CacheOptions {
  // maxPixels changes which files are skipped; it joins the key only when not the default (older keys stay valid).
  return { resize: o.resize, size: IMAGE_SIZE, classMap: o.classMap, ...(o.maxPixels !== DEFAULT_MAX_PIXELS ? { maxPixels: o.maxPixels } : {}) };
}

/** A zip or folder, opened lazily (a cache hit on a zip needs only its size and mtime). */
export class SourceContext {
  private opened: Promise<DataSource> | null = null;
  private constructor(
    readonly path: string,
    readonly kind: 'zip' | 'folder',
    private readonly stat: fs.Stats,
  ) {}

  static async create(data: string): Promise<SourceContext> {
    if (typeof data !== 'string' || data === '') throw new DataError('data must be the path of a CIFAKE zip or folder');
    const { abs, st, kind } = await statSource(data);
    return new SourceContext(abs, kind, st);
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

export interface Located {
  layout: SplitLayout;
  source: DataSource;
  fingerprint: string;
}

export async function locate(ctx: SourceContext, o: Normalized): Promise<Located> {
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

/** What an ingest reports: in its summary, and in the cache header for the loads that hit it. */
export type IngestStats = Pick<CacheHeader, 'splitPath' | 'listed' | 'classFolders' | 'skipped' | 'ignored' | 'decoded'>;

export function ingestStats(loc: Located, tally: Tally): IngestStats {
  const { layout, source } = loc;
  return {
    splitPath: layout.splitPath,
    listed: layout.classes.reduce((s, c) => s + c.files.length, 0),
    classFolders: classFolders(layout),
    skipped: { count: tally.skippedCount, files: tally.skipped },
    ignored: { count: layout.ignored.length, files: layout.ignored.slice(0, MAX_LISTED).map((f) => source.display(f)) },
    decoded: { native: tally.native, sharp: tally.sharp, resized: tally.resized },
  };
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

export interface IngestResult {
  /** count x IMAGE_BYTES (null when keepImages is false). */
  images: Uint8Array | null;
  labels: Uint8Array;
  files: string[];
  tally: Tally;
  header: CacheHeader | null;
  cacheNote?: string;
}

/**
 * The cache an ingest writes, if any. A failure to write it throws when the cache is a must
 * (openSplit streams from it); otherwise it is noted (summary.cache.note) and writing stops.
 */
class CacheSink {
  note?: string;
  private constructor(
    private writer: CacheWriter | null,
    private readonly basePath: string | null,
    private readonly mustCache: boolean,
  ) {}

  static async open(basePath: string | null, mustCache: boolean): Promise<CacheSink> {
    const sink = new CacheSink(null, basePath, mustCache);
    if (basePath === null) return sink;
    try {
      sink.writer = await CacheWriter.create(basePath);
    } catch (e) {
      sink.fail(e, `cannot write the cache in ${path.dirname(basePath)}`, basePath);
    }
    return sink;
  }

  async append(images: Uint8Array): Promise<void> {
    if (this.writer === null) return;
    try {
      await this.writer.append(images);
    } catch (e) {
      this.fail(e, `cannot write the cache ${this.basePath}.bin`, `${this.basePath}.bin`);
      await this.abort();
    }
  }

  /** Commits the cache; returns its header, or null when there is none. */
  async commit(fields: CacheHeaderFields, labels: Uint8Array, files: readonly string[]): Promise<CacheHeader | null> {
    if (this.writer === null) return null;
    try {
      const header = await this.writer.commit(fields, labels, files);
      this.writer = null;
      return header;
    } catch (e) {
      this.fail(e, `cannot write the cache ${this.basePath}`, this.basePath ?? undefined);
      await this.abort();
      return null;
    }
  }

  async abort(): Promise<void> {
    const w = this.writer;
    this.writer = null;
    await w?.abort();
  }

  private fail(e: unknown, what: string, file?: string): void {
    if (this.mustCache) throw new DataError(`${what}: ${errorMessage(e)}`, file);
    this.note = `cache not written: ${errorMessage(e)}`;
  }
}

/** Decodes a whole split; writes the cache when basePath is given. */
export async function ingestAll(
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
  const sink = await CacheSink.open(basePath, mustCache);
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
      const dest = images ?? batchImages;
      const destBase = images !== null ? good : 0; // index in dest of this batch's first kept image
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
      await sink.append(dest.subarray(destBase * IMAGE_BYTES, (destBase + kept) * IMAGE_BYTES));
      progress.add(batch.length);
    });
    checkClassesNotEmpty(perClass, layout, tally);
    const fields: CacheHeaderFields = {
      source: { path: source.path, kind: source.kind, fingerprint: loc.fingerprint },
      split: o.split,
      options: cacheOptions(o),
      ...ingestStats(loc, tally),
    };
    const header = await sink.commit(fields, labels.subarray(0, good), files);
    return { images: images === null ? null : images.subarray(0, good * IMAGE_BYTES), labels: labels.subarray(0, good), files, tally, header, cacheNote: sink.note };
  } finally {
    await sink.abort();
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
export async function ingestLimited(loc: Located, o: Normalized, limit: number): Promise<IngestResult> {
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

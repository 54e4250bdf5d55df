// Binary cache of decoded splits.
//
// One split is two files in the cache folder, named by a hash of (absolute source path, split,
// decode options):
//   <split>-<key>.bin   images (count x 3 x 32 x 32 uint8, CHW), then labels (count uint8), then
//                       the file names (UTF-8, each followed by a NUL byte)
//   <split>-<key>.json  header: format version, package version, source fingerprint (zip: size and
//                       mtime; folder: hash of path, size and mtime of every file of the split),
//                       decode options, shape, counts per class, section offsets and checksums
// A cache is used only when all of those match and the checksums verify; otherwise it is rebuilt.
// Both files are written atomically (temporary file in the same folder, fsync, rename), the .bin
// first, so a crash leaves either the old pair, or a new .bin with an old header (checksum
// mismatch: rebuilt), never a torn file that is used.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, errorMessage } from './errors';
import { NormalizedClassMap } from './layout';
import { CLASS_NAMES, ClassName, IMAGE_BYTES, IMAGE_SIZE, SkippedFile } from './types';

export const CACHE_FORMAT = 'cifake-torch-cache';
export const CACHE_VERSION = 1;

/** Decode options that change the cached pixels or labels. */
export interface CacheOptions {
  resize: boolean;
  size: number;
  classMap: NormalizedClassMap;
  /** Only when not the default pixel limit. */
  maxPixels?: number;
}

export interface CacheSection {
  offset: number;
  bytes: number;
}

export interface CacheHeader {
  format: typeof CACHE_FORMAT;
  version: number;
  packageVersion: string;
  created: string;
  source: { path: string; kind: 'zip' | 'folder'; fingerprint: string };
  split: string;
  splitPath: string;
  options: CacheOptions;
  shape: [number, 3, number, number];
  count: number;
  counts: Record<ClassName, number>;
  classNames: ['FAKE', 'REAL'];
  classFolders: Record<ClassName, string[]>;
  fileBytes: number;
  sections: { images: CacheSection; labels: CacheSection; names: CacheSection };
  checksums: { algorithm: string; images: string; meta: string };
  /** Ingest statistics, reported again on cache hits. */
  listed: number;
  skipped: { count: number; files: SkippedFile[] };
  ignored: { count: number; files: string[] };
  decoded: { native: number; sharp: number; resized: number };
}

/** What a cache must match to be used. */
export interface CacheExpectation {
  sourcePath: string;
  fingerprint: string;
  split: string;
  options: CacheOptions;
}

let packageVersionMemo: string | undefined;

/** Version of this package (from the nearest package.json named cifake-torch). */
export function packageVersion(): string {
  if (packageVersionMemo !== undefined) return packageVersionMemo;
  let dir = __dirname;
  packageVersionMemo = '0.0.0-unknown';
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cifake-torch' && typeof pkg.version === 'string') {
        packageVersionMemo = pkg.version;
        break;
      }
    } catch {
      // keep looking upwards
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return packageVersionMemo;
}

/** CIFAKE_CACHE_DIR, else $XDG_CACHE_HOME/cifake-torch, else ~/.cache/cifake-torch. */
export function defaultCacheDir(): string {
  const env = process.env.CIFAKE_CACHE_DIR;
  if (env !== undefined && env !== '') return path.resolve(env);
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg !== undefined && xdg !== '' && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'cifake-torch');
}

/** The cache folder for a cacheDir option: false disables the cache. */
export function resolveCacheDir(cacheDir: string | false | undefined): string | null {
  if (cacheDir === false) return null;
  if (cacheDir === undefined || cacheDir === '') return defaultCacheDir();
  return path.resolve(cacheDir);
}

/** Path of the cache files without extension. */
export function cacheBasePath(cacheDir: string, sourcePath: string, split: string, options: CacheOptions): string {
  const key = createHash('sha256').update(JSON.stringify([path.resolve(sourcePath), split, options])).digest('hex').slice(0, 20);
  const safeSplit = split.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  return path.join(cacheDir, `${safeSplit}-${key}`);
}

// ---------------------------------------------------------------------------------------------
// Checksums: CRC-32 (zlib.crc32, Node >= 20.15) or SHA-256 on older Node.

type Crc32 = (data: Uint8Array, value?: number) => number;
const crc32: Crc32 | undefined = (zlib as unknown as { crc32?: Crc32 }).crc32;
const CHECKSUM_ALGORITHM = crc32 !== undefined ? 'crc32' : 'sha256';

class Checksum {
  private crc = 0;
  private readonly hash = crc32 === undefined ? createHash('sha256') : null;
  update(data: Uint8Array): this {
    if (this.hash !== null) this.hash.update(data);
    else this.crc = (crc32 as Crc32)(data, this.crc);
    return this;
  }
  digest(): string {
    return this.hash !== null ? this.hash.digest('hex') : (this.crc >>> 0).toString(16).padStart(8, '0');
  }
}

function checksumOf(...parts: Uint8Array[]): string {
  const c = new Checksum();
  for (const p of parts) c.update(p);
  return c.digest();
}

// ---------------------------------------------------------------------------------------------
// Writing

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fs.promises.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // not supported everywhere (e.g. Windows); the renames are still atomic
  }
}

async function writeAll(fh: fs.promises.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

function tempName(finalPath: string): string {
  return `${finalPath}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
}

export type CacheHeaderFields = Omit<
  CacheHeader,
  'format' | 'version' | 'packageVersion' | 'created' | 'shape' | 'count' | 'counts' | 'classNames' | 'fileBytes' | 'sections' | 'checksums'
>;

/** Streams a split into a new cache: append images in order, then commit labels and names. */
export class CacheWriter {
  private position = 0;
  private readonly imagesSum = new Checksum();
  private closed = false;

  private constructor(
    readonly basePath: string,
    private readonly tmpBin: string,
    private readonly fh: fs.promises.FileHandle,
  ) {}

  static async create(basePath: string): Promise<CacheWriter> {
    await fs.promises.mkdir(path.dirname(basePath), { recursive: true });
    const tmp = tempName(`${basePath}.bin`);
    const fh = await fs.promises.open(tmp, 'wx', 0o644);
    return new CacheWriter(basePath, tmp, fh);
  }

  /** Appends whole images (a multiple of IMAGE_BYTES bytes). */
  async append(images: Uint8Array): Promise<void> {
    if (images.length % IMAGE_BYTES !== 0) throw new Error('CacheWriter.append: not whole images');
    this.imagesSum.update(images);
    await writeAll(this.fh, images, this.position);
    this.position += images.length;
  }

  get imageCount(): number {
    return this.position / IMAGE_BYTES;
  }

  /** Writes labels and names, syncs, renames both files into place; returns the header. */
  async commit(fields: CacheHeaderFields, labels: Uint8Array, names: readonly string[]): Promise<CacheHeader> {
    const count = this.imageCount;
    if (labels.length !== count || names.length !== count) throw new Error(`CacheWriter.commit: ${count} images, ${labels.length} labels, ${names.length} names`);
    const namesBuf = Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8');
    const imagesBytes = this.position;
    await writeAll(this.fh, labels, imagesBytes);
    await writeAll(this.fh, namesBuf, imagesBytes + labels.length);
    await this.fh.sync();
    await this.fh.close();
    this.closed = true;
    const counts = { FAKE: 0, REAL: 0 };
    for (const l of labels) counts[CLASS_NAMES[l]]++;
    const header: CacheHeader = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      packageVersion: packageVersion(),
      created: new Date().toISOString(),
      ...fields,
      shape: [count, 3, IMAGE_SIZE, IMAGE_SIZE],
      count,
      counts,
      classNames: ['FAKE', 'REAL'],
      fileBytes: imagesBytes + labels.length + namesBuf.length,
      sections: {
        images: { offset: 0, bytes: imagesBytes },
        labels: { offset: imagesBytes, bytes: labels.length },
        names: { offset: imagesBytes + labels.length, bytes: namesBuf.length },
      },
      checksums: { algorithm: CHECKSUM_ALGORITHM, images: this.imagesSum.digest(), meta: checksumOf(labels, namesBuf) },
    };
    const binPath = `${this.basePath}.bin`;
    const jsonPath = `${this.basePath}.json`;
    await fs.promises.rename(this.tmpBin, binPath);
    const tmpJson = tempName(jsonPath);
    const jh = await fs.promises.open(tmpJson, 'wx', 0o644);
    try {
      await writeAll(jh, Buffer.from(`${JSON.stringify(header, null, 2)}\n`, 'utf8'), 0);
      await jh.sync();
    } finally {
      await jh.close();
    }
    await fs.promises.rename(tmpJson, jsonPath);
    await fsyncDir(path.dirname(this.basePath));
    return header;
  }

  /** Drops the temporary file (after an error). */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await fs.promises.unlink(this.tmpBin).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Why a header cannot be used for `expected`, or null when it can. */
export function headerMismatch(h: unknown, expected: CacheExpectation): string | null {
  if (!isObject(h) || h.format !== CACHE_FORMAT) return 'not a cifake-torch cache header';
  if (h.version !== CACHE_VERSION) return `cache format version ${String(h.version)}, this package writes ${CACHE_VERSION}`;
  if (h.packageVersion !== packageVersion()) return `written by cifake-torch ${String(h.packageVersion)}, this is ${packageVersion()}`;
  const src = h.source;
  if (!isObject(src) || src.path !== expected.sourcePath) return 'cache of another source';
  if (src.fingerprint !== expected.fingerprint) return 'the source changed since the cache was written';
  if (h.split !== expected.split) return 'cache of another split';
  if (JSON.stringify(h.options) !== JSON.stringify(expected.options)) return 'cache written with other decode options';
  const count = h.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) return 'invalid count in cache header';
  const s = h.sections;
  if (!isObject(s) || !isObject(s.images) || !isObject(s.labels) || !isObject(s.names)) return 'invalid sections in cache header';
  const sec = s as unknown as CacheHeader['sections'];
  if (sec.images.offset !== 0 || sec.images.bytes !== count * IMAGE_BYTES) return 'invalid images section in cache header';
  if (sec.labels.offset !== sec.images.bytes || sec.labels.bytes !== count) return 'invalid labels section in cache header';
  if (sec.names.offset !== sec.labels.offset + count || typeof sec.names.bytes !== 'number') return 'invalid names section in cache header';
  if (h.fileBytes !== sec.names.offset + sec.names.bytes) return 'invalid size in cache header';
  const sums = h.checksums;
  if (!isObject(sums) || sums.algorithm !== CHECKSUM_ALGORITHM) return 'cache checksum of another kind';
  // Strict loads fail on what the cache skipped: a cache that does not say is not trusted.
  const sk = h.skipped;
  if (!isObject(sk) || typeof sk.count !== 'number' || !Array.isArray(sk.files)) return 'invalid skipped-files record in cache header';
  return null;
}

export async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await fs.promises.readFile(file, 'utf8')) as unknown;
}

async function readRange(fh: fs.promises.FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  const CHUNK = 1 << 30;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, Math.min(CHUNK, into.length - done), position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Reads a whole file into `into` in 32 MiB chunks, checksumming the first `checkedBytes` bytes of
 * each chunk while the next one is being read. Returns the checksum, or null if the file is short.
 */
async function readWithChecksum(fh: fs.promises.FileHandle, into: Uint8Array, checkedBytes: number): Promise<string | null> {
  const CHUNK = 32 << 20;
  const sum = new Checksum();
  const readChunk = (pos: number): Promise<number> => readRange(fh, into.subarray(pos, Math.min(pos + CHUNK, into.length)), pos);
  let next: Promise<number> | null = into.length > 0 ? readChunk(0) : null;
  for (let pos = 0; pos < into.length; pos += CHUNK) {
    const want = Math.min(CHUNK, into.length - pos);
    const got = await (next as Promise<number>);
    next = pos + CHUNK < into.length ? readChunk(pos + CHUNK) : null;
    if (got !== want) {
      await next?.catch(() => undefined);
      return null;
    }
    if (pos < checkedBytes) sum.update(into.subarray(pos, Math.min(pos + want, checkedBytes)));
  }
  return sum.digest();
}

function parseLabelsAndNames(header: CacheHeader, labels: Uint8Array, namesBuf: Uint8Array): { files: string[] } | { reason: string } {
  const counts = { FAKE: 0, REAL: 0 };
  for (const l of labels) {
    if (l !== 0 && l !== 1) return { reason: `invalid label ${l} in cache` };
    counts[CLASS_NAMES[l]]++;
  }
  if (counts.FAKE !== header.counts?.FAKE || counts.REAL !== header.counts?.REAL) return { reason: 'class counts do not match the cache header' };
  const text = Buffer.from(namesBuf.buffer, namesBuf.byteOffset, namesBuf.byteLength).toString('utf8');
  if (header.count > 0 && !text.endsWith('\0')) return { reason: 'invalid names section in cache' };
  const files = header.count === 0 ? [] : text.slice(0, -1).split('\0');
  if (files.length !== header.count) return { reason: `cache holds ${files.length} names for ${header.count} images` };
  return { files };
}

/** Opens a cached split: its header (checked against what is expected) and its data file (size checked). */
async function openCache(basePath: string, expected: CacheExpectation): Promise<{ header: CacheHeader; fh: fs.promises.FileHandle; binPath: string } | CacheMiss> {
  const binPath = `${basePath}.bin`;
  let header: CacheHeader;
  try {
    const h = await readJson(`${basePath}.json`);
    const bad = headerMismatch(h, expected);
    if (bad !== null) return { reason: bad };
    header = h as CacheHeader;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { reason: code === 'ENOENT' ? 'no cache yet' : `unreadable cache header: ${errorMessage(e)}` };
  }
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(binPath, 'r');
  } catch (e) {
    return { reason: `cache data missing: ${errorMessage(e)}` };
  }
  const st = await fh.stat().catch(() => null);
  if (st?.size !== header.fileBytes) {
    await fh.close();
    return { reason: `cache data is ${st?.size ?? '?'} bytes, header says ${header.fileBytes} (truncated or replaced)` };
  }
  return { header, fh, binPath };
}

export interface LoadedCache {
  header: CacheHeader;
  images: Uint8Array;
  labels: Uint8Array;
  files: string[];
  binPath: string;
}

export type CacheMiss = { reason: string };

/** Loads a whole cached split in one read (checksums verified), or says why it cannot be used. */
export async function loadCache(basePath: string, expected: CacheExpectation): Promise<LoadedCache | CacheMiss> {
  const opened = await openCache(basePath, expected);
  if ('reason' in opened) return opened;
  const { header, fh, binPath } = opened;
  try {
    const data = Buffer.allocUnsafe(header.fileBytes);
    const imagesSum = await readWithChecksum(fh, data, header.sections.images.bytes);
    if (imagesSum === null) return { reason: 'cache data shorter than expected (truncated)' };
    const images = data.subarray(0, header.sections.images.bytes);
    const labels = data.subarray(header.sections.labels.offset, header.sections.labels.offset + header.count);
    const namesBuf = data.subarray(header.sections.names.offset);
    if (imagesSum !== header.checksums.images) return { reason: 'cache images checksum mismatch (corrupt)' };
    if (checksumOf(labels, namesBuf) !== header.checksums.meta) return { reason: 'cache labels/names checksum mismatch (corrupt)' };
    const parsed = parseLabelsAndNames(header, labels, namesBuf);
    if ('reason' in parsed) return parsed;
    return { header, images, labels, files: parsed.files, binPath };
  } catch (e) {
    return { reason: `cannot read cache: ${errorMessage(e)}` };
  } finally {
    await fh.close();
  }
}

export interface CacheMeta {
  header: CacheHeader;
  labels: Uint8Array;
  files: string[];
  binPath: string;
}

/**
 * Reads a cached split's header, labels and names without keeping the images in memory. The
 * images checksum is verified by streaming the file in 8 MiB chunks (bounded memory).
 */
export async function loadCacheMeta(basePath: string, expected: CacheExpectation): Promise<CacheMeta | CacheMiss> {
  const opened = await openCache(basePath, expected);
  if ('reason' in opened) return opened;
  const { header, fh, binPath } = opened;
  try {
    const tail = Buffer.allocUnsafe(header.fileBytes - header.sections.labels.offset);
    if ((await readRange(fh, tail, header.sections.labels.offset)) !== tail.length) return { reason: 'cache data shorter than expected (truncated)' };
    const labels = tail.subarray(0, header.count);
    const namesBuf = tail.subarray(header.count);
    if (checksumOf(labels, namesBuf) !== header.checksums.meta) return { reason: 'cache labels/names checksum mismatch (corrupt)' };
    const sum = new Checksum();
    const chunk = Buffer.allocUnsafe(Math.min(8 << 20, Math.max(1, header.sections.images.bytes)));
    for (let pos = 0; pos < header.sections.images.bytes; ) {
      const want = Math.min(chunk.length, header.sections.images.bytes - pos);
      const got = await readRange(fh, chunk.subarray(0, want), pos);
      if (got !== want) return { reason: 'cache data shorter than expected (truncated)' };
      sum.update(chunk.subarray(0, want));
      pos += want;
    }
    if (sum.digest() !== header.checksums.images) return { reason: 'cache images checksum mismatch (corrupt)' };
    const parsed = parseLabelsAndNames(header, labels, namesBuf);
    if ('reason' in parsed) return parsed;
    return { header, labels: Uint8Array.from(labels), files: parsed.files, binPath };
  } catch (e) {
    return { reason: `cannot read cache: ${errorMessage(e)}` };
  } finally {
    await fh.close();
  }
}

export interface Shard {
  /** count x 3 x 32 x 32 uint8 CHW. */
  images: Uint8Array;
  labels: Uint8Array;
  /** Position of the shard's first image in the iteration (0, shardSize, 2 * shardSize, ...). */
  start: number;
  count: number;
}

/**
 * Reads records of a cache file in shards of at most shardSize images, with positioned reads
 * (runs of consecutive records are read at once). Memory: one shard at a time (two while the next
 * one is being read).
 */
export async function* readCacheShards(binPath: string, labels: Uint8Array, shardSize: number, indices?: Uint32Array): AsyncGenerator<Shard> {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new DataError(`shardSize must be a positive integer, got ${shardSize}`);
  const total = indices !== undefined ? indices.length : labels.length;
  const fh = await fs.promises.open(binPath, 'r');
  const readShard = async (start: number): Promise<Shard> => {
    const count = Math.min(shardSize, total - start);
    const images = new Uint8Array(count * IMAGE_BYTES);
    const shardLabels = new Uint8Array(count);
    let k = 0;
    while (k < count) {
      const first = indices !== undefined ? indices[start + k] : start + k;
      let run = 1;
      while (k + run < count && (indices !== undefined ? indices[start + k + run] : start + k + run) === first + run) run++;
      if (first + run > labels.length) throw new DataError(`shard index ${first + run - 1} out of range (${labels.length} images)`);
      const got = await readRange(fh, images.subarray(k * IMAGE_BYTES, (k + run) * IMAGE_BYTES), first * IMAGE_BYTES);
      if (got !== run * IMAGE_BYTES) throw new DataError(`cache file ${binPath} is truncated`, binPath);
      shardLabels.set(labels.subarray(first, first + run), k);
      k += run;
    }
    return { images, labels: shardLabels, start, count };
  };
  // One shard is read ahead while the caller works on the current one.
  let next: Promise<Shard> | null = null;
  const prefetch = (start: number): Promise<Shard> | null => {
    if (start >= total) return null;
    const p = readShard(start);
    p.catch(() => undefined); // awaited below; never an unhandled rejection if the caller stops early
    return p;
  };
  try {
    next = prefetch(0);
    for (let start = 0; start < total; start += shardSize) {
      const shard = await (next as Promise<Shard>);
      next = prefetch(start + shardSize);
      yield shard;
    }
  } finally {
    if (next !== null) await next.catch(() => undefined);
    await fh.close();
  }
}

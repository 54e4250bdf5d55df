// Helpers for the data pipeline tests: generated images (sharp), a minimal zip writer, temp folders.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { expect } from 'chai';
import { mulberry32 } from '../src/util/random';
import { DataError, jpegBinding, JpegBinding, setJpegBinding } from '../src/data';

/** The DataError a promise rejects with (fails the test when it resolves or rejects otherwise). */
export async function dataErrorOf(p: Promise<unknown>): Promise<DataError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e, 'expected a DataError').to.be.instanceOf(DataError);
  return e as DataError;
}

/** Deterministic PRNG (mulberry32). */
export const rng = mulberry32;

/** Interleaved RGB(A) pixels: smooth gradients plus noise, different for every seed. */
export function rawPixels(seed: number, width = 32, height = 32, channels = 3): Buffer {
  const r = rng(seed);
  const base = [r() * 255, r() * 255, r() * 255, 128 + r() * 127];
  const slope = [r() * 6 - 3, r() * 6 - 3, r() * 6 - 3];
  const out = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const v = c < 3 ? base[c] + slope[c] * (x - y) + (r() - 0.5) * 60 : base[3] - x * 2;
        out[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

export interface JpegOptions {
  size?: number;
  quality?: number;
  gray?: boolean;
  progressive?: boolean;
  chromaSubsampling?: '4:2:0' | '4:4:4';
}

export async function makeJpeg(seed: number, o: JpegOptions = {}): Promise<Buffer> {
  const size = o.size ?? 32;
  let img = sharp(rawPixels(seed, size, size, 3), { raw: { width: size, height: size, channels: 3 } });
  if (o.gray) img = img.toColourspace('b-w');
  return img
    .jpeg({ quality: o.quality ?? 75, progressive: o.progressive ?? false, chromaSubsampling: o.chromaSubsampling ?? '4:2:0', mozjpeg: false })
    .toBuffer();
}

export async function makePng(seed: number, size = 32, channels: 3 | 4 = 3): Promise<Buffer> {
  return sharp(rawPixels(seed, size, size, channels), { raw: { width: size, height: size, channels } }).png().toBuffer();
}

export async function makeWebp(seed: number, size = 32): Promise<Buffer> {
  return sharp(rawPixels(seed, size, size, 3), { raw: { width: size, height: size, channels: 3 } }).webp({ lossless: true }).toBuffer();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A small PNG (a few hundred bytes) whose header declares width x height RGB pixels: only its
 * first rows are present, so a decoder that trusts the header and decodes fails on the data.
 */
export function pngDeclaring(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = zlib.deflateSync(Buffer.alloc(4 * (1 + 3 * width)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', rows), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A copy of a baseline JPEG whose frame header (SOF0) declares width x height instead. */
export function jpegDeclaring(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) throw new Error('jpegDeclaring: not a marker');
    const marker = out[i + 1];
    if (marker === 0xc0 || marker === 0xc2) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + out.readUInt16BE(i + 2);
  }
  throw new Error('jpegDeclaring: no SOF0/SOF2 marker');
}

/** HWC interleaved (channels 3 or 4) to CHW planes of the first three channels. */
export function toChw(hwc: Uint8Array, channels: number, size = 32): Uint8Array {
  const plane = size * size;
  const out = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = hwc[p * channels + c];
  return out;
}

/** sharp's own decode of an image to CHW (gray expanded), the reference for pixel equality. */
export async function sharpChw(buf: Buffer, resizeTo?: number): Promise<Uint8Array> {
  let img = sharp(buf);
  if (resizeTo !== undefined) img = img.resize(resizeTo, resizeTo, { kernel: 'linear', fit: 'fill', fastShrinkOnLoad: false });
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  const plane = info.width * info.height;
  const out = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = data[p * info.channels + (info.channels < 3 ? 0 : c)];
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Minimal zip writer (stored or deflated entries, no zip64): enough for test archives.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipItem {
  name: string;
  /** undefined: a directory entry (name should end with '/'). */
  data?: Buffer;
  deflate?: boolean;
}

export function zipBuffer(items: readonly ZipItem[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const name = Buffer.from(it.name, 'utf8');
    const raw = it.data ?? Buffer.alloc(0);
    const method = it.deflate && it.data !== undefined ? 8 : 0;
    const body = method === 8 ? zlib.deflateRawSync(raw) : raw;
    const crc = crc32(raw);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(it.data === undefined ? 0x10 : 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(items.length, 8);
  end.writeUInt16LE(items.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

// ------------------------------------------------------------------------------------------------
// Datasets

/** Files of a dataset: relative path -> content. */
export type Tree = Map<string, Buffer>;

/** A small CIFAKE-like dataset: `perClass[split][class]` generated JPEGs, seeds from `seed`. */
export async function cifakeTree(perClass: Record<string, Record<string, number>>, seed = 1, prefix = ''): Promise<Tree> {
  const tree: Tree = new Map();
  let s = seed * 100000;
  for (const [split, classes] of Object.entries(perClass)) {
    for (const [cls, n] of Object.entries(classes)) {
      for (let i = 0; i < n; i++) tree.set(`${prefix}${split}/${cls}/${i} (${(i % 7) + 1}).jpg`, await makeJpeg(s++));
    }
  }
  return tree;
}

export function writeFolder(root: string, tree: Tree): string {
  for (const [rel, data] of tree) {
    const p = path.join(root, ...rel.split('/'));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
  }
  return root;
}

export function writeZip(file: string, tree: Tree, opts: { deflate?: boolean; dirEntries?: boolean } = {}): string {
  const items: ZipItem[] = [];
  if (opts.dirEntries) {
    const dirs = new Set<string>();
    for (const rel of tree.keys()) {
      const parts = rel.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join('/')}/`);
    }
    for (const d of [...dirs].sort()) items.push({ name: d });
  }
  for (const [name, data] of tree) items.push({ name, data, deflate: opts.deflate });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, zipBuffer(items));
  return file;
}

export class TempDir {
  readonly path: string;
  constructor(label = 'cifake-data-test') {
    this.path = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
  }
  join(...p: string[]): string {
    return path.join(this.path, ...p);
  }
  remove(): void {
    fs.rmSync(this.path, { recursive: true, force: true });
  }
}

/** SHA-256 over every file under a folder (or of one file): to check that sources are not modified. */
export function treeHash(p: string): string {
  const h = createHash('sha256');
  const visit = (q: string, rel: string): void => {
    const st = fs.statSync(q);
    if (st.isDirectory()) {
      for (const n of fs.readdirSync(q).sort()) visit(path.join(q, n), `${rel}/${n}`);
    } else {
      h.update(`${rel}\0${st.size}\0${st.mtimeMs}\0`);
      h.update(fs.readFileSync(q));
    }
  };
  visit(p, '');
  return h.digest('hex');
}

/**
 * The native JPEG decoder: for development an addon named by CIFAKE_TEST_JPEG_ADDON (any .node
 * that exports decodeJpegBatch, e.g. a standalone build of native/jpeg*.cc), else the package's
 * addon (src/native.ts loadNative()); null when neither is available. Also installs it.
 */
export function nativeJpeg(): JpegBinding | null {
  const file = process.env.CIFAKE_TEST_JPEG_ADDON;
  if (file !== undefined && file !== '') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.resolve(file)) as JpegBinding;
    setJpegBinding(mod);
    return mod;
  }
  setJpegBinding(undefined);
  return jpegBinding();
}

// ------------------------------------------------------------------------------------------------
// The real CIFAKE data (never in the repository): found through an env var or next to the checkout.

/** `../shared/data` beside the repository root (the checkout's sibling folder), where the dev data lives. */
export const SHARED_DATA_DIR = path.resolve(__dirname, '..', '..', 'shared', 'data');
const REAL_ZIP_NAME = 'cifake-dev.zip';
const DUPLICATES_NAME = 'test-fake-duplicates.txt';

export interface RealDataLocation {
  /** The CIFAKE zip (or a CIFAKE folder), or null when there is none. */
  path: string | null;
  /** The folder that holds it (where the duplicates list is looked for); null with path. */
  dir: string | null;
  /** Where it was looked for, for skip messages. */
  note: string;
}

/**
 * Where the real CIFAKE data is: CIFAKE_DATA (the zip, or the folder holding cifake-dev.zip, or a
 * CIFAKE folder with train/ and test/), else CIFAKE_ZIP (the zip), else ../shared/data/cifake-dev.zip
 * from the repository root.
 */
export function realDataLocation(): RealDataLocation {
  for (const name of ['CIFAKE_DATA', 'CIFAKE_ZIP'] as const) {
    const v = process.env[name];
    if (v === undefined || v === '') continue;
    const abs = path.resolve(v);
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    if (st === undefined) return { path: null, dir: null, note: `${name}=${v} does not exist` };
    if (st.isDirectory()) {
      const zip = path.join(abs, REAL_ZIP_NAME);
      return fs.existsSync(zip) ? { path: zip, dir: abs, note: `${name}=${v}` } : { path: abs, dir: abs, note: `${name}=${v} (a CIFAKE folder)` };
    }
    return { path: abs, dir: path.dirname(abs), note: `${name}=${v}` };
  }
  const zip = path.join(SHARED_DATA_DIR, REAL_ZIP_NAME);
  if (fs.existsSync(zip)) return { path: zip, dir: SHARED_DATA_DIR, note: zip };
  return { path: null, dir: null, note: `${zip} not found; set CIFAKE_DATA to the CIFAKE zip or its folder` };
}

/** The real CIFAKE zip (or folder), or null when absent (see realDataLocation). */
export function realDataPath(): string | null {
  return realDataLocation().path;
}

/** test-fake-duplicates.txt beside the real data (else in ../shared/data), or null when absent. */
export function duplicatesListPath(): string | null {
  const { dir } = realDataLocation();
  for (const d of [dir, SHARED_DATA_DIR]) {
    if (d === null) continue;
    const p = path.join(d, DUPLICATES_NAME);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** The real data's path for a test, or skips it with a message that says where it was looked for. */
export function realDataOrSkip(ctx: Mocha.Context, what = 'this test'): string {
  const loc = realDataLocation();
  if (loc.path === null) {
    console.log(`      (skipped ${what}: ${loc.note})`);
    ctx.skip();
  }
  return loc.path as string;
}

// Decoding of image files to planar RGB (CHW) uint8 of IMAGE_SIZE x IMAGE_SIZE.
//
// Fast path: JPEGs of the right size are decoded by the addon's decodeJpegBatch (libjpeg-turbo,
// native/jpeg.cc) in two parallel calls, which gives pixels identical to sharp. Everything else
// goes through sharp: PNG, WebP, GIF, TIFF, AVIF..., CMYK JPEGs and JPEGs with an ICC profile (sharp
// colour-manages them to sRGB), and images that need resizing. Files the native decoder rejects are
// tried again with sharp, so both paths accept and reject the same files.
//
// Conventions (identical on both paths):
// - grayscale images are expanded to three identical planes; an alpha channel is dropped (not
//   composited); 16-bit images are reduced to 8 bits by sharp;
// - EXIF orientation is not applied (as for training data);
// - files libjpeg or libvips warn about (truncated data, corrupt entropy data...) are rejected, like
//   sharp's default failOn: 'warning';
// - images whose header declares more than maxPixels pixels are refused before any pixel is
//   decoded (status 'too-large'; sharp's own limit, ~268 Mpx, lets a 16000x16000 PNG through);
// - with resize: true, other sizes are resized to IMAGE_SIZE x IMAGE_SIZE by sharp with
//   kernel 'linear' (bilinear, as CIFAKE was made; for downscaling libvips widens the triangle
//   filter, i.e. antialiased bilinear) and fit 'fill' (the aspect ratio is not kept), without
//   JPEG shrink-on-load. Without resize they are rejected.
import sharp from 'sharp';
import * as fs from 'node:fs';
import { DataError, errorMessage } from './errors';
import { mapLimit, ReadResult } from './source';
import { IMAGE_SIZE, JpegBinding } from './types';

export type { JpegBatchResult, JpegBinding } from './types';

/** Status codes of decodeJpegBatch (cifake::JpegStatus). */
export const NativeJpegStatus = { Ok: 0, Corrupt: 1, WrongSize: 2, Unsupported: 3 } as const;

let binding: JpegBinding | null | undefined;

function isJpegBinding(b: unknown): b is JpegBinding {
  return typeof b === 'object' && b !== null && typeof (b as { decodeJpegBatch?: unknown }).decodeJpegBatch === 'function';
}

/**
 * The addon's JPEG decoder, or null when the addon is not built, was built without libjpeg, or
 * CIFAKE_NATIVE_JPEG=0 is set (then sharp decodes everything).
 */
export function jpegBinding(): JpegBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  if (process.env.CIFAKE_NATIVE_JPEG === '0') return binding;
  try {
    // src/native.ts exports loadNative(), which throws when the addon is missing.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require('../native') as { loadNative?: () => unknown };
    const b = typeof native.loadNative === 'function' ? native.loadNative() : undefined;
    if (isJpegBinding(b)) binding = b;
  } catch {
    binding = null;
  }
  return binding;
}

/** Overrides the JPEG decoder: null forces sharp, undefined goes back to auto-detection (tests, debugging). */
export function setJpegBinding(b: JpegBinding | null | undefined): void {
  if (b !== null && b !== undefined && !isJpegBinding(b)) throw new TypeError('setJpegBinding: object without decodeJpegBatch');
  binding = b;
}

export type DecodeStatus = 'ok' | 'corrupt' | 'wrong-size' | 'too-large';

/** Default pixel limit (width x height from the header) of training data: 8192 x 8192. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;
/** Default pixel limit of images to classify (decodeImages, Classifier, the server): 4096 x 4096. */
export const PREDICT_MAX_PIXELS = 4096 * 4096;

/** Checks a maxPixels option (a positive integer); `field` names it in the error. */
export function checkMaxPixels(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new DataError(`${field} must be a positive integer (width x height), got ${String(value)}`);
  return value;
}

function describeLimit(maxPixels: number): string {
  const side = Math.sqrt(maxPixels);
  return Number.isInteger(side) ? `${maxPixels} pixels (${side}x${side})` : `${maxPixels} pixels`;
}

export interface DecodeResult {
  status: DecodeStatus;
  /** Empty when ok. */
  message: string;
  /** Which decoder produced the pixels (null when the file was rejected). */
  via: 'native' | 'sharp' | null;
  /** true when the image was resized (resize option). */
  resized: boolean;
}

export interface DecodeBatchOptions {
  resize: boolean;
  /** Output side, default IMAGE_SIZE. */
  size?: number;
  /** Images whose header declares more pixels (width x height) are refused undecoded. Default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
  /** Checked before the native calls and before each file on the sharp path: aborting rejects with its reason. */
  signal?: AbortSignal;
}

const SHARP_CONCURRENCY = 4;
/** The native batch is split into this many parallel calls (one per core of the target machines). */
const NATIVE_PARALLEL = 2;

function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/** Decodes one image with sharp into out (3 * size * size bytes, CHW). */
async function decodeWithSharp(buf: Uint8Array, size: number, resize: boolean, maxPixels: number, out: Uint8Array): Promise<DecodeResult> {
  try {
    // metadata() reads only the header: nothing is decoded before the size checks.
    const meta = await sharp(buf, { failOn: 'warning', limitInputPixels: false }).metadata();
    const w = meta.width ?? 0;
    const h = meta.height ?? 0;
    const needsResize = w !== size || h !== size;
    if (needsResize && !resize) {
      return { status: 'wrong-size', message: `image is ${w}x${h}, expected ${size}x${size}`, via: null, resized: false };
    }
    if (w * h > maxPixels) {
      return { status: 'too-large', message: `image is ${w}x${h} (${w * h} pixels), over the limit of ${describeLimit(maxPixels)} (maxPixels)`, via: null, resized: false };
    }
    // limitInputPixels: the same limit again inside libvips, in case the header and the data disagree.
    let img = sharp(buf, { failOn: 'warning', limitInputPixels: maxPixels });
    if (needsResize) img = img.resize(size, size, { kernel: 'linear', fit: 'fill', fastShrinkOnLoad: false });
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size) {
      return { status: 'corrupt', message: `decoder returned ${info.width}x${info.height}`, via: null, resized: false };
    }
    hwcToChw(data, info.channels, size * size, out);
    return { status: 'ok', message: '', via: 'sharp', resized: needsResize };
  } catch (e) {
    return { status: 'corrupt', message: errorMessage(e), via: null, resized: false };
  }
}

/** Interleaved pixels with 1-4 channels (gray, gray+alpha, RGB, RGBA) to three planes. */
function hwcToChw(src: Uint8Array, channels: number, plane: number, out: Uint8Array): void {
  if (channels === 1 || channels === 2) {
    for (let p = 0, i = 0; p < plane; p++, i += channels) {
      const v = src[i];
      out[p] = v;
      out[plane + p] = v;
      out[2 * plane + p] = v;
    }
  } else {
    for (let p = 0, i = 0; p < plane; p++, i += channels) {
      out[p] = src[i];
      out[plane + p] = src[i + 1];
      out[2 * plane + p] = src[i + 2];
    }
  }
}

/**
 * Reusable input buffers for successive decodeBatch calls that do not overlap in time (large fresh
 * allocations are slow: every new page faults, ~8 ms per MB in some VMs).
 */
export class DecodeScratch {
  private readonly blobs: Buffer[] = [];
  private busy = false;

  blob(part: number, bytes: number): Buffer {
    let b = this.blobs[part];
    if (b === undefined || b.length < bytes) {
      b = Buffer.allocUnsafe(Math.max(bytes, 2 * (b?.length ?? 0), 1 << 16));
      this.blobs[part] = b;
    }
    return b.subarray(0, bytes);
  }

  acquire(): void {
    if (this.busy) throw new Error('DecodeScratch used by two decodeBatch calls at once');
    this.busy = true;
  }

  release(): void {
    this.busy = false;
  }
}

export interface DecodeBatchTarget {
  /** Where to write the images (exactly inputs.length x 3 x size x size bytes); default a new array. */
  out?: Uint8Array;
  scratch?: DecodeScratch;
}

/**
 * Decodes a batch of file contents (or read failures) into images (N x 3 x size x size, a zero
 * image for every failure) and one result per input. Never throws for a bad image.
 */
export async function decodeBatch(
  inputs: readonly ReadResult[],
  opts: DecodeBatchOptions,
  target: DecodeBatchTarget = {},
): Promise<{ images: Uint8Array; results: DecodeResult[] }> {
  const size = opts.size ?? IMAGE_SIZE;
  const imageBytes = 3 * size * size;
  const n = inputs.length;
  if (target.out !== undefined && target.out.length !== n * imageBytes) throw new Error(`decodeBatch: out has ${target.out.length} bytes, expected ${n * imageBytes}`);
  const images = target.out ?? new Uint8Array(n * imageBytes);
  const scratch = target.scratch ?? new DecodeScratch();
  scratch.acquire();
  try {
    const maxPixels = checkMaxPixels(opts.maxPixels, DEFAULT_MAX_PIXELS, 'maxPixels');
    opts.signal?.throwIfAborted();
    return { images, results: await decodeInto(inputs, { resize: opts.resize, size, maxPixels, signal: opts.signal }, images, scratch) };
  } finally {
    scratch.release();
  }
}

async function decodeInto(
  inputs: readonly ReadResult[],
  { resize, size, maxPixels, signal }: Required<Omit<DecodeBatchOptions, 'signal'>> & Pick<DecodeBatchOptions, 'signal'>,
  images: Uint8Array,
  scratch: DecodeScratch,
): Promise<DecodeResult[]> {
  const imageBytes = 3 * size * size;
  const n = inputs.length;
  const results: DecodeResult[] = new Array(n);
  const nativeIdx: number[] = [];
  const sharpIdx: number[] = [];
  const native = jpegBinding();
  for (let i = 0; i < n; i++) {
    const input = inputs[i];
    if (!(input instanceof Uint8Array)) {
      results[i] = { status: 'corrupt', message: input.error, via: null, resized: false };
    } else if (input.length === 0) {
      results[i] = { status: 'corrupt', message: 'empty file', via: null, resized: false };
    } else if (native !== null && isJpeg(input)) {
      nativeIdx.push(i);
    } else {
      sharpIdx.push(i);
    }
  }

  if (nativeIdx.length > 0 && native !== null) {
    const parts = Math.min(NATIVE_PARALLEL, nativeIdx.length);
    const per = Math.ceil(nativeIdx.length / parts);
    const chunks: number[][] = [];
    for (let p = 0; p < parts; p++) chunks.push(nativeIdx.slice(p * per, (p + 1) * per));
    const retry: number[][] = await Promise.all(
      chunks.map(async (idx, part) => {
        let total = 0;
        for (const i of idx) total += (inputs[i] as Uint8Array).length;
        const blob = scratch.blob(part, total);
        const offsets = new Uint32Array(idx.length + 1);
        let o = 0;
        idx.forEach((i, k) => {
          const b = inputs[i] as Uint8Array;
          offsets[k] = o;
          blob.set(b, o);
          o += b.length;
        });
        offsets[idx.length] = o;
        // Consecutive inputs (the usual case): decode straight into their slots of `images`.
        const first = idx[0];
        const contiguous = idx[idx.length - 1] - first === idx.length - 1;
        const outPart = contiguous ? images.subarray(first * imageBytes, (first + idx.length) * imageBytes) : undefined;
        const r = await native.decodeJpegBatch(blob, offsets, size, outPart);
        const inPlace = outPart !== undefined && r.images === outPart;
        const again: number[] = [];
        idx.forEach((i, k) => {
          const status = r.status[k];
          if (status === NativeJpegStatus.Ok) {
            if (!inPlace) images.set(r.images.subarray(k * imageBytes, (k + 1) * imageBytes), i * imageBytes);
            results[i] = { status: 'ok', message: '', via: 'native', resized: false };
          } else if (status === NativeJpegStatus.WrongSize && !resize) {
            results[i] = { status: 'wrong-size', message: r.messages[k], via: null, resized: false };
          } else {
            // Unsupported or wrong size with resize: sharp's job. Corrupt: sharp must agree (keep libjpeg's message).
            if (status === NativeJpegStatus.Corrupt) results[i] = { status: 'corrupt', message: r.messages[k], via: null, resized: false };
            again.push(i);
          }
        });
        return again;
      }),
    );
    for (const list of retry) sharpIdx.push(...list);
  }

  await mapLimit(sharpIdx, SHARP_CONCURRENCY, async (i) => {
    signal?.throwIfAborted();
    const out = images.subarray(i * imageBytes, (i + 1) * imageBytes);
    const r = await decodeWithSharp(inputs[i] as Uint8Array, size, resize, maxPixels, out);
    const nativeVerdict = results[i];
    // A JPEG libjpeg found corrupt that sharp also rejects: report libjpeg's message.
    results[i] = r.status === 'corrupt' && nativeVerdict?.status === 'corrupt' ? nativeVerdict : r;
  });
  for (let i = 0; i < n; i++) if (results[i].status !== 'ok') images.fill(0, i * imageBytes, (i + 1) * imageBytes);
  return results;
}

export interface DecodeImagesOptions {
  /** Resize images of another size to 32x32 (bilinear); otherwise they are errors. Default false. */
  resize?: boolean;
  /** Throw a DataError on the first input that cannot be decoded. Default false. */
  strict?: boolean;
  /** Images whose header declares more pixels (width x height) are refused undecoded. Default PREDICT_MAX_PIXELS (4096 x 4096). */
  maxPixels?: number;
}

export interface DecodedImages {
  /** count x 3 x 32 x 32 uint8 CHW: the inputs that decoded, in input order. */
  images: Uint8Array;
  count: number;
  /** indices[k] is the input index of image k. */
  indices: Uint32Array;
  /** Inputs that could not be decoded ('corrupt' covers unreadable files). */
  errors: Array<{ index: number; name: string; message: string; status: Exclude<DecodeStatus, 'ok'> }>;
}

/**
 * Decodes arbitrary images (file paths or encoded bytes: JPEG, PNG, WebP, ...) exactly as training
 * data is decoded. Used for prediction and by the embedding API for uploads.
 */
export async function decodeImages(inputs: ReadonlyArray<string | Uint8Array>, opts: DecodeImagesOptions = {}): Promise<DecodedImages> {
  const maxPixels = checkMaxPixels(opts.maxPixels, PREDICT_MAX_PIXELS, 'options.maxPixels');
  const names = inputs.map((x, i) => (typeof x === 'string' ? x : `input[${i}]`));
  const reads: ReadResult[] = await mapLimit(inputs, 16, async (x): Promise<ReadResult> => {
    if (typeof x !== 'string') return Buffer.isBuffer(x) ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    try {
      return await fs.promises.readFile(x);
    } catch (e) {
      return { error: `cannot read file: ${errorMessage(e)}` };
    }
  });
  const resize = opts.resize ?? false;
  const { images, results } = await decodeBatch(reads, { resize, maxPixels });
  const errors: DecodedImages['errors'] = [];
  const indices: number[] = [];
  results.forEach((r, i) => {
    if (r.status === 'ok') indices.push(i);
    else {
      const message = r.status === 'wrong-size' ? `${r.message} (pass resize: true to resize it)` : r.message;
      errors.push({ index: i, name: names[i], message, status: r.status as Exclude<DecodeStatus, 'ok'> });
    }
  });
  if (opts.strict && errors.length > 0) {
    const e = errors[0];
    throw new DataError(`${e.name}: ${e.message}`, e.name);
  }
  const imageBytes = 3 * IMAGE_SIZE * IMAGE_SIZE;
  let out = images;
  if (indices.length !== inputs.length) {
    out = new Uint8Array(indices.length * imageBytes);
    indices.forEach((i, k) => out.set(images.subarray(i * imageBytes, (i + 1) * imageBytes), k * imageBytes));
  }
  return { images: out, count: indices.length, indices: Uint32Array.from(indices), errors };
}

/**
 * Image perturbations for robustness evaluation and training, on batches of planar uint8 images
 * (N x 3 x S x S, the layout the data pipeline hands to the model). Each result is rounded back to
 * uint8, as a re-saved image would be, and every random draw comes from a seeded stream per image,
 * so a perturbation is a pure function of (images, spec, seed).
 *
 * Spec strings (the CLI's and the library's): `name` or `name:value`, composed left to right with
 * `+` (e.g. `resize:16+jpeg:75` = down-up resize to 16 px, then re-save at JPEG quality 75):
 *   jpeg:Q        re-encode at quality Q (1..100) with libjpeg in the addon, decode as the pipeline does
 *   blur:S        Gaussian blur, sigma S pixels (0 < S <= 8), kernel radius ceil(3 S), mirrored edges
 *   resize:P      down to P x P (4 <= P < S) and back, triangle (bilinear, antialiased) filter both ways
 *   noise:S       additive Gaussian noise, sigma S in 0..255 pixel units (0 < S <= 128)
 *   brightness:B  add B * 255 to every pixel (-1 <= B <= 1)
 *   contrast:C    scale the distance to the image's mean by C (0 <= C <= 4)
 *   crop:P        centre crop P x P (4 <= P < S), resized back to S x S
 *   shift:D       translate by D pixels right and down (1 <= D <= 8), edges replicated
 *   hflip         mirror left-right
 */
import { mulberry32 } from '../util/random';
import { jpegRoundTrip } from './jpeg';

export type PerturbationName = 'jpeg' | 'blur' | 'resize' | 'noise' | 'brightness' | 'contrast' | 'crop' | 'shift' | 'hflip';

export interface PerturbationStep {
  name: PerturbationName;
  /** the step's strength; undefined for hflip */
  value?: number;
}

/** One perturbation: a composition of steps applied left to right. */
export interface Perturbation {
  /** canonical spec string, e.g. `resize:16+jpeg:75` */
  spec: string;
  steps: PerturbationStep[];
}

export class PerturbationSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PerturbationSpecError';
  }
}

interface StepRule {
  needsValue: boolean;
  integer?: boolean;
  min: number;
  max: number;
  minExclusive?: boolean;
  /** the limit depends on the image size */
  belowSize?: boolean;
  allowed: string;
}

const RULES: Record<PerturbationName, StepRule> = {
  jpeg: { needsValue: true, integer: true, min: 1, max: 100, allowed: 'jpeg:Q with Q an integer 1..100' },
  blur: { needsValue: true, min: 0, max: 8, minExclusive: true, allowed: 'blur:S with 0 < S <= 8 (pixels)' },
  resize: { needsValue: true, integer: true, min: 4, max: Infinity, belowSize: true, allowed: 'resize:P with P an integer, 4 <= P < image size' },
  noise: { needsValue: true, min: 0, max: 128, minExclusive: true, allowed: 'noise:S with 0 < S <= 128 (0..255 units)' },
  brightness: { needsValue: true, min: -1, max: 1, allowed: 'brightness:B with -1 <= B <= 1' },
  contrast: { needsValue: true, min: 0, max: 4, allowed: 'contrast:C with 0 <= C <= 4' },
  crop: { needsValue: true, integer: true, min: 4, max: Infinity, belowSize: true, allowed: 'crop:P with P an integer, 4 <= P < image size' },
  shift: { needsValue: true, integer: true, min: 1, max: 8, allowed: 'shift:D with D an integer 1..8' },
  hflip: { needsValue: false, min: 0, max: 0, allowed: 'hflip (no value)' },
};

export const PERTURBATION_NAMES = Object.keys(RULES) as PerturbationName[];

/** Parses one spec string (`blur:1+jpeg:50`); throws PerturbationSpecError naming the bad part. */
export function parsePerturbation(spec: string, imageSize = 32): Perturbation {
  if (typeof spec !== 'string' || spec.trim() === '') throw new PerturbationSpecError(`perturbation: empty spec (expected e.g. jpeg:50, blur:1, resize:16+jpeg:75)`);
  const steps: PerturbationStep[] = [];
  for (const raw of spec.split('+')) {
    const part = raw.trim();
    const [name, value, extra] = part.split(':');
    if (!(name in RULES)) throw new PerturbationSpecError(`perturbation '${spec}': unknown step '${name}' (allowed: ${PERTURBATION_NAMES.join(', ')})`);
    const rule = RULES[name as PerturbationName];
    if (extra !== undefined) throw new PerturbationSpecError(`perturbation '${spec}': '${part}' has more than one value (allowed: ${rule.allowed})`);
    if (!rule.needsValue) {
      if (value !== undefined) throw new PerturbationSpecError(`perturbation '${spec}': '${name}' takes no value (allowed: ${rule.allowed})`);
      steps.push({ name: name as PerturbationName });
      continue;
    }
    const v = value === undefined || value.trim() === '' ? NaN : Number(value);
    const max = rule.belowSize ? imageSize - 1 : rule.max;
    const ok = Number.isFinite(v) && (rule.minExclusive ? v > rule.min : v >= rule.min) && v <= max && (!rule.integer || Number.isInteger(v));
    if (!ok) throw new PerturbationSpecError(`perturbation '${spec}': invalid '${part}' (allowed: ${rule.allowed}${rule.belowSize ? `, image size ${imageSize}` : ''})`);
    steps.push({ name: name as PerturbationName, value: v });
  }
  return { spec: steps.map((s) => (s.value === undefined ? s.name : `${s.name}:${s.value}`)).join('+'), steps };
}

/**
 * The default robustness suite: JPEG re-saves, blurs, down-up resizes, noise, brightness/contrast,
 * crops, a mirror and two compositions (each at several strengths).
 */
export const DEFAULT_SUITE: readonly string[] = Object.freeze([
  'jpeg:95', 'jpeg:75', 'jpeg:50', 'jpeg:30',
  'blur:0.5', 'blur:1',
  'resize:24', 'resize:16',
  'noise:4', 'noise:8', 'noise:16',
  'brightness:0.15', 'brightness:-0.15', 'contrast:0.7', 'contrast:1.3',
  'crop:28', 'crop:24',
  'hflip',
  'resize:16+jpeg:75', 'blur:0.5+jpeg:75',
]);

/** The mild variants behind flip-consistency and `predict`'s stability option. */
export const MILD_SUITE: readonly string[] = Object.freeze(['jpeg:90', 'shift:1', 'hflip']);

// ---------------------------------------------------------------------------
// seeded streams

/** A reproducible stream for (seed, image index, step index). */
export function streamFor(seed: number, image: number, step: number): () => number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(image + 1, 0xc2b2ae35) ^ Math.imul(step + 1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return mulberry32(h ^ (h >>> 16));
}

function gaussian(rand: () => number): number {
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

// ---------------------------------------------------------------------------
// single-image operations on float planes (3 x s x s), values in 0..255

type Planes = Float32Array;

/** Mirrored index (edge pixel repeated: ... 1 0 | 0 1 2 ... as scipy's 'reflect'). */
function mirror(i: number, n: number): number {
  const period = 2 * n;
  let k = ((i % period) + period) % period;
  if (k >= n) k = period - 1 - k;
  return k;
}

export function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

function blur(x: Planes, s: number, sigma: number): Planes {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(x.length), out = new Float32Array(x.length);
  for (let c = 0; c < 3; c++) {
    const o = c * s * s;
    for (let y = 0; y < s; y++)
      for (let xx = 0; xx < s; xx++) {
        let acc = 0;
        for (let j = -r; j <= r; j++) acc += k[j + r] * x[o + y * s + mirror(xx + j, s)];
        tmp[o + y * s + xx] = acc;
      }
    for (let y = 0; y < s; y++)
      for (let xx = 0; xx < s; xx++) {
        let acc = 0;
        for (let j = -r; j <= r; j++) acc += k[j + r] * tmp[o + mirror(y + j, s) * s + xx];
        out[o + y * s + xx] = acc;
      }
  }
  return out;
}

/**
 * 1-D resampling weights from n inputs to m outputs with a triangle filter widened by the
 * downscale factor (Pillow's antialiased BILINEAR); pixel centres at (i + 0.5).
 */
function resampleWeights(n: number, m: number, offset = 0, span = n): { first: Int32Array; w: Float32Array[] } {
  const scale = span / m;
  const support = Math.max(1, scale);
  const first = new Int32Array(m);
  const w: Float32Array[] = [];
  for (let i = 0; i < m; i++) {
    const centre = offset + (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support)), hi = Math.min(n - 1, Math.ceil(centre + support));
    const ws = new Float32Array(hi - lo + 1);
    let sum = 0;
    for (let j = lo; j <= hi; j++) sum += ws[j - lo] = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
    for (let j = 0; j < ws.length; j++) ws[j] /= sum;
    first[i] = lo;
    w.push(ws);
  }
  return { first, w };
}

/** Resamples each plane's window [offset, offset + span)^2 of an n x n image to m x m. */
function resample(x: Planes, n: number, m: number, offset = 0, span = n): Planes {
  const { first, w } = resampleWeights(n, m, offset, span);
  const tmp = new Float32Array(3 * n * m), out = new Float32Array(3 * m * m);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < n; y++)
      for (let i = 0; i < m; i++) {
        let acc = 0;
        const ws = w[i];
        for (let j = 0; j < ws.length; j++) acc += ws[j] * x[c * n * n + y * n + first[i] + j];
        tmp[c * n * m + y * m + i] = acc;
      }
    for (let i = 0; i < m; i++)
      for (let xx = 0; xx < m; xx++) {
        let acc = 0;
        const ws = w[i];
        for (let j = 0; j < ws.length; j++) acc += ws[j] * tmp[c * n * m + (first[i] + j) * m + xx];
        out[c * m * m + i * m + xx] = acc;
      }
  }
  return out;
}

const round = (x: Planes) => {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(255, Math.max(0, Math.round(x[i])));
  return x;
};

function applyPixelStep(x: Planes, s: number, step: PerturbationStep, rand: () => number): Planes {
  const v = step.value ?? 0;
  switch (step.name) {
    case 'blur':
      return blur(x, s, v);
    case 'resize':
      return resample(round(resample(x, s, v)), v, s);
    case 'crop':
      return resample(x, s, s, (s - v) / 2, v);
    case 'noise':
      for (let i = 0; i < x.length; i++) x[i] += v * gaussian(rand);
      return x;
    case 'brightness':
      for (let i = 0; i < x.length; i++) x[i] += v * 255;
      return x;
    case 'contrast': {
      let mean = 0;
      for (let i = 0; i < x.length; i++) mean += x[i];
      mean /= x.length;
      for (let i = 0; i < x.length; i++) x[i] = mean + (x[i] - mean) * v;
      return x;
    }
    case 'shift': {
      const out = new Float32Array(x.length);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < s; y++)
          for (let xx = 0; xx < s; xx++) out[c * s * s + y * s + xx] = x[c * s * s + Math.max(0, y - v) * s + Math.max(0, xx - v)];
      return out;
    }
    case 'hflip': {
      const out = new Float32Array(x.length);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < s; y++) for (let xx = 0; xx < s; xx++) out[c * s * s + y * s + xx] = x[c * s * s + y * s + (s - 1 - xx)];
      return out;
    }
    default:
      throw new Error(`applyPixelStep: ${step.name} is not a pixel step`);
  }
}

// ---------------------------------------------------------------------------
// batches

function imageCount(images: Uint8Array, size: number): number {
  const per = 3 * size * size;
  if (images.length % per !== 0) throw new RangeError(`perturb: ${images.length} bytes is not a whole number of 3 x ${size} x ${size} images`);
  return images.length / per;
}

/** Applies one pixel-domain step (not jpeg) to every image whose mask entry is set (all when null). */
function applyStepToBatch(images: Uint8Array, size: number, step: PerturbationStep, stepIndex: number, seed: number, mask: Uint8Array | null): Uint8Array {
  const per = 3 * size * size, n = images.length / per;
  const out = new Uint8Array(images);
  const x = new Float32Array(per);
  for (let i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    for (let k = 0; k < per; k++) x[k] = images[i * per + k];
    const y = round(applyPixelStep(x, size, step, streamFor(seed, i, stepIndex)));
    out.set(y, i * per);
  }
  return out;
}

/**
 * Applies a perturbation to a batch of planar uint8 images; returns a new buffer (the input is
 * left as it is). `seed` fixes the random draws (noise) per image.
 */
export async function perturbImages(images: Uint8Array, perturbation: Perturbation | string, options: { size?: number; seed?: number } = {}): Promise<Uint8Array> {
  const size = options.size ?? 32;
  const p = typeof perturbation === 'string' ? parsePerturbation(perturbation, size) : perturbation;
  const n = imageCount(images, size);
  let cur = images;
  for (let k = 0; k < p.steps.length; k++) {
    const step = p.steps[k];
    if (step.name === 'jpeg') cur = await jpegRoundTrip(cur, new Uint8Array(n).fill(step.value ?? 0), size);
    else cur = applyStepToBatch(cur, size, step, k, options.seed ?? 0, null);
  }
  return cur === images ? new Uint8Array(images) : cur;
}

/** Applies one pixel-domain step (not jpeg) to a single planar image; returns a new buffer. */
export function applyStepToImage(image: Uint8Array, size: number, step: PerturbationStep, rand: () => number): Uint8Array {
  if (step.name === 'jpeg') throw new Error('applyStepToImage: jpeg runs in batches (jpegRoundTrip)');
  return Uint8Array.from(round(applyPixelStep(Float32Array.from(image), size, step, rand)));
}

/** Peak signal-to-noise ratio in dB between two uint8 buffers (Infinity when equal). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`psnr: ${a.length} vs ${b.length} bytes`);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / a.length));
}

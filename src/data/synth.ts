/**
 * Deterministic generator of a small CIFAKE-shaped *demo* data set.
 *
 * `cifake train` without `--data` must work on a fresh machine with no
 * download, so this module renders a synthetic stand-in for CIFAKE: 32x32 RGB
 * JPEGs (quality 75) in the Kaggle layout `train/REAL`, `train/FAKE`,
 * `test/REAL`, `test/FAKE` (labels FAKE = 0, REAL = 1).
 *
 * It is a demo that exercises the whole pipeline (decode, train, evaluate,
 * explain, serve). It is NOT a detector benchmark and numbers measured on it
 * say nothing about CIFAKE or about real AI-generated images.
 *
 * Image model (both classes share one procedural scene generator: a background
 * (horizon split, linear or radial gradient), 0-5 shapes (ellipses, rotated
 * rectangles, triangles, metaball blobs) with shading, a 1/f ("pink")
 * value-noise texture, vignette and gamma):
 *  - REAL: rendered directly at 32x32 with 2x2 supersampled (sharp) edges, the
 *    full texture spectrum and per-pixel sensor-like noise. Some are
 *    defocused or upsampled from 24-28 px (as many CIFAR photos are), so the
 *    classes overlap.
 *  - FAKE: the same scenes carrying diffusion-like traces, each with a random
 *    per-image strength: rendered at 16-28 px and bilinearly upsampled to 32,
 *    attenuated fine texture (over-smoothing), little or no sensor noise,
 *    boosted saturation, and a faint periodic pattern of period 8 px (as left
 *    by latent-diffusion VAE decoders).
 *
 * Every image has its own PRNG stream derived from (seed, split, class,
 * index), so the output is byte-identical for a given seed and sharp/libvips
 * build, whatever the write order.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

/** Bump when the image model or layout changes (invalidates cached sets). */
export const SYNTH_VERSION = 1;
export const SYNTH_MARKER = '.cifake-synth.json';
export const SYNTH_README = 'SYNTHETIC.md';
const MARKER_FORMAT = 'cifake-synth';
const README_SIGNATURE = '<!-- cifake-synth demo data set -->';
const SIZE = 32;
const CONCURRENCY = 8;

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

const SPLITS: readonly SynthSplit[] = ['train', 'test'];
const CLASSES: readonly SynthClass[] = ['REAL', 'FAKE'];

interface ResolvedOptions {
  trainPerClass: number;
  testPerClass: number;
  seed: number;
  quality: number;
}

function resolveOptions(opts: SynthOptions = {}): ResolvedOptions {
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

function countsOf(o: ResolvedOptions): SynthCounts {
  return {
    train: { REAL: o.trainPerClass, FAKE: o.trainPerClass },
    test: { REAL: o.testPerClass, FAKE: o.testPerClass },
  };
}

/** File name of image `index` (same in every class directory). */
export function synthFileName(index: number): string {
  return `synth_${String(index).padStart(5, '0')}.jpg`;
}

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/** 32-bit integer hash (murmur3 finaliser). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function imageSeed(seed: number, split: number, cls: number, index: number): number {
  let h = mix32(seed ^ 0x9e3779b9);
  h = mix32(h ^ Math.imul(split + 1, 0x85ebca6b));
  h = mix32(h ^ Math.imul(cls + 1, 0xc2b2ae35));
  h = mix32(h ^ Math.imul(index + 1, 0x27d4eb2f));
  return mix32((h + index) >>> 0);
}

/** mulberry32 with a few helpers. No transcendental functions in the draws. */
class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = Math.imul(this.a ^ (this.a >>> 15), 1 | this.a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiInclusive: number): number {
    return lo + Math.floor(this.next() * (hiInclusive - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Zero-mean, unit-variance triangular variate (cheap noise). */
  tri(): number {
    return (this.next() + this.next() - 1) * 2.449489742783178;
  }
  /** Approximately standard normal (Irwin-Hall, 4 uniforms). */
  normal(): number {
    return (this.next() + this.next() + this.next() + this.next() - 2) * 1.7320508075688772;
  }
  pick<T>(items: readonly T[], weights: readonly number[]): T {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      x -= weights[i];
      if (x < 0) return items[i];
    }
    return items[items.length - 1];
  }
}

// ---------------------------------------------------------------------------
// Scene model
// ---------------------------------------------------------------------------

type RGB = [number, number, number];

function hsv(h: number, s: number, v: number): RGB {
  h = (h - Math.floor(h)) * 6;
  const i = Math.floor(h);
  const f = h - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (i % 6) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}

/** A colour with natural-image-like statistics: mostly muted, sometimes vivid. */
function randomColour(rng: Rng, hue?: number): RGB {
  const h = hue ?? rng.next();
  const s = 0.05 + 0.75 * rng.next() ** 1.4;
  const v = 0.12 + 0.83 * rng.next() ** 0.8;
  return hsv(h, s, v);
}

function jitterColour(rng: Rng, c: RGB, amount: number): RGB {
  return [
    c[0] + amount * rng.normal(),
    c[1] + amount * rng.normal(),
    c[2] + amount * rng.normal(),
  ];
}

/** Multi-octave value noise; lattice octave g has g x g points over [0,1]^2. */
class ValueNoise {
  private readonly octaves: { g: number; amp: number; lat: Float32Array }[] = [];
  constructor(rng: Rng, grids: readonly number[], beta: number) {
    let norm = 0;
    for (const g of grids) {
      const amp = (g / 2) ** -beta;
      norm += amp * amp;
      const lat = new Float32Array(g * g);
      for (let i = 0; i < lat.length; i++) lat[i] = rng.normal();
      this.octaves.push({ g, amp, lat });
    }
    norm = 1 / Math.sqrt(norm);
    for (const o of this.octaves) o.amp *= norm;
  }
  /** Multiply the amplitude of octaves g >= 8 by atten^(log2(g) - 2). */
  attenuateFine(atten: number): void {
    for (const o of this.octaves) {
      let f = 1;
      for (let g = 8; g <= o.g; g *= 2) f *= atten;
      o.amp *= f;
    }
  }
  /**
   * Fill `out[0 .. res*res)` with the field sampled at the pixel centres of a
   * res x res image (lattice points sit on the pixel centres of a g x g grid;
   * smoothstep-bilinear interpolation, edge clamp).
   */
  fill(res: number, out: Float32Array): void {
    out.fill(0, 0, res * res);
    const ix = new Int32Array(res);
    const fw = new Float64Array(res);
    for (const o of this.octaves) {
      const g = o.g;
      for (let p = 0; p < res; p++) {
        let x = ((p + 0.5) / res) * g - 0.5;
        x = x < 0 ? 0 : x > g - 1 ? g - 1 : x;
        let i = Math.floor(x);
        if (i > g - 2) i = g - 2;
        const f = x - i;
        ix[p] = i;
        fw[p] = f * f * (3 - 2 * f);
      }
      const l = o.lat;
      const amp = o.amp;
      for (let y = 0; y < res; y++) {
        const row = ix[y] * g;
        const fy = fw[y];
        for (let x = 0; x < res; x++) {
          const i0 = row + ix[x];
          const fx = fw[x];
          const a = l[i0] + (l[i0 + 1] - l[i0]) * fx;
          const b = l[i0 + g] + (l[i0 + g + 1] - l[i0 + g]) * fx;
          out[y * res + x] += amp * (a + (b - a) * fy);
        }
      }
    }
  }
}

interface Material {
  colour: RGB;
  /** Luminance texture amplitude of this surface. */
  tex: number;
}

interface Sample {
  r: number;
  g: number;
  b: number;
  tex: number;
}

type Background =
  | { kind: 'horizon'; y0: number; slope: number; skyTop: RGB; skyLow: RGB; groundHigh: RGB; groundLow: RGB; skyTex: number; groundTex: number }
  | { kind: 'linear'; dx: number; dy: number; c1: RGB; c2: RGB; bend: number; tex: number }
  | { kind: 'radial'; cx: number; cy: number; radius: number; c1: RGB; c2: RGB; tex: number };

interface ShapeBase {
  cx: number;
  cy: number;
  cos: number;
  sin: number;
  size: number;
  /** Bounding box in [0,1] image coordinates. */
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  mat: Material;
  alpha: number;
  /** Shading: light direction and strength. */
  lx: number;
  ly: number;
  shade: number;
}

type Shape =
  | (ShapeBase & { kind: 'ellipse'; rx: number; ry: number })
  | (ShapeBase & { kind: 'rect'; hx: number; hy: number })
  | (ShapeBase & { kind: 'triangle'; pts: [number, number, number, number, number, number] })
  | (ShapeBase & { kind: 'blob'; balls: { x: number; y: number; r2: number }[] });

interface Scene {
  bg: Background;
  shapes: Shape[];
  lum: ValueNoise;
  chromaA: ValueNoise;
  chromaB: ValueNoise;
  chromaAmp: number;
  vignette: number;
  /** Output gamma in percent (80-125). */
  gamma: number;
  exposure: number;
}

function lerp3(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function makeBackground(rng: Rng): Background {
  const kind = rng.pick(['horizon', 'linear', 'radial'] as const, [0.45, 0.35, 0.2]);
  if (kind === 'horizon') {
    // Sky: blue-ish, grey or warm; ground: green, brown, grey or anything.
    const skyHue = rng.pick([0.58, 0.08, rng.next()], [0.5, 0.2, 0.3]) + 0.04 * rng.normal();
    const skyTop = hsv(skyHue, rng.uniform(0.05, 0.7), rng.uniform(0.35, 0.95));
    const skyLow = lerp3(skyTop, [0.92, 0.92, 0.92], rng.uniform(0.1, 0.6));
    const gHue = rng.pick([0.28, 0.09, rng.next()], [0.4, 0.3, 0.3]) + 0.04 * rng.normal();
    const groundHigh = hsv(gHue, rng.uniform(0.1, 0.75), rng.uniform(0.2, 0.8));
    const groundLow = lerp3(groundHigh, [0, 0, 0], rng.uniform(0, 0.6));
    return {
      kind,
      y0: rng.uniform(0.25, 0.75),
      slope: rng.uniform(-0.35, 0.35),
      skyTop,
      skyLow,
      groundHigh,
      groundLow,
      skyTex: rng.uniform(0.02, 0.15),
      groundTex: rng.uniform(0.05, 0.45),
    };
  }
  const c1 = randomColour(rng);
  const c2 = rng.chance(0.5) ? randomColour(rng) : jitterColour(rng, c1, 0.15);
  if (kind === 'linear') {
    const dx = rng.normal();
    const dy = rng.normal();
    const n = Math.sqrt(dx * dx + dy * dy) || 1;
    return { kind, dx: dx / n, dy: dy / n, c1, c2, bend: rng.uniform(-0.8, 0.8), tex: rng.uniform(0.02, 0.35) };
  }
  return {
    kind,
    cx: rng.uniform(0.1, 0.9),
    cy: rng.uniform(0.1, 0.9),
    radius: rng.uniform(0.3, 1.0),
    c1,
    c2,
    tex: rng.uniform(0.02, 0.35),
  };
}

function withBox<S extends Shape>(s: S, x0: number, x1: number, y0: number, y1: number): S {
  s.x0 = x0;
  s.x1 = x1;
  s.y0 = y0;
  s.y1 = y1;
  return s;
}

function makeShape(rng: Rng): Shape {
  const kind = rng.pick(['ellipse', 'rect', 'triangle', 'blob'] as const, [0.35, 0.25, 0.15, 0.25]);
  const theta = rng.uniform(0, Math.PI);
  const lx = rng.normal();
  const ly = rng.normal() - 0.7; // light mostly from above
  const ln = Math.sqrt(lx * lx + ly * ly) || 1;
  const base: ShapeBase = {
    cx: rng.uniform(0.08, 0.92),
    cy: rng.uniform(0.1, 0.95),
    cos: Math.cos(theta),
    sin: Math.sin(theta),
    size: 0,
    x0: 0,
    x1: 1,
    y0: 0,
    y1: 1,
    mat: { colour: randomColour(rng), tex: rng.uniform(0.05, 0.45) },
    alpha: rng.chance(0.8) ? 1 : rng.uniform(0.45, 0.9),
    lx: -lx / ln,
    ly: -ly / ln,
    shade: rng.uniform(0, 0.6),
  };
  switch (kind) {
    case 'ellipse': {
      const rx = rng.uniform(0.05, 0.35);
      const ry = rx * rng.uniform(0.3, 1.6);
      const r = Math.max(rx, ry);
      return withBox({ ...base, size: r, kind, rx, ry }, base.cx - r, base.cx + r, base.cy - r, base.cy + r);
    }
    case 'rect': {
      const hx = rng.uniform(0.015, 0.35);
      const hy = rng.uniform(0.015, 0.35);
      const r = Math.sqrt(hx * hx + hy * hy);
      return withBox({ ...base, size: Math.max(hx, hy), kind, hx, hy }, base.cx - r, base.cx + r, base.cy - r, base.cy + r);
    }
    case 'triangle': {
      const s = rng.uniform(0.08, 0.4);
      const pts: [number, number, number, number, number, number] = [0, 0, 0, 0, 0, 0];
      for (let i = 0; i < 3; i++) {
        pts[2 * i] = base.cx + s * rng.normal() * 0.8;
        pts[2 * i + 1] = base.cy + s * rng.normal() * 0.8;
      }
      const xs = [pts[0], pts[2], pts[4]];
      const ys = [pts[1], pts[3], pts[5]];
      return withBox({ ...base, size: s, kind, pts }, Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys));
    }
    default: {
      const n = rng.int(2, 4);
      const s = rng.uniform(0.06, 0.22);
      const balls: { x: number; y: number; r2: number }[] = [];
      for (let i = 0; i < n; i++) {
        const r = s * rng.uniform(0.5, 1.1);
        balls.push({ x: base.cx + s * rng.normal(), y: base.cy + s * rng.normal(), r2: r * r });
      }
      // Outside all balls' reach the field sum(r2 / d2) < 1 when d2 > n * r2max.
      let r2max = 0;
      for (const b of balls) r2max = Math.max(r2max, b.r2);
      const reach = Math.sqrt(n * r2max);
      let x0 = Infinity;
      let x1 = -Infinity;
      let y0 = Infinity;
      let y1 = -Infinity;
      for (const b of balls) {
        x0 = Math.min(x0, b.x - reach);
        x1 = Math.max(x1, b.x + reach);
        y0 = Math.min(y0, b.y - reach);
        y1 = Math.max(y1, b.y + reach);
      }
      return withBox({ ...base, size: 2 * s, kind: 'blob', balls }, x0, x1, y0, y1);
    }
  }
}

function makeScene(rng: Rng): Scene {
  const bg = makeBackground(rng);
  const n = rng.pick([0, 1, 2, 3, 4, 5], [0.06, 0.22, 0.26, 0.2, 0.14, 0.12]);
  const shapes: Shape[] = [];
  for (let i = 0; i < n; i++) shapes.push(makeShape(rng));
  const beta = rng.uniform(0.1, 0.9);
  return {
    bg,
    shapes,
    lum: new ValueNoise(rng, [2, 4, 8, 16, 32], beta),
    chromaA: new ValueNoise(rng, [2, 4, 8], 0.5),
    chromaB: new ValueNoise(rng, [2, 4, 8], 0.5),
    chromaAmp: rng.uniform(0, 0.06),
    vignette: rng.chance(0.5) ? rng.uniform(0, 0.35) : 0,
    gamma: rng.int(80, 125),
    exposure: rng.uniform(0.85, 1.15),
  };
}

function setLerp(out: Sample, a: RGB, b: RGB, t: number, tex: number): void {
  out.r = a[0] + (b[0] - a[0]) * t;
  out.g = a[1] + (b[1] - a[1]) * t;
  out.b = a[2] + (b[2] - a[2]) * t;
  out.tex = tex;
}

/** Background colour for the gradient kinds (horizons are shaded in colourAt). */
function backgroundAt(bg: Exclude<Background, { kind: 'horizon' }>, u: number, v: number, out: Sample): void {
  switch (bg.kind) {
    case 'linear': {
      let t = (u - 0.5) * bg.dx + (v - 0.5) * bg.dy + 0.5;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      setLerp(out, bg.c1, bg.c2, t + bg.bend * t * (1 - t), bg.tex);
      return;
    }
    default: {
      const dx = u - bg.cx;
      const dy = v - bg.cy;
      setLerp(out, bg.c1, bg.c2, Math.min(1, Math.sqrt(dx * dx + dy * dy) / bg.radius), bg.tex);
    }
  }
}

/** Point-in-shape test (the caller has already checked the bounding box). */
function insideShape(s: Shape, u: number, v: number): boolean {
  const dx = u - s.cx;
  const dy = v - s.cy;
  switch (s.kind) {
    case 'ellipse': {
      const x = (dx * s.cos + dy * s.sin) / s.rx;
      const y = (-dx * s.sin + dy * s.cos) / s.ry;
      return x * x + y * y <= 1;
    }
    case 'rect': {
      const x = dx * s.cos + dy * s.sin;
      const y = -dx * s.sin + dy * s.cos;
      return Math.abs(x) <= s.hx && Math.abs(y) <= s.hy;
    }
    case 'triangle': {
      const p = s.pts;
      const d1 = (u - p[2]) * (p[1] - p[3]) - (p[0] - p[2]) * (v - p[3]);
      const d2 = (u - p[4]) * (p[3] - p[5]) - (p[2] - p[4]) * (v - p[5]);
      const d3 = (u - p[0]) * (p[5] - p[1]) - (p[4] - p[0]) * (v - p[1]);
      const neg = d1 < 0 || d2 < 0 || d3 < 0;
      const pos = d1 > 0 || d2 > 0 || d3 > 0;
      return !(neg && pos);
    }
    default: {
      let f = 0;
      for (const b of s.balls) {
        const x = u - b.x;
        const y = v - b.y;
        f += b.r2 / (x * x + y * y + 1e-9);
      }
      return f >= 1;
    }
  }
}

/** Bit of the coverage mask telling the lower (ground) side of a horizon. */
const GROUND_BIT = 0x80;

/**
 * Colour at (u, v) given the coverage mask there (bit k: shape k covers the
 * point; GROUND_BIT: below the horizon).
 */
function colourAt(scene: Scene, u: number, v: number, mask: number, out: Sample): void {
  const bg = scene.bg;
  if (bg.kind === 'horizon') {
    const h = bg.y0 + bg.slope * (u - 0.5);
    if (mask & GROUND_BIT) {
      setLerp(out, bg.groundHigh, bg.groundLow, h < 1 ? Math.min(1, Math.max(0, (v - h) / (1 - h))) : 0, bg.groundTex);
    } else {
      setLerp(out, bg.skyTop, bg.skyLow, h > 0 ? Math.min(1, Math.max(0, v) / h) : 1, bg.skyTex);
    }
  } else {
    backgroundAt(bg, u, v, out);
  }
  const shapes = scene.shapes;
  for (let k = 0; k < shapes.length; k++) {
    if (!(mask & (1 << k))) continue;
    const s = shapes[k];
    const t = ((u - s.cx) * s.lx + (v - s.cy) * s.ly) / s.size;
    let f = 1 + s.shade * t;
    f = f < 0.25 ? 0.25 : f > 1.6 ? 1.6 : f;
    const c = s.mat.colour;
    const a = s.alpha;
    out.r += (c[0] * f - out.r) * a;
    out.g += (c[1] * f - out.g) * a;
    out.b += (c[2] * f - out.b) * a;
    out.tex += (s.mat.tex - out.tex) * a;
  }
}

// Scratch state: rendering is synchronous, so one set per process is safe.
let maskBuf = new Uint8Array(0);
const noiseBufs = [new Float32Array(SIZE * SIZE), new Float32Array(SIZE * SIZE), new Float32Array(SIZE * SIZE)];
const sampleBuf: Sample = { r: 0, g: 0, b: 0, tex: 0 };

/**
 * Render the scene at res x res. Geometry is sampled on a 2x2 grid per pixel
 * (coverage masks rasterised within each shape's bounding box); pixels whose
 * four samples agree are shaded once at the centre, edge pixels four times.
 * Texture is applied at pixel centres. Returns unclamped RGB floats.
 */
function renderScene(scene: Scene, res: number): Float32Array {
  const ss = 2 * res;
  if (maskBuf.length < ss * ss) maskBuf = new Uint8Array(ss * ss);
  const mask = maskBuf;
  mask.fill(0, 0, ss * ss);
  const inv = 1 / ss;
  const bg = scene.bg;
  if (bg.kind === 'horizon') {
    for (let sy = 0; sy < ss; sy++) {
      const v = (sy + 0.5) * inv;
      for (let sx = 0; sx < ss; sx++) {
        if (v >= bg.y0 + bg.slope * ((sx + 0.5) * inv - 0.5)) mask[sy * ss + sx] = GROUND_BIT;
      }
    }
  }
  const shapes = scene.shapes;
  for (let k = 0; k < shapes.length; k++) {
    const s = shapes[k];
    const bit = 1 << k;
    const x0 = Math.max(0, Math.floor(s.x0 * ss - 0.5));
    const x1 = Math.min(ss - 1, Math.ceil(s.x1 * ss - 0.5));
    const y0 = Math.max(0, Math.floor(s.y0 * ss - 0.5));
    const y1 = Math.min(ss - 1, Math.ceil(s.y1 * ss - 0.5));
    for (let sy = y0; sy <= y1; sy++) {
      const v = (sy + 0.5) * inv;
      for (let sx = x0; sx <= x1; sx++) {
        if (insideShape(s, (sx + 0.5) * inv, v)) mask[sy * ss + sx] |= bit;
      }
    }
  }
  const [lum, chA, chB] = noiseBufs;
  scene.lum.fill(res, lum);
  scene.chromaA.fill(res, chA);
  scene.chromaB.fill(res, chB);
  const img = new Float32Array(res * res * 3);
  const smp = sampleBuf;
  const pinv = 1 / res;
  for (let y = 0; y < res; y++) {
    for (let x = 0; x < res; x++) {
      const j = 2 * y * ss + 2 * x;
      const m00 = mask[j];
      const u = (x + 0.5) * pinv;
      const v = (y + 0.5) * pinv;
      let r: number;
      let g: number;
      let b: number;
      let tex: number;
      if (m00 === mask[j + 1] && m00 === mask[j + ss] && m00 === mask[j + ss + 1]) {
        colourAt(scene, u, v, m00, smp);
        r = smp.r;
        g = smp.g;
        b = smp.b;
        tex = smp.tex;
      } else {
        r = g = b = tex = 0;
        for (let q = 0; q < 4; q++) {
          const sx = q & 1;
          const sy = q >> 1;
          colourAt(scene, (2 * x + sx + 0.5) * inv, (2 * y + sy + 0.5) * inv, mask[j + sy * ss + sx], smp);
          r += 0.25 * smp.r;
          g += 0.25 * smp.g;
          b += 0.25 * smp.b;
          tex += 0.25 * smp.tex;
        }
      }
      const p = y * res + x;
      const m = 1 + tex * lum[p];
      const ca = scene.chromaAmp * chA[p];
      const cb = scene.chromaAmp * chB[p];
      const i = p * 3;
      img[i] = r * m + ca;
      img[i + 1] = g * m - 0.5 * (ca + cb);
      img[i + 2] = b * m + cb;
    }
  }
  return img;
}

/** Add sensor-like noise: luminance sigma `sl` plus chroma sigma `sc`. */
function addNoise(rng: Rng, img: Float32Array, sl: number, sc: number): void {
  if (sl <= 0 && sc <= 0) return;
  for (let i = 0; i < img.length; i += 3) {
    const l = sl * rng.tri();
    img[i] += l + sc * rng.tri();
    img[i + 1] += l + sc * rng.tri();
    img[i + 2] += l + sc * rng.tri();
  }
}

/** Bilinear resampling (half-pixel centres, edge clamp) from src x src to dst x dst. */
function resizeBilinear(img: Float32Array, src: number, dst: number): Float32Array {
  if (src === dst) return img;
  const out = new Float32Array(dst * dst * 3);
  const scale = src / dst;
  for (let y = 0; y < dst; y++) {
    let fy = (y + 0.5) * scale - 0.5;
    fy = fy < 0 ? 0 : fy > src - 1 ? src - 1 : fy;
    const y0 = Math.min(Math.floor(fy), src - 2);
    const wy = fy - y0;
    for (let x = 0; x < dst; x++) {
      let fx = (x + 0.5) * scale - 0.5;
      fx = fx < 0 ? 0 : fx > src - 1 ? src - 1 : fx;
      const x0 = Math.min(Math.floor(fx), src - 2);
      const wx = fx - x0;
      const o = (y * dst + x) * 3;
      const i00 = (y0 * src + x0) * 3;
      const i10 = i00 + 3;
      const i01 = i00 + src * 3;
      const i11 = i01 + 3;
      for (let c = 0; c < 3; c++) {
        const a = img[i00 + c] + (img[i10 + c] - img[i00 + c]) * wx;
        const b = img[i01 + c] + (img[i11 + c] - img[i01 + c]) * wx;
        out[o + c] = a + (b - a) * wy;
      }
    }
  }
  return out;
}

/** Blend the image with its [1,2,1]^2 binomial blur by weight w in [0,1]. */
function blur(img: Float32Array, res: number, w: number): void {
  if (w <= 0) return;
  const tmp = new Float32Array(img.length);
  const at = (x: number, y: number, c: number, a: Float32Array): number => {
    x = x < 0 ? 0 : x >= res ? res - 1 : x;
    y = y < 0 ? 0 : y >= res ? res - 1 : y;
    return a[(y * res + x) * 3 + c];
  };
  for (let y = 0; y < res; y++) {
    for (let x = 0; x < res; x++) {
      for (let c = 0; c < 3; c++) {
        tmp[(y * res + x) * 3 + c] = 0.25 * at(x - 1, y, c, img) + 0.5 * at(x, y, c, img) + 0.25 * at(x + 1, y, c, img);
      }
    }
  }
  for (let y = 0; y < res; y++) {
    for (let x = 0; x < res; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * res + x) * 3 + c;
        const b = 0.25 * at(x, y - 1, c, tmp) + 0.5 * at(x, y, c, tmp) + 0.25 * at(x, y + 1, c, tmp);
        img[i] += (b - img[i]) * w;
      }
    }
  }
}

/** Scale chroma around the per-pixel luminance by k. */
function saturate(img: Float32Array, k: number): void {
  if (k === 1) return;
  for (let i = 0; i < img.length; i += 3) {
    const l = 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
    img[i] = l + (img[i] - l) * k;
    img[i + 1] = l + (img[i + 1] - l) * k;
    img[i + 2] = l + (img[i + 2] - l) * k;
  }
}

function vignette(img: Float32Array, res: number, strength: number): void {
  if (strength <= 0) return;
  for (let y = 0; y < res; y++) {
    const dy = (y + 0.5) / res - 0.5;
    for (let x = 0; x < res; x++) {
      const dx = (x + 0.5) / res - 0.5;
      const k = 1 - strength * 2 * (dx * dx + dy * dy);
      const i = (y * res + x) * 3;
      img[i] *= k;
      img[i + 1] *= k;
      img[i + 2] *= k;
    }
  }
}

const DCT8: Float64Array = (() => {
  // DCT8[p * 8 + x] = cos(pi * (2x + 1) * p / 16)
  const t = new Float64Array(64);
  for (let p = 0; p < 8; p++) for (let x = 0; x < 8; x++) t[p * 8 + x] = Math.cos((Math.PI * (2 * x + 1) * p) / 16);
  return t;
})();

/**
 * Add a faint period-8 pattern (a random zero-mean 8x8 tile of low-order
 * cosines, tiled over the image, with slightly different per-channel gains),
 * amplitude `amp` (RMS, in [0,1] units).
 */
function addGrid(rng: Rng, img: Float32Array, res: number, amp: number): void {
  const tile = new Float64Array(64);
  for (let q = 0; q < 4; q++) {
    for (let p = 0; p < 4; p++) {
      if (p === 0 && q === 0) continue;
      const c = rng.normal() / (1 + p + q);
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) tile[y * 8 + x] += c * DCT8[p * 8 + x] * DCT8[q * 8 + y];
    }
  }
  let ss = 0;
  for (const t of tile) ss += t * t;
  const norm = amp / Math.sqrt(ss / 64 || 1);
  const gains = [1 + 0.25 * rng.normal(), 1 + 0.25 * rng.normal(), 1 + 0.25 * rng.normal()];
  for (let y = 0; y < res; y++) {
    for (let x = 0; x < res; x++) {
      const t = tile[(y & 7) * 8 + (x & 7)] * norm;
      const i = (y * res + x) * 3;
      img[i] += t * gains[0];
      img[i + 1] += t * gains[1];
      img[i + 2] += t * gains[2];
    }
  }
}

const LUT_SIZE = 4096;
const gammaLuts = new Map<number, Uint8Array>();

/** 8-bit output of v^(g/100) for v = i / (LUT_SIZE - 1); cached per g. */
function gammaLut(g: number): Uint8Array {
  let lut = gammaLuts.get(g);
  if (!lut) {
    lut = new Uint8Array(LUT_SIZE);
    const e = g / 100;
    for (let i = 0; i < LUT_SIZE; i++) lut[i] = Math.round((i / (LUT_SIZE - 1)) ** e * 255);
    gammaLuts.set(g, lut);
  }
  return lut;
}

/** Exposure, clamp, gamma (percent, integer) and quantisation to bytes. */
function toBytes(img: Float32Array, gammaPercent: number, exposure: number): Buffer {
  const lut = gammaLut(gammaPercent);
  const out = Buffer.allocUnsafe(img.length);
  const k = exposure * (LUT_SIZE - 1);
  for (let i = 0; i < img.length; i++) {
    const v = img[i] * k;
    out[i] = lut[v <= 0 ? 0 : v >= LUT_SIZE - 1 ? LUT_SIZE - 1 : Math.round(v)];
  }
  return out;
}

/**
 * Per-class parameters of the image model (ranges are [min, max] of uniform
 * per-image draws; sigmas and amplitudes in [0,1] intensity units, 1/255 is one
 * level). SYNTHETIC.md lists them verbatim.
 */
const MODEL = {
  real: {
    /** Share upsampled (bilinear) from a lower resolution, as many CIFAR photos are. */
    upsampledP: 0.08,
    upsampledFrom: [24, 28] as [number, number],
    /** Sensor-like per-pixel noise sigma: shared (luminance) and per channel. */
    noiseLum: [0.012, 0.04] as [number, number],
    noiseChroma: [0.004, 0.015] as [number, number],
    /** Share defocused ([1,2,1]^2 blur blended with this weight). */
    defocusP: 0.12,
    defocus: [0.3, 1] as [number, number],
    saturation: [0.8, 1.1] as [number, number],
  },
  fake: {
    /** Resolution the scene is rendered at before bilinear upsampling to 32. */
    renderRes: [16, 20, 24, 28] as const,
    renderResWeights: [0.4, 0.3, 0.22, 0.08] as const,
    /** Per-octave factor kept of the fine (>= 8 cycles) texture: over-smoothing. */
    fineTextureKeep: [0.3, 0.85] as [number, number],
    /** Share with any luminance noise at all, and its sigma; chroma noise sigma. */
    noiseP: 0.5,
    noiseLum: [0, 0.008] as [number, number],
    noiseChroma: [0, 0.003] as [number, number],
    /** Share with extra blur, and its blend weight. */
    blurP: 0.25,
    blur: [0.1, 0.5] as [number, number],
    saturation: [1.1, 1.45] as [number, number],
    /** RMS of the period-8 pattern (latent-diffusion decoder trace). */
    gridRms: [0.004, 0.016] as [number, number],
  },
};

/**
 * Render one 32x32 RGB image (raw, 3072 bytes) of class `cls` from its own
 * PRNG stream. Exposed for tests and tools; the JPEG encoding is separate.
 */
export function renderSynthImage(cls: SynthClass, rngSeed: number): Buffer {
  const rng = new Rng(rngSeed);
  const scene = makeScene(rng);
  let img: Float32Array;
  if (cls === 'REAL') {
    // Mostly native resolution; some photos are upsampled or out of focus.
    const p = MODEL.real;
    const res = rng.chance(p.upsampledP) ? rng.int(p.upsampledFrom[0], p.upsampledFrom[1]) : SIZE;
    img = renderScene(scene, res);
    addNoise(rng, img, rng.uniform(...p.noiseLum), rng.uniform(...p.noiseChroma));
    img = resizeBilinear(img, res, SIZE);
    if (rng.chance(p.defocusP)) blur(img, SIZE, rng.uniform(...p.defocus));
    saturate(img, rng.uniform(...p.saturation));
  } else {
    // Diffusion-like traces, each with a random per-image strength.
    const p = MODEL.fake;
    const res = rng.pick(p.renderRes, p.renderResWeights);
    scene.lum.attenuateFine(rng.uniform(...p.fineTextureKeep));
    img = renderScene(scene, res);
    addNoise(rng, img, rng.chance(p.noiseP) ? rng.uniform(...p.noiseLum) : 0, rng.uniform(...p.noiseChroma));
    img = resizeBilinear(img, res, SIZE);
    if (rng.chance(p.blurP)) blur(img, SIZE, rng.uniform(...p.blur));
    saturate(img, rng.uniform(...p.saturation));
    addGrid(rng, img, SIZE, rng.uniform(...p.gridRms));
  }
  vignette(img, SIZE, scene.vignette);
  return toBytes(img, scene.gamma, scene.exposure);
}

/** PRNG seed of image `index` of `split`/`cls` for data-set seed `seed`. */
export function synthImageSeed(seed: number, split: SynthSplit, cls: SynthClass, index: number): number {
  return imageSeed(seed >>> 0, SPLITS.indexOf(split), CLASSES.indexOf(cls), index);
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/** Cache root: $CIFAKE_CACHE_DIR, else $XDG_CACHE_HOME/cifake-torch, else ~/.cache/cifake-torch. */
function cacheRoot(): string {
  const explicit = process.env.CIFAKE_CACHE_DIR;
  if (explicit) return path.resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'cifake-torch');
  return path.join(os.homedir(), '.cache', 'cifake-torch');
}

/** Default location of the demo set: `<cache>/demo-v1`. */
export function defaultSynthDir(): string {
  return path.join(cacheRoot(), `demo-v${SYNTH_VERSION}`);
}

function readmeText(o: ResolvedOptions): string {
  return `${README_SIGNATURE}
# Synthetic CIFAKE-shaped demo data (NOT CIFAKE)

This directory was generated by cifake-torch (\`src/data/synth.ts\`, generator
version ${SYNTH_VERSION}) so that \`cifake train\` can run without any download.
It is a **demo that exercises the whole pipeline**, not a detector benchmark:
accuracy measured on it says nothing about CIFAKE (Bird & Lotfi 2024) or about
real AI-generated images. For real results, download CIFAKE and pass \`--data\`.

Layout (as the Kaggle CIFAKE release): \`train/REAL\`, \`train/FAKE\`,
\`test/REAL\`, \`test/FAKE\`; labels FAKE = 0, REAL = 1. Images are 32x32 RGB
JPEGs (sharp/libvips, quality ${o.quality}, default settings).

## Generator parameters

- seed: ${o.seed}
- train images per class: ${o.trainPerClass}
- test images per class: ${o.testPerClass}
- JPEG quality: ${o.quality}

Both classes come from one procedural scene generator: a background (horizon
split, linear or radial gradient), 0-5 shapes (ellipses, rotated rectangles,
triangles, blobs) with shading, a 1/f ("pink") value-noise texture, vignette
and gamma. REAL images are rendered at 32x32 with 2x2 supersampled edges, the
full texture spectrum and sensor-like noise; FAKE images carry diffusion-like
traces of random per-image strength: rendered at lower resolution and
bilinearly upsampled, fine texture attenuated, little or no noise, boosted
saturation, and a faint period-8 pattern as left by latent-diffusion decoders.
Per-class parameters (ranges are uniform per-image draws; intensities in [0,1],
1/255 is one level; P = share of images):

\`\`\`json
${JSON.stringify(MODEL, null, 2).replace(/\[\s+([^\]]*?)\s+\]/g, (_, inner: string) => `[${inner.replace(/\s+/g, ' ')}]`)}
\`\`\`

The same seed gives byte-identical files (with the same sharp/libvips build).
\`${SYNTH_MARKER}\` marks a complete set; delete this directory to regenerate.
`;
}

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if (errCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/** Read and shape-check the marker of `dir`; undefined if missing or invalid. */
export async function readSynthMarker(dir: string): Promise<SynthMarker | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, SYNTH_MARKER), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as Partial<SynthMarker>;
    if (m.format !== MARKER_FORMAT || typeof m.version !== 'number' || typeof m.seed !== 'number') return undefined;
    if (typeof m.quality !== 'number' || !m.counts || !m.bytes) return undefined;
    for (const s of SPLITS) {
      for (const c of CLASSES) {
        if (typeof m.counts[s]?.[c] !== 'number' || typeof m.bytes[s]?.[c] !== 'number') return undefined;
      }
    }
    return m as SynthMarker;
  } catch {
    return undefined;
  }
}

function markerMatches(m: SynthMarker, o: ResolvedOptions): boolean {
  const want = countsOf(o);
  if (m.version !== SYNTH_VERSION || m.seed !== o.seed || m.quality !== o.quality || m.size !== SIZE) return false;
  return SPLITS.every((s) => CLASSES.every((c) => m.counts[s][c] === want[s][c]));
}

/**
 * True if `dir` holds a complete set matching the marker: every expected file
 * present, no extra JPEGs, and byte totals equal to the recorded ones.
 */
async function filesComplete(dir: string, m: SynthMarker): Promise<boolean> {
  for (const s of SPLITS) {
    for (const c of CLASSES) {
      const d = path.join(dir, s, c);
      let names: string[];
      try {
        names = (await fsp.readdir(d)).filter((n) => n.toLowerCase().endsWith('.jpg'));
      } catch {
        return false;
      }
      const n = m.counts[s][c];
      if (names.length !== n) return false;
      const have = new Set(names);
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        const name = synthFileName(i);
        if (!have.has(name)) return false;
        const st = await fsp.stat(path.join(d, name));
        if (!st.isFile() || st.size === 0) return false;
        bytes += st.size;
      }
      if (bytes !== m.bytes[s][c]) return false;
    }
  }
  return true;
}

/**
 * Whether `dir` may be deleted to make room for a (re)generated set: it is
 * absent or empty, or it carries our marker, or our README signature and only
 * the entries we write. Anything else (e.g. a real CIFAKE download) is kept.
 */
async function replaceable(dir: string): Promise<boolean> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT') return true;
    if (code === 'ENOTDIR') return false;
    throw e;
  }
  if (entries.length === 0) return true;
  if (await readSynthMarker(dir)) return true;
  const ours = new Set(['train', 'test', SYNTH_README, SYNTH_MARKER]);
  if (!entries.every((e) => ours.has(e))) return false;
  try {
    const readme = await fsp.readFile(path.join(dir, SYNTH_README), 'utf8');
    return readme.startsWith(README_SIGNATURE);
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}

/** Best-effort removal of `<dir>.tmp-<pid>-<n>` / `<dir>.old-<pid>-<n>` left by dead processes. */
async function sweepStale(outDir: string): Promise<void> {
  const parent = path.dirname(outDir);
  const base = path.basename(outDir);
  let entries: string[];
  try {
    entries = await fsp.readdir(parent);
  } catch {
    return;
  }
  const now = Date.now();
  for (const e of entries) {
    if (!e.startsWith(`${base}.`)) continue;
    const m = /^\.(tmp|old)-(\d+)(?:-\d+)?$/.exec(e.slice(base.length));
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid) continue;
    const p = path.join(parent, e);
    try {
      const age = now - (await fsp.stat(p)).mtimeMs;
      if ((age > 60_000 && !pidAlive(pid)) || age > 24 * 3600_000) {
        await fsp.rm(p, { recursive: true, force: true });
      }
    } catch {
      // another process got there first
    }
  }
}

async function generateInto(dir: string, o: ResolvedOptions, onProgress?: (done: number, total: number) => void): Promise<SynthMarker> {
  const counts = countsOf(o);
  const bytes: SynthCounts = { train: { REAL: 0, FAKE: 0 }, test: { REAL: 0, FAKE: 0 } };
  const jobs: { split: SynthSplit; cls: SynthClass; index: number }[] = [];
  for (const split of SPLITS) {
    for (const cls of CLASSES) {
      await fsp.mkdir(path.join(dir, split, cls), { recursive: true });
      for (let index = 0; index < counts[split][cls]; index++) jobs.push({ split, cls, index });
    }
  }
  const total = jobs.length;
  let next = 0;
  let done = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < total) {
      const job = jobs[next++];
      try {
        const raw = renderSynthImage(job.cls, synthImageSeed(o.seed, job.split, job.cls, job.index));
        const jpg = await sharp(raw, { raw: { width: SIZE, height: SIZE, channels: 3 } })
          .jpeg({ quality: o.quality })
          .toBuffer();
        await fsp.writeFile(path.join(dir, job.split, job.cls, synthFileName(job.index)), jpg);
        bytes[job.split][job.cls] += jpg.length;
      } catch (e) {
        failed = true;
        throw e;
      }
      done++;
      onProgress?.(done, total);
    }
  };
  // Wait for every worker (so nothing writes into `dir` after we return),
  // then surface the first failure.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(CONCURRENCY, Math.max(total, 1)) }, worker));
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  const v = sharp.versions;
  const marker: SynthMarker = {
    format: MARKER_FORMAT,
    version: SYNTH_VERSION,
    seed: o.seed,
    quality: o.quality,
    size: SIZE,
    counts,
    bytes,
    encoder: `sharp ${v.sharp ?? '?'} / libvips ${v.vips}`,
    note: 'Synthetic CIFAKE-shaped demo data, not CIFAKE; see SYNTHETIC.md',
  };
  await fsp.writeFile(path.join(dir, SYNTH_README), readmeText(o));
  // The marker is written last: a directory with a valid marker is complete.
  await fsp.writeFile(path.join(dir, SYNTH_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  return marker;
}

/** Is `dir` a complete set generated with exactly these options? */
async function isComplete(dir: string, o: ResolvedOptions): Promise<boolean> {
  const m = await readSynthMarker(dir);
  return m !== undefined && markerMatches(m, o) && (await filesComplete(dir, m));
}

/** Distinguishes concurrent calls within one process in temporary names. */
let callCounter = 0;

/**
 * Generate the demo set into `outDir` (replacing an existing synthetic set
 * there). Images are written to `<outDir>.tmp-<pid>-<n>`, which is renamed to
 * `outDir` once complete, so no half-written set is ever taken as complete.
 * Refuses to replace a non-empty directory that is not a synthetic set.
 */
export async function synthesize(outDir: string, opts: SynthOptions = {}): Promise<SynthResult> {
  const o = resolveOptions(opts);
  const root = path.resolve(outDir);
  const counts = countsOf(o);
  if (!(await replaceable(root))) {
    throw new Error(`synthesize: ${root} exists and is not a cifake synthetic set; refusing to replace it`);
  }
  await fsp.mkdir(path.dirname(root), { recursive: true });
  await sweepStale(root);
  const tag = `${process.pid}-${++callCounter}`;
  const tmp = `${root}.tmp-${tag}`;
  await fsp.rm(tmp, { recursive: true, force: true });
  try {
    await generateInto(tmp, o, opts.onProgress);
    await commitDir(tmp, root, o, tag);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  return { root, counts };
}

/** Move the finished `tmp` into place at `root`, tolerating concurrent writers. */
async function commitDir(tmp: string, root: string, o: ResolvedOptions, tag: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await fsp.rename(tmp, root);
      return;
    } catch (e) {
      const code = errCode(e);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EISDIR') throw e;
      if (!(await exists(root))) continue;
    }
    // `root` is occupied. If another process just put an identical complete
    // set there, keep it (same seed gives the same bytes); else replace it.
    if (await isComplete(root, o)) return;
    if (!(await replaceable(root))) {
      throw new Error(`synthesize: ${root} exists and is not a cifake synthetic set; refusing to replace it`);
    }
    const old = `${root}.old-${tag}`;
    await fsp.rm(old, { recursive: true, force: true });
    try {
      await fsp.rename(root, old);
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw e;
    }
    try {
      await fsp.rename(tmp, root);
      return;
    } catch (e) {
      const code = errCode(e);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EISDIR') throw e;
    } finally {
      await fsp.rm(old, { recursive: true, force: true });
    }
  }
  throw new Error(`synthesize: could not move ${tmp} to ${root} (concurrent writers?)`);
}

/**
 * Return the root of a complete demo set at `dir`, generating it only if the
 * marker is missing, does not match the options, or files are missing or
 * truncated.
 */
export async function ensureSynth(dir: string = defaultSynthDir(), opts: SynthOptions = {}): Promise<string> {
  const o = resolveOptions(opts);
  const root = path.resolve(dir);
  if (await isComplete(root, o)) return root;
  return (await synthesize(root, opts)).root;
}

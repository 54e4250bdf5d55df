// The procedural scene model shared by both classes: background, shapes with shading, 1/f
// value-noise texture, and the point sampling of a scene (colourAt).

import { Rng } from './rng';

export type RGB = [number, number, number];

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

export interface Sample {
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

export interface Scene {
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

export function makeScene(rng: Rng): Scene {
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
export function insideShape(s: Shape, u: number, v: number): boolean {
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
export const GROUND_BIT = 0x80;

/**
 * Colour at (u, v) given the coverage mask there (bit k: shape k covers the
 * point; GROUND_BIT: below the horizon).
 */
export function colourAt(scene: Scene, u: number, v: number, mask: number, out: Sample): void {
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

/**
 * Colormaps for Grad-CAM heatmaps.
 *
 * - `viridis`, `turbo`: the published 256-entry lookup tables (see
 *   colormap-data.ts for sources and licences). Perceptually ordered;
 *   viridis has monotonically increasing luminance and is the default.
 * - `jet`: the classic matplotlib jet (`matplotlib._cm._jet_data` segment
 *   data sampled to 256 entries exactly as `LinearSegmentedColormap` does),
 *   kept for side-by-side comparison with the CIFAKE paper's figures.
 *
 * Quantisation follows matplotlib so that `applyColormap` is byte-identical
 * to `matplotlib.colormaps[name](x, bytes=True)[..., :3]`: the entry index is
 * floor(x * 256) clipped to 255, and the byte is trunc(channel * 255).
 */
import { TURBO_DATA, VIRIDIS_DATA } from './colormap-data';
import { describe } from './validate';

export const COLORMAP_NAMES = ['viridis', 'turbo', 'jet'] as const;
export type ColormapName = (typeof COLORMAP_NAMES)[number];
export const DEFAULT_COLORMAP: ColormapName = 'viridis';

/** Number of entries in every lookup table. */
export const LUT_SIZE = 256;

export function isColormapName(name: unknown): name is ColormapName {
  return typeof name === 'string' && (COLORMAP_NAMES as readonly string[]).includes(name);
}

export function assertColormapName(fn: string, name: unknown): asserts name is ColormapName {
  if (!isColormapName(name)) {
    throw new RangeError(`${fn}: unknown colormap ${describe(name)}; valid colormaps: ${COLORMAP_NAMES.join(', ')}`);
  }
}

/** matplotlib `_jet_data`: (x, y_below, y_above) anchors per channel. */
const JET_SEGMENTS: Readonly<Record<'red' | 'green' | 'blue', readonly (readonly [number, number, number])[]>> = {
  red: [[0, 0, 0], [0.35, 0, 0], [0.66, 1, 1], [0.89, 1, 1], [1, 0.5, 0.5]],
  green: [[0, 0, 0], [0.125, 0, 0], [0.375, 1, 1], [0.64, 1, 1], [0.91, 0, 0], [1, 0, 0]],
  blue: [[0, 0.5, 0.5], [0.11, 1, 1], [0.34, 1, 1], [0.65, 0, 0], [1, 0, 0]],
};

/** Port of matplotlib.colors._create_lookup_table (gamma = 1). */
function segmentLUT(segments: readonly (readonly [number, number, number])[], n: number): Float64Array {
  const x = segments.map((s) => s[0] * (n - 1));
  const y0 = segments.map((s) => s[1]);
  const y1 = segments.map((s) => s[2]);
  const lut = new Float64Array(n);
  lut[0] = y1[0]!;
  lut[n - 1] = y0[y0.length - 1]!;
  const step = 1 / (n - 1);
  for (let i = 1; i < n - 1; i++) {
    const xind = (n - 1) * (i * step);
    let ind = 0;
    while (ind < x.length && x[ind]! < xind) ind++; // np.searchsorted(side='left')
    const distance = (xind - x[ind - 1]!) / (x[ind]! - x[ind - 1]!);
    lut[i] = distance * (y0[ind]! - y1[ind - 1]!) + y1[ind - 1]!;
  }
  for (let i = 0; i < n; i++) lut[i] = Math.min(1, Math.max(0, lut[i]!));
  return lut;
}

function toBytes(floats: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(floats.length);
  for (let i = 0; i < floats.length; i++) out[i] = Math.trunc(floats[i]! * 255);
  return out;
}

function buildLUT(name: ColormapName): Uint8Array {
  switch (name) {
    case 'viridis':
      return toBytes(VIRIDIS_DATA);
    case 'turbo':
      return toBytes(TURBO_DATA);
    case 'jet': {
      const r = segmentLUT(JET_SEGMENTS.red, LUT_SIZE);
      const g = segmentLUT(JET_SEGMENTS.green, LUT_SIZE);
      const b = segmentLUT(JET_SEGMENTS.blue, LUT_SIZE);
      const f = new Float64Array(LUT_SIZE * 3);
      for (let i = 0; i < LUT_SIZE; i++) {
        f[3 * i] = r[i]!;
        f[3 * i + 1] = g[i]!;
        f[3 * i + 2] = b[i]!;
      }
      return toBytes(f);
    }
  }
}

const lutCache = new Map<ColormapName, Uint8Array>();

function lutFor(name: ColormapName): Uint8Array {
  let lut = lutCache.get(name);
  if (!lut) {
    lut = buildLUT(name);
    if (lut.length !== LUT_SIZE * 3) throw new Error(`colormap ${name}: lookup table has ${lut.length} bytes, expected ${LUT_SIZE * 3}`);
    lutCache.set(name, lut);
  }
  return lut;
}

/** The 256-entry RGB lookup table of a colormap (768 bytes, a fresh copy). */
export function colormapLUT(name: ColormapName): Uint8Array {
  assertColormapName('colormapLUT', name);
  return lutFor(name).slice();
}

/** Tolerance for values a hair outside [0, 1] from float rounding. */
const EPS = 1e-6;

function lutIndex(v: number): number {
  const i = Math.floor(v * LUT_SIZE);
  return i < 0 ? 0 : i >= LUT_SIZE ? LUT_SIZE - 1 : i;
}

/** Colour of a single value t in [0, 1]. */
export function colormapColor(name: ColormapName, t: number): [number, number, number] {
  assertColormapName('colormapColor', name);
  if (typeof t !== 'number' || !(t >= -EPS && t <= 1 + EPS)) {
    throw new RangeError(`colormapColor: t must be a number in [0, 1], got ${describe(t)}`);
  }
  const lut = lutFor(name);
  const i = lutIndex(t) * 3;
  return [lut[i]!, lut[i + 1]!, lut[i + 2]!];
}

/**
 * Map normalised values (each in [0, 1]) to interleaved RGB bytes
 * (length 3 * map01.length). Throws on NaN / out-of-range values.
 */
export function applyColormap(map01: Float32Array | Float64Array, name: ColormapName): Uint8Array {
  assertColormapName('applyColormap', name);
  if (!(map01 instanceof Float32Array) && !(map01 instanceof Float64Array)) {
    throw new TypeError(`applyColormap: map01 must be a Float32Array of values in [0, 1], got ${describe(map01)}`);
  }
  const lut = lutFor(name);
  const out = new Uint8Array(map01.length * 3);
  for (let p = 0; p < map01.length; p++) {
    const v = map01[p]!;
    if (!(v >= -EPS && v <= 1 + EPS)) {
      throw new RangeError(`applyColormap: map01 must hold values in [0, 1] (normalise first); got ${v} at index ${p}`);
    }
    const i = lutIndex(v) * 3;
    out[3 * p] = lut[i]!;
    out[3 * p + 1] = lut[i + 1]!;
    out[3 * p + 2] = lut[i + 2]!;
  }
  return out;
}

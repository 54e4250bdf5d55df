/**
 * Scalar-field helpers for Grad-CAM maps: normalisation and bilinear
 * resampling with PyTorch `F.interpolate(mode='bilinear',
 * align_corners=False)` semantics.
 *
 * The map is resampled here rather than with sharp because the colormap has
 * to be applied *after* interpolating the scalar values (interpolating
 * colours gives wrong hues), and because libvips' linear kernel does not use
 * align_corners=False sampling: measured against it, sharp's
 * `resize(..., { kernel: 'linear' })` differs by up to 28/255 on a random
 * 32x32 -> 256x256 upsample.
 */
import { assertMap, assertPositiveInt, describe } from './validate';

/** max(map); 0 for an empty map. */
export function mapMax(map: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < map.length; i++) if (map[i]! > m) m = map[i]!;
  return m;
}

/**
 * map / max(map) as a new Float32Array. An all-zero map stays all zero
 * (no NaN). Values must be finite and non-negative.
 */
export function normalizeMap(map: Float32Array | Float64Array, width: number, height: number): Float32Array {
  assertPositiveInt('normalizeMap', 'width', width);
  assertPositiveInt('normalizeMap', 'height', height);
  assertMap('normalizeMap', 'map', map, width, height);
  return scaleMap(map, mapMax(map));
}

/** map / divisor clipped to [0, 1]; divisor <= 0 gives all zeros. */
export function scaleMap(map: ArrayLike<number>, divisor: number): Float32Array {
  const out = new Float32Array(map.length);
  if (!(divisor > 0)) return out;
  for (let i = 0; i < map.length; i++) {
    const v = map[i]! / divisor;
    out[i] = v > 1 ? 1 : v;
  }
  return out;
}

/**
 * Bilinear resize of a row-major (height x width) scalar map to
 * (outHeight x outWidth), align_corners=False semantics: output pixel centre
 * (x + 0.5) maps to source coordinate (x + 0.5) * (inW / outW) - 0.5,
 * clamped at 0 (as PyTorch does) and at the last row/column.
 */
export function resizeBilinear(
  src: ArrayLike<number>,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
): Float32Array {
  const fn = 'resizeBilinear';
  for (const [what, v] of [['width', width], ['height', height], ['outWidth', outWidth], ['outHeight', outHeight]] as const) {
    assertPositiveInt(fn, what, v);
  }
  if (!src || typeof (src as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${fn}: src must be an array of height*width numbers, got ${describe(src)}`);
  }
  if (src.length !== width * height) {
    throw new RangeError(`${fn}: src has ${src.length} values but height*width = ${height}*${width} = ${width * height}`);
  }
  const out = new Float32Array(outWidth * outHeight);
  const sy = height / outHeight;
  const sx = width / outWidth;
  // Precompute the horizontal taps once per column.
  const x0s = new Int32Array(outWidth);
  const x1s = new Int32Array(outWidth);
  const lxs = new Float64Array(outWidth);
  for (let x = 0; x < outWidth; x++) {
    let fx = (x + 0.5) * sx - 0.5;
    if (fx < 0) fx = 0;
    let x0 = Math.floor(fx);
    if (x0 > width - 1) x0 = width - 1;
    x0s[x] = x0;
    x1s[x] = x0 < width - 1 ? x0 + 1 : x0;
    lxs[x] = fx - x0;
  }
  for (let y = 0; y < outHeight; y++) {
    let fy = (y + 0.5) * sy - 0.5;
    if (fy < 0) fy = 0;
    let y0 = Math.floor(fy);
    if (y0 > height - 1) y0 = height - 1;
    const y1 = y0 < height - 1 ? y0 + 1 : y0;
    const ly = fy - y0;
    const r0 = y0 * width;
    const r1 = y1 * width;
    const o = y * outWidth;
    for (let x = 0; x < outWidth; x++) {
      const x0 = x0s[x]!;
      const x1 = x1s[x]!;
      const lx = lxs[x]!;
      const top = src[r0 + x0]! + lx * (src[r0 + x1]! - src[r0 + x0]!);
      const bottom = src[r1 + x0]! + lx * (src[r1 + x1]! - src[r1 + x0]!);
      out[o + x] = top + ly * (bottom - top);
    }
  }
  return out;
}

/** CHW planar RGB (all R, then G, then B) to HWC interleaved RGB. */
export function chwToHwc(image: Uint8Array, width: number, height: number): Buffer {
  const plane = width * height;
  const out = Buffer.allocUnsafe(plane * 3);
  for (let p = 0; p < plane; p++) {
    out[3 * p] = image[p]!;
    out[3 * p + 1] = image[plane + p]!;
    out[3 * p + 2] = image[2 * plane + p]!;
  }
  return out;
}

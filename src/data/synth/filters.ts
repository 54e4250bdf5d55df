// Image-space steps after rendering: sensor noise, bilinear resampling, blur, saturation, vignette,
// the period-8 pattern of FAKE images, and gamma + quantisation to bytes.

import { Rng } from './rng';

/** Add sensor-like noise: luminance sigma `sl` plus chroma sigma `sc`. */
export function addNoise(rng: Rng, img: Float32Array, sl: number, sc: number): void {
  if (sl <= 0 && sc <= 0) return;
  for (let i = 0; i < img.length; i += 3) {
    const l = sl * rng.tri();
    img[i] += l + sc * rng.tri();
    img[i + 1] += l + sc * rng.tri();
    img[i + 2] += l + sc * rng.tri();
  }
}

/** Bilinear resampling (half-pixel centres, edge clamp) from src x src to dst x dst. */
export function resizeBilinear(img: Float32Array, src: number, dst: number): Float32Array {
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
export function blur(img: Float32Array, res: number, w: number): void {
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
export function saturate(img: Float32Array, k: number): void {
  if (k === 1) return;
  for (let i = 0; i < img.length; i += 3) {
    const l = 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
    img[i] = l + (img[i] - l) * k;
    img[i + 1] = l + (img[i + 1] - l) * k;
    img[i + 2] = l + (img[i + 2] - l) * k;
  }
}

export function vignette(img: Float32Array, res: number, strength: number): void {
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
export function addGrid(rng: Rng, img: Float32Array, res: number, amp: number): void {
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
export function toBytes(img: Float32Array, gammaPercent: number, exposure: number): Buffer {
  const lut = gammaLut(gammaPercent);
  const out = Buffer.allocUnsafe(img.length);
  const k = exposure * (LUT_SIZE - 1);
  for (let i = 0; i < img.length; i++) {
    const v = img[i] * k;
    out[i] = lut[v <= 0 ? 0 : v >= LUT_SIZE - 1 ? LUT_SIZE - 1 : Math.round(v)];
  }
  return out;
}

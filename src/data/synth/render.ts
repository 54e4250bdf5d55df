// Rendering one synthetic image: rasterise the scene (2x2 supersampled edges), then the per-class
// steps of the image model (MODEL), to 32x32 RGB bytes.

import { addGrid, addNoise, blur, resizeBilinear, saturate, toBytes, vignette } from './filters';
import { CLASSES, SIZE, SPLITS, SynthClass, SynthSplit } from './options';
import { imageSeed, Rng } from './rng';
import { colourAt, GROUND_BIT, insideShape, makeScene, Sample, Scene } from './scene';

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

/**
 * Per-class parameters of the image model (ranges are [min, max] of uniform
 * per-image draws; sigmas and amplitudes in [0,1] intensity units, 1/255 is one
 * level). SYNTHETIC.md lists them verbatim.
 */
export const MODEL = {
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

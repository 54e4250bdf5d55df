/**
 * Class-activation-map methods computed from one conv layer's activations A and the gradients G of
 * the target score with respect to them (both N x C x h x w, from the native `layerGradients`), in
 * batches. The target score of a one-logit model is +logit for REAL and -logit for FAKE, so a map
 * always shows what supports the class it explains; explaining the predicted class of a wrong
 * prediction shows what misled the model.
 *
 *   gradcam    ReLU(sum_c mean_hw(G_c) A_c)                        Selvaraju et al. 2017
 *   hirescam   ReLU(sum_c G_c * A_c)                                Draelos & Carin 2020
 *   gradcampp  ReLU(sum_c w_c A_c), w_c = sum_hw alpha ReLU(G_c),    Chattopadhay et al. 2018
 *              alpha = G^2 / (2 G^2 + sum_hw(A_c) G^3)
 *   xgradcam   ReLU(sum_c w_c A_c), w_c = sum_hw(G_c A_c) / sum_hw(A_c)   Fu et al. 2020
 *   layercam   ReLU(sum_c ReLU(G_c) * A_c)                          Jiang et al. 2021
 *   eigencam   projection of A (hw x C, centred) on its first principal direction, sign chosen to
 *              agree with the mean activation; gradient-free                Muhammad & Yeasin 2020
 * Maps are returned at layer resolution (not normalised); `upsampleMaps` brings them to 32 x 32.
 */
import { resizeBilinear } from './resample';

export const GRADIENT_CAM_METHODS = ['gradcam', 'hirescam', 'gradcampp', 'xgradcam', 'layercam', 'eigencam'] as const;
export type GradientCamMethod = (typeof GRADIENT_CAM_METHODS)[number];

/** How each method is named in titles and tables. */
export const CAM_METHOD_NAMES: Record<GradientCamMethod | 'scorecam', string> = {
  gradcam: 'Grad-CAM',
  hirescam: 'HiResCAM',
  gradcampp: 'Grad-CAM++',
  xgradcam: 'XGradCAM',
  layercam: 'LayerCAM',
  eigencam: 'EigenCAM',
  scorecam: 'ScoreCAM',
};

export interface LayerTensors {
  n: number;
  channels: number;
  /** spatial size h = w of the layer */
  size: number;
  /** N x C x h x w */
  activations: Float32Array;
  /** N x C x h x w: d(target score) / dA */
  gradients: Float32Array;
}

/** The layer tensors of a native `gradcam(images, { tensors: true })` result; a build without them is named. */
export function layerTensorsOf(g: { n: number; layerSize: number; channels?: number; activations?: Float32Array; gradients?: Float32Array }): LayerTensors {
  if (!g.activations || !g.gradients || g.channels === undefined)
    throw new Error('this build of the addon returns no layer tensors (gradcam { tensors: true }); rebuild it with `cifake build`');
  return { n: g.n, channels: g.channels, size: g.layerSize, activations: g.activations, gradients: g.gradients };
}

const EPS = 1e-7;

function combine(t: LayerTensors, i: number, weight: (c: number, a: Float32Array, g: Float32Array) => number | Float32Array, out: Float32Array): void {
  const hw = t.size * t.size;
  const map = out.subarray(i * hw, (i + 1) * hw);
  map.fill(0);
  for (let c = 0; c < t.channels; c++) {
    const off = (i * t.channels + c) * hw;
    const a = t.activations.subarray(off, off + hw), g = t.gradients.subarray(off, off + hw);
    const w = weight(c, a, g);
    if (typeof w === 'number') for (let p = 0; p < hw; p++) map[p] += w * a[p];
    else for (let p = 0; p < hw; p++) map[p] += w[p];
  }
  for (let p = 0; p < hw; p++) if (map[p] < 0) map[p] = 0;
}

const sum = (x: Float32Array) => x.reduce((s, v) => s + v, 0);

/** First right singular vector of the centred hw x C matrix X (power iteration on X^T X). */
function firstComponent(x: Float64Array, rows: number, cols: number): Float64Array {
  const cov = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < cols; i++) {
      const xi = x[r * cols + i];
      if (xi === 0) continue;
      for (let j = 0; j < cols; j++) cov[i * cols + j] += xi * x[r * cols + j];
    }
  let v = new Float64Array(cols).fill(1 / Math.sqrt(cols));
  for (let it = 0; it < 100; it++) {
    const next = new Float64Array(cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) next[i] += cov[i * cols + j] * v[j];
    const norm = Math.hypot(...next);
    if (norm < 1e-30) return v;
    for (let i = 0; i < cols; i++) next[i] /= norm;
    let delta = 0;
    for (let i = 0; i < cols; i++) delta = Math.max(delta, Math.abs(next[i] - v[i]));
    v = next;
    if (delta < 1e-10) break;
  }
  return v;
}

function eigenCam(t: LayerTensors, i: number, out: Float32Array): void {
  const hw = t.size * t.size, C = t.channels;
  const x = new Float64Array(hw * C);
  for (let c = 0; c < C; c++) {
    const off = (i * C + c) * hw;
    let mean = 0;
    for (let p = 0; p < hw; p++) mean += t.activations[off + p];
    mean /= hw;
    for (let p = 0; p < hw; p++) x[p * C + c] = t.activations[off + p] - mean;
  }
  const v = firstComponent(x, hw, C);
  const map = out.subarray(i * hw, (i + 1) * hw);
  let agree = 0;
  for (let p = 0; p < hw; p++) {
    let s = 0, total = 0;
    for (let c = 0; c < C; c++) {
      s += x[p * C + c] * v[c];
      total += t.activations[(i * C + c) * hw + p];
    }
    map[p] = s;
    agree += s * total;
  }
  // A principal direction has no sign: take the one along which the total activation grows.
  const sign = agree < 0 ? -1 : 1;
  for (let p = 0; p < hw; p++) map[p] = Math.max(0, sign * map[p]);
}

/** Maps (N x h x w, ReLU'd, not normalised) of one gradient-based or eigen method. */
export function camFromLayer(t: LayerTensors, method: GradientCamMethod): Float32Array {
  const hw = t.size * t.size;
  if (t.activations.length !== t.n * t.channels * hw || t.gradients.length !== t.activations.length)
    throw new RangeError(`camFromLayer: expected ${t.n} x ${t.channels} x ${t.size} x ${t.size} activations and gradients`);
  const out = new Float32Array(t.n * hw);
  for (let i = 0; i < t.n; i++) {
    switch (method) {
      case 'gradcam':
        combine(t, i, (_c, _a, g) => sum(g) / hw, out);
        break;
      case 'hirescam':
        combine(t, i, (_c, a, g) => Float32Array.from(a, (v, p) => v * g[p]), out);
        break;
      case 'gradcampp':
        combine(t, i, (_c, a, g) => {
          const sa = sum(a);
          let w = 0;
          for (let p = 0; p < hw; p++) {
            if (g[p] === 0) continue;
            const g2 = g[p] * g[p];
            const alpha = g2 / (2 * g2 + sa * g2 * g[p] + EPS);
            w += alpha * Math.max(0, g[p]);
          }
          return w;
        }, out);
        break;
      case 'xgradcam':
        combine(t, i, (_c, a, g) => {
          let ga = 0;
          for (let p = 0; p < hw; p++) ga += g[p] * a[p];
          return ga / (sum(a) + EPS);
        }, out);
        break;
      case 'layercam':
        combine(t, i, (_c, a, g) => Float32Array.from(a, (v, p) => v * Math.max(0, g[p])), out);
        break;
      case 'eigencam':
        eigenCam(t, i, out);
        break;
      default:
        throw new RangeError(`camFromLayer: unknown method '${method as string}' (allowed: ${GRADIENT_CAM_METHODS.join(', ')})`);
    }
  }
  return out;
}

/** Bilinear (align_corners false) upsampling of N maps from size x size to out x out, each divided by its maximum (peak 1; all-zero maps stay zero). */
export function upsampleMaps(maps: Float32Array, n: number, size: number, out = 32): Float32Array {
  const res = new Float32Array(n * out * out);
  for (let i = 0; i < n; i++) {
    const m = resizeBilinear(maps.subarray(i * size * size, (i + 1) * size * size), size, size, out, out);
    let max = 0;
    for (const v of m) if (v > max) max = v;
    for (let p = 0; p < out * out; p++) res[i * out * out + p] = max > 0 ? Math.max(0, m[p]) / max : 0;
  }
  return res;
}

/** What ScoreCAM needs of a model: target scores (+logit REAL, -logit FAKE) of masked inputs. */
export interface ScoreModel {
  predictLogits(images: Uint8Array): Promise<Float32Array>;
}

/**
 * ScoreCAM (Wang et al. 2020), gradient-free: each channel's activation, upsampled and scaled to
 * [0, 1], masks the image; the target score of each masked image, softmaxed over channels, weighs
 * the channels. One batched forward pass of N x C masked images.
 */
export async function scoreCam(model: ScoreModel, images: Uint8Array, t: Omit<LayerTensors, 'gradients'>, targets: Int32Array | number[], side = 32): Promise<Float32Array> {
  const hw = t.size * t.size, per = 3 * side * side;
  const masked = new Uint8Array(t.n * t.channels * per);
  const masks: Float32Array[] = [];
  for (let i = 0; i < t.n; i++)
    for (let c = 0; c < t.channels; c++) {
      const off = (i * t.channels + c) * hw;
      const up = resizeBilinear(t.activations.subarray(off, off + hw), t.size, t.size, side, side);
      let lo = Infinity, hi = -Infinity;
      for (const v of up) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const m = Float32Array.from(up, (v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
      masks.push(m);
      const dst = (i * t.channels + c) * per;
      for (let ch = 0; ch < 3; ch++) for (let p = 0; p < side * side; p++) masked[dst + ch * side * side + p] = Math.round(images[i * per + ch * side * side + p] * m[p]);
    }
  const logits = await model.predictLogits(masked);
  const out = new Float32Array(t.n * hw);
  for (let i = 0; i < t.n; i++) {
    const sign = targets[i] === 1 ? 1 : -1;
    let max = -Infinity;
    for (let c = 0; c < t.channels; c++) max = Math.max(max, sign * logits[i * t.channels + c]);
    const w = new Float64Array(t.channels);
    let z = 0;
    for (let c = 0; c < t.channels; c++) z += w[c] = Math.exp(sign * logits[i * t.channels + c] - max);
    const map = out.subarray(i * hw, (i + 1) * hw);
    for (let c = 0; c < t.channels; c++) {
      const off = (i * t.channels + c) * hw;
      for (let p = 0; p < hw; p++) map[p] += (w[c] / z) * t.activations[off + p];
    }
    for (let p = 0; p < hw; p++) if (map[p] < 0) map[p] = 0;
  }
  return out;
}

// Independent float64 reference of the CIFAKE networks in eval mode (conv3x3 [+ conv' of x^2],
// BN on running statistics, ReLU, max-pool 2, dense + ReLU, dropout off, out) and of Grad-CAM /
// HiResCAM with gradients by central finite differences. Reads weights from model.state().
import type { NativeModelSpec } from '../src/native';

export interface Tensor3 {
  c: number;
  h: number;
  w: number;
  d: Float64Array; // c x h x w
}

export type State = Record<string, Float32Array>;

function conv3x3(x: Tensor3, weight: Float32Array, bias: Float32Array, cout: number, pad: number, square = false): Tensor3 {
  const h = x.h + 2 * pad - 2;
  const w = x.w + 2 * pad - 2;
  const d = new Float64Array(cout * h * w);
  for (let o = 0; o < cout; o++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let s = bias[o]!;
        for (let c = 0; c < x.c; c++)
          for (let ky = 0; ky < 3; ky++) {
            const iy = y + ky - pad;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < 3; kx++) {
              const ix = xx + kx - pad;
              if (ix < 0 || ix >= x.w) continue;
              const v = x.d[(c * x.h + iy) * x.w + ix]!;
              s += weight[((o * x.c + c) * 3 + ky) * 3 + kx]! * (square ? v * v : v);
            }
          }
        d[(o * h + y) * w + xx] = s;
      }
  return { c: cout, h, w, d };
}

/** conv (+ conv' of x^2) (+ BN on running stats) + ReLU: the activation named convK. */
function block(x: Tensor3, st: State, spec: NativeModelSpec, k: number): Tensor3 {
  const cout = spec.convFilters[k - 1]!;
  const pad = spec.padding === 'same' ? 1 : 0;
  const p = `block${k}`;
  const y = conv3x3(x, st[`${p}.conv.weight`]!, st[`${p}.conv.bias`]!, cout, pad);
  if (spec.hoc) {
    const y2 = conv3x3(x, st[`${p}.conv_sq.weight`]!, st[`${p}.conv_sq.bias`]!, cout, pad, true);
    for (let i = 0; i < y.d.length; i++) y.d[i]! += y2.d[i]!;
  }
  const plane = y.h * y.w;
  for (let c = 0; c < cout; c++) {
    let scale = 1;
    let shift = 0;
    if (spec.batchNorm) {
      scale = st[`${p}.bn.weight`]![c]! / Math.sqrt(st[`${p}.bn.running_var`]![c]! + 1e-5);
      shift = st[`${p}.bn.bias`]![c]! - st[`${p}.bn.running_mean`]![c]! * scale;
    }
    for (let i = c * plane; i < (c + 1) * plane; i++) y.d[i] = Math.max(0, y.d[i]! * scale + shift);
  }
  return y;
}

function maxpool2(x: Tensor3): Tensor3 {
  const h = Math.floor(x.h / 2);
  const w = Math.floor(x.w / 2);
  const d = new Float64Array(x.c * h * w);
  for (let c = 0; c < x.c; c++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let m = -Infinity;
        for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) m = Math.max(m, x.d[(c * x.h + 2 * y + dy) * x.w + 2 * xx + dx]!);
        d[(c * h + y) * w + xx] = m;
      }
  return { c: x.c, h, w, d };
}

function head(x: Float64Array, st: State, spec: NativeModelSpec): number {
  let v = x;
  spec.dense.forEach((units, j) => {
    const W = st[`dense${j + 1}.weight`]!;
    const b = st[`dense${j + 1}.bias`]!;
    const out = new Float64Array(units);
    for (let o = 0; o < units; o++) {
      let s = b[o]!;
      for (let i = 0; i < v.length; i++) s += W[o * v.length + i]! * v[i]!;
      out[o] = Math.max(0, s);
    }
    v = out;
  });
  // Dropout is the identity in eval mode.
  const w = st['out.weight']!;
  let s = st['out.bias']![0]!;
  for (let i = 0; i < v.length; i++) s += w[i]! * v[i]!;
  return s;
}

/** Layer names in network order: conv1, pool1, conv2, pool2, ... */
export function layerIndex(layer: string): { k: number; pooled: boolean } {
  const m = /^(conv|pool)(\d+)$/.exec(layer)!;
  return { k: Number(m[2]), pooled: m[1] === 'pool' };
}

/** Forward from the input image up to (and including) the named layer. */
export function forwardTo(image: Uint8Array, st: State, spec: NativeModelSpec, layer: string): Tensor3 {
  const { k: stop, pooled } = layerIndex(layer);
  let x: Tensor3 = { c: 3, h: 32, w: 32, d: Float64Array.from(image, (v) => v / 255) };
  for (let k = 1; k <= stop; k++) {
    x = block(x, st, spec, k);
    if (k < stop || pooled) x = maxpool2(x);
  }
  return x;
}

/** The rest of the network: from the named layer's activation to the logit. */
export function forwardFrom(a: Tensor3, st: State, spec: NativeModelSpec, layer: string): number {
  const { k: start, pooled } = layerIndex(layer);
  let x = pooled ? a : maxpool2(a);
  for (let k = start + 1; k <= spec.convFilters.length; k++) x = maxpool2(block(x, st, spec, k));
  return head(x.d, st, spec);
}

/**
 * d logit / d A for every element of the layer activation A, by central finite differences
 * through forwardFrom. A convK activation goes into its own 2x2 max-pool first, where the step
 * must not cross a kink: an element's step is at most a quarter of its distance to its window's
 * maximum (for the maximum: to the runner-up). Where the maximum is tied (all zero after ReLU)
 * it is not differentiable; there the window's maximum is perturbed as a whole (all tied
 * elements together) and the derivative assigned to the first tied element in row-major order,
 * libtorch's max-pool subgradient convention (the others get 0).
 */
export function gradientFD(a: Tensor3, st: State, spec: NativeModelSpec, layer: string, h = 1e-6): Float64Array {
  const g = new Float64Array(a.d.length);
  const f = () => forwardFrom(a, st, spec, layer);
  const step = new Float64Array(a.d.length).fill(h);
  const done = new Uint8Array(a.d.length);
  if (!layerIndex(layer).pooled) {
    for (let c = 0; c < a.c; c++)
      for (let y = 0; y + 1 < a.h; y += 2)
        for (let x = 0; x + 1 < a.w; x += 2) {
          const idx = [0, 1, 2, 3].map((q) => (c * a.h + y + (q >> 1)) * a.w + x + (q & 1));
          const m = Math.max(...idx.map((i) => a.d[i]!));
          const at = idx.filter((i) => a.d[i] === m);
          if (at.length > 1) {
            const save = at.map((i) => a.d[i]!);
            at.forEach((i) => (a.d[i] = m + h));
            const fp = f();
            at.forEach((i) => (a.d[i] = m - h));
            const fm = f();
            at.forEach((i, j) => (a.d[i] = save[j]!));
            g[at[0]!] = (fp - fm) / (2 * h);
            at.forEach((i) => (done[i] = 1));
            continue;
          }
          const second = Math.max(...idx.filter((i) => i !== at[0]).map((i) => a.d[i]!));
          for (const i of idx) step[i] = Math.min(h, (i === at[0] ? m - second : m - a.d[i]!) / 4);
        }
  }
  for (let i = 0; i < a.d.length; i++) {
    if (done[i]) continue;
    const v = a.d[i]!;
    const e = step[i]!;
    a.d[i] = v + e;
    const fp = f();
    a.d[i] = v - e;
    const fm = f();
    a.d[i] = v;
    g[i] = (fp - fm) / (2 * e);
  }
  return g;
}

export function referenceCam(a: Tensor3, grad: Float64Array, sign: number, method: 'gradcam' | 'hirescam'): Float64Array {
  const plane = a.h * a.w;
  const cam = new Float64Array(plane);
  for (let c = 0; c < a.c; c++) {
    let alpha = 0;
    if (method === 'gradcam') {
      for (let p = 0; p < plane; p++) alpha += grad[c * plane + p]!;
      alpha /= plane;
    }
    for (let p = 0; p < plane; p++) {
      const w = method === 'gradcam' ? alpha : grad[c * plane + p]!;
      cam[p]! += sign * w * a.d[c * plane + p]!;
    }
  }
  for (let p = 0; p < plane; p++) cam[p] = Math.max(0, cam[p]!);
  return cam;
}


/**
 * Explaining a model: Grad-CAM / HiResCAM maps computed natively in batches,
 * normalised and tied to predictions, then rendered (triptychs, galleries,
 * class-mean maps) with the rest of this folder.
 *
 *   const e = await explainImages(model, images, { method: 'gradcam', target: 'pred' });
 *   e.maps.subarray(i * 1024, (i + 1) * 1024)   // image i, 32x32, peak 1
 *
 * Maps are computed in eval mode (dropout off, BN on running statistics), so
 * each image is explained independently of its batch and the model is left
 * untouched.
 */
import path from 'node:path';

import { sigmoid } from '../metrics';
import type { CifakeModel, GradCamResult } from '../model';
import { classMeanMaps, ClassMeanMaps, renderClassMeans } from './classmeans';
import { ColormapName } from './colormap';
import { GalleryItem, GallerySelection, renderGallery, selectGalleryItems } from './gallery';
import { renderTriptych, RenderStyle } from './render';
import { CAM_METHOD_NAMES, camFromLayer, GRADIENT_CAM_METHODS, layerTensorsOf, upsampleMaps, type GradientCamMethod } from './cam-methods';
import { resizeBilinear } from './resample';
import { Label, LABEL_NAMES } from './validate';

export type ExplainTarget = 'pred' | 'real' | 'fake';
/** Grad-CAM and HiResCAM come from the addon; the others from the layer's activations and gradients (cam-methods.ts). */
export type ExplainMethod = GradientCamMethod;

export interface ExplainOptions {
  /** Layer to explain (conv1..convK, pool1..poolK); default the model's last conv block before pooling. */
  layer?: string;
  /** Class explained: the predicted one (default), or always REAL / FAKE. */
  target?: ExplainTarget;
  /** 'gradcam' (default): channel weights = mean gradient; 'hirescam': element-wise gradient x activation. */
  method?: ExplainMethod;
  /** Images per native call (default 256). */
  batchSize?: number;
  /** P(REAL) >= threshold is predicted REAL (default 0.5); decides `predicted` and the 'pred' target. */
  threshold?: number;
  /** Side of the upsampled maps (default 32, the image size). */
  size?: number;
  /** Called after each batch. */
  onProgress?: (done: number, total: number) => void;
}

/** Explanations of N images, as arrays (image i's values at i * plane ... (i + 1) * plane). */
export interface Explanation {
  n: number;
  layer: string;
  /** Side of the raw maps (the layer's spatial size, e.g. 16 or 13). */
  layerSize: number;
  /** Side of `maps` (default 32). */
  size: number;
  method: ExplainMethod;
  target: ExplainTarget;
  threshold: number;
  /** n x layerSize^2: ReLU(CAM) at layer resolution, not normalised. */
  raw: Float32Array;
  /** n x size^2: `raw` bilinearly upsampled (align_corners false), each map divided by its own maximum (all-zero stays zero). */
  maps: Float32Array;
  /** n: the maximum of each upsampled map before normalisation (the divisor; maps * mapMax recovers it). */
  mapMax: Float32Array;
  /** n: the maximum of each raw map. */
  rawMax: Float32Array;
  logits: Float32Array;
  /** n: sigmoid(logit), float64 (predicted = pReal >= threshold exactly). */
  pReal: Float64Array;
  /** n: 1 REAL, 0 FAKE (pReal >= threshold). */
  predicted: Uint8Array;
  /** n: the class each map explains (1 REAL, 0 FAKE). */
  targets: Uint8Array;
}

/** One image of an Explanation (subarray views, no copies). */
export interface ExplainedImage {
  index: number;
  raw: Float32Array;
  map: Float32Array;
  mapMax: number;
  rawMax: number;
  logit: number;
  pReal: number;
  predicted: Label;
  target: Label;
}

const IMAGE_BYTES = 3 * 32 * 32;
const TARGETS: readonly ExplainTarget[] = ['pred', 'real', 'fake'];
const METHODS: readonly ExplainMethod[] = GRADIENT_CAM_METHODS;

/** Throws an error that lists the valid layer names when `layer` is not one of the model's. */
export function assertLayer(model: CifakeModel, layer: string | undefined): string {
  const { layers, defaultLayer } = model.description;
  if (layer === undefined || layer === '') return defaultLayer;
  if (typeof layer !== 'string' || !layers.includes(layer)) {
    throw new Error(`layer: unknown layer '${String(layer)}' (valid: ${layers.join(', ')}; default ${defaultLayer})`);
  }
  return layer;
}

interface Resolved {
  layer: string;
  target: ExplainTarget;
  method: ExplainMethod;
  batchSize: number;
  threshold: number;
  size: number;
}

function resolveOptions(model: CifakeModel, opts: ExplainOptions): Resolved {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('explain options must be an object');
  const target = opts.target ?? 'pred';
  if (!TARGETS.includes(target)) throw new Error(`target: expected one of ${TARGETS.join(', ')}, got '${String(target)}'`);
  const method = opts.method ?? 'gradcam';
  if (!METHODS.includes(method)) throw new Error(`method: expected one of ${METHODS.join(', ')}, got '${String(method)}'`);
  const batchSize = opts.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize: expected an integer >= 1, got ${batchSize}`);
  const threshold = opts.threshold ?? 0.5;
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) throw new Error(`threshold: expected a number in [0, 1], got ${threshold}`);
  const size = opts.size ?? 32;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new Error(`size: expected an integer in 1..4096, got ${size}`);
  return { layer: assertLayer(model, opts.layer), target, method, batchSize, threshold, size };
}

function checkImages(images: Uint8Array): number {
  if (!(images instanceof Uint8Array)) throw new TypeError('images: expected a Uint8Array of N x 3 x 32 x 32 (CHW) bytes');
  if (images.length % IMAGE_BYTES !== 0)
    throw new RangeError(`images: byte length ${images.length} is not a multiple of 3*32*32 = ${IMAGE_BYTES}`);
  return images.length / IMAGE_BYTES;
}

/** Copies image `src` of a native result into slot `dst` of the output arrays. */
function place(out: Explanation, r: GradCamResult, src: number, dst: number, layerPlane: number, plane: number): void {
  out.raw.set(r.raw.subarray(src * layerPlane, (src + 1) * layerPlane), dst * layerPlane);
  const m = r.maps.subarray(src * plane, (src + 1) * plane);
  let max = 0;
  for (let k = 0; k < plane; k++) if (m[k]! > max) max = m[k]!;
  out.mapMax[dst] = max;
  const o = out.maps.subarray(dst * plane, (dst + 1) * plane);
  if (max > 0) for (let k = 0; k < plane; k++) o[k] = Math.min(1, m[k]! / max);
  else o.fill(0);
  out.rawMax[dst] = r.rawMax[src]!;
  out.targets[dst] = r.targets[src]!;
}

/**
 * Grad-CAM (or HiResCAM) of N CHW images, in batches of `batchSize`. With
 * target 'pred', each image is explained for its class at `threshold`
 * (images the native 0.5 rule assigned differently are explained again for
 * the right class).
 */
export async function explainImages(model: CifakeModel, images: Uint8Array, opts: ExplainOptions = {}): Promise<Explanation> {
  const o = resolveOptions(model, opts);
  const n = checkImages(images);
  const layerSize = model.description.layerSizes[o.layer]!;
  const layerPlane = layerSize * layerSize;
  const plane = o.size * o.size;
  const out: Explanation = {
    n,
    layer: o.layer,
    layerSize,
    size: o.size,
    method: o.method,
    target: o.target,
    threshold: o.threshold,
    raw: new Float32Array(n * layerPlane),
    maps: new Float32Array(n * plane),
    mapMax: new Float32Array(n),
    rawMax: new Float32Array(n),
    logits: new Float32Array(n),
    pReal: new Float64Array(n),
    predicted: new Uint8Array(n),
    targets: new Uint8Array(n),
  };
  const call = async (x: Uint8Array, target: ExplainTarget): Promise<GradCamResult> => {
    if (o.method === 'gradcam' || o.method === 'hirescam') return model.gradcam(x, { layer: o.layer, target, method: o.method, size: o.size });
    const r = await model.gradcam(x, { layer: o.layer, target, size: o.size, tensors: true });
    const raw = camFromLayer(layerTensorsOf(r), o.method);
    const rawMax = new Float32Array(r.n);
    for (let i = 0; i < r.n; i++) for (let k = 0; k < layerPlane; k++) rawMax[i] = Math.max(rawMax[i]!, raw[i * layerPlane + k]!);
    return { ...r, raw, rawMax, maps: upsampleMaps(raw, r.n, r.layerSize, o.size) };
  };
  for (let start = 0; start < n; start += o.batchSize) {
    const end = Math.min(n, start + o.batchSize);
    const r = await call(images.subarray(start * IMAGE_BYTES, end * IMAGE_BYTES), o.target);
    const redo: number[][] = [[], []];
    for (let i = 0; i < end - start; i++) {
      const g = start + i;
      const z = r.logits[i]!;
      out.logits[g] = z;
      const p = sigmoid(z);
      out.pReal[g] = p;
      const predicted = p >= o.threshold ? 1 : 0;
      out.predicted[g] = predicted;
      place(out, r, i, g, layerPlane, plane);
      if (o.target === 'pred' && r.targets[i] !== predicted) redo[predicted]!.push(g);
    }
    for (const cls of [0, 1] as const) {
      const idx = redo[cls]!;
      if (idx.length === 0) continue;
      const sub = new Uint8Array(idx.length * IMAGE_BYTES);
      idx.forEach((g, k) => sub.set(images.subarray(g * IMAGE_BYTES, (g + 1) * IMAGE_BYTES), k * IMAGE_BYTES));
      const r2 = await call(sub, cls === 1 ? 'real' : 'fake');
      idx.forEach((g, k) => place(out, r2, k, g, layerPlane, plane));
    }
    opts.onProgress?.(end, n);
  }
  return out;
}

/** Image i of an explanation, as views. */
export function explanationAt(e: Explanation, i: number): ExplainedImage {
  if (!Number.isInteger(i) || i < 0 || i >= e.n) throw new RangeError(`explanationAt: index ${i} is outside 0..${e.n - 1}`);
  const lp = e.layerSize * e.layerSize;
  const p = e.size * e.size;
  return {
    index: i,
    raw: e.raw.subarray(i * lp, (i + 1) * lp),
    map: e.maps.subarray(i * p, (i + 1) * p),
    mapMax: e.mapMax[i]!,
    rawMax: e.rawMax[i]!,
    logit: e.logits[i]!,
    pReal: e.pReal[i]!,
    predicted: e.predicted[i] as Label,
    target: e.targets[i] as Label,
  };
}

// ---------------------------------------------------------------------------
// One image, as the embedding API returns it

export interface ExplainedPrediction {
  label: 'REAL' | 'FAKE';
  pReal: number;
  pFake: number;
}

export interface ExplainPngOptions {
  colormap?: ColormapName;
  alpha?: number;
  /** Display scale of the 32x32 panels (default 8). */
  scale?: number;
}

export interface ImageExplanation {
  prediction: ExplainedPrediction;
  layer: string;
  layerSize: number;
  method: ExplainMethod;
  /** Class the map explains. */
  target: 'REAL' | 'FAKE';
  /** 32 x 32 map, divided by its maximum (peak 1; all zeros when nothing supports the target). */
  map: Float32Array;
  /** layerSize x layerSize raw ReLU(CAM) at layer resolution. */
  rawMap: Float32Array;
  rawMax: number;
  /** Triptych PNG (original | heatmap | overlay) when asked for. */
  png?: Buffer;
}

/** Triptych of image i of an explanation. */
export function renderExplained(
  images: Uint8Array,
  e: Explanation,
  i: number,
  extra: { fileName?: string; label?: Label | null } & ExplainPngOptions & Pick<RenderStyle, 'textRenderer'> = {},
): Promise<Buffer> {
  const it = explanationAt(e, i);
  return renderTriptych({
    image: images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
    map: it.map,
    width: e.size,
    height: e.size,
    normalized: true,
    rawMax: it.mapMax,
    pReal: it.pReal,
    predicted: it.predicted,
    label: extra.label ?? null,
    fileName: extra.fileName,
    colormap: extra.colormap,
    alpha: extra.alpha,
    scale: extra.scale,
    textRenderer: extra.textRenderer,
  });
}

/** Explains one CHW image (3072 bytes); `png` renders its triptych too. */
export async function explainImage(
  model: CifakeModel,
  image: Uint8Array,
  opts: Omit<ExplainOptions, 'batchSize' | 'size' | 'onProgress'> & { png?: boolean | ExplainPngOptions; /** Shown (base name) in the triptych caption. */ fileName?: string } = {},
): Promise<ImageExplanation> {
  if (checkImages(image) !== 1) throw new RangeError(`image: expected one 3x32x32 image (${IMAGE_BYTES} bytes), got ${image.length} bytes`);
  const { png, fileName, ...rest } = opts;
  const e = await explainImages(model, image, { ...rest, size: 32 });
  const it = explanationAt(e, 0);
  const out: ImageExplanation = {
    prediction: { label: it.predicted === 1 ? 'REAL' : 'FAKE', pReal: it.pReal, pFake: 1 - it.pReal },
    layer: e.layer,
    layerSize: e.layerSize,
    method: e.method,
    target: LABEL_NAMES[it.target],
    map: e.maps,
    rawMap: e.raw,
    rawMax: it.rawMax,
  };
  if (png) out.png = await renderExplained(image, e, 0, { fileName: fileName === undefined ? undefined : path.basename(fileName), ...(typeof png === 'object' ? png : {}) });
  return out;
}

// ---------------------------------------------------------------------------
// A dataset split: gallery and class means

export interface DatasetInput {
  /** N x 3 x 32 x 32 uint8 CHW. */
  images: Uint8Array;
  /** N true labels (0 FAKE, 1 REAL), or null. */
  labels?: Uint8Array | null;
  /** N names (shown in captions as base names). */
  files?: readonly string[];
}

export interface ExplainDatasetOptions extends ExplainOptions {
  /** Images per gallery group (most confident REAL, most confident FAKE, misclassified). Default 8. */
  sample?: number;
  colormap?: ColormapName;
  alpha?: number;
  /** Display scale of gallery panels (default 4: 128 px panels). */
  scale?: number;
  /** Gallery columns (default 2). */
  columns?: number;
  /** Gallery title; default says model layer, method and target. */
  title?: string;
  textRenderer?: RenderStyle['textRenderer'];
}

export interface ClassMeanStats {
  count: number;
  /** Share of the mean map's mass in the central quarter of the image (the middle half of each side, upsampled to 32x32). 0.25 = uniform. */
  centreShare: number;
  /** Share in the outer ring of 4 pixels (of 32). 0.4375 = uniform. */
  borderShare: number;
  /** Peak position (row, col) in the layer-resolution mean map. */
  peak: { row: number; col: number; value: number };
}

export interface DatasetExplanation {
  count: number;
  layer: string;
  layerSize: number;
  method: ExplainMethod;
  target: ExplainTarget;
  threshold: number;
  /** Predictions at `threshold` over the whole split. */
  predicted: { REAL: number; FAKE: number };
  /** Over the whole split, when labels were given. */
  accuracy: number | null;
  /** Gallery images, in gallery order, with their explanations. */
  selection: Array<GallerySelection & { file: string | null; rawMax: number; target: Label }>;
  /** Explanations of the selected images (aligned with `selection`). */
  selected: Explanation;
  gallery: Buffer;
  /** Mean raw map (layer resolution) of images predicted REAL vs FAKE over the whole split. */
  classMeans: ClassMeanMaps;
  classMeansPng: Buffer;
  classMeanStats: { REAL: ClassMeanStats; FAKE: ClassMeanStats };
}

function meanStats(mean: Float32Array, side: number, count: number): ClassMeanStats {
  const up = resizeBilinear(mean, side, side, 32, 32);
  let total = 0;
  let centre = 0;
  let border = 0;
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++) {
      const v = up[y * 32 + x]!;
      total += v;
      if (y >= 8 && y < 24 && x >= 8 && x < 24) centre += v;
      if (y < 4 || y >= 28 || x < 4 || x >= 28) border += v;
    }
  let pk = 0;
  for (let k = 1; k < mean.length; k++) if (mean[k]! > mean[pk]!) pk = k;
  const r4 = (v: number) => Number(v.toFixed(4));
  return {
    count,
    centreShare: total > 0 ? r4(centre / total) : 0,
    borderShare: total > 0 ? r4(border / total) : 0,
    peak: { row: Math.floor(pk / side), col: pk % side, value: Number((mean[pk] ?? 0).toPrecision(4)) },
  };
}

/**
 * Explains a whole split: every image's raw map (for the class means) in
 * batches, then the gallery of the `sample` most confident REAL, most
 * confident FAKE and most confidently misclassified images, and the mean raw
 * map of the images predicted REAL vs FAKE.
 */
export async function explainDataset(model: CifakeModel, data: DatasetInput, opts: ExplainDatasetOptions = {}): Promise<DatasetExplanation> {
  const n = checkImages(data.images);
  if (n === 0) throw new RangeError('explainDataset: the dataset has no images');
  const labels = data.labels ?? null;
  if (labels !== null && labels.length !== n) throw new RangeError(`explainDataset: ${labels.length} labels for ${n} images`);
  if (data.files !== undefined && data.files.length !== n) throw new RangeError(`explainDataset: ${data.files.length} file names for ${n} images`);
  const sample = opts.sample ?? 8;
  if (!Number.isInteger(sample) || sample < 1) throw new Error(`sample: expected an integer >= 1, got ${sample}`);
  const { sample: _s, colormap, alpha, scale, columns, title, textRenderer, ...explainOpts } = opts;

  const all = await explainImages(model, data.images, explainOpts);
  const side = all.layerSize;
  const classMeans = classMeanMaps(all.raw, all.predicted, side, side);

  const selectionBase = selectGalleryItems(all.pReal, labels, sample, { threshold: all.threshold });
  const pick = new Uint8Array(selectionBase.length * IMAGE_BYTES);
  selectionBase.forEach((s, k) => pick.set(data.images.subarray(s.index * IMAGE_BYTES, (s.index + 1) * IMAGE_BYTES), k * IMAGE_BYTES));
  const selected = await explainImages(model, pick, { ...explainOpts, onProgress: undefined });
  const fileOf = (i: number): string | null => data.files?.[i] ?? null;
  const selection = selectionBase.map((s, k) => ({ ...s, file: fileOf(s.index), rawMax: selected.rawMax[k]!, target: selected.targets[k] as Label }));

  const items: GalleryItem[] = selection.map((s, k) => ({
    image: pick.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES),
    map: selected.maps.subarray(k * selected.size ** 2, (k + 1) * selected.size ** 2),
    width: selected.size,
    height: selected.size,
    normalized: true,
    rawMax: selected.mapMax[k]!,
    pReal: s.pReal,
    predicted: s.predicted,
    label: s.label,
    fileName: s.file !== null ? path.basename(s.file) : `#${s.index}`,
    group: s.group,
  }));
  const methodName = CAM_METHOD_NAMES[all.method];
  const targetName = all.target === 'pred' ? 'predicted class' : all.target.toUpperCase();
  const gallery = await renderGallery(items, {
    title: title ?? `${methodName} at ${all.layer} (${side}x${side}), explaining the ${targetName}`,
    colormap,
    alpha,
    scale: scale ?? 4,
    columns: columns ?? 2,
    textRenderer,
  });
  const classMeansPng = await renderClassMeans(classMeans, {
    colormap,
    title: `Mean ${methodName} at ${all.layer} by predicted class (n=${n}${all.target === 'pred' ? '' : `, explaining ${targetName}`})`,
    textRenderer,
  });
  let correct = 0;
  if (labels !== null) for (let i = 0; i < n; i++) if (labels[i] === all.predicted[i]) correct++;
  const realCount = all.predicted.reduce((a, b) => a + b, 0);
  return {
    count: n,
    layer: all.layer,
    layerSize: side,
    method: all.method,
    target: all.target,
    threshold: all.threshold,
    predicted: { REAL: realCount, FAKE: n - realCount },
    accuracy: labels !== null ? correct / n : null,
    selection,
    selected,
    gallery,
    classMeans,
    classMeansPng,
    classMeanStats: {
      REAL: meanStats(classMeans.REAL, side, classMeans.counts.REAL),
      FAKE: meanStats(classMeans.FAKE, side, classMeans.counts.FAKE),
    },
  };
}

/** JSON-friendly summary of a dataset explanation (no image data; the class means are in classMeansToJSON(d.classMeans)). */
export type DatasetSummaryJSON = Pick<
  DatasetExplanation,
  'count' | 'layer' | 'layerSize' | 'method' | 'target' | 'threshold' | 'predicted' | 'accuracy' | 'classMeanStats'
> & {
  selection: Array<{ group: string; index: number; file: string | null; pReal: number; predicted: string; label: string | null; target: string; rawMax: number }>;
};

export function datasetSummaryJSON(d: DatasetExplanation): DatasetSummaryJSON {
  return {
    count: d.count,
    layer: d.layer,
    layerSize: d.layerSize,
    method: d.method,
    target: d.target,
    threshold: d.threshold,
    predicted: d.predicted,
    accuracy: d.accuracy,
    selection: d.selection.map((s) => ({
      group: s.group,
      index: s.index,
      file: s.file,
      pReal: Number(s.pReal.toPrecision(6)),
      predicted: LABEL_NAMES[s.predicted],
      label: s.label === null ? null : LABEL_NAMES[s.label],
      target: LABEL_NAMES[s.target],
      rawMax: Number(s.rawMax.toPrecision(6)),
    })),
    classMeanStats: d.classMeanStats,
  };
}

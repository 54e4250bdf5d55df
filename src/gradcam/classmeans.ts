/**
 * Mean Grad-CAM maps per predicted class: where, on average, the model looks
 * when it says REAL versus FAKE.
 */
import sharp from 'sharp';
import { applyColormap, assertColormapName, ColormapName, DEFAULT_COLORMAP } from './colormap';
import { composePNG, frameLayers, rawLayer, Rect, TEXT_COLOR } from './render';
import { resizeBilinear } from './resample';
import { resolveTextRenderer, TextRendererChoice, textOverlay } from './text';
import { assertObject, assertPositiveInt, describe } from './validate';

export interface ClassMeansJSON {
  height: number;
  width: number;
  counts: { REAL: number; FAKE: number };
  /** Row-major mean map as height rows of width values. */
  REAL: number[][];
  FAKE: number[][];
}

export interface ClassMeanMaps {
  /** Mean raw map of images predicted REAL (zeros when none). */
  REAL: Float32Array;
  /** Mean raw map of images predicted FAKE (zeros when none). */
  FAKE: Float32Array;
  counts: { REAL: number; FAKE: number };
  height: number;
  width: number;
  /** JSON.stringify support: classMeansToJSON(this, 4). */
  toJSON(): ClassMeansJSON;
}

/**
 * Mean of the raw (unnormalised) maps of the images predicted REAL and of
 * those predicted FAKE. `maps` holds N maps of H*W values back to back;
 * `predicted[i]` is 0 (FAKE) or 1 (REAL). Accumulates in float64.
 */
export function classMeanMaps(
  maps: Float32Array | Float64Array,
  predicted: ArrayLike<number>,
  height: number,
  width: number,
): ClassMeanMaps {
  const fn = 'classMeanMaps';
  assertPositiveInt(fn, 'height', height);
  assertPositiveInt(fn, 'width', width);
  if (!(maps instanceof Float32Array) && !(maps instanceof Float64Array)) {
    throw new TypeError(`${fn}: maps must be a Float32Array of N*height*width values, got ${describe(maps)}`);
  }
  const plane = height * width;
  if (maps.length % plane !== 0) {
    throw new RangeError(`${fn}: maps has ${maps.length} values, not a multiple of height*width = ${height}*${width} = ${plane}`);
  }
  const n = maps.length / plane;
  const isArrayLike = Array.isArray(predicted) || (ArrayBuffer.isView(predicted) && !(predicted instanceof DataView));
  if (!isArrayLike) throw new TypeError(`${fn}: predicted must be a Uint8Array of N labels, got ${describe(predicted)}`);
  if (predicted.length !== n) {
    throw new RangeError(`${fn}: predicted has ${predicted.length} labels but maps holds ${n} maps of ${height}x${width}`);
  }
  const sums = [new Float64Array(plane), new Float64Array(plane)];
  const counts = [0, 0];
  for (let i = 0; i < n; i++) {
    const c = predicted[i];
    if (c !== 0 && c !== 1) throw new RangeError(`${fn}: predicted[${i}] must be 0 (FAKE) or 1 (REAL), got ${describe(c)}`);
    const sum = sums[c]!;
    const off = i * plane;
    for (let k = 0; k < plane; k++) {
      const v = maps[off + k]!;
      if (!Number.isFinite(v) || v < 0) {
        throw new RangeError(`${fn}: maps[${off + k}] (map ${i}, row ${Math.floor(k / width)}, col ${k % width}) is ${v}; expected a finite value >= 0`);
      }
      sum[k] += v;
    }
    counts[c]++;
  }
  const mean = (c: 0 | 1): Float32Array => {
    const out = new Float32Array(plane);
    if (counts[c]! > 0) for (let k = 0; k < plane; k++) out[k] = sums[c]![k]! / counts[c]!;
    return out;
  };
  const result = {
    REAL: mean(1),
    FAKE: mean(0),
    counts: { REAL: counts[1]!, FAKE: counts[0]! },
    height,
    width,
  } as ClassMeanMaps;
  Object.defineProperty(result, 'toJSON', {
    value(this: ClassMeanMaps) {
      return classMeansToJSON(this);
    },
    enumerable: false,
  });
  return result;
}

function roundSig(v: number, digits: number): number {
  if (v === 0 || !Number.isFinite(v)) return v === 0 ? 0 : v;
  const r = Number(v.toPrecision(digits));
  return Object.is(r, -0) ? 0 : r;
}

function assertMeans(fn: string, means: unknown): asserts means is Omit<ClassMeanMaps, 'toJSON'> {
  assertObject(fn, 'means', means);
  const m = means as Partial<ClassMeanMaps>;
  assertPositiveInt(fn, 'means.height', m.height);
  assertPositiveInt(fn, 'means.width', m.width);
  for (const k of ['REAL', 'FAKE'] as const) {
    const a: unknown = m[k];
    if (!(a instanceof Float32Array) && !(a instanceof Float64Array)) {
      throw new TypeError(`${fn}: means.${k} must be a Float32Array, got ${describe(a)}`);
    }
    if (a.length !== m.height! * m.width!) {
      throw new RangeError(`${fn}: means.${k} has ${a.length} values but height*width = ${m.height}*${m.width} = ${m.height! * m.width!}`);
    }
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i]!)) throw new RangeError(`${fn}: means.${k}[${i}] is not finite (${a[i]})`);
    }
  }
  assertObject(fn, 'means.counts', m.counts);
  for (const k of ['REAL', 'FAKE'] as const) {
    const c = m.counts![k];
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) {
      throw new RangeError(`${fn}: means.counts.${k} must be a non-negative integer, got ${describe(c)}`);
    }
  }
}

/** JSON-friendly copy: rows of values rounded to `digits` significant digits. */
export function classMeansToJSON(means: Omit<ClassMeanMaps, 'toJSON'>, digits = 4): ClassMeansJSON {
  const fn = 'classMeansToJSON';
  assertMeans(fn, means);
  assertPositiveInt(fn, 'digits', digits, 17);
  const rows = (a: Float32Array): number[][] => {
    const out: number[][] = [];
    for (let y = 0; y < means.height; y++) {
      const row: number[] = [];
      for (let x = 0; x < means.width; x++) row.push(roundSig(a[y * means.width + x]!, digits));
      out.push(row);
    }
    return out;
  };
  return {
    height: means.height,
    width: means.width,
    counts: { REAL: means.counts.REAL, FAKE: means.counts.FAKE },
    REAL: rows(means.REAL),
    FAKE: rows(means.FAKE),
  };
}

// ---------------------------------------------------------------------------
// Rendering

export interface ClassMeansRenderOptions {
  colormap?: ColormapName;
  /** Display size of the longer side of each panel. Default 256. */
  panelSize?: number;
  /** Figure title; default 'Mean Grad-CAM by predicted class'. '' for none. */
  title?: string;
  textRenderer?: TextRendererChoice;
}

export interface ClassMeansLayout {
  width: number;
  height: number;
  title?: Rect;
  panels: { REAL: Rect; FAKE: Rect };
  panelTitles: { REAL: Rect; FAKE: Rect };
  colorBar: Rect;
  labels: { max: Rect; min: Rect };
}

export const CLASS_MEANS_MARGIN = 16;
export const CLASS_MEANS_GAP = 16;
export const COLOR_BAR_WIDTH = 16;
export const COLOR_BAR_LABEL_WIDTH = 110;
const TITLE_FONT_SIZE = 17;
const TITLE_LINE_HEIGHT = 28;
const LABEL_FONT_SIZE = 13;
const LABEL_LINE_HEIGHT = 20;
const EMPTY_PANEL = '#dddddd';
const DEFAULT_TITLE = 'Mean Grad-CAM by predicted class';

/** Geometry of the figure renderClassMeans draws. */
export function classMeansLayout(height: number, width: number, options: ClassMeansRenderOptions = {}): ClassMeansLayout {
  const fn = 'classMeansLayout';
  assertPositiveInt(fn, 'height', height);
  assertPositiveInt(fn, 'width', width);
  assertObject(fn, 'options', options);
  const size = options.panelSize ?? 256;
  assertPositiveInt(fn, 'panelSize', size, 4096);
  const title = options.title ?? DEFAULT_TITLE;
  if (typeof title !== 'string') throw new TypeError(`${fn}: title must be a string, got ${describe(title)}`);
  const pw = width >= height ? size : Math.max(1, Math.round((size * width) / height));
  const ph = height >= width ? size : Math.max(1, Math.round((size * height) / width));
  const M = CLASS_MEANS_MARGIN;
  let y = M;
  let titleRect: Rect | undefined;
  const fullWidth = 2 * M + 2 * pw + CLASS_MEANS_GAP + CLASS_MEANS_GAP + COLOR_BAR_WIDTH + 6 + COLOR_BAR_LABEL_WIDTH;
  if (title !== '') {
    titleRect = { x: M, y, width: fullWidth - 2 * M, height: TITLE_LINE_HEIGHT };
    y += TITLE_LINE_HEIGHT + 4;
  }
  const panelTitles = {
    REAL: { x: M, y, width: pw, height: LABEL_LINE_HEIGHT },
    FAKE: { x: M + pw + CLASS_MEANS_GAP, y, width: pw, height: LABEL_LINE_HEIGHT },
  };
  y += LABEL_LINE_HEIGHT + 4;
  const panels = {
    REAL: { x: M, y, width: pw, height: ph },
    FAKE: { x: M + pw + CLASS_MEANS_GAP, y, width: pw, height: ph },
  };
  const colorBar = { x: M + 2 * pw + 2 * CLASS_MEANS_GAP, y, width: COLOR_BAR_WIDTH, height: ph };
  const lx = colorBar.x + COLOR_BAR_WIDTH + 6;
  const labels = {
    max: { x: lx, y, width: COLOR_BAR_LABEL_WIDTH, height: LABEL_LINE_HEIGHT },
    min: { x: lx, y: y + ph - LABEL_LINE_HEIGHT, width: COLOR_BAR_LABEL_WIDTH, height: LABEL_LINE_HEIGHT },
  };
  const layout: ClassMeansLayout = { width: fullWidth, height: y + ph + M, panels, panelTitles, colorBar, labels };
  if (titleRect) layout.title = titleRect;
  return layout;
}

/** Compact number for colour-bar labels. */
export function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e4) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

/**
 * The REAL and FAKE mean maps side by side on one shared colour scale
 * (min..max over both non-empty means), with a vertical colour bar labelled
 * with that min and max. A class with no images is drawn as a grey panel.
 */
export async function renderClassMeans(means: Omit<ClassMeanMaps, 'toJSON'>, options: ClassMeansRenderOptions = {}): Promise<Buffer> {
  const fn = 'renderClassMeans';
  assertMeans(fn, means);
  assertObject(fn, 'options', options);
  const colormap = options.colormap ?? DEFAULT_COLORMAP;
  assertColormapName(fn, colormap);
  const layout = classMeansLayout(means.height, means.width, options);
  const renderer = await resolveTextRenderer(fn, options.textRenderer);
  const classes = (['REAL', 'FAKE'] as const).filter((k) => means.counts[k] > 0);
  let vmin = Infinity;
  let vmax = -Infinity;
  for (const k of classes) {
    for (const v of means[k]) {
      if (v < vmin) vmin = v;
      if (v > vmax) vmax = v;
    }
  }
  if (classes.length === 0) {
    vmin = 0;
    vmax = 0;
  }
  const span = vmax - vmin;
  const layers: sharp.OverlayOptions[] = [];
  const label = (rect: Rect, text: string, fontSize: number, lineHeight: number, bold = false): void => {
    layers.push(textOverlay({ ...rect, lines: [[{ text, bold, color: TEXT_COLOR, shrink: true }]], fontSize, lineHeight }, renderer));
  };
  if (layout.title && (options.title ?? DEFAULT_TITLE) !== '') {
    label(layout.title, options.title ?? DEFAULT_TITLE, TITLE_FONT_SIZE, TITLE_LINE_HEIGHT, true);
  }
  for (const k of ['REAL', 'FAKE'] as const) {
    const rect = layout.panels[k];
    label(layout.panelTitles[k], `predicted ${k} (n=${means.counts[k]})`, LABEL_FONT_SIZE, LABEL_LINE_HEIGHT, true);
    if (means.counts[k] === 0) {
      layers.push({ input: { create: { width: rect.width, height: rect.height, channels: 3, background: EMPTY_PANEL } }, left: rect.x, top: rect.y });
      continue;
    }
    const norm = new Float32Array(means[k].length);
    if (span > 0) for (let i = 0; i < norm.length; i++) norm[i] = (means[k][i]! - vmin) / span;
    const up = resizeBilinear(norm, means.width, means.height, rect.width, rect.height);
    layers.push(rawLayer(applyColormap(up, colormap), rect));
  }
  // Colour bar: top = max, bottom = min.
  const bar = layout.colorBar;
  const column = new Float32Array(bar.height);
  for (let r = 0; r < bar.height; r++) column[r] = bar.height === 1 ? 1 : 1 - r / (bar.height - 1);
  const colRGB = applyColormap(column, colormap);
  const barRGB = new Uint8Array(bar.width * bar.height * 3);
  for (let r = 0; r < bar.height; r++) {
    for (let c = 0; c < bar.width; c++) barRGB.set(colRGB.subarray(3 * r, 3 * r + 3), 3 * (r * bar.width + c));
  }
  layers.push(rawLayer(barRGB, bar));
  layers.push(...frameLayers({ x: bar.x - 1, y: bar.y - 1, width: bar.width + 2, height: bar.height + 2 }, 1, '#444444'));
  label(layout.labels.max, `max ${formatValue(vmax)}`, LABEL_FONT_SIZE, LABEL_LINE_HEIGHT);
  label(layout.labels.min, `min ${formatValue(vmin)}`, LABEL_FONT_SIZE, LABEL_LINE_HEIGHT);
  return composePNG(layout.width, layout.height, layers);
}

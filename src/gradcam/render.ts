/**
 * Grad-CAM overlays and triptychs (original | heatmap | overlay + caption).
 *
 * Pixel pipeline for one sample:
 *  - image: CHW uint8 -> HWC -> sharp nearest-neighbour upscale by `scale`
 *    (32x32 -> 256x256 at the default scale 8, so single pixels stay visible);
 *  - map: normalised (map / max, or against a shared `vmax`) -> bilinearly
 *    resampled to the display size with align_corners=False semantics
 *    (resample.ts) -> colormap lookup;
 *  - overlay: sharp composite of the heatmap over the image with opacity
 *    `alpha` (alpha 0 gives the upscaled image, alpha 1 the heatmap,
 *    byte-exactly);
 *  - everything is composited onto a white canvas and encoded by sharp.
 */
import sharp from 'sharp';
import { MAX_IMAGE_SIDE, MAX_MAP_SIDE, ITEM_PADDING, PANEL_GAP, CAPTION_GAP, CAPTION_FONT_SIZE, CAPTION_LINE_HEIGHT, FRAME_WIDTH, WRONG_COLOR, TEXT_COLOR, BACKGROUND, MAX_SCALE, itemLayout, offsetItemLayout, type Rect, type GradcamSample, type RenderStyle, type OverlayOptions, type TriptychOptions, type ItemMode, type ItemLayoutOptions, type ItemLayout } from './layout';
export { ITEM_PADDING, PANEL_GAP, CAPTION_GAP, CAPTION_FONT_SIZE, CAPTION_LINE_HEIGHT, FRAME_WIDTH, WRONG_COLOR, TEXT_COLOR, BACKGROUND, MAX_SCALE, itemLayout, offsetItemLayout } from './layout';
export type { Rect, GradcamSample, RenderStyle, OverlayOptions, TriptychOptions, ItemMode, ItemLayoutOptions, ItemLayout } from './layout';
import { applyColormap, assertColormapName, ColormapName, DEFAULT_COLORMAP } from './colormap';
import { chwToHwc, mapMax, resizeBilinear, scaleMap } from './resample';
import { resolveTextRenderer, textOverlay, TextLine, TextRendererChoice, TextRendererInfo } from './text';
import {
  assertImage,
  assertLabel,
  assertMap,
  assertNonNegativeFinite,
  assertObject,
  assertPositiveFinite,
  assertPositiveInt,
  assertUnitInterval,
  describe,
  Label,
  labelName,
} from './validate';

// ---------------------------------------------------------------------------
// Validation

interface ResolvedStyle {
  colormap: ColormapName;
  alpha: number;
  scale: number;
  vmax: number | undefined;
  textRenderer: TextRendererChoice | undefined;
}

export function resolveStyle(fn: string, style: RenderStyle): ResolvedStyle {
  const colormap = style.colormap ?? DEFAULT_COLORMAP;
  assertColormapName(fn, colormap);
  const alpha = style.alpha ?? 0.5;
  assertUnitInterval(fn, 'alpha', alpha);
  const scale = style.scale ?? 8;
  assertPositiveInt(fn, 'scale', scale, MAX_SCALE);
  if (style.vmax !== undefined) assertPositiveFinite(fn, 'vmax', style.vmax);
  const tr = style.textRenderer;
  if (tr !== undefined && tr !== 'auto' && tr !== 'svg' && tr !== 'bitmap') {
    throw new RangeError(`${fn}: textRenderer must be 'auto', 'svg' or 'bitmap', got ${describe(tr)}`);
  }
  return { colormap, alpha, scale, vmax: style.vmax, textRenderer: tr };
}

interface ResolvedSample {
  image: Uint8Array;
  map: Float32Array | Float64Array;
  width: number;
  height: number;
  imageWidth: number;
  imageHeight: number;
  rawMax: number | undefined;
  normalized: boolean;
  fileName: string;
  pReal: number;
  predicted: Label;
  label: Label | null;
}

/** Validate one sample; `what` names it in messages (e.g. 'items[3]'). */
export function resolveSample(fn: string, sample: GradcamSample, what = 'sample'): ResolvedSample {
  assertObject(fn, what, sample);
  const p = (field: string): string => (what === 'sample' ? field : `${what}.${field}`);
  const imageWidth = sample.imageWidth ?? 32;
  const imageHeight = sample.imageHeight ?? 32;
  assertPositiveInt(fn, p('imageWidth'), imageWidth, MAX_IMAGE_SIDE);
  assertPositiveInt(fn, p('imageHeight'), imageHeight, MAX_IMAGE_SIDE);
  assertPositiveInt(fn, p('width'), sample.width, MAX_MAP_SIDE);
  assertPositiveInt(fn, p('height'), sample.height, MAX_MAP_SIDE);
  try {
    assertImage(fn, sample.image, imageWidth, imageHeight);
  } catch (e) {
    throw relabel(e, `${fn}: image`, `${fn}: ${p('image')}`);
  }
  assertMap(fn, p('map'), sample.map, sample.width, sample.height);
  if (sample.rawMax !== undefined) assertNonNegativeFinite(fn, p('rawMax'), sample.rawMax);
  const normalized = sample.normalized ?? false;
  if (typeof normalized !== 'boolean') throw new TypeError(`${fn}: ${p('normalized')} must be a boolean, got ${describe(normalized)}`);
  if (normalized && sample.rawMax === undefined) {
    throw new RangeError(`${fn}: ${p('normalized')} is true but ${p('rawMax')} is missing; it is needed to recover raw values`);
  }
  assertUnitInterval(fn, p('pReal'), sample.pReal);
  const predicted: Label = sample.predicted ?? (sample.pReal >= 0.5 ? 1 : 0);
  assertLabel(fn, p('predicted'), predicted);
  const label = sample.label ?? null;
  if (label !== null) assertLabel(fn, p('label'), label);
  if (sample.fileName !== undefined && typeof sample.fileName !== 'string') {
    throw new TypeError(`${fn}: ${p('fileName')} must be a string, got ${describe(sample.fileName)}`);
  }
  return {
    image: sample.image,
    map: sample.map,
    width: sample.width,
    height: sample.height,
    imageWidth,
    imageHeight,
    rawMax: sample.rawMax,
    normalized,
    fileName: sample.fileName ?? '(unnamed)',
    pReal: sample.pReal,
    predicted,
    label,
  };
}

function relabel(e: unknown, from: string, to: string): unknown {
  if (e instanceof Error && e.message.startsWith(from)) e.message = to + e.message.slice(from.length);
  return e;
}

// ---------------------------------------------------------------------------
// Pixel helpers

function asBuffer(a: Uint8Array): Buffer {
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** How a map's values relate to raw Grad-CAM values. */
export interface MapScale {
  /** The map was divided by its maximum; raw = map * rawMax. */
  normalized?: boolean;
  rawMax?: number;
}

/** Largest raw value the map shows: max(map), times rawMax for a normalised map. */
export function samplePeak(map: ArrayLike<number>, scale: MapScale = {}): number {
  const m = mapMax(map);
  return scale.normalized ? m * (scale.rawMax ?? 1) : m;
}

/**
 * Values in [0, 1] at map resolution: map / max(map) by default; with
 * `vmax`, raw values (map, or map * rawMax for a normalised map) / vmax,
 * clipped at 1.
 */
export function normalizedValues(map: Float32Array | Float64Array, scale: MapScale = {}, vmax?: number): Float32Array {
  if (vmax === undefined) return scaleMap(map, mapMax(map));
  if (!scale.normalized) return scaleMap(map, vmax);
  const rawMax = scale.rawMax ?? 1;
  if (rawMax === 0) return new Float32Array(map.length);
  return scaleMap(map, vmax / rawMax);
}

/** Colormapped heatmap at display size, interleaved RGB. */
export function heatmapRGB(
  map: Float32Array | Float64Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  colormap: ColormapName,
  scale: MapScale = {},
  vmax?: number,
): Uint8Array {
  const values = normalizedValues(map, scale, vmax);
  const up = width === outWidth && height === outHeight ? values : resizeBilinear(values, width, height, outWidth, outHeight);
  return applyColormap(up, colormap);
}

/** Nearest-neighbour upscale of a CHW image by an integer factor (sharp), RGB. */
export async function upscaleImage(image: Uint8Array, imageWidth: number, imageHeight: number, scale: number): Promise<Buffer> {
  const hwc = chwToHwc(image, imageWidth, imageHeight);
  const { data, info } = await sharp(hwc, { raw: { width: imageWidth, height: imageHeight, channels: 3 } })
    .resize(imageWidth * scale, imageHeight * scale, { kernel: 'nearest', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return info.channels === 3 ? data : dropAlpha(data, info.width * info.height, info.channels);
}

function dropAlpha(data: Buffer, pixels: number, channels: number): Buffer {
  const out = Buffer.allocUnsafe(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    out[3 * p] = data[p * channels]!;
    out[3 * p + 1] = data[p * channels + 1]!;
    out[3 * p + 2] = data[p * channels + 2]!;
  }
  return out;
}

/** Heatmap over image at opacity alpha, composited by sharp; RGB out. */
export async function blendOverlay(base: Uint8Array, heat: Uint8Array, width: number, height: number, alpha: number): Promise<Buffer> {
  const pixels = width * height;
  const a = Math.round(alpha * 255);
  const rgba = Buffer.allocUnsafe(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    rgba[4 * p] = heat[3 * p]!;
    rgba[4 * p + 1] = heat[3 * p + 1]!;
    rgba[4 * p + 2] = heat[3 * p + 2]!;
    rgba[4 * p + 3] = a;
  }
  const { data, info } = await sharp(asBuffer(base), { raw: { width, height, channels: 3 } })
    .composite([{ input: rgba, raw: { width, height, channels: 4 }, left: 0, top: 0 }])
    .raw()
    .toBuffer({ resolveWithObject: true });
  return info.channels === 3 ? data : dropAlpha(data, pixels, info.channels);
}

/** Composite layers onto a background canvas and encode an RGB PNG. */
export async function composePNG(width: number, height: number, layers: sharp.OverlayOptions[], background = BACKGROUND): Promise<Buffer> {
  const { data, info } = await sharp({ create: { width, height, channels: 3, background } })
    .composite(layers)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rgb = info.channels === 3 ? data : dropAlpha(data, width * height, info.channels);
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export function rawLayer(rgb: Uint8Array, rect: Rect): sharp.OverlayOptions {
  return { input: asBuffer(rgb), raw: { width: rect.width, height: rect.height, channels: 3 }, left: rect.x, top: rect.y };
}

/** Solid-colour rectangle outline (inside rect) as composite layers. */
export function frameLayers(rect: Rect, thickness: number, color: string): sharp.OverlayOptions[] {
  const bg = color;
  const t = Math.min(thickness, Math.floor(rect.width / 2), Math.floor(rect.height / 2));
  if (t < 1) return [];
  const solid = (x: number, y: number, w: number, h: number): sharp.OverlayOptions => ({
    input: { create: { width: w, height: h, channels: 3, background: bg } },
    left: x,
    top: y,
  });
  return [
    solid(rect.x, rect.y, rect.width, t),
    solid(rect.x, rect.y + rect.height - t, rect.width, t),
    solid(rect.x, rect.y + t, t, rect.height - 2 * t),
    solid(rect.x + rect.width - t, rect.y + t, t, rect.height - 2 * t),
  ];
}

// ---------------------------------------------------------------------------
// Captions

export function isWrong(sample: { predicted: Label; label: Label | null }): boolean {
  return sample.label !== null && sample.label !== sample.predicted;
}

/**
 * Caption lines for a sample: file name, P(REAL)=0.973, predicted REAL /
 * true FAKE, and a red WRONG marker when the prediction is wrong. The file
 * name is what gets shortened when space runs out.
 */
export function captionLines(sample: ResolvedSample, lines: number): TextLine[] {
  const prob = `P(REAL)=${sample.pReal.toFixed(3)}`;
  const truth = sample.label !== null ? ` / true ${labelName(sample.label)}` : '';
  const wrong = isWrong(sample);
  const mark = wrong ? [{ text: '  WRONG', color: WRONG_COLOR, bold: true }] : [];
  const name = { text: sample.fileName, shrink: true, color: TEXT_COLOR };
  if (lines <= 1) {
    return [[name, { text: `  ${prob}  predicted ${labelName(sample.predicted)}${truth}`, color: TEXT_COLOR }, ...mark]];
  }
  if (lines === 2) {
    return [[name, ...mark], [{ text: `${prob}  predicted ${labelName(sample.predicted)}${truth}`, color: TEXT_COLOR }]];
  }
  return [[name, ...mark], [{ text: prob, color: TEXT_COLOR }], [{ text: `pred ${labelName(sample.predicted)}${truth}`, color: TEXT_COLOR }]];
}

// ---------------------------------------------------------------------------
// Items

/**
 * Composite layers drawing one sample (triptych or overlay + caption) with
 * its top-left corner at (dx, dy). `sample` and `style` must be resolved.
 */
export async function itemLayers(
  sample: ResolvedSample,
  style: ResolvedStyle,
  mode: ItemMode,
  dx: number,
  dy: number,
  renderer: TextRendererInfo,
): Promise<sharp.OverlayOptions[]> {
  const layout = offsetItemLayout(
    itemLayout({ imageWidth: sample.imageWidth, imageHeight: sample.imageHeight, scale: style.scale, mode }),
    dx,
    dy,
  );
  const pw = layout.panelWidth;
  const ph = layout.panelHeight;
  const base = await upscaleImage(sample.image, sample.imageWidth, sample.imageHeight, style.scale);
  const heat = heatmapRGB(sample.map, sample.width, sample.height, pw, ph, style.colormap, sample, style.vmax);
  const overlay = await blendOverlay(base, heat, pw, ph, style.alpha);
  const layers: sharp.OverlayOptions[] = [];
  if (layout.panels.original) layers.push(rawLayer(base, layout.panels.original));
  if (layout.panels.heatmap) layers.push(rawLayer(heat, layout.panels.heatmap));
  layers.push(rawLayer(overlay, layout.panels.overlay));
  layers.push(
    textOverlay(
      {
        ...layout.caption,
        lines: captionLines(sample, layout.captionLines),
        fontSize: CAPTION_FONT_SIZE,
        lineHeight: CAPTION_LINE_HEIGHT,
      },
      renderer,
    ),
  );
  if (isWrong(sample)) layers.push(...frameLayers({ x: dx, y: dy, width: layout.width, height: layout.height }, FRAME_WIDTH, WRONG_COLOR));
  return layers;
}

// ---------------------------------------------------------------------------
// Public renderers

/**
 * The heatmap blended over the nearest-upscaled image, as a PNG of
 * (imageWidth*scale) x (imageHeight*scale) pixels, or taller by the caption
 * area (CAPTION_GAP + lines * CAPTION_LINE_HEIGHT) when `caption` is given.
 */
export async function renderOverlay(options: OverlayOptions): Promise<Buffer> {
  const fn = 'renderOverlay';
  assertObject(fn, 'options', options);
  const style = resolveStyle(fn, options);
  const sample = resolveSample(fn, { ...options, pReal: 0.5 });
  let captionText: string[] = [];
  if (options.caption !== undefined) {
    const c = options.caption;
    if (typeof c === 'string') captionText = [c];
    else if (Array.isArray(c) && c.every((l) => typeof l === 'string')) captionText = c;
    else throw new TypeError(`${fn}: caption must be a string or an array of strings, got ${describe(c)}`);
  }
  const pw = sample.imageWidth * style.scale;
  const ph = sample.imageHeight * style.scale;
  const base = await upscaleImage(sample.image, sample.imageWidth, sample.imageHeight, style.scale);
  const heat = heatmapRGB(sample.map, sample.width, sample.height, pw, ph, style.colormap, sample, style.vmax);
  const overlay = await blendOverlay(base, heat, pw, ph, style.alpha);
  if (captionText.length === 0) {
    return sharp(overlay, { raw: { width: pw, height: ph, channels: 3 } }).png().toBuffer();
  }
  const renderer = await resolveTextRenderer(fn, style.textRenderer);
  const height = ph + CAPTION_GAP + captionText.length * CAPTION_LINE_HEIGHT;
  return composePNG(pw, height, [
    rawLayer(overlay, { x: 0, y: 0, width: pw, height: ph }),
    textOverlay(
      {
        x: 0,
        y: ph + CAPTION_GAP,
        width: pw,
        height: captionText.length * CAPTION_LINE_HEIGHT,
        lines: captionText.map((t) => [{ text: t, shrink: true, color: TEXT_COLOR }]),
        fontSize: CAPTION_FONT_SIZE,
        lineHeight: CAPTION_LINE_HEIGHT,
      },
      renderer,
    ),
  ]);
}

/**
 * original | heatmap | overlay side by side with a caption below (file
 * name, P(REAL), predicted / true label, red WRONG marker and red frame when
 * misclassified). Size: itemLayout({ mode: 'triptych', ... }).
 */
export async function renderTriptych(options: TriptychOptions): Promise<Buffer> {
  const fn = 'renderTriptych';
  assertObject(fn, 'options', options);
  const style = resolveStyle(fn, options);
  const sample = resolveSample(fn, options);
  const renderer = await resolveTextRenderer(fn, style.textRenderer);
  const layout = itemLayout({ imageWidth: sample.imageWidth, imageHeight: sample.imageHeight, scale: style.scale, mode: 'triptych' });
  const layers = await itemLayers(sample, style, 'triptych', 0, 0, renderer);
  return composePNG(layout.width, layout.height, layers);
}

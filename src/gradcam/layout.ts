// The geometry of a rendered Grad-CAM item (the sample and style types, sizes, the caption
// band, panel rectangles) and the drawing constants shared by triptychs, overlays and galleries.
import type { ColormapName } from './colormap';
import type { TextRendererChoice } from './text';
import { assertObject, assertPositiveInt, describe, type Label } from './validate';

// ---------------------------------------------------------------------------
// Public types

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** What the native side hands over for one image. */
export interface GradcamSample {
  /** 3*imageHeight*imageWidth uint8, CHW planar (all R, then G, then B). */
  image: Uint8Array;
  /**
   * height*width non-negative Grad-CAM values, row-major: raw values as the
   * native `maps` output gives them, or already divided by their maximum
   * (then set `normalized: true` and give `rawMax`).
   */
  map: Float32Array | Float64Array;
  /** Map width (32 when upsampled natively; raw layer sizes such as 16 or 13 are fine). */
  width: number;
  /** Map height. */
  height: number;
  /** Image width in pixels (default 32). */
  imageWidth?: number;
  /** Image height in pixels (default 32). */
  imageHeight?: number;
  /**
   * Raw maximum before normalisation (native `rawMax`). Needed with
   * `normalized: true` to recover raw values for shared colour scales;
   * informational otherwise.
   */
  rawMax?: number;
  /** `map` was already divided by its maximum (default false: raw values). */
  normalized?: boolean;
  fileName?: string;
  /** Model probability of REAL (label 1). */
  pReal: number;
  /** Predicted label; default pReal >= 0.5 ? REAL : FAKE. */
  predicted?: Label;
  /** True label, when known. */
  label?: Label | null;
}

export interface RenderStyle {
  /** Default 'viridis'. */
  colormap?: ColormapName;
  /** Heatmap opacity in the overlay, in [0, 1]. Default 0.5. */
  alpha?: number;
  /** Integer display scale: image pixels become scale x scale blocks. Default 8. */
  scale?: number;
  /**
   * Raw Grad-CAM value drawn at the top of the colour scale (values above
   * saturate). Default: each map's own maximum (per-image normalisation).
   */
  vmax?: number;
  /** Caption text renderer; default 'auto' (SVG if a font is found, else bitmap). */
  textRenderer?: TextRendererChoice;
}

/** The image and its map, as for a triptych, without the caption data. */
export interface OverlayOptions extends RenderStyle, Omit<GradcamSample, 'fileName' | 'pReal' | 'predicted' | 'label'> {
  /** Optional caption below the overlay, one string per line. */
  caption?: string | string[];
}

export type TriptychOptions = GradcamSample & RenderStyle;

export type ItemMode = 'triptych' | 'overlay';

export interface ItemLayoutOptions {
  imageWidth?: number;
  imageHeight?: number;
  scale?: number;
  mode?: ItemMode;
}

export interface ItemLayout {
  mode: ItemMode;
  /** Top-left corner of the item (0, 0 unless offset into a sheet). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Display size of each panel (image size times scale). */
  panelWidth: number;
  panelHeight: number;
  panels: { original?: Rect; heatmap?: Rect; overlay: Rect };
  caption: Rect;
  captionLines: number;
}

// ---------------------------------------------------------------------------
// Layout constants

export const ITEM_PADDING = 6;
export const PANEL_GAP = 8;
export const CAPTION_GAP = 4;
export const CAPTION_FONT_SIZE = 13;
export const CAPTION_LINE_HEIGHT = 19;
export const FRAME_WIDTH = 3;
export const WRONG_COLOR = '#cc0000';
export const TEXT_COLOR = '#111111';
export const BACKGROUND = '#ffffff';
export const MAX_SCALE = 64;
export const MAX_IMAGE_SIDE = 4096;
export const MAX_MAP_SIDE = 4096;

function captionLinesFor(contentWidth: number): number {
  return contentWidth >= 600 ? 1 : contentWidth >= 400 ? 2 : 3;
}

/** Geometry of one triptych (or single overlay) with its caption. */
export function itemLayout(options: ItemLayoutOptions = {}): ItemLayout {
  const fn = 'itemLayout';
  assertObject(fn, 'options', options);
  const iw = options.imageWidth ?? 32;
  const ih = options.imageHeight ?? 32;
  const scale = options.scale ?? 8;
  const mode = options.mode ?? 'triptych';
  assertPositiveInt(fn, 'imageWidth', iw, MAX_IMAGE_SIDE);
  assertPositiveInt(fn, 'imageHeight', ih, MAX_IMAGE_SIDE);
  assertPositiveInt(fn, 'scale', scale, MAX_SCALE);
  if (mode !== 'triptych' && mode !== 'overlay') {
    throw new RangeError(`${fn}: mode must be 'triptych' or 'overlay', got ${describe(mode)}`);
  }
  const pw = iw * scale;
  const ph = ih * scale;
  const nPanels = mode === 'triptych' ? 3 : 1;
  const contentWidth = nPanels * pw + (nPanels - 1) * PANEL_GAP;
  const captionLines = captionLinesFor(contentWidth);
  const panelAt = (i: number): Rect => ({ x: ITEM_PADDING + i * (pw + PANEL_GAP), y: ITEM_PADDING, width: pw, height: ph });
  const panels = mode === 'triptych' ? { original: panelAt(0), heatmap: panelAt(1), overlay: panelAt(2) } : { overlay: panelAt(0) };
  const caption: Rect = {
    x: ITEM_PADDING,
    y: ITEM_PADDING + ph + CAPTION_GAP,
    width: contentWidth,
    height: captionLines * CAPTION_LINE_HEIGHT,
  };
  return {
    mode,
    x: 0,
    y: 0,
    width: contentWidth + 2 * ITEM_PADDING,
    height: caption.y + caption.height + ITEM_PADDING,
    panelWidth: pw,
    panelHeight: ph,
    panels,
    caption,
    captionLines,
  };
}

/** Translate every rect of a layout by (dx, dy). */
export function offsetItemLayout(layout: ItemLayout, dx: number, dy: number): ItemLayout {
  const mv = (r: Rect): Rect => ({ ...r, x: r.x + dx, y: r.y + dy });
  return {
    ...layout,
    x: layout.x + dx,
    y: layout.y + dy,
    panels: {
      ...(layout.panels.original ? { original: mv(layout.panels.original) } : {}),
      ...(layout.panels.heatmap ? { heatmap: mv(layout.panels.heatmap) } : {}),
      overlay: mv(layout.panels.overlay),
    },
    caption: mv(layout.caption),
  };
}

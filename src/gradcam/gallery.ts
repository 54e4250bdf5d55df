/**
 * Contact sheets of Grad-CAM triptychs (or overlays) grouped into titled
 * sections, and the selection of which test images to show.
 */
import sharp from 'sharp';
import {
  BACKGROUND,
  composePNG,
  GradcamSample,
  ItemLayout,
  itemLayers,
  itemLayout,
  ItemMode,
  offsetItemLayout,
  Rect,
  RenderStyle,
  resolveSample,
  MAX_SCALE,
  resolveStyle,
  samplePeak,
  TEXT_COLOR,
} from './render';
import { resolveTextRenderer, textOverlay } from './text';
import { assertLabel, assertNonNegativeInt, assertObject, assertPositiveInt, assertUnitInterval, describe, Label } from './validate';

// ---------------------------------------------------------------------------
// Selection

export type GalleryGroup = 'most confident REAL' | 'most confident FAKE' | 'misclassified';
export const GALLERY_GROUPS: readonly GalleryGroup[] = ['most confident REAL', 'most confident FAKE', 'misclassified'];

export interface GallerySelection {
  /** Index into the probs / labels arrays. */
  index: number;
  group: GalleryGroup;
  pReal: number;
  predicted: Label;
  /** True label, or null when no labels were given. */
  label: Label | null;
  /** Probability of the predicted class: max(pReal, 1 - pReal) at threshold 0.5. */
  confidence: number;
}

export interface SelectOptions {
  /** pReal >= threshold is predicted REAL. Default 0.5. */
  threshold?: number;
}

function assertNumberArray(fn: string, what: string, a: unknown): asserts a is ArrayLike<number> {
  const ok = Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView));
  if (!ok) throw new TypeError(`${fn}: ${what} must be an array or typed array of numbers, got ${describe(a)}`);
}

/**
 * Pick what a gallery shows: the n most confident correct REAL predictions
 * (highest pReal first), the n most confident correct FAKE predictions
 * (lowest pReal first) and up to n misclassified images, most confidently
 * wrong first. Without labels (null) the first two groups are by prediction
 * only and there is no misclassified group. Ties keep index order; the
 * groups are disjoint. Returned in group order.
 */
export function selectGalleryItems(
  probs: ArrayLike<number>,
  labels: ArrayLike<number> | null | undefined,
  n: number,
  options: SelectOptions = {},
): GallerySelection[] {
  const fn = 'selectGalleryItems';
  assertNumberArray(fn, 'probs', probs);
  if (labels !== null && labels !== undefined) {
    assertNumberArray(fn, 'labels', labels);
    if (labels.length !== probs.length) {
      throw new RangeError(`${fn}: labels has ${labels.length} entries but probs has ${probs.length}`);
    }
  }
  assertNonNegativeInt(fn, 'n', n);
  assertObject(fn, 'options', options);
  const threshold = options.threshold ?? 0.5;
  assertUnitInterval(fn, 'threshold', threshold);
  const real: GallerySelection[] = [];
  const fake: GallerySelection[] = [];
  const wrong: GallerySelection[] = [];
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
      throw new RangeError(`${fn}: probs[${i}] must be a probability in [0, 1], got ${describe(p)}`);
    }
    const predicted: Label = p >= threshold ? 1 : 0;
    let label: Label | null = null;
    if (labels !== null && labels !== undefined) {
      const l = labels[i];
      assertLabel(fn, `labels[${i}]`, l);
      label = l;
    }
    const sel: GallerySelection = { index: i, group: 'misclassified', pReal: p, predicted, label, confidence: predicted === 1 ? p : 1 - p };
    if (label !== null && label !== predicted) wrong.push(sel);
    else if (predicted === 1) real.push({ ...sel, group: 'most confident REAL' });
    else fake.push({ ...sel, group: 'most confident FAKE' });
  }
  const byConfidence = (a: GallerySelection, b: GallerySelection): number => b.confidence - a.confidence || a.index - b.index;
  real.sort((a, b) => b.pReal - a.pReal || a.index - b.index);
  fake.sort((a, b) => a.pReal - b.pReal || a.index - b.index);
  wrong.sort(byConfidence);
  return [...real.slice(0, n), ...fake.slice(0, n), ...wrong.slice(0, n)];
}

// ---------------------------------------------------------------------------
// Layout

export interface GalleryItem extends GradcamSample {
  /** Section the item goes in; sections appear in order of first use. */
  group?: string;
}

export interface GalleryOptions extends RenderStyle {
  /** Items per row (default 2 for triptychs, 6 for overlays). */
  columns?: number;
  title?: string;
  /** 'triptych' (default) or 'overlay'. */
  mode?: ItemMode;
  /**
   * 'per-image' (default): each heatmap spans the full colour scale.
   * 'shared': one scale for the whole sheet, topped by the largest raw
   * value shown (max(map), or max(map) * rawMax for normalised maps), so
   * intensities compare across images.
   * An explicit `vmax` overrides both.
   */
  normalize?: 'per-image' | 'shared';
}

export interface GallerySection {
  title: string;
  /** Where the section title is drawn (absent for an untitled section). */
  titleRect?: Rect;
  /** Indices into items, in drawing order. */
  indices: number[];
}

export interface GalleryLayout {
  width: number;
  height: number;
  columns: number;
  title?: Rect;
  sections: GallerySection[];
  /** Absolute layout of each item, aligned with the items array. */
  cells: ItemLayout[];
}

export const GALLERY_MARGIN = 16;
export const GALLERY_TITLE_FONT_SIZE = 18;
export const GALLERY_TITLE_LINE_HEIGHT = 28;
export const SECTION_FONT_SIZE = 15;
export const SECTION_LINE_HEIGHT = 24;
export const CELL_GAP = 10;
export const SECTION_GAP = 14;
const MAX_COLUMNS = 64;

function galleryGeometry(fn: string, items: readonly GalleryItem[], options: GalleryOptions) {
  if (!Array.isArray(items)) throw new TypeError(`${fn}: items must be an array, got ${describe(items)}`);
  if (items.length === 0) throw new RangeError(`${fn}: items is empty; nothing to draw`);
  assertObject(fn, 'options', options);
  const mode = options.mode ?? 'triptych';
  if (mode !== 'triptych' && mode !== 'overlay') throw new RangeError(`${fn}: mode must be 'triptych' or 'overlay', got ${describe(mode)}`);
  const columns = options.columns ?? (mode === 'triptych' ? 2 : 6);
  assertPositiveInt(fn, 'columns', columns, MAX_COLUMNS);
  if (options.title !== undefined && typeof options.title !== 'string') {
    throw new TypeError(`${fn}: title must be a string, got ${describe(options.title)}`);
  }
  if (options.normalize !== undefined && options.normalize !== 'per-image' && options.normalize !== 'shared') {
    throw new RangeError(`${fn}: normalize must be 'per-image' or 'shared', got ${describe(options.normalize)}`);
  }
  const scale = options.scale ?? 8;
  assertPositiveInt(fn, 'scale', scale, MAX_SCALE);
  items.forEach((it, i) => assertObject(fn, `items[${i}]`, it));
  const iw = items[0]!.imageWidth ?? 32;
  const ih = items[0]!.imageHeight ?? 32;
  items.forEach((it, i) => {
    if ((it.imageWidth ?? 32) !== iw || (it.imageHeight ?? 32) !== ih) {
      throw new RangeError(
        `${fn}: items[${i}] is ${it.imageWidth ?? 32}x${it.imageHeight ?? 32} but items[0] is ${iw}x${ih}; all gallery images must share one size`,
      );
    }
    if (it.group !== undefined && typeof it.group !== 'string') {
      throw new TypeError(`${fn}: items[${i}].group must be a string, got ${describe(it.group)}`);
    }
  });
  const template = itemLayout({ imageWidth: iw, imageHeight: ih, scale, mode });
  // Sections in order of first appearance.
  const order: string[] = [];
  const members = new Map<string, number[]>();
  items.forEach((it, i) => {
    const g = it.group ?? '';
    if (!members.has(g)) {
      members.set(g, []);
      order.push(g);
    }
    members.get(g)!.push(i);
  });
  const maxCount = Math.max(...order.map((g) => members.get(g)!.length));
  const cols = Math.min(columns, maxCount);
  const width = 2 * GALLERY_MARGIN + cols * template.width + (cols - 1) * CELL_GAP;
  const innerWidth = width - 2 * GALLERY_MARGIN;
  let y = GALLERY_MARGIN;
  let title: Rect | undefined;
  if (options.title) {
    title = { x: GALLERY_MARGIN, y, width: innerWidth, height: GALLERY_TITLE_LINE_HEIGHT };
    y += GALLERY_TITLE_LINE_HEIGHT + 6;
  }
  const cells: ItemLayout[] = new Array(items.length);
  const sections: GallerySection[] = [];
  order.forEach((g, si) => {
    if (si > 0) y += SECTION_GAP;
    const indices = members.get(g)!;
    const section: GallerySection = { title: g, indices };
    if (g !== '') {
      section.titleRect = { x: GALLERY_MARGIN, y, width: innerWidth, height: SECTION_LINE_HEIGHT };
      y += SECTION_LINE_HEIGHT + 4;
    }
    indices.forEach((itemIndex, k) => {
      const r = Math.floor(k / cols);
      const c = k % cols;
      cells[itemIndex] = offsetItemLayout(template, GALLERY_MARGIN + c * (template.width + CELL_GAP), y + r * (template.height + CELL_GAP));
    });
    const rows = Math.ceil(indices.length / cols);
    y += rows * template.height + (rows - 1) * CELL_GAP;
    sections.push(section);
  });
  const layout: GalleryLayout = { width, height: y + GALLERY_MARGIN, columns: cols, sections, cells };
  if (title) layout.title = title;
  return { layout, mode };
}

/** Geometry of the sheet renderGallery draws for these items and options. */
export function galleryLayout(items: readonly GalleryItem[], options: GalleryOptions = {}): GalleryLayout {
  return galleryGeometry('galleryLayout', items, options).layout;
}

/**
 * One PNG contact sheet: an optional title, then one titled section per
 * group ("<group> (<count>)"), each a grid of triptychs (or overlays) with
 * captions. Misclassified items get a red frame and WRONG marker.
 */
export async function renderGallery(items: readonly GalleryItem[], options: GalleryOptions = {}): Promise<Buffer> {
  const fn = 'renderGallery';
  assertObject(fn, 'options', options);
  const style = resolveStyle(fn, options);
  const { layout, mode } = galleryGeometry(fn, items, options);
  const samples = items.map((it, i) => resolveSample(fn, it, `items[${i}]`));
  if (style.vmax === undefined && options.normalize === 'shared') {
    const top = Math.max(...samples.map((s) => samplePeak(s.map, s)));
    if (top > 0) style.vmax = top;
  }
  const renderer = await resolveTextRenderer(fn, style.textRenderer);
  const layers: sharp.OverlayOptions[] = [];
  if (layout.title && options.title) {
    layers.push(
      textOverlay(
        {
          ...layout.title,
          lines: [[{ text: options.title, bold: true, color: TEXT_COLOR, shrink: true }]],
          fontSize: GALLERY_TITLE_FONT_SIZE,
          lineHeight: GALLERY_TITLE_LINE_HEIGHT,
        },
        renderer,
      ),
    );
  }
  for (const section of layout.sections) {
    if (!section.titleRect) continue;
    layers.push(
      textOverlay(
        {
          ...section.titleRect,
          lines: [[{ text: section.title, bold: true, color: TEXT_COLOR, shrink: true }, { text: `  (${section.indices.length})`, color: '#555555' }]],
          fontSize: SECTION_FONT_SIZE,
          lineHeight: SECTION_LINE_HEIGHT,
        },
        renderer,
      ),
    );
  }
  for (let i = 0; i < samples.length; i++) {
    const cell = layout.cells[i]!;
    layers.push(...(await itemLayers(samples[i]!, style, mode, cell.x, cell.y, renderer)));
  }
  return composePNG(layout.width, layout.height, layers, BACKGROUND);
}

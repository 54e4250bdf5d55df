// Vega-Lite spec -> SVG (vega, headless, no canvas) -> PNG (sharp/librsvg). No browser, no network.
import sharp from 'sharp';
import type { LoggerInterface } from 'vega';
import type { TopLevelSpec } from 'vega-lite';

import { installTextMetrics } from './text-metrics';

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');

let libs: { vega: Vega; vl: VegaLite } | null = null;

/** vega and vega-lite, loaded on first use (they take a good half second to load: not on every CLI start). */
function charting(): { vega: Vega; vl: VegaLite } {
  if (!libs) {
    libs = { vega: require('vega') as Vega, vl: require('vega-lite') as VegaLite };
    installTextMetrics(libs.vega);
  }
  return libs;
}

export type ChartSpec = TopLevelSpec;

export interface RenderedChart {
  /** The chart as a standalone SVG document (CSS pixels). */
  svg: string;
  /** The same chart rasterised at `scale` x. */
  png: Buffer;
  /** Size of the SVG in CSS pixels. */
  width: number;
  height: number;
  /** Size of the PNG in pixels (width * scale, height * scale, rounded). */
  pngWidth: number;
  pngHeight: number;
  /** Warnings vega-lite or vega logged while compiling / rendering (empty when clean). */
  warnings: string[];
}

/** Font stack of every chart: a font Debian ships (fonts-dejavu) first, so SVG and PNG agree. */
export const CHART_FONT = 'DejaVu Sans, Verdana, Helvetica, Arial, sans-serif';

/** Shared look of all charts; merged under each spec's own `config`. */
export const CHART_CONFIG = {
  font: CHART_FONT,
  background: 'white',
  padding: 8,
  view: { stroke: '#d0d0d0' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#ececec', domainColor: '#888', tickColor: '#888' },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal' },
  title: { fontSize: 14, fontWeight: 'bold', anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555', offset: 8 },
  header: { labelFontSize: 12, titleFontSize: 12 },
} as const;

function collectingLogger(sink: string[], warn: number): LoggerInterface {
  let level = warn;
  const push = (kind: string) => (...args: readonly unknown[]) => {
    sink.push(`${kind}: ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`);
    return logger;
  };
  const logger = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error: push('error'),
    warn: push('warn'),
    info: () => logger,
    debug: () => logger,
  } as LoggerInterface;
  return logger;
}

function sizeOf(svg: string): { width: number; height: number } {
  const head = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const width = Number(/\swidth="([\d.]+)"/.exec(head)?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(head)?.[1]);
  if (!(width > 0 && height > 0)) throw new Error('vega produced an SVG without a size');
  return { width, height };
}

/**
 * Compiles a Vega-Lite spec with vega-lite, renders it with vega's SVG renderer (headless,
 * renderer 'none', no DOM) and rasterises the SVG with sharp at `scale` x (default 2).
 */
export async function renderChart(spec: ChartSpec, scale = 2): Promise<RenderedChart> {
  if (!(scale > 0 && scale <= 8)) throw new RangeError(`renderChart: scale must be in (0, 8], got ${scale}`);
  const { vega, vl } = charting();
  const warnings: string[] = [];
  const logger = collectingLogger(warnings, vega.Warn);
  const withConfig = { ...spec, config: { ...CHART_CONFIG, ...(spec as { config?: object }).config } } as ChartSpec;
  const compiled = vl.compile(withConfig, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger, logLevel: vega.Warn });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const { width, height } = sizeOf(svg);
  const png = await sharp(Buffer.from(svg), { density: 72 * scale })
    .png({ compressionLevel: 9 })
    .toBuffer({ resolveWithObject: true });
  return { svg, png: png.data, width, height, pngWidth: png.info.width, pngHeight: png.info.height, warnings };
}

/** The versions of the chart toolchain, for the report's footer. */
export function chartVersions(): { vega: string; vegaLite: string; sharp: string; libvips: string } {
  const { vega, vl } = charting();
  return { vega: vega.version, vegaLite: vl.version, sharp: sharp.versions.sharp ?? 'unknown', libvips: sharp.versions.vips };
}

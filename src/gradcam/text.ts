/**
 * Caption text for the Grad-CAM figures.
 *
 * Primary path: SVG <text> rasterised by sharp's bundled librsvg/pango, which
 * finds fonts through fontconfig (system fonts; sharp ships none). A
 * monospace family is requested so that the width of a line is predictable.
 *
 * Fallback: on a machine with no usable font (minimal containers), pango
 * draws nothing at all, so a built-in 5x7 bitmap font (ASCII 0x20-0x7E,
 * drawn here, public-domain style classic LCD glyphs) is rasterised directly.
 * The choice is made once per process by rendering a probe string and
 * checking that ink appeared; override it with the `textRenderer` option or
 * the CIFAKE_TEXT_RENDERER environment variable (`svg` | `bitmap`).
 */
import sharp from 'sharp';
import { describe } from './validate';

export type TextRendererKind = 'svg' | 'bitmap';
export type TextRendererChoice = TextRendererKind | 'auto';

export const TEXT_RENDERER_ENV = 'CIFAKE_TEXT_RENDERER';

/** Fonts asked of fontconfig, in order. */
export const FONT_FAMILY = "'DejaVu Sans Mono', 'Liberation Mono', 'Noto Sans Mono', Menlo, Consolas, monospace";

export interface TextRun {
  text: string;
  /** CSS hex colour, '#rrggbb'. Default '#111111'. */
  color?: string;
  bold?: boolean;
  /** When the line is too long, this run is shortened first (middle ellipsis). */
  shrink?: boolean;
}
export type TextLine = TextRun[];

export interface TextBox {
  x: number;
  y: number;
  width: number;
  height: number;
  lines: TextLine[];
  fontSize: number;
  lineHeight: number;
}

export interface TextRendererInfo {
  kind: TextRendererKind;
  /** Width of one character in ems (measured for svg; fixed for bitmap). */
  advanceEm: number;
  /** Why this renderer was chosen. */
  reason: string;
}

// ---------------------------------------------------------------------------
// Renderer selection

let detected: Promise<TextRendererInfo> | undefined;

/** Default SVG advance if measuring fails: DejaVu Sans Mono is 0.602 em. */
const DEFAULT_ADVANCE_EM = 0.61;

/** Ink (dark pixels) and right-most inked column of a probe string. */
async function probeInk(text: string, fontSize: number): Promise<{ ink: number; maxX: number }> {
  const width = 400;
  const height = 32;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#ffffff"/><text x="0" y="24" font-family="${FONT_FAMILY}" font-size="${fontSize}" fill="#000000">${text}</text></svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let ink = 0;
  let maxX = -1;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      if (data[(y * info.width + x) * info.channels]! < 128) {
        ink++;
        if (x > maxX) maxX = x;
      }
    }
  }
  return { ink, maxX };
}

/**
 * Render 'MMMM...' and 'iiii...'. With a real font M carries far more ink
 * than i (about 2.5x in DejaVu Sans Mono); with no font pango draws
 * identical missing-glyph boxes for both (ratio 1), or nothing at all.
 */
async function probeSvg(): Promise<{ ok: boolean; advanceEm: number; detail: string }> {
  const fontSize = 20;
  const n = 20;
  const m = await probeInk('M'.repeat(n), fontSize);
  const i = await probeInk('i'.repeat(n), fontSize);
  const ratio = i.ink > 0 ? m.ink / i.ink : 0;
  const ok = m.ink > 20 && ratio > 1.5;
  const measured = m.maxX > 0 ? (m.maxX + 1) / n / fontSize : DEFAULT_ADVANCE_EM;
  return { ok, advanceEm: Math.min(1, Math.max(0.45, measured)), detail: `ink M=${m.ink}, i=${i.ink}` };
}

/**
 * Which text renderer this process uses (cached): the environment override
 * if set, else `svg` when a probe string rendered through sharp's SVG path
 * shows ink, else `bitmap`.
 */
export function detectTextRenderer(): Promise<TextRendererInfo> {
  if (!detected) {
    detected = (async (): Promise<TextRendererInfo> => {
      const env = process.env[TEXT_RENDERER_ENV];
      if (env === 'bitmap') return { kind: 'bitmap', advanceEm: BITMAP_ADVANCE_EM, reason: `${TEXT_RENDERER_ENV}=bitmap` };
      try {
        const { ok, advanceEm, detail } = await probeSvg();
        if (env === 'svg') return { kind: 'svg', advanceEm, reason: `${TEXT_RENDERER_ENV}=svg` };
        if (ok) return { kind: 'svg', advanceEm, reason: `fontconfig found a font (probe ${detail})` };
        return { kind: 'bitmap', advanceEm: BITMAP_ADVANCE_EM, reason: `no usable font: SVG probe drew no glyphs (${detail})` };
      } catch (err) {
        if (env === 'svg') throw err;
        return { kind: 'bitmap', advanceEm: BITMAP_ADVANCE_EM, reason: `SVG text probe failed: ${(err as Error).message}` };
      }
    })();
  }
  return detected;
}

/** Forget the cached detection (tests). */
export function resetTextRendererCache(): void {
  detected = undefined;
}

export async function resolveTextRenderer(fn: string, choice: unknown = 'auto'): Promise<TextRendererInfo> {
  if (choice === 'auto' || choice === undefined) return detectTextRenderer();
  if (choice === 'bitmap') return { kind: 'bitmap', advanceEm: BITMAP_ADVANCE_EM, reason: 'requested' };
  if (choice === 'svg') {
    const auto = await detectTextRenderer();
    return { kind: 'svg', advanceEm: auto.kind === 'svg' ? auto.advanceEm : DEFAULT_ADVANCE_EM, reason: 'requested' };
  }
  throw new RangeError(`${fn}: textRenderer must be 'auto', 'svg' or 'bitmap', got ${describe(choice)}`);
}

// ---------------------------------------------------------------------------
// Line fitting

function runsLength(runs: TextLine): number {
  let n = 0;
  for (const r of runs) n += [...r.text].length;
  return n;
}

/** Shorten a line to at most maxChars characters, shrinkable runs first. */
export function fitLine(runs: TextLine, maxChars: number, ellipsis: string): TextLine {
  const out = runs.map((r) => ({ ...r }));
  let excess = runsLength(out) - maxChars;
  if (excess <= 0) return out;
  for (const r of out) {
    if (!r.shrink || excess <= 0) continue;
    const chars = [...r.text];
    const keep = Math.max(0, chars.length - excess - ellipsis.length);
    if (keep >= 4) {
      const head = Math.ceil(keep / 2);
      const tail = keep - head;
      r.text = chars.slice(0, head).join('') + ellipsis + (tail > 0 ? chars.slice(chars.length - tail).join('') : '');
    } else {
      r.text = chars.slice(0, Math.max(0, Math.min(chars.length, keep + ellipsis.length))).join('');
    }
    excess = runsLength(out) - maxChars;
  }
  if (excess > 0) {
    // Still too long: cut from the end.
    let budget = maxChars;
    for (const r of out) {
      const chars = [...r.text];
      r.text = chars.slice(0, Math.max(0, budget)).join('');
      budget -= chars.length;
    }
  }
  return out.filter((r) => r.text.length > 0);
}

// ---------------------------------------------------------------------------
// SVG path

function xmlEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&apos;';
    else if (c < 0x20 || c === 0x7f || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) out += '?';
    else out += ch;
  }
  return out;
}

const HEX = /^#[0-9a-fA-F]{6}$/;
function colorOf(run: TextRun): string {
  const c = run.color ?? '#111111';
  if (!HEX.test(c)) throw new RangeError(`text: colour must be '#rrggbb', got ${describe(c)}`);
  return c;
}

function svgOverlay(box: TextBox, advanceEm: number): sharp.OverlayOptions {
  const maxChars = Math.max(1, Math.floor(box.width / (advanceEm * box.fontSize)));
  const baselineOffset = Math.round((box.lineHeight - box.fontSize) / 2 + box.fontSize * 0.8);
  const texts = box.lines.map((line, i) => {
    const fitted = fitLine(line, maxChars, '\u2026');
    const spans = fitted
      .map((r) => `<tspan fill="${colorOf(r)}"${r.bold ? ' font-weight="bold"' : ''}>${xmlEscape(r.text)}</tspan>`)
      .join('');
    return `<text x="0" y="${i * box.lineHeight + baselineOffset}" xml:space="preserve">${spans}</text>`;
  });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${box.width}" height="${box.height}">` +
    `<g font-family="${FONT_FAMILY}" font-size="${box.fontSize}">${texts.join('')}</g></svg>`;
  return { input: Buffer.from(svg), left: box.x, top: box.y };
}

// ---------------------------------------------------------------------------
// Bitmap path

/** Glyph cell: 5 columns x 8 rows, 1 column of spacing. */
const GLYPH_W = 5;
const GLYPH_H = 8;
const GLYPH_ADVANCE = 6;
/** Bitmap glyph height is ~1.2 em at the chosen pixel scale; advance 6/8 of that. */
const BITMAP_ADVANCE_EM = 0.75;

/**
 * 5x8 glyphs for ASCII 0x20..0x7E: 5 column bytes each, bit 0 = top row,
 * rows 0-6 for capitals/digits, bit 7 for descenders.
 */
// prettier-ignore
const FONT_5X8: readonly number[] = [
  0x00,0x00,0x00,0x00,0x00, 0x00,0x00,0x5f,0x00,0x00, 0x00,0x07,0x00,0x07,0x00, 0x14,0x7f,0x14,0x7f,0x14, // space ! " #
  0x24,0x2a,0x7f,0x2a,0x12, 0x23,0x13,0x08,0x64,0x62, 0x36,0x49,0x55,0x22,0x50, 0x00,0x05,0x03,0x00,0x00, // $ % & '
  0x00,0x1c,0x22,0x41,0x00, 0x00,0x41,0x22,0x1c,0x00, 0x14,0x08,0x3e,0x08,0x14, 0x08,0x08,0x3e,0x08,0x08, // ( ) * +
  0x00,0x50,0x30,0x00,0x00, 0x08,0x08,0x08,0x08,0x08, 0x00,0x60,0x60,0x00,0x00, 0x20,0x10,0x08,0x04,0x02, // , - . /
  0x3e,0x51,0x49,0x45,0x3e, 0x00,0x42,0x7f,0x40,0x00, 0x42,0x61,0x51,0x49,0x46, 0x21,0x41,0x45,0x4b,0x31, // 0 1 2 3
  0x18,0x14,0x12,0x7f,0x10, 0x27,0x45,0x45,0x45,0x39, 0x3c,0x4a,0x49,0x49,0x30, 0x01,0x71,0x09,0x05,0x03, // 4 5 6 7
  0x36,0x49,0x49,0x49,0x36, 0x06,0x49,0x49,0x29,0x1e, 0x00,0x36,0x36,0x00,0x00, 0x00,0x56,0x36,0x00,0x00, // 8 9 : ;
  0x08,0x14,0x22,0x41,0x00, 0x14,0x14,0x14,0x14,0x14, 0x00,0x41,0x22,0x14,0x08, 0x02,0x01,0x51,0x09,0x06, // < = > ?
  0x32,0x49,0x79,0x41,0x3e, 0x7e,0x11,0x11,0x11,0x7e, 0x7f,0x49,0x49,0x49,0x36, 0x3e,0x41,0x41,0x41,0x22, // @ A B C
  0x7f,0x41,0x41,0x22,0x1c, 0x7f,0x49,0x49,0x49,0x41, 0x7f,0x09,0x09,0x09,0x01, 0x3e,0x41,0x49,0x49,0x7a, // D E F G
  0x7f,0x08,0x08,0x08,0x7f, 0x00,0x41,0x7f,0x41,0x00, 0x20,0x40,0x41,0x3f,0x01, 0x7f,0x08,0x14,0x22,0x41, // H I J K
  0x7f,0x40,0x40,0x40,0x40, 0x7f,0x02,0x0c,0x02,0x7f, 0x7f,0x04,0x08,0x10,0x7f, 0x3e,0x41,0x41,0x41,0x3e, // L M N O
  0x7f,0x09,0x09,0x09,0x06, 0x3e,0x41,0x51,0x21,0x5e, 0x7f,0x09,0x19,0x29,0x46, 0x46,0x49,0x49,0x49,0x31, // P Q R S
  0x01,0x01,0x7f,0x01,0x01, 0x3f,0x40,0x40,0x40,0x3f, 0x1f,0x20,0x40,0x20,0x1f, 0x3f,0x40,0x38,0x40,0x3f, // T U V W
  0x63,0x14,0x08,0x14,0x63, 0x07,0x08,0x70,0x08,0x07, 0x61,0x51,0x49,0x45,0x43, 0x00,0x7f,0x41,0x41,0x00, // X Y Z [
  0x02,0x04,0x08,0x10,0x20, 0x00,0x41,0x41,0x7f,0x00, 0x04,0x02,0x01,0x02,0x04, 0x40,0x40,0x40,0x40,0x40, // \ ] ^ _
  0x00,0x01,0x02,0x04,0x00, 0x20,0x54,0x54,0x54,0x78, 0x7f,0x48,0x44,0x44,0x38, 0x38,0x44,0x44,0x44,0x20, // ` a b c
  0x38,0x44,0x44,0x48,0x7f, 0x38,0x54,0x54,0x54,0x18, 0x08,0x7e,0x09,0x01,0x02, 0x18,0xa4,0xa4,0xa4,0x7c, // d e f g
  0x7f,0x08,0x04,0x04,0x78, 0x00,0x44,0x7d,0x40,0x00, 0x40,0x80,0x84,0x7d,0x00, 0x7f,0x10,0x28,0x44,0x00, // h i j k
  0x00,0x41,0x7f,0x40,0x00, 0x7c,0x04,0x18,0x04,0x78, 0x7c,0x08,0x04,0x04,0x78, 0x38,0x44,0x44,0x44,0x38, // l m n o
  0xfc,0x24,0x24,0x24,0x18, 0x18,0x24,0x24,0x24,0xfc, 0x7c,0x08,0x04,0x04,0x08, 0x48,0x54,0x54,0x54,0x20, // p q r s
  0x04,0x3f,0x44,0x40,0x20, 0x3c,0x40,0x40,0x20,0x7c, 0x1c,0x20,0x40,0x20,0x1c, 0x3c,0x40,0x30,0x40,0x3c, // t u v w
  0x44,0x28,0x10,0x28,0x44, 0x1c,0xa0,0xa0,0xa0,0x7c, 0x44,0x64,0x54,0x4c,0x44, 0x00,0x08,0x36,0x41,0x00, // x y z {
  0x00,0x00,0x7f,0x00,0x00, 0x00,0x41,0x36,0x08,0x00, 0x08,0x04,0x08,0x10,0x08,                           // | } ~
];

/** Integer pixel scale of the bitmap font for a nominal font size. */
export function bitmapPixelScale(fontSize: number): number {
  return Math.max(1, Math.round(fontSize / 7));
}

function parseHex(c: string): [number, number, number] {
  return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
}

function bitmapOverlay(box: TextBox): sharp.OverlayOptions {
  const fitsAt = (scale: number): number => Math.max(1, Math.floor((box.width + scale) / (GLYPH_ADVANCE * scale)));
  const rgba = Buffer.alloc(box.width * box.height * 4);
  box.lines.forEach((line, li) => {
    // The bitmap font is wider than the SVG one: a line that does not fit at
    // the nominal pixel scale is drawn one step smaller before anything is cut.
    let s = bitmapPixelScale(box.fontSize);
    if (s > 1 && runsLength(line) > fitsAt(s)) s--;
    const advance = GLYPH_ADVANCE * s;
    const glyphH = GLYPH_H * s;
    const top = li * box.lineHeight + Math.max(0, Math.floor((box.lineHeight - glyphH) / 2));
    let col = 0;
    for (const run of fitLine(line, fitsAt(s), '...')) {
      const [r, g, b] = parseHex(colorOf(run));
      for (const ch of run.text) {
        let code = ch.codePointAt(0)!;
        if (code < 0x20 || code > 0x7e) code = 0x3f; // '?'
        const base = (code - 0x20) * GLYPH_W;
        const left = col * advance;
        for (let gx = 0; gx < GLYPH_W; gx++) {
          const bits = FONT_5X8[base + gx]!;
          for (let gy = 0; gy < GLYPH_H; gy++) {
            if (!((bits >> gy) & 1)) continue;
            // Bold: also ink the pixel to the right.
            const widen = run.bold ? Math.max(1, Math.floor(s / 2)) : 0;
            for (let py = 0; py < s; py++) {
              const y = top + gy * s + py;
              if (y < 0 || y >= box.height) continue;
              for (let px = 0; px < s + widen; px++) {
                const x = left + gx * s + px;
                if (x < 0 || x >= box.width) continue;
                const o = (y * box.width + x) * 4;
                rgba[o] = r;
                rgba[o + 1] = g;
                rgba[o + 2] = b;
                rgba[o + 3] = 255;
              }
            }
          }
        }
        col++;
      }
    }
  });
  return { input: rgba, raw: { width: box.width, height: box.height, channels: 4 }, left: box.x, top: box.y };
}

/** A sharp composite layer drawing the text box with the given renderer. */
export function textOverlay(box: TextBox, renderer: TextRendererInfo): sharp.OverlayOptions {
  if (box.width < 1 || box.height < 1) throw new RangeError(`text: box must be at least 1x1, got ${box.width}x${box.height}`);
  return renderer.kind === 'svg' ? svgOverlay(box, renderer.advanceEm) : bitmapOverlay(box);
}

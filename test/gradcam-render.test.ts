import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import {
  applyColormap,
  CAPTION_GAP,
  CAPTION_LINE_HEIGHT,
  classMeanMaps,
  classMeansLayout,
  classMeansToJSON,
  COLORMAP_NAMES,
  colormapColor,
  colormapLUT,
  ColormapName,
  detectTextRenderer,
  galleryLayout,
  GalleryItem,
  itemLayout,
  normalizeMap,
  renderClassMeans,
  renderGallery,
  renderOverlay,
  renderTriptych,
  resizeBilinear,
  selectGalleryItems,
  WRONG_COLOR,
} from '../src/gradcam';

// ---------------------------------------------------------------------------
// Helpers

interface Decoded {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
  at(x: number, y: number): [number, number, number];
}

async function decode(png: Buffer): Promise<Decoded> {
  const meta = await sharp(png).metadata();
  expect(meta.format).to.equal('png');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    channels: info.channels,
    data,
    at(x, y) {
      const o = (y * info.width + x) * info.channels;
      return [data[o]!, data[o + 1]!, data[o + 2]!];
    },
  };
}

/** Deterministic pseudo-random CHW image. */
function makeImage(width = 32, height = 32, seed = 1): Uint8Array {
  const img = new Uint8Array(3 * width * height);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < img.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    img[i] = s >>> 24;
  }
  return img;
}

/** A map that is zero except for value v at (row, col). */
function plantedMap(width: number, height: number, row: number, col: number, v = 1): Float32Array {
  const m = new Float32Array(width * height);
  m[row * width + col] = v;
  return m;
}

/** Index of the colormap entry nearest to an RGB colour. */
function lutIndexOf(name: ColormapName, rgb: readonly number[]): number {
  const lut = colormapLUT(name);
  let best = 0;
  let bestD = Infinity;
  for (let i = 0; i < 256; i++) {
    const d = (lut[3 * i]! - rgb[0]!) ** 2 + (lut[3 * i + 1]! - rgb[1]!) ** 2 + (lut[3 * i + 2]! - rgb[2]!) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** WCAG relative luminance of an sRGB byte triple. */
function luminance(r: number, g: number, b: number): number {
  const lin = (c: number): number => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/**
 * Non-decreasing up to `tol`. The byte LUT needs a hair of tolerance: the
 * published float viridis is strictly monotonic, but truncating to bytes
 * turns entry 120 -> 121 into (35,137,141) -> (34,137,141), a luminance dip
 * of 1.7e-4 (one red step).
 */
function isMonotonicIncreasing(values: number[], tol = 5e-4): boolean {
  for (let i = 1; i < values.length; i++) if (values[i]! < values[i - 1]! - tol) return false;
  return true;
}

async function expectReject(p: Promise<unknown>, re: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(Error);
    expect((e as Error).message).to.match(re);
    return e as Error;
  }
  throw new Error(`expected rejection matching ${re}`);
}

function hex(c: string): [number, number, number] {
  return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
}

const SAMPLES_DIR = process.env.GRADCAM_SAMPLES_DIR;
function maybeWrite(name: string, png: Buffer): void {
  if (!SAMPLES_DIR) return;
  fs.mkdirSync(SAMPLES_DIR, { recursive: true });
  fs.writeFileSync(path.join(SAMPLES_DIR, name), png);
}

// ---------------------------------------------------------------------------

describe('gradcam render: colormaps', () => {
  const near = (a: readonly number[], b: readonly number[], tol = 1): void => {
    for (let i = 0; i < 3; i++) expect(Math.abs(a[i]! - b[i]!), `channel ${i}: ${a} vs ${b}`).to.be.at.most(tol);
  };

  it('viridis runs from #440154 to #fde725 (published endpoints)', () => {
    near(colormapColor('viridis', 0), hex('#440154'));
    near(colormapColor('viridis', 1), hex('#fde725'));
    // Midpoint of viridis is the well-known teal #21918c.
    near(colormapColor('viridis', 0.5), hex('#21918c'), 2);
  });

  it('turbo runs from #30123b to #7a0403 (published endpoints)', () => {
    near(colormapColor('turbo', 0), hex('#30123b'));
    near(colormapColor('turbo', 1), hex('#7a0403'));
  });

  it('jet is the matplotlib jet: dark blue -> green -> dark red', () => {
    near(colormapColor('jet', 0), [0, 0, 127.5], 1);
    near(colormapColor('jet', 1), [127.5, 0, 0], 1);
    const mid = colormapColor('jet', 0.5);
    expect(mid[1]).to.equal(255);
    expect(mid[0]).to.be.within(118, 130);
    expect(mid[2]).to.be.within(118, 130);
  });

  it('viridis luminance increases monotonically (and jet does not)', () => {
    const lum = (name: ColormapName): number[] => {
      const lut = colormapLUT(name);
      return Array.from({ length: 256 }, (_, i) => luminance(lut[3 * i]!, lut[3 * i + 1]!, lut[3 * i + 2]!));
    };
    const v = lum('viridis');
    expect(isMonotonicIncreasing(v)).to.equal(true);
    expect(v[255]! - v[0]!).to.be.greaterThan(0.7);
    // Strictly increasing over every 4 entries (bytes may tie between neighbours).
    for (let i = 4; i < 256; i++) expect(v[i]!, `entry ${i}`).to.be.greaterThan(v[i - 4]!);
    // The check itself can fail: jet's luminance peaks in the middle.
    expect(isMonotonicIncreasing(lum('jet'))).to.equal(false);
  });

  it('applyColormap returns interleaved RGB per value, using floor(v*256) entries', () => {
    const vals = new Float32Array([0, 1, 0.5, 0.25, 127.9 / 256]);
    for (const name of COLORMAP_NAMES) {
      const out = applyColormap(vals, name);
      expect(out).to.be.instanceOf(Uint8Array);
      expect(out.length).to.equal(15);
      const lut = colormapLUT(name);
      const entries = [0, 255, 128, 64, 127];
      entries.forEach((e, i) => {
        expect(Array.from(out.subarray(3 * i, 3 * i + 3)), `${name}[${i}]`).to.deep.equal(Array.from(lut.subarray(3 * e, 3 * e + 3)));
      });
    }
  });

  it('rejects unknown colormaps listing the valid ones, and out-of-range values', () => {
    expect(() => applyColormap(new Float32Array([0.5]), 'magma' as ColormapName)).to.throw(
      RangeError,
      /unknown colormap "magma"; valid colormaps: viridis, turbo, jet/,
    );
    expect(() => applyColormap(new Float32Array([1.5]), 'viridis')).to.throw(RangeError, /\[0, 1\].*1\.5 at index 0/);
    expect(() => applyColormap(new Float32Array([0, NaN]), 'viridis')).to.throw(RangeError, /NaN at index 1/);
    expect(() => applyColormap([0.5] as unknown as Float32Array, 'viridis')).to.throw(TypeError, /Float32Array/);
    expect(() => colormapLUT('Viridis' as ColormapName)).to.throw(/valid colormaps/);
  });
});

describe('gradcam render: map resampling', () => {
  it('matches PyTorch bilinear align_corners=False on known cases', () => {
    expect(Array.from(resizeBilinear([0, 1], 2, 1, 4, 1))).to.deep.equal([0, 0.25, 0.75, 1]);
    const out = Array.from(resizeBilinear([1, 2, 3, 4], 2, 2, 4, 4));
    // torch.nn.functional.interpolate(tensor([[[[1., 2.], [3., 4.]]]]), size=4, mode='bilinear', align_corners=False)
    expect(out).to.deep.equal([1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
    // Same size is the identity.
    const m = Float32Array.from({ length: 12 }, (_, i) => i * 0.1);
    expect(Array.from(resizeBilinear(m, 4, 3, 4, 3))).to.deep.equal(Array.from(m));
  });

  it('normalises by the maximum, leaving an all-zero map at zero (no NaN)', () => {
    expect(Array.from(normalizeMap(new Float32Array([0, 2, 4, 1]), 2, 2))).to.deep.equal([0, 0.5, 1, 0.25]);
    const z = normalizeMap(new Float32Array(9), 3, 3);
    expect(Array.from(z).every((v) => v === 0)).to.equal(true);
  });
});

describe('gradcam render: overlay', () => {
  const image = makeImage(32, 32, 7);
  const map = Float32Array.from({ length: 13 * 13 }, (_, i) => ((i * 7919) % 101) / 37);

  it('alpha 0 is exactly the nearest-neighbour upscaled image (CHW input)', async () => {
    // Non-square image so a transposed or HWC-misread image cannot pass.
    const iw = 40;
    const ih = 24;
    const img = makeImage(iw, ih, 3);
    const png = await renderOverlay({ image: img, imageWidth: iw, imageHeight: ih, map, width: 13, height: 13, alpha: 0, scale: 5 });
    const d = await decode(png);
    expect([d.width, d.height]).to.deep.equal([iw * 5, ih * 5]);
    for (let y = 0; y < d.height; y++) {
      for (let x = 0; x < d.width; x++) {
        const src = Math.floor(y / 5) * iw + Math.floor(x / 5);
        const expected = [img[src]!, img[iw * ih + src]!, img[2 * iw * ih + src]!];
        const got = d.at(x, y);
        if (got[0] !== expected[0] || got[1] !== expected[1] || got[2] !== expected[2]) {
          expect(got, `pixel (${x}, ${y})`).to.deep.equal(expected);
        }
      }
    }
  });

  it('alpha 1 is exactly the colormapped, bilinearly upsampled heatmap', async () => {
    for (const colormap of COLORMAP_NAMES) {
      const png = await renderOverlay({ image, map, width: 13, height: 13, alpha: 1, colormap });
      const d = await decode(png);
      expect([d.width, d.height]).to.deep.equal([256, 256]);
      const expected = applyColormap(resizeBilinear(normalizeMap(map, 13, 13), 13, 13, 256, 256), colormap);
      let mismatches = 0;
      for (let p = 0; p < 256 * 256; p++) {
        for (let c = 0; c < 3; c++) if (d.data[p * d.channels + c] !== expected[3 * p + c]) mismatches++;
      }
      expect(mismatches, colormap).to.equal(0);
    }
  });

  it('alpha 0.5 blends image and heatmap half and half', async () => {
    const [a0, a1, ah] = await Promise.all(
      [0, 1, 0.5].map(async (alpha) => decode(await renderOverlay({ image, map, width: 13, height: 13, alpha, colormap: 'turbo' }))),
    );
    let worst = 0;
    for (let i = 0; i < a0!.data.length; i++) {
      worst = Math.max(worst, Math.abs(ah!.data[i]! - (a0!.data[i]! + a1!.data[i]!) / 2));
    }
    expect(worst).to.be.at.most(1);
  });

  it('puts a hot map cell (r, c) into display region (r, c), for square and non-square maps', async () => {
    const cases = [
      { width: 13, height: 13, r: 2, c: 9 },
      { width: 13, height: 13, r: 10, c: 1 },
      { width: 16, height: 8, r: 6, c: 3 },
      { width: 32, height: 32, r: 30, c: 5 },
    ];
    for (const { width, height, r, c } of cases) {
      const png = await renderOverlay({ image, map: plantedMap(width, height, r, c, 3.5), width, height, alpha: 1, colormap: 'viridis' });
      const d = await decode(png);
      // Centroid of the pixels in the top 20% of the colour scale.
      let sx = 0;
      let sy = 0;
      let n = 0;
      for (let y = 0; y < d.height; y++) {
        for (let x = 0; x < d.width; x++) {
          if (lutIndexOf('viridis', d.at(x, y)) >= 205) {
            sx += x;
            sy += y;
            n++;
          }
        }
      }
      expect(n, `hot pixels for ${width}x${height} (${r}, ${c})`).to.be.greaterThan(0);
      const cellW = d.width / width;
      const cellH = d.height / height;
      expect(Math.floor(sx / n / cellW), `column of hot spot for ${width}x${height} (${r}, ${c})`).to.equal(c);
      expect(Math.floor(sy / n / cellH), `row of hot spot for ${width}x${height} (${r}, ${c})`).to.equal(r);
      // And the opposite corner region stays cold.
      const far = d.at(c < width / 2 ? d.width - 1 : 0, r < height / 2 ? d.height - 1 : 0);
      expect(lutIndexOf('viridis', far)).to.equal(0);
    }
  });

  it('draws an all-zero map as the bottom colour, without NaN', async () => {
    const d = await decode(await renderOverlay({ image, map: new Float32Array(16 * 16), width: 16, height: 16, alpha: 1, scale: 2 }));
    const zero = colormapColor('viridis', 0);
    for (let y = 0; y < d.height; y += 7) for (let x = 0; x < d.width; x += 7) expect(d.at(x, y)).to.deep.equal(zero);
  });

  it('adds a caption area below when a caption is given', async () => {
    const d = await decode(await renderOverlay({ image, map, width: 13, height: 13, caption: ['a.png', 'P(REAL)=0.500'] }));
    expect([d.width, d.height]).to.deep.equal([256, 256 + CAPTION_GAP + 2 * CAPTION_LINE_HEIGHT]);
    let ink = 0;
    for (let y = 256 + CAPTION_GAP; y < d.height; y++) for (let x = 0; x < d.width; x++) if (d.at(x, y)[0] < 128) ink++;
    expect(ink).to.be.greaterThan(50);
  });
});

describe('gradcam render: triptych and captions', () => {
  const image = makeImage(32, 32, 11);
  const map = plantedMap(16, 16, 4, 12, 0.02);

  it('has the size the layout says, at several scales', async () => {
    for (const scale of [8, 4, 2]) {
      const layout = itemLayout({ scale, mode: 'triptych' });
      const d = await decode(await renderTriptych({ image, map, width: 16, height: 16, pReal: 0.9, label: 1, fileName: 'x.png', scale }));
      expect([d.width, d.height], `scale ${scale}`).to.deep.equal([layout.width, layout.height]);
      expect(layout.panels.heatmap!.width).to.equal(32 * scale);
    }
    expect(itemLayout({ scale: 8 }).captionLines).to.equal(1);
    expect(itemLayout({ scale: 8, mode: 'overlay' }).captionLines).to.equal(3);
  });

  it('shows original | heatmap | overlay in that order', async () => {
    const layout = itemLayout({ scale: 8, mode: 'triptych' });
    const d = await decode(await renderTriptych({ image, map, width: 16, height: 16, pReal: 0.9, label: 1, scale: 8, alpha: 0.5 }));
    const o = layout.panels.original!;
    const h = layout.panels.heatmap!;
    // Original panel: image pixel (0, 0) and (31, 31).
    expect(d.at(o.x, o.y)).to.deep.equal([image[0]!, image[1024]!, image[2048]!]);
    expect(d.at(o.x + o.width - 1, o.y + o.height - 1)).to.deep.equal([image[1023]!, image[2047]!, image[3071]!]);
    // Heatmap panel: hot where the map is hot (row 4, col 12 of 16 -> display (200, 72)), cold at the corner.
    expect(lutIndexOf('viridis', d.at(h.x + 200, h.y + 72))).to.be.greaterThan(200);
    expect(d.at(h.x, h.y)).to.deep.equal(colormapColor('viridis', 0));
  });

  it('renders caption text, and marks wrong predictions in red', async () => {
    const renderers = ['bitmap', 'auto'] as const;
    for (const textRenderer of renderers) {
      const layout = itemLayout({ scale: 8 });
      const right = await decode(await renderTriptych({ image, map, width: 16, height: 16, pReal: 0.9, label: 1, fileName: 'ok.png', textRenderer }));
      const wrong = await decode(await renderTriptych({ image, map, width: 16, height: 16, pReal: 0.9, label: 0, fileName: 'bad.png', textRenderer }));
      const count = (d: Decoded, pred: (p: [number, number, number]) => boolean): number => {
        let n = 0;
        const c = layout.caption;
        for (let y = c.y; y < c.y + c.height; y++) for (let x = c.x; x < c.x + c.width; x++) if (pred(d.at(x, y))) n++;
        return n;
      };
      const dark = (p: number[]): boolean => p[0]! < 100 && p[1]! < 100 && p[2]! < 100;
      const red = (p: number[]): boolean => p[0]! > 150 && p[1]! < 80 && p[2]! < 80;
      expect(count(right, dark), `${textRenderer}: caption ink`).to.be.greaterThan(100);
      expect(count(right, red), `${textRenderer}: no red when correct`).to.equal(0);
      expect(count(wrong, red), `${textRenderer}: red WRONG marker`).to.be.greaterThan(20);
      // Frame: red border when wrong, background when right.
      expect(wrong.at(1, 1)).to.deep.equal(hex(WRONG_COLOR));
      expect(right.at(1, 1)).to.deep.equal([255, 255, 255]);
    }
    const info = await detectTextRenderer();
    expect(['svg', 'bitmap']).to.include(info.kind);
  });

  it('detects a machine without fonts and falls back to the bitmap font (child process)', function () {
    this.timeout(60_000);
    const conf = path.join(os.tmpdir(), `cifake-gradcam-nofonts-${process.pid}.conf`);
    fs.writeFileSync(conf, '<?xml version="1.0"?>\n<fontconfig></fontconfig>\n');
    const entry = JSON.stringify(path.resolve(__dirname, '../src/gradcam'));
    const script = `require(${entry}).detectTextRenderer().then((r) => process.stdout.write(JSON.stringify(r)))`;
    const run = (env: Record<string, string>): { kind: string; reason: string } => {
      const res = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
        cwd: path.resolve(__dirname, '..'),
        env: { ...process.env, CIFAKE_TEXT_RENDERER: '', ...env },
        encoding: 'utf8',
        timeout: 50_000,
      });
      expect(res.status, res.stderr).to.equal(0);
      return JSON.parse(res.stdout);
    };
    try {
      const noFonts = run({ FONTCONFIG_FILE: conf });
      expect(noFonts.kind, noFonts.reason).to.equal('bitmap');
      expect(run({ CIFAKE_TEXT_RENDERER: 'bitmap' }).kind).to.equal('bitmap');
    } finally {
      fs.rmSync(conf, { force: true });
    }
  });

  it('writes sample figures when GRADCAM_SAMPLES_DIR is set', async function () {
    if (!SAMPLES_DIR) this.skip();
    for (const colormap of COLORMAP_NAMES) {
      maybeWrite(
        `triptych-${colormap}.png`,
        await renderTriptych({ image, map, width: 16, height: 16, pReal: 0.973, label: 0, fileName: 'test/FAKE/1234 (7).jpg', colormap }),
      );
    }
  });
});

describe('gradcam render: gallery', () => {
  const mk = (i: number, group: string, map: Float32Array, w: number, extra: Partial<GalleryItem> = {}): GalleryItem => ({
    image: makeImage(32, 32, 100 + i),
    map,
    width: w,
    height: w,
    pReal: 0.8,
    label: 1,
    fileName: `img-${i}.png`,
    group,
    ...extra,
  });

  it('puts a top-left-planted map at the top-left of its heatmap panel, at the layout position', async () => {
    const diffuse = (seed: number): Float32Array => Float32Array.from({ length: 13 * 13 }, (_, k) => 0.2 + ((k * seed) % 7) / 10);
    const corner = plantedMap(32, 32, 0, 0, 5);
    const items: GalleryItem[] = [
      mk(0, 'most confident REAL', diffuse(3), 13),
      mk(1, 'most confident REAL', diffuse(5), 13),
      mk(2, 'most confident FAKE', diffuse(2), 13, { pReal: 0.1, label: 0 }),
      mk(3, 'most confident FAKE', corner, 32, { pReal: 0.2, label: 0 }),
      mk(4, 'misclassified', diffuse(4), 13, { pReal: 0.7, label: 0 }),
    ];
    const options = { columns: 2, title: 'test gallery', colormap: 'jet' as const };
    const png = await renderGallery(items, options);
    maybeWrite('gallery.png', png);
    const layout = galleryLayout(items, options);
    const d = await decode(png);
    expect([d.width, d.height]).to.deep.equal([layout.width, layout.height]);
    expect(layout.sections.map((s) => s.title)).to.deep.equal(['most confident REAL', 'most confident FAKE', 'misclassified']);
    const h = layout.cells[3]!.panels.heatmap!;
    // Second column of the second section.
    expect(h.x).to.be.greaterThan(layout.cells[2]!.panels.heatmap!.x);
    expect(h.y).to.equal(layout.cells[2]!.panels.heatmap!.y);
    const hot = colormapColor('jet', 1);
    const cold = colormapColor('jet', 0);
    expect(d.at(h.x, h.y)).to.deep.equal(hot);
    expect(d.at(h.x + 2, h.y + 2)).to.deep.equal(hot);
    expect(d.at(h.x + h.width - 1, h.y + h.height - 1)).to.deep.equal(cold);
    expect(d.at(h.x + h.width - 1, h.y)).to.deep.equal(cold);
    expect(d.at(h.x, h.y + h.height - 1)).to.deep.equal(cold);
    // The original panel of that cell shows its own image.
    const o = layout.cells[3]!.panels.original!;
    const img = items[3]!.image;
    expect(d.at(o.x, o.y)).to.deep.equal([img[0]!, img[1024]!, img[2048]!]);
    // The misclassified item has a red frame at its corner, the others not.
    expect(d.at(layout.cells[4]!.x + 1, layout.cells[4]!.y + 1)).to.deep.equal(hex(WRONG_COLOR));
    expect(d.at(layout.cells[3]!.x + 1, layout.cells[3]!.y + 1)).to.deep.equal([255, 255, 255]);
  });

  it('lays out overlay galleries by columns and sections', () => {
    const m = plantedMap(8, 8, 1, 1);
    const items = Array.from({ length: 7 }, (_, i) => mk(i, i < 5 ? 'A' : 'B', m, 8));
    const layout = galleryLayout(items, { mode: 'overlay', columns: 3, scale: 4 });
    const cell = itemLayout({ mode: 'overlay', scale: 4 });
    expect(layout.columns).to.equal(3);
    expect(layout.width).to.equal(2 * 16 + 3 * cell.width + 2 * 10);
    // Item 3 starts the second row of section A, under item 0.
    expect(layout.cells[3]!.x).to.equal(layout.cells[0]!.x);
    expect(layout.cells[3]!.y).to.equal(layout.cells[0]!.y + cell.height + 10);
    // Section B starts below section A.
    expect(layout.sections[1]!.titleRect!.y).to.be.greaterThan(layout.cells[3]!.y + cell.height);
    expect(layout.cells[5]!.y).to.be.greaterThan(layout.sections[1]!.titleRect!.y);
  });

  it("normalize: 'shared' puts maps on one scale topped by the largest raw value", async () => {
    // Raw maps (as the native side returns them) peaking at 0.5 and 1, and the
    // same two maps pre-normalised with their rawMax.
    const raw = [mk(0, '', plantedMap(32, 32, 0, 0, 0.5), 32), mk(1, '', plantedMap(32, 32, 0, 0, 1), 32)];
    const pre = [
      mk(0, '', plantedMap(32, 32, 0, 0, 1), 32, { normalized: true, rawMax: 0.5 }),
      mk(1, '', plantedMap(32, 32, 0, 0, 1), 32, { normalized: true, rawMax: 1 }),
    ];
    for (const [kind, items] of [['raw', raw], ['pre-normalised', pre]] as const) {
      for (const normalize of ['per-image', 'shared'] as const) {
        const options = { normalize, mode: 'overlay' as const, alpha: 1, colormap: 'viridis' as const };
        const d = await decode(await renderGallery(items, options));
        const layout = galleryLayout(items, options);
        const top = (i: number): number => {
          const p = layout.cells[i]!.panels.overlay;
          return lutIndexOf('viridis', d.at(p.x, p.y));
        };
        expect(top(1), `${kind} ${normalize}`).to.equal(255);
        expect(top(0), `${kind} ${normalize}`).to.equal(normalize === 'shared' ? 128 : 255);
      }
    }
    // An explicit vmax saturates above it.
    const d = await decode(await renderOverlay({ image: raw[0]!.image, map: raw[0]!.map, width: 32, height: 32, alpha: 1, vmax: 2 }));
    expect(lutIndexOf('viridis', d.at(0, 0))).to.equal(64);
  });

  it('selectGalleryItems picks confident REAL, confident FAKE and misclassified', () => {
    const probs = [0.99, 0.02, 0.7, 0.45, 0.91, 0.08, 0.6, 0.3, 0.999, 0.5];
    const labels = [1, 0, 0, 1, 1, 0, 1, 1, 0, 1];
    const sel = selectGalleryItems(new Float32Array(probs), new Uint8Array(labels), 2);
    const byGroup = (g: string): number[] => sel.filter((s) => s.group === g).map((s) => s.index);
    expect(byGroup('most confident REAL')).to.deep.equal([0, 4]);
    expect(byGroup('most confident FAKE')).to.deep.equal([1, 5]);
    // Wrong: 8 (conf .999), 2 (.7), 7 (.7), 3 (.55); top 2 by confidence, ties by index.
    expect(byGroup('misclassified')).to.deep.equal([8, 2]);
    expect(sel.map((s) => s.group)).to.deep.equal([
      'most confident REAL',
      'most confident REAL',
      'most confident FAKE',
      'most confident FAKE',
      'misclassified',
      'misclassified',
    ]);
    const s8 = sel.find((s) => s.index === 8)!;
    expect(s8.predicted).to.equal(1);
    expect(s8.label).to.equal(0);
    // n larger than available; no overlap between groups.
    const all = selectGalleryItems(probs, labels, 100);
    expect(all.length).to.equal(probs.length);
    expect(new Set(all.map((s) => s.index)).size).to.equal(probs.length);
    // Without labels: by prediction only, no misclassified group; pReal 0.5 counts as REAL.
    const unl = selectGalleryItems(probs, null, 3);
    expect(unl.map((s) => s.index)).to.deep.equal([8, 0, 4, 1, 5, 7]);
    expect(unl.every((s) => s.label === null)).to.equal(true);
  });
});

describe('gradcam render: class means', () => {
  it('averages the raw maps of each predicted class', () => {
    const H = 3;
    const W = 4;
    const N = 5;
    const maps = new Float32Array(N * H * W);
    for (let i = 0; i < N; i++) for (let k = 0; k < H * W; k++) maps[i * H * W + k] = (i + 1) * (k + 1) * 0.5;
    const predicted = new Uint8Array([1, 0, 1, 1, 0]);
    const m = classMeanMaps(maps, predicted, H, W);
    expect(m.counts).to.deep.equal({ REAL: 3, FAKE: 2 });
    for (let k = 0; k < H * W; k++) {
      expect(m.REAL[k]).to.be.closeTo(((1 + 3 + 4) / 3) * (k + 1) * 0.5, 1e-5);
      expect(m.FAKE[k]).to.be.closeTo(((2 + 5) / 2) * (k + 1) * 0.5, 1e-5);
    }
    // JSON: rows of W values, rounded to 4 significant digits.
    const json = JSON.parse(JSON.stringify(m));
    expect(json.counts).to.deep.equal({ REAL: 3, FAKE: 2 });
    expect(json.REAL.length).to.equal(H);
    expect(json.REAL[0].length).to.equal(W);
    expect(json.REAL[0][0]).to.equal(1.333);
    expect(json.FAKE[2][3]).to.equal(21);
    expect(classMeansToJSON(m, 2).REAL[0]![0]).to.equal(1.3);
  });

  it('gives a zero map and zero count for a class with no images', () => {
    const m = classMeanMaps(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), [1, 1], 2, 2);
    expect(m.counts).to.deep.equal({ REAL: 2, FAKE: 0 });
    expect(Array.from(m.REAL)).to.deep.equal([3, 4, 5, 6]);
    expect(Array.from(m.FAKE)).to.deep.equal([0, 0, 0, 0]);
  });

  it('renders both means on a shared scale with a colour bar, at the layout size', async () => {
    const H = 8;
    const W = 16;
    const maps = new Float32Array(2 * H * W);
    maps[0] = 4; // REAL image: hot at top-left
    maps[H * W + (H - 1) * W + (W - 1)] = 1; // FAKE image: weaker, at bottom-right
    const m = classMeanMaps(maps, new Uint8Array([1, 0]), H, W);
    const png = await renderClassMeans(m, { colormap: 'viridis' });
    maybeWrite('class-means.png', png);
    const layout = classMeansLayout(H, W);
    const d = await decode(png);
    expect([d.width, d.height]).to.deep.equal([layout.width, layout.height]);
    expect([layout.panels.REAL.width, layout.panels.REAL.height]).to.deep.equal([256, 128]);
    const r = layout.panels.REAL;
    const f = layout.panels.FAKE;
    expect(lutIndexOf('viridis', d.at(r.x, r.y))).to.equal(255);
    // Shared scale: the FAKE peak (1 of max 4) is drawn at about a quarter.
    expect(lutIndexOf('viridis', d.at(f.x + f.width - 1, f.y + f.height - 1))).to.be.within(60, 68);
    // Colour bar: max colour at the top, min at the bottom.
    const bar = layout.colorBar;
    expect(d.at(bar.x + 4, bar.y)).to.deep.equal(colormapColor('viridis', 1));
    expect(d.at(bar.x + 4, bar.y + bar.height - 1)).to.deep.equal(colormapColor('viridis', 0));
    // Labels have ink.
    let ink = 0;
    for (const rect of [layout.labels.max, layout.labels.min]) {
      for (let y = rect.y; y < rect.y + rect.height; y++) for (let x = rect.x; x < rect.x + rect.width; x++) if (d.at(x, y)[0] < 128) ink++;
    }
    expect(ink).to.be.greaterThan(40);
  });
});

describe('gradcam render: input validation', () => {
  const image = makeImage();
  const map = new Float32Array(13 * 13);

  it('overlay / triptych reject bad sizes, alpha, scale, colormap and values', async () => {
    await expectReject(renderOverlay({ image, map: new Float32Array(100), width: 13, height: 13 }), /map has 100 values but height\*width = 13\*13 = 169/);
    await expectReject(renderOverlay({ image: new Uint8Array(100), map, width: 13, height: 13 }), /image has 100 bytes but 3\*imageHeight\*imageWidth = 3\*32\*32 = 3072/);
    await expectReject(renderOverlay({ image, map, width: 13, height: 13, alpha: 1.5 }), /alpha must be a number in \[0, 1\], got 1\.5/);
    await expectReject(renderOverlay({ image, map, width: 13, height: 13, alpha: -0.1 }), /alpha/);
    await expectReject(renderOverlay({ image, map, width: 13, height: 13, scale: 0 }), /scale must be an integer/);
    await expectReject(renderOverlay({ image, map, width: 13, height: 13, scale: 2.5 }), /scale must be an integer/);
    await expectReject(
      renderOverlay({ image, map, width: 13, height: 13, colormap: 'hot' as ColormapName }),
      /unknown colormap "hot"; valid colormaps: viridis, turbo, jet/,
    );
    const nan = new Float32Array(169);
    nan[20] = NaN;
    await expectReject(renderOverlay({ image, map: nan, width: 13, height: 13 }), /non-finite value \(NaN\) at index 20 \(row 1, col 7\)/);
    const neg = new Float32Array(169);
    neg[3] = -1;
    await expectReject(renderOverlay({ image, map: neg, width: 13, height: 13 }), /negative value/);
    await expectReject(renderOverlay({ image, map: [1, 2] as unknown as Float32Array, width: 2, height: 1 }), /map must be a Float32Array/);
    await expectReject(renderTriptych({ image, map, width: 13, height: 13, pReal: 1.2 }), /pReal must be a number in \[0, 1\]/);
    await expectReject(renderTriptych({ image, map, width: 13, height: 13, pReal: 0.5, label: 2 as 0 }), /label must be 0 \(FAKE\) or 1 \(REAL\)/);
    await expectReject(renderTriptych({ image, map, width: 13, height: 13, pReal: 0.5, textRenderer: 'ascii' as 'svg' }), /textRenderer/);
    await expectReject(renderTriptych({ image, map, width: 13, height: 13, pReal: 0.5, normalized: true }), /normalized is true but rawMax is missing/);
    await expectReject(renderOverlay({ image, map, width: 13, height: 13, vmax: 0 }), /vmax must be a finite number > 0/);
  });

  it('gallery, selection and class means reject bad inputs', async () => {
    await expectReject(renderGallery([]), /items is empty/);
    const good: GalleryItem = { image, map, width: 13, height: 13, pReal: 0.5 };
    await expectReject(renderGallery([good, { ...good, map: new Float32Array(5) }]), /items\[1\]\.map has 5 values/);
    await expectReject(renderGallery([good], { columns: 0 }), /columns must be an integer/);
    await expectReject(renderGallery([good], { alpha: 2 }), /alpha/);
    await expectReject(renderGallery([good, { ...good, image: makeImage(16, 16), imageWidth: 16, imageHeight: 16 }]), /share one size/);
    expect(() => selectGalleryItems([0.5, 1.5], [0, 1], 1)).to.throw(RangeError, /probs\[1\] must be a probability/);
    expect(() => selectGalleryItems([0.5, 0.5], [0, 1, 1], 1)).to.throw(RangeError, /labels has 3 entries but probs has 2/);
    expect(() => selectGalleryItems([0.5], [3], 1)).to.throw(RangeError, /labels\[0\] must be 0 \(FAKE\) or 1 \(REAL\)/);
    expect(() => selectGalleryItems([0.5], [1], -1)).to.throw(RangeError, /n must be a non-negative integer/);
    expect(() => classMeanMaps(new Float32Array(10), new Uint8Array(2), 2, 2)).to.throw(RangeError, /not a multiple of height\*width = 2\*2 = 4/);
    expect(() => classMeanMaps(new Float32Array(8), new Uint8Array(3), 2, 2)).to.throw(RangeError, /predicted has 3 labels but maps holds 2 maps of 2x2/);
    expect(() => classMeanMaps(new Float32Array(8), new Uint8Array([1, 2]), 2, 2)).to.throw(RangeError, /predicted\[1\] must be 0 \(FAKE\) or 1 \(REAL\)/);
    expect(() => resizeBilinear([1, 2, 3], 2, 2, 4, 4)).to.throw(RangeError, /src has 3 values but height\*width = 2\*2 = 4/);
    const m = classMeanMaps(new Float32Array(8), new Uint8Array([1, 0]), 2, 2);
    await expectReject(renderClassMeans(m, { colormap: 'gray' as ColormapName }), /valid colormaps: viridis, turbo, jet/);
    await expectReject(renderClassMeans({ ...m, REAL: new Float32Array(3) }), /means\.REAL has 3 values but height\*width = 2\*2 = 4/);
  });
});

// Grad-CAM figures of a run for its report: the gallery and class-mean maps of the test split (else
// validation), written to <runDir>/gradcam/ in the layout `cifake gradcam --data ... --out RUN/gradcam`
// uses (gallery.png, class-means.png, class-means.json, summary.json).
import fs from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { CAM_METHOD_NAMES } from '../gradcam/cam-methods';
import { explainDataset } from '../gradcam/explain';
import { GRADCAM_DIR, gradcamFolderFiles, writeGradcamFolder, type GradcamFolderFiles } from '../run';
import { readJsonIfExists } from '../util/json-file';
import { dataUri, el, fmtNumber, fmtPercent, h, raw, table, type Html } from './html';
import type { RunAssets, ScoreSplit } from './scores';
import { note, section } from './sections';

export { GRADCAM_DIR };

export interface ExplainRunOptions {
  /** At most this many images are explained, evenly spaced over the split (default 2000). */
  limit?: number;
  /** Images per gallery group (default 8). */
  sample?: number;
  threshold?: number;
}

export interface ExplainRunResult {
  split: ScoreSplit;
  /** Images explained (the class means are over these). */
  count: number;
  /** Images in the split. */
  of: number;
  files: GradcamFolderFiles;
}

/** Evenly spaced indices: all when n <= limit. */
export function evenlySpaced(n: number, limit: number): Uint32Array {
  if (n <= limit) return Uint32Array.from({ length: n }, (_, i) => i);
  return Uint32Array.from({ length: limit }, (_, k) => Math.floor((k * n) / limit));
}

/** Computes and saves the run's Grad-CAM gallery and class-mean maps; null when it has no test or validation images. */
export async function explainRun(assets: RunAssets, opts: ExplainRunOptions = {}): Promise<ExplainRunResult | null> {
  let split: ScoreSplit = 'test';
  let set = await assets.set('test');
  if (!set) {
    split = 'val';
    set = await assets.set('val');
  }
  if (!set || set.count === 0) return null;
  const limit = opts.limit ?? 2000;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`gradcamLimit must be an integer >= 1, got ${limit}`);
  const idx = evenlySpaced(set.count, limit);
  const plane = set.images.length / set.count;
  const images = new Uint8Array(idx.length * plane);
  idx.forEach((i, k) => images.set(set.images.subarray(i * plane, (i + 1) * plane), k * plane));
  const labels = Uint8Array.from(idx, (i) => set.labels[i]);
  const names = Array.from(idx, (i) => set.files[i]);
  const model = await assets.model();
  assets.log(`report: Grad-CAM of ${idx.length} ${split} images`);
  const d = await explainDataset(model, { images, labels, files: names }, { threshold: opts.threshold ?? 0.5, sample: opts.sample ?? 8 });
  const { files } = await writeGradcamFolder(path.join(assets.runDir, GRADCAM_DIR), d, {
    about: {
      checkpoint: assets.checkpoint,
      data: await assets.data(),
      split: split === 'val' ? 'validation' : split,
      subset: idx.length < set.count ? `${idx.length} of ${set.count} images, evenly spaced` : null,
    },
    trailer: { writtenBy: 'cifake report' },
  });
  return { split, count: idx.length, of: set.count, files };
}

// ---------------------------------------------------------------------------
// the report's Grad-CAM section

/** PNG files under `<runDir>/gradcam/` (two levels), galleries first, then class means, then the rest. */
export function findGradcamImages(runDir: string): string[] {
  const root = path.join(runDir, GRADCAM_DIR);
  if (!fs.existsSync(root)) return [];
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 2) walk(p, depth + 1);
      else if (e.isFile() && /\.png$/i.test(e.name)) found.push(p);
    }
  };
  walk(root, 0);
  const rank = (p: string) => (/gallery/i.test(path.basename(p)) ? 0 : /class[-_ ]?means?/i.test(path.basename(p)) ? 1 : 2);
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Images above this size are linked instead of embedded. */
const MAX_EMBED_BYTES = 8 * 2 ** 20;

interface GradcamSummaryFile {
  split?: string;
  subset?: string | null;
  count?: number;
  layer?: string;
  layerSize?: number;
  method?: string;
  target?: string;
  accuracy?: number | null;
  classMeanStats?: Record<'REAL' | 'FAKE', { count: number; centreShare: number; borderShare: number; peak: { row: number; col: number } }>;
}

/** What gradcam/summary.json (written by `cifake gradcam --data` or by this report) says, as a short table. */
function gradcamSummary(runDir: string, notes: string[]): Html | string {
  const s = readSummaryFile(runDir, notes);
  if (!s || !s.classMeanStats) return '';
  const method = CAM_METHOD_NAMES[s.method as keyof typeof CAM_METHOD_NAMES] ?? 'Grad-CAM';
  const head = `${method} at ${s.layer ?? '?'} (${s.layerSize ?? '?'}x${s.layerSize ?? '?'}), explaining the ${s.target === 'pred' || !s.target ? 'predicted class' : s.target.toUpperCase()}, on ${s.count ?? '?'} ${s.split ?? ''} images${s.subset ? ` (${s.subset})` : ''}.`;
  const rows = (['REAL', 'FAKE'] as const)
    .filter((k) => s.classMeanStats?.[k])
    .map((k) => {
      const c = s.classMeanStats![k];
      return [`predicted ${k}`, fmtNumber(c.count), fmtPercent(c.centreShare, 1), fmtPercent(c.borderShare, 1), `(${c.peak.row}, ${c.peak.col})`];
    });
  return raw(
    h(el('p', {}, head)) +
      h(table(['class mean', 'images', 'centre quarter (uniform 25%)', '4-px border (uniform 43.8%)', 'peak (row, col)'], rows)),
  );
}

export async function gradcamSection(runDir: string, out: string, notes: string[]): Promise<{ html: Html; files: string[] }> {
  const files = findGradcamImages(runDir);
  if (files.length === 0) {
    const msg = 'no Grad-CAM figures: the run directory has no gradcam/ PNGs (cifake gradcam --model RUN --data DATA --out RUN/gradcam renders them; so does this report unless told not to)';
    notes.push(msg);
    return { html: section('Grad-CAM', 'gradcam', note(msg)), files };
  }
  const figures: Html[] = [];
  for (const file of files) {
    const rel = path.relative(runDir, file);
    const bytes = fs.readFileSync(file);
    let meta: sharp.Metadata;
    try {
      meta = await sharp(bytes).metadata();
    } catch (e) {
      notes.push(`Grad-CAM image ${rel} is not a readable PNG: ${(e as Error).message}`);
      continue;
    }
    const title = path.basename(file, '.png').replace(/[-_]+/g, ' ');
    const link = path.relative(path.dirname(out), file);
    if (bytes.length > MAX_EMBED_BYTES) {
      figures.push(el('p', {}, `${title}: `, el('a', { href: link }, rel), ` (${(bytes.length / 2 ** 20).toFixed(1)} MiB, not embedded)`));
      continue;
    }
    figures.push(
      el(
        'figure',
        { class: 'gradcam', 'data-gradcam': rel, 'data-width': meta.width, 'data-height': meta.height },
        el('img', { src: dataUri('image/png', bytes), width: meta.width, height: meta.height, alt: `Grad-CAM: ${title}` }),
        el('figcaption', {}, `${title} (${rel}, ${meta.width}x${meta.height})`),
      ),
    );
  }
  return {
    html: section(
      'Grad-CAM',
      'gradcam',
      el('p', {}, 'Where the model looks: class-discriminative heat maps (warm = evidence for the explained class).'),
      gradcamSummary(runDir, notes),
      el('div', { class: 'figures' }, ...figures),
    ),
    files,
  };
}

function readSummaryFile(runDir: string, notes: string[]): GradcamSummaryFile | null {
  try {
    return readJsonIfExists<GradcamSummaryFile>(gradcamFolderFiles(path.join(runDir, GRADCAM_DIR)).summary);
  } catch (e) {
    notes.push((e as Error).message);
    return null;
  }
}

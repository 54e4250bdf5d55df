// Grad-CAM figures of a run for its report: the gallery and class-mean maps of the test split (else
// validation), written to <runDir>/gradcam/ in the layout `cifake gradcam --data ... --out RUN/gradcam`
// uses (gallery.png, class-means.png, class-means.json, summary.json).
import path from 'node:path';

import { explainDataset } from '../gradcam/explain';
import { GRADCAM_DIR, writeGradcamFolder, type GradcamFolderFiles } from '../run';
import type { RunAssets, ScoreSplit } from './scores';

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

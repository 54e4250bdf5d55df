// Evaluation of a trained model on a split of a dataset, optionally without listed files
// (e.g. CIFAKE's test/FAKE images that duplicate train images).
import fs from 'node:fs';

import { storedTemperature } from '../calibration';
import { loadSplit, type ImageSet, type ProgressCallback } from '../data';
import { resolveModelTarget } from '../pretrained';
import { computeMetrics, type MetricsReport } from '../metrics';
import { CifakeModel } from '../model';
import { resolveCheckpoint } from '../run';

export interface EvaluateOptions {
  data: string;
  split?: string;
  /** A text file of image paths (`split/class/file`, one per line, # comments) to report without. */
  excludeList?: string;
  threshold?: number;
  device?: string;
  threads?: number;
  batchSize?: number;
  /** Decoding options; default: those the model was trained with. */
  resize?: boolean;
  strict?: boolean;
  classMap?: Record<string, 0 | 1>;
  cacheDir?: string | false;
  /** Also return the per-image logits with file names and labels. */
  scores?: boolean;
  /**
   * Test-time augmentation: average each image's logit with its horizontal mirror's (for models
   * trained with flips, such as the -plus presets). Off by default; the paper protocol has none.
   */
  tta?: boolean;
  onProgress?: ProgressCallback & { stop?: () => void };
}

export interface EvaluateResult {
  checkpoint: string;
  data: string;
  split: string;
  tta: boolean;
  /** the logits were divided by this before the metrics (the checkpoint's calibration, as Classifier does) */
  temperature: number;
  metrics: MetricsReport;
  /** Present with excludeList: the same metrics without the listed images. */
  withoutExcluded?: { excluded: number; listed: number; metrics: MetricsReport };
  /** with `scores`: per-image logits, divided by the temperature */
  scores?: { files: string[]; labels: Uint8Array; logits: Float32Array };
}

/** `archive/test/FAKE/x.jpg` and `test/FAKE/x.jpg` name the same image: compare split/class/file. */
function imageKey(p: string): string {
  return p.replace(/\\/g, '/').split('/').filter(Boolean).slice(-3).join('/').toLowerCase();
}

export function readExcludeList(file: string): Set<string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read exclude list ${file}: ${(e as Error).message}`);
  }
  return new Set(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map(imageKey),
  );
}

/** Horizontal mirrors of N x 3 x 32 x 32 (CHW) images. */
export function hflipImages(images: Uint8Array, size = 32): Uint8Array {
  const out = new Uint8Array(images.length);
  for (let row = 0; row < images.length; row += size)
    for (let x = 0; x < size; x++) out[row + x] = images[row + size - 1 - x];
  return out;
}

export function excludedMask(set: ImageSet, excluded: Set<string>): Uint8Array {
  return Uint8Array.from(set.files, (f) => (excluded.has(imageKey(f)) ? 1 : 0));
}

export async function evaluate(target: string | undefined, opts: EvaluateOptions): Promise<EvaluateResult> {
  const checkpoint = resolveCheckpoint(resolveModelTarget(target));
  const split = opts.split ?? 'test';
  const excluded = opts.excludeList ? readExcludeList(opts.excludeList) : null;
  const trained = (CifakeModel.readMeta(checkpoint).config ?? {}) as { resize?: boolean; classMap?: Record<string, 0 | 1> | null };
  const set = await loadSplit(opts.data, {
    split,
    resize: opts.resize ?? trained.resize,
    strict: opts.strict,
    classMap: opts.classMap ?? trained.classMap ?? undefined,
    cacheDir: opts.cacheDir,
    onProgress: opts.onProgress,
  }).finally(() => opts.onProgress?.stop?.());
  const { model, meta } = await CifakeModel.load(checkpoint, { device: opts.device ?? 'auto', threads: opts.threads, withOptimizer: false });
  try {
    const threshold = opts.threshold ?? (meta.config as { threshold?: number } | undefined)?.threshold ?? 0.5;
    // the threshold is on the tempered P(REAL), as Classifier and predict apply it
    const temperature = storedTemperature(meta) ?? 1;
    const logits = await model.predictLogits(set.images, opts.batchSize ?? 1024);
    if (opts.tta) {
      const mirrored = await model.predictLogits(hflipImages(set.images), opts.batchSize ?? 1024);
      for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] + mirrored[i]) / 2;
    }
    if (temperature !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
    const result: EvaluateResult = {
      checkpoint,
      data: opts.data,
      split,
      tta: !!opts.tta,
      temperature,
      metrics: computeMetrics(logits, set.labels, { fromLogits: true, threshold }),
    };
    if (opts.scores) result.scores = { files: set.files, labels: set.labels, logits };
    if (excluded) {
      const mask = excludedMask(set, excluded);
      const keep = [...mask.keys()].filter((i) => mask[i] === 0);
      result.withoutExcluded = {
        excluded: set.count - keep.length,
        listed: excluded.size,
        metrics: computeMetrics(
          Float32Array.from(keep, (i) => logits[i]),
          Uint8Array.from(keep, (i) => set.labels[i]),
          { fromLogits: true, threshold },
        ),
      };
    }
    return result;
  } finally {
    model.dispose();
  }
}

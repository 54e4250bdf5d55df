/**
 * `cifake robustness`: loads a trained model and a labelled image set (a split of a CIFAKE zip or
 * folder, or any folder of images that all carry one known label: out-of-distribution checks such
 * as a user's own photos) and evaluates it under a perturbation suite.
 */
import fs from 'node:fs';
import path from 'node:path';

import { storedTemperature } from '../calibration';
import { decodeImages, limitIndices, loadSplit, subsetImageSet, DataError } from '../data';
import { FolderSource } from '../data/folder';
import { CifakeModel } from '../model';
import { resolveModelTarget } from '../pretrained';
import { isRunDir, resolveCheckpoint, RUN_FILES, writeRunRobustness } from '../run';
import { evaluateRobustness, type RobustnessReport, type RobustnessRow } from './evaluate';
import { DEFAULT_SUITE, parsePerturbation } from './perturb';

export interface RobustnessRunOptions {
  /** a CIFAKE zip or folder (with `split`), or with `label` a folder of images of one class */
  data: string;
  split?: string;
  /** every image under `data` has this label (an out-of-distribution set) */
  label?: 'REAL' | 'FAKE';
  /** perturbation specs; default DEFAULT_SUITE */
  suite?: readonly string[];
  /** at most this many images per class (a seeded, stratified choice) */
  limit?: number;
  seed?: number;
  threshold?: number;
  temperature?: number;
  resize?: boolean;
  cacheDir?: string | false;
  device?: string;
  threads?: number;
  onRow?: (row: RobustnessRow) => void;
  /** when the model is a run directory and the data a split, save the result as its robustness.json (default true) */
  saveToRun?: boolean;
}

export interface RobustnessRunResult extends RobustnessReport {
  checkpoint: string;
  data: string;
  split: string | null;
  label: 'REAL' | 'FAKE' | null;
  /** images that could not be read (folder mode) */
  skipped: { name: string; message: string }[];
  /** the run directory's robustness.json this result was saved to, if any */
  savedTo: string | null;
}

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif)$/i;

/** The image files under `dir` (recursively, symlinks followed, sorted), by extension. */
async function listImages(dir: string): Promise<string[]> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (e) {
    throw new DataError(`${dir}: cannot read the image folder (${(e as Error).message})`);
  }
  if (!stat.isDirectory()) throw new DataError(`${dir}: with a label, data must be a folder of images`);
  const out = (await new FolderSource(dir).walk('')).filter((f) => IMAGE_EXT.test(f.path)).map((f) => path.join(dir, ...f.path.split('/')));
  if (!out.length) throw new DataError(`${dir}: no images (.jpg, .png, .webp, ...) found`);
  return out;
}

async function loadLabelledFolder(dir: string, label: 'REAL' | 'FAKE', resize: boolean) {
  const files = await listImages(dir);
  const decoded = await decodeImages(files, { resize });
  if (!decoded.count) throw new DataError(`${dir}: none of the ${files.length} images could be decoded (first: ${decoded.errors[0]?.message})`);
  return {
    images: decoded.images,
    labels: new Uint8Array(decoded.count).fill(label === 'REAL' ? 1 : 0),
    skipped: decoded.errors.map((e) => ({ name: e.name, message: e.message })),
  };
}

export async function runRobustness(target: string | undefined, opts: RobustnessRunOptions): Promise<RobustnessRunResult> {
  const suite = opts.suite ?? DEFAULT_SUITE;
  for (const s of suite) parsePerturbation(s); // a bad spec fails before anything is loaded
  const checkpoint = resolveCheckpoint(resolveModelTarget(target));
  const meta = CifakeModel.readMeta(checkpoint);
  const trained = (meta.config ?? {}) as { resize?: boolean; threshold?: number };
  let images: Uint8Array, labels: Uint8Array, skipped: { name: string; message: string }[] = [];
  const split = opts.label ? null : (opts.split ?? 'test');
  if (opts.label) {
    ({ images, labels, skipped } = await loadLabelledFolder(opts.data, opts.label, opts.resize ?? true));
  } else {
    let set = await loadSplit(opts.data, { split: split!, resize: opts.resize ?? trained.resize, cacheDir: opts.cacheDir });
    if (opts.limit) set = subsetImageSet(set, limitIndices(set.labels, set.files, opts.limit, opts.seed ?? 0));
    ({ images, labels } = set);
  }
  const { model } = await CifakeModel.load(checkpoint, { device: opts.device ?? 'auto', threads: opts.threads, withOptimizer: false });
  try {
    const report = await evaluateRobustness(model, images, labels, {
      suite,
      seed: opts.seed ?? 0,
      threshold: opts.threshold ?? trained.threshold ?? 0.5,
      temperature: opts.temperature ?? storedTemperature(meta) ?? 1,
      onRow: opts.onRow,
    });
    const result: RobustnessRunResult = { checkpoint, data: opts.data, split, label: opts.label ?? null, skipped, ...report, savedTo: null };
    const runDir = target && split && (opts.saveToRun ?? true) && isRunDir(target) ? target : null;
    if (runDir) {
      result.savedTo = path.join(runDir, RUN_FILES.robustness);
      writeRunRobustness(runDir, result);
    }
    return result;
  } finally {
    model.dispose();
  }
}

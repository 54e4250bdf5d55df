// A Grad-CAM folder of a dataset split, as `cifake gradcam --data ... --out DIR` writes it and as a
// run's report keeps it in <runDir>/gradcam/: gallery.png, class-means.png, class-means.json and
// summary.json.
import fs from 'node:fs';
import path from 'node:path';

import { classMeansToJSON } from '../gradcam/classmeans';
import { datasetSummaryJSON, type DatasetExplanation } from '../gradcam/explain';
import { writeFileAtomic, writeJson } from '../util/json-file';
import { RUN_FILES } from './run-dir';

export const GRADCAM_DIR = RUN_FILES.gradcam;

export interface GradcamFolderFiles {
  gallery: string;
  classMeans: string;
  classMeansJson: string;
  summary: string;
}

export function gradcamFolderFiles(dir: string): GradcamFolderFiles {
  return {
    gallery: path.join(dir, 'gallery.png'),
    classMeans: path.join(dir, 'class-means.png'),
    classMeansJson: path.join(dir, 'class-means.json'),
    summary: path.join(dir, 'summary.json'),
  };
}

export interface GradcamFolderOptions {
  /** Re-encodes each PNG before it is written (e.g. to an 8-bit palette). */
  png?: (buf: Buffer) => Promise<Buffer>;
  /** Fields of summary.json before the explanation's own (checkpoint, data, split...). */
  about: Record<string, unknown>;
  /** Fields of summary.json after the file names (e.g. writtenBy). */
  trailer?: Record<string, unknown>;
}

/** Writes the folder (created); returns the summary written to summary.json. */
export async function writeGradcamFolder(dir: string, d: DatasetExplanation, opts: GradcamFolderOptions): Promise<Record<string, unknown> & { files: GradcamFolderFiles }> {
  fs.mkdirSync(dir, { recursive: true });
  const files = gradcamFolderFiles(dir);
  const png = opts.png ?? (async (b: Buffer) => b);
  writeFileAtomic(files.gallery, await png(d.gallery));
  writeFileAtomic(files.classMeans, await png(d.classMeansPng));
  const note = 'mean raw map (layer resolution) of the images predicted REAL / FAKE';
  writeJson(files.classMeansJson, { layer: d.layer, method: d.method, target: d.target, note, stats: d.classMeanStats, ...classMeansToJSON(d.classMeans) }, true);
  const summary = { ...opts.about, ...datasetSummaryJSON(d), files, ...opts.trailer };
  writeJson(files.summary, summary);
  return summary;
}

// ---------------------------------------------------------------------------
// Image files mode (`cifake gradcam --out DIR a.jpg b.png`): <stem>.gradcam.png per image and gradcam.json.

export const gradcamImagePng = (dir: string, stem: string): string => path.join(dir, `${stem}.gradcam.png`);

export function writeGradcamPng(file: string, png: Uint8Array): void {
  writeFileAtomic(file, png);
}

/** Writes <dir>/faithfulness.json (src/gradcam/faithfulness-run.ts's report); returns its path. */
export function writeFaithfulnessJson(dir: string, report: unknown): string {
  const file = path.join(dir, 'faithfulness.json');
  writeJson(file, report);
  return file;
}

/** Writes <dir>/gradcam.json (one line: the maps make it large); returns its path. */
export function writeGradcamJson(dir: string, doc: unknown): string {
  const file = path.join(dir, 'gradcam.json');
  writeJson(file, doc, true);
  return file;
}

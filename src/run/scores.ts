// scores-<split>.json: per-image logits of a run's final model (val and test), written by training
// (or by a report that computed them from the checkpoint), read by reports and error analysis.
import path from 'node:path';

import { readJson, writeJson } from '../util/json-file';
import { RUN_FILES } from './run-dir';

/** File names a run's scores may have, in order of preference. The first is the one written. */
export function scoreFileNames(split: string): string[] {
  return [RUN_FILES.scores(split), `${split}-scores.json`];
}

/** What a scores file holds. */
export interface ScoresFile {
  split: string;
  /** Image names relative to the data root. */
  files: string[];
  /** 0 = FAKE, 1 = REAL. */
  labels: number[];
  /** Logits, rounded to 1e-5. */
  logits: number[];
  /** Which checkpoint, when written by a report. */
  checkpoint?: string;
  writtenBy?: string;
}

/** Scores as read back: logits, or P(REAL) from files written by other tools (pReal / probs). */
export interface ScoresRead {
  file: string;
  labels: number[];
  logits: number[] | null;
  pReal: number[] | null;
  files: string[] | null;
}

const round5 = (z: number) => Math.round(z * 1e5) / 1e5;

/** Writes scores-<split>.json; returns its path. */
export function writeScores(
  runDir: string,
  split: string,
  set: { files: readonly string[]; labels: ArrayLike<number> },
  logits: ArrayLike<number>,
  extra: Pick<ScoresFile, 'checkpoint' | 'writtenBy'> = {},
): string {
  const file = path.join(runDir, scoreFileNames(split)[0]);
  const doc: ScoresFile = { split, files: [...set.files], labels: Array.from(set.labels), logits: Array.from(logits, round5), ...extra };
  writeJson(file, doc);
  return file;
}

/** Reads and checks one scores file (labels 0/1, one number per label); throws naming the file. */
export function readScoresFile(file: string): ScoresRead {
  const raw = readJson<Partial<ScoresFile> & { pReal?: number[]; probs?: number[] }>(file);
  const labels = raw?.labels;
  if (!Array.isArray(labels)) throw new Error(`${file}: no labels array`);
  const n = labels.length;
  const logits = Array.isArray(raw.logits) ? raw.logits : null;
  const pReal = Array.isArray(raw.pReal) ? raw.pReal : Array.isArray(raw.probs) ? raw.probs : null;
  const values = logits ?? pReal;
  if (!values) throw new Error(`${file}: neither logits nor pReal`);
  if (values.length !== n) throw new Error(`${file}: ${values.length} scores for ${n} labels`);
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`${file}: labels[${i}] is ${String(labels[i])}, not 0 or 1`);
    if (typeof values[i] !== 'number' || Number.isNaN(values[i])) throw new Error(`${file}: score ${i} is not a number`);
  }
  return { file, labels, logits, pReal: logits ? null : pReal, files: Array.isArray(raw.files) && raw.files.length === n ? raw.files : null };
}


// The run directory: runs/<name>/ with config.json, data.json, history.jsonl, metrics.json,
// last.pt / best.pt checkpoints and their JSON sidecars. Every write is atomic.
import fs from 'node:fs';
import path from 'node:path';

import { readConfigFile, validateConfig, type TrainConfig } from '../config';

export const RUN_FILES = {
  config: 'config.json',
  data: 'data.json',
  history: 'history.jsonl',
  metrics: 'metrics.json',
  last: 'last.pt',
  best: 'best.pt',
  /** Per-image logits of the final model: scores-val.json, scores-test.json. */
  scores: (split: string) => `scores-${split}.json`,
} as const;

/** Writes `text` beside `file`, fsyncs, then renames over it: readers never see half a file. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof text === 'string' ? Buffer.from(text) : text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

export function readJson<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

export function timestampName(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Creates runs/<name> (or runs/<timestamp>[-N]); an explicit name that exists is an error. */
export function createRunDir(outDir: string, name: string | null): string {
  fs.mkdirSync(outDir, { recursive: true });
  if (name) {
    const dir = path.join(outDir, name);
    if (fs.existsSync(dir))
      throw new Error(`run directory ${dir} already exists (choose another --name, or --resume ${dir} to continue it)`);
    fs.mkdirSync(dir);
    return dir;
  }
  const base = timestampName();
  for (let i = 0; ; i++) {
    const dir = path.join(outDir, i === 0 ? base : `${base}-${i}`);
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** Removes a run directory that holds no checkpoint yet (a run that failed or stopped before its first epoch ended). */
export function discardUnstartedRun(runDir: string): void {
  if (!fs.existsSync(path.join(runDir, RUN_FILES.last))) fs.rmSync(runDir, { recursive: true, force: true });
}

/** History lines of a run (one JSON object per epoch). */
export function readHistory<T>(runDir: string): T[] {
  const file = path.join(runDir, RUN_FILES.history);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

/** Rewrites the history atomically (used to append and, on resume, to drop epochs after the checkpoint). */
export function writeHistory(runDir: string, lines: unknown[]): void {
  writeFileAtomic(path.join(runDir, RUN_FILES.history), lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length ? '\n' : ''));
}

/**
 * A run directory or a checkpoint file -> the checkpoint to load: the model the run ended with
 * (best.pt when it restored the best weights, last.pt when it kept the last ones, as paper-cnn
 * does), so evaluating a run directory reproduces its metrics.json.
 */
export function resolveCheckpoint(target: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new Error(`model not found: ${target} (expected a run directory or a .pt checkpoint)`);
  }
  if (st.isFile()) return target;
  let order: string[] = [RUN_FILES.best, RUN_FILES.last];
  if (fs.existsSync(path.join(target, RUN_FILES.config))) {
    const es = readRunConfig(target).earlyStopping;
    if (!es || es.restoreBest === false) order = [RUN_FILES.last, RUN_FILES.best];
  }
  for (const f of order) {
    const p = path.join(target, f);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${target} holds no checkpoint (${RUN_FILES.best} or ${RUN_FILES.last})`);
}

/** A run's config.json, validated as train() validates a config: broken JSON and a wrong config are both a ConfigError naming the file. */
export function readRunConfig(runDir: string): TrainConfig {
  const file = path.join(runDir, RUN_FILES.config);
  return validateConfig(readConfigFile(file), file);
}

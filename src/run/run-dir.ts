// The run directory, runs/<name>/: its file names and a typed read/write pair for each file.
//   config.json   the validated TrainConfig          data.json    the data summaries of train / val
//   history.jsonl one EpochLog per epoch              metrics.json the RunSummary (final metrics)
//   last.pt, best.pt (+ JSON sidecars) checkpoints   scores-<split>.json (run/scores.ts)
//   gradcam/      Grad-CAM figures (run/gradcam.ts)
// Every write is atomic (src/util/json-file.ts).
import fs from 'node:fs';
import path from 'node:path';

import { readConfigFile, validateConfig, type TrainConfig } from '../config';
import type { DatasetSummary } from '../data';
import type { MetricsReport } from '../metrics';
import { readJsonIfExists, writeFileAtomic, writeJson } from '../util/json-file';

export const RUN_FILES = {
  config: 'config.json',
  data: 'data.json',
  history: 'history.jsonl',
  metrics: 'metrics.json',
  last: 'last.pt',
  best: 'best.pt',
  /** Per-image logits of the final model: scores-val.json, scores-test.json. */
  scores: (split: string) => `scores-${split}.json`,
  gradcam: 'gradcam',
  /** Temperature and Youden threshold fitted on validation, with ECE before/after (src/calibration/run.ts). */
  calibration: 'calibration.json',
  /** The last `cifake robustness` of the run on a split (src/robustness/run.ts's RobustnessRunResult). */
  robustness: 'robustness.json',
} as const;

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

// ---------------------------------------------------------------------------
// config.json, data.json

/**
 * A run's config.json, validated as train() validates a config: broken JSON and a wrong config are
 * both a ConfigError naming the file. `forThisMachine` (resuming: the run trains here) also checks
 * its threads against this machine's CPUs; reading a run trained elsewhere does not.
 */
export function readRunConfig(runDir: string, forThisMachine = false): TrainConfig {
  const file = path.join(runDir, RUN_FILES.config);
  return validateConfig(readConfigFile(file), { source: file, forThisMachine });
}

export function writeRunConfig(runDir: string, config: TrainConfig): void {
  writeJson(path.join(runDir, RUN_FILES.config), config);
}

/** data.json: what the train and validation splits held. */
export interface RunDataSummary {
  train?: DatasetSummary;
  val?: DatasetSummary;
}

export function readRunDataSummary(runDir: string): RunDataSummary | null {
  return readJsonIfExists<RunDataSummary>(path.join(runDir, RUN_FILES.data));
}

export function writeRunDataSummary(runDir: string, summary: RunDataSummary): void {
  writeJson(path.join(runDir, RUN_FILES.data), summary);
}

// ---------------------------------------------------------------------------
// history.jsonl

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

// ---------------------------------------------------------------------------
// metrics.json

export type StopReason = 'completed' | 'early-stopped';

/** What metrics.json holds: the run's outcome (train()'s RunResult without history and config). */
export interface RunSummary {
  runDir: string;
  epochsRun: number;
  bestEpoch: number;
  stopReason: StopReason;
  trainSeconds: number;
  device: string;
  parameters: number;
  /** Processes that trained together (1 unless data-parallel; absent in runs written before data-parallel training). */
  worldSize: number;
  metrics: { val: MetricsReport; test: MetricsReport | null };
}

/** metrics.json; null while the run is unfinished. */
export function readRunSummary(runDir: string): RunSummary | null {
  return readJsonIfExists<RunSummary>(path.join(runDir, RUN_FILES.metrics));
}

export function writeRunSummary(runDir: string, summary: RunSummary): void {
  writeJson(path.join(runDir, RUN_FILES.metrics), summary);
}

// ---------------------------------------------------------------------------
// checkpoints

/** Whether the run's final model is its best epoch's weights (restored) rather than its last ones. */
function restoredBest(config: Pick<TrainConfig, 'earlyStopping'>): boolean {
  return !!config.earlyStopping && config.earlyStopping.restoreBest !== false;
}

function firstCheckpoint(runDir: string, bestFirst: boolean): string {
  for (const f of bestFirst ? [RUN_FILES.best, RUN_FILES.last] : [RUN_FILES.last, RUN_FILES.best]) {
    const p = path.join(runDir, f);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${runDir} holds no checkpoint (${RUN_FILES.best} or ${RUN_FILES.last})`);
}

/**
 * The checkpoint a run ended with, whose predictions metrics.json reports: best.pt when it
 * restored the best weights, last.pt when it kept the last ones (as paper-cnn does).
 */
export function endCheckpoint(runDir: string, config: Pick<TrainConfig, 'earlyStopping'> = readRunConfig(runDir)): string {
  return firstCheckpoint(runDir, restoredBest(config));
}

/** A run directory: a directory with a config.json (false for anything else, or nothing there). */
export function isRunDir(target: string): boolean {
  try {
    return fs.statSync(target).isDirectory() && fs.existsSync(path.join(target, RUN_FILES.config));
  } catch {
    return false;
  }
}

/**
 * A run directory or a checkpoint file -> the checkpoint to load (a run directory: the one it
 * ended with, so evaluating it reproduces its metrics.json; best.pt first without a config.json).
 */
export function resolveCheckpoint(target: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new Error(`model not found: ${target} (expected a run directory or a .pt checkpoint)`);
  }
  if (st.isFile()) return target;
  return firstCheckpoint(target, isRunDir(target) ? restoredBest(readRunConfig(target)) : true);
}

/** calibration.json: what calibrateRun fitted and measured (its shape is src/calibration/run.ts's RunCalibration). */
export function writeRunCalibration(runDir: string, calibration: object): void {
  writeJson(path.join(runDir, RUN_FILES.calibration), calibration);
}

export function readRunCalibration<T>(runDir: string): T | null {
  return readJsonIfExists<T>(path.join(runDir, RUN_FILES.calibration));
}

/** robustness.json: the run's last robustness evaluation on a split (the report charts it). */
export function writeRunRobustness(runDir: string, report: object): void {
  writeJson(path.join(runDir, RUN_FILES.robustness), report);
}

export function readRunRobustness<T>(runDir: string): T | null {
  return readJsonIfExists<T>(path.join(runDir, RUN_FILES.robustness));
}

// A sweep folder's leaderboard: leaderboard.json (the Leaderboard below) and leaderboard.csv (the
// same rows, one line each), rewritten after every trial. The sweep ranks the rows (src/sweep/);
// reports read the JSON back (src/report/sweep.ts, leniently, to show leaderboards of other tools too).
import path from 'node:path';

import type { Extractor } from '../sweep/grid';
import { readJsonIfExists, writeFileAtomic, writeJson } from '../util/json-file';

export const LEADERBOARD_FILES = { json: 'leaderboard.json', csv: 'leaderboard.csv' } as const;

export const SWEEP_METRICS = ['val_acc', 'test_acc', 'val_auc', 'f1'] as const;
/**
 * Ranking metric: val_acc = validation accuracy (default; does not look at the test split),
 * test_acc = test accuracy, val_auc = validation ROC-AUC, f1 = test F1 of class REAL. All are
 * "higher is better"; a trial without the value (failed, or no test split) ranks last.
 */
export type SweepMetric = (typeof SWEEP_METRICS)[number];

export function isSweepMetric(s: unknown): s is SweepMetric {
  return typeof s === 'string' && (SWEEP_METRICS as readonly string[]).includes(s);
}

export type TrialStatus = 'done' | 'failed' | 'interrupted' | 'pending';

export interface LeaderboardRow {
  /** 1-based rank by the metric; null without a value */
  rank: number | null;
  trial: string;
  /** paper grid: 1 (feature extractors) or 2 (dense heads); user grids: null */
  stage: 1 | 2 | null;
  status: TrialStatus;
  /** the trial had finished in an earlier invocation and was not retrained */
  skipped: boolean;
  /** axis path -> value */
  params: Record<string, unknown>;
  family: string | null;
  convFilters: number[] | null;
  dense: number[] | null;
  parameters: number | null;
  /** epochs trained */
  epochs: number | null;
  bestEpoch: number | null;
  valAcc: number | null;
  valAuc: number | null;
  valF1Real: number | null;
  testAcc: number | null;
  /** F1 of class REAL on the test split */
  testF1Real: number | null;
  testAuc: number | null;
  trainSeconds: number | null;
  /** value of the ranking metric */
  metric: number | null;
  threads: number | null;
  runDir: string | null;
  error: string | null;
}

export interface StageSelection {
  metric: SweepMetric;
  /** best finished stage-1 trial (null when none finished) */
  best: { trial: string; extractor: Extractor; value: number | null } | null;
  paper: Extractor;
  /** the extractor stage 2 uses (null: stage 2 not run) */
  used: Extractor | null;
  source: 'best' | 'paper' | null;
  /** whether the best stage-1 extractor is the paper's 2 x 32 (null when there is no best) */
  matchesPaper: boolean | null;
  note: string;
}

export interface Leaderboard {
  sweep: string;
  sweepDir: string;
  grid: 'paper' | 'user';
  metric: SweepMetric;
  generatedAt: string;
  selection: StageSelection | null;
  counts: Record<TrialStatus, number>;
  rows: LeaderboardRow[];
}

const CSV_COLUMNS = [
  'rank',
  'trial',
  'stage',
  'status',
  'family',
  'conv_filters',
  'dense',
  'parameters',
  'epochs',
  'best_epoch',
  'val_acc',
  'val_auc',
  'val_f1_real',
  'test_acc',
  'test_f1_real',
  'test_auc',
  'train_seconds',
  'metric',
  'metric_value',
  'threads',
  'params',
  'run_dir',
  'error',
] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV (RFC 4180, header row); arrays and params as JSON, empty cells for missing values. */
export function leaderboardCsv(lb: Leaderboard): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of lb.rows) {
    const values: unknown[] = [
      r.rank,
      r.trial,
      r.stage,
      r.status,
      r.family,
      r.convFilters,
      r.dense,
      r.parameters,
      r.epochs,
      r.bestEpoch,
      r.valAcc,
      r.valAuc,
      r.valF1Real,
      r.testAcc,
      r.testF1Real,
      r.testAuc,
      r.trainSeconds,
      lb.metric,
      r.metric,
      r.threads,
      r.params,
      r.runDir,
      r.error,
    ];
    lines.push(values.map(csvCell).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** Writes leaderboard.json and leaderboard.csv into the sweep folder. */
export function writeLeaderboard(sweepDir: string, lb: Leaderboard): void {
  writeFileAtomic(path.join(sweepDir, LEADERBOARD_FILES.csv), leaderboardCsv(lb));
  writeJson(path.join(sweepDir, LEADERBOARD_FILES.json), lb);
}

/** leaderboard.json as parsed JSON (any shape: reports also read other tools' leaderboards); null when absent. */
export function readLeaderboardFile(dir: string): { file: string; raw: unknown } | null {
  const file = path.join(dir, LEADERBOARD_FILES.json);
  const raw = readJsonIfExists<unknown>(file);
  return raw === null ? null : { file, raw };
}

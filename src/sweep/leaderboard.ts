// The sweep leaderboard: one row per trial, sorted by the chosen metric; a terminal table, CSV, JSON.
import type { MetricsReport } from '../metrics';
import type { Extractor } from './grid';

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

/** What metrics.json of a run holds (RunResult without history and config). */
export interface RunSummary {
  runDir: string;
  epochsRun: number;
  bestEpoch: number;
  stopReason: string;
  trainSeconds: number;
  device: string;
  parameters: number;
  metrics: { val: MetricsReport; test: MetricsReport | null };
}

export function metricValue(s: Pick<RunSummary, 'metrics'>, metric: SweepMetric): number | null {
  const { val, test } = s.metrics;
  switch (metric) {
    case 'val_acc':
      return val.accuracy;
    case 'val_auc':
      return val.rocAuc;
    case 'test_acc':
      return test?.accuracy ?? null;
    case 'f1':
      return test?.f1.REAL ?? null;
  }
}

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

/**
 * Sorts by metric (descending; rows without a value last); ties go to the smaller model (fewer
 * parameters), then stage, then trial name. Sets the ranks. The paper grid's stage-1 selection
 * is the first finished stage-1 row of this order.
 */
export function rankRows(rows: LeaderboardRow[]): LeaderboardRow[] {
  const sorted = [...rows].sort((a, b) => {
    const av = a.metric ?? -Infinity;
    const bv = b.metric ?? -Infinity;
    if (av !== bv) return bv - av;
    const ap = a.parameters ?? Infinity;
    const bp = b.parameters ?? Infinity;
    if (ap !== bp) return ap - bp;
    const as = a.stage ?? 0;
    const bs = b.stage ?? 0;
    if (as !== bs) return as - bs;
    return a.trial < b.trial ? -1 : a.trial > b.trial ? 1 : 0;
  });
  let rank = 0;
  for (const r of sorted) r.rank = r.metric === null ? null : ++rank;
  return sorted;
}

export function countStatuses(rows: LeaderboardRow[]): Record<TrialStatus, number> {
  const c: Record<TrialStatus, number> = { done: 0, failed: 0, interrupted: 0, pending: 0 };
  for (const r of rows) c[r.status]++;
  return c;
}

// ---------------------------------------------------------------------------
// formatting

/** `2x32` for a uniform stack, `16-32` otherwise, `none` for no layers. */
export function layersLabel(l: number[] | null): string {
  if (l === null) return '-';
  if (l.length === 0) return 'none';
  return l.every((x) => x === l[0]) ? `${l.length}x${l[0]}` : l.join('-');
}

export function stageLabel(stage: 1 | 2 | null): string {
  return stage === 1 ? '1 extractor' : stage === 2 ? '2 head' : '-';
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)}%`);
const dec = (x: number | null) => (x === null ? '-' : x.toFixed(4));

function compactCount(n: number | null): string {
  if (n === null) return '-';
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)}k`;
  return `${(n / 1e6).toFixed(2)}M`;
}

export function formatSeconds(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

const METRIC_LABEL: Record<SweepMetric, string> = { val_acc: 'val acc', test_acc: 'test acc', val_auc: 'val AUC', f1: 'F1 REAL' };

/**
 * The terminal table (plain text, aligned), the selection note and the failed trials' errors.
 * `train time` is the time spent in training epochs (metrics.json trainSeconds), without data
 * loading and evaluation; F1 REAL and the AUCs are on the test split where named so.
 */
export function formatLeaderboard(lb: Leaderboard): string {
  const head = ['#', 'trial', 'stage', 'conv', 'dense', 'params', 'ep', 'val acc', 'val AUC', 'test acc', 'F1 REAL', 'test AUC', 'train time', 'status'];
  const right = new Set([0, 5, 6, 7, 8, 9, 10, 11, 12]);
  const rows = lb.rows.map((r) => [
    r.rank === null ? '-' : String(r.rank),
    r.trial,
    stageLabel(r.stage),
    layersLabel(r.convFilters),
    layersLabel(r.dense),
    compactCount(r.parameters),
    r.epochs === null ? '-' : String(r.epochs),
    pct(r.valAcc),
    dec(r.valAuc),
    pct(r.testAcc),
    dec(r.testF1Real),
    dec(r.testAuc),
    formatSeconds(r.trainSeconds),
    r.status + (r.skipped ? ' (earlier)' : ''),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const c = lb.counts;
  const out = [
    `sweep ${lb.sweep} (${lb.sweepDir}): ${lb.rows.length} trials, ${c.done} done, ${c.failed} failed` +
      (c.interrupted ? `, ${c.interrupted} interrupted` : '') +
      (c.pending ? `, ${c.pending} pending` : '') +
      `; ranked by ${METRIC_LABEL[lb.metric]} (${lb.metric})`,
  ];
  if (lb.selection) out.push(lb.selection.note);
  out.push('', line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
  const failed = lb.rows.filter((r) => r.error);
  if (failed.length) {
    out.push('', 'errors:');
    for (const r of failed) out.push(`  ${r.trial}: ${(r.error ?? '').split('\n').join(' | ')}`);
  }
  return out.join('\n');
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

// The sweep leaderboard: ranking rows by the chosen metric, and the terminal table. The file
// formats (leaderboard.json / .csv) live in src/run/leaderboard.ts.
import type { RunSummary } from '../run/run-dir';
import type { LeaderboardRow, SweepMetric, TrialStatus } from '../run/leaderboard';
import { type Leaderboard } from '../run/leaderboard';

export { SWEEP_METRICS, isSweepMetric, leaderboardCsv } from '../run/leaderboard';
export type { Leaderboard, LeaderboardRow, StageSelection, SweepMetric, TrialStatus } from '../run/leaderboard';
export type { RunSummary } from '../run/run-dir';

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

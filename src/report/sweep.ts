// A sweep folder's leaderboard.json, read leniently: an array of rows (or { rows | entries |
// leaderboard | runs: [...] }), each a flat or nested object. Parameters, accuracy, a name, a model
// family and a run directory are found by name; what a row lacks is taken from its run directory's
// metrics.json / config.json when it names one.
import fs from 'node:fs';
import path from 'node:path';

import { LEADERBOARD_FILES, readLeaderboardFile, readRunConfig, readRunSummary, RUN_FILES, type RunSummary } from '../run';

export const LEADERBOARD_FILE = LEADERBOARD_FILES.json;

export type Scalar = string | number | boolean | null;

/** A row as a report shows it (the sweep's own rows are src/run/leaderboard.ts's LeaderboardRow). */
export interface LeaderboardTableRow {
  name: string;
  /** The row's scalar fields, flattened to dotted keys. */
  values: Record<string, Scalar>;
  parameters: number | null;
  testAccuracy: number | null;
  valAccuracy: number | null;
  group: string;
  /** Absolute run directory, when the row names one that exists. */
  runDir: string | null;
  /** The row's own rank, when it has one. */
  rank: number | null;
}

/** A leaderboard.json of any shape, as a table. */
export interface LeaderboardTable {
  file: string;
  rows: LeaderboardTableRow[];
  /** The metric the sweep ranked by, when the file says ('val_acc', 'test_acc', ...). */
  metric: string | null;
  /** Columns of the table (dotted keys), in first-seen order. */
  columns: string[];
  notes: string[];
}

/** Flattens nested objects to dotted keys; arrays of scalars become short JSON strings, deeper things are dropped. */
export function flatten(value: unknown, prefix = '', out: Record<string, Scalar> = {}, depth = 0): Record<string, Scalar> {
  if (value === null || typeof value !== 'object') {
    if (prefix) out[prefix] = value === undefined ? null : (value as Scalar);
    return out;
  }
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object') && prefix) {
      const s = JSON.stringify(value);
      if (s.length <= 60) out[prefix] = s;
    }
    return out;
  }
  if (depth > 4) return out;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out, depth + 1);
  return out;
}

function findKey(flat: Record<string, Scalar>, patterns: RegExp[], kind: 'number' | 'string'): string | null {
  for (const re of patterns) {
    for (const [k, v] of Object.entries(flat)) {
      if (!re.test(k)) continue;
      if (kind === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeof v === 'string' && v !== '') return k;
    }
  }
  return null;
}

const TEST_ACC = [/^(metrics\.)?test\.accuracy$/i, /^test[._]?acc(uracy)?$/i, /(^|\.)test\b.*\bacc(uracy)?$/i, /test.*acc/i];
const VAL_ACC = [/^(metrics\.)?val(idation)?\.accuracy$/i, /^val(idation)?[._]?acc(uracy)?$/i, /(^|\.)val(idation)?\b.*\bacc(uracy)?$/i, /val.*acc/i];
const ANY_ACC = [/^accuracy$/i, /(^|\.)acc(uracy)?$/i];
const PARAMS = [/^parameters$/i, /^params$/i, /(^|\.)param(eter)?s$/i, /param/i];
const NAME = [/^name$/i, /^run[._]?name$/i, /^run$/i, /^id$/i, /^label$/i, /^trial$/i];
const RUN_DIR = [/^run[._]?dir$/i, /^dir$/i, /^path$/i, /^run$/i];
const GROUP = [/^(config\.)?model\.family$/i, /^family$/i, /^model$/i, /^preset$/i];
const RANK = [/^rank$/i];
const STAGE = [/^stage$/i];
/** Columns not worth a table column (details that metrics.json keeps). */
const NOISY = /confusion|notes|support|matrix|\.(tn|fp|fn|tp)$|\.(precision|recall|f1)\.|classFolders|cache|betas/i;
const MAX_COLUMNS = 14;

function num(flat: Record<string, Scalar>, patterns: RegExp[]): number | null {
  const k = findKey(flat, patterns, 'number');
  return k === null ? null : (flat[k] as number);
}

function resolveRunDir(sweepDir: string, p: string): string | null {
  for (const candidate of [path.resolve(sweepDir, p), path.resolve(p)]) {
    if (fs.existsSync(path.join(candidate, RUN_FILES.metrics)) || fs.existsSync(path.join(candidate, RUN_FILES.config))) return candidate;
  }
  return null;
}

function rowsOf(raw: unknown): unknown[] | null {
  if (Array.isArray(raw)) return raw;
  if (raw && typeof raw === 'object') {
    for (const k of ['rows', 'entries', 'leaderboard', 'runs', 'results', 'trials']) {
      const v = (raw as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v;
    }
  }
  return null;
}

/** Reads `<dir>/leaderboard.json`; null when the folder has none. */
export function readLeaderboard(dir: string): LeaderboardTable | null {
  const found = readLeaderboardFile(dir);
  if (!found) return null;
  const { file, raw } = found;
  const list = rowsOf(raw);
  if (!list) throw new Error(`${file}: expected an array of runs (or an object with a rows/entries/leaderboard/runs array)`);
  const notes: string[] = [];
  const seen: string[] = [];
  /** Keys shown in the table's fixed columns (name, model, parameters, accuracies, run dir, rank). */
  const shown = new Set<string>();
  const rows: LeaderboardTableRow[] = [];
  list.forEach((item, i) => {
    if (!item || typeof item !== 'object') {
      notes.push(`leaderboard row ${i + 1} is not an object; skipped`);
      return;
    }
    const flat = flatten(item);
    for (const k of Object.keys(flat)) if (!seen.includes(k) && !NOISY.test(k)) seen.push(k);
    const mark = (k: string | null) => k !== null && shown.add(k);
    const dirKey = findKey(flat, RUN_DIR, 'string');
    mark(dirKey);
    mark(findKey(flat, PARAMS, 'number'));
    mark(findKey(flat, TEST_ACC, 'number'));
    mark(findKey(flat, VAL_ACC, 'number'));
    mark(findKey(flat, GROUP, 'string'));
    mark(findKey(flat, NAME, 'string'));
    const rankKey = findKey(flat, RANK, 'number');
    mark(rankKey);
    const runDir = dirKey ? resolveRunDir(dir, flat[dirKey] as string) : null;
    let parameters = num(flat, PARAMS);
    let testAccuracy = num(flat, TEST_ACC);
    let valAccuracy = num(flat, VAL_ACC);
    if (testAccuracy === null && valAccuracy === null) testAccuracy = num(flat, ANY_ACC);
    let group = (() => {
      const k = findKey(flat, GROUP, 'string');
      return k ? String(flat[k]) : null;
    })();
    if (runDir && (parameters === null || (testAccuracy === null && valAccuracy === null) || group === null)) {
      try {
        const m = readRunSummary(runDir) as Partial<RunSummary> | null;
        parameters ??= typeof m?.parameters === 'number' ? m.parameters : null;
        testAccuracy ??= typeof m?.metrics?.test?.accuracy === 'number' ? m.metrics.test.accuracy : null;
        valAccuracy ??= typeof m?.metrics?.val?.accuracy === 'number' ? m.metrics.val.accuracy : null;
      } catch {
        /* a run still training has no metrics.json yet */
      }
      if (group === null && fs.existsSync(path.join(runDir, RUN_FILES.config))) {
        group = readRunConfig(runDir).model.family;
      }
    }
    const nameKey = findKey(flat, NAME, 'string');
    const name = nameKey ? String(flat[nameKey]) : runDir ? path.basename(runDir) : dirKey ? path.basename(String(flat[dirKey])) : `run ${i + 1}`;
    rows.push({ name, values: flat, parameters, testAccuracy, valAccuracy, group: group ?? 'run', runDir, rank: rankKey ? (flat[rankKey] as number) : null });
  });
  // one model family for all: group by stage instead, when rows have stages
  if (new Set(rows.map((r) => r.group)).size === 1) {
    const stages = rows.map((r) => {
      const k = findKey(r.values, STAGE, 'number');
      return k ? `stage ${r.values[k]}` : null;
    });
    if (stages.every((s) => s !== null) && new Set(stages).size > 1) rows.forEach((r, i) => (r.group = `${r.group}, ${stages[i]}`));
  }
  const columns = seen.filter((k) => !shown.has(k) && rows.some((r) => r.values[k] !== null && r.values[k] !== undefined)).slice(0, MAX_COLUMNS);
  const metric = raw && typeof raw === 'object' && typeof (raw as { metric?: unknown }).metric === 'string' ? (raw as { metric: string }).metric : null;
  return { file, rows, columns, notes, metric };
}

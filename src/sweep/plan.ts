// Planning a sweep: its options and events, the sweep folder's identity (sweep.json), and the
// trials it would run (configs resolved, finished ones checked against the plan). Writes nothing
// but sweep.json (claimSweepDir). Running them: run.ts.
import fs from 'node:fs';
import path from 'node:path';

import { ConfigError, describeConfig, resolveConfig, type TrainConfig } from '../config';
import { prepare } from '../data';
import { availableCpus } from '../native';
import { LEADERBOARD_FILES, readRunConfig, readRunSummary, resolveData, RUN_FILES, writeLeaderboard, writeRunConfig, type RunSummary } from '../run';
import { train, TrainingInterrupted, type EpochLog } from '../train/fit';
import { readJson, writeJson } from '../util/json-file';
import { packageVersion } from '../version';
import { canonicalJson } from '../util/canonical-json';
import {
  defaultSweepName,
  extractorLabel,
  GridError,
  isValidSweepName,
  loadGridFile,
  paperGridSpec,
  paperStage1,
  paperStage2,
  PAPER_EXTRACTOR,
  expandGrid,
  type Extractor,
  type GridSpec,
  type TrialSpec,
} from './grid';
import {
  countStatuses,
  isSweepMetric,
  metricValue,
  rankRows,
  SWEEP_METRICS,
  type Leaderboard,
  type LeaderboardRow,
  type StageSelection,
  type SweepMetric,
  type TrialStatus,
} from './leaderboard';

export const SWEEP_FILES = {
  spec: 'sweep.json',
  trials: 'trials.jsonl',
  csv: LEADERBOARD_FILES.csv,
  json: LEADERBOARD_FILES.json,
} as const;

/** Sweep-wide settings applied over every trial's base (the CLI flags). `undefined` = not set. */
export interface SweepSettings {
  data?: string | null;
  limit?: number | null;
  epochs?: number | null;
  seed?: number;
  device?: string;
}

export interface SweepOptions {
  /** 'paper', a grid file (.json / .yaml / .yml), or a parsed grid */
  grid: 'paper' | string | GridSpec;
  settings?: SweepSettings;
  /** parent of the sweep folder (default runs/sweeps) */
  outDir?: string;
  /** sweep folder name (default: the grid's name plus -limitN / -epN / -seedN) */
  name?: string;
  /** trials at once (default 1) */
  parallel?: number;
  /** ranking metric and the paper grid's stage-1 selection criterion (default val_acc) */
  metric?: SweepMetric;
  /** paper grid: stage 2 on the paper's 2 x 32 extractor instead of our stage-1 best */
  paperExtractor?: boolean;
  /** paper grid: run stage 1, stage 2 (stage 1 must be finished unless paperExtractor) or both */
  stage?: 1 | 2 | 'all';
  /**
   * Run only the trials whose names match one of these patterns (`*` any characters, `?` one):
   * e.g. ['s1-conv*x32']. The others are neither run nor listed (finished ones still are).
   */
  only?: string[];
  /** CPUs to divide among parallel trials (default: all available to the process) */
  cpus?: number;
  /** aborting stops the running trials after their current batch (their checkpoints are kept) and starts no more */
  signal?: AbortSignal;
  onEvent?: (e: SweepEvent) => void;
}

export type SweepEvent =
  | { event: 'log'; message: string; trial?: string }
  | { event: 'trial-start'; trial: string; stage: 1 | 2 | null; index: number; total: number; threads: number; resume: boolean; config: string }
  | ({ event: 'epoch'; trial: string; epochs: number } & EpochLog)
  | {
      event: 'trial-end';
      trial: string;
      stage: 1 | 2 | null;
      status: TrialStatus | 'skipped';
      metric: number | null;
      seconds: number;
      error?: string;
    }
  | { event: 'selection'; selection: StageSelection };

/** A trial with its resolved config (or the reason it has none). */
export interface PlannedTrial extends TrialSpec {
  config: TrainConfig | null;
  configError: string | null;
  runDir: string;
}

/** What a sweep is, resolved from its options. */
interface SweepBasics {
  sweep: string;
  sweepDir: string;
  grid: GridSpec;
  metric: SweepMetric;
  parallel: number;
  threads: number;
  settings: SweepSettings;
}

export interface SweepPlan extends SweepBasics {
  /** the trials of this invocation, in run order (paper grid: stage 2 only when its extractor is known) */
  trials: PlannedTrial[];
  /** paper grid: the extractor of stage 2 when it is known before running (null: decided after stage 1, or no stage 2) */
  stage2: { extractor: Extractor; source: 'paper' | 'best' } | null;
  notes: string[];
}

export interface SweepResult {
  sweep: string;
  sweepDir: string;
  leaderboard: Leaderboard;
  selection: StageSelection | null;
  /** what happened to each trial of this invocation */
  outcomes: { trial: string; status: TrialStatus | 'skipped'; error?: string }[];
  interrupted: boolean;
}

// ---------------------------------------------------------------------------
// helpers

/** fields that differ between runs of the same trial without changing it */
const VOLATILE = ['threads', 'outDir', 'name'] as const;

export function comparable(c: Record<string, unknown>): string {
  const o = { ...c };
  for (const k of VOLATILE) delete o[k];
  return canonicalJson(o);
}

export function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !(VOLATILE as readonly string[]).includes(k) && canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

export function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.trim();
}

export function errorText(e: unknown): string {
  if (e instanceof ConfigError) return e.issues.map((i) => `${i.path || '(config)'}: ${i.message}`).join('; ');
  return firstLine(e);
}

export const readSummary = (runDir: string): RunSummary | null => readRunSummary(runDir);

function resolveGrid(grid: SweepOptions['grid']): GridSpec {
  if (grid === 'paper') return paperGridSpec();
  if (typeof grid === 'string') return loadGridFile(grid);
  return grid;
}

export function settingsLayer(s: SweepSettings): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const k of ['data', 'limit', 'epochs', 'seed', 'device'] as const) if (s[k] !== undefined) o[k] = s[k];
  return o;
}

/** dotted paths of a nested layer's leaves (objects recurse, everything else is a leaf) */
function leafPaths(o: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...leafPaths(v as Record<string, unknown>, p));
    else out.push(p);
  }
  return out;
}

/** Stage-1 best by `metric`: the first finished stage-1 trial in leaderboard order (ties: fewer parameters). */
export function selectBest(stage1: PlannedTrial[], metric: SweepMetric): { trial: PlannedTrial; value: number | null } | null {
  const done = stage1.filter((t) => fs.existsSync(path.join(t.runDir, RUN_FILES.metrics)));
  const ranked = rankRows(done.map((t) => rowOf(t, t.runDir, 'done', metric)));
  if (ranked.length === 0) return null;
  const trial = done.find((t) => t.name === ranked[0].trial) as PlannedTrial;
  return { trial, value: ranked[0].metric };
}

// ---------------------------------------------------------------------------
// planning

export interface Context extends SweepBasics {
  notes: string[];
}

export function makeContext(opts: SweepOptions): Context {
  const grid = resolveGrid(opts.grid);
  const metric = opts.metric ?? 'val_acc';
  if (!isSweepMetric(metric)) throw new GridError(`unknown metric ${JSON.stringify(metric)} (allowed: ${SWEEP_METRICS.join(', ')})`);
  const settings: SweepSettings = { ...(opts.settings ?? {}) };
  if (typeof settings.data === 'string') settings.data = path.resolve(settings.data);
  const axisPaths = grid.axes.map((a) => a.path);
  for (const k of Object.keys(settingsLayer(settings)))
    for (const p of axisPaths)
      if (p === k || p.startsWith(`${k}.`)) throw new GridError(`--${k} sets a field that is an axis of the grid (${p}); drop one of them`);
  if (grid.kind === 'user' && typeof grid.base.data === 'string' && settings.data === undefined) settings.data = path.resolve(grid.base.data);
  const name = opts.name ?? defaultSweepName(grid, { limit: settings.limit, epochs: settings.epochs, seed: settings.seed });
  if (!isValidSweepName(name)) throw new GridError(`invalid sweep name ${JSON.stringify(name)} (1-100 characters from A-Z a-z 0-9 . _ -)`);
  const cpus = Math.max(1, Math.floor(opts.cpus ?? availableCpus()));
  const requested = opts.parallel ?? 1;
  if (!(Number.isInteger(requested) && requested >= 1)) throw new GridError(`--parallel must be an integer >= 1, got ${requested}`);
  const notes: string[] = [];
  const parallel = Math.min(requested, cpus);
  if (parallel < requested) notes.push(`--parallel ${requested} capped at ${parallel}: only ${cpus} CPUs (trials would oversubscribe them)`);
  const threads = Math.max(1, Math.floor(cpus / parallel));
  const outDir = opts.outDir ?? path.join('runs', 'sweeps');
  return { sweep: name, sweepDir: path.join(outDir, name), grid, metric, parallel, threads, settings, notes };
}

function planTrial(ctx: Context, spec: TrialSpec): PlannedTrial {
  const runDir = path.join(ctx.sweepDir, spec.name);
  const layer = settingsLayer(ctx.settings);
  let config: TrainConfig | null = null;
  let configError: string | null = null;
  try {
    const resolved = resolveConfig({
      preset: ctx.grid.preset,
      file: ctx.grid.base,
      overrides: mergeLayers(layer, spec.overrides),
    });
    const threads = Math.min(resolved.threads ?? ctx.threads, ctx.threads);
    config = { ...resolved, outDir: ctx.sweepDir, name: spec.name, threads };
  } catch (e) {
    configError = errorText(e);
  }
  return { ...spec, config, configError, runDir };
}

/** two override layers into one (the second wins; nested objects merge) */
function mergeLayers(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(a);
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (cur && typeof cur === 'object' && !Array.isArray(cur) && v && typeof v === 'object' && !Array.isArray(v))
      out[k] = mergeLayers(cur as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = structuredClone(v);
  }
  return out;
}

/** Refuses finished trials whose config differs from the plan's (a different sweep in this folder). */
export function checkFinished(trials: PlannedTrial[]): void {
  const issues: { path: string; message: string }[] = [];
  for (const t of trials) {
    if (!t.config) continue;
    if (!fs.existsSync(path.join(t.runDir, RUN_FILES.metrics)) || !fs.existsSync(path.join(t.runDir, RUN_FILES.config))) continue;
    const old = readRunConfig(t.runDir) as unknown as Record<string, unknown>;
    const want = t.config as unknown as Record<string, unknown>;
    if (comparable(old) !== comparable(want)) {
      issues.push({ path: t.name, message: `finished with a different config (${diffKeys(old, want).join(', ')}) than this sweep asks for` });
    }
  }
  if (issues.length) {
    issues.push({ path: '', message: 'use another --name (or --out-dir) for a sweep with other settings' });
    throw new GridError(issues);
  }
}

function sweepIdentity(ctx: Context) {
  const { data, limit, epochs, seed, device } = ctx.settings;
  return {
    kind: ctx.grid.kind,
    preset: ctx.grid.preset,
    base: ctx.grid.base,
    axes: ctx.grid.axes,
    settings: { data: data ?? null, limit: limit ?? null, epochs: epochs ?? null, seed: seed ?? null, device: device ?? null },
  };
}

/** Writes sweep.json on the first run; later runs must describe the same sweep. */
export function claimSweepDir(ctx: Context): void {
  fs.mkdirSync(ctx.sweepDir, { recursive: true });
  const file = path.join(ctx.sweepDir, SWEEP_FILES.spec);
  const identity = sweepIdentity(ctx);
  if (fs.existsSync(file)) {
    const old = readJson<{ identity?: Record<string, unknown> }>(file);
    const oldId = (old.identity ?? {}) as Record<string, unknown>;
    const now = identity as unknown as Record<string, unknown>;
    const differ = [...new Set([...Object.keys(oldId), ...Object.keys(now)])].filter((k) => canonicalJson(oldId[k]) !== canonicalJson(now[k]));
    if (differ.length) {
      const details = differ.map((k) => `${k}: was ${canonicalJson(oldId[k])}, now ${canonicalJson(now[k])}`);
      throw new GridError(`${ctx.sweepDir} holds a different sweep (${details.join('; ')}); use another --name or --out-dir`);
    }
    return;
  }
  writeJson(file, {
    format: 'cifake-sweep',
    version: 1,
    name: ctx.sweep,
    created: new Date().toISOString(),
    cifakeTorch: packageVersion(),
    grid: { kind: ctx.grid.kind, source: ctx.grid.source ?? null, description: ctx.grid.description ?? null },
    identity,
  });
}

/**
 * Resolves what a sweep would run (stage 2 of the paper grid only when its extractor is known:
 * --paper-extractor, or stage 1 finished in the folder). Writes nothing.
 */
export function planSweep(opts: SweepOptions): SweepPlan {
  const ctx = makeContext(opts);
  const p = planTrials(ctx, opts);
  return { ...ctx, trials: p.trials, stage2: p.known };
}

export interface Planned {
  trials: PlannedTrial[];
  stage1: PlannedTrial[];
  stage2: (e: Extractor) => PlannedTrial[];
  known: SweepPlan['stage2'];
}

/** `only` patterns -> a name predicate (no patterns: everything) */
export function trialFilter(only: string[] | undefined): (name: string) => boolean {
  const pats = (only ?? []).map((p) => p.trim()).filter(Boolean);
  if (pats.length === 0) return () => true;
  const res = pats.map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  return (name) => res.some((r) => r.test(name));
}

export function planTrials(ctx: Context, opts: SweepOptions): Planned {
  const keep = trialFilter(opts.only);
  const stage2 = (e: Extractor) => paperStage2(e).filter((s) => keep(s.name)).map((s) => planTrial(ctx, s));
  if (ctx.grid.kind === 'user') {
    const all = expandGrid(ctx.grid);
    const trials = all.filter((s) => keep(s.name)).map((s) => planTrial(ctx, s));
    if (trials.length === 0 && opts.only?.length) throw new GridError(`--only ${opts.only.join(',')} matches no trial (trials: ${all.map((t) => t.name).join(', ')})`);
    return { trials, stage1: [], stage2, known: null };
  }
  const stage = opts.stage ?? 'all';
  const stage1 = paperStage1().map((s) => planTrial(ctx, s));
  const trials: PlannedTrial[] = stage === 2 ? [] : stage1.filter((t) => keep(t.name));
  let known: SweepPlan['stage2'] = null;
  if (stage !== 1) {
    if (opts.paperExtractor) known = { extractor: { ...PAPER_EXTRACTOR }, source: 'paper' };
    else {
      const best = selectBest(stage1, ctx.metric);
      if (best && stage1.every((t) => fs.existsSync(path.join(t.runDir, RUN_FILES.metrics)))) known = { extractor: best.trial.extractor as Extractor, source: 'best' };
    }
    if (known) trials.push(...stage2(known.extractor));
  }
  return { trials, stage1, stage2, known };
}

// ---------------------------------------------------------------------------
// running

/** A leaderboard row from the trial's run directory (its config.json, else the planned config). */
export function rowOf(
  t: Pick<TrialSpec, 'name' | 'stage' | 'params'> & { config?: TrainConfig | null },
  runDir: string,
  status: TrialStatus,
  metric: SweepMetric,
  extra: Partial<LeaderboardRow> = {},
): LeaderboardRow {
  const s = status === 'done' ? readSummary(runDir) : null;
  let config: TrainConfig | null = t.config ?? null;
  try {
    if (fs.existsSync(path.join(runDir, RUN_FILES.config))) config = readRunConfig(runDir);
  } catch {
    // keep the planned config
  }
  return {
    rank: null,
    trial: t.name,
    stage: t.stage,
    status,
    skipped: false,
    params: t.params,
    family: config?.model.family ?? null,
    convFilters: config?.model.convFilters ?? null,
    dense: config?.model.dense ?? null,
    parameters: s?.parameters ?? null,
    epochs: s?.epochsRun ?? null,
    bestEpoch: s?.bestEpoch ?? null,
    valAcc: s?.metrics.val.accuracy ?? null,
    valAuc: s?.metrics.val.rocAuc ?? null,
    valF1Real: s?.metrics.val.f1.REAL ?? null,
    testAcc: s?.metrics.test?.accuracy ?? null,
    testF1Real: s?.metrics.test?.f1.REAL ?? null,
    testAuc: s?.metrics.test?.rocAuc ?? null,
    trainSeconds: s?.trainSeconds ?? null,
    metric: s ? metricValue(s, metric) : null,
    threads: config?.threads ?? null,
    runDir: fs.existsSync(runDir) ? runDir : null,
    error: null,
    ...extra,
  };
}

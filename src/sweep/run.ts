/**
 * Running a sweep: every trial is a normal run directory inside the sweep folder.
 *
 *   <outDir>/<sweep>/
 *     sweep.json          what the sweep is (grid, preset, base, sweep-wide settings); a re-run
 *                         with other settings into the same folder is refused
 *     trials.jsonl        one line per trial outcome, appended (done / skipped / failed / interrupted,
 *                         with the error message of failed trials)
 *     leaderboard.csv     rewritten after every trial
 *     leaderboard.json
 *     <trial>/            config.json, history.jsonl, metrics.json, best.pt, last.pt ... (see src/run/run-dir.ts)
 *
 * Resuming: a trial whose directory has metrics.json is finished and is not retrained (its
 * config.json must match, else the sweep refuses to start); one with a checkpoint (last.pt) but no
 * metrics.json was interrupted and continues from that checkpoint; one without a checkpoint
 * (it failed before its first epoch) is started afresh. Failed trials are retried by a re-run.
 *
 * Seeds: every trial uses the base config's seed (same initialisation stream, same data split and
 * batch order across trials), as the paper's protocol compares topologies under one seed.
 *
 * Parallelism: `parallel` trials run at once in this process (each CifakeModel trains on its own
 * native worker thread), each with threads = floor(cpus / parallel) (at least 1, and at most the
 * base config's `threads`); `parallel` is capped at the number of CPUs, so the CPU is never
 * oversubscribed. On CUDA the trials share the device the config names (`device`); scheduling
 * one trial per GPU is not implemented yet.
 */
import fs from 'node:fs';
import path from 'node:path';

import { describeConfig, resolveConfig, type TrainConfig } from '../config';
import { prepare } from '../data';
import { readRunConfig, resolveData, RUN_FILES, writeLeaderboard, writeRunConfig } from '../run';
import { train, TrainingInterrupted } from '../train/fit';
import { extractorLabel, PAPER_EXTRACTOR, type Extractor, type TrialSpec } from './grid';
import { countStatuses, metricValue, rankRows, type Leaderboard, type LeaderboardRow, type StageSelection, type SweepMetric, type TrialStatus } from './leaderboard';
import {
  checkFinished,
  claimSweepDir,
  comparable,
  diffKeys,
  errorText,
  firstLine,
  makeContext,
  planTrials,
  readSummary,
  rowOf,
  selectBest,
  settingsLayer,
  SWEEP_FILES,
  type Context,
  type Planned,
  type PlannedTrial,
  type SweepEvent,
  type SweepOptions,
  type SweepResult,
} from './plan';

export { planSweep, SWEEP_FILES, trialFilter } from './plan';
export type { PlannedTrial, SweepEvent, SweepOptions, SweepPlan, SweepResult, SweepSettings } from './plan';

interface TrialRecord {
  time: string;
  trial: string;
  stage: 1 | 2 | null;
  params: Record<string, unknown>;
  status: TrialStatus | 'skipped';
  runDir: string;
  seconds?: number;
  threads?: number | null;
  metric?: { name: SweepMetric; value: number | null };
  error?: string;
}

/** The last record of each trial in trials.jsonl. */
export function readTrialRecords(sweepDir: string): Map<string, TrialRecord> {
  const file = path.join(sweepDir, SWEEP_FILES.trials);
  const out = new Map<string, TrialRecord>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as TrialRecord;
      out.set(r.trial, r);
    } catch {
      // a torn last line of a killed process: ignore
    }
  }
  return out;
}

/** files a failed-before-its-first-epoch trial may leave (safe to remove for a fresh start) */
const DISPOSABLE = new Set<string>([RUN_FILES.config, RUN_FILES.data, RUN_FILES.history]);

/** One invocation of a sweep: its leaderboard rows, outcomes and the trials it runs. */
class SweepRun {
  readonly outcomes: SweepResult['outcomes'] = [];
  readonly rows = new Map<string, LeaderboardRow>();
  selection: StageSelection | null = null;
  interrupted = false;

  constructor(
    readonly ctx: Context,
    readonly opts: SweepOptions,
  ) {
    // rows of trials finished in earlier invocations that this one does not plan (other stage-2 extractors, --stage 1 re-runs)
    for (const r of readTrialRecords(ctx.sweepDir).values()) {
      const dir = path.join(ctx.sweepDir, r.trial);
      if (fs.existsSync(path.join(dir, RUN_FILES.metrics)))
        this.rows.set(r.trial, rowOf({ name: r.trial, stage: r.stage, params: r.params }, dir, 'done', ctx.metric, { skipped: true }));
    }
  }

  emit(e: SweepEvent): void {
    this.opts.onEvent?.(e);
  }

  log(message: string, trial?: string): void {
    this.emit({ event: 'log', message, ...(trial ? { trial } : {}) });
  }

  writeBoard(): Leaderboard {
    const { ctx } = this;
    const ranked = rankRows([...this.rows.values()]);
    const lb: Leaderboard = {
      sweep: ctx.sweep,
      sweepDir: ctx.sweepDir,
      grid: ctx.grid.kind,
      metric: ctx.metric,
      generatedAt: new Date().toISOString(),
      selection: this.selection,
      counts: countStatuses(ranked),
      rows: ranked,
    };
    writeLeaderboard(ctx.sweepDir, lb);
    return lb;
  }

  /** Appends the trial's outcome to trials.jsonl. */
  record(t: PlannedTrial, status: TrialRecord['status'], extra: Partial<TrialRecord> = {}): void {
    const s = status === 'done' || status === 'skipped' ? readSummary(t.runDir) : null;
    const rec: TrialRecord = {
      time: new Date().toISOString(),
      trial: t.name,
      stage: t.stage,
      params: t.params,
      status,
      runDir: t.runDir,
      threads: t.config?.threads ?? null,
      ...(s ? { metric: { name: this.ctx.metric, value: metricValue(s, this.ctx.metric) } } : {}),
      ...extra,
    };
    fs.appendFileSync(path.join(this.ctx.sweepDir, SWEEP_FILES.trials), `${JSON.stringify(rec)}\n`);
  }

  /** A trial's end: outcome, trials.jsonl, its leaderboard row, the leaderboard files and the event. */
  end(t: PlannedTrial, t0: number, status: TrialStatus | 'skipped', error?: string): void {
    const seconds = (Date.now() - t0) / 1000;
    const s = status === 'done' || status === 'skipped' ? readSummary(t.runDir) : null;
    const metric = s ? metricValue(s, this.ctx.metric) : null;
    this.outcomes.push({ trial: t.name, status, ...(error ? { error } : {}) });
    this.record(t, status, { seconds, ...(error ? { error } : {}) });
    const rowStatus: TrialStatus = status === 'skipped' ? 'done' : status;
    this.rows.set(t.name, rowOf(t, t.runDir, rowStatus, this.ctx.metric, { skipped: status === 'skipped', error: error ?? null }));
    this.writeBoard();
    this.emit({ event: 'trial-end', trial: t.name, stage: t.stage, status, metric, seconds, ...(error ? { error } : {}) });
  }

  /**
   * What an existing trial directory means: an unfinished run to resume (its config must match),
   * leftovers of a failed start (removed), or something else (an error message).
   */
  existingDir(t: PlannedTrial & { config: TrainConfig }): { resume: boolean; error?: string } {
    if (!fs.existsSync(t.runDir)) return { resume: false };
    const entries = fs.readdirSync(t.runDir);
    if (entries.includes(RUN_FILES.last) && entries.includes(RUN_FILES.config)) {
      const old = readRunConfig(t.runDir);
      const [a, b] = [old as unknown as Record<string, unknown>, t.config as unknown as Record<string, unknown>];
      if (comparable(a) !== comparable(b)) return { resume: false, error: `${t.runDir} holds an unfinished run with another config (${diffKeys(a, b).join(', ')}); remove it to retrain` };
      writeRunConfig(t.runDir, { ...old, threads: t.config.threads }); // this invocation's thread budget
      return { resume: true };
    }
    if (entries.every((e) => DISPOSABLE.has(e) || /\.tmp-\d+$/.test(e))) {
      fs.rmSync(t.runDir, { recursive: true, force: true });
      return { resume: false };
    }
    return { resume: false, error: `${t.runDir} exists with unexpected files (${entries.join(', ')}) and no checkpoint; remove it to retrain` };
  }

  async runOne(t: PlannedTrial, index: number, total: number): Promise<void> {
    const t0 = Date.now();
    if (!t.config) return this.end(t, t0, 'failed', `invalid config: ${t.configError}`);
    if (fs.existsSync(path.join(t.runDir, RUN_FILES.metrics))) return this.end(t, t0, 'skipped');
    if (this.opts.signal?.aborted) {
      this.rows.set(t.name, rowOf(t, t.runDir, 'pending', this.ctx.metric));
      return;
    }
    const config = t.config;
    const { resume, error } = this.existingDir({ ...t, config });
    if (error) return this.end(t, t0, 'failed', error);
    this.emit({ event: 'trial-start', trial: t.name, stage: t.stage, index, total, threads: config.threads as number, resume, config: describeConfig(config) });
    try {
      await train(config, {
        resume: resume ? t.runDir : undefined,
        signal: this.opts.signal,
        onLog: (m) => this.log(m, t.name),
        onEpochEnd: (e) => this.emit({ event: 'epoch', trial: t.name, epochs: config.epochs, ...e }),
      });
      this.end(t, t0, 'done');
    } catch (e) {
      if (e instanceof TrainingInterrupted) {
        this.interrupted = true;
        this.end(t, t0, 'interrupted', firstLine(e));
      } else this.end(t, t0, 'failed', errorText(e));
    }
  }

  /** Runs `trials`, ctx.parallel at a time. */
  async runAll(trials: PlannedTrial[]): Promise<void> {
    checkFinished(trials);
    for (const t of trials) if (!this.rows.has(t.name)) this.rows.set(t.name, rowOf(t, t.runDir, 'pending', this.ctx.metric));
    await warmCache(this.ctx, trials, (m) => this.log(m));
    let next = 0;
    const worker = async () => {
      while (next < trials.length) {
        const i = next++;
        await this.runOne(trials[i], i + 1, trials.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.ctx.parallel, trials.length) }, worker));
    if (this.opts.signal?.aborted) this.interrupted = true;
  }

  /** The paper grid: stage 1, the selection of its best extractor, then stage 2 on it. */
  async runPaper(planned: Planned): Promise<void> {
    const { ctx, opts } = this;
    const stage = opts.stage ?? 'all';
    const stage1 = planned.stage1;
    if (stage !== 2) {
      this.log(`stage 1: ${stage1.length} feature extractors (conv 1-3 layers x 16-128 filters, no dense layers)`);
      await this.runAll(stage1.filter((t) => planned.trials.includes(t)));
    }
    const best = selectBest(stage1, ctx.metric);
    const finished = stage1.filter((t) => fs.existsSync(path.join(t.runDir, RUN_FILES.metrics))).length;
    this.selection = makeSelection(ctx.metric, best, !!opts.paperExtractor, stage, finished === stage1.length, this.interrupted, finished);
    this.emit({ event: 'selection', selection: this.selection });
    this.log(this.selection.note);
    if (stage !== 1 && this.selection.used && !this.interrupted) {
      const trials = planned.stage2(this.selection.used);
      this.log(`stage 2: ${trials.length} dense heads (1-3 layers x 32-4096 units) on the ${extractorLabel(this.selection.used)} extractor`);
      await this.runAll(trials);
    }
  }
}

/** One data path for every trial (the demo set is generated once, not by each trial). */
async function sharedData(ctx: Context, log: (m: string) => void): Promise<void> {
  if (ctx.settings.data !== undefined && ctx.settings.data !== null) return;
  let base: TrainConfig | null = null;
  try {
    base = resolveConfig({ preset: ctx.grid.preset, file: ctx.grid.base, overrides: settingsLayer(ctx.settings) });
  } catch {
    base = null; // an invalid base: the trials report it
  }
  if (base && !base.data) ctx.settings.data = await resolveData(base, log);
}

/**
 * Runs a sweep (see the module comment). Resolves when every trial of this invocation finished or
 * failed (or the signal aborted it); failures are in the leaderboard, not thrown. Throws
 * GridError for an invalid grid / options or a sweep folder that holds another sweep.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const ctx = makeContext(opts);
  const log = (message: string) => opts.onEvent?.({ event: 'log', message });
  for (const n of ctx.notes) log(n);
  claimSweepDir(ctx);
  await sharedData(ctx, log);
  const planned = planTrials(ctx, opts);
  checkFinished(ctx.grid.kind === 'paper' ? [...planned.stage1, ...planned.trials] : planned.trials);
  const run = new SweepRun(ctx, opts);
  if (ctx.grid.kind === 'user') await run.runAll(planned.trials);
  else await run.runPaper(planned);
  return { sweep: ctx.sweep, sweepDir: ctx.sweepDir, leaderboard: run.writeBoard(), selection: run.selection, outcomes: run.outcomes, interrupted: run.interrupted };
}

function makeSelection(
  metric: SweepMetric,
  best: ReturnType<typeof selectBest>,
  paperExtractor: boolean,
  stage: 1 | 2 | 'all',
  allStage1: boolean,
  interrupted: boolean,
  finished: number,
): StageSelection {
  const paper = { ...PAPER_EXTRACTOR };
  const b = best ? { trial: best.trial.name, extractor: best.trial.extractor as Extractor, value: best.value } : null;
  const matchesPaper = b ? b.extractor.layers === paper.layers && b.extractor.filters === paper.filters : null;
  const valueText = b?.value === null || b?.value === undefined ? 'n/a' : b.value.toFixed(4);
  let note = b
    ? allStage1
      ? `stage 1 best extractor by ${metric}: ${extractorLabel(b.extractor)} (${b.trial}, ${valueText}); ` +
        (matchesPaper ? 'the same as the paper (2x32)' : 'the paper found 2x32: ours differs')
      : `stage 1 (partial: ${finished} of 12 extractors finished) best so far by ${metric}: ${extractorLabel(b.extractor)} (${b.trial}, ${valueText}); the paper found 2x32`
    : 'stage 1: no finished extractor trial';
  let used: Extractor | null = null;
  let source: StageSelection['source'] = null;
  if (stage === 1) note += '; stage 2 not run (--stage 1)';
  else if (interrupted) note += '; stage 2 not run (interrupted)';
  else if (paperExtractor) {
    used = paper;
    source = 'paper';
    note += '; stage 2 uses the paper extractor 2x32 (--paper-extractor)';
  } else if (b && allStage1) {
    used = b.extractor;
    source = 'best';
    note += `; stage 2 uses ${extractorLabel(b.extractor)}${matchesPaper ? '' : ' (--paper-extractor to use 2x32)'}`;
  } else if (b) {
    note += '; stage 2 not run: not every stage-1 trial finished (re-run to retry the failed ones, or --paper-extractor)';
  } else {
    note += '; stage 2 not run (or --paper-extractor)';
  }
  return { metric, best: b, paper, used, source, matchesPaper, note };
}

/** Decodes the splits the trials need into the cache once, so parallel trials do not each decode them. */
async function warmCache(ctx: Context, trials: PlannedTrial[], log: (m: string) => void): Promise<void> {
  const todo = trials.filter((t) => t.config && !fs.existsSync(path.join(t.runDir, RUN_FILES.metrics)));
  const data = ctx.settings.data;
  if (todo.length === 0 || !data) return;
  const splits = ['test'];
  if (todo.some((t) => t.config?.limit === null)) splits.unshift('train');
  for (const split of splits) {
    try {
      await prepare(data, { splits: [split] });
    } catch (e) {
      log(`cache warm-up of the ${split} split skipped: ${firstLine(e).split('\n')[0]}`);
    }
  }
}

// `writeReport(dir)`: the HTML report of a run directory (or of a sweep folder with leaderboard.json)
// plus its charts as PNG files next to it. Charts are Vega-Lite specs rendered headless by vega to
// SVG (embedded as data URIs) and by sharp to PNG; nothing in the page loads from elsewhere.
import fs from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import type { TrainConfig } from '../config';
import type { DatasetSummary } from '../data';
import { computeMetrics, rocAuc, rocCurve, type MetricsReport } from '../metrics';
import { CifakeModel } from '../model';
import type { EpochLog } from '../train/fit';
import { endCheckpoint, GRADCAM_DIR, isRunDir, gradcamFolderFiles, readHistory, readRunCalibration, readRunConfig, readRunDataSummary, readRunRobustness, readRunSummary, RUN_FILES, type RunDataSummary, type RunSummary } from '../run';
import type { RunCalibration } from '../calibration/run';
import type { RobustnessRunResult } from '../robustness/run';
import { readJsonIfExists, writeFileAtomic } from '../util/json-file';
import { packageVersion } from '../version';
import { confusionSpec, learningCurvesSpec, perClassSpec, reliabilitySpec, robustnessSpec, rocSpec, scoreHistogramSpec, sweepSpec, type RocSeries } from './charts';
import { dataUri, el, fmtNumber, fmtPercent, fmtSeconds, h, kvTable, page, raw, table, type Html } from './html';
import { chartVersions, renderChart, type ChartSpec } from './render';
import { explainRun, findGradcamImages, gradcamSection } from './gradcam';
import { cards, note, num, runPageBody, section, SPLIT_LABEL, type RunView } from './sections';
import { computeRunScores, readRunScores, RunAssets, type ScoreSplit, type SplitScores } from './scores';
import { flatten, readLeaderboard, type LeaderboardTable } from './sweep';

export interface ReportOptions {
  /** HTML file to write (default `<dir>/report.html`); the PNG figures go next to it as `<stem>-<chart>.png`. */
  out?: string;
  /**
   * When the run has no scores file for val/test, load its checkpoint and data to compute them
   * (needed for the ROC curve and the score histogram). Default true.
   */
  computeScores?: boolean;
  /** Save computed scores as `scores-<split>.json` in the run directory (default true). */
  writeScores?: boolean;
  /** Data path for computing scores, instead of the one the run recorded. */
  data?: string;
  /** Device and CPU threads for computing scores (default auto / all). */
  device?: string;
  threads?: number;
  /**
   * When the run directory has no gradcam/ PNGs, compute the Grad-CAM gallery and class-mean maps
   * of the test split (else validation) with its checkpoint and save them there (gradcam/). Default true.
   */
  gradcam?: boolean;
  /** At most this many images are explained for the Grad-CAM figures (evenly spaced; default 2000). */
  gradcamLimit?: number;
  /** Pixel ratio of the PNG figures (default 2). */
  scale?: number;
  /** Progress notes (computing scores, files written). */
  onLog?: (message: string) => void;
}

export interface ReportFigure {
  /** learning-curves | confusion | roc | per-class | scores | sweep */
  id: string;
  title: string;
  /** The PNG written next to the report. */
  png: string;
  /** Size of the chart in CSS pixels (the SVG in the page). */
  width: number;
  height: number;
  /** Size of the PNG in pixels. */
  pngWidth: number;
  pngHeight: number;
}

export interface ReportResult {
  kind: 'run' | 'sweep';
  /** The HTML file written. */
  html: string;
  figures: ReportFigure[];
  /** Grad-CAM images embedded from the run directory. */
  gradcam: string[];
  /** Where each split's per-image scores came from. */
  scores: Partial<Record<ScoreSplit, 'run' | 'computed'>>;
  /** What the report could not show, and why. */
  notes: string[];
}

/** metrics.json: the RunResult without history and config. */
export type { RunSummary };


/** A chart to render: its spec and where it goes. */
interface PendingFigure {
  id: string;
  title: string;
  caption?: string;
  spec: ChartSpec;
}

interface RenderedFigure extends ReportFigure {
  html: Html;
}

async function renderFigures(pending: PendingFigure[], out: string, scale: number, notes: string[]): Promise<RenderedFigure[]> {
  const dir = path.dirname(out);
  const stem = path.basename(out).replace(/\.html?$/i, '');
  const result: RenderedFigure[] = [];
  for (const f of pending) {
    let r;
    try {
      r = await renderChart(f.spec, scale);
    } catch (e) {
      notes.push(`the ${f.title.toLowerCase()} chart failed to render: ${(e as Error).message}`);
      continue;
    }
    for (const w of r.warnings) notes.push(`${f.id} chart: ${w}`);
    const png = path.join(dir, `${stem}-${f.id}.png`);
    writeFileAtomic(png, r.png);
    const width = Math.round(r.width);
    const height = Math.round(r.height);
    const html = el(
      'figure',
      { class: 'chart', id: `fig-${f.id}`, 'data-chart': f.id, 'data-width': width, 'data-height': height },
      el('img', { src: dataUri('image/svg+xml', r.svg), width, height, alt: f.title }),
      el('figcaption', {}, f.caption ? `${f.caption} ` : '', 'PNG: ', el('a', { href: path.basename(png) }, path.basename(png))),
    );
    result.push({ id: f.id, title: f.title, png, width, height, pngWidth: r.pngWidth, pngHeight: r.pngHeight, html });
  }
  return result;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
const isCalibration = (c: RunCalibration) =>
  typeof c.temperature === 'number' && typeof c.youdenThreshold === 'number' && isObject(c.val) && Array.isArray(c.val.reliabilityBefore) && (c.test === null || isObject(c.test));
const isRobustness = (r: RobustnessRunResult) =>
  Array.isArray(r.rows) && r.rows.every((x) => isObject(x) && typeof x.perturbation === 'string') && isObject(r.flipConsistency) && typeof r.threshold === 'number' && typeof r.temperature === 'number';

/** `value` when it has the shape the report reads, else an error naming the file. */
function checked<T>(value: T | null, file: string, ok: (v: T) => boolean): T | null {
  if (value !== null && !(isObject(value) && ok(value))) throw new Error(`${file} does not have the fields the report reads (written by another version?): left out`);
  return value;
}

function readOptional<T>(read: () => T | null, notes: string[]): T | null {
  try {
    return read();
  } catch (e) {
    notes.push((e as Error).message);
    return null;
  }
}

function operatingPoint(s: SplitScores, threshold: number): RocSeries['point'] {
  const m = computeMetrics(s.logits ?? s.pReal, s.labels, { fromLogits: s.logits !== null, threshold });
  const c = m.confusion;
  if (c.tn + c.fp === 0 || c.tp + c.fn === 0) return undefined;
  return { fpr: c.fp / (c.fp + c.tn), tpr: c.tp / (c.tp + c.fn), threshold };
}

/** The run's per-image scores: its files, else computed from the checkpoint (which also serves Grad-CAM). */
async function gatherScores(
  base: Pick<RunView, 'runDir' | 'config' | 'summary' | 'dataSummary' | 'notes'>,
  opts: ReportOptions,
  explain: boolean,
): Promise<{ scores: RunView['scores']; testSummary: DatasetSummary | null; assets: RunAssets | null }> {
  const { runDir, config, summary, notes } = base;
  const { scores, problems } = readRunScores(runDir);
  notes.push(...problems);
  const wanted: ScoreSplit[] = summary ? (['val', 'test'] as ScoreSplit[]).filter((s) => !scores[s] && (s === 'val' || summary.metrics.test)) : [];
  let assets: RunAssets | null = null;
  if (summary && (wanted.length || explain)) {
    try {
      assets = new RunAssets(runDir, config, base.dataSummary, { data: opts.data, device: opts.device, threads: opts.threads, onLog: opts.onLog });
    } catch (e) {
      notes.push(`the model cannot be loaded: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  let testSummary: DatasetSummary | null = null;
  if (wanted.length && assets && (opts.computeScores ?? true)) {
    try {
      const computed = await computeRunScores(assets, wanted, opts.writeScores ?? true);
      Object.assign(scores, computed.scores);
      testSummary = computed.summaries.test ?? null;
    } catch (e) {
      notes.push(`per-image scores could not be computed (${(e as Error).message.split('\n')[0]}): no ROC curve or score histogram for ${wanted.join(' and ')}`);
    }
  } else if (wanted.length) {
    notes.push(`the run has no per-image scores for ${wanted.join(' and ')}${opts.computeScores === false ? ' and computing them was turned off' : ''}: no ROC curve for them`);
  }
  if (assets) notes.push(...assets.notes.splice(0));
  return { scores, testSummary, assets };
}

/**
 * Metrics per split: metrics.json, else from the scores; checks that the scores agree with
 * metrics.json (one flipped prediction is allowed: stored logits are rounded to 1e-5).
 */
function splitMetrics(summary: RunSummary | null, scores: RunView['scores'], threshold: number, notes: string[]): RunView['metricsOf'] {
  const metricsOf: RunView['metricsOf'] = {};
  for (const split of ['val', 'test'] as ScoreSplit[]) {
    const fromRun = split === 'val' ? summary?.metrics.val : summary?.metrics.test;
    const s = scores[split];
    const fromScores = s ? computeMetrics(s.logits ?? s.pReal, s.labels, { fromLogits: s.logits !== null, threshold }) : null;
    if (!fromRun) {
      if (fromScores) metricsOf[split] = fromScores;
      continue;
    }
    metricsOf[split] = fromRun;
    if (fromScores && (fromScores.n !== fromRun.n || Math.abs(fromScores.accuracy - fromRun.accuracy) > 1.5 / fromRun.n)) {
      notes.push(
        `${SPLIT_LABEL[split]} scores (${s?.origin === 'computed' ? 'recomputed' : path.basename(s?.file ?? '')}) give n=${fromScores.n}, ` +
          `accuracy ${fmtPercent(fromScores.accuracy)}, but ${RUN_FILES.metrics} says n=${fromRun.n}, accuracy ${fmtPercent(fromRun.accuracy)}: ` +
          'the data or checkpoint changed since training; the ROC curve and histogram show the scores',
      );
    }
  }
  return metricsOf;
}

function rocSeries(v: RunView): RocSeries[] {
  const series: RocSeries[] = [];
  for (const split of ['val', 'test'] as ScoreSplit[]) {
    const s = v.scores[split];
    if (!s) continue;
    const values = s.logits ?? s.pReal;
    const auc = rocAuc(values, s.labels);
    if (Number.isNaN(auc)) {
      v.notes.push(`no ROC curve for ${SPLIT_LABEL[split]}: only one class present`);
      continue;
    }
    series.push({ split: SPLIT_LABEL[split], curve: rocCurve(values, s.labels, { dropIntermediate: true }), auc, point: operatingPoint(s, v.threshold) });
  }
  return series;
}

/** The charts of a run: learning curves, confusion matrix, ROC, per-class scores, score histogram. */
function runCharts(v: RunView): PendingFigure[] {
  const { history, summary, primary, scores, notes, threshold } = v;
  const pending: PendingFigure[] = [];
  if (history.length) {
    const monitor = v.config.earlyStopping?.monitor ?? 'val_loss';
    pending.push({ id: 'learning-curves', title: 'Learning curves', spec: learningCurvesSpec(history, { bestEpoch: v.bestEpoch, earlyStopped: summary?.stopReason === 'early-stopped', monitor }) });
  } else notes.push(`no learning curves: ${RUN_FILES.history} is empty or missing`);
  const m = primary ? (v.metricsOf[primary] as MetricsReport) : null;
  if (primary && m) pending.push({ id: 'confusion', title: 'Confusion matrix', spec: confusionSpec(m.confusion, { split: SPLIT_LABEL[primary], threshold: m.threshold }) });
  const series = rocSeries(v);
  if (series.length) pending.push({ id: 'roc', title: 'ROC curve', spec: rocSpec(series) });
  else if (primary) notes.push('no ROC curve: no per-image scores');
  if (primary && m) pending.push({ id: 'per-class', title: 'Precision and recall per class', spec: perClassSpec(m, { split: SPLIT_LABEL[primary] }) });
  const histSplit = primary && scores[primary] ? primary : scores.test ? 'test' : scores.val ? 'val' : null;
  if (histSplit) {
    const s = scores[histSplit] as SplitScores;
    pending.push({ id: 'scores', title: 'Score histogram', spec: scoreHistogramSpec(s.pReal, s.labels, { split: SPLIT_LABEL[histSplit], threshold }) });
  }
  // calibration.json and robustness.json are files a person may have edited or an older version
  // wrote: a chart they cannot feed is a note, not a failed report
  const optional = (title: string, make: () => PendingFigure | null) => {
    try {
      const f = make();
      if (f) pending.push(f);
    } catch (e) {
      notes.push(`no ${title} chart: ${(e as Error).message}`);
    }
  };
  optional('reliability', () => {
    const cal = v.calibration;
    const split = cal?.test ? 'test' : cal?.val ? 'val' : null;
    if (!cal || !split) return null;
    const c = cal[split]!;
    return {
      id: 'reliability',
      title: 'Reliability diagram',
      caption: `ECE (15 bins) ${c.eceBefore.toFixed(4)} before, ${c.eceAfter.toFixed(4)} after temperature ${cal.temperature.toFixed(3)} (fitted on validation).`,
      spec: reliabilitySpec(
        [
          { label: `logits as trained (ECE ${c.eceBefore.toFixed(4)})`, bins: c.reliabilityBefore },
          { label: `temperature ${cal.temperature.toFixed(3)} (ECE ${c.eceAfter.toFixed(4)})`, bins: c.reliabilityAfter },
        ],
        { split: SPLIT_LABEL[split] },
      ),
    };
  });
  optional('robustness', () => (v.robustness ? { id: 'robustness', title: 'AUROC under perturbations', spec: robustnessSpec(v.robustness.rows) } : null));
  return pending;
}

/** The versions the checkpoint was trained with (and its file name). */
function trainingVersions(runDir: string, config: TrainConfig, notes: string[]): Pick<RunView, 'trainedWith' | 'checkpointName'> {
  try {
    const ckpt = endCheckpoint(runDir, config);
    return { checkpointName: path.basename(ckpt), trainedWith: (CifakeModel.readMeta(ckpt).versions as Record<string, unknown> | undefined) ?? null };
  } catch (e) {
    notes.push(`training versions unknown: ${(e as Error).message.split('\n')[0]}`);
    return { checkpointName: null, trainedWith: null };
  }
}

async function explainIfAsked(assets: RunAssets | null, explain: boolean, opts: ReportOptions, threshold: number, notes: string[]): Promise<void> {
  if (!explain || !assets) return;
  try {
    const r = await explainRun(assets, { limit: opts.gradcamLimit, threshold });
    if (!r) notes.push('no Grad-CAM figures: no test or validation images to explain');
  } catch (e) {
    notes.push(`the Grad-CAM figures could not be computed: ${(e as Error).message.split('\n')[0]}`);
  }
  notes.push(...assets.notes.splice(0));
}

async function runReport(runDir: string, out: string, opts: ReportOptions): Promise<ReportResult> {
  const notes: string[] = [];
  if (!isRunDir(runDir))
    throw new Error(`${runDir} is not a run directory (no ${RUN_FILES.config}) nor a sweep folder (no leaderboard.json)`);
  const config = readRunConfig(runDir);
  const dataSummary = readOptional(() => readRunDataSummary(runDir), notes);
  const history = readHistory<EpochLog>(runDir);
  const summary = readOptional(() => readRunSummary(runDir), notes);
  const threshold = typeof config.threshold === 'number' ? config.threshold : 0.5;
  if (!summary) notes.push(`the run has no ${RUN_FILES.metrics} (still training, or interrupted): no final evaluation to show`);
  const explain = (opts.gradcam ?? true) && findGradcamImages(runDir).length === 0;
  const { scores, testSummary, assets } = await gatherScores({ runDir, config, summary, dataSummary, notes }, opts, explain);
  try {
    const metricsOf = splitMetrics(summary, scores, threshold, notes);
    const primary: ScoreSplit | null = metricsOf.test ? 'test' : metricsOf.val ? 'val' : null;
    const bestEpoch = summary?.bestEpoch ?? history.at(-1)?.bestEpoch ?? null;
    const calibration = readOptional(() => checked(readRunCalibration<RunCalibration>(runDir), RUN_FILES.calibration, isCalibration), notes);
    const robustness = readOptional(() => checked(readRunRobustness<RobustnessRunResult>(runDir), RUN_FILES.robustness, isRobustness), notes);
    const view: RunView = { runDir, config, history, summary, dataSummary, testSummary, metricsOf, scores, primary, threshold, bestEpoch, notes, trainedWith: null, checkpointName: null, calibration, robustness };
    const figures = await renderFigures(runCharts(view), out, opts.scale ?? 2, notes);
    await explainIfAsked(assets, explain, opts, threshold, notes);
    const gradcam = await gradcamSection(runDir, out, notes);
    Object.assign(view, trainingVersions(runDir, config, notes));
    const name = path.basename(path.resolve(runDir));
    const body = runPageBody(view, (id) => figures.find((f) => f.id === id)?.html ?? '', gradcam.html);
    writeFileAtomic(out, page(`CIFAKE report: ${name}`, body));
    opts.onLog?.(`report: wrote ${out} and ${figures.length} PNG figures`);
    return {
      kind: 'run',
      html: out,
      figures: figures.map(({ html: _h, ...f }) => f),
      gradcam: gradcam.files,
      scores: Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, (v as SplitScores).origin])),
      notes,
    };
  } finally {
    await assets?.dispose();
  }
}

// ---------------------------------------------------------------------------
// sweep report

async function sweepReport(dir: string, board: LeaderboardTable, out: string, opts: ReportOptions): Promise<ReportResult> {
  const notes = [...board.notes];
  const rows = board.rows;
  const withTest = rows.filter((r) => r.parameters !== null && r.testAccuracy !== null);
  const withVal = rows.filter((r) => r.parameters !== null && r.valAccuracy !== null);
  // the accuracy the sweep ranked by when it says so, else the one most rows have (test on ties)
  const prefer = board.metric === 'val_acc' ? 'val' : board.metric === 'test_acc' ? 'test' : null;
  const useTest = prefer === 'test' ? withTest.length > 0 : prefer === 'val' ? withVal.length === 0 : withTest.length > 0 && withTest.length >= withVal.length;
  const points = (useTest ? withTest : withVal).map((r) => ({
    name: r.name,
    parameters: r.parameters as number,
    accuracy: (useTest ? r.testAccuracy : r.valAccuracy) as number,
    group: r.group,
  }));
  const pending: PendingFigure[] = [];
  if (points.some((p) => p.parameters > 0)) {
    pending.push({ id: 'sweep', title: 'Accuracy vs parameters', spec: sweepSpec(points.filter((p) => p.parameters > 0), { accuracyOf: useTest ? 'test' : 'validation' }) });
    const left = rows.length - points.length;
    if (left > 0) notes.push(`${left} of ${rows.length} runs are not in the chart (no parameter count or accuracy yet)`);
  } else notes.push('no accuracy-vs-parameters chart: no row has both a parameter count and an accuracy');
  const figures = await renderFigures(pending, out, opts.scale ?? 2, notes);
  const outDir = path.dirname(out);
  const head = ['#', 'run', 'model', 'parameters', 'test accuracy', 'val accuracy', ...board.columns];
  const tableRows = rows.map((r, i) => {
    const report = r.runDir && fs.existsSync(path.join(r.runDir, 'report.html')) ? path.relative(outDir, path.join(r.runDir, 'report.html')) : null;
    return [
      r.rank ?? (rows.some((x) => x.rank !== null) ? '–' : i + 1),
      el('span', { class: 'nowrap' }, report ? el('a', { href: report }, r.name) : r.name),
      r.group,
      num(r.parameters),
      raw(`<span class="mono">${h(fmtPercent(r.testAccuracy))}</span>`),
      raw(`<span class="mono">${h(fmtPercent(r.valAccuracy))}</span>`),
      ...board.columns.map((c) => (typeof r.values[c] === 'number' ? num(r.values[c], 4) : (r.values[c] ?? '–'))),
    ];
  });
  const name = path.basename(path.resolve(dir));
  const best = points.length ? points.reduce((a, b) => (b.accuracy > a.accuracy ? b : a)) : null;
  const cv = chartVersions();
  const body: unknown[] = [
    el(
      'header',
      {},
      el('h1', {}, `CIFAKE sweep report: ${name}`),
      el('p', {}, raw(`<code>${h(path.resolve(dir))}</code>`)),
      el('p', {}, `${rows.length} runs in ${path.basename(board.file)}.`),
    ),
    cards(
      [
        ['runs', String(rows.length)],
        [`best ${useTest ? 'test' : 'validation'} accuracy`, best ? fmtPercent(best.accuracy) : '–'],
        ['best run', best?.name ?? '–'],
        ['its parameters', best ? fmtNumber(best.parameters) : '–'],
      ].filter(([, v]) => v !== '–') as [string, string][],
    ),
    section('Accuracy vs parameters', 'chart', figures[0]?.html ?? note('No chart.')),
    section('Leaderboard', 'leaderboard', el('div', { style: 'overflow-x: auto' }, table(head, tableRows, { class: 'wide' }))),
    notes.length ? section('Notes', 'notes', el('ul', {}, ...notes.map((n) => el('li', {}, n)))) : '',
    el('footer', {}, `Generated ${new Date().toISOString()} by cifake report (cifake-torch ${packageVersion()}, vega ${cv.vega}, vega-lite ${cv.vegaLite}).`),
  ];
  writeFileAtomic(out, page(`CIFAKE sweep report: ${name}`, body));
  opts.onLog?.(`report: wrote ${out}`);
  return { kind: 'sweep', html: out, figures: figures.map(({ html: _h, ...f }) => f), gradcam: [], scores: {}, notes };
}

/**
 * Writes the HTML report of a run directory (or of a sweep folder: one with leaderboard.json and
 * no config.json) and its PNG figures. Returns what was written and what was left out.
 */
export async function writeReport(dir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new Error(`report: ${dir} not found (expected a run directory or a sweep folder)`);
  }
  if (!st.isDirectory()) throw new Error(`report: ${dir} is not a directory (expected a run directory or a sweep folder)`);
  const out = path.resolve(opts.out ?? path.join(dir, 'report.html'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  if (!fs.existsSync(path.join(dir, RUN_FILES.config))) {
    const board = readLeaderboard(dir);
    if (board) return sweepReport(dir, board, out, opts);
  }
  return runReport(dir, out, opts);
}

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
import { endCheckpoint, GRADCAM_DIR, gradcamFolderFiles, readHistory, readRunConfig, readRunDataSummary, readRunSummary, RUN_FILES, type RunDataSummary, type RunSummary } from '../run';
import { readJsonIfExists, writeFileAtomic } from '../util/json-file';
import { packageVersion } from '../version';
import { confusionSpec, learningCurvesSpec, perClassSpec, rocSpec, scoreHistogramSpec, sweepSpec, type RocSeries } from './charts';
import { dataUri, el, fmtNumber, fmtPercent, fmtSeconds, h, kvTable, page, raw, table, type Html } from './html';
import { chartVersions, renderChart, type ChartSpec } from './render';
import { explainRun } from './gradcam';
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

const SPLIT_LABEL: Record<ScoreSplit, string> = { val: 'validation', test: 'test' };

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

function section(title: string, id: string, ...children: unknown[]): Html {
  return el('section', { id }, el('h2', {}, title), ...children);
}

function note(text: unknown): Html {
  return el('p', { class: 'note' }, text);
}

function cards(items: [string, string][]): Html {
  return el('div', { class: 'cards' }, ...items.map(([k, v]) => el('div', { class: 'card' }, el('div', { class: 'v' }, v), el('div', { class: 'k' }, k))));
}

function num(x: unknown, digits = 4): Html {
  return raw(`<span class="mono">${h(fmtNumber(x, digits))}</span>`);
}

/** `read()`, or null with a note when the file is unreadable (a report shows what it can). */
function readOptional<T>(read: () => T | null, notes: string[]): T | null {
  try {
    return read();
  } catch (e) {
    notes.push((e as Error).message);
    return null;
  }
}

// ---------------------------------------------------------------------------
// Grad-CAM

/** PNG files under `<runDir>/gradcam/` (two levels), galleries first, then class means, then the rest. */
export function findGradcamImages(runDir: string): string[] {
  const root = path.join(runDir, GRADCAM_DIR);
  if (!fs.existsSync(root)) return [];
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 2) walk(p, depth + 1);
      else if (e.isFile() && /\.png$/i.test(e.name)) found.push(p);
    }
  };
  walk(root, 0);
  const rank = (p: string) => (/gallery/i.test(path.basename(p)) ? 0 : /class[-_ ]?means?/i.test(path.basename(p)) ? 1 : 2);
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Images above this size are linked instead of embedded. */
const MAX_EMBED_BYTES = 8 * 2 ** 20;

interface GradcamSummaryFile {
  split?: string;
  subset?: string | null;
  count?: number;
  layer?: string;
  layerSize?: number;
  method?: string;
  target?: string;
  accuracy?: number | null;
  classMeanStats?: Record<'REAL' | 'FAKE', { count: number; centreShare: number; borderShare: number; peak: { row: number; col: number } }>;
}

/** What gradcam/summary.json (written by `cifake gradcam --data` or by this report) says, as a short table. */
function gradcamSummary(runDir: string, notes: string[]): Html | string {
  const s = readOptional(() => readJsonIfExists<GradcamSummaryFile>(gradcamFolderFiles(path.join(runDir, GRADCAM_DIR)).summary), notes);
  if (!s || !s.classMeanStats) return '';
  const method = s.method === 'hirescam' ? 'HiResCAM' : 'Grad-CAM';
  const head = `${method} at ${s.layer ?? '?'} (${s.layerSize ?? '?'}x${s.layerSize ?? '?'}), explaining the ${s.target === 'pred' || !s.target ? 'predicted class' : s.target.toUpperCase()}, on ${s.count ?? '?'} ${s.split ?? ''} images${s.subset ? ` (${s.subset})` : ''}.`;
  const rows = (['REAL', 'FAKE'] as const)
    .filter((k) => s.classMeanStats?.[k])
    .map((k) => {
      const c = s.classMeanStats![k];
      return [`predicted ${k}`, fmtNumber(c.count), fmtPercent(c.centreShare, 1), fmtPercent(c.borderShare, 1), `(${c.peak.row}, ${c.peak.col})`];
    });
  return raw(
    h(el('p', {}, head)) +
      h(table(['class mean', 'images', 'centre quarter (uniform 25%)', '4-px border (uniform 43.8%)', 'peak (row, col)'], rows)),
  );
}

async function gradcamSection(runDir: string, out: string, notes: string[]): Promise<{ html: Html; files: string[] }> {
  const files = findGradcamImages(runDir);
  if (files.length === 0) {
    const msg = 'no Grad-CAM figures: the run directory has no gradcam/ PNGs (cifake gradcam --model RUN --data DATA --out RUN/gradcam renders them; so does this report unless told not to)';
    notes.push(msg);
    return { html: section('Grad-CAM', 'gradcam', note(msg)), files };
  }
  const figures: Html[] = [];
  for (const file of files) {
    const rel = path.relative(runDir, file);
    const bytes = fs.readFileSync(file);
    let meta: sharp.Metadata;
    try {
      meta = await sharp(bytes).metadata();
    } catch (e) {
      notes.push(`Grad-CAM image ${rel} is not a readable PNG: ${(e as Error).message}`);
      continue;
    }
    const title = path.basename(file, '.png').replace(/[-_]+/g, ' ');
    const link = path.relative(path.dirname(out), file);
    if (bytes.length > MAX_EMBED_BYTES) {
      figures.push(el('p', {}, `${title}: `, el('a', { href: link }, rel), ` (${(bytes.length / 2 ** 20).toFixed(1)} MiB, not embedded)`));
      continue;
    }
    figures.push(
      el(
        'figure',
        { class: 'gradcam', 'data-gradcam': rel, 'data-width': meta.width, 'data-height': meta.height },
        el('img', { src: dataUri('image/png', bytes), width: meta.width, height: meta.height, alt: `Grad-CAM: ${title}` }),
        el('figcaption', {}, `${title} (${rel}, ${meta.width}x${meta.height})`),
      ),
    );
  }
  return {
    html: section(
      'Grad-CAM',
      'gradcam',
      el('p', {}, 'Where the model looks: class-discriminative heat maps (warm = evidence for the explained class).'),
      gradcamSummary(runDir, notes),
      el('div', { class: 'figures' }, ...figures),
    ),
    files,
  };
}

// ---------------------------------------------------------------------------
// run report

function metricsTable(reports: [string, MetricsReport][]): Html {
  const rows: [string, (m: MetricsReport) => unknown][] = [
    ['images', (m) => m.n],
    ['accuracy', (m) => fmtPercent(m.accuracy)],
    ['ROC AUC', (m) => fmtNumber(m.rocAuc)],
    ['log loss', (m) => fmtNumber(m.logLoss)],
    ['precision FAKE', (m) => fmtNumber(m.precision.FAKE)],
    ['recall FAKE', (m) => fmtNumber(m.recall.FAKE)],
    ['F1 FAKE', (m) => fmtNumber(m.f1.FAKE)],
    ['precision REAL', (m) => fmtNumber(m.precision.REAL)],
    ['recall REAL', (m) => fmtNumber(m.recall.REAL)],
    ['F1 REAL', (m) => fmtNumber(m.f1.REAL)],
    ['F1 macro', (m) => fmtNumber(m.f1.macro)],
    ['confusion [[tn, fp], [fn, tp]]', (m) => `[[${m.confusion.tn}, ${m.confusion.fp}], [${m.confusion.fn}, ${m.confusion.tp}]]`],
    ['threshold on P(REAL)', (m) => m.threshold],
  ];
  const body = rows.map(([k, f]) => [k, ...reports.map(([, m]) => raw(`<span class="mono">${h(f(m))}</span>`))]);
  const notes = reports.flatMap(([s, m]) => (m.notes ?? []).map((n) => `${s}: ${n}`));
  return raw(h(table(['metric', ...reports.map(([s]) => s)], body)) + (notes.length ? h(note(notes.join('; '))) : ''));
}

function historyTable(history: EpochLog[], bestEpoch: number | null): Html {
  const head = ['epoch', 'lr', 'train loss', 'train acc', 'val loss', 'val acc', 'val AUC', 'seconds', 'images/s', ''];
  const rows = history.map((e) =>
    el(
      'tr',
      { class: e.epoch === bestEpoch ? 'best' : null },
      ...[
        e.epoch,
        fmtNumber(e.lr, 6),
        fmtNumber(e.trainLoss),
        fmtPercent(e.trainAcc),
        fmtNumber(e.valLoss),
        fmtPercent(e.valAcc),
        fmtNumber(e.valAuc),
        fmtNumber(e.seconds, 1),
        fmtNumber(Math.round(e.imagesPerSec)),
        e.epoch === bestEpoch ? 'best' : e.improved ? 'improved' : '',
      ].map((c, i) => el('td', { class: i < 9 ? 'num' : null }, c)),
    ),
  );
  return el('table', {}, el('thead', {}, el('tr', {}, ...head.map((c, i) => el('th', { class: i < 9 ? 'num' : null }, c)))), el('tbody', {}, ...rows));
}

function dataTable(sets: [string, DatasetSummary][]): Html {
  const head = ['set', 'source', 'split folder', 'images', 'FAKE', 'REAL', 'listed', 'skipped', 'ignored', 'decoded', 'cache'];
  const rows = sets.map(([name, s]) => [
    name,
    raw(`<code>${h(s.source)}</code>`),
    s.splitPath,
    fmtNumber(s.count),
    fmtNumber(s.counts?.FAKE),
    fmtNumber(s.counts?.REAL),
    fmtNumber(s.listed),
    fmtNumber(s.skipped?.count),
    fmtNumber(s.ignored?.count),
    s.decoded ? `native ${s.decoded.native}, sharp ${s.decoded.sharp}, resized ${s.decoded.resized}` : '–',
    s.cache ? (s.cache.hit ? 'hit' : s.cache.written ? 'written' : s.cache.path ? 'rebuilt' : 'off') + (s.cache.note ? ` (${s.cache.note})` : '') : '–',
  ]);
  const skipped = sets.flatMap(([name, s]) => (s.skipped?.files ?? []).map((f) => [name, raw(`<code>${h(f.file)}</code>`), f.reason]));
  const unique = [...new Map(skipped.map((r) => [`${h(r[1])}`, r])).values()];
  return raw(
    h(table(head, rows, { class: 'wide' })) +
      (unique.length
        ? h(el('h3', {}, `Skipped files (${unique.length}${unique.length >= 50 ? '+' : ''} named)`)) + h(table(['set', 'file', 'reason'], unique.slice(0, 50)))
        : h(el('p', {}, 'No file was skipped.'))),
  );
}

function configSection(config: TrainConfig): Html {
  const pairs = Object.entries(flatten(config)).map(([k, v]) => [k, raw(`<code>${h(v === null ? 'null' : String(v))}</code>`)] as [string, unknown]);
  const half = Math.ceil(pairs.length / 2);
  return section(
    'Configuration',
    'config',
    el('div', { class: 'columns' }, kvTable(pairs.slice(0, half)), kvTable(pairs.slice(half))),
    el('details', {}, el('summary', {}, 'config.json'), el('pre', { class: 'mono' }, JSON.stringify(config, null, 2))),
  );
}

function operatingPoint(s: SplitScores, threshold: number): RocSeries['point'] {
  const m = computeMetrics(s.logits ?? s.pReal, s.labels, { fromLogits: s.logits !== null, threshold });
  const c = m.confusion;
  if (c.tn + c.fp === 0 || c.tp + c.fn === 0) return undefined;
  return { fpr: c.fp / (c.fp + c.tn), tpr: c.tp / (c.tp + c.fn), threshold };
}

async function runReport(runDir: string, out: string, opts: ReportOptions): Promise<ReportResult> {
  const log = opts.onLog ?? (() => {});
  const notes: string[] = [];
  const configFile = path.join(runDir, RUN_FILES.config);
  if (!fs.existsSync(configFile))
    throw new Error(`${runDir} is not a run directory (no ${RUN_FILES.config}) nor a sweep folder (no leaderboard.json)`);
  const config = readRunConfig(runDir);
  const dataSummary: RunDataSummary | null = readOptional(() => readRunDataSummary(runDir), notes);
  const history = readHistory<EpochLog>(runDir);
  const summary = readOptional(() => readRunSummary(runDir), notes);
  const threshold = typeof config.threshold === 'number' ? config.threshold : 0.5;
  if (!summary) notes.push(`the run has no ${RUN_FILES.metrics} (still training, or interrupted): no final evaluation to show`);

  // per-image scores: the run's files, else computed from the checkpoint
  const { scores, problems } = readRunScores(runDir);
  notes.push(...problems);
  let testSummary: DatasetSummary | null = null;
  const wanted: ScoreSplit[] = summary ? (['val', 'test'] as ScoreSplit[]).filter((s) => !scores[s] && (s === 'val' || summary.metrics.test)) : [];
  let assets: RunAssets | null = null;
  const explain = (opts.gradcam ?? true) && findGradcamImages(runDir).length === 0;
  if (summary && (wanted.length || explain)) {
    try {
      assets = new RunAssets(runDir, config, dataSummary, { data: opts.data, device: opts.device, threads: opts.threads, onLog: log });
    } catch (e) {
      notes.push(`the model cannot be loaded: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  try {
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

    // metrics per split: metrics.json, else from the scores; check that the scores agree with metrics.json
    // (one flipped prediction is allowed: stored logits are rounded to 1e-5)
    const metricsOf: Partial<Record<ScoreSplit, MetricsReport>> = {};
    for (const split of ['val', 'test'] as ScoreSplit[]) {
      const fromRun = split === 'val' ? summary?.metrics.val : summary?.metrics.test;
      const s = scores[split];
      const fromScores = s ? computeMetrics(s.logits ?? s.pReal, s.labels, { fromLogits: s.logits !== null, threshold }) : null;
      if (fromRun) {
        metricsOf[split] = fromRun;
        if (fromScores && (fromScores.n !== fromRun.n || Math.abs(fromScores.accuracy - fromRun.accuracy) > 1.5 / fromRun.n)) {
          notes.push(
            `${SPLIT_LABEL[split]} scores (${s?.origin === 'computed' ? 'recomputed' : path.basename(s?.file ?? '')}) give n=${fromScores.n}, ` +
              `accuracy ${fmtPercent(fromScores.accuracy)}, but ${RUN_FILES.metrics} says n=${fromRun.n}, accuracy ${fmtPercent(fromRun.accuracy)}: ` +
              'the data or checkpoint changed since training; the ROC curve and histogram show the scores',
          );
        }
      } else if (fromScores) metricsOf[split] = fromScores;
    }
    const primary: ScoreSplit | null = metricsOf.test ? 'test' : metricsOf.val ? 'val' : null;

    // charts
    const pending: PendingFigure[] = [];
    const bestEpoch = summary?.bestEpoch ?? history.at(-1)?.bestEpoch ?? null;
    if (history.length) {
      pending.push({
        id: 'learning-curves',
        title: 'Learning curves',
        spec: learningCurvesSpec(history, {
          bestEpoch,
          earlyStopped: summary?.stopReason === 'early-stopped',
          monitor: config.earlyStopping?.monitor ?? 'val_loss',
        }),
      });
    } else notes.push(`no learning curves: ${RUN_FILES.history} is empty or missing`);
    if (primary) {
      const m = metricsOf[primary] as MetricsReport;
      pending.push({ id: 'confusion', title: 'Confusion matrix', spec: confusionSpec(m.confusion, { split: SPLIT_LABEL[primary], threshold: m.threshold }) });
    }
    const series: RocSeries[] = [];
    for (const split of ['val', 'test'] as ScoreSplit[]) {
      const s = scores[split];
      if (!s) continue;
      const values = s.logits ?? s.pReal;
      const auc = rocAuc(values, s.labels);
      if (Number.isNaN(auc)) {
        notes.push(`no ROC curve for ${SPLIT_LABEL[split]}: only one class present`);
        continue;
      }
      series.push({ split: SPLIT_LABEL[split], curve: rocCurve(values, s.labels, { dropIntermediate: true }), auc, point: operatingPoint(s, threshold) });
    }
    if (series.length) pending.push({ id: 'roc', title: 'ROC curve', spec: rocSpec(series) });
    else if (primary) notes.push('no ROC curve: no per-image scores');
    if (primary) {
      const m = metricsOf[primary] as MetricsReport;
      pending.push({ id: 'per-class', title: 'Precision and recall per class', spec: perClassSpec(m, { split: SPLIT_LABEL[primary] }) });
    }
    const histSplit = primary && scores[primary] ? primary : scores.test ? 'test' : scores.val ? 'val' : null;
    if (histSplit) {
      const s = scores[histSplit] as SplitScores;
      pending.push({ id: 'scores', title: 'Score histogram', spec: scoreHistogramSpec(s.pReal, s.labels, { split: SPLIT_LABEL[histSplit], threshold }) });
    }
    const figures = await renderFigures(pending, out, opts.scale ?? 2, notes);
    const fig = (id: string) => figures.find((f) => f.id === id)?.html ?? '';

    if (explain && assets) {
      try {
        const r = await explainRun(assets, { limit: opts.gradcamLimit, threshold });
        if (!r) notes.push('no Grad-CAM figures: no test or validation images to explain');
      } catch (e) {
        notes.push(`the Grad-CAM figures could not be computed: ${(e as Error).message.split('\n')[0]}`);
      }
      notes.push(...assets.notes.splice(0));
    }
    const gradcam = await gradcamSection(runDir, out, notes);

    // versions: the checkpoint's (training) and this process's (report)
    let trainedWith: Record<string, unknown> | null = null;
    let checkpointName: string | null = null;
    try {
      const ckpt = endCheckpoint(runDir, config);
      checkpointName = path.basename(ckpt);
      trainedWith = (CifakeModel.readMeta(ckpt).versions as Record<string, unknown> | undefined) ?? null;
    } catch (e) {
      notes.push(`training versions unknown: ${(e as Error).message.split('\n')[0]}`);
    }
    const cv = chartVersions();

    const name = path.basename(path.resolve(runDir));
    const test = metricsOf.test;
    const val = metricsOf.val;
    const epochSeconds = history.map((e) => e.seconds).filter((x) => Number.isFinite(x));
    const ips = history.map((e) => e.imagesPerSec).filter((x) => Number.isFinite(x) && x > 0);
    const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN);
    const dataSets: [string, DatasetSummary][] = [];
    if (dataSummary?.train) dataSets.push(['train', dataSummary.train]);
    if (dataSummary?.val) dataSets.push(['validation', dataSummary.val]);
    if (testSummary) dataSets.push(['test', testSummary]);

    const body: unknown[] = [
      el(
        'header',
        {},
        el('h1', {}, `CIFAKE run report: ${name}`),
        el('p', {}, raw(`<code>${h(path.resolve(runDir))}</code>`)),
        el(
          'p',
          {},
          `${config.model?.family ?? '?'} model, ${summary ? `${fmtNumber(summary.parameters)} parameters, ` : ''}` +
            `${summary ? `${summary.epochsRun} epochs (${summary.stopReason}, best epoch ${summary.bestEpoch})` : `${history.length} epochs so far`}` +
            `, data: ${config.data ?? 'synthetic demo set'}. Labels: FAKE = 0, REAL = 1 (positive).`,
        ),
        config.data === null ? note('Trained on the synthetic demo set: a pipeline demo, not a detector benchmark.') : '',
      ),
      cards(
        [
          ['test accuracy', fmtPercent(test?.accuracy)],
          ['test ROC AUC', fmtNumber(test?.rocAuc)],
          ['validation accuracy', fmtPercent(val?.accuracy)],
          ['validation ROC AUC', fmtNumber(val?.rocAuc)],
          ['best epoch / run', summary ? `${summary.bestEpoch} / ${summary.epochsRun}` : `– / ${history.length}`],
          ['parameters', summary ? fmtNumber(summary.parameters) : '–'],
          ['training time', fmtSeconds(summary?.trainSeconds ?? epochSeconds.reduce((a, b) => a + b, 0))],
        ].filter(([, v]) => v !== '–') as [string, string][],
      ),
      section('Learning curves', 'learning', fig('learning-curves') || note('No epochs recorded yet.')),
      section(
        'Evaluation',
        'evaluation',
        primary
          ? el(
              'p',
              {},
              `Confusion matrix, per-class scores and histogram on the ${SPLIT_LABEL[primary]} split` +
                (primary === 'val' ? ' (the run has no test split)' : '') +
                `; a sample is called REAL when P(REAL) >= ${threshold}.`,
            )
          : note('No evaluation yet.'),
        el('div', { class: 'figures' }, fig('confusion'), fig('roc'), fig('per-class'), fig('scores')),
        Object.keys(metricsOf).length ? el('h3', {}, 'Metrics') : '',
        Object.keys(metricsOf).length
          ? metricsTable((['val', 'test'] as ScoreSplit[]).filter((s) => metricsOf[s]).map((s) => [SPLIT_LABEL[s], metricsOf[s] as MetricsReport]))
          : '',
        el(
          'p',
          {},
          'Per-image scores: ',
          (['val', 'test'] as ScoreSplit[])
            .filter((s) => scores[s])
            .map((s) => `${SPLIT_LABEL[s]} ${scores[s]?.origin === 'computed' ? 'computed by this report' : 'read from the run directory'} (${path.basename(scores[s]?.file ?? '') || 'not saved'})`)
            .join('; ') || 'none',
          '.',
        ),
      ),
      gradcam.html,
      configSection(config),
      section('Data', 'data', dataSets.length ? dataTable(dataSets) : note(`No ${RUN_FILES.data} in the run directory.`)),
      section(
        'Timing',
        'timing',
        kvTable([
          ['device', summary?.device ?? '–'],
          ['training time (sum of epochs)', fmtSeconds(summary?.trainSeconds ?? epochSeconds.reduce((a, b) => a + b, 0))],
          ['epochs run', summary?.epochsRun ?? history.length],
          ['stop reason', summary?.stopReason ?? 'not finished'],
          ['mean epoch', fmtSeconds(mean(epochSeconds))],
          ['mean throughput', Number.isFinite(mean(ips)) ? `${fmtNumber(Math.round(mean(ips)))} images/s` : '–'],
          ['loading train data', fmtSeconds(dataSummary?.train?.seconds)],
        ]),
        history.length ? el('h3', {}, 'Epochs') : '',
        history.length ? historyTable(history, bestEpoch) : '',
      ),
      section(
        'Versions',
        'versions',
        el(
          'div',
          { class: 'columns' },
          el(
            'div',
            {},
            el('h3', {}, `Training (${checkpointName ?? 'no checkpoint'})`),
            kvTable(trainedWith ? Object.entries(trainedWith).map(([k, v]) => [k, String(v)]) : [['versions', 'unknown']]),
          ),
          el(
            'div',
            {},
            el('h3', {}, 'This report'),
            kvTable([
              ['cifakeTorch', packageVersion()],
              ['node', process.version],
              ['vega', cv.vega],
              ['vega-lite', cv.vegaLite],
              ['sharp', cv.sharp],
              ['libvips', cv.libvips],
            ]),
          ),
        ),
      ),
      notes.length ? section('Notes', 'notes', el('ul', {}, ...notes.map((n) => el('li', {}, n)))) : '',
      el('footer', {}, `Generated ${new Date().toISOString()} by cifake report (cifake-torch ${packageVersion()}).`),
    ];
    writeFileAtomic(out, page(`CIFAKE report: ${name}`, body));
    log(`report: wrote ${out} and ${figures.length} PNG figures`);
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

// The HTML of a run report: generic building blocks (section, note, cards, tables) and the page
// body of a run (header, evaluation, timing, versions), from what runReport gathered.
import path from 'node:path';

import type { TrainConfig } from '../config';
import type { DatasetSummary } from '../data';
import type { MetricsReport } from '../metrics';
import { RUN_FILES, type RunDataSummary, type RunSummary } from '../run';
import type { EpochLog } from '../train/fit';
import { packageVersion } from '../version';
import { el, fmtNumber, fmtPercent, fmtSeconds, h, kvTable, raw, table, type Html } from './html';
import { chartVersions } from './render';
import type { ScoreSplit, SplitScores } from './scores';
import { flatten } from './sweep';
import type { RunCalibration } from '../calibration/run';
import type { RobustnessRunResult } from '../robustness/run';

export const SPLIT_LABEL: Record<ScoreSplit, string> = { val: 'validation', test: 'test' };

/** Everything a run's page shows, gathered by runReport. */
export interface RunView {
  runDir: string;
  config: TrainConfig;
  history: EpochLog[];
  summary: RunSummary | null;
  dataSummary: RunDataSummary | null;
  testSummary: DatasetSummary | null;
  metricsOf: Partial<Record<ScoreSplit, MetricsReport>>;
  scores: Partial<Record<ScoreSplit, SplitScores>>;
  primary: ScoreSplit | null;
  threshold: number;
  bestEpoch: number | null;
  notes: string[];
  trainedWith: Record<string, unknown> | null;
  checkpointName: string | null;
  /** calibration.json, when the run was calibrated */
  calibration: RunCalibration | null;
  /** robustness.json, when `cifake robustness` ran on the run */
  robustness: RobustnessRunResult | null;
}

export function section(title: string, id: string, ...children: unknown[]): Html {
  return el('section', { id }, el('h2', {}, title), ...children);
}

export function note(text: unknown): Html {
  return el('p', { class: 'note' }, text);
}

export function cards(items: [string, string][]): Html {
  return el('div', { class: 'cards' }, ...items.map(([k, v]) => el('div', { class: 'card' }, el('div', { class: 'v' }, v), el('div', { class: 'k' }, k))));
}

export function num(x: unknown, digits = 4): Html {
  return raw(`<span class="mono">${h(fmtNumber(x, digits))}</span>`);
}

/** `read()`, or null with a note when the file is unreadable (a report shows what it can). */

export function metricsTable(reports: [string, MetricsReport][]): Html {
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

export function historyTable(history: EpochLog[], bestEpoch: number | null): Html {
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

export function dataTable(sets: [string, DatasetSummary][]): Html {
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

export function configSection(config: TrainConfig): Html {
  const pairs = Object.entries(flatten(config)).map(([k, v]) => [k, raw(`<code>${h(v === null ? 'null' : String(v))}</code>`)] as [string, unknown]);
  const half = Math.ceil(pairs.length / 2);
  return section(
    'Configuration',
    'config',
    el('div', { class: 'columns' }, kvTable(pairs.slice(0, half)), kvTable(pairs.slice(half))),
    el('details', {}, el('summary', {}, 'config.json'), el('pre', { class: 'mono' }, JSON.stringify(config, null, 2))),
  );
}

const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN);
const epochSeconds = (v: RunView) => v.history.map((e) => e.seconds).filter((x) => Number.isFinite(x));
const trainingTime = (v: RunView) => fmtSeconds(v.summary?.trainSeconds ?? epochSeconds(v).reduce((a, b) => a + b, 0));

function runHeader(v: RunView): Html[] {
  const { config, summary, history } = v;
  const test = v.metricsOf.test;
  const val = v.metricsOf.val;
  return [
    el(
      'header',
      {},
      el('h1', {}, `CIFAKE run report: ${path.basename(path.resolve(v.runDir))}`),
      el('p', {}, raw(`<code>${h(path.resolve(v.runDir))}</code>`)),
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
        ['training time', trainingTime(v)],
      ].filter(([, x]) => x !== '–') as [string, string][],
    ),
  ];
}

function evaluationSection(v: RunView, fig: (id: string) => Html | string): Html {
  const { primary, metricsOf, scores } = v;
  const splits = (['val', 'test'] as ScoreSplit[]).filter((s) => metricsOf[s]);
  const scoreOrigin = (s: ScoreSplit) =>
    `${SPLIT_LABEL[s]} ${scores[s]?.origin === 'computed' ? 'computed by this report' : 'read from the run directory'} (${path.basename(scores[s]?.file ?? '') || 'not saved'})`;
  return section(
    'Evaluation',
    'evaluation',
    primary
      ? el(
          'p',
          {},
          `Confusion matrix, per-class scores and histogram on the ${SPLIT_LABEL[primary]} split` +
            (primary === 'val' ? ' (the run has no test split)' : '') +
            `; a sample is called REAL when P(REAL) >= ${v.threshold}.`,
        )
      : note('No evaluation yet.'),
    el('div', { class: 'figures' }, fig('confusion'), fig('roc'), fig('per-class'), fig('scores')),
    splits.length ? el('h3', {}, 'Metrics') : '',
    splits.length ? metricsTable(splits.map((s) => [SPLIT_LABEL[s], metricsOf[s] as MetricsReport])) : '',
    el('p', {}, 'Per-image scores: ', (['val', 'test'] as ScoreSplit[]).filter((s) => scores[s]).map(scoreOrigin).join('; ') || 'none', '.'),
  );
}

function calibrationSection(v: RunView, fig: (id: string) => Html | string): Html | string {
  const c = v.calibration;
  if (!c) return '';
  const splits = (['val', 'test'] as const).filter((s) => c[s]);
  const rows: [string, (s: NonNullable<RunCalibration['val']>) => unknown][] = [
    ['images', (s) => fmtNumber(s.n)],
    ['accuracy at 0.5', (s) => fmtPercent(s.accuracyAt05)],
    [`accuracy at the Youden threshold (${c.youdenThreshold.toFixed(4)}, chosen on validation)`, (s) => fmtPercent(s.accuracyAtYouden)],
    ['ECE before', (s) => fmtNumber(s.eceBefore)],
    ['ECE after', (s) => fmtNumber(s.eceAfter)],
    ['log loss before', (s) => fmtNumber(s.logLossBefore)],
    ['log loss after', (s) => fmtNumber(s.logLossAfter)],
  ];
  return section(
    'Calibration',
    'calibration',
    el('p', {}, `Temperature ${c.temperature.toFixed(4)} and Youden threshold fitted on validation only, stored in ${c.checkpoint}; `, raw('<code>Classifier</code> and <code>predict</code> apply the temperature.')),
    el('div', { class: 'figures' }, fig('reliability')),
    table(['', ...splits.map((s) => SPLIT_LABEL[s])], rows.map(([k, f]) => [k, ...splits.map((s) => raw(`<span class="mono">${h(f(c[s]!))}</span>`))])),
  );
}

function robustnessSection(v: RunView, fig: (id: string) => Html | string): Html | string {
  const r = v.robustness;
  if (!r) return '';
  const head = ['perturbation', 'images', 'accuracy', 'AUROC', 'recall FAKE', 'recall REAL', 'flipped vs clean', 'ECE', 'mean P(REAL)'];
  const rows = r.rows.map((x) => [
    raw(`<code>${h(x.perturbation)}</code>`),
    num(x.n, 0),
    raw(`<span class="mono">${h(fmtPercent(x.accuracy))}</span>`),
    num(x.rocAuc),
    num(x.recallFake, 3),
    num(x.recallReal, 3),
    raw(`<span class="mono">${h(`${x.flipped} (${fmtPercent(x.flippedShare)})`)}</span>`),
    num(x.ece),
    num(x.meanProbReal, 3),
  ]);
  return section(
    'Robustness',
    'robustness',
    el(
      'p',
      {},
      `${RUN_FILES.robustness}: ${r.split ?? r.label} split of `,
      raw(`<code>${h(r.data)}</code>`),
      `, threshold ${r.threshold}, temperature ${r.temperature.toFixed(4)}, seed ${r.seed}. ` +
        `Flip-consistency: ${fmtPercent(r.flipConsistency.unstableShare)} of the images change label under at least one of ${r.flipConsistency.variants.join(', ')}.`,
    ),
    el('div', { class: 'figures' }, fig('robustness')),
    el('div', { style: 'overflow-x: auto' }, table(head, rows, { class: 'wide' })),
  );
}

function dataSection(v: RunView): Html {
  const sets: [string, DatasetSummary][] = [];
  if (v.dataSummary?.train) sets.push(['train', v.dataSummary.train]);
  if (v.dataSummary?.val) sets.push(['validation', v.dataSummary.val]);
  if (v.testSummary) sets.push(['test', v.testSummary]);
  return section('Data', 'data', sets.length ? dataTable(sets) : note(`No ${RUN_FILES.data} in the run directory.`));
}

function timingSection(v: RunView): Html {
  const { summary, history } = v;
  const ips = history.map((e) => e.imagesPerSec).filter((x) => Number.isFinite(x) && x > 0);
  return section(
    'Timing',
    'timing',
    kvTable([
      ['device', summary?.device ?? '–'],
      ['training time (sum of epochs)', trainingTime(v)],
      ['epochs run', summary?.epochsRun ?? history.length],
      ['stop reason', summary?.stopReason ?? 'not finished'],
      ['mean epoch', fmtSeconds(mean(epochSeconds(v)))],
      ['mean throughput', Number.isFinite(mean(ips)) ? `${fmtNumber(Math.round(mean(ips)))} images/s` : '–'],
      ['loading train data', fmtSeconds(v.dataSummary?.train?.seconds)],
    ]),
    history.length ? el('h3', {}, 'Epochs') : '',
    history.length ? historyTable(history, v.bestEpoch) : '',
  );
}

function versionsSection(v: RunView): Html {
  const cv = chartVersions();
  const training = v.trainedWith ? Object.entries(v.trainedWith).map(([k, x]) => [k, String(x)] as [string, string]) : [['versions', 'unknown'] as [string, string]];
  const here: [string, string][] = [
    ['cifakeTorch', packageVersion()],
    ['node', process.version],
    ['vega', cv.vega],
    ['vega-lite', cv.vegaLite],
    ['sharp', cv.sharp],
    ['libvips', cv.libvips],
  ];
  return section(
    'Versions',
    'versions',
    el(
      'div',
      { class: 'columns' },
      el('div', {}, el('h3', {}, `Training (${v.checkpointName ?? 'no checkpoint'})`), kvTable(training)),
      el('div', {}, el('h3', {}, 'This report'), kvTable(here)),
    ),
  );
}

/** The page body of a run report. */
export function runPageBody(v: RunView, fig: (id: string) => Html | string, gradcam: Html): unknown[] {
  return [
    ...runHeader(v),
    section('Learning curves', 'learning', fig('learning-curves') || note('No epochs recorded yet.')),
    evaluationSection(v, fig),
    calibrationSection(v, fig),
    robustnessSection(v, fig),
    gradcam,
    configSection(v.config),
    dataSection(v),
    timingSection(v),
    versionsSection(v),
    v.notes.length ? section('Notes', 'notes', el('ul', {}, ...v.notes.map((n) => el('li', {}, n)))) : '',
    el('footer', {}, `Generated ${new Date().toISOString()} by cifake report (cifake-torch ${packageVersion()}).`),
  ];
}

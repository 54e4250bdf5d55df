// Vega-Lite specs of the report's charts. Pure functions: data in, spec out (rendered by render.ts).
import type { Confusion, MetricsReport, RocCurve } from '../metrics';
import type { ChartSpec } from './render';

/** Colours shared by all charts. */
export const COLORS = {
  train: '#1f77b4',
  validation: '#ff7f0e',
  test: '#2ca02c',
  FAKE: '#c0392b',
  REAL: '#2471a3',
  macro: '#7f8c8d',
  marker: '#555555',
} as const;

const METRIC_COLORS = { precision: '#4c78a8', recall: '#f58518', F1: '#54a24b' } as const;

/** One epoch of a run's history: the fields the learning curves need. */
export interface CurvePoint {
  epoch: number;
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  lr?: number;
}

export interface LearningCurveOptions {
  /** Epoch marked as the best (early stopping's checkpoint). */
  bestEpoch?: number | null;
  /** Mark the last epoch as the early stop. */
  earlyStopped?: boolean;
  /** What the best epoch was chosen by (e.g. 'val_loss'), for the subtitle. */
  monitor?: string | null;
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

type CurveRow = { epoch: number; metric: string; split: string; value: number };

/** Long-format rows (epoch, metric, split, value) of the finite losses and accuracies. */
function curveRows(history: CurvePoint[]): CurveRow[] {
  const rows: CurveRow[] = [];
  for (const h of history) {
    const add = (metric: string, split: string, value: number) => {
      if (finite(value)) rows.push({ epoch: h.epoch, metric, split, value });
    };
    add('loss', 'train', h.trainLoss);
    add('loss', 'validation', h.valLoss);
    add('accuracy', 'train', h.trainAcc);
    add('accuracy', 'validation', h.valAcc);
  }
  return rows;
}

/** Dashed rules with labels at the best epoch and the early stop. */
function markerLayers(markers: { epoch: number; label: string }[]): object[] {
  if (!markers.length) return [];
  return [
    {
      data: { values: markers },
      mark: { type: 'rule', color: COLORS.marker, strokeDash: [4, 3] },
      encoding: { x: { field: 'epoch', type: 'quantitative' } },
    },
    {
      data: { values: markers },
      mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 2, y: 0, fontSize: 10, color: COLORS.marker },
      encoding: { x: { field: 'epoch', type: 'quantitative' }, text: { field: 'label' } },
    },
  ];
}

const CURVE_COLOR = {
  field: 'split',
  type: 'nominal',
  title: null,
  scale: { domain: ['train', 'validation'], range: [COLORS.train, COLORS.validation] },
  legend: { orient: 'top', direction: 'horizontal' },
};

function curvePanel(metric: 'loss' | 'accuracy', rows: CurveRow[], x: object, markers: object[]): object {
  const axis = metric === 'accuracy' ? { format: '.0%' } : { format: '.3~f' };
  return {
    width: 300,
    height: 210,
    title: { text: metric === 'loss' ? 'Loss (binary cross-entropy)' : 'Accuracy', fontSize: 12 },
    layer: [
      {
        data: { values: rows.filter((r) => r.metric === metric) },
        mark: { type: 'line', point: { size: 30 }, strokeWidth: 2 },
        encoding: { x, y: { field: 'value', type: 'quantitative', title: metric, scale: { zero: false }, axis }, color: CURVE_COLOR },
      },
      ...markers,
    ],
  };
}

/** Train/validation loss and accuracy per epoch (plus the learning rate when it changes), best epoch marked. */
export function learningCurvesSpec(history: CurvePoint[], opts: LearningCurveOptions = {}): ChartSpec {
  if (history.length === 0) throw new RangeError('learningCurvesSpec: empty history');
  const rows = curveRows(history);
  const last = history[history.length - 1].epoch;
  const first = history[0].epoch;
  const xDomain = first === last ? [first - 1, last + 1] : [first, last];
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: xDomain, nice: false }, axis: { tickMinStep: 1, format: 'd' } };
  const markers: { epoch: number; label: string }[] = [];
  const best = opts.bestEpoch;
  if (finite(best) && best >= first && best <= last) markers.push({ epoch: best, label: `best ${best}` });
  if (opts.earlyStopped && last !== best) markers.push({ epoch: last, label: 'stopped' });
  const layers = markerLayers(markers);
  const panels: object[] = [curvePanel('loss', rows, x, layers), curvePanel('accuracy', rows, x, layers)];
  const lrs = history.map((h) => h.lr).filter(finite);
  if (lrs.length === history.length && new Set(lrs).size > 1) {
    panels.push({
      width: 200,
      height: 210,
      title: { text: 'Learning rate', fontSize: 12 },
      data: { values: history.map((h) => ({ epoch: h.epoch, lr: h.lr })) },
      mark: { type: 'line', point: { size: 20 }, color: '#6c3483' },
      encoding: { x, y: { field: 'lr', type: 'quantitative', title: 'lr', axis: { format: '.1e' } } },
    });
  }
  const subtitle: string[] = [];
  if (finite(best)) subtitle.push(`best epoch ${best}${opts.monitor ? ` (by ${opts.monitor})` : ''}`);
  if (opts.earlyStopped) subtitle.push(`early-stopped after epoch ${last}`);
  return {
    title: { text: 'Learning curves', subtitle: subtitle.length ? subtitle.join('; ') : undefined },
    hconcat: panels,
    resolve: { scale: { color: 'shared' } },
  } as unknown as ChartSpec;
}

/** 2x2 confusion matrix: counts and share of each true class (row). */
export function confusionSpec(c: Pick<Confusion, 'tn' | 'fp' | 'fn' | 'tp'>, opts: { split: string; threshold?: number } = { split: '' }): ChartSpec {
  const cells = [
    { truth: 'FAKE', predicted: 'FAKE', count: c.tn, rowTotal: c.tn + c.fp },
    { truth: 'FAKE', predicted: 'REAL', count: c.fp, rowTotal: c.tn + c.fp },
    { truth: 'REAL', predicted: 'FAKE', count: c.fn, rowTotal: c.fn + c.tp },
    { truth: 'REAL', predicted: 'REAL', count: c.tp, rowTotal: c.fn + c.tp },
  ].map((d) => {
    const share = d.rowTotal ? d.count / d.rowTotal : 0;
    return { ...d, share, countText: String(d.count), shareText: `${(share * 100).toFixed(1)}% of true ${d.truth}` };
  });
  const n = c.tn + c.fp + c.fn + c.tp;
  const order = ['FAKE', 'REAL'];
  const enc = {
    x: { field: 'predicted', type: 'nominal', sort: order, title: 'predicted class', axis: { labelAngle: 0, orient: 'top' } },
    y: { field: 'truth', type: 'nominal', sort: order, title: 'true class' },
  };
  const textColor = { condition: { test: 'datum.share > 0.55', value: 'white' }, value: '#1b2631' };
  return {
    title: {
      text: `Confusion matrix${opts.split ? ` (${opts.split})` : ''}`,
      subtitle: `n = ${n}${opts.threshold !== undefined ? `, REAL iff P(REAL) >= ${opts.threshold}` : ''}`,
    },
    width: 240,
    height: 240,
    data: { values: cells },
    encoding: enc,
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 2 },
        encoding: {
          color: { field: 'share', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'share of row', legend: { format: '.0%', gradientLength: 120 } },
        },
      },
      {
        mark: { type: 'text', fontSize: 20, fontWeight: 'bold', dy: -8 },
        encoding: { text: { field: 'countText' }, color: textColor },
      },
      {
        mark: { type: 'text', fontSize: 10, dy: 12 },
        encoding: { text: { field: 'shareText' }, color: textColor },
      },
    ],
  } as unknown as ChartSpec;
}

/** Keeps a curve's shape with at most ~maxPoints points (both ends and every corner further than `eps` apart). */
export function thinCurve(fpr: number[], tpr: number[], maxPoints = 600): { fpr: number; tpr: number }[] {
  const pts: { fpr: number; tpr: number }[] = [];
  for (let i = 0; i < fpr.length; i++) if (finite(fpr[i]) && finite(tpr[i])) pts.push({ fpr: fpr[i], tpr: tpr[i] });
  if (pts.length <= maxPoints) return pts;
  let eps = 1 / maxPoints;
  for (;;) {
    const out = [pts[0]];
    for (let i = 1; i < pts.length - 1; i++) {
      const p = out[out.length - 1];
      if (Math.abs(pts[i].fpr - p.fpr) + Math.abs(pts[i].tpr - p.tpr) >= eps) out.push(pts[i]);
    }
    out.push(pts[pts.length - 1]);
    if (out.length <= maxPoints) return out;
    eps *= 1.5;
  }
}

export interface RocSeries {
  split: string;
  curve: RocCurve;
  auc: number | null;
  /** The operating point at the decision threshold. */
  point?: { fpr: number; tpr: number; threshold: number };
}

/** ROC curves (one per split) with the AUC in the legend, the chance diagonal and the operating points. */
export function rocSpec(series: RocSeries[]): ChartSpec {
  if (series.length === 0) throw new RangeError('rocSpec: no series');
  const label = (s: RocSeries) => `${s.split} (AUC ${s.auc === null ? 'n/a' : s.auc.toFixed(4)})`;
  const rows = series.flatMap((s) => thinCurve(s.curve.fpr, s.curve.tpr).map((p, i) => ({ ...p, i, series: label(s) })));
  const points = series.filter((s) => s.point).map((s) => ({ ...s.point, series: label(s), text: `threshold ${s.point?.threshold}` }));
  const domain = series.map(label);
  const range = series.map((s) => (COLORS as Record<string, string>)[s.split] ?? COLORS.marker);
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain, range }, legend: { orient: 'bottom-right', labelLimit: 260 } };
  const axis = (title: string) => ({ field: '', type: 'quantitative', title, scale: { domain: [0, 1], nice: false }, axis: { format: '.1f', tickCount: 5 } });
  return {
    title: { text: 'ROC curve', subtitle: 'REAL is the positive class; dots: the decision threshold' },
    width: 300,
    height: 300,
    layer: [
      {
        data: { values: [{ fpr: 0, tpr: 0 }, { fpr: 1, tpr: 1 }] },
        mark: { type: 'line', color: '#aaaaaa', strokeDash: [4, 4], strokeWidth: 1 },
        encoding: { x: { ...axis('false positive rate (FAKE called REAL)'), field: 'fpr' }, y: { ...axis('true positive rate (REAL recall)'), field: 'tpr' } },
      },
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 2, interpolate: 'linear' },
        encoding: { x: { field: 'fpr', type: 'quantitative' }, y: { field: 'tpr', type: 'quantitative' }, order: { field: 'i', type: 'quantitative' }, color },
      },
      ...(points.length
        ? [
            {
              data: { values: points },
              mark: { type: 'point', filled: true, size: 60, stroke: 'white', strokeWidth: 1, opacity: 1 },
              encoding: { x: { field: 'fpr', type: 'quantitative' }, y: { field: 'tpr', type: 'quantitative' }, color },
            },
          ]
        : []),
    ],
  } as unknown as ChartSpec;
}

/** Precision, recall and F1 of each class (and their macro mean) as grouped bars. */
export function perClassSpec(m: Pick<MetricsReport, 'precision' | 'recall' | 'f1'>, opts: { split: string }): ChartSpec {
  const rows: { group: string; metric: string; value: number; text: string }[] = [];
  for (const group of ['FAKE', 'REAL', 'macro'] as const) {
    for (const [metric, v] of [
      ['precision', m.precision[group]],
      ['recall', m.recall[group]],
      ['F1', m.f1[group]],
    ] as const) {
      if (finite(v)) rows.push({ group: group === 'macro' ? 'macro mean' : group, metric, value: v, text: v.toFixed(3) });
    }
  }
  const metrics = Object.keys(METRIC_COLORS);
  return {
    title: { text: `Precision, recall and F1 per class${opts.split ? ` (${opts.split})` : ''}`, subtitle: 'each class in turn taken as the positive one' },
    data: { values: rows },
    width: { step: 34 },
    height: 240,
    encoding: {
      x: { field: 'group', type: 'nominal', sort: ['FAKE', 'REAL', 'macro mean'], title: null, axis: { labelAngle: 0, labelFontSize: 12 } },
      xOffset: { field: 'metric', type: 'nominal', sort: metrics },
      y: { field: 'value', type: 'quantitative', scale: { domain: [0, 1.08], nice: false }, axis: { format: '.1f', values: [0, 0.2, 0.4, 0.6, 0.8, 1] }, title: null },
    },
    layer: [
      {
        mark: { type: 'bar', width: { band: 0.9 } },
        encoding: {
          color: { field: 'metric', type: 'nominal', title: null, sort: metrics, scale: { domain: metrics, range: Object.values(METRIC_COLORS) }, legend: { orient: 'top', direction: 'horizontal' } },
        },
      },
      { mark: { type: 'text', dy: -6, fontSize: 9, color: '#333' }, encoding: { text: { field: 'text' } } },
    ],
  } as unknown as ChartSpec;
}

/**
 * Histogram of P(REAL), one row per true class, binned here (the spec stays small whatever the
 * split's size). Counts on a symlog axis: a good detector piles most images into the end bins, and
 * the errors in between would not show on a linear one.
 */
export function scoreHistogramSpec(pReal: ArrayLike<number>, labels: ArrayLike<number>, opts: { split: string; threshold?: number; bins?: number }): ChartSpec {
  const bins = opts.bins ?? 20;
  const counts = { FAKE: new Array<number>(bins).fill(0), REAL: new Array<number>(bins).fill(0) };
  for (let i = 0; i < pReal.length; i++) {
    const p = pReal[i];
    if (!finite(p)) continue;
    const b = Math.min(bins - 1, Math.max(0, Math.floor(p * bins)));
    counts[labels[i] === 1 ? 'REAL' : 'FAKE'][b]++;
  }
  const rows: { cls: string; start: number; end: number; count: number }[] = [];
  for (const cls of ['FAKE', 'REAL'] as const)
    for (let b = 0; b < bins; b++) rows.push({ cls: `true ${cls}`, start: b / bins, end: (b + 1) / bins, count: counts[cls][b] });
  const threshold = opts.threshold ?? 0.5;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const ticks = [0];
  for (let t = 1; t <= max; t *= 10) ticks.push(t);
  return {
    title: { text: `Scores${opts.split ? ` (${opts.split})` : ''}`, subtitle: `P(REAL) by true class (count axis symlog); dashed: threshold ${threshold}` },
    data: { values: rows },
    facet: {
      row: {
        field: 'cls',
        type: 'nominal',
        title: null,
        sort: ['true FAKE', 'true REAL'],
        header: { labelAngle: 0, labelOrient: 'top', labelAnchor: 'start', labelFontSize: 11, labelPadding: 2 },
      },
    },
    spacing: 8,
    spec: {
      width: 320,
      height: 92,
      layer: [
        {
          mark: { type: 'bar', binSpacing: 0 },
          encoding: {
            x: { field: 'start', type: 'quantitative', bin: 'binned', title: 'P(REAL)', scale: { domain: [0, 1], nice: false }, axis: { format: '.1f', values: [0, 0.2, 0.4, 0.6, 0.8, 1] } },
            x2: { field: 'end' },
            y: { field: 'count', type: 'quantitative', title: 'images', scale: { type: 'symlog', domain: [0, max], nice: false }, axis: { values: ticks, format: ',d' } },
            color: { field: 'cls', type: 'nominal', legend: null, scale: { domain: ['true FAKE', 'true REAL'], range: [COLORS.FAKE, COLORS.REAL] } },
          },
        },
        {
          mark: { type: 'rule', color: COLORS.marker, strokeDash: [4, 3] },
          encoding: { x: { datum: threshold, type: 'quantitative' } },
        },
      ],
    },
  } as unknown as ChartSpec;
}

export interface SweepPoint {
  name: string;
  parameters: number;
  accuracy: number;
  /** Model family or any grouping label. */
  group: string;
}

/** Accuracy against the number of parameters (log x) of the runs of a sweep. */
export function sweepSpec(points: SweepPoint[], opts: { accuracyOf: string }): ChartSpec {
  if (points.length === 0) throw new RangeError('sweepSpec: no points');
  const groups = [...new Set(points.map((p) => p.group))].sort();
  return {
    title: { text: 'Accuracy vs parameters', subtitle: `${opts.accuracyOf} accuracy of each run; x on a log scale` },
    width: 480,
    height: 300,
    data: { values: points },
    encoding: {
      x: { field: 'parameters', type: 'quantitative', scale: { type: 'log', nice: false, padding: 24 }, title: 'parameters (log scale)', axis: { format: '~s', labelOverlap: 'greedy', labelSeparation: 6 } },
      y: { field: 'accuracy', type: 'quantitative', scale: { zero: false, padding: 12 }, axis: { format: '.1%' }, title: `${opts.accuracyOf} accuracy` },
    },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 80, opacity: 0.9 },
        encoding: { color: { field: 'group', type: 'nominal', title: 'model', scale: { domain: groups, scheme: 'tableau10' } } },
      },
      { mark: { type: 'text', align: 'left', dx: 7, dy: -6, fontSize: 10, color: '#333', limit: 140 }, encoding: { text: { field: 'name' } } },
    ],
  } as unknown as ChartSpec;
}

/** One bin of a reliability diagram (src/calibration's ReliabilityBin). */
export interface ReliabilityPoint {
  lo: number;
  hi: number;
  count: number;
  confidence: number;
  accuracy: number;
}

/**
 * Reliability diagram: accuracy against confidence per non-empty bin, before and after temperature
 * scaling, on the identity line (a calibrated model lies on it); point size is the bin's count.
 */
export function reliabilitySpec(series: { label: string; bins: ReliabilityPoint[] }[], opts: { split: string }): ChartSpec {
  const rows = series.flatMap((s) => s.bins.filter((b) => b.count > 0 && finite(b.confidence) && finite(b.accuracy)).map((b) => ({ ...b, series: s.label })));
  if (rows.length === 0) throw new RangeError('reliabilitySpec: no non-empty bins');
  const lo = Math.max(0, Math.floor(Math.min(...rows.map((r) => Math.min(r.confidence, r.accuracy))) * 10) / 10);
  const axis = (title: string) => ({ type: 'quantitative', title, scale: { domain: [lo, 1], nice: false }, axis: { format: '.1f', tickCount: 5 } });
  const color = { field: 'series', type: 'nominal', title: null, scale: { domain: series.map((s) => s.label), range: [COLORS.marker, COLORS.test] }, legend: { orient: 'bottom-right', labelLimit: 260 } };
  return {
    title: { text: `Reliability (${opts.split})`, subtitle: 'accuracy vs confidence of the predicted class per bin; on the diagonal = calibrated' },
    width: 300,
    height: 300,
    layer: [
      {
        data: { values: [{ x: lo, y: lo }, { x: 1, y: 1 }] },
        mark: { type: 'line', color: '#aaaaaa', strokeDash: [4, 4], strokeWidth: 1 },
        encoding: { x: { ...axis('confidence'), field: 'x' }, y: { ...axis('accuracy'), field: 'y' } },
      },
      {
        data: { values: rows },
        mark: { type: 'line', point: false, strokeWidth: 1.5 },
        encoding: { x: { field: 'confidence', type: 'quantitative' }, y: { field: 'accuracy', type: 'quantitative' }, color },
      },
      {
        data: { values: rows },
        mark: { type: 'point', filled: true, opacity: 0.85 },
        encoding: {
          x: { field: 'confidence', type: 'quantitative' },
          y: { field: 'accuracy', type: 'quantitative' },
          size: { field: 'count', type: 'quantitative', title: 'images', scale: { type: 'sqrt', range: [15, 300] }, legend: null },
          color,
        },
      },
    ],
  } as unknown as ChartSpec;
}

/** One row of a robustness report the chart needs. */
export interface RobustnessPoint {
  perturbation: string;
  family: string;
  strength: number | null;
  rocAuc: number | null;
  accuracy: number;
}

/**
 * AUROC against strength, one small panel (and line) per single-step perturbation with a strength;
 * the dashed rule is the clean AUROC. Compositions and strength-less ones (hflip) are left to the table.
 */
export function robustnessSpec(rows: RobustnessPoint[]): ChartSpec {
  const clean = rows.find((r) => r.family === 'clean');
  const points = rows.filter((r) => r.family !== 'clean' && !r.perturbation.includes('+') && finite(r.strength) && finite(r.rocAuc));
  if (points.length === 0) throw new RangeError('robustnessSpec: no single-step perturbation with a strength and an AUROC');
  const families = [...new Set(points.map((p) => p.family))];
  const minAuc = Math.min(...points.map((p) => p.rocAuc as number), clean && finite(clean.rocAuc) ? clean.rocAuc : 1);
  const lo = Math.max(0, Math.floor(minAuc * 20) / 20);
  const layers: object[] = [
    {
      mark: { type: 'line', point: { filled: true, size: 40 }, strokeWidth: 2 },
      encoding: {
        x: { field: 'strength', type: 'quantitative', title: null, scale: { zero: false, nice: false, padding: 8 }, axis: { tickCount: 4 } },
        y: { field: 'rocAuc', type: 'quantitative', title: 'AUROC', scale: { domain: [lo, 1], nice: false }, axis: { format: '.2f', tickCount: 5 } },
        color: { field: 'family', type: 'nominal', legend: null, scale: { domain: families, scheme: 'tableau10' } },
        order: { field: 'strength', type: 'quantitative' },
      },
    },
  ];
  if (clean && finite(clean.rocAuc)) layers.push({ mark: { type: 'rule', color: COLORS.marker, strokeDash: [4, 3] }, encoding: { y: { datum: clean.rocAuc, type: 'quantitative' } } });
  return {
    title: { text: 'AUROC under perturbations', subtitle: `one panel per perturbation, x = its strength${clean && finite(clean.rocAuc) ? `; dashed: clean AUROC ${(clean.rocAuc as number).toFixed(4)}` : ''}` },
    data: { values: points },
    facet: { field: 'family', type: 'nominal', title: null, sort: families, header: { labelFontSize: 11, labelPadding: 2 } },
    columns: Math.min(4, families.length),
    spacing: 10,
    resolve: { scale: { x: 'independent' } },
    spec: { width: 150, height: 110, layer: layers },
  } as unknown as ChartSpec;
}

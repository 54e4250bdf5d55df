/**
 * Binary-classification metrics for CIFAKE detectors. Pure functions, no dependencies.
 *
 * Conventions (shared with the rest of the package):
 *  - labels: FAKE = 0, REAL = 1. "Positive" / "class 1" means REAL.
 *  - a score is P(REAL) (a probability in [0, 1]) or, where stated, a raw logit
 *    (P(REAL) = sigmoid(logit)).
 *  - thresholding: a sample is predicted REAL iff `P(REAL) >= threshold` (default 0.5).
 *    `>=` matches the convention of `rocCurve` (scikit-learn's `roc_curve`), so the
 *    confusion matrix at threshold t is exactly the ROC point whose threshold is t.
 *    With logits and threshold 0.5 this is `logit >= 0`.
 *  - zero division (e.g. precision of a class that is never predicted) yields 0, as
 *    scikit-learn's `zero_division=0`. F1 is computed as 2tp / (2tp + fp + fn), 0 when
 *    that is 0/0 (identical to 2PR/(P+R) with the zero-division rule).
 *  - ROC AUC with only one class present is undefined: `rocAuc` returns NaN, and
 *    `computeMetrics` reports `rocAuc: null` (so the report stays JSON-serialisable)
 *    with an explanation in `notes`.
 *
 * Inputs are validated: score and label arrays must have the same length, labels must be
 * exactly 0 or 1, scores must not be NaN (probabilities must lie in [0, 1] where a
 * probability is required). Violations throw a RangeError / TypeError with a clear message.
 */

/** A numeric array: typed array or plain array. */
export type Scores = Float32Array | Float64Array | ArrayLike<number>;
/** Labels, 0 = FAKE, 1 = REAL. */
export type Labels = Uint8Array | ArrayLike<number>;

export const FAKE = 0 as const;
export const REAL = 1 as const;
export const CLASS_NAMES = ['FAKE', 'REAL'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];

/** Default clipping epsilon for `logLoss`. */
export const LOG_LOSS_EPS = 1e-7;

// ---------------------------------------------------------------------------
// helpers

function checkLabels(labels: Labels, where: string): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y !== 0 && y !== 1) {
      throw new RangeError(`${where}: labels must be 0 (FAKE) or 1 (REAL); labels[${i}] = ${String(y)}`);
    }
  }
}

function checkPair(scores: Scores, labels: Labels, where: string): void {
  if (scores == null || labels == null || typeof scores.length !== 'number' || typeof labels.length !== 'number') {
    throw new TypeError(`${where}: expected array-like scores and labels`);
  }
  if (scores.length !== labels.length) {
    throw new RangeError(`${where}: scores and labels differ in length (${scores.length} vs ${labels.length})`);
  }
  checkLabels(labels, where);
}

function checkNotNaN(scores: Scores, where: string): void {
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw new RangeError(`${where}: scores[${i}] is NaN`);
  }
}

function checkProbs(probs: Scores, where: string): void {
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    if (!(p >= 0 && p <= 1)) {
      throw new RangeError(`${where}: probabilities must lie in [0, 1]; probs[${i}] = ${String(p)} (pass fromLogits for logits)`);
    }
  }
}

function checkThreshold(threshold: number, where: string): void {
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new RangeError(`${where}: threshold must be a number, got ${String(threshold)}`);
  }
}

/** a / b, or 0 when b is 0 (documented zero-division rule). */
function safeDiv(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

// ---------------------------------------------------------------------------
// sigmoid / losses

/** Numerically stable logistic function; accepts a number or an array (returns Float64Array). */
export function sigmoid(x: number): number;
export function sigmoid(x: Scores): Float64Array;
export function sigmoid(x: number | Scores): number | Float64Array {
  if (typeof x === 'number') return sigmoid1(x);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = sigmoid1(x[i]);
  return out;
}

function sigmoid1(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** softplus(z) = log(1 + e^z), stable for large |z|. */
function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/**
 * Mean binary cross-entropy of probabilities P(REAL) against labels, with probabilities
 * clipped to [eps, 1 - eps] (eps = 1e-7 by default). Returns NaN for empty input.
 */
export function logLoss(probs: Scores, labels: Labels, eps: number = LOG_LOSS_EPS): number {
  checkPair(probs, labels, 'logLoss');
  checkProbs(probs, 'logLoss');
  if (!(eps >= 0 && eps < 0.5)) throw new RangeError(`logLoss: eps must be in [0, 0.5), got ${eps}`);
  const n = probs.length;
  if (n === 0) return NaN;
  const lo = eps;
  const hi = 1 - eps;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.min(hi, Math.max(lo, probs[i]));
    sum -= labels[i] === 1 ? Math.log(p) : Math.log1p(-p);
  }
  return sum / n;
}

/**
 * Mean binary cross-entropy computed directly from logits, numerically stable and
 * unclipped (same as PyTorch's `BCEWithLogitsLoss(reduction='mean')`):
 * loss_i = softplus(-x_i) if y_i = 1, softplus(x_i) if y_i = 0. Returns NaN for empty input.
 */
export function bceWithLogits(logits: Scores, labels: Labels): number {
  checkPair(logits, labels, 'bceWithLogits');
  checkNotNaN(logits, 'bceWithLogits');
  const n = logits.length;
  if (n === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    sum += labels[i] === 1 ? softplus(-x) : softplus(x);
  }
  return sum / n;
}

// ---------------------------------------------------------------------------
// confusion matrix and threshold metrics

export interface Confusion {
  /** true FAKE predicted FAKE */
  tn: number;
  /** true FAKE predicted REAL */
  fp: number;
  /** true REAL predicted FAKE */
  fn: number;
  /** true REAL predicted REAL */
  tp: number;
  /** rows = true class [FAKE, REAL], cols = predicted class [FAKE, REAL]: [[tn, fp], [fn, tp]] */
  matrix: [[number, number], [number, number]];
}

/**
 * Confusion matrix with REAL (1) as the positive class. A sample is predicted REAL iff
 * `probs[i] >= threshold`. `probs` may be any monotone score; with logits pass a logit
 * threshold (or use `computeMetrics(..., { fromLogits: true })`, which thresholds P(REAL)).
 */
export function confusionMatrix(probs: Scores, labels: Labels, threshold = 0.5): Confusion {
  checkPair(probs, labels, 'confusionMatrix');
  checkNotNaN(probs, 'confusionMatrix');
  checkThreshold(threshold, 'confusionMatrix');
  let tn = 0;
  let fp = 0;
  let fn = 0;
  let tp = 0;
  for (let i = 0; i < probs.length; i++) {
    const predReal = probs[i] >= threshold;
    if (labels[i] === 1) {
      if (predReal) tp++;
      else fn++;
    } else if (predReal) fp++;
    else tn++;
  }
  return { tn, fp, fn, tp, matrix: [[tn, fp], [fn, tp]] };
}

type ConfusionCounts = Pick<Confusion, 'tn' | 'fp' | 'fn' | 'tp'>;

function isConfusion(x: unknown): x is ConfusionCounts {
  return typeof x === 'object' && x !== null && !('length' in x) && 'tp' in x && 'tn' in x;
}

/** Fraction of correct predictions at `threshold` (NaN for empty input). Also accepts a Confusion. */
export function accuracy(probs: Scores, labels: Labels, threshold?: number): number;
export function accuracy(confusion: ConfusionCounts): number;
export function accuracy(a: Scores | ConfusionCounts, labels?: Labels, threshold = 0.5): number {
  const c = isConfusion(a) ? a : confusionMatrix(a, labels as Labels, threshold);
  const n = c.tn + c.fp + c.fn + c.tp;
  return n === 0 ? NaN : (c.tp + c.tn) / n;
}

/** Per-class value plus unweighted (macro) mean of the two classes. */
export interface PerClass {
  FAKE: number;
  REAL: number;
  macro: number;
}

export interface ClassReport {
  precision: PerClass;
  recall: PerClass;
  f1: PerClass;
  /** number of true samples per class */
  support: { FAKE: number; REAL: number };
}

/**
 * Precision / recall / F1 for FAKE and REAL plus macro averages, from a confusion matrix.
 * FAKE treats 0 as the positive class (precision = tn/(tn+fn), recall = tn/(tn+fp)).
 * Zero division → 0.
 */
export function classReport(c: ConfusionCounts): ClassReport {
  const { tn, fp, fn, tp } = c;
  const pReal = safeDiv(tp, tp + fp);
  const rReal = safeDiv(tp, tp + fn);
  const fReal = safeDiv(2 * tp, 2 * tp + fp + fn);
  const pFake = safeDiv(tn, tn + fn);
  const rFake = safeDiv(tn, tn + fp);
  const fFake = safeDiv(2 * tn, 2 * tn + fn + fp);
  return {
    precision: { FAKE: pFake, REAL: pReal, macro: (pFake + pReal) / 2 },
    recall: { FAKE: rFake, REAL: rReal, macro: (rFake + rReal) / 2 },
    f1: { FAKE: fFake, REAL: fReal, macro: (fFake + fReal) / 2 },
    support: { FAKE: tn + fp, REAL: fn + tp },
  };
}

/** Precision per class (+ macro) at `threshold`. */
export function precision(probs: Scores, labels: Labels, threshold = 0.5): PerClass {
  return classReport(confusionMatrix(probs, labels, threshold)).precision;
}

/** Recall per class (+ macro) at `threshold`. */
export function recall(probs: Scores, labels: Labels, threshold = 0.5): PerClass {
  return classReport(confusionMatrix(probs, labels, threshold)).recall;
}

/** F1 per class (+ macro) at `threshold`. */
export function f1Score(probs: Scores, labels: Labels, threshold = 0.5): PerClass {
  return classReport(confusionMatrix(probs, labels, threshold)).f1;
}

// ---------------------------------------------------------------------------
// ROC

/** Indices 0..n-1 sorted by score ascending (stable). */
function argsortAsc(scores: Scores): Uint32Array {
  const n = scores.length;
  const vals = Float64Array.from(scores as ArrayLike<number>);
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => vals[a] - vals[b] || a - b);
  return idx;
}

/**
 * Exact ROC AUC of scores (P(REAL), logits or any monotone score) with REAL as positive,
 * via the Mann–Whitney U statistic with average ranks for ties:
 *   AUC = (sum of ranks of REAL samples − nReal(nReal+1)/2) / (nReal · nFake)
 * i.e. the probability that a random REAL sample scores higher than a random FAKE one,
 * ties counting 1/2. Returns NaN when only one class is present (or input is empty).
 * O(n log n).
 */
export function rocAuc(scores: Scores, labels: Labels): number {
  checkPair(scores, labels, 'rocAuc');
  checkNotNaN(scores, 'rocAuc');
  const n = scores.length;
  let nPos = 0;
  for (let i = 0; i < n; i++) nPos += labels[i];
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  const idx = argsortAsc(scores);
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    const v = scores[idx[i]];
    while (j + 1 < n && scores[idx[j + 1]] === v) j++;
    // positions i..j (0-based) share the average 1-based rank
    const avgRank = (i + j) / 2 + 1;
    let posInGroup = 0;
    for (let k = i; k <= j; k++) posInGroup += labels[idx[k]];
    rankSumPos += posInGroup * avgRank;
    i = j + 1;
  }
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface RocCurve {
  /** false-positive rate = fp / nFake, non-decreasing */
  fpr: number[];
  /** true-positive rate (REAL recall) = tp / nReal, non-decreasing */
  tpr: number[];
  /**
   * decreasing thresholds; point k is "predict REAL iff score >= thresholds[k]".
   * thresholds[0] = +Infinity (the (0, 0) point), as scikit-learn ≥ 1.3. Note
   * JSON.stringify turns Infinity into null.
   */
  thresholds: number[];
}

export interface RocCurveOptions {
  /**
   * Drop points that lie on a straight segment between their neighbours (same rule as
   * scikit-learn's drop_intermediate). Does not change the trapezoidal area. Default false.
   */
  dropIntermediate?: boolean;
}

/**
 * ROC curve points, one per distinct score (plus the (0, 0) start point), in the order of
 * decreasing threshold — same as scikit-learn's `roc_curve(drop_intermediate=False)`.
 * When a class is absent its rate is NaN (undefined), as in scikit-learn.
 * The trapezoidal area under (fpr, tpr) equals `rocAuc`.
 */
export function rocCurve(scores: Scores, labels: Labels, options: RocCurveOptions = {}): RocCurve {
  checkPair(scores, labels, 'rocCurve');
  checkNotNaN(scores, 'rocCurve');
  const n = scores.length;
  let nPos = 0;
  for (let i = 0; i < n; i++) nPos += labels[i];
  const nNeg = n - nPos;
  const idx = argsortAsc(scores);
  const tps: number[] = [0];
  const fps: number[] = [0];
  const thresholds: number[] = [Infinity];
  let tp = 0;
  let fp = 0;
  let k = n - 1;
  while (k >= 0) {
    const v = scores[idx[k]];
    while (k >= 0 && scores[idx[k]] === v) {
      if (labels[idx[k]] === 1) tp++;
      else fp++;
      k--;
    }
    tps.push(tp);
    fps.push(fp);
    thresholds.push(v);
  }
  let keep: number[] | null = null;
  if (options.dropIntermediate && tps.length > 2) {
    keep = [0];
    for (let i = 1; i < tps.length - 1; i++) {
      const d2f = fps[i + 1] - 2 * fps[i] + fps[i - 1];
      const d2t = tps[i + 1] - 2 * tps[i] + tps[i - 1];
      if (d2f !== 0 || d2t !== 0) keep.push(i);
    }
    keep.push(tps.length - 1);
  }
  const pick = <T>(a: T[]): T[] => (keep ? keep.map((i) => a[i]) : a);
  return {
    fpr: pick(fps).map((f) => (nNeg === 0 ? NaN : f / nNeg)),
    tpr: pick(tps).map((t) => (nPos === 0 ? NaN : t / nPos)),
    thresholds: pick(thresholds),
  };
}

/** Trapezoidal area under a curve given by x (non-decreasing) and y. */
export function trapezoid(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new RangeError(`trapezoid: x and y differ in length (${x.length} vs ${y.length})`);
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return area;
}

// ---------------------------------------------------------------------------
// combined report

export interface ComputeMetricsOptions {
  /** P(REAL) threshold for the class predictions (default 0.5). */
  threshold?: number;
  /** The scores are logits; P(REAL) = sigmoid(logit). Default false (scores are P(REAL)). */
  fromLogits?: boolean;
}

/** Plain, JSON-serialisable metrics report. "class 1" / positive = REAL. */
export interface MetricsReport {
  n: number;
  accuracy: number;
  precision: PerClass;
  recall: PerClass;
  f1: PerClass;
  /** number of true samples per class */
  support: { FAKE: number; REAL: number };
  confusion: Confusion;
  /** null when undefined (only one class present); see notes */
  rocAuc: number | null;
  /** mean BCE of P(REAL), probabilities clipped at 1e-7 (same value for logits or probs input) */
  logLoss: number;
  threshold: number;
  /** human-readable caveats, e.g. why rocAuc is null; empty when none */
  notes: string[];
}

/**
 * All metrics in one JSON-serialisable object. With `fromLogits`, the logits are mapped
 * through a stable sigmoid for thresholding and log-loss, and the AUC is computed on the
 * raw logits (identical ranking, but immune to sigmoid saturation creating false ties).
 * Throws on empty input.
 */
export function computeMetrics(scores: Scores, labels: Labels, options: ComputeMetricsOptions = {}): MetricsReport {
  const threshold = options.threshold ?? 0.5;
  const fromLogits = options.fromLogits ?? false;
  checkPair(scores, labels, 'computeMetrics');
  checkThreshold(threshold, 'computeMetrics');
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new RangeError(`computeMetrics: threshold must be in [0, 1], got ${threshold}`);
  }
  const n = scores.length;
  if (n === 0) throw new RangeError('computeMetrics: no samples (n = 0)');
  checkNotNaN(scores, 'computeMetrics');
  const probs = fromLogits ? sigmoid(scores) : scores;
  if (!fromLogits) checkProbs(probs, 'computeMetrics');
  const confusion = confusionMatrix(probs, labels, threshold);
  const rep = classReport(confusion);
  const auc = rocAuc(scores, labels);
  const notes: string[] = [];
  if (Number.isNaN(auc)) {
    const only = rep.support.REAL === 0 ? 'FAKE' : 'REAL';
    notes.push(`rocAuc is undefined: only one class present (all ${only}); reported as null`);
  }
  return {
    n,
    accuracy: (confusion.tp + confusion.tn) / n,
    precision: rep.precision,
    recall: rep.recall,
    f1: rep.f1,
    support: rep.support,
    confusion,
    rocAuc: Number.isNaN(auc) ? null : auc,
    logLoss: logLoss(probs, labels),
    threshold,
    notes,
  };
}

function fmt(x: number | null | undefined, digits = 4): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/**
 * One short human-readable line, e.g.
 * `n=2000 acc=91.50% F1 FAKE=0.9137 REAL=0.9163 macro=0.9150 AUC=0.9712 logloss=0.2101 thr=0.5`.
 * Accepts a report that went through JSON (rocAuc null).
 */
export function summarizeMetrics(m: Pick<MetricsReport, 'n' | 'accuracy' | 'f1' | 'rocAuc' | 'logLoss' | 'threshold'>): string {
  const acc = typeof m.accuracy === 'number' && Number.isFinite(m.accuracy) ? `${(m.accuracy * 100).toFixed(2)}%` : 'n/a';
  return (
    `n=${m.n} acc=${acc} ` +
    `F1 FAKE=${fmt(m.f1.FAKE)} REAL=${fmt(m.f1.REAL)} macro=${fmt(m.f1.macro)} ` +
    `AUC=${fmt(m.rocAuc)} logloss=${fmt(m.logLoss)} thr=${m.threshold}`
  );
}

/**
 * Calibration of a one-logit detector: expected calibration error with its reliability bins,
 * temperature scaling (one scalar T, P(REAL) = sigmoid(logit / T), fitted by minimising the
 * validation log loss) and the Youden's J threshold (max TPR - FPR, REAL positive).
 *
 * Everything here is fitted on validation and only applied to test: a temperature or threshold
 * chosen on the test split would make the test figures optimistic.
 */
import { rocCurve, sigmoid, type Labels, type Scores } from '../metrics';

export interface ReliabilityBin {
  /** confidence interval [lo, hi) of the bin (the last bin includes 1) */
  lo: number;
  hi: number;
  count: number;
  /** mean top-label confidence max(p, 1 - p) of the bin's predictions (NaN when empty) */
  confidence: number;
  /** share of the bin's predictions whose label (p >= 0.5 = REAL) is right (NaN when empty) */
  accuracy: number;
}

export interface CalibrationReport {
  /** expected calibration error: sum over bins of count / n * |accuracy - confidence| */
  ece: number;
  /** the largest |accuracy - confidence| over non-empty bins */
  mce: number;
  bins: ReliabilityBin[];
}

/**
 * Top-label ECE of P(REAL) predictions (Guo et al. 2017): each prediction's confidence is
 * max(p, 1 - p), its label p >= 0.5, and confidences in [0.5, 1] fall into `bins` equal-width bins
 * of [0, 1] (default 15, as the usual implementations; the lower half of the bins stays empty for a
 * binary model).
 */
export function calibrationReport(probs: Scores, labels: Labels, bins = 15): CalibrationReport {
  if (probs.length !== labels.length) throw new RangeError(`calibrationReport: ${probs.length} probabilities but ${labels.length} labels`);
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`calibrationReport: bins must be an integer >= 1, got ${bins}`);
  const count = new Float64Array(bins), conf = new Float64Array(bins), correct = new Float64Array(bins);
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    if (!(p >= 0 && p <= 1)) throw new RangeError(`calibrationReport: probability ${i} is ${p}, not in [0, 1]`);
    const c = Math.max(p, 1 - p);
    const b = Math.min(bins - 1, Math.floor(c * bins));
    count[b]++;
    conf[b] += c;
    correct[b] += (p >= 0.5 ? 1 : 0) === labels[i] ? 1 : 0;
  }
  const n = probs.length;
  let ece = 0, mce = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const k = count[b];
    const confidence = k ? conf[b] / k : NaN, accuracy = k ? correct[b] / k : NaN;
    if (k) {
      const gap = Math.abs(accuracy - confidence);
      ece += (k / n) * gap;
      mce = Math.max(mce, gap);
    }
    out.push({ lo: b / bins, hi: (b + 1) / bins, count: k, confidence, accuracy });
  }
  return { ece: n ? ece : NaN, mce: n ? mce : NaN, bins: out };
}

/** P(REAL) = sigmoid(logit / temperature) of each logit. */
export function temperedProbs(logits: Scores, temperature: number): Float64Array {
  return sigmoid(Float64Array.from(logits as ArrayLike<number>, (z) => z / temperature));
}

/** Mean BCE of sigmoid(logit / t) against the labels (numerically stable form). */
export function temperedLogLoss(logits: Scores, labels: Labels, t: number): number {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i] / t;
    // -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))
    sum += Math.max(z, 0) - z * labels[i] + Math.log1p(Math.exp(-Math.abs(z)));
  }
  return sum / logits.length;
}

/**
 * The temperature T > 0 that minimises the log loss of sigmoid(logit / T) on these (validation)
 * logits. The loss is unimodal in log T, so a golden-section search over log T in [1/20, 20]
 * finds it to ~1e-6 in log T. Returns 1 for empty input or a single class.
 */
export function fitTemperature(logits: Scores, labels: Labels): number {
  if (logits.length !== labels.length) throw new RangeError(`fitTemperature: ${logits.length} logits but ${labels.length} labels`);
  let pos = 0;
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isFinite(logits[i])) throw new RangeError(`fitTemperature: logit ${i} is ${logits[i]}`);
    pos += labels[i];
  }
  if (pos === 0 || pos === labels.length) return 1;
  const f = (u: number) => temperedLogLoss(logits, labels, Math.exp(u));
  const g = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(1 / 20), b = Math.log(20);
  let c = b - g * (b - a), d = a + g * (b - a);
  let fc = f(c), fd = f(d);
  while (b - a > 1e-6) {
    if (fc < fd) {
      b = d; d = c; fd = fc;
      c = b - g * (b - a); fc = f(c);
    } else {
      a = c; c = d; fc = fd;
      d = a + g * (b - a); fd = f(d);
    }
  }
  return Math.exp((a + b) / 2);
}

/**
 * Youden's J threshold on P(REAL): the ROC point with the largest TPR - FPR (REAL positive); ties
 * go to the threshold closest to 0.5. Predicting REAL iff p >= threshold reproduces that point.
 * Returns 0.5 when a class is absent.
 */
export function youdenThreshold(probs: Scores, labels: Labels): { threshold: number; j: number } {
  const roc = rocCurve(probs, labels);
  let best = { threshold: 0.5, j: -Infinity };
  for (let k = 1; k < roc.thresholds.length; k++) {
    const j = roc.tpr[k] - roc.fpr[k];
    if (!Number.isFinite(j)) return { threshold: 0.5, j: NaN };
    const t = roc.thresholds[k];
    if (j > best.j + 1e-12 || (Math.abs(j - best.j) <= 1e-12 && Math.abs(t - 0.5) < Math.abs(best.threshold - 0.5))) best = { threshold: t, j };
  }
  return best;
}

/** The temperature calibration stored in a checkpoint's meta (`calibration.temperature`), if any. */
export function storedTemperature(meta: object): number | undefined {
  return (meta as { calibration?: { temperature?: number } }).calibration?.temperature;
}

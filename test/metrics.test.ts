import { expect } from 'chai';
import {
  accuracy,
  bceWithLogits,
  classReport,
  computeMetrics,
  confusionMatrix,
  f1Score,
  logLoss,
  precision,
  recall,
  rocAuc,
  rocCurve,
  sigmoid,
  summarizeMetrics,
  trapezoid,
} from '../src/metrics';
import { rng } from './data-helpers';

const EPS = 1e-12;


/** O(n²) AUC: fraction of (REAL, FAKE) pairs where REAL scores higher, ties = 1/2 */
function bruteAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let num = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i] > scores[j]) num += 1;
      else if (scores[i] === scores[j]) num += 0.5;
    }
  }
  return num / pairs;
}

// Case A (used throughout):
//   probs  = [0.9, 0.8, 0.3, 0.6, 0.2, 0.4]
//   labels = [1,   1,   1,   0,   0,   0  ]   (REAL = 1)
// threshold 0.5 (predict REAL iff p >= 0.5):
//   REAL: 0.9→REAL tp, 0.8→REAL tp, 0.3→FAKE fn      => tp = 2, fn = 1
//   FAKE: 0.6→REAL fp, 0.2→FAKE tn, 0.4→FAKE tn      => fp = 1, tn = 2
//   accuracy = (2 + 2) / 6 = 2/3
//   precision REAL = tp/(tp+fp) = 2/3, recall REAL = tp/(tp+fn) = 2/3, F1 REAL = 2·2/(4+1+1) = 2/3
//   precision FAKE = tn/(tn+fn) = 2/3, recall FAKE = tn/(tn+fp) = 2/3, F1 FAKE = 2/3
// AUC by pair counting: 0.9 beats {0.6,0.2,0.4} → 3; 0.8 → 3; 0.3 beats {0.2} → 1; total 7 of 9 = 7/9.
// AUC by ranks: ascending 0.2(1) 0.3(2,R) 0.4(3) 0.6(4) 0.8(5,R) 0.9(6,R): sum R ranks = 13,
//   U = 13 − 3·4/2 = 7, AUC = 7/9.
// log loss = −(ln 0.9 + ln 0.8 + ln 0.3 + ln(1−0.6) + ln(1−0.2) + ln(1−0.4)) / 6
const A_PROBS = [0.9, 0.8, 0.3, 0.6, 0.2, 0.4];
const A_LABELS = [1, 1, 1, 0, 0, 0];

describe('metrics', () => {
  describe('sigmoid', () => {
    it('is stable and symmetric', () => {
      expect(sigmoid(0)).to.equal(0.5);
      expect(sigmoid(1000)).to.equal(1);
      expect(sigmoid(-1000)).to.equal(0);
      expect(sigmoid(2)).to.be.closeTo(1 / (1 + Math.exp(-2)), EPS);
      expect(sigmoid(-2) + sigmoid(2)).to.be.closeTo(1, EPS);
      const arr = sigmoid(new Float32Array([0, 2, -2]));
      expect(arr).to.be.instanceOf(Float64Array);
      expect(Array.from(arr)).to.have.length(3);
      expect(arr[0]).to.equal(0.5);
    });
  });

  describe('confusionMatrix / accuracy / per-class', () => {
    it('case A at threshold 0.5', () => {
      const c = confusionMatrix(A_PROBS, A_LABELS);
      expect(c).to.deep.equal({ tn: 2, fp: 1, fn: 1, tp: 2, matrix: [[2, 1], [1, 2]] });
      expect(accuracy(A_PROBS, A_LABELS)).to.be.closeTo(2 / 3, EPS);
      expect(accuracy(c)).to.be.closeTo(2 / 3, EPS);
      const r = classReport(c);
      for (const k of ['FAKE', 'REAL', 'macro'] as const) {
        expect(r.precision[k]).to.be.closeTo(2 / 3, EPS);
        expect(r.recall[k]).to.be.closeTo(2 / 3, EPS);
        expect(r.f1[k]).to.be.closeTo(2 / 3, EPS);
      }
      expect(r.support).to.deep.equal({ FAKE: 3, REAL: 3 });
    });

    it('threshold changes (0.35, 0.85, and >= at exactly 0.8)', () => {
      // t = 0.35: REAL predicted for 0.9, 0.8, 0.6, 0.4 → tp 2 (0.9, 0.8), fn 1 (0.3), fp 2 (0.6, 0.4), tn 1 (0.2)
      expect(confusionMatrix(A_PROBS, A_LABELS, 0.35)).to.include({ tp: 2, fn: 1, fp: 2, tn: 1 });
      expect(accuracy(A_PROBS, A_LABELS, 0.35)).to.be.closeTo(3 / 6, EPS);
      // t = 0.85: only 0.9 → REAL: tp 1, fn 2, fp 0, tn 3; accuracy 4/6
      //   REAL: P = 1/1 = 1, R = 1/3, F1 = 2·1/(2+0+2) = 0.5
      //   FAKE: P = tn/(tn+fn) = 3/5 = 0.6, R = tn/(tn+fp) = 3/3 = 1, F1 = 2·3/(6+2+0) = 0.75
      //   macro: P = 0.8, R = 2/3, F1 = 0.625
      expect(confusionMatrix(A_PROBS, A_LABELS, 0.85)).to.include({ tp: 1, fn: 2, fp: 0, tn: 3 });
      expect(accuracy(A_PROBS, A_LABELS, 0.85)).to.be.closeTo(4 / 6, EPS);
      const p = precision(A_PROBS, A_LABELS, 0.85);
      const r = recall(A_PROBS, A_LABELS, 0.85);
      const f = f1Score(A_PROBS, A_LABELS, 0.85);
      expect(p.REAL).to.be.closeTo(1, EPS);
      expect(p.FAKE).to.be.closeTo(0.6, EPS);
      expect(p.macro).to.be.closeTo(0.8, EPS);
      expect(r.REAL).to.be.closeTo(1 / 3, EPS);
      expect(r.FAKE).to.be.closeTo(1, EPS);
      expect(r.macro).to.be.closeTo(2 / 3, EPS);
      expect(f.REAL).to.be.closeTo(0.5, EPS);
      expect(f.FAKE).to.be.closeTo(0.75, EPS);
      expect(f.macro).to.be.closeTo(0.625, EPS);
      // t = 0.8: p >= t, so 0.8 counts as REAL: tp 2, fn 1, fp 0, tn 3
      expect(confusionMatrix(A_PROBS, A_LABELS, 0.8)).to.include({ tp: 2, fn: 1, fp: 0, tn: 3 });
    });

    it('zero division gives 0 (nothing predicted REAL)', () => {
      // probs all 0.1 → everything predicted FAKE; labels [1,0,1,0]: tp 0, fp 0, fn 2, tn 2
      //   REAL: P = 0/0 → 0, R = 0/2 = 0, F1 = 0/(0+0+2) = 0
      //   FAKE: P = 2/(2+2) = 0.5, R = 2/(2+0) = 1, F1 = 4/(4+2+0) = 2/3
      //   macro: P = 0.25, R = 0.5, F1 = 1/3
      const m = computeMetrics([0.1, 0.1, 0.1, 0.1], [1, 0, 1, 0]);
      expect(m.confusion).to.include({ tp: 0, fp: 0, fn: 2, tn: 2 });
      expect(m.precision).to.deep.equal({ FAKE: 0.5, REAL: 0, macro: 0.25 });
      expect(m.recall).to.deep.equal({ FAKE: 1, REAL: 0, macro: 0.5 });
      expect(m.f1.REAL).to.equal(0);
      expect(m.f1.FAKE).to.be.closeTo(2 / 3, EPS);
      expect(m.f1.macro).to.be.closeTo(1 / 3, EPS);
      expect(m.accuracy).to.equal(0.5);
      // tied scores → AUC 0.5
      expect(m.rocAuc).to.equal(0.5);
    });

    it('zero division when a class is absent entirely', () => {
      // all FAKE, all predicted FAKE: tn 3, others 0 → REAL metrics all 0/0 → 0; FAKE all 1
      const m = computeMetrics([0.1, 0.2, 0.3], [0, 0, 0]);
      expect(m.confusion).to.include({ tn: 3, fp: 0, fn: 0, tp: 0 });
      expect(m.precision).to.deep.equal({ FAKE: 1, REAL: 0, macro: 0.5 });
      expect(m.recall).to.deep.equal({ FAKE: 1, REAL: 0, macro: 0.5 });
      expect(m.f1).to.deep.equal({ FAKE: 1, REAL: 0, macro: 0.5 });
      expect(m.accuracy).to.equal(1);
      expect(m.rocAuc).to.equal(null);
      expect(m.notes.join(' ')).to.match(/only one class/);
      // round-trips through JSON unchanged
      expect(JSON.parse(JSON.stringify(m))).to.deep.equal(m);
    });

    it('accepts typed arrays', () => {
      const c = confusionMatrix(new Float32Array(A_PROBS), Uint8Array.from(A_LABELS));
      expect(c).to.include({ tn: 2, fp: 1, fn: 1, tp: 2 });
    });

    it('empty input: zero counts, accuracy NaN', () => {
      expect(confusionMatrix([], [])).to.include({ tn: 0, fp: 0, fn: 0, tp: 0 });
      expect(accuracy([], [])).to.be.NaN;
      expect(() => computeMetrics([], [])).to.throw(/n = 0/);
    });

    it('validates inputs', () => {
      expect(() => confusionMatrix([0.1, 0.2], [1])).to.throw(/differ in length \(2 vs 1\)/);
      expect(() => confusionMatrix([0.1, 0.2], [1, 2])).to.throw(/labels\[1\] = 2/);
      expect(() => rocAuc([0.1, NaN], [1, 0])).to.throw(/scores\[1\] is NaN/);
      expect(() => computeMetrics([0.1, 1.5], [1, 0])).to.throw(/\[0, 1\].*probs\[1\] = 1.5/);
      expect(() => computeMetrics([0.1, 0.5], [1, 0], { threshold: 2 })).to.throw(/threshold/);
      expect(() => logLoss([-0.1], [1])).to.throw(/\[0, 1\]/);
    });
  });

  describe('rocAuc', () => {
    it('case A = 7/9', () => {
      expect(rocAuc(A_PROBS, A_LABELS)).to.be.closeTo(7 / 9, EPS);
    });

    it('ties: all-equal scores → 0.5', () => {
      expect(rocAuc([0.3, 0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0, 0])).to.equal(0.5);
    });

    it('ties: partial ties use average ranks', () => {
      // scores [0.5, 0.5, 0.2, 0.5], labels [1, 0, 0, 1]
      // pairs (R vs F): (0.5 vs 0.5) ½, (0.5 vs 0.2) 1, twice → 3/4
      // ranks: 0.2 → 1; three 0.5s share ranks 2,3,4 → 3 each; sum R = 6; U = 6 − 3 = 3; 3/4
      expect(rocAuc([0.5, 0.5, 0.2, 0.5], [1, 0, 0, 1])).to.equal(0.75);
    });

    it('perfect and inverted classifiers', () => {
      const labels = [0, 0, 1, 1, 0, 1];
      const perfect = [0.1, 0.2, 0.9, 0.8, 0.3, 0.7];
      const inverted = perfect.map((p) => 1 - p);
      expect(rocAuc(perfect, labels)).to.equal(1);
      expect(rocAuc(inverted, labels)).to.equal(0);
      const mp = computeMetrics(perfect, labels);
      expect(mp.accuracy).to.equal(1);
      expect(mp.f1).to.deep.equal({ FAKE: 1, REAL: 1, macro: 1 });
      const mi = computeMetrics(inverted, labels);
      expect(mi.accuracy).to.equal(0);
      expect(mi.f1).to.deep.equal({ FAKE: 0, REAL: 0, macro: 0 });
      expect(mi.rocAuc).to.equal(0);
      expect(mi.logLoss).to.be.greaterThan(mp.logLoss);
    });

    it('only one class → NaN', () => {
      expect(rocAuc([0.1, 0.9], [1, 1])).to.be.NaN;
      expect(rocAuc([0.1, 0.9], [0, 0])).to.be.NaN;
      expect(rocAuc([], [])).to.be.NaN;
    });

    it('large random input matches O(n²) pair count (with ties)', () => {
      const r = rng(1234);
      const n = 3000;
      const scores = new Float32Array(n);
      const labels = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        labels[i] = r() < 0.4 ? 1 : 0;
        // informative but noisy, quantised to 50 levels so there are many ties
        const s = Math.min(1, Math.max(0, 0.35 * labels[i] + 0.65 * r()));
        scores[i] = Math.round(s * 49) / 49;
      }
      const brute = bruteAuc(scores, labels);
      expect(brute).to.be.within(0.6, 0.95);
      expect(rocAuc(scores, labels)).to.be.closeTo(brute, 1e-12);
      // continuous scores (no ties)
      const cont = new Float64Array(n);
      for (let i = 0; i < n; i++) cont[i] = r() + 0.3 * labels[i];
      expect(rocAuc(cont, labels)).to.be.closeTo(bruteAuc(cont, labels), 1e-12);
    });
  });

  describe('rocCurve', () => {
    it('case A points', () => {
      // distinct scores descending: 0.9 R, 0.8 R, 0.6 F, 0.4 F, 0.3 R, 0.2 F (3 REAL, 3 FAKE)
      // cumulative tp: 0 1 2 2 2 3 3 ; fp: 0 0 0 1 2 2 3
      const c = rocCurve(A_PROBS, A_LABELS);
      expect(c.thresholds).to.deep.equal([Infinity, 0.9, 0.8, 0.6, 0.4, 0.3, 0.2]);
      expect(c.tpr).to.deep.equal([0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1]);
      expect(c.fpr).to.deep.equal([0, 0, 0, 1 / 3, 2 / 3, 2 / 3, 1]);
      // trapezoid: 0 + 0 + (1/3)(2/3) + (1/3)(2/3) + 0 + (1/3)(1) = 7/9 = AUC
      expect(trapezoid(c.fpr, c.tpr)).to.be.closeTo(7 / 9, EPS);
      // every point equals the confusion matrix at that threshold (p >= t)
      for (let k = 1; k < c.thresholds.length; k++) {
        const cm = confusionMatrix(A_PROBS, A_LABELS, c.thresholds[k]);
        expect(cm.tp / 3).to.be.closeTo(c.tpr[k], EPS);
        expect(cm.fp / 3).to.be.closeTo(c.fpr[k], EPS);
      }
    });

    it('dropIntermediate removes collinear points only', () => {
      // second differences of (fp, tp) are non-zero at indices 2, 4, 5 → keep 0, 2, 4, 5, 6
      const c = rocCurve(A_PROBS, A_LABELS, { dropIntermediate: true });
      expect(c.thresholds).to.deep.equal([Infinity, 0.8, 0.4, 0.3, 0.2]);
      expect(c.fpr).to.deep.equal([0, 0, 2 / 3, 2 / 3, 1]);
      expect(c.tpr).to.deep.equal([0, 2 / 3, 2 / 3, 1, 1]);
      expect(trapezoid(c.fpr, c.tpr)).to.be.closeTo(7 / 9, EPS);
    });

    it('trapezoidal area equals rocAuc on random tied data', () => {
      const r = rng(99);
      const n = 500;
      const s: number[] = [];
      const y: number[] = [];
      for (let i = 0; i < n; i++) {
        y.push(r() < 0.5 ? 1 : 0);
        s.push(Math.round((r() + 0.5 * y[i]) * 10) / 10);
      }
      const c = rocCurve(s, y);
      expect(trapezoid(c.fpr, c.tpr)).to.be.closeTo(rocAuc(s, y), 1e-12);
      expect(c.fpr[c.fpr.length - 1]).to.equal(1);
      expect(c.tpr[c.tpr.length - 1]).to.equal(1);
    });

    it('one class → NaN rate for the absent class', () => {
      const c = rocCurve([0.2, 0.7], [1, 1]);
      expect(c.tpr).to.deep.equal([0, 0.5, 1]);
      expect(c.fpr.every((v) => Number.isNaN(v))).to.equal(true);
    });
  });

  describe('losses', () => {
    it('logLoss case A', () => {
      const expected = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.3) + Math.log(0.4) + Math.log(0.8) + Math.log(0.6)) / 6;
      expect(logLoss(A_PROBS, A_LABELS)).to.be.closeTo(expected, EPS);
      expect(logLoss([0.5], [1])).to.be.closeTo(Math.LN2, EPS);
    });

    it('logLoss clips at 1e-7', () => {
      // p = 0 for a REAL sample → −ln(1e-7) = 16.1181…; p = 1 for a FAKE sample → −ln(1e-7) too
      expect(logLoss([0], [1])).to.be.closeTo(-Math.log(1e-7), 1e-9);
      expect(logLoss([1], [0])).to.be.closeTo(-Math.log(1e-7), 1e-6);
      expect(Number.isFinite(logLoss([0, 1], [1, 0]))).to.equal(true);
      expect(logLoss([1, 0], [1, 0])).to.be.closeTo(-Math.log(1 - 1e-7), 1e-12);
    });

    it('bceWithLogits is stable', () => {
      // x = 0: softplus(0) = ln 2 for either label
      expect(bceWithLogits([0, 0], [1, 0])).to.be.closeTo(Math.LN2, EPS);
      // y = 1, x = 2: softplus(−2) = ln(1 + e^−2)
      expect(bceWithLogits([2], [1])).to.be.closeTo(Math.log1p(Math.exp(-2)), EPS);
      // y = 0, x = 2: softplus(2) = 2 + ln(1 + e^−2)
      expect(bceWithLogits([2], [0])).to.be.closeTo(2 + Math.log1p(Math.exp(-2)), EPS);
      // extreme logits: no overflow, no NaN, unclipped
      expect(bceWithLogits([1000], [0])).to.equal(1000);
      expect(bceWithLogits([-1000], [1])).to.equal(1000);
      expect(bceWithLogits([1000], [1])).to.equal(0);
      expect(bceWithLogits([Infinity], [1])).to.equal(0);
    });

    it('bceWithLogits agrees with logLoss(sigmoid) where clipping is inactive', () => {
      const logits = [2, -1, 0.5, -3, 0, 4];
      const labels = [1, 0, 0, 0, 1, 1];
      expect(bceWithLogits(logits, labels)).to.be.closeTo(logLoss(sigmoid(logits), labels), 1e-12);
    });
  });

  describe('computeMetrics', () => {
    it('case A report', () => {
      const m = computeMetrics(A_PROBS, A_LABELS);
      expect(m.n).to.equal(6);
      expect(m.threshold).to.equal(0.5);
      expect(m.accuracy).to.be.closeTo(2 / 3, EPS);
      expect(m.rocAuc).to.be.closeTo(7 / 9, EPS);
      expect(m.confusion.matrix).to.deep.equal([[2, 1], [1, 2]]);
      expect(m.notes).to.deep.equal([]);
      expect(JSON.parse(JSON.stringify(m))).to.deep.equal(m);
      const m2 = computeMetrics(A_PROBS, A_LABELS, { threshold: 0.85 });
      expect(m2.threshold).to.equal(0.85);
      expect(m2.f1.macro).to.be.closeTo(0.625, EPS);
      expect(m2.rocAuc).to.equal(m.rocAuc); // AUC does not depend on the threshold
    });

    it('logits and probabilities agree', () => {
      // logit 0 → P = 0.5 → REAL at threshold 0.5
      const logits = new Float32Array([2, -1, 0.5, -3, 0, 4, -0.2, 1.5]);
      const labels = new Uint8Array([1, 0, 0, 0, 1, 1, 1, 0]);
      const probs = sigmoid(logits);
      for (const threshold of [0.5, 0.3, 0.7]) {
        const a = computeMetrics(logits, labels, { fromLogits: true, threshold });
        const b = computeMetrics(probs, labels, { threshold });
        expect(a.confusion).to.deep.equal(b.confusion);
        expect(a.accuracy).to.equal(b.accuracy);
        expect(a.f1).to.deep.equal(b.f1);
        expect(a.rocAuc).to.be.closeTo(b.rocAuc as number, EPS);
        expect(a.logLoss).to.be.closeTo(b.logLoss, 1e-12);
      }
      const m = computeMetrics(logits, labels, { fromLogits: true });
      // predictions REAL: 2, 0.5, 0, 4, 1.5 → tp (2, 0, 4) = 3, fp (0.5, 1.5) = 2, fn (−0.2) = 1, tn (−1, −3) = 2
      expect(m.confusion).to.include({ tp: 3, fp: 2, fn: 1, tn: 2 });
      expect(m.logLoss).to.be.closeTo(bceWithLogits(logits, labels), 1e-7);
    });

    it('AUC from logits is not spoiled by sigmoid saturation', () => {
      // sigmoid(40) and sigmoid(50) are both exactly 1 in float64, but logits still rank them
      const logits = [50, 40, -50, -40];
      const labels = [1, 0, 0, 1];
      // pairs: 50 > 40, 50 > −50, −40 < 40, −40 > −50 → 3/4
      expect(computeMetrics(logits, labels, { fromLogits: true }).rocAuc).to.equal(0.75);
    });
  });

  describe('summarizeMetrics', () => {
    it('one short line', () => {
      // case A log loss: (0.10536 + 0.22314 + 1.20397 + 0.91629 + 0.22314 + 0.51083) / 6 = 3.18273 / 6 ≈ 0.5305
      const s = summarizeMetrics(computeMetrics(A_PROBS, A_LABELS));
      expect(s).to.equal('n=6 acc=66.67% F1 FAKE=0.6667 REAL=0.6667 macro=0.6667 AUC=0.7778 logloss=0.5305 thr=0.5');
      expect(s).to.not.contain('\n');
      const one = JSON.parse(JSON.stringify(computeMetrics([0.2], [0])));
      expect(summarizeMetrics(one)).to.contain('AUC=n/a');
    });
  });
});

import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { calibrationReport, fitTemperature, temperedLogLoss, youdenThreshold } from '../src/calibration';
import { loadSplit } from '../src/data';
import { synthesize } from '../src/data/synth';
import { CifakeModel } from '../src/model';
import { train } from '../src/train/fit';
import { rng } from './data-helpers';
import { TEST_THREADS } from './helpers';

/** logits drawn N(0, 3^2), labels drawn from sigmoid(logit / t): a model whose true temperature is t */
function sampleAtTemperature(n: number, t: number, seed: number) {
  const r = rng(seed);
  const logits = new Float64Array(n), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const z = 3 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    logits[i] = z;
    labels[i] = r() < 1 / (1 + Math.exp(-z / t)) ? 1 : 0;
  }
  return { logits, labels };
}

describe('calibration', () => {
  describe('calibrationReport', () => {
    it('computes ECE from the bins by hand', () => {
      // confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.7 (right): 4 bins of width 0.25
      const probs = [0.9, 0.1, 0.6, 0.3];
      const labels = [1, 1, 1, 0];
      const r = calibrationReport(probs, labels, 4);
      // bin [0.5, 0.75): 0.6 right, 0.7 right -> acc 1, conf 0.65; bin [0.75, 1]: 0.9 right, 0.9 wrong -> acc 0.5, conf 0.9
      expect(r.bins.map((b) => b.count)).to.deep.equal([0, 0, 2, 2]);
      expect(r.bins[2].confidence).to.be.closeTo(0.65, 1e-12);
      expect(r.bins[3].accuracy).to.equal(0.5);
      expect(r.ece).to.be.closeTo(0.5 * 0.35 + 0.5 * 0.4, 1e-12);
      expect(r.mce).to.be.closeTo(0.4, 1e-12);
    });

    it('is near 0 for predictions drawn from their own probabilities and large for overconfident ones', () => {
      const { logits, labels } = sampleAtTemperature(20000, 1, 7);
      const calibrated = Array.from(logits, (z) => 1 / (1 + Math.exp(-z)));
      const overconfident = Array.from(logits, (z) => 1 / (1 + Math.exp(-4 * z)));
      expect(calibrationReport(calibrated, labels).ece).to.be.below(0.015);
      expect(calibrationReport(overconfident, labels).ece).to.be.above(0.08);
    });

    it('puts confidence 1 in the last bin and rejects bad input', () => {
      expect(calibrationReport([1, 0], [1, 0], 15).bins[14].count).to.equal(2);
      expect(() => calibrationReport([0.5, NaN], [1, 0])).to.throw(/probability 1 is NaN/);
      expect(() => calibrationReport([0.5], [1, 0])).to.throw(/1 probabilities but 2 labels/);
      expect(() => calibrationReport([0.5], [1], 0)).to.throw(/bins/);
    });
  });

  describe('fitTemperature', () => {
    for (const t of [0.5, 1, 2.5]) {
      it(`recovers a true temperature of ${t} from samples`, () => {
        const { logits, labels } = sampleAtTemperature(40000, t, 11);
        expect(fitTemperature(logits, labels)).to.be.closeTo(t, 0.1 * t);
      });
    }

    it('returns a minimum of the tempered log loss', () => {
      const { logits, labels } = sampleAtTemperature(5000, 1.7, 3);
      const t = fitTemperature(logits, labels);
      const at = temperedLogLoss(logits, labels, t);
      for (const f of [0.97, 1.03, 0.8, 1.25]) expect(temperedLogLoss(logits, labels, t * f)).to.be.above(at);
    });

    it('matches the direct log loss of sigmoid(z / t)', () => {
      const z = [2, -1, 0.5], y = [1, 1, 0], t = 1.5;
      const direct = z.reduce((s, zi, i) => {
        const p = 1 / (1 + Math.exp(-zi / t));
        return s - (y[i] ? Math.log(p) : Math.log(1 - p));
      }, 0) / 3;
      expect(temperedLogLoss(z, y, t)).to.be.closeTo(direct, 1e-12);
    });

    it('returns 1 for one class and rejects non-finite logits', () => {
      expect(fitTemperature([1, 2], [1, 1])).to.equal(1);
      expect(() => fitTemperature([1, Infinity], [1, 0])).to.throw(/logit 1 is Infinity/);
    });
  });

  describe('youdenThreshold', () => {
    it('equals a brute-force search over every threshold', () => {
      const r = rng(5);
      const probs: number[] = [], labels: number[] = [];
      for (let i = 0; i < 300; i++) {
        const y = r() < 0.5 ? 1 : 0;
        labels.push(y);
        probs.push(Math.min(1, Math.max(0, (y ? 0.6 : 0.4) + (r() - 0.5) * 0.8)));
      }
      let bestJ = -Infinity;
      for (const t of probs) {
        let tp = 0, fp = 0, pos = 0;
        probs.forEach((p, i) => {
          pos += labels[i];
          if (p >= t) (labels[i] ? tp++ : fp++);
        });
        bestJ = Math.max(bestJ, tp / pos - fp / (probs.length - pos));
      }
      const got = youdenThreshold(probs, labels);
      expect(got.j).to.be.closeTo(bestJ, 1e-12);
      let tp = 0, fp = 0, pos = 0;
      probs.forEach((p, i) => {
        pos += labels[i];
        if (p >= got.threshold) (labels[i] ? tp++ : fp++);
      });
      expect(tp / pos - fp / (probs.length - pos)).to.be.closeTo(bestJ, 1e-12);
    });

    it('finds the separating threshold of separable data and 0.5 without both classes', () => {
      expect(youdenThreshold([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1])).to.deep.equal({ threshold: 0.7, j: 1 });
      expect(youdenThreshold([0.1, 0.9], [1, 1]).threshold).to.equal(0.5);
    });
  });
});

describe('calibrateRun', function () {
  this.timeout(300_000);
  it('training stores the validation-fitted temperature in calibration.json and the final checkpoint', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-calib-'));
    try {
      const data = path.join(tmp, 'data');
      await synthesize(data, { trainPerClass: 40, testPerClass: 10, seed: 4 });
      const r = await train({ data, outDir: path.join(tmp, 'runs'), name: 'c', threads: TEST_THREADS, device: 'cpu', cacheDir: path.join(tmp, 'cache'), model: { family: 'lightweight' }, epochs: 2, earlyStopping: { patience: 3 } });
      const c = JSON.parse(fs.readFileSync(path.join(r.runDir, 'calibration.json'), 'utf8'));
      const val = JSON.parse(fs.readFileSync(path.join(r.runDir, 'scores-val.json'), 'utf8'));
      expect(c.temperature).to.be.closeTo(fitTemperature(val.logits, val.labels), 1e-6);
      expect(c.fittedOn).to.equal('val');
      expect(c.test.n).to.equal(20);
      expect(c.test.eceBefore).to.be.a('number');
      const meta = CifakeModel.readMeta(path.join(r.runDir, 'best.pt'));
      expect((meta as { calibration?: { temperature: number } }).calibration?.temperature).to.equal(c.temperature);
      // the re-saved checkpoint still predicts what training measured
      const { model } = await CifakeModel.load(path.join(r.runDir, 'best.pt'), { device: 'cpu', threads: TEST_THREADS });
      const test = JSON.parse(fs.readFileSync(path.join(r.runDir, 'scores-test.json'), 'utf8'));
      const set = await loadSplit(data, { split: 'test', cacheDir: path.join(tmp, 'cache') });
      const logits = await model.predictLogits(set.images);
      model.dispose();
      logits.forEach((z, i) => expect(z).to.be.closeTo(test.logits[i], 1e-4));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

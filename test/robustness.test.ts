// Robustness: training-time degradations, the evaluator, and `cifake robustness` end to end.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { resolveConfig } from '../src/config';
import { synthesize } from '../src/data/synth';
import { drawDegradation, robustEpochImages, type RobustAugmentConfig } from '../src/robustness/augment';
import { evaluateRobustness, flipConsistency } from '../src/robustness/evaluate';
import { train } from '../src/train/fit';
import { makeImages, TEST_THREADS } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const PER = 3 * 32 * 32;
const CFG: RobustAugmentConfig = resolveConfig({ overrides: { robustAugment: {} } }).robustAugment!;

function changed(a: Uint8Array, b: Uint8Array, i: number) {
  return Buffer.compare(Buffer.from(a.subarray(i * PER, (i + 1) * PER)), Buffer.from(b.subarray(i * PER, (i + 1) * PER))) !== 0;
}

describe('robustness', function () {
  this.timeout(300_000);

  describe('training-time degradations', () => {
    it('has the documented defaults and rejects bad ranges naming the field', () => {
      expect(CFG).to.deep.equal({ probability: 0.5, jpegProbability: 0.5, ops: ['blur', 'resize', 'noise'], jpegQuality: [30, 95], blurSigma: [0.3, 1.2], resizeTo: [12, 28], noiseSigma: [1, 8] });
      expect(() => resolveConfig({ overrides: { robustAugment: { jpegQuality: [90, 30] } } })).to.throw(/robustAugment.jpegQuality: min must not exceed max/);
      expect(() => resolveConfig({ overrides: { robustAugment: { ops: ['sharpen'] } } })).to.throw(/robustAugment.ops\[0\]/);
      expect(() => resolveConfig({ overrides: { robustAugment: { resizeTo: [2, 8] } } })).to.throw(/robustAugment.resizeTo/);
    });

    it('degrades about the configured share of images, within the ranges, the same way for the same (seed, epoch)', async () => {
      const n = 400;
      const { images } = makeImages(n, 2);
      const copy = new Uint8Array(images);
      const a = await robustEpochImages(images, CFG, 7, 3);
      const b = await robustEpochImages(images, CFG, 7, 3);
      const c = await robustEpochImages(images, CFG, 7, 4);
      expect(images).to.deep.equal(copy);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).to.equal(0);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(c))).to.not.equal(0);
      let pixel = 0, jpeg = 0, untouched = 0;
      for (let i = 0; i < n; i++) {
        const d = drawDegradation(CFG, 7, 3, i);
        if (d.step) {
          pixel++;
          const v = d.step.value!;
          if (d.step.name === 'blur') expect(v).to.be.within(0.3, 1.2);
          if (d.step.name === 'resize') expect(Number.isInteger(v) && v >= 12 && v <= 28).to.equal(true);
          if (d.step.name === 'noise') expect(v).to.be.within(1, 8);
        }
        if (d.jpeg) {
          jpeg++;
          expect(d.jpeg).to.be.within(30, 95);
        }
        if (!d.step && !d.jpeg) {
          untouched++;
          expect(changed(a, images, i), `image ${i} has no degradation drawn`).to.equal(false);
        }
      }
      // binomial(400, 0.5): within 5 sd
      expect(pixel).to.be.within(150, 250);
      expect(jpeg).to.be.within(150, 250);
      expect(untouched).to.be.within(50, 150);
    });

    it('trains with it (and resumes to the same weights as an uninterrupted run)', async () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-robust-'));
      try {
        const data = path.join(tmp, 'data');
        await synthesize(data, { trainPerClass: 40, testPerClass: 10, seed: 4 });
        const base = { data, outDir: path.join(tmp, 'runs'), threads: TEST_THREADS, device: 'cpu', seed: 3, cacheDir: path.join(tmp, 'cache'), model: { family: 'lightweight' }, epochs: 2, robustAugment: { probability: 1, jpegProbability: 1 }, earlyStopping: null };
        const full = await train({ ...base, name: 'full' });
        const first = await train({ ...base, name: 'part', epochs: 1 }).catch((e) => e);
        expect(first.epochsRun).to.equal(1);
        const cfgFile = path.join(tmp, 'runs', 'part', 'config.json');
        const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
        fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, epochs: 2 }));
        const resumed = await train({}, { resume: path.join(tmp, 'runs', 'part') });
        expect(resumed.epochsRun).to.equal(2);
        expect(resumed.metrics.test!.accuracy).to.equal(full.metrics.test!.accuracy);
        expect(resumed.metrics.test!.logLoss).to.be.closeTo(full.metrics.test!.logLoss, 1e-6);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
  });

  describe('evaluateRobustness', () => {
    // A "model" whose logit is the mean red value minus 128: exact, known behaviour under each perturbation.
    const redModel = {
      predictLogits: async (images: Uint8Array) => {
        const n = images.length / PER;
        return Float32Array.from({ length: n }, (_, i) => {
          let s = 0;
          for (let p = 0; p < 1024; p++) s += images[i * PER + p];
          return s / 1024 - 128;
        });
      },
    };
    const images = new Uint8Array(4 * PER);
    const means = [100, 120, 140, 160];
    means.forEach((m, i) => images.fill(m, i * PER, (i + 1) * PER));
    const labels = Uint8Array.from([0, 0, 1, 1]);

    it('reports clean and perturbed metrics, flips against clean and the mean P(REAL)', async () => {
      const r = await evaluateRobustness(redModel, images, labels, { suite: ['brightness:0.1', 'hflip'] });
      expect(r.rows.map((x) => x.perturbation)).to.deep.equal(['clean', 'brightness:0.1', 'hflip']);
      expect(r.rows[0]).to.include({ accuracy: 1, rocAuc: 1, flipped: 0, family: 'clean', strength: null });
      // +25.5 (rounded 26): 120 -> 146 crosses 128, the others keep their side
      expect(r.rows[1]).to.include({ accuracy: 0.75, flipped: 1, recallFake: 0.5, recallReal: 1, family: 'brightness', strength: 0.1 });
      expect(r.rows[2]).to.include({ accuracy: 1, flipped: 0 });
      expect(r.rows[1].meanProbReal).to.be.above(r.rows[0].meanProbReal);
      expect(r.flipConsistency.unstableShare).to.equal(0);
    });

    it('applies the temperature and threshold', async () => {
      const r = await evaluateRobustness(redModel, images, labels, { suite: [], threshold: 0.99, temperature: 2 });
      // P(REAL) = sigmoid((m - 128) / 2): only 160 (sigmoid(16)) clears 0.99 ... and 140 (sigmoid(6) = 0.9975)
      expect(r.rows[0].accuracy).to.equal(1);
      const strict = await evaluateRobustness(redModel, images, labels, { suite: [], threshold: 0.999, temperature: 2 });
      expect(strict.rows[0].recallReal).to.equal(0.5);
    });

    it('counts an image as unstable when any mild variant flips it', async () => {
      // red plane: top half 135, bottom half 120 (mean 127.5, FAKE); shifting down 8 px (edges replicated) makes it 131.25 (REAL)
      const near = new Uint8Array(PER).fill(120);
      near.fill(135, 0, 32 * 16);
      const clean = Uint8Array.from([(await redModel.predictLogits(near))[0] >= 0 ? 1 : 0]);
      const r = await flipConsistency(redModel, near, clean, { variants: ['shift:8'] });
      expect(r.unstableShare).to.equal(1);
      expect((await flipConsistency(redModel, near, clean, { variants: ['hflip'] })).unstableShare).to.equal(0);
    });
  });

  it('cifake robustness runs end to end on a tiny model and rejects a bad spec with exit 2', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-robust-cli-'));
    try {
      const data = path.join(tmp, 'data');
      await synthesize(data, { trainPerClass: 40, testPerClass: 10, seed: 5 });
      const env = { ...process.env, CIFAKE_CACHE_DIR: path.join(tmp, 'cache') };
      const cli = (args: string[]) => spawnSync(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env });
      const t = cli(['train', '--preset', 'lightweight', '--data', data, '--epochs', '1', '--out-dir', path.join(tmp, 'runs'), '--name', 'tiny', '--device', 'cpu', '--threads', String(TEST_THREADS)]);
      expect(t.status, t.stderr).to.equal(0);
      const out = path.join(tmp, 'robust.json');
      const r = cli(['robustness', '--model', path.join(tmp, 'runs', 'tiny'), '--data', data, '--perturb', 'jpeg:50,resize:16+jpeg:75', '--out', out, '--json', '--device', 'cpu']);
      expect(r.status, r.stderr).to.equal(0);
      const report = JSON.parse(r.stdout);
      expect(report.rows.map((x: { perturbation: string }) => x.perturbation)).to.deep.equal(['clean', 'jpeg:50', 'resize:16+jpeg:75']);
      expect(report.rows[0].n).to.equal(20);
      expect(JSON.parse(fs.readFileSync(out, 'utf8')).rows).to.have.length(3);
      // a run directory keeps its last split evaluation for the report; a one-label folder does not replace it
      const saved = path.join(tmp, 'runs', 'tiny', 'robustness.json');
      expect(report.savedTo).to.equal(saved);
      expect(JSON.parse(fs.readFileSync(saved, 'utf8')).rows).to.deep.equal(report.rows);
      const folder = cli(['robustness', '--model', path.join(tmp, 'runs', 'tiny'), '--data', path.join(data, 'test', 'REAL'), '--label', 'REAL', '--perturb', 'jpeg:75', '--device', 'cpu']);
      expect(folder.status, folder.stderr).to.equal(0);
      expect(folder.stdout).to.match(/of these REAL images are called FAKE/);
      expect(JSON.parse(fs.readFileSync(saved, 'utf8')).split).to.equal('test');
      const bad = cli(['robustness', '--model', path.join(tmp, 'runs', 'tiny'), '--data', data, '--perturb', 'jpeg:0']);
      expect(bad.status).to.equal(2);
      expect(bad.stderr).to.match(/invalid 'jpeg:0'/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

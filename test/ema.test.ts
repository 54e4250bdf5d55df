// The moving average of the weights (config `ema`, native/ema.h): the recurrence itself, swapping
// it in and out, its place in checkpoints, and a run that trains with it.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { synthesize } from '../src/data/synth';
import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { train, TrainingInterrupted, type EpochLog } from '../src/train/fit';
import { makeImages, TEST_THREADS } from './helpers';

const SPEC: NativeModelSpec = { family: 'lightweight', convFilters: [4, 8], dense: [8], dropout: 0, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false };
const create = () => CifakeModel.create(SPEC, { device: 'cpu', seed: 5, threads: 1, optimizer: { name: 'adam', lr: 1e-2 } });
const FLOAT_BUFFER = /running_(mean|var)$/;

function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>, names = Object.keys(a)): number {
  let m = 0;
  for (const k of names) a[k].forEach((v, i) => (m = Math.max(m, Math.abs(v - b[k][i]))));
  return m;
}

describe('weight moving average (ema)', function () {
  this.timeout(120_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-ema-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const { images, labels } = makeImages(32, 2);

  it('follows ema = d ema + (1 - d) w after every step, with d = min(decay, (1 + n) / (10 + n)); integer buffers are copied', async () => {
    const m = create();
    await m.setData('t', images, labels);
    const w = [await m.state()];
    // one step per epoch (batch = the whole set), so every step's weights can be read
    for (let epoch = 0; epoch < 3; epoch++) {
      await m.trainEpoch({ data: 't', batchSize: 32, epoch, emaDecay: 0.15 });
      w.push(await m.state());
    }
    const averaged: Record<string, Float32Array> = {};
    for (const k of Object.keys(w[0])) {
      const e = Float64Array.from(w[0][k]);
      for (let n = 0; n < 3; n++) {
        const d = Math.min(0.15, (1 + n) / (10 + n)); // 0.1, then the 0.15 cap
        e.forEach((v, i) => (e[i] = d * v + (1 - d) * w[n + 1][k][i]));
      }
      averaged[k] = Float32Array.from(e);
    }
    expect(await m.swapEma()).to.equal(true);
    const swapped = await m.state();
    const floats = Object.keys(swapped).filter((k) => !k.endsWith('num_batches_tracked'));
    expect(floats.some((k) => FLOAT_BUFFER.test(k))).to.equal(true);
    expect(maxDiff(swapped, averaged, floats)).to.be.below(1e-5);
    expect(maxDiff(swapped, w[3], floats)).to.be.above(1e-3); // the average is not the last weights
    for (const k of Object.keys(swapped).filter((n) => n.endsWith('num_batches_tracked'))) expect(Array.from(swapped[k])).to.deep.equal(Array.from(w[3][k]));
    m.dispose();
  });

  it('swaps back exactly, refuses to train while the average is in, and refuses a swap before any average exists', async () => {
    const m = create();
    await m.setData('t', images, labels);
    const err = (p: Promise<unknown>) => p.then(() => '', (e: Error) => e.message);
    expect(await err(m.swapEma())).to.match(/no weights were averaged yet/);
    await m.trainEpoch({ data: 't', batchSize: 8, epoch: 0, emaDecay: 0.9 });
    const trained = await m.state();
    await m.swapEma();
    expect(await err(m.trainEpoch({ data: 't', batchSize: 8, epoch: 1, emaDecay: 0.9 }))).to.match(/swapEma/);
    expect(await m.swapEma()).to.equal(false);
    expect(maxDiff(await m.state(), trained)).to.equal(0);
    expect(await err(m.trainEpoch({ data: 't', emaDecay: 1 }))).to.match(/emaDecay: must be in \[0, 1\)/);
    m.dispose();
  });

  it('a checkpoint keeps the average beside the trained weights: loading with the optimizer brings it back, loading weights alone drops it', async () => {
    const m = create();
    await m.setData('t', images, labels);
    for (let epoch = 0; epoch < 2; epoch++) await m.trainEpoch({ data: 't', batchSize: 8, epoch, emaDecay: 0.9 });
    const file = path.join(tmp, 'last.pt');
    await m.save(file, { epoch: 2 });
    await m.swapEma();
    const averaged = await m.state();
    const weightsOnly = path.join(tmp, 'best.pt');
    await m.save(weightsOnly, { epoch: 2 }); // the average in the model: saved as the weights, nothing beside
    m.dispose();

    const resumed = create();
    await resumed.loadWeights(file, true);
    await resumed.swapEma();
    expect(maxDiff(await resumed.state(), averaged)).to.equal(0);
    await resumed.loadWeights(file, false);
    expect(await resumed.swapEma().then(() => 'swapped', (e: Error) => e.message)).to.match(/no weights were averaged/);
    await resumed.loadWeights(weightsOnly, true);
    expect(maxDiff(await resumed.state(), averaged)).to.equal(0);
    expect(await resumed.swapEma().then(() => 'swapped', (e: Error) => e.message)).to.match(/no weights were averaged/);
    resumed.dispose();
  });

  describe('a run with ema', () => {
    const data = path.join(tmp, 'data');
    const base = (name: string) => ({ data, outDir: path.join(tmp, 'runs'), name, threads: TEST_THREADS, device: 'cpu', limit: 60, seed: 3, cacheDir: false, ema: 0.9 });
    before(() => synthesize(data, { trainPerClass: 60, testPerClass: 20, seed: 4 }));

    it('validates the average (the trained weights logged beside it), ships it in best.pt, and resumes to the same result', async () => {
      const config = { model: { family: 'lightweight' }, epochs: 3, earlyStopping: { patience: 5 } };
      const full = await train({ ...base('ema-full'), ...config });
      for (const h of full.history) {
        expect(h.rawValAcc).to.be.a('number');
        expect(h.rawValLoss).to.be.a('number').and.not.equal(h.valLoss);
      }
      const best = full.history.find((h) => h.epoch === full.bestEpoch) as EpochLog;
      expect(full.metrics.val.logLoss).to.be.closeTo(best.valLoss, 1e-4);

      const ac = new AbortController();
      const err = await train({ ...base('ema-split'), ...config }, { signal: ac.signal, onEpochEnd: (e) => void (e.epoch === 1 && ac.abort()) }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(TrainingInterrupted);
      const resumed = await train({}, { resume: path.join(tmp, 'runs', 'ema-split') });
      const strip = (h: EpochLog[]) => h.map(({ seconds, imagesPerSec, ...rest }) => rest);
      expect(strip(resumed.history)).to.deep.equal(strip(full.history));
      expect(resumed.metrics.test?.logLoss).to.equal(full.metrics.test?.logLoss);
    });

    it('without restoring the best epoch, ends on the average of the last weights', async () => {
      const logs: string[] = [];
      const r = await train({ ...base('ema-last'), model: { family: 'lightweight' }, epochs: 2, earlyStopping: null }, { onLog: (m) => void logs.push(m) });
      expect(logs.some((l) => /final weights: the moving average/.test(l))).to.equal(true);
      expect(r.metrics.val.logLoss).to.be.closeTo(r.history[1].valLoss, 1e-4);
      expect(r.metrics.val.logLoss).to.not.be.closeTo(r.history[1].rawValLoss as number, 1e-6);
    });
  });
});

// Mixed precision: bf16 autocast trains on CPU; fp16 (CUDA only) is refused on CPU with a clear error.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { validateConfig } from '../src/config';
import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { makeImages, TEST_THREADS } from './helpers';

const HOC: NativeModelSpec = { family: 'hoc', convFilters: [16, 32], dense: [64], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true };

describe('mixed precision (amp)', function () {
  this.timeout(120_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-amp-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('bf16 autocast trains on CPU with float32 weights, and its inference tracks float32 inference', async () => {
    const { images, labels } = makeImages(256, 3);
    const bf16 = CifakeModel.create(HOC, { device: 'cpu', seed: 5, threads: TEST_THREADS, amp: 'bf16' });
    const fp32 = CifakeModel.create(HOC, { device: 'cpu', seed: 5, threads: TEST_THREADS });
    try {
      await bf16.setData('train', images, labels);
      await fp32.setData('train', images, labels);
      const before = await bf16.state();
      const a = await bf16.trainEpoch({ data: 'train', batchSize: 32, seed: 1, epoch: 0 });
      const b = await fp32.trainEpoch({ data: 'train', batchSize: 32, seed: 1, epoch: 0 });
      expect(a.nonFinite).to.equal(false);
      expect(a.loss).to.be.closeTo(b.loss, 0.05); // same data, same init: bf16 rounding only
      expect(a.lossScale).to.equal(0); // loss scaling is for fp16 only
      const after = await bf16.state();
      for (const [name, w] of Object.entries(after)) expect(w, name).to.be.instanceOf(Float32Array);
      expect(after['dense1.weight']).to.not.deep.equal(before['dense1.weight']);

      // The bf16-trained weights evaluated without autocast: logits agree to bf16 precision.
      const file = path.join(tmp, 'bf16.pt');
      await bf16.save(file, {});
      const { model: plain } = await CifakeModel.load(file, { device: 'cpu', threads: TEST_THREADS });
      try {
        const [low, full] = [await bf16.predictLogits('train'), await plain.predictLogits(images)];
        let signs = 0;
        for (let i = 0; i < low.length; i++) {
          expect(Math.abs(low[i] - full[i]), `image ${i}`).to.be.below(0.05 + 0.05 * Math.abs(full[i]));
          if (low[i] >= 0 === full[i] >= 0) signs++;
        }
        expect(signs / low.length).to.be.above(0.95);
      } finally {
        plain.dispose();
      }
    } finally {
      bf16.dispose();
      fp32.dispose();
    }
  });

  it('fp16 needs CUDA: refused on CPU by the native layer and by config validation, naming amp', () => {
    expect(() => CifakeModel.create(HOC, { device: 'cpu', amp: 'fp16' })).to.throw(/amp: 'fp16' needs a CUDA device/);
    expect(() => validateConfig({ device: 'cpu', amp: 'fp16' })).to.throw(/amp/);
    expect(validateConfig({ device: 'cpu', amp: 'bf16' }).amp).to.equal('bf16');
    expect(() => CifakeModel.create(HOC, { device: 'cpu', amp: 'fp8' as 'bf16' })).to.throw(/amp: unknown mode 'fp8' \(allowed: none, bf16, fp16\)/);
  });
});

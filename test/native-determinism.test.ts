// Each model draws from its own generator: models training at once in one process give exactly
// the weights they give alone.
import { expect } from 'chai';

import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { makeImages } from './helpers';

const SPEC: NativeModelSpec = {
  family: 'hoc', convFilters: [4, 8], dense: [16], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true,
};

async function train(seed: number, images: Uint8Array, labels: Uint8Array): Promise<Record<string, Float32Array>> {
  const m = CifakeModel.create(SPEC, { device: 'cpu', seed, threads: 1 });
  await m.setData('train', images, labels);
  for (let epoch = 0; epoch < 2; epoch++)
    await m.trainEpoch({ data: 'train', batchSize: 16, seed: seed + 100, epoch, augment: { hflip: true, shift: 2, cutmix: 0.5 } });
  const state = await m.state();
  await m.disposeAsync();
  return state;
}

function sameBits(a: Record<string, Float32Array>, b: Record<string, Float32Array>): boolean {
  const keys = Object.keys(a);
  if (keys.join() !== Object.keys(b).join()) return false;
  return keys.every((k) => Buffer.from(a[k].buffer).equals(Buffer.from(b[k].buffer)));
}

describe('native determinism with concurrent models', function () {
  this.timeout(120_000);
  it('two models trained at once (Promise.all) equal their solo runs bit for bit', async () => {
    const { images, labels } = makeImages(256, 12);
    const soloA = await train(1, images, labels);
    const soloB = await train(2, images, labels);
    expect(sameBits(soloA, soloB)).to.equal(false); // different seeds do differ
    const [a, b] = await Promise.all([train(1, images, labels), train(2, images, labels)]);
    expect(sameBits(a, soloA)).to.equal(true);
    expect(sameBits(b, soloB)).to.equal(true);
  });

  it('creating models while another trains does not change its weights', async () => {
    const { images, labels } = makeImages(256, 13);
    const solo = await train(3, images, labels);
    let stop = false;
    const churn = (async () => {
      while (!stop) {
        const m = CifakeModel.create(SPEC, { device: 'cpu', seed: 99, threads: 1 });
        await m.predictLogits(images.subarray(0, 3072 * 4));
        await m.disposeAsync();
      }
    })();
    const busy = await train(3, images, labels);
    stop = true;
    await churn;
    expect(sameBits(busy, solo)).to.equal(true);
  });
});

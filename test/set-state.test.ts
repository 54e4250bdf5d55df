// CifakeModel.setState: weights from JS (e.g. imported from safetensors) replace the model's.
import { expect } from 'chai';

import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { makeImages, TEST_THREADS } from './helpers';

const SPEC: NativeModelSpec = { family: 'hoc', convFilters: [8, 16], dense: [16], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true, convsPerBlock: 2, residual: true };

describe('CifakeModel.setState', () => {
  it("gives a model another's parameters and buffers: the same predictions", async () => {
    const { images, labels } = makeImages(64, 2);
    const a = CifakeModel.create(SPEC, { device: 'cpu', seed: 1, threads: TEST_THREADS });
    const b = CifakeModel.create(SPEC, { device: 'cpu', seed: 2, threads: TEST_THREADS });
    await a.setData('t', images, labels);
    await a.trainEpoch({ data: 't', batchSize: 16 }); // moves the BN running statistics too
    const before = await b.predictLogits(images);
    const want = await a.predictLogits(images);
    expect(Array.from(before)).to.not.deep.equal(Array.from(want));
    await b.setState(await a.state());
    expect(Array.from(await b.predictLogits(images))).to.deep.equal(Array.from(want));
    a.dispose();
    b.dispose();
  });

  it('refuses a missing, unknown or mis-sized tensor (naming it) and changes nothing', async () => {
    const m = CifakeModel.create(SPEC, { device: 'cpu', seed: 1, threads: TEST_THREADS });
    const { images } = makeImages(8, 3);
    const want = Array.from(await m.predictLogits(images));
    const state = await m.state();
    const reject = async (s: Record<string, unknown>) => {
      try {
        await m.setState(s as Record<string, Float32Array>);
        return 'resolved';
      } catch (e) {
        return (e as Error).message;
      }
    };
    const missing = { ...state };
    delete missing['out.bias'];
    expect(await reject(missing)).to.match(/setState: missing tensor 'out.bias'/);
    expect(await reject({ ...state, 'extra.weight': new Float32Array(1) })).to.match(/setState: unknown tensor 'extra.weight'/);
    const zeroed = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, new Float32Array(v.length)]));
    expect(await reject({ ...zeroed, 'block1.conv.weight': new Float32Array(3) })).to.match(/'block1.conv.weight' has 3 values, the model's has 216/);
    expect(await reject({ ...state, 'out.bias': [0] })).to.match(/state.out.bias: expected a Float32Array/);
    expect(Array.from(await m.predictLogits(images))).to.deep.equal(want);
    m.dispose();
  });
});

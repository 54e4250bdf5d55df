// Multi-conv and residual blocks (model.convsPerBlock, model.residual) and label smoothing.
import { expect } from 'chai';

import { modelSpecOf, resolveConfig } from '../src/config';
import { CifakeModel } from '../src/model';
import { loadNative, type NativeModelSpec } from '../src/native';
import { makeImages, overfitAccuracy, TEST_THREADS } from './helpers';

const HOC: NativeModelSpec = { family: 'hoc', convFilters: [16, 32], dense: [64], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true };

const conv = (cin: number, cout: number, bias = true) => cin * cout * 9 + (bias ? cout : 0);
const bn = (c: number) => 2 * c;
const dense = (i: number, o: number) => i * o + o;

/** one block: HOC first conv (+ conv' on x^2) + BN, then (k - 1) bias-free 3x3 convs + BN, + 1x1 projection + BN when the width changes */
function blockParams(cin: number, cout: number, k: number, residual: boolean) {
  let n = 2 * conv(cin, cout) + bn(cout);
  n += (k - 1) * (conv(cout, cout, false) + bn(cout));
  if (residual && cin !== cout) n += cin * cout + bn(cout);
  return n;
}

function create(extra: Partial<NativeModelSpec>, seed = 7) {
  return CifakeModel.create({ ...HOC, ...extra }, { device: 'cpu', seed, threads: TEST_THREADS });
}

describe('conv blocks: convsPerBlock, residual, label smoothing', () => {
  for (const [k, residual] of [[2, false], [2, true], [3, true], [1, true]] as const) {
    it(`has the parameter count of ${k} conv(s) per block${residual ? ', residual' : ''}`, () => {
      const m = create({ convsPerBlock: k, residual });
      const expected = blockParams(3, 16, k, residual) + blockParams(16, 32, k, residual) + dense(32 * 8 * 8, 64) + dense(64, 1);
      expect(m.parameters).to.equal(expected);
      m.dispose();
    });
  }

  it('names the added convs, batch norms and projections in the state', async () => {
    const m = create({ convsPerBlock: 2, residual: true, convFilters: [16, 16] });
    const names = Object.keys(await m.state());
    expect(names).to.include.members(['block1.conv2.weight', 'block1.bn2.running_mean', 'block1.proj.weight', 'block2.conv2.weight']);
    // same width across block 2: identity shortcut, no projection
    expect(names.some((n) => n.startsWith('block2.proj'))).to.equal(false);
    m.dispose();
  });

  it('has analytic gradients that match finite differences (float64), residual and plain', () => {
    for (const residual of [false, true]) {
      const r = loadNative().gradientCheck({ ...HOC, convFilters: [4, 6], dense: [8], convsPerBlock: 2, residual }, 3);
      expect(r.checked).to.be.greaterThan(20);
      expect(r.maxRelError).to.be.below(1e-5);
    }
  });

  it('trains four residual blocks on generated images to >= 99% train accuracy', async () => {
    const m = create({ convFilters: [8, 16, 16, 32], convsPerBlock: 2, residual: true });
    expect(await overfitAccuracy(m)).to.be.at.least(0.99);
    m.dispose();
  });

  const FOLD_CASES: [string, Partial<NativeModelSpec>][] = [
    ['original (no BN, valid padding)', { family: 'original', batchNorm: false, hoc: false, padding: 'valid', dropout: 0 }],
    ['lightweight', { family: 'lightweight', hoc: false }],
    ['hoc, fused', {}],
    ['hoc, two convs', { fusedHoc: false }],
    ['residual, projections', { family: 'lightweight', hoc: false, convFilters: [8, 16], convsPerBlock: 2, residual: true }],
    ['residual, identity shortcut, HOC first conv', { convFilters: [8, 8], convsPerBlock: 3, residual: true }],
  ];
  for (const [name, extra] of FOLD_CASES) {
    it(`inference with batch norm folded into the convs gives the module's eval-mode logits: ${name}`, async () => {
      const m = create(extra);
      const { images, labels } = makeImages(96, 5);
      await m.setData('t', images, labels);
      // trained, so that the running statistics and the BN affine are far from their initial values
      for (let epoch = 0; epoch < 3; epoch++) await m.trainEpoch({ data: 't', batchSize: 16, epoch, lr: 3e-3 });
      const folded = await m.predictLogits(images, 40); // uneven chunks
      const unfolded = (await m.gradcam(images, { target: 'pred' })).logits; // the modules' own forward, eval mode
      let worst = 0;
      folded.forEach((z, i) => (worst = Math.max(worst, Math.abs(z - unfolded[i]) / Math.max(1, Math.abs(unfolded[i])))));
      expect(worst).to.be.below(1e-4);
      expect(new Set(Array.from(folded, (z) => z.toFixed(3))).size).to.be.above(10); // not a constant output
      m.dispose();
    });
  }

  it('label smoothing trains toward smoothed targets: logits stay bounded by log((1 - e/2) / (e/2))', async () => {
    const { images, labels } = makeImages(128, 3);
    const eps = 0.2;
    const bound = Math.log((1 - eps / 2) / (eps / 2));
    const plain = create({ dropout: 0 }, 1), smooth = create({ dropout: 0 }, 1);
    for (const m of [plain, smooth]) await m.setData('t', images, labels);
    for (let epoch = 0; epoch < 15; epoch++) {
      await plain.trainEpoch({ data: 't', batchSize: 16, epoch, lr: 3e-3 });
      await smooth.trainEpoch({ data: 't', batchSize: 16, epoch, lr: 3e-3, labelSmoothing: eps });
    }
    const maxAbs = (z: Float32Array) => z.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    const zp = await plain.predictLogits('t'), zs = await smooth.predictLogits('t');
    // the smoothed optimum is |logit| = bound; unsmoothed BCE keeps pushing logits outwards
    expect(maxAbs(zs)).to.be.below(bound * 1.5);
    expect(maxAbs(zp)).to.be.above(maxAbs(zs));
    plain.dispose();
    smooth.dispose();
  });

  it('rejects a non-finite label smoothing natively, and outside the config range in TS', async () => {
    const m = create({});
    const { images, labels } = makeImages(8, 1);
    await m.setData('t', images, labels);
    let err = '';
    // The range is TypeScript's (src/config.ts); the native layer only refuses what is not a number.
    await m.trainEpoch({ data: 't', labelSmoothing: NaN }).catch((e: Error) => (err = e.message));
    expect(err).to.match(/labelSmoothing: expected a finite number/);
    m.dispose();
    expect(() => resolveConfig({ overrides: { labelSmoothing: 0.7 } })).to.throw(/labelSmoothing: must be < 0.5/);
    expect(() => resolveConfig({ overrides: { model: { family: 'hoc', convsPerBlock: 9 } } })).to.throw(/model.convsPerBlock/);
  });

  it('sends the block fields to the native spec only when they are set', () => {
    const plain = modelSpecOf(resolveConfig({ preset: 'hoc' }).model);
    expect(plain).to.not.have.property('convsPerBlock');
    expect(plain).to.not.have.property('residual');
    const res = modelSpecOf(resolveConfig({ overrides: { model: { family: 'lightweight', convsPerBlock: 2, residual: true } } }).model);
    expect(res).to.include({ convsPerBlock: 2, residual: true, hoc: false });
  });
});

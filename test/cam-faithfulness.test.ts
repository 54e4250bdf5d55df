// CAM methods from layer activations and gradients, and the faithfulness metrics (ROAD,
// deletion/insertion) on a planted-signal model whose right answer is known.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { camFromLayer, GRADIENT_CAM_METHODS, scoreCam, upsampleMaps, type LayerTensors } from '../src/gradcam/cam-methods';
import { centrePriorMaps, faithfulness, imputeNoisyLinear, randomMaps } from '../src/gradcam/faithfulness';
import { camMaps, CAM_METHODS } from '../src/gradcam/faithfulness-run';
import { explainImages } from '../src/gradcam/explain';
import { CifakeModel } from '../src/model';
import { rng } from './data-helpers';
import { synthesize } from '../src/data/synth';
import { makeImages, TEST_THREADS, tinyCheckpoint } from './helpers';

const close = (got: ArrayLike<number>, want: number[], eps = 1e-6) => want.forEach((w, i) => expect(got[i], `[${i}]`).to.be.closeTo(w, eps));

describe('CAM methods from activations and gradients', () => {
  // one image, two channels, 2 x 2 layer: A0 = [1 2 3 4], G0 = 1; A1 = [4 3 2 1], G1 = [-1 0 0 -2]
  const t: LayerTensors = { n: 1, channels: 2, size: 2, activations: Float32Array.from([1, 2, 3, 4, 4, 3, 2, 1]), gradients: Float32Array.from([1, 1, 1, 1, -1, 0, 0, -2]) };

  it('match the papers’ formulas on a hand-computed example', () => {
    // Grad-CAM: w = mean G = (1, -0.75): A0 - 0.75 A1 = [-2, -0.25, 1.5, 3.25] -> ReLU
    close(camFromLayer(t, 'gradcam'), [0, 0, 1.5, 3.25]);
    // HiResCAM: G0 A0 + G1 A1 = [1, 2, 3, 4] + [-4, 0, 0, -2]
    close(camFromLayer(t, 'hirescam'), [0, 2, 3, 2]);
    // XGradCAM: w = sum(G A) / sum(A) = (10 / 10, -6 / 10): A0 - 0.6 A1
    close(camFromLayer(t, 'xgradcam'), [0, 0.2, 1.8, 3.4], 1e-5);
    // LayerCAM: ReLU(G0) A0 + ReLU(G1) A1 = A0
    close(camFromLayer(t, 'layercam'), [1, 2, 3, 4]);
    // Grad-CAM++: alpha0 = 1 / (2 + 10) at each pixel, w0 = 4 / 12; ReLU(G1) = 0 so w1 = 0
    close(camFromLayer(t, 'gradcampp'), [1 / 3, 2 / 3, 1, 4 / 3], 1e-5);
  });

  it('EigenCAM recovers the shared spatial pattern of rank-one activations, with the sign of the activation', () => {
    const s = [1, 2, 3, 4];
    const r1: LayerTensors = { n: 1, channels: 2, size: 2, activations: Float32Array.from([...s, ...s.map((v) => 2 * v)]), gradients: new Float32Array(8) };
    // centred pattern s - 2.5 projected on (1, 2) / sqrt 5: (s - 2.5) sqrt 5, ReLU'd
    close(camFromLayer(r1, 'eigencam'), [0, 0, 0.5 * Math.sqrt(5), 1.5 * Math.sqrt(5)], 1e-4);
  });

  it('a batch gives the maps of its images one at a time', () => {
    const r = rng(3);
    const n = 3, c = 4, size = 4, per = c * size * size;
    const batch: LayerTensors = { n, channels: c, size, activations: Float32Array.from({ length: n * per }, () => Math.max(0, r() - 0.3)), gradients: Float32Array.from({ length: n * per }, () => r() - 0.5) };
    for (const m of GRADIENT_CAM_METHODS) {
      const all = camFromLayer(batch, m);
      for (let i = 0; i < n; i++) {
        const one = camFromLayer({ n: 1, channels: c, size, activations: batch.activations.slice(i * per, (i + 1) * per), gradients: batch.gradients.slice(i * per, (i + 1) * per) }, m);
        close(all.subarray(i * 16, (i + 1) * 16), Array.from(one), 1e-6);
      }
    }
  });

  it('upsamples to 32 x 32 with peak 1 and rejects mismatched tensors', () => {
    const up = upsampleMaps(Float32Array.from([0, 1, 2, 4]), 1, 2);
    expect(up.length).to.equal(1024);
    expect(Math.max(...up)).to.equal(1);
    expect(() => camFromLayer({ ...t, gradients: new Float32Array(3) }, 'gradcam')).to.throw(/expected 1 x 2 x 2 x 2/);
  });

  it('ScoreCAM weighs channels by the softmax of their masked scores', async () => {
    // model: logit = mean red of the top half minus the bottom half, / 10
    const model = {
      predictLogits: async (images: Uint8Array) =>
        Float32Array.from({ length: images.length / 3072 }, (_, i) => {
          let top = 0, bottom = 0;
          for (let p = 0; p < 512; p++) top += images[i * 3072 + p];
          for (let p = 512; p < 1024; p++) bottom += images[i * 3072 + p];
          return (top - bottom) / 512 / 10;
        }),
    };
    const image = new Uint8Array(3072).fill(200);
    // channel 0 lights the top half, channel 1 the bottom half (2 x 2 layer)
    const acts = { n: 1, channels: 2, size: 2, activations: Float32Array.from([1, 1, 0, 0, 0, 0, 1, 1]) };
    const real = await scoreCam(model, image, acts, [1]);
    expect(real[0]).to.be.greaterThan(real[2]); // REAL: the top half supports it
    const fake = await scoreCam(model, image, acts, [0]);
    expect(fake[2]).to.be.greaterThan(fake[0]); // FAKE = -logit: the bottom half supports it
  });
});

describe('faithfulness metrics', function () {
  this.timeout(60_000);

  it('noisy linear imputation keeps linear images linear (no noise) and fills holes near their neighbours', () => {
    const ramp = new Uint8Array(3072);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) ramp[c * 1024 + y * 32 + x] = 40 + 4 * x + 2 * y;
    const removed = new Uint8Array(1024);
    for (let y = 8; y < 20; y++) for (let x = 10; x < 22; x++) removed[y * 32 + x] = 1;
    const out = imputeNoisyLinear(ramp, removed, rng(1), 0);
    for (let p = 0; p < 3072; p++) expect(Math.abs(out[p] - ramp[p]), `pixel ${p}`).to.be.at.most(1);
    const noisy = imputeNoisyLinear(ramp, removed, rng(1));
    let differs = 0;
    for (let p = 0; p < 1024; p++) if (removed[p] && noisy[p] !== out[p]) differs++;
    expect(differs).to.be.greaterThan(10);
  });

  // Planted signal: the logit is the brightness of the top-left 8 x 8 patch; REAL images have it bright.
  const patch = (p: number) => (p % 32) < 8 && p < 8 * 32;
  const model = {
    predictLogits: async (images: Uint8Array) =>
      Float32Array.from({ length: images.length / 3072 }, (_, i) => {
        let s = 0;
        for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) if (patch(p)) s += images[i * 3072 + c * 1024 + p];
        return (s / 192 - 128) / 10;
      }),
  };
  const n = 6;
  const r = rng(9);
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) images[i * 3072 + c * 1024 + p] = patch(p) ? 220 : Math.floor(r() * 256);
  const targets = new Array(n).fill(1);
  const planted = new Float32Array(n * 1024);
  for (let i = 0; i < n; i++) for (let p = 0; p < 1024; p++) planted[i * 1024 + p] = patch(p) ? 1 : 0;

  it('rank the planted map far above a random map, and a random map near zero', async () => {
    const good = await faithfulness(model, images, planted, targets, 1);
    const rand = await faithfulness(model, images, randomMaps(n, 2), targets, 1);
    const centre = await faithfulness(model, images, centrePriorMaps(n), targets, 1);
    expect(good.base).to.be.greaterThan(0.99);
    expect(good.morf[0]).to.be.below(0.75); // the whole patch is imputed from its surroundings at 10%
    expect(good.lerf[8]).to.be.greaterThan(0.99); // the patch is kept until the end
    expect(good.roadCombined).to.be.greaterThan(0.2);
    expect(Math.abs(rand.roadCombined)).to.be.below(0.1);
    expect(good.roadCombined).to.be.greaterThan(rand.roadCombined + 0.15);
    expect(centre.roadCombined).to.be.below(good.roadCombined); // the signal is not in the centre
    expect(good.deletionAuc).to.be.below(rand.deletionAuc);
    expect(good.insertionAuc).to.be.greaterThan(rand.insertionAuc);
  });

  it('is deterministic for a seed', async () => {
    const a = await faithfulness(model, images, randomMaps(n, 3), targets, 5);
    const b = await faithfulness(model, images, randomMaps(n, 3), targets, 5);
    expect(a).to.deep.equal(b);
  });
});

describe('CAM methods on a real model (native layer tensors)', function () {
  this.timeout(120_000);
  it('Grad-CAM and HiResCAM from the layer tensors equal the native maps; every method gives a 32 x 32 map per image, the same batched as alone', async () => {
    const spec = { family: 'hoc' as const, convFilters: [8, 16], dense: [16], dropout: 0.5, padding: 'same' as const, batchNorm: true, hoc: true, fusedHoc: true };
    const model = CifakeModel.create(spec, { device: 'cpu', seed: 4, threads: TEST_THREADS });
    const { images, labels } = makeImages(6, 5);
    await model.setData('t', images, labels);
    await model.trainEpoch({ data: 't', batchSize: 3 });
    const g = await model.gradcam(images, { tensors: true });
    expect(g.channels).to.equal(16);
    expect(g.activations!.length).to.equal(6 * 16 * g.layerSize * g.layerSize);
    const t = { n: g.n, channels: g.channels!, size: g.layerSize, activations: g.activations!, gradients: g.gradients! };
    const ours = camFromLayer(t, 'gradcam');
    ours.forEach((v, i) => expect(v).to.be.closeTo(g.raw[i], 1e-4 * Math.max(1, Math.abs(g.raw[i]))));
    const hires = await model.gradcam(images, { method: 'hirescam' });
    camFromLayer(t, 'hirescam').forEach((v, i) => expect(v).to.be.closeTo(hires.raw[i], 1e-4 * Math.max(1, Math.abs(hires.raw[i]))));
    for (const m of CAM_METHODS) {
      const all = await camMaps(model, images, m);
      expect(all.maps.length, m).to.equal(6 * 1024);
      for (const v of all.maps) expect(v, m).to.be.within(0, 1);
      const one = await camMaps(model, images.subarray(3072, 6144), m);
      one.maps.forEach((v, i) => expect(v, `${m} pixel ${i}`).to.be.closeTo(all.maps[1024 + i], 1e-4));
    }
    // explainImages (cifake gradcam --method) gives every gradient method's layer maps for each image's predicted class
    for (const m of ['xgradcam', 'layercam', 'eigencam'] as const) {
      const e = await explainImages(model, images, { method: m });
      const byClass = [await model.gradcam(images, { target: 'fake', tensors: true }), await model.gradcam(images, { target: 'real', tensors: true })];
      for (let i = 0; i < 6; i++) {
        const r = byClass[e.predicted[i]];
        const hw = r.layerSize * r.layerSize;
        const one = { n: 1, channels: r.channels!, size: r.layerSize, activations: r.activations!.subarray(i * 16 * hw, (i + 1) * 16 * hw), gradients: r.gradients!.subarray(i * 16 * hw, (i + 1) * 16 * hw) };
        const want = camFromLayer(one, m);
        want.forEach((v, k) => expect(e.raw[i * hw + k], `${m} image ${i}`).to.be.closeTo(v, 1e-4 * Math.max(1, Math.abs(v))));
      }
      expect(e.method).to.equal(m);
      for (const v of e.maps) expect(v).to.be.within(0, 1);
    }
    model.dispose();
  });
});

describe('cifake gradcam --faithfulness', function () {
  this.timeout(300_000);
  it('scores the chosen methods and both baselines on a split, writes faithfulness.json, and rejects an unknown method with exit 2', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-faith-'));
    try {
      const dataDir = path.join(tmp, 'data');
      await synthesize(dataDir, { trainPerClass: 4, testPerClass: 3, seed: 2 });
      const ckpt = path.join(tmp, 'tiny.pt');
      await tinyCheckpoint(ckpt);
      const root = path.resolve(__dirname, '..');
      const cli = (args: string[]) => spawnSync(process.execPath, ['--require', 'tsx/cjs', path.join(root, 'bin', 'cifake.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CIFAKE_CACHE_DIR: path.join(tmp, 'cache') } });
      const out = path.join(tmp, 'out');
      const r = cli(['gradcam', '--model', ckpt, '--data', dataDir, '--faithfulness', '--methods', 'gradcam,eigencam', '--limit', '3', '--out', out, '--json', '--threads', '1']);
      expect(r.status, r.stderr).to.equal(0);
      const report = JSON.parse(r.stdout);
      expect(report.rows.map((x: { method: string }) => x.method).sort()).to.deep.equal(['centre', 'eigencam', 'gradcam', 'random']);
      expect(report.n).to.equal(6);
      for (const row of report.rows) expect(row.morf).to.have.length(9);
      expect(JSON.parse(fs.readFileSync(path.join(out, 'faithfulness.json'), 'utf8')).rows).to.have.length(4);
      const bad = cli(['gradcam', '--model', ckpt, '--data', dataDir, '--faithfulness', '--methods', 'magic', '--out', out]);
      expect(bad.status).to.equal(2);
      expect(bad.stderr).to.match(/unknown method 'magic'/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

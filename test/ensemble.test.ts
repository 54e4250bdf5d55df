// Ensembles (model.members > 1): one model of K networks whose logit is their mean, trained with
// each network on its own loss, and composed from trained runs by `cifake ensemble`.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { main } from '../bin/cifake';
import { validateConfig } from '../src/config';
import { synthesize } from '../src/data/synth';
import { tensorLayout } from '../src/export';
import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { readRunSummary, readScoresFile } from '../src/run';
import { composeEnsemble } from '../src/train/ensemble';
import { evaluate } from '../src/train/evaluate';
import { train } from '../src/train/fit';
import { maxAbsDiff } from './export-helpers';
import { makeImages, TEST_THREADS } from './helpers';

const one: NativeModelSpec = { family: 'lightweight', convFilters: [8, 16], dense: [16], dropout: 0, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false, convsPerBlock: 2, residual: true };
const pair: NativeModelSpec = { ...one, members: 2 };

async function trainedAlone(seed: number, images: Uint8Array, labels: Uint8Array): Promise<CifakeModel> {
  const m = CifakeModel.create(one, { device: 'cpu', seed, threads: 1 });
  await m.setData('train', images, labels);
  await m.trainEpoch({ data: 'train', batchSize: 32, epoch: 0 });
  return m;
}

function prefixed(state: Record<string, Float32Array>, prefix: string): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(state).map(([k, v]) => [prefix + k, v]));
}

/** Two networks trained alone (seeds 3 and 4) and the ensemble holding their weights. */
async function trainedPair(images: Uint8Array, labels: Uint8Array): Promise<{ a: CifakeModel; b: CifakeModel; ens: CifakeModel; dispose: () => void }> {
  const a = await trainedAlone(3, images, labels), b = await trainedAlone(4, images, labels);
  const ens = CifakeModel.create(pair, { device: 'cpu', seed: 0, threads: 1 });
  await ens.setState({ ...prefixed(await a.state(), 'member1.'), ...prefixed(await b.state(), 'member2.') });
  return { a, b, ens, dispose: () => [a, b, ens].forEach((m) => m.dispose()) };
}

describe('ensembles (model.members)', function () {
  this.timeout(120_000);
  const { images, labels } = makeImages(128, 5);

  it('names its tensors member1. ... memberK. as the layout says, and counts every member', async () => {
    const m = CifakeModel.create({ ...one, members: 3 }, { device: 'cpu', seed: 1, threads: 1 });
    const single = CifakeModel.create(one, { device: 'cpu', seed: 1, threads: 1 });
    try {
      const state = await m.state();
      const layout = tensorLayout({ ...one, members: 3 });
      expect(Object.keys(state).sort()).to.deep.equal(layout.map((e) => e.name).sort());
      expect(layout.filter((e) => e.name.startsWith('member3.')).length).to.equal(tensorLayout(one).length);
      expect(m.parameters).to.equal(3 * single.parameters);
      expect(m.description.members).to.equal(3);
      expect(m.description.layers).to.deep.equal(single.description.layers);
      // the members start apart
      expect(maxAbsDiff(state['member1.block1.conv.weight'], state['member2.block1.conv.weight'])).to.be.above(1e-3);
    } finally {
      m.dispose();
      single.dispose();
    }
  });

  it('predicts the mean of its members’ logits', async () => {
    const { a, b, ens, dispose } = await trainedPair(images, labels);
    try {
      const probe = makeImages(40, 9).images;
      const la = await a.predictLogits(probe), lb = await b.predictLogits(probe);
      const mean = Array.from(la, (z, i) => (z + lb[i]) / 2);
      expect(maxAbsDiff(await ens.predictLogits(probe), mean)).to.be.below(1e-5);
      expect(maxAbsDiff(la, lb)).to.be.above(1e-3);
    } finally {
      dispose();
    }
  });

  it('trains each member on its own loss: member 1 ends where the same network trained alone does', async () => {
    // No dropout and no augmentation: the seed gives member 1 the lone network's initial weights
    // and both the same batch order, so any coupling of the members' gradients would show.
    const alone = await trainedAlone(11, images, labels);
    const ens = CifakeModel.create(pair, { device: 'cpu', seed: 11, threads: 1 });
    try {
      await ens.setData('train', images, labels);
      const r = await ens.trainEpoch({ data: 'train', batchSize: 32, epoch: 0 });
      expect(r.loss).to.be.finite;
      const s = await ens.state(), lone = await alone.state();
      for (const name of ['block1.conv.weight', 'block2.bn2.weight', 'out.weight', 'block2.bn.running_mean'])
        expect(maxAbsDiff(s[`member1.${name}`], lone[name]), name).to.be.below(1e-4);
      expect(maxAbsDiff(s['member2.out.weight'], lone['out.weight'])).to.be.above(1e-3);
    } finally {
      alone.dispose();
      ens.dispose();
    }
  });

  it("explains the mean logit: Grad-CAM's layer is the members' activations side by side, each half with half its member's gradient", async () => {
    const { a, b, ens, dispose } = await trainedPair(images, labels);
    try {
      const probe = makeImages(4, 2).images;
      const opts = { layer: 'conv2', target: 'real' as const, tensors: true };
      const e = await ens.gradcam(probe, opts), ga = await a.gradcam(probe, opts), gb = await b.gradcam(probe, opts);
      expect(e.channels).to.equal(2 * ga.channels!);
      const hw = e.layerSize * e.layerSize, c = ga.channels!;
      for (let n = 0; n < 4; n++) {
        const slice = (t: Float32Array, ch: number, from: number, count: number) => t.subarray((n * ch + from) * hw, (n * ch + from + count) * hw);
        expect(maxAbsDiff(slice(e.activations!, 2 * c, 0, c), slice(ga.activations!, c, 0, c))).to.be.below(1e-5);
        expect(maxAbsDiff(slice(e.activations!, 2 * c, c, c), slice(gb.activations!, c, 0, c))).to.be.below(1e-5);
        expect(maxAbsDiff(slice(e.gradients!, 2 * c, 0, c), Array.from(slice(ga.gradients!, c, 0, c), (g) => g / 2))).to.be.below(1e-6);
        expect(maxAbsDiff(slice(e.gradients!, 2 * c, c, c), Array.from(slice(gb.gradients!, c, 0, c), (g) => g / 2))).to.be.below(1e-6);
      }
      expect(maxAbsDiff(e.logits, Array.from(ga.logits, (z, i) => (z + gb.logits[i]) / 2))).to.be.below(1e-5);
    } finally {
      dispose();
    }
  });

  it('validates members as a config field', () => {
    expect(validateConfig({ model: { family: 'hoc', members: 2 } }).model.members).to.equal(2);
    expect(validateConfig({ model: { family: 'hoc' } }).model.members).to.equal(1);
    expect(() => validateConfig({ model: { family: 'lightweight', members: 9 } })).to.throw(/model\.members/);
    expect(() => validateConfig({ model: { family: 'lightweight', members: 1.5 } })).to.throw(/model\.members/);
    expect(() => CifakeModel.create({ ...one, members: 0 }, { device: 'cpu' })).to.throw(/members/);
  });
});

describe('composeEnsemble (cifake ensemble)', function () {
  this.timeout(300_000);
  let tmp: string, data: string, runs: string;
  const runDirs: string[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-ens-'));
    data = path.join(tmp, 'data');
    runs = path.join(tmp, 'runs');
    await synthesize(data, { trainPerClass: 60, testPerClass: 10, seed: 4 });
    const common = { data, outDir: runs, threads: TEST_THREADS, device: 'cpu', cacheDir: path.join(tmp, 'cache'), epochs: 2, earlyStopping: { patience: 3 }, valFraction: 0.5 };
    for (const seed of [1, 2]) runDirs.push((await train({ ...common, name: `m${seed}`, seed, model: { family: 'lightweight', convFilters: [8, 16], dense: [16] } })).runDir);
    runDirs.push((await train({ ...common, name: 'other', seed: 3, model: { family: 'lightweight', convFilters: [8, 8], dense: [16] } })).runDir);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes a run whose model predicts the mean logit, calibrated on the validation images both members held out', async () => {
    const out = path.join(runs, 'pair');
    const r = await composeEnsemble(runDirs.slice(0, 2), { out });
    const [v1, v2] = runDirs.slice(0, 2).map((d) => readScoresFile(path.join(d, 'scores-val.json')));
    const shared = v1.files!.filter((f) => v2.files!.includes(f));
    expect(shared.length).to.be.above(0).and.below(v1.files!.length);
    const val = readScoresFile(path.join(out, 'scores-val.json'));
    expect(val.files).to.deep.equal(shared);
    expect(r.valImages).to.equal(shared.length);
    expect(r.calibration?.val.n).to.equal(shared.length);
    expect(r.parameters).to.equal(2 * readRunSummary(runDirs[0])!.parameters);

    // the saved model itself, run natively on the test split, gives the mean of the members' test logits
    const [t1, t2] = runDirs.slice(0, 2).map((d) => readScoresFile(path.join(d, 'scores-test.json')));
    const e = await evaluate(out, { data, split: 'test', scores: true, threads: 1, cacheDir: false });
    expect(e.temperature).to.equal(r.calibration!.temperature);
    const byFile = new Map(e.scores!.files.map((f, i) => [f, e.scores!.logits[i] * e.temperature]));
    const expected = t1.files!.map((f, i) => (t1.logits![i] + t2.logits![t2.files!.indexOf(f)]) / 2);
    expect(maxAbsDiff(t1.files!.map((f) => byFile.get(f)!), expected)).to.be.below(1e-3);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).model.members).to.equal(2);
    await train({}, { resume: out }).then(
      () => expect.fail('resumed a composed ensemble'),
      (err: Error) => expect(err.message).to.match(/ensemble written by cifake ensemble/),
    );
  });

  it('runs as `cifake ensemble`: --json prints the result, a missing --out is a usage error (exit 2)', async () => {
    let out = '';
    const write = process.stdout.write.bind(process.stdout), writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await main(['node', 'cifake', 'ensemble', runDirs[0], runDirs[1], '--out', path.join(runs, 'cli'), '--json'])).to.equal(0);
      expect(await main(['node', 'cifake', 'ensemble', runDirs[0], runDirs[1]])).to.equal(2);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    const r = JSON.parse(out);
    expect(r.members.map((m: { seed: number }) => m.seed)).to.deep.equal([1, 2]);
    expect(fs.existsSync(path.join(runs, 'cli', 'best.pt'))).to.equal(true);
  });

  it('refuses one member, mixed architectures, a repeated member and an existing output, naming what is wrong', async () => {
    await composeEnsemble([runDirs[0]], { out: path.join(runs, 'x1') }).then(
      () => expect.fail('accepted one member'),
      (e: Error) => expect(e.message).to.match(/2 to 8 members, got 1/),
    );
    await composeEnsemble([runDirs[0], runDirs[2]], { out: path.join(runs, 'x2') }).then(
      () => expect.fail('accepted two architectures'),
      (e: Error) => expect(e.message).to.contain(path.join(runDirs[2], 'best.pt')).and.match(/architecture/),
    );
    await composeEnsemble([runDirs[0], runDirs[0]], { out: path.join(runs, 'x3') }).then(
      () => expect.fail('accepted a repeated member'),
      (e: Error) => expect(e.message).to.match(/twice/),
    );
    fs.mkdirSync(path.join(runs, 'taken'));
    await composeEnsemble(runDirs.slice(0, 2), { out: path.join(runs, 'taken') }).then(
      () => expect.fail('wrote over an existing directory'),
      (e: Error) => expect(e.message).to.match(/already exists/),
    );
    for (const name of ['x1', 'x2', 'x3']) expect(fs.existsSync(path.join(runs, name))).to.equal(false);
  });
});

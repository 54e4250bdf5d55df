import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CifakeModel } from '../src/model';
import { loadNative, type NativeModelSpec } from '../src/native';
import { makeImages, overfitAccuracy, TEST_THREADS } from './helpers';

const SPECS: Record<string, NativeModelSpec> = {
  original: { family: 'original', convFilters: [32, 32], dense: [64], dropout: 0, padding: 'valid', batchNorm: false, hoc: false, fusedHoc: false },
  lightweight: { family: 'lightweight', convFilters: [16, 32], dense: [64], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false },
  hoc: { family: 'hoc', convFilters: [16, 32], dense: [64], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true },
};

// Parameter counts from the architectures:
const conv = (cin: number, cout: number) => cin * cout * 9 + cout;
const bn = (c: number) => 2 * c;
const dense = (i: number, o: number) => i * o + o;
const EXPECTED_PARAMS: Record<string, number> = {
  // 32 -> conv 30 -> pool 15 -> conv 13 -> pool 6: 32*6*6 features
  original: conv(3, 32) + conv(32, 32) + dense(32 * 6 * 6, 64) + dense(64, 1),
  // same padding: 32 -> 16 -> 8: 32*8*8 features
  lightweight: conv(3, 16) + bn(16) + conv(16, 32) + bn(32) + dense(32 * 8 * 8, 64) + dense(64, 1),
  hoc: 2 * conv(3, 16) + bn(16) + 2 * conv(16, 32) + bn(32) + dense(32 * 8 * 8, 64) + dense(64, 1),
};

async function rejection(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: Error) => e.message,
  );
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-native-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function create(family: keyof typeof SPECS, extra: Partial<NativeModelSpec> = {}, seed = 7) {
  return CifakeModel.create({ ...SPECS[family], ...extra }, { device: 'cpu', seed, threads: TEST_THREADS });
}

describe('native core', () => {
  it('reports libtorch, threads and devices', () => {
    const info = loadNative().info();
    expect(info.torchVersion).to.match(/^\d+\.\d+\.\d+$/);
    expect(info.threads).to.be.at.least(1);
    expect(info.cuda.available).to.be.a('boolean');
  });

  for (const family of Object.keys(SPECS) as (keyof typeof SPECS)[]) {
    describe(family, () => {
      it('has the parameter count of its architecture', () => {
        const m = create(family);
        expect(m.parameters).to.equal(EXPECTED_PARAMS[family]);
        m.dispose();
      });

      it('has analytic gradients that match finite differences (float64)', () => {
        const r = loadNative().gradientCheck({ ...SPECS[family], convFilters: [4, 6], dense: [8] }, 3);
        expect(r.checked).to.be.greaterThan(20);
        expect(r.maxRelError).to.be.below(1e-5);
      });

      it('overfits 256 generated images to >= 99% train accuracy', async () => {
        const m = create(family);
        expect(await overfitAccuracy(m)).to.be.at.least(0.99);
        m.dispose();
      });
    });
  }

  it('fused and two-conv HOC blocks compute the same function and gradients', async () => {
    const { images, labels } = makeImages(64, 5);
    const fused = create('hoc', { fusedHoc: true });
    const plain = create('hoc', { fusedHoc: false });
    const a = await fused.predictLogits(images);
    const b = await plain.predictLogits(images);
    a.forEach((z, i) => expect(z).to.be.closeTo(b[i], 1e-4));
    for (const m of [fused, plain]) await m.setData('t', images, labels);
    const ra = await fused.trainEpoch({ data: 't', batchSize: 16, epoch: 0 });
    const rb = await plain.trainEpoch({ data: 't', batchSize: 16, epoch: 0 });
    expect(ra.loss).to.be.closeTo(rb.loss, 1e-4);
    fused.dispose();
    plain.dispose();
  });

  it('channels-last and NCHW layouts compute the same function', async () => {
    const { images, labels } = makeImages(64, 8);
    for (const family of ['original', 'hoc'] as const) {
      const nhwc = CifakeModel.create(SPECS[family], { device: 'cpu', seed: 2, threads: TEST_THREADS, channelsLast: true });
      const nchw = CifakeModel.create(SPECS[family], { device: 'cpu', seed: 2, threads: TEST_THREADS, channelsLast: false });
      const a = await nhwc.predictLogits(images);
      const b = await nchw.predictLogits(images);
      a.forEach((z, i) => expect(z).to.be.closeTo(b[i], 1e-4));
      for (const m of [nhwc, nchw]) await m.setData('t', images, labels);
      const ra = await nhwc.trainEpoch({ data: 't', batchSize: 16 });
      const rb = await nchw.trainEpoch({ data: 't', batchSize: 16 });
      expect(ra.loss).to.be.closeTo(rb.loss, 1e-4);
      nhwc.dispose();
      nchw.dispose();
    }
  });

  it('is deterministic: same seed, device and threads give the same losses', async () => {
    const { images, labels } = makeImages(128, 2);
    const losses: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const m = create('lightweight');
      await m.setData('train', images, labels);
      const l: number[] = [];
      for (let epoch = 0; epoch < 2; epoch++) l.push((await m.trainEpoch({ data: 'train', batchSize: 32, seed: 9, epoch })).loss);
      losses.push(l);
      m.dispose();
    }
    expect(losses[0]).to.deep.equal(losses[1]);
  });

  it('CutMix mixes the targets by pasted area: a model learns P(REAL) from the share of REAL pixels', async () => {
    // FAKE images all black, REAL all white; probe images white in their left f of columns.
    const n = 256;
    const images = new Uint8Array(n * 3072);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) if ((labels[i] = i % 2)) images.fill(255, i * 3072, (i + 1) * 3072);
    const shares = [0, 0.25, 0.5, 0.75, 1];
    const probes = new Uint8Array(shares.length * 3072);
    shares.forEach((f, k) => {
      for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) probes.fill(255, k * 3072 + c * 1024 + y * 32, k * 3072 + c * 1024 + y * 32 + 32 * f);
    });
    const fit = async (cutmix: number) => {
      const m = create('lightweight', { dropout: 0 });
      await m.setData('train', images, labels);
      let loss = NaN;
      for (let epoch = 0; epoch < 5; epoch++) loss = (await m.trainEpoch({ data: 'train', batchSize: 32, seed: 5, epoch, augment: { cutmix } })).loss;
      const p = Array.from(await m.predictLogits(probes), (z) => 1 / (1 + Math.exp(-z)));
      m.dispose();
      return { loss, error: shares.reduce((s, f, k) => s + Math.abs(p[k] - f), 0) / shares.length };
    };
    const plain = await fit(0);
    const mixed = await fit(1);
    const figures = `cutmix ${JSON.stringify(mixed)}, plain ${JSON.stringify(plain)}`;
    // Soft targets keep the BCE above their entropy (~0.25 nats on average here); hard ones go to 0.
    expect(plain.loss, figures).to.be.below(0.05);
    expect(mixed.loss, figures).to.be.above(0.1);
    expect(mixed.error, figures).to.be.below(0.1);
    expect(mixed.error, figures).to.be.below(plain.error);
  });

  it('round-trips a checkpoint to bit-identical predictions', async () => {
    const { images, labels } = makeImages(64, 3);
    const m = create('hoc');
    await m.setData('train', images, labels);
    await m.trainEpoch({ data: 'train', batchSize: 16 });
    const file = path.join(tmp, 'hoc.pt');
    await m.save(file, { epoch: 1 });
    const before = await m.predictLogits(images);
    const { model, meta } = await CifakeModel.load(file, { device: 'cpu', threads: TEST_THREADS });
    expect(meta.epoch).to.equal(1);
    expect(model.spec).to.deep.equal(SPECS.hoc);
    const after = await model.predictLogits(images);
    expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).to.equal(true);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    m.dispose();
    model.dispose();
  });

  it('rejects truncated, foreign and mismatching checkpoints with a clear error', async () => {
    const m = create('lightweight');
    const good = path.join(tmp, 'good.pt');
    await m.save(good, {});
    const truncated = path.join(tmp, 'truncated.pt');
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const foreign = path.join(tmp, 'foreign.pt');
    fs.writeFileSync(foreign, 'this is not a checkpoint\n');
    for (const f of [truncated, foreign, path.join(tmp, 'missing.pt')]) {
      expect(() => CifakeModel.readMeta(f)).to.throw(f);
      const err = await m.loadWeights(f).then(() => null, (e: Error) => e);
      expect(err?.message).to.contain(f).and.to.match(/not a readable cifake-torch checkpoint/);
    }
    const other = create('original');
    const err = await other.loadWeights(good).then(() => null, (e: Error) => e);
    expect(err?.message).to.match(/lacks|shape/);
    m.dispose();
    other.dispose();
  });

  // The lag goal (p99 < 50 ms) is measured in bench/responsiveness.ts; here only the behaviour.
  it('keeps the event loop running during an epoch (timers fire while it trains)', async () => {
    const { images, labels } = makeImages(1024, 4);
    const m = create('hoc');
    await m.setData('train', images, labels);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const r = await m.trainEpoch({ data: 'train', batchSize: 32 });
    clearInterval(timer);
    expect(r.images).to.equal(1024);
    expect(ticks).to.be.at.least(3); // timers fired during the epoch: the loop was not blocked by it
    m.dispose();
  });

  it('reports progress and stops within one batch when aborted', async () => {
    const { images, labels } = makeImages(2048, 6);
    const m = create('lightweight');
    await m.setData('train', images, labels);
    const ac = new AbortController();
    const seen: number[] = [];
    const r = await m.trainEpoch(
      { data: 'train', batchSize: 16, progressIntervalMs: 0 },
      {
        signal: ac.signal,
        onProgress: (p) => {
          seen.push(p.batch);
          if (p.batch >= 5) ac.abort();
        },
      },
    );
    expect(r.cancelled).to.equal(true);
    expect(r.images).to.be.below(2048);
    expect(seen.length).to.be.greaterThan(0);
    // A later epoch is not affected by the earlier abort.
    const again = await m.trainEpoch({ data: 'train', batchSize: 256 });
    expect(again.cancelled).to.equal(false);
    expect(again.images).to.equal(2048);
    m.dispose();
  });

  describe('bad input gives clear errors', () => {
    it('wrong buffer length and labels other than 0/1', async () => {
      const m = create('lightweight');
      expect(() => m.setData('x', new Uint8Array(3000), null)).to.throw(/multiple of 3\*32\*32/);
      expect(() => m.setData('x', new Uint8Array(3072 * 2), new Uint8Array([0, 2]))).to.throw(/labels\[1\]: 2 is not a class/);
      expect(() => m.setData('x', new Uint8Array(3072 * 2), new Uint8Array([0]))).to.throw(/1 labels for 2 images/);
      expect(() => m.setData('x', new Float32Array(3072) as unknown as Uint8Array, null)).to.throw(/Uint8Array/);
      const err = await m.trainEpoch({ data: 'nope' }).then(() => null, (e: Error) => e);
      expect(err?.message).to.match(/no dataset named 'nope'/);
      m.dispose();
    });

    it('the spec carries every flag (family is a label), bad spec and unknown devices', async () => {
      const native = loadNative();
      const labelled = new native.Session({ ...SPECS.hoc, family: 'resnet' as 'hoc' }, { device: 'cpu', threads: 1 });
      expect(labelled.describe().family).to.equal('resnet');
      expect(labelled.describe().parameters).to.equal(EXPECTED_PARAMS.hoc); // the flags decided
      await labelled.dispose();
      for (const flag of ['batchNorm', 'hoc', 'fusedHoc', 'padding', 'dropout', 'dense', 'convFilters'] as const)
        expect(() => new native.Session({ ...SPECS.hoc, [flag]: undefined })).to.throw(new RegExp(`model.${flag}`));
      expect(() => new native.Session({ ...SPECS.original, convFilters: [8, 8, 8, 8] })).to.throw(/model.convFilters/);
      expect(() => new native.Session(SPECS.hoc, { device: 'gpu' })).to.throw(/device: unknown device 'gpu'/);
      if (!native.info().cuda.available)
        expect(() => new native.Session(SPECS.hoc, { device: 'cuda:0' })).to.throw(/no CUDA support or sees no CUDA device/);
    });

    it('NaN and out-of-range options', async () => {
      const native = loadNative();
      expect(() => new native.Session(SPECS.hoc, { optimizer: { lr: NaN } })).to.throw(/lr/);
      expect(() => new native.Session(SPECS.hoc, { optimizer: { name: 'sgd' as 'adam' } })).to.throw(/unknown optimizer 'sgd'/);
      const m = create('lightweight');
      expect(await rejection(m.trainEpoch({ batchSize: 0 }))).to.match(/batchSize/);
      expect(await rejection(m.trainEpoch({ lr: NaN }))).to.match(/lr: expected a finite number/);
      expect(await rejection(m.trainEpoch({ augment: { cutmix: 1.5 } }))).to.match(/augment\.cutmix: must be in \[0, 1\]/);
      m.dispose();
    });

    it('use after dispose', async () => {
      const m = create('lightweight');
      m.dispose();
      expect(() => m.predictLogits(new Uint8Array(3072))).to.throw(/disposed/);
    });
  });
});

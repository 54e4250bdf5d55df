// Grad-CAM correctness: native maps against an independent float64 reference (forward pass and
// finite-difference gradients in TypeScript), a planted-signal localisation check, model
// immutability, explainImages/explainDataset/Classifier.explain/CLI behaviour and errors.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { Classifier } from '../src/classifier';
import { datasetSummaryJSON, explainDataset, explainImages, explanationAt } from '../src/gradcam';
import { resizeBilinear } from '../src/gradcam/resample';
import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { forwardFrom, forwardTo, gradientFD, referenceCam } from './gradcam-reference';
import { makeImages, TEST_THREADS } from './helpers';
import { rng } from './data-helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-gradcam-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TINY: Record<string, NativeModelSpec> = {
  lightweight: { family: 'lightweight', convFilters: [2, 3], dense: [8], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false },
  hoc: { family: 'hoc', convFilters: [2, 3], dense: [8], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true },
  original: { family: 'original', convFilters: [2, 3], dense: [8], dropout: 0, padding: 'valid', batchNorm: false, hoc: false, fusedHoc: false },
};

/** A tiny model trained two epochs, so weights and BN running statistics are not at their initial values. */
async function tinyModel(spec: NativeModelSpec, seed = 5): Promise<CifakeModel> {
  const m = CifakeModel.create(spec, { device: 'cpu', seed, threads: 1 });
  const { images, labels } = makeImages(64, seed);
  await m.setData('train', images, labels);
  for (let epoch = 0; epoch < 2; epoch++) await m.trainEpoch({ data: 'train', batchSize: 16, epoch });
  await m.dropData('train');
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe('Grad-CAM', function () {
  this.timeout(60000);

  describe('native maps equal a float64 reference (forward + finite-difference gradients)', () => {
    const { images } = makeImages(2, 99);
    // Seeds whose tiny dense head is alive (non-zero gradients) on these images.
    const cases: Array<[string, number, string[]]> = [
      ['lightweight', 7, ['conv2', 'pool1']],
      ['hoc', 6, ['conv2', 'pool2']],
      ['original', 7, ['conv2', 'conv1']],
    ];
    for (const [family, seed, layers] of cases) {
      it(`${family} (${layers.join(', ')}): logits, Grad-CAM and HiResCAM for REAL and FAKE`, async () => {
        const spec = TINY[family]!;
        const model = await tinyModel(spec, seed);
        try {
          const st = await model.state();
          const nativeLogits = await model.predictLogits(images);
          for (const layer of layers) {
            const n = images.length / 3072;
            // Native results: every method x target.
            const nat: Record<string, Awaited<ReturnType<CifakeModel['gradcam']>>> = {};
            for (const method of ['gradcam', 'hirescam'] as const)
              for (const target of ['real', 'fake', 'pred'] as const) nat[`${method}/${target}`] = await model.gradcam(images, { layer, method, target });
            const L = model.description.layerSizes[layer]!;
            expect(nat['gradcam/real']!.layerSize).to.equal(L);
            for (let i = 0; i < n; i++) {
              const image = images.subarray(i * 3072, (i + 1) * 3072);
              const a = forwardTo(image, st, spec, layer);
              expect(a.h).to.equal(L);
              const logit = forwardFrom(a, st, spec, layer);
              expect(Math.abs(logit - nativeLogits[i]!)).to.be.below(1e-4 * Math.max(1, Math.abs(logit)), `logit of image ${i}`);
              expect(Math.abs(logit - nat['gradcam/real']!.logits[i]!)).to.be.below(1e-4 * Math.max(1, Math.abs(logit)));
              const grad = gradientFD(a, st, spec, layer);
              expect(maxAbs(grad)).to.be.greaterThan(0);
              for (const method of ['gradcam', 'hirescam'] as const)
                for (const target of ['real', 'fake', 'pred'] as const) {
                  const r = nat[`${method}/${target}`]!;
                  const cls = target === 'real' ? 1 : target === 'fake' ? 0 : logit >= 0 ? 1 : 0;
                  expect(r.targets[i]).to.equal(cls);
                  const ref = referenceCam(a, grad, cls === 1 ? 1 : -1, method);
                  const got = r.raw.subarray(i * L * L, (i + 1) * L * L);
                  const scale = maxAbs(ref);
                  let worst = 0;
                  for (let p = 0; p < L * L; p++) worst = Math.max(worst, Math.abs(got[p]! - ref[p]!));
                  const what = `${family} ${layer} ${method} ${target} image ${i}`;
                  expect(worst).to.be.at.most(1e-4 * scale + 1e-7, `${what}: max |native - reference| = ${worst} (map max ${scale})`);
                  expect(Math.abs(r.rawMax[i]! - scale)).to.be.at.most(1e-4 * scale + 1e-7, `${what}: rawMax`);
                  // The upsampled maps are the raw maps resized bilinearly (align_corners false).
                  const up = resizeBilinear(got, L, L, 32, 32);
                  const maps = r.maps.subarray(i * 1024, (i + 1) * 1024);
                  for (let p = 0; p < 1024; p++) expect(Math.abs(maps[p]! - up[p]!)).to.be.at.most(1e-5 * (scale + 1e-6), `${what}: upsampled`);
                }
            }
          }
        } finally {
          model.dispose();
        }
      });
    }
  });

  // A bright 6x6 patch in the top-right corner makes an image REAL, a dark one FAKE; the rest is
  // noise. A quarter of the training images have no patch and appear twice, once labelled REAL
  // and once FAKE, so the absence of a patch is no evidence for either class and the model must
  // detect both patches (one that only detected one patch would explain the other class by
  // absence, which no saliency map can localise).
  describe('planted signal: the maps find the patch that decides the class', () => {
    const inPatch = (y: number, x: number) => y >= 2 && y < 8 && x >= 24 && x < 30;
    function planted(n: number, seed: number, withUnpatched: boolean): { images: Uint8Array; labels: Uint8Array } {
      const rand = rng(seed);
      const images = new Uint8Array(n * 3072);
      const labels = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const kind = withUnpatched ? [0, 1, 2, 3][i % 4]! : i % 2; // 0 dark (FAKE), 1 bright (REAL), 2 no patch, 3 the same, relabelled
        if (kind === 3) {
          images.copyWithin(i * 3072, (i - 1) * 3072, i * 3072);
          labels[i] = 1 - labels[i - 1]!;
          continue;
        }
        labels[i] = kind === 2 ? (rand() < 0.5 ? 1 : 0) : kind;
        for (let c = 0; c < 3; c++)
          for (let y = 0; y < 32; y++)
            for (let x = 0; x < 32; x++) {
              const v = kind !== 2 && inPatch(y, x) ? (kind === 1 ? 255 : 0) : 96 + rand() * 64;
              images[i * 3072 + c * 1024 + y * 32 + x] = Math.round(v);
            }
      }
      return { images, labels };
    }
    /** Share of a 32x32 map's mass in the top-right quadrant (rows 0-15, columns 16-31). */
    function cornerShare(map: Float32Array, transpose = false): number {
      let q = 0;
      let t = 0;
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          const v = transpose ? map[x * 32 + y]! : map[y * 32 + x]!;
          t += v;
          if (y < 16 && x >= 16) q += v;
        }
      return q / t;
    }

    let model: CifakeModel;
    const test = planted(40, 2, false);
    before(async () => {
      model = CifakeModel.create(
        { family: 'lightweight', convFilters: [8, 8], dense: [16], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false },
        { device: 'cpu', seed: 1, threads: 1, optimizer: { lr: 3e-3 } },
      );
      const train = planted(384, 1, true);
      await model.setData('train', train.images, train.labels);
      for (let epoch = 0; epoch < 6; epoch++) await model.trainEpoch({ data: 'train', batchSize: 32, epoch });
      await model.dropData('train');
    });
    after(() => model?.dispose());

    it('the model learned the patch (all test images right)', async () => {
      const logits = await model.predictLogits(test.images);
      logits.forEach((z, i) => expect(Number(z >= 0)).to.equal(test.labels[i], `image ${i}`));
    });

    // Grad-CAM weighs whole channels by their mean gradient, so it localises less sharply than
    // HiResCAM; both must put most of the mass on the patch quadrant (uniform: 0.25).
    for (const [method, minMean, minOne] of [['gradcam', 0.5, 0.35], ['hirescam', 0.75, 0.5]] as const) {
      it(`${method}: the patch quadrant holds most of the mass, for REAL and for FAKE (and a transposed map would not)`, async () => {
        for (const [target, cls] of [['real', 1], ['fake', 0]] as const) {
          const e = await explainImages(model, test.images, { method, target });
          const shares: number[] = [];
          const transposed: number[] = [];
          for (let i = 0; i < e.n; i++) {
            if (test.labels[i] !== cls) continue;
            const { map, mapMax } = explanationAt(e, i);
            expect(mapMax, `${method} ${target} image ${i}: empty map`).to.be.greaterThan(0);
            shares.push(cornerShare(map));
            transposed.push(cornerShare(map, true));
          }
          const mean = (a: number[]) => a.reduce((u, v) => u + v, 0) / a.length;
          expect(shares).to.have.length(20);
          expect(mean(shares), `${method} ${target}: mean share of the patch quadrant`).to.be.above(minMean);
          expect(Math.min(...shares), `${method} ${target}: smallest share`).to.be.above(minOne);
          // The same maps read transposed put the mass in the bottom-left: below uniform (0.25).
          expect(mean(transposed), `${method} ${target}: transposed`).to.be.below(0.25);
        }
      });
    }

    it('maps are eval-mode maps: logits as predict, each image independent of its batch, repeatable', async () => {
      const e = await model.gradcam(test.images, { target: 'pred' });
      const logits = await model.predictLogits(test.images);
      e.logits.forEach((z, i) => expect(Math.abs(z - logits[i]!)).to.be.below(1e-5, `logit ${i}`));
      const again = await model.gradcam(test.images, { target: 'pred' });
      expect(Buffer.from(again.raw.buffer).equals(Buffer.from(e.raw.buffer)), 'two calls give identical maps').to.equal(true);
      const L = e.layerSize * e.layerSize;
      for (const i of [0, 1, 7]) {
        const alone = await model.gradcam(test.images.subarray(i * 3072, (i + 1) * 3072), { target: 'pred' });
        const inBatch = e.raw.subarray(i * L, (i + 1) * L);
        for (let p = 0; p < L; p++) expect(Math.abs(alone.raw[p]! - inBatch[p]!)).to.be.at.most(1e-5 * e.rawMax[i]! + 1e-9, `image ${i} alone vs in the batch`);
      }
    });
  });

  describe('explaining leaves the model as it was', () => {
    it('state() (weights, BN running stats and counters) is bit-identical after explaining, for every method, target and layer', async () => {
      const model = await tinyModel(TINY.lightweight!, 7);
      try {
        const { images } = makeImages(8, 3);
        const before = await model.state();
        for (const layer of model.description.layers)
          for (const method of ['gradcam', 'hirescam'] as const)
            for (const target of ['pred', 'real', 'fake'] as const) await model.gradcam(images, { layer, method, target });
        await explainImages(model, images, { batchSize: 3 });
        const after = await model.state();
        expect(Object.keys(after).sort()).to.deep.equal(Object.keys(before).sort());
        expect(Object.keys(before)).to.include.members(['block1.bn.running_mean', 'block1.bn.running_var', 'block1.bn.num_batches_tracked']);
        for (const k of Object.keys(before)) expect(Buffer.from(after[k]!.buffer).equals(Buffer.from(before[k]!.buffer)), k).to.equal(true);
      } finally {
        model.dispose();
      }
    });

    it('training after explaining is the same as training without (the mode is restored, no gradients leak)', async () => {
      const a = await tinyModel(TINY.lightweight!, 7);
      const b = await tinyModel(TINY.lightweight!, 7);
      try {
        const { images, labels } = makeImages(32, 4);
        await a.gradcam(images, { method: 'hirescam', target: 'real' });
        const ra = await (async () => {
          await a.setData('t', images, labels);
          return a.trainEpoch({ data: 't', batchSize: 16, epoch: 5, seed: 3 });
        })();
        await b.setData('t', images, labels);
        const rb = await b.trainEpoch({ data: 't', batchSize: 16, epoch: 5, seed: 3 });
        expect(ra.loss).to.equal(rb.loss);
        const sa = await a.state();
        const sb = await b.state();
        for (const k of Object.keys(sa)) expect(Buffer.from(sa[k]!.buffer).equals(Buffer.from(sb[k]!.buffer)), k).to.equal(true);
      } finally {
        a.dispose();
        b.dispose();
      }
    });
  });

  describe('explainImages, explainDataset, Classifier.explain and the CLI', () => {
    let model: CifakeModel;
    let checkpoint: string;
    const { images, labels } = makeImages(12, 21);
    before(async () => {
      model = await tinyModel(TINY.lightweight!, 7);
      checkpoint = path.join(tmp, 'tiny.pt');
      await model.save(checkpoint, { epoch: 2 });
    });
    after(() => model?.dispose());

    it('explainImages: native raw maps, maps normalised to peak 1 (or all zero), predictions and targets; batch size does not matter', async () => {
      const e = await explainImages(model, images, { batchSize: 12 });
      const native = await model.gradcam(images);
      expect(e.n).to.equal(12);
      expect(e.layer).to.equal('conv2');
      expect(e.layerSize).to.equal(16);
      expect(Array.from(e.raw)).to.deep.equal(Array.from(native.raw));
      expect(Array.from(e.rawMax)).to.deep.equal(Array.from(native.rawMax));
      for (let i = 0; i < e.n; i++) {
        const it = explanationAt(e, i);
        const up = native.maps.subarray(i * 1024, (i + 1) * 1024);
        const peak = Math.max(...up);
        expect(it.mapMax).to.equal(peak);
        if (peak > 0) {
          expect(Math.max(...it.map)).to.equal(1);
          for (let p = 0; p < 1024; p++) expect(Math.abs(it.map[p]! - up[p]! / peak)).to.be.below(1e-6);
        } else expect(it.map.every((v) => v === 0)).to.equal(true);
        expect(it.pReal).to.be.closeTo(1 / (1 + Math.exp(-native.logits[i]!)), 1e-12);
        expect(it.predicted).to.equal(it.pReal >= 0.5 ? 1 : 0);
        expect(it.target).to.equal(it.predicted);
      }
      // Batches of 5 (5 + 5 + 2): the same maps up to float rounding (BLAS paths depend on the batch).
      const five = await explainImages(model, images, { batchSize: 5 });
      const rel = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, k) => Math.abs(v - b[k]!))) / Math.max(1e-12, ...b);
      expect(rel(five.raw, e.raw)).to.be.below(1e-4);
      expect(Array.from(five.predicted)).to.deep.equal(Array.from(e.predicted));
    });

    it("explainImages: target 'pred' follows the threshold (images on the other side are explained for their class)", async () => {
      const base = await explainImages(model, images);
      const sorted = Array.from(base.pReal).sort((a, b) => a - b);
      const threshold = (sorted[5]! + sorted[6]!) / 2; // half the images each side
      const e = await explainImages(model, images, { threshold });
      expect(Array.from(e.predicted).filter((p) => p === 1)).to.have.length(6);
      expect(Array.from(e.targets)).to.deep.equal(Array.from(e.predicted));
      const real = await model.gradcam(images, { target: 'real' });
      const fake = await model.gradcam(images, { target: 'fake' });
      const L = 256;
      for (let i = 0; i < 12; i++) {
        const want = (e.predicted[i] === 1 ? real : fake).raw.subarray(i * L, (i + 1) * L);
        const got = e.raw.subarray(i * L, (i + 1) * L);
        const scale = Math.max(1e-12, ...want);
        for (let p = 0; p < L; p++) expect(Math.abs(got[p]! - want[p]!)).to.be.at.most(1e-4 * scale, `image ${i}`);
      }
    });

    it('unknown layer: the error lists the valid layers (explainImages and the native call)', async () => {
      let msg = '';
      try {
        await explainImages(model, images, { layer: 'conv9' });
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).to.contain("unknown layer 'conv9'").and.contain('conv1, pool1, conv2, pool2');
      let native = '';
      try {
        await model.gradcam(images, { layer: 'fc1' }); // the addon checks the name before queuing (throws synchronously)
      } catch (e) {
        native = (e as Error).message;
      }
      expect(native).to.contain("unknown layer 'fc1'").and.contain('conv1, pool1, conv2, pool2');
      const size = await explainImages(model, images.subarray(0, 100)).then(
        () => '',
        (e: Error) => e.message,
      );
      expect(size).to.match(/multiple of 3\*32\*32/);
    });

    it('explainDataset: gallery and class means of a labelled set', async () => {
      const files = Array.from({ length: 12 }, (_, i) => `test/${labels[i] ? 'REAL' : 'FAKE'}/${i}.jpg`);
      const d = await explainDataset(model, { images, labels, files }, { sample: 2, method: 'hirescam', textRenderer: 'bitmap' });
      expect(d.count).to.equal(12);
      expect(d.predicted.REAL + d.predicted.FAKE).to.equal(12);
      expect(d.classMeans.counts).to.deep.equal(d.predicted);
      expect(d.selection.length).to.be.within(1, 6);
      for (const s of d.selection) expect(s.file).to.equal(files[s.index]);
      expect(d.selected.n).to.equal(d.selection.length);
      const all = await explainImages(model, images, { method: 'hirescam' });
      // The class means are the means of the raw maps by predicted class.
      for (const cls of [0, 1] as const) {
        const members = [...Array(12).keys()].filter((i) => all.predicted[i] === cls);
        const mean = cls === 1 ? d.classMeans.REAL : d.classMeans.FAKE;
        if (members.length === 0) continue;
        for (const p of [0, 17, 255]) {
          const want = members.reduce((u, i) => u + all.raw[i * 256 + p]!, 0) / members.length;
          expect(mean[p]).to.be.closeTo(want, 1e-6 * Math.max(1e-6, want));
        }
      }
      for (const png of [d.gallery, d.classMeansPng]) expect((await sharp(png).metadata()).format).to.equal('png');
      const summary = datasetSummaryJSON(d);
      expect(JSON.parse(JSON.stringify(summary)).selection[0].file).to.be.a('string');
    });

    it('Classifier.explain: prediction, normalised 32x32 map, raw map and a triptych PNG; a text file is named in the error', async () => {
      const clf = await Classifier.load(checkpoint, { threads: 1 });
      try {
        const image = { data: images.subarray(0, 3072), width: 32, height: 32, layout: 'chw' as const };
        const r = await clf.explain(image, { png: { colormap: 'turbo', alpha: 0.4 } });
        const p = await clf.predict(image);
        expect(r.prediction.label).to.equal(p.label);
        expect(r.prediction.pReal).to.be.closeTo(p.pReal, 1e-6);
        expect(r.layer).to.equal('conv2');
        expect(r.map).to.have.length(1024);
        expect(r.rawMap).to.have.length(256);
        expect(r.rawMax).to.equal(Math.max(...r.rawMap));
        expect(Math.max(...r.map)).to.equal(r.rawMax > 0 ? 1 : 0);
        const meta = await sharp(r.png!).metadata();
        expect([meta.format, meta.width! > 3 * 256, meta.height! > 256]).to.deep.equal(['png', true, true]);
        const noPng = await clf.explain(image, { method: 'hirescam', target: 'fake', layer: 'pool1' });
        expect(noPng.png).to.equal(undefined);
        expect([noPng.target, noPng.layer, noPng.layerSize, noPng.rawMap.length]).to.deep.equal(['FAKE', 'pool1', 16, 256]);
        const text = path.join(tmp, 'notes.txt');
        fs.writeFileSync(text, 'not an image\n');
        const msg = await clf.explain(text).then(
          () => '',
          (e: Error) => e.message,
        );
        expect(msg).to.contain(text);
        const layerMsg = await clf.explain(image, { layer: 'conv3' }).then(
          () => '',
          (e: Error) => e.message,
        );
        expect(layerMsg).to.contain("unknown layer 'conv3'").and.contain('conv1, pool1, conv2, pool2');
      } finally {
        clf.dispose();
      }
    });

    describe('cifake gradcam', () => {
      async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
        const out: string[] = [];
        const err: string[] = [];
        const w1 = process.stdout.write.bind(process.stdout);
        const w2 = process.stderr.write.bind(process.stderr);
        process.stdout.write = ((x: string | Uint8Array) => out.push(String(x)) > 0) as typeof process.stdout.write;
        process.stderr.write = ((x: string | Uint8Array) => err.push(String(x)) > 0) as typeof process.stderr.write;
        let code: number;
        try {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { main } = require('../bin/cifake') as typeof import('../bin/cifake');
          code = await main(['node', 'cifake', 'gradcam', ...args]);
        } finally {
          process.stdout.write = w1;
          process.stderr.write = w2;
          process.exitCode = undefined;
        }
        return { code, out: out.join(''), err: err.join('') };
      }
      let files: string[];
      before(async () => {
        files = [];
        const dir = path.join(tmp, 'data', 'test');
        for (let i = 0; i < 8; i++) {
          const chw = images.subarray(i * 3072, (i + 1) * 3072);
          const hwc = Buffer.alloc(3072);
          for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = chw[c * 1024 + p]!;
          const cls = path.join(dir, labels[i] ? 'REAL' : 'FAKE');
          fs.mkdirSync(cls, { recursive: true });
          const file = path.join(cls, `img${i}.png`);
          await sharp(hwc, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(file);
          files.push(file);
        }
      });

      it('image files: one triptych each and gradcam.json with the numbers', async () => {
        const out = path.join(tmp, 'cli-images');
        const r = await cli(['--model', checkpoint, '--out', out, '--method', 'hirescam', '--colormap', 'jet', '--json', files[0]!, files[1]!]);
        expect(r.code, r.err).to.equal(0);
        const summary = JSON.parse(r.out);
        expect(summary.method).to.equal('hirescam');
        expect(summary.images.map((x: { png: string }) => path.basename(x.png))).to.deep.equal(['img0.gradcam.png', 'img1.gradcam.png']);
        for (const x of summary.images) expect((await sharp(x.png).metadata()).format).to.equal('png');
        const doc = JSON.parse(fs.readFileSync(path.join(out, 'gradcam.json'), 'utf8'));
        expect(doc.images).to.have.length(2);
        expect(doc.images[0].rawMap).to.have.length(16);
        expect(doc.images[0].map).to.have.length(32);
        const direct = await explainImages(model, images.subarray(0, 3072), { method: 'hirescam' });
        expect(doc.images[0].rawMax).to.be.closeTo(direct.rawMax[0]!, 1e-4 * direct.rawMax[0]! + 1e-9);
      });

      it('--data: gallery.png, class-means.png, class-means.json and summary.json', async () => {
        const out = path.join(tmp, 'cli-data');
        const saved = process.env.CIFAKE_CACHE_DIR;
        process.env.CIFAKE_CACHE_DIR = path.join(tmp, 'cache'); // not the user's cache
        const r = await cli(['--model', checkpoint, '--data', path.join(tmp, 'data'), '--sample', '2', '--out', out, '--palette']).finally(() => {
          if (saved === undefined) delete process.env.CIFAKE_CACHE_DIR;
          else process.env.CIFAKE_CACHE_DIR = saved;
        });
        expect(r.code, r.err).to.equal(0);
        expect(r.out).to.contain('8 images');
        for (const f of ['gallery.png', 'class-means.png']) expect((await sharp(path.join(out, f)).metadata()).format).to.equal('png');
        const means = JSON.parse(fs.readFileSync(path.join(out, 'class-means.json'), 'utf8'));
        expect(means.REAL).to.have.length(16);
        expect(means.counts.REAL + means.counts.FAKE).to.equal(8);
        const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
        expect(summary.count).to.equal(8);
        expect(summary.split).to.equal('test');
      });

      it('errors: a text file is named and the other files are explained (exit 1, as predict); an unknown layer lists the valid ones, files and --data together (exit 2)', async () => {
        const text = path.join(tmp, 'readme.txt');
        fs.writeFileSync(text, 'hello\n');
        const bad = await cli(['--model', checkpoint, '--out', path.join(tmp, 'cli-bad'), text, files[0]!, files[1]!]);
        expect(bad.code).to.equal(1);
        expect(bad.out).to.match(new RegExp(`${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+-\\s+ERROR`));
        for (const f of ['img0.gradcam.png', 'img1.gradcam.png']) expect(fs.existsSync(path.join(tmp, 'cli-bad', f)), f).to.equal(true);
        const doc = JSON.parse(fs.readFileSync(path.join(tmp, 'cli-bad', 'gradcam.json'), 'utf8'));
        expect(doc.images.map((x: { file: string }) => x.file)).to.deep.equal([files[0], files[1]]);
        expect(doc.errors.map((x: { file: string }) => x.file)).to.deep.equal([text]);
        const layer = await cli(['--model', checkpoint, '--out', path.join(tmp, 'cli-bad'), '--layer', 'conv5', files[0]!]);
        expect(layer.code).to.equal(2);
        expect(layer.err).to.contain("unknown layer 'conv5'").and.contain('conv1, pool1, conv2, pool2');
        const both = await cli(['--model', checkpoint, '--out', path.join(tmp, 'cli-bad'), '--data', tmp, files[0]!]);
        expect(both.code).to.equal(2);
        const none = await cli(['--model', checkpoint, '--out', path.join(tmp, 'cli-bad')]);
        expect(none.code).to.equal(2);
      });
    });
  });
});

// ONNX and safetensors export: onnxruntime-node runs the exported graph of every family on
// generated and real images and agrees with the native logits; safetensors files read back to the
// native tensors under the reference names; bad input fails clearly and leaves no file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { exportBytes, exportModel, readImportedWeights, tensorLayout, buildOnnx } from '../src/export';
import { decodeSafetensors } from '../src/export/safetensors';
import type { CifakeModel } from '../src/model';
import { EXPORT_FAMILIES, maxAbsDiff, realImages, runOnnx, trainedModel } from './export-helpers';
import { makeImages } from './helpers';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

describe('export: ONNX graph on onnxruntime-node matches the native logits', function () {
  this.timeout(120_000);
  let real: Awaited<ReturnType<typeof realImages>>;
  const generated = makeImages(24, 11).images;

  before(async () => {
    real = await realImages(16);
    if (!real) console.log('      (real images skipped: CIFAKE zip not found; set CIFAKE_DATA)');
  });

  for (const { name, spec } of EXPORT_FAMILIES) {
    it(name, async () => {
      const model = await trainedModel(spec);
      try {
        const onnx = await exportBytes(model, { format: 'cifake-torch', spec, config: { threshold: 0.5 } }, 'onnx');
        for (const images of [generated, real?.images].filter((x): x is Uint8Array => !!x)) {
          const native = await model.predictLogits(images);
          const { logit, pReal } = await runOnnx(onnx, images);
          expect(logit.length).to.equal(native.length);
          expect(maxAbsDiff(logit, native)).to.be.below(1e-4);
          expect(maxAbsDiff(pReal, Array.from(native, sigmoid))).to.be.below(1e-5);
          // not a constant graph: the logits vary across images
          expect(Math.max(...native) - Math.min(...native)).to.be.above(1e-3);
        }
      } finally {
        model.dispose();
      }
    });
  }

  it('divides a stored temperature out of the first output', async () => {
    const spec = EXPORT_FAMILIES[1].spec;
    const model = await trainedModel(spec);
    try {
      const onnx = await exportBytes(model, { format: 'cifake-torch', spec, calibration: { temperature: 2.5 } }, 'onnx');
      const native = await model.predictLogits(generated);
      const { logit, pReal } = await runOnnx(onnx, generated);
      expect(maxAbsDiff(logit, Array.from(native, (z) => z / 2.5))).to.be.below(1e-4);
      expect(maxAbsDiff(pReal, Array.from(native, (z) => sigmoid(z / 2.5)))).to.be.below(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('accepts any batch size (dynamic N)', async () => {
    const spec = EXPORT_FAMILIES[2].spec;
    const model = await trainedModel(spec);
    try {
      const onnx = await exportBytes(model, { format: 'cifake-torch', spec }, 'onnx');
      const one = generated.subarray(0, 3072);
      expect(maxAbsDiff((await runOnnx(onnx, one)).logit, await model.predictLogits(one))).to.be.below(1e-4);
    } finally {
      model.dispose();
    }
  });

  it('rejects a state that does not match the spec', () => {
    const spec = EXPORT_FAMILIES[1].spec;
    expect(() => buildOnnx(spec, {})).to.throw(/no tensor 'block1.conv.weight'/);
  });
});

describe('export: safetensors', function () {
  this.timeout(60_000);
  let model: CifakeModel;
  const spec = EXPORT_FAMILIES[4].spec;
  before(async () => {
    model = await trainedModel(spec);
  });
  after(() => model.dispose());

  it('holds every native tensor under its reference name, the spec and the operating point', async () => {
    const bytes = await exportBytes(model, { format: 'cifake-torch', spec, config: { threshold: 0.4 }, calibration: { temperature: 1.7 } }, 'safetensors');
    const st = decodeSafetensors(Buffer.from(bytes));
    const state = await model.state();
    expect([...st.tensors.keys()].sort()).to.deep.equal(Object.keys(state).sort());
    for (const e of tensorLayout(spec)) {
      const t = st.tensors.get(e.name)!;
      expect(t.shape, e.name).to.deep.equal(e.shape);
      expect(Array.from(t.data), e.name).to.deep.equal(Array.from(state[e.name]));
      expect(t.dtype).to.equal(e.name.endsWith('num_batches_tracked') ? 'I64' : 'F32');
    }
    expect(JSON.parse(st.metadata.spec)).to.deep.equal(spec);
    expect(Number(st.metadata.temperature)).to.equal(1.7);
    expect(Number(st.metadata.threshold)).to.equal(0.4);
    // the data starts 8-byte aligned
    expect((8 + Number(Buffer.from(bytes).readBigUInt64LE(0))) % 8).to.equal(0);
  });

  it('reads back as import weights that give the native logits (through the ONNX graph)', async () => {
    const bytes = Buffer.from(await exportBytes(model, { format: 'cifake-torch', spec }, 'safetensors'));
    const w = readImportedWeights('m.safetensors', undefined, bytes);
    expect(w.spec).to.deep.equal(spec);
    const images = makeImages(8, 2).images;
    const { logit } = await runOnnx(buildOnnx(w.spec, w.state), images);
    expect(maxAbsDiff(logit, await model.predictLogits(images))).to.be.below(1e-4);
  });

  it('import: a training config gives the architecture; a mismatching one is named', async () => {
    const bytes = Buffer.from(await exportBytes(model, { format: 'cifake-torch', spec }, 'safetensors'));
    const config = { model: { family: 'lightweight', convFilters: [8, 8, 16], dense: [], dropout: 0.3, convsPerBlock: 2, residual: true } };
    expect(readImportedWeights('m.safetensors', config, bytes).spec).to.deep.include({ convFilters: [8, 8, 16], residual: true });
    const wrong = { model: { family: 'lightweight', convFilters: [8, 16], dense: [16] } };
    expect(() => readImportedWeights('m.safetensors', wrong, bytes)).to.throw(/m\.safetensors: tensors do not match.*\n.*(missing|unexpected|values)/);
    expect(() => readImportedWeights('m.safetensors', undefined, bytes.subarray(0, bytes.length - 10))).to.throw(/m\.safetensors: tensor '.*' has a bad byte range/);
    expect(() => readImportedWeights('x.safetensors', undefined, Buffer.from('garbage!garbage'))).to.throw(/x\.safetensors: not a safetensors file/);
  });
});

describe('exportModel: files and bad input', function () {
  this.timeout(60_000);
  let dir: string;
  let ckpt: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-export-'));
    ckpt = path.join(dir, 'hoc.pt');
    const spec = EXPORT_FAMILIES[2].spec;
    const m = await trainedModel(spec);
    await m.save(ckpt, { config: { threshold: 0.5 }, calibration: { temperature: 1.3 } });
    m.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes both formats atomically beside nothing else', async () => {
    for (const format of ['onnx', 'safetensors'] as const) {
      const out = path.join(dir, `m.${format}`);
      const r = await exportModel({ model: ckpt, format, out });
      expect(r).to.deep.include({ file: out, format, temperature: 1.3, threshold: 0.5 });
      expect(fs.statSync(out).size).to.equal(r.bytes);
    }
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
  });

  it('fails clearly on an unknown format, a foreign or truncated checkpoint and an unwritable path', async () => {
    const before = fs.readdirSync(dir).sort();
    const fails = async (p: Promise<unknown>, re: RegExp) => {
      let err: Error | null = null;
      await p.catch((e: Error) => (err = e));
      expect(err, String(re)).to.be.an('error');
      expect(err!.message).to.match(re);
    };
    await fails(exportModel({ model: ckpt, format: 'tflite', out: path.join(dir, 'a.x') }), /unknown format 'tflite'/);
    const foreign = path.join(dir, 'foreign.pt');
    fs.writeFileSync(foreign, 'not a checkpoint at all');
    await fails(exportModel({ model: foreign, format: 'onnx', out: path.join(dir, 'b.onnx') }), /foreign\.pt: not a readable cifake-torch checkpoint/);
    const truncated = path.join(dir, 'truncated.pt');
    fs.writeFileSync(truncated, fs.readFileSync(ckpt).subarray(0, 2000));
    await fails(exportModel({ model: truncated, format: 'onnx', out: path.join(dir, 'c.onnx') }), /truncated\.pt: not a readable cifake-torch checkpoint/);
    await fails(exportModel({ model: ckpt, format: 'onnx', out: path.join(dir, 'no', 'such', 'd.onnx') }), /cannot write .*d\.onnx: directory .* missing or not writable/);
    await fails(exportModel({ model: path.join(dir, 'absent.pt'), format: 'onnx', out: path.join(dir, 'e.onnx') }), /model not found: .*absent\.pt/);
    expect(fs.readdirSync(dir).sort()).to.deep.equal([...before, 'foreign.pt', 'truncated.pt'].sort());
  });
});

// cifake export / import as commands, registered on a fresh commander program exactly as
// bin/cifake.ts registers its subcommands; and the safetensors -> checkpoint round trip.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import { Command, CommanderError } from 'commander';

import { exportCommand } from '../bin/commands/export';
import { importCommand } from '../bin/commands/import';
import { loadSafetensorsModel } from '../src/export';
import { decodeSafetensors } from '../src/export/safetensors';
import { CifakeModel } from '../src/model';
import { EXPORT_FAMILIES, maxAbsDiff, runOnnx, trainedModel } from './export-helpers';
import { makeImages } from './helpers';

/** -> exit code (0 ok, 1 failure, 2 usage, as bin/cifake.ts's main) and what was printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const program = new Command().exitOverride();
  for (const c of [exportCommand(), importCommand()]) program.addCommand(c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: (s) => (out += s) }));
  let out = '', err = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'cifake', ...args]);
    return { code: 0, out, err };
  } catch (e) {
    return { code: e instanceof CommanderError ? 2 : 1, out, err: err + (e as Error).message };
  } finally {
    process.stdout.write = write;
  }
}

describe('cifake export / import', function () {
  this.timeout(120_000);
  let dir: string;
  let ckpt: string;
  const spec = EXPORT_FAMILIES[3].spec;
  const images = makeImages(12, 9).images;
  let nativeLogits: Float32Array;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-export-cli-'));
    ckpt = path.join(dir, 'hoc.pt');
    const m = await trainedModel(spec);
    nativeLogits = await m.predictLogits(images);
    await m.save(ckpt, { config: { threshold: 0.45 }, calibration: { temperature: 1.5, youdenThreshold: 0.45 } });
    m.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--print-pytorch prints the reference module', async () => {
    const r = await cli('export', '--print-pytorch');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^# cifake-torch reference module/).and.match(/class CifakeNet\(nn\.Module\)/).and.match(/def load_cifake/);
  });

  it('writes ONNX whose first output is the tempered native logit', async () => {
    const out = path.join(dir, 'm.onnx');
    const r = await cli('export', '--model', ckpt, '--format', 'onnx', '--out', out);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain(`${out}: onnx`).and.contain('temperature 1.5');
    const { logit } = await runOnnx(fs.readFileSync(out), images);
    expect(maxAbsDiff(logit, Array.from(nativeLogits, (z) => z / 1.5))).to.be.below(1e-4);
  });

  it('--json reports the file', async () => {
    const out = path.join(dir, 'm.safetensors');
    const r = await cli('export', '-m', ckpt, '-f', 'safetensors', '-o', out, '--json');
    expect(r.code, r.err).to.equal(0);
    const j = JSON.parse(r.out) as { file: string; bytes: number; temperature: number };
    expect(j).to.include({ file: out, temperature: 1.5 });
    expect(fs.statSync(out).size).to.equal(j.bytes);
  });

  it('usage errors exit 2: an unknown format, no format', async () => {
    const a = await cli('export', '--model', ckpt, '--format', 'tflite');
    expect(a.code).to.equal(2);
    expect(a.err).to.match(/tflite.*invalid|invalid.*tflite/i);
    const b = await cli('export', '--model', ckpt);
    expect(b.code).to.equal(2);
    expect(b.err).to.match(/--format/);
    const c = await cli('import', '--out', path.join(dir, 'x.pt'));
    expect(c.code).to.equal(2);
    expect(c.err).to.match(/--safetensors/);
  });

  it('a foreign checkpoint fails (exit 1) naming the file, and writes nothing', async () => {
    const foreign = path.join(dir, 'foreign.pt');
    fs.writeFileSync(foreign, Buffer.alloc(4096, 7));
    const r = await cli('export', '--model', foreign, '--format', 'onnx', '--out', path.join(dir, 'f.onnx'));
    expect(r.code).to.equal(1);
    expect(r.err).to.contain('foreign.pt');
    expect(fs.existsSync(path.join(dir, 'f.onnx'))).to.equal(false);
  });

  it('import: a file that does not fit the config fails naming the tensors, writing nothing', async () => {
    const st = path.join(dir, 'rt.safetensors');
    expect((await cli('export', '-m', ckpt, '-f', 'safetensors', '-o', st)).code).to.equal(0);
    const out = path.join(dir, 'bad.pt');
    const r = await cli('import', '--safetensors', st, '--config', '{"model":{"family":"lightweight","convFilters":[8,16],"dense":[16]}}', '--out', out);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/rt\.safetensors: tensors do not match/).and.match(/unexpected tensor 'block1\.conv_sq\.weight'/);
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('import round trip: export -> import -> the same logits and operating point', async function () {
    const st = path.join(dir, 'rt.safetensors');
    expect((await cli('export', '-m', ckpt, '-f', 'safetensors', '-o', st)).code).to.equal(0);
    const out = path.join(dir, 'imported.pt');
    const r = await cli('import', '--safetensors', st, '--out', out);
    expect(r.code, r.err).to.equal(0);
    const { model, meta } = await CifakeModel.load(out, { device: 'cpu', threads: 1, withOptimizer: false });
    try {
      expect(meta.spec).to.deep.equal(spec);
      expect((meta.calibration as { temperature: number }).temperature).to.equal(1.5);
      expect(maxAbsDiff(await model.predictLogits(images), nativeLogits)).to.be.below(1e-6);
      const back = decodeSafetensors(fs.readFileSync(st));
      const state = await model.state();
      for (const [name, t] of back.tensors) expect(maxAbsDiff(state[name], t.data), name).to.equal(0);
    } finally {
      model.dispose();
    }
    // straight from the file (what Classifier.load of a .safetensors file uses)
    const direct = await loadSafetensorsModel(st, { threads: 1 });
    try {
      expect(maxAbsDiff(await direct.model.predictLogits(images), nativeLogits)).to.be.below(1e-6);
    } finally {
      direct.model.dispose();
    }
  });
});

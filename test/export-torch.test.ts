// The safetensors export against PyTorch itself (Debian's python3-torch; skipped without it):
// exported weights load into the reference module and give the native logits on real images, and
// weights made in PyTorch read back here (through the ONNX graph) to PyTorch's logits.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { buildOnnx, exportBytes, PYTORCH_REFERENCE, readImportedWeights } from '../src/export';
import { EXPORT_FAMILIES, maxAbsDiff, realImages, REPO_ROOT, runOnnx, trainedModel } from './export-helpers';
import { makeImages } from './helpers';

const SCRIPT = path.join(REPO_ROOT, 'bench', 'export_check.py');

/** The first of CIFAKE_PYTHON, python3, /usr/bin/python3 that imports torch, or null. */
function pythonWithTorch(): string | null {
  for (const py of [process.env.CIFAKE_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p)) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}

describe('export: safetensors in PyTorch (python3-torch)', function () {
  this.timeout(300_000);
  let python: string | null;
  let dir: string;
  let images: Uint8Array;
  let reference: string;
  const run = (...args: string[]) => {
    const r = spawnSync(python!, [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (r.status !== 0) throw new Error(`export_check.py ${args[0]} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
  };

  before(async function () {
    python = pythonWithTorch();
    if (!python) {
      console.log('      skipped: no python3 with torch (apt-get install python3-torch, or set CIFAKE_PYTHON)');
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-torch-check-'));
    reference = path.join(dir, 'cifake_reference.py');
    fs.writeFileSync(reference, PYTORCH_REFERENCE);
    const real = await realImages(16);
    if (!real) console.log('      (real images absent: generated ones only; set CIFAKE_DATA)');
    images = real ? real.images : makeImages(32, 4).images;
    fs.writeFileSync(path.join(dir, 'images.u8'), images);
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  for (const { name, spec } of EXPORT_FAMILIES) {
    it(`native -> PyTorch: ${name}`, async () => {
      const model = await trainedModel(spec);
      try {
        const file = path.join(dir, 'm.safetensors');
        fs.writeFileSync(file, await exportBytes(model, { format: 'cifake-torch', spec, calibration: { temperature: 2 } }, 'safetensors'));
        fs.writeFileSync(path.join(dir, 'native.f32'), await model.predictLogits(images));
        const r = run('check', reference, file, path.join(dir, 'images.u8'), path.join(dir, 'native.f32'));
        expect(r.n).to.equal(images.length / 3072);
        expect(r.maxAbsDiff).to.be.below(1e-4);
        expect(r.logitRange).to.be.above(1e-3);
      } finally {
        model.dispose();
      }
    });
  }

  for (const { name, spec } of [EXPORT_FAMILIES[0], EXPORT_FAMILIES[3], EXPORT_FAMILIES[4], EXPORT_FAMILIES[6]]) {
    it(`PyTorch -> here: ${name}`, async () => {
      const specFile = path.join(dir, 'spec.json');
      fs.writeFileSync(specFile, JSON.stringify(spec));
      const file = path.join(dir, 'py.safetensors');
      run('make', reference, specFile, file, path.join(dir, 'images.u8'), path.join(dir, 'py.f32'));
      const torchLogits = new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, 'py.f32'))).buffer);
      const w = readImportedWeights(file);
      expect(w.spec).to.deep.equal(spec);
      const { logit } = await runOnnx(buildOnnx(w.spec, w.state), images);
      expect(maxAbsDiff(logit, torchLogits)).to.be.below(1e-4);
    });
  }
});

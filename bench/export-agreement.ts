// How closely the exported models agree with the native one, on real CIFAKE test images: ONNX on
// onnxruntime-node (logit and P(REAL)) and safetensors in PyTorch (python3-torch via
// bench/export_check.py, when a python with torch is found). Models: the presets' architectures
// after one short epoch on generated images (so BatchNorm statistics are not the identity), or
// --model checkpoints. The figures go to docs/deploy.md.
//
//   OMP_NUM_THREADS=1 npx tsx bench/export-agreement.ts [--per-class 500] [--model CKPT ...] [--python /usr/bin/python3]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { modelSpecOf, PRESET_NAMES, resolveConfig } from '../src/config';
import { exportBytes } from '../src/export';
import { PYTORCH_REFERENCE } from '../src/export/pytorch';
import { CifakeModel, type CheckpointMeta } from '../src/model';
import { maxAbsDiff, realImages, runOnnx, trainedModel } from '../test/export-helpers';

const { values } = parseArgs({
  options: { 'per-class': { type: 'string', default: '500' }, model: { type: 'string', multiple: true }, python: { type: 'string', default: '/usr/bin/python3' } },
});

async function main() {
  const real = await realImages(Number(values['per-class']));
  if (!real) throw new Error('CIFAKE zip not found (set CIFAKE_DATA)');
  const hasTorch = spawnSync(values.python!, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-agreement-'));
  fs.writeFileSync(path.join(dir, 'ref.py'), PYTORCH_REFERENCE);
  fs.writeFileSync(path.join(dir, 'images.u8'), real.images);
  const models: { name: string; load: () => Promise<{ model: CifakeModel; meta: CheckpointMeta }> }[] = values.model?.length
    ? values.model.map((m) => ({ name: path.basename(m), load: () => CifakeModel.load(m, { device: 'cpu', threads: 1, withOptimizer: false }) }))
    : PRESET_NAMES.map((p) => ({
        name: p,
        load: async () => {
          const spec = modelSpecOf(resolveConfig({ preset: p }).model);
          return { model: await trainedModel(spec), meta: { format: 'cifake-torch' as const, spec } };
        },
      }));
  console.log(`${real.count} real CIFAKE test images (${values['per-class']} per class); max |difference| against the native model\n`);
  console.log('| model | family | ONNX logit | ONNX P(REAL) | PyTorch logit |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const m of models) {
    const { model, meta } = await m.load();
    try {
      const native = await model.predictLogits(real.images);
      const raw = { ...meta, calibration: undefined };
      const onnx = await runOnnx(await exportBytes(model, raw, 'onnx'), real.images);
      const pNative = Array.from(native, (z) => 1 / (1 + Math.exp(-z)));
      let torch = 'n/a (no torch)';
      if (hasTorch) {
        fs.writeFileSync(path.join(dir, 'm.safetensors'), await exportBytes(model, raw, 'safetensors'));
        fs.writeFileSync(path.join(dir, 'native.f32'), native);
        const r = spawnSync(values.python!, [path.join(__dirname, 'export_check.py'), 'check', path.join(dir, 'ref.py'), path.join(dir, 'm.safetensors'), path.join(dir, 'images.u8'), path.join(dir, 'native.f32')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
        torch = r.status === 0 ? (JSON.parse(r.stdout) as { maxAbsDiff: number }).maxAbsDiff.toExponential(1) : `failed: ${r.stderr.slice(0, 80)}`;
      }
      console.log(`| ${m.name} | ${model.spec.family}${model.spec.hoc ? (model.spec.fusedHoc ? ' (fused)' : ' (unfused)') : ''} | ${maxAbsDiff(onnx.logit, native).toExponential(1)} | ${maxAbsDiff(onnx.pReal, pNative).toExponential(1)} | ${torch} |`);
    } finally {
      model.dispose();
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exitCode = 1;
});

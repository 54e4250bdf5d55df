// Models of every family trained a little (so BatchNorm statistics are not the identity), real
// CIFAKE images when the data zip is present, and ONNX Runtime for the export tests.
import fs from 'node:fs';
import path from 'node:path';

import { loadSplit } from '../src/data';
import { CifakeModel } from '../src/model';
import type { NativeModelSpec } from '../src/native';
import { makeImages } from './helpers';

const base = { dense: [16], dropout: 0.3, padding: 'same' as const, batchNorm: true, hoc: false, fusedHoc: false };

export const EXPORT_FAMILIES: { name: string; spec: NativeModelSpec }[] = [
  { name: 'original (valid padding, no BN, odd sizes)', spec: { ...base, family: 'original', convFilters: [6, 8, 8], padding: 'valid', batchNorm: false } },
  { name: 'lightweight', spec: { ...base, family: 'lightweight', convFilters: [8, 16] } },
  { name: 'hoc fused', spec: { ...base, family: 'hoc', convFilters: [8, 16], hoc: true, fusedHoc: true } },
  { name: 'hoc unfused', spec: { ...base, family: 'hoc', convFilters: [8, 16], hoc: true, fusedHoc: false } },
  { name: 'lightweight, 2 convs per block, residual (projection and identity)', spec: { ...base, family: 'lightweight', convFilters: [8, 8, 16], dense: [], convsPerBlock: 2, residual: true } },
  { name: 'hoc fused, 3 convs per block, no residual', spec: { ...base, family: 'hoc', convFilters: [8, 16], hoc: true, fusedHoc: true, convsPerBlock: 3, dense: [12, 8] } },
  { name: 'ensemble of 3 hoc fused residual networks (logits averaged)', spec: { ...base, family: 'hoc', convFilters: [8, 16], hoc: true, fusedHoc: true, convsPerBlock: 2, residual: true, members: 3 } },
];

/**
 * A model of `spec` after one short epoch on generated images (channels-last, as trained here).
 * Tiny nets can come out with every ReLU dead (a constant logit, which would make any agreement
 * check vacuous): then the next seed is tried.
 */
export async function trainedModel(spec: NativeModelSpec, seed = 7): Promise<CifakeModel> {
  const probe = makeImages(24, 11).images;
  for (let s = seed; s < seed + 8; s++) {
    const m = CifakeModel.create(spec, { device: 'cpu', seed: s, threads: 1 });
    const { images, labels } = makeImages(64, s);
    await m.setData('train', images, labels);
    await m.trainEpoch({ data: 'train', batchSize: 16, epoch: 0 });
    await m.dropData('train');
    const l = await m.predictLogits(probe);
    if (Math.max(...l) - Math.min(...l) > 1e-3) return m;
    m.dispose();
  }
  throw new Error(`trainedModel: every seed from ${seed} gave a constant logit for ${JSON.stringify(spec)}`);
}

export const REPO_ROOT = path.resolve(__dirname, '..');
export const DATA_ZIP = process.env.CIFAKE_DATA ?? path.resolve(REPO_ROOT, '..', 'shared', 'data', 'cifake-dev.zip');

/** `perClass` real and `perClass` fake 32x32 test images of the CIFAKE zip, or null when it is absent. */
export async function realImages(perClass: number): Promise<{ images: Uint8Array; files: string[]; count: number } | null> {
  if (!fs.existsSync(DATA_ZIP)) return null;
  const s = await loadSplit(DATA_ZIP, { split: 'test', limit: perClass, cacheDir: false, seed: 1 });
  return { images: s.images, files: s.files, count: s.count };
}

export function toFloat(images: Uint8Array): Float32Array {
  return Float32Array.from(images, (v) => v / 255);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs an ONNX model on onnxruntime-node (CPU) -> its two outputs. */
export async function runOnnx(model: Uint8Array, images: Uint8Array): Promise<{ logit: Float32Array; pReal: Float32Array }> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const n = images.length / 3072;
    const out = await session.run({ input: new ort.Tensor('float32', toFloat(images), [n, 3, 32, 32]) });
    return { logit: out.logit.data as Float32Array, pReal: out.p_real.data as Float32Array };
  } finally {
    await session.release();
  }
}

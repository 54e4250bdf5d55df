// Small generated datasets for tests: class 1 (REAL) images carry a pattern class 0 lacks.
import { CifakeModel } from '../src/model';
import { availableCpus } from '../src/native';
import { rng } from './data-helpers';

export function makeImages(n: number, seed = 1): { images: Uint8Array; labels: Uint8Array } {
  const rand = rng(seed);
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    labels[i] = label;
    const base = 60 + rand() * 120;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          const noise = (rand() - 0.5) * 60;
          // REAL: a fine checkerboard texture; FAKE: smooth.
          const texture = label === 1 ? ((x + y) % 2 ? 25 : -25) : 0;
          images[i * 3072 + c * 1024 + y * 32 + x] = Math.max(0, Math.min(255, Math.round(base + noise + texture)));
        }
  }
  return { images, labels };
}

export const TEST_THREADS = Math.min(2, availableCpus());

/** A small model trained for 2 epochs on generated images, saved as a checkpoint (a few seconds on one core). */
export async function tinyCheckpoint(file: string): Promise<void> {
  const m = CifakeModel.create(
    { family: 'lightweight', convFilters: [8, 16], dense: [32], dropout: 0, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false },
    { device: 'cpu', seed: 3, threads: 1 },
  );
  try {
    const { images, labels } = makeImages(256, 3);
    await m.setData('train', images, labels);
    for (let epoch = 0; epoch < 2; epoch++) await m.trainEpoch({ data: 'train', batchSize: 32, epoch });
    await m.save(file, { config: { threshold: 0.5 }, epoch: 2 });
  } finally {
    m.dispose();
  }
}

/** Train accuracy of `model` after 8 epochs on 256 generated images (the overfit check of a new architecture). */
export async function overfitAccuracy(model: CifakeModel): Promise<number> {
  const { images, labels } = makeImages(256, 11);
  await model.setData('train', images, labels);
  for (let epoch = 0; epoch < 8; epoch++) await model.trainEpoch({ data: 'train', batchSize: 32, epoch });
  const logits = await model.predictLogits('train');
  let correct = 0;
  logits.forEach((z, i) => (correct += Number(z >= 0) === labels[i] ? 1 : 0));
  return correct / labels.length;
}

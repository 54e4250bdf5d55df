// A child process for the native lifecycle tests (test/native-lifecycle.test.ts): each mode does
// one thing that used to crash the process, and prints one JSON line with what it saw.
import { CifakeModel } from '../src/model';
import { loadNative, type NativeModelSpec } from '../src/native';
import { makeImages } from './helpers';

const SPEC: NativeModelSpec = {
  family: 'lightweight', convFilters: [8, 16], dense: [32], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false,
};

function report(o: unknown): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

async function trainingModel(n = 4096): Promise<CifakeModel> {
  const m = CifakeModel.create(SPEC, { device: 'cpu', seed: 1, threads: 1 });
  const { images, labels } = makeImages(n, 4);
  await m.setData('train', images, labels);
  return m;
}

const modes: Record<string, () => Promise<void>> = {
  // process.exit() while an epoch runs on the worker thread (inside dropout, most of the time).
  async 'exit-mid-epoch'() {
    const m = await trainingModel();
    let batches = 0;
    void m.trainEpoch({ data: 'train', batchSize: 16, progressIntervalMs: 0 }, { onProgress: () => (batches += 1) });
    const wait = setInterval(() => {
      if (batches >= 3) process.exit(3);
    }, 5);
    wait.unref();
    setTimeout(() => process.exit(3), 30000);
  },
  // An uncaught exception while an epoch runs: Node exits with 1.
  async 'throw-mid-epoch'() {
    const m = await trainingModel();
    let batches = 0;
    void m.trainEpoch({ data: 'train', batchSize: 16, progressIntervalMs: 0 }, { onProgress: () => (batches += 1) });
    const wait = setInterval(() => {
      if (batches >= 3) throw new Error('uncaught on purpose');
    }, 5);
    wait.unref();
  },
  // dispose() while an epoch runs, then exit at once.
  async 'dispose-then-exit'() {
    const m = await trainingModel();
    void m.trainEpoch({ data: 'train', batchSize: 16 }).catch(() => undefined);
    setTimeout(() => {
      m.dispose();
      process.exit(4);
    }, 200);
  },
  // An onProgress callback that throws: the epoch stops and trainEpoch rejects with that error.
  async 'progress-throws'() {
    const m = await trainingModel(1024);
    const thrown = new Error('progress callback failed');
    let calls = 0;
    const err = await m
      .trainEpoch({ data: 'train', batchSize: 16, progressIntervalMs: 0 }, { onProgress: () => { calls += 1; if (calls === 2) throw thrown; } })
      .then(() => null, (e: unknown) => e);
    // The model is still usable afterwards.
    const again = await m.trainEpoch({ data: 'train', batchSize: 256 });
    report({ rejected: err !== null, same: err === thrown, calls, againImages: again.images });
    await m.disposeAsync();
  },
  // The same on the raw binding, with a non-Error value thrown.
  async 'raw-progress-throws'() {
    const native = loadNative();
    const s = new native.Session(SPEC, { device: 'cpu', seed: 1, threads: 1 });
    const { images, labels } = makeImages(512, 4);
    await s.setData('train', images, labels);
    const err = await s
      .trainEpoch({ data: 'train', batchSize: 16, progressIntervalMs: 0 }, () => {
        throw 'a string'; // eslint-disable-line no-throw-literal
      })
      .then(() => null, (e: unknown) => e);
    report({ rejected: err !== null, value: err });
    await s.dispose();
  },
};

const mode = process.argv[2];
if (!modes[mode]) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
void modes[mode]();

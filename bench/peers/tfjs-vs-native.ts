// Training throughput: TensorFlow.js (the Node peer, layers API + model.fit) vs this package's
// native trainer, LightweightCNN, the same images, the same number of images per timed run,
// alternating the systems in one run. Usage (from the repository root):
//   bash bench/peers/run.sh [options]           # installs bench/peers/node_modules when missing
//   npx tsx bench/peers/tfjs-vs-native.ts [--images 512] [--batches 32,256] [--repeats 3]
//     [--threads 1,2] [--epochs 3] [--backends cpu,wasm] [--time-box 400] [--synthetic 1]
// --images: images per timed run of either system (default 512).
// --epochs: timed native epochs per run (each of --images images; the median is the run's figure),
//   after one warm-up epoch. tfjs times one epoch per run (it is ~1,000x slower); its first run is
//   preceded by a one-batch warm-up on a throwaway model.
// Duration: the tfjs cpu backend trains at ~2 images/s, so the defaults (512 images, batches 32 and
//   256, 3 repeats) take about 30 minutes, nearly all of it in tfjs; the native runs take seconds.
// --time-box: seconds after which a tfjs run stops at the end of the current batch; its figure is
//   then images done / time to the end of that batch (default 400).
// --backends: tfjs backends; each is first probed with a 2-image fit, a backend that cannot train
//   this model is reported with its error and skipped (the wasm backend has no conv gradient kernel).
// Data: --images real CIFAKE train images (half REAL, half FAKE) from the zip at $CIFAKE_DATA or
// ../shared/data/cifake-dev.zip; generated images (src/data/synth.ts) when neither exists or with
// --synthetic 1. Prints a markdown table of medians (images/s) and the native/tfjs ratio.
//
// TensorFlow.js is not a dependency of cifake-torch: it lives in bench/peers/package.json and is
// installed on demand with `npm ci --prefix bench/peers`. The few tfjs calls used here are typed
// below (type Tf) so that the root type check does not need it installed.
import fs from 'node:fs';
import path from 'node:path';

import { modelSpecOf, validateConfig } from '../../src/config';
import { loadSplit } from '../../src/data';
import { renderSynthImage, synthImageSeed } from '../../src/data/synth';
import { CifakeModel } from '../../src/model';
import { median } from '../lib';

// ---------------------------------------------------------------------------------------------
// options

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i];
  const value = process.argv[i + 1];
  if (!key.startsWith('--') || value === undefined) {
    console.error(`usage: npx tsx bench/peers/tfjs-vs-native.ts [--images N] [--batches 32,256] [--repeats 3] [--threads 1,2] [--epochs 3] [--backends cpu,wasm] [--time-box S] [--synthetic 1]`);
    process.exit(2);
  }
  args.set(key.slice(2), value);
}
const KNOWN = new Set(['images', 'batches', 'repeats', 'threads', 'epochs', 'backends', 'time-box', 'synthetic']);
for (const k of args.keys())
  if (!KNOWN.has(k)) {
    console.error(`unknown option --${k} (known: ${[...KNOWN].map((x) => `--${x}`).join(' ')})`);
    process.exit(2);
  }
const ints = (s: string) => s.split(',').map(Number);
const N = Number(args.get('images') ?? 512);
const BATCHES = ints(args.get('batches') ?? '32,256');
const REPEATS = Number(args.get('repeats') ?? 3);
const THREADS = ints(args.get('threads') ?? '1,2');
const EPOCHS = Number(args.get('epochs') ?? 3);
const BACKENDS = (args.get('backends') ?? 'cpu,wasm').split(',');
const TIME_BOX_S = Number(args.get('time-box') ?? 400);
const SYNTHETIC = args.get('synthetic') === '1';
for (const [name, xs] of [['images', [N]], ['batches', BATCHES], ['repeats', [REPEATS]], ['threads', THREADS], ['epochs', [EPOCHS]], ['time-box', [TIME_BOX_S]]] as const)
  if (xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    console.error(`--${name} must be positive number(s)`);
    process.exit(2);
  }
if (N % 2 !== 0) {
  console.error('--images must be even (half REAL, half FAKE)');
  process.exit(2);
}

const PARAMS = 136_385; // LightweightCNN's trainable parameters (README, native describe())
const zip = process.env.CIFAKE_DATA ?? path.resolve(__dirname, '../../../shared/data/cifake-dev.zip');

const now = () => Number(process.hrtime.bigint()) / 1e9;
const log = (s: string) => console.error(s);

// ---------------------------------------------------------------------------------------------
// the slice of the TensorFlow.js API used here (@tensorflow/tfjs 4.x)

interface TfTensor {
  shape: number[];
  dispose(): void;
}
type TfLayer = object;
interface TfOptimizer {
  dispose(): void;
}
interface TfLogs {
  [key: string]: number;
}
interface TfModel {
  add(layer: TfLayer): void;
  compile(args: { optimizer: TfOptimizer; loss: string }): void;
  fit(
    x: TfTensor,
    y: TfTensor,
    args: {
      batchSize: number;
      epochs: number;
      shuffle?: boolean;
      verbose?: number;
      callbacks?: { onBatchEnd?: (batch: number, logs?: TfLogs) => void | Promise<void> };
    },
  ): Promise<unknown>;
  countParams(): number;
  trainableWeights: { shape: (number | null)[] }[];
  stopTraining: boolean;
  optimizer: TfOptimizer;
  dispose(): unknown;
}
interface Tf {
  version: { [pkg: string]: string };
  setBackend(name: string): Promise<boolean>;
  getBackend(): string;
  enableProdMode(): void;
  memory(): { numTensors: number; numBytes: number };
  sequential(): TfModel;
  tensor4d(values: Float32Array, shape: [number, number, number, number], dtype: 'float32'): TfTensor;
  tensor2d(values: Float32Array, shape: [number, number], dtype: 'float32'): TfTensor;
  slice(x: TfTensor, begin: number[], size: number[]): TfTensor;
  train: { adam(learningRate: number, beta1: number, beta2: number, epsilon: number): TfOptimizer };
  layers: {
    conv2d(args: { inputShape?: number[]; filters: number; kernelSize: number; padding: 'same' | 'valid'; useBias?: boolean }): TfLayer;
    batchNormalization(args: { axis: number; momentum: number; epsilon: number }): TfLayer;
    reLU(): TfLayer;
    maxPooling2d(args: { poolSize: number }): TfLayer;
    flatten(): TfLayer;
    dense(args: { units: number; activation?: 'relu' | 'sigmoid' }): TfLayer;
    dropout(args: { rate: number }): TfLayer;
  };
}

function loadTf(): Tf {
  try {
    require.resolve('@tensorflow/tfjs');
  } catch {
    console.error(
      'TensorFlow.js is not installed for this benchmark (it is not a dependency of cifake-torch). From the repository root run:\n' +
        '  npm ci --prefix bench/peers --no-audit --no-fund\n' +
        'or run the benchmark with: bash bench/peers/run.sh [options]',
    );
    process.exit(2);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tf = require('@tensorflow/tfjs') as Tf;
  if (BACKENDS.includes('wasm')) require('@tensorflow/tfjs-backend-wasm');
  return tf;
}

// ---------------------------------------------------------------------------------------------
// data: N images, CHW uint8 (this package's layout), labels 0 FAKE / 1 REAL

async function data(): Promise<{ images: Uint8Array; labels: Uint8Array; source: string }> {
  if (!SYNTHETIC && fs.existsSync(zip)) {
    const s = await loadSplit(zip, { split: 'train', limit: N / 2, seed: 1 });
    if (s.count !== N) throw new Error(`${zip}: expected ${N} train images, got ${s.count}`);
    return { images: s.images, labels: s.labels, source: `real CIFAKE train images (${zip}, a seeded subset of ${N / 2} per class)` };
  }
  // renderSynthImage gives HWC (interleaved RGB); this package takes CHW.
  const images = new Uint8Array(N * 3072);
  const labels = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    const cls = i % 2 ? 'REAL' : 'FAKE';
    labels[i] = i % 2;
    const hwc = renderSynthImage(cls, synthImageSeed(1, 'train', cls, i >> 1));
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) images[i * 3072 + c * 1024 + p] = hwc[p * 3 + c];
  }
  const why = SYNTHETIC ? '--synthetic 1' : `no CIFAKE zip at ${zip}`;
  return { images, labels, source: `generated images (src/data/synth.ts, ${why}); NOT CIFAKE` };
}

// ---------------------------------------------------------------------------------------------
// native

function nativeModel(threads: number): CifakeModel {
  const config = validateConfig({ model: { family: 'lightweight' }, optimizer: { name: 'adam', lr: 1e-3 } });
  return CifakeModel.create(modelSpecOf(config.model), { device: 'cpu', seed: 0, threads, optimizer: config.optimizer });
}

/** One native run: a new model, one warm-up epoch, then EPOCHS timed epochs; images/s of each. */
async function nativeRun(threads: number, batch: number, images: Uint8Array, labels: Uint8Array): Promise<number[]> {
  const m = nativeModel(threads);
  try {
    if (m.parameters !== PARAMS) throw new Error(`native LightweightCNN has ${m.parameters} parameters, expected ${PARAMS}`);
    await m.setData('train', images, labels);
    const out: number[] = [];
    for (let e = 0; e <= EPOCHS; e++) {
      const t0 = now();
      await m.trainEpoch({ data: 'train', batchSize: batch, epoch: e });
      if (e > 0) out.push(N / (now() - t0)); // epoch 0 is the warm-up
    }
    return out;
  } finally {
    m.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// tfjs

/** LightweightCNN in the layers API, compiled as this package trains it (BCE, Adam lr 1e-3). */
function tfModel(tf: Tf): TfModel {
  const m = tf.sequential();
  // BatchNorm with PyTorch's defaults (momentum 0.1 = Keras 0.9, eps 1e-5); Adam with PyTorch's eps.
  const bn = () => tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5 });
  m.add(tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 16, kernelSize: 3, padding: 'same' }));
  m.add(bn());
  m.add(tf.layers.reLU());
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same' }));
  m.add(bn());
  m.add(tf.layers.reLU());
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 64, activation: 'relu' }));
  m.add(tf.layers.dropout({ rate: 0.5 }));
  m.add(tf.layers.dense({ units: 1, activation: 'sigmoid' }));
  m.compile({ optimizer: tf.train.adam(1e-3, 0.9, 0.999, 1e-8), loss: 'binaryCrossentropy' });
  return m;
}

function trainableParams(m: TfModel): number {
  return m.trainableWeights.reduce((s, w) => s + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
}

function disposeModel(m: TfModel): void {
  m.optimizer.dispose();
  m.dispose();
}

/** CHW uint8 -> NHWC float32 in [0, 1] and labels [N, 1]; done once, outside the timing (as native setData). */
function tfData(tf: Tf, images: Uint8Array, labels: Uint8Array): { x: TfTensor; y: TfTensor } {
  const n = labels.length;
  const x = new Float32Array(n * 3072);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < 1024; p++) x[i * 3072 + p * 3 + c] = images[i * 3072 + c * 1024 + p] / 255;
  return { x: tf.tensor4d(x, [n, 32, 32, 3], 'float32'), y: tf.tensor2d(Float32Array.from(labels), [n, 1], 'float32') };
}

/** Can this backend train the model at all? undefined when it can, else the error text. */
async function probe(tf: Tf, backend: string, x: TfTensor, y: TfTensor): Promise<string | undefined> {
  try {
    if (!(await tf.setBackend(backend))) return `tf.setBackend('${backend}') returned false`;
  } catch (e) {
    return (e as Error).message;
  }
  const m = tfModel(tf);
  const xs = tf.slice(x, [0, 0, 0, 0], [2, 32, 32, 3]);
  const ys = tf.slice(y, [0, 0], [2, 1]);
  try {
    await m.fit(xs, ys, { batchSize: 2, epochs: 1, verbose: 0 });
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  } finally {
    xs.dispose();
    ys.dispose();
    disposeModel(m);
  }
}

interface TfRun {
  imagesPerSec: number;
  images: number;
  seconds: number;
  boxed: boolean;
}

const warmedUp = new Set<string>();

/**
 * One tfjs run: one timed epoch of model.fit on a new model. The first run of each backend is
 * preceded by a warm-up fit of one batch (at most 32 images: the JS kernels are the same at any
 * batch size, and a 256-image warm-up would take minutes on the cpu backend) on a throwaway model.
 */
async function tfRun(tf: Tf, backend: string, batch: number, x: TfTensor, y: TfTensor): Promise<TfRun> {
  await tf.setBackend(backend);
  const n = x.shape[0];
  if (!warmedUp.has(backend)) {
    warmedUp.add(backend);
    const warm = tfModel(tf);
    const wb = Math.min(batch, 32, n);
    const wx = tf.slice(x, [0, 0, 0, 0], [wb, 32, 32, 3]);
    const wy = tf.slice(y, [0, 0], [wb, 1]);
    try {
      await warm.fit(wx, wy, { batchSize: wb, epochs: 1, verbose: 0 });
    } finally {
      wx.dispose();
      wy.dispose();
      disposeModel(warm);
    }
  }
  const m = tfModel(tf);
  if (trainableParams(m) !== PARAMS) throw new Error(`tfjs LightweightCNN has ${trainableParams(m)} trainable parameters, expected ${PARAMS}`);
  let done = 0;
  let lastEnd = 0;
  let boxed = false;
  const t0 = now();
  try {
    await m.fit(x, y, {
      batchSize: batch,
      epochs: 1,
      shuffle: true,
      verbose: 0,
      callbacks: {
        onBatchEnd: (b: number) => {
          lastEnd = now();
          done = Math.min((b + 1) * batch, n);
          if (done < n && lastEnd - t0 > TIME_BOX_S) {
            boxed = true;
            m.stopTraining = true;
          }
        },
      },
    });
  } finally {
    disposeModel(m);
  }
  const seconds = (boxed ? lastEnd : now()) - t0;
  return { imagesPerSec: done / seconds, images: done, seconds, boxed };
}

// ---------------------------------------------------------------------------------------------

/** Measurements of one batch size: tfjs runs per backend, native img/s per thread count. */
interface Row {
  batch: number;
  tf: Map<string, TfRun[]>;
  native: Map<number, number[]>;
}

/** The markdown table: native rows, then each tfjs backend with the native/tfjs ratios of the paired runs. */
function printTable(rows: Row[], failed: Map<string, string>, tfVersion: string | undefined): void {
  const fmt = (v: number) => (v >= 100 ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log(`| batch | system | threads | img/s (median) | native / this (median of pairs) | range |`);
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) {
    for (const [t, nat] of row.native) console.log(`| ${row.batch} | cifake-torch native | ${t} | ${fmt(median(nat))} | | |`);
    for (const [b, runs] of row.tf) {
      const boxed = runs.some((r) => r.boxed) ? ` (time-boxed: ${runs.map((r) => r.images).join('/')} images)` : '';
      const ips = runs.map((r) => r.imagesPerSec);
      const ratios = [...row.native].map(([t, nat]) => {
        const rs = nat.map((v, i) => v / ips[i]);
        return `${t}t ${fmt(median(rs))}x`;
      });
      const ranges = [...row.native].map(([t, nat]) => {
        const rs = nat.map((v, i) => v / ips[i]);
        return `${t}t ${fmt(Math.min(...rs))}-${fmt(Math.max(...rs))}`;
      });
      console.log(`| ${row.batch} | tfjs ${tfVersion} ${b}${boxed} | 1 (JS) | ${fmt(median(ips))} | ${ratios.join(', ')} | ${ranges.join(', ')} |`);
    }
    for (const [b, err] of failed) console.log(`| ${row.batch} | tfjs ${tfVersion} ${b} | | cannot train: ${err.replace(/\|/g, '\\|')} | | |`);
  }
}

async function main() {
  const tf = loadTf();
  tf.enableProdMode(); // tfjs's fastest setting: no per-op debug checks
  await tf.setBackend('cpu'); // the wasm backend, when registered, would otherwise be the default
  const d = await data();
  const { x, y } = tfData(tf, d.images, d.labels);

  // The same model on both sides.
  const probeModel = tfModel(tf);
  const tfTrainable = trainableParams(probeModel);
  const tfAll = probeModel.countParams();
  disposeModel(probeModel);
  const nm = nativeModel(1);
  const nativeParams = nm.parameters;
  nm.dispose();
  if (tfTrainable !== PARAMS || nativeParams !== PARAMS)
    throw new Error(`parameter counts differ: tfjs trainable ${tfTrainable}, native ${nativeParams}, expected ${PARAMS}`);

  const failed = new Map<string, string>();
  const backends: string[] = [];
  for (const b of BACKENDS) {
    const err = await probe(tf, b, x, y);
    if (err === undefined) backends.push(b);
    else failed.set(b, err);
    log(`tfjs backend ${b}: ${err === undefined ? 'trains' : `cannot train this model: ${err}`}`);
  }

  const tfVersion = tf.version['tfjs'] ?? tf.version['tfjs-core'];
  log(
    `data: ${N} ${d.source}\n` +
      `LightweightCNN: ${PARAMS} trainable parameters on both sides (tfjs countParams incl. BatchNorm moving statistics: ${tfAll})\n` +
      `tfjs ${tfVersion} (prod mode), model.fit shuffle, one timed epoch per run (a one-batch warm-up before the first), time box ${TIME_BOX_S} s; ` +
      `native: ${EPOCHS} timed epochs per run after a warm-up, threads ${THREADS.join(',')}; ${REPEATS} repeats, systems alternating`,
  );

  const rows: Row[] = [];
  const tensorsBefore = tf.memory().numTensors;
  for (const batch of BATCHES) {
    const row: Row = { batch, tf: new Map(backends.map((b) => [b, []])), native: new Map(THREADS.map((t) => [t, []])) };
    rows.push(row);
    for (let r = 0; r < REPEATS; r++) {
      const jobs: (() => Promise<void>)[] = [
        ...backends.map((b) => async () => {
          const run = await tfRun(tf, b, batch, x, y);
          row.tf.get(b)!.push(run);
          log(`  b${batch} r${r + 1} tfjs-${b}: ${run.imagesPerSec.toFixed(2)} img/s (${run.images} images in ${run.seconds.toFixed(1)} s${run.boxed ? ', time-boxed' : ''})`);
        }),
        ...THREADS.map((t) => async () => {
          const xs = await nativeRun(t, batch, d.images, d.labels);
          row.native.get(t)!.push(median(xs));
          log(`  b${batch} r${r + 1} native ${t}t: ${Math.round(median(xs))} img/s (epochs: ${xs.map(Math.round).join(', ')})`);
        }),
      ];
      // Alternate the order, so drift hits all systems alike.
      if (r % 2 === 1) jobs.reverse();
      for (const j of jobs) await j();
    }
  }
  // (A failed probe leaves the tensors of its aborted step behind; count only what the runs leave.)
  log(`tfjs tensors left behind by the timed runs: ${tf.memory().numTensors - tensorsBefore} (0 expected)`);
  x.dispose();
  y.dispose();

  printTable(rows, failed, tfVersion);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

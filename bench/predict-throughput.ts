// Inference throughput of Classifier.predictBatch: images/s and per-call latency at several batch
// sizes, CPU threads 1 and 2 (and CUDA when the addon sees a device).
//
//   npx tsx bench/predict-throughput.ts [--model runs/hoc | path/to/best.pt] [--batches 1,32,256]
//       [--threads 1,2] [--inputs raw,jpeg] [--repeats 5] [--seconds 1] [--data cifake.zip] [--out bench/out]
//
// --model: a run directory or a checkpoint. Without it, a fresh (untrained) model of the 'hoc'
// preset is saved to a temporary checkpoint via the library (CifakeModel.create + save, with the
// meta a training run writes): inference cost does not depend on the weights.
// Inputs: 32x32 RGB images from the CIFAKE train split (CIFAKE_DATA, --data or
// ../shared/data/cifake-dev.zip) when present, else generated ones.
//   raw:  { data, width: 32, height: 32 } HWC pixels, as sharp's .raw() gives (includes the
//         HWC->CHW copy predictBatch does);
//   jpeg: the same pixels re-encoded as quality-75 JPEG bytes (sharp; includes decoding, as a
//         service would).
// One timed measurement = predictBatch calls on the same batch for --seconds (at least 3 calls),
// after warm-up calls; the configurations are alternated within each repeat (drift hits all alike).
// images/s: median over repeats of (images / time); latency: median and p90 of all calls.
// Writes the table to bench/out/predict-throughput-<time>.{md,json}.
// On a busy 2-core machine the 2-thread rows suffer most (OpenMP barrier stalls): compare with
// OMP_WAIT_POLICY=PASSIVE or OPENBLAS_NUM_THREADS=1 (see bench/epoch-times.ts) when in doubt.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

import { Classifier, type RawImage } from '../src/classifier';
import { modelSpecOf, resolveConfig } from '../src/config';
import { loadSplit } from '../src/data';
import { renderSynthImage } from '../src/data/synth';
import { CifakeModel } from '../src/model';
import { loadedBlasLibraries, loadNative } from '../src/native';
import { packageVersion } from '../src/version';
import { environmentLine, median, quantile, runBench, writeBenchReport } from './lib';

type InputKind = 'raw' | 'jpeg';


/** A fresh 'hoc' model saved as a checkpoint with the meta cifake train writes (config, epoch, versions). */
async function untrainedCheckpoint(dir: string): Promise<string> {
  const config = resolveConfig({ preset: 'hoc', overrides: { device: 'cpu' } });
  const model = CifakeModel.create(modelSpecOf(config.model), { device: 'cpu', seed: config.seed, threads: 1, optimizer: config.optimizer, channelsLast: config.channelsLast });
  const file = path.join(dir, 'untrained-hoc.pt');
  try {
    await model.save(file, {
      config,
      classNames: ['FAKE', 'REAL'],
      epoch: 0,
      note: 'untrained, written by bench/predict-throughput.ts',
      versions: { cifakeTorch: packageVersion(), libtorch: loadNative().info().torchVersion },
    });
  } finally {
    model.dispose();
  }
  return file;
}

/** n CHW images: CIFAKE train images when the data is there, else generated ones. */
async function sourceImages(n: number, data: string): Promise<{ chw: Uint8Array[]; source: string }> {
  if (fs.existsSync(data)) {
    const s = await loadSplit(data, { split: 'train', limit: Math.ceil(n / 2), seed: 7 });
    const chw = Array.from({ length: Math.min(n, s.count) }, (_, i) => s.images.slice(i * 3072, (i + 1) * 3072));
    return { chw, source: `CIFAKE train (${data})` };
  }
  const chw = Array.from({ length: n }, (_, i) => {
    const hwc = renderSynthImage(i % 2 ? 'REAL' : 'FAKE', 1000 + i);
    const out = new Uint8Array(3072);
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[c * 1024 + p] = hwc[p * 3 + c];
    return out;
  });
  return { chw, source: 'generated images (no CIFAKE data found)' };
}

function toHwc(chw: Uint8Array): Uint8Array {
  const out = new Uint8Array(3072);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = chw[c * 1024 + p];
  return out;
}

interface Config {
  device: string;
  threads: number | null;
  batch: number;
  input: InputKind;
  clf: Classifier;
}

interface Result {
  imagesPerSec: number[];
  latenciesMs: number[];
}

async function timeCalls(c: Config, inputs: (RawImage | Uint8Array)[], seconds: number): Promise<{ images: number; s: number; lat: number[] }> {
  const lat: number[] = [];
  let images = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (lat.length < 3 || elapsed < seconds) {
    const a = process.hrtime.bigint();
    const preds = await c.clf.predictBatch(inputs);
    const b = process.hrtime.bigint();
    if (preds.length !== inputs.length) throw new Error('predictBatch returned the wrong number of predictions');
    images += preds.length;
    lat.push(Number(b - a) / 1e6);
    elapsed = Number(b - t0) / 1e9;
  }
  return { images, s: elapsed, lat };
}

/** The markdown table: one row per configuration. */
function resultTable(configs: Config[], results: Map<Config, Result>): string[] {
  const lines = [
    '| device | threads | input | batch | images/s median | images/s min-max | ms/call median | ms/call p90 | calls |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of configs) {
    const res = results.get(c)!;
    const ips = res.imagesPerSec;
    lines.push(
      `| ${c.device} | ${c.threads ?? '-'} | ${c.input} | ${c.batch} | ${Math.round(median(ips))} | ${Math.round(Math.min(...ips))}-${Math.round(Math.max(...ips))} | ` +
        `${median(res.latenciesMs).toFixed(2)} | ${quantile(res.latenciesMs, 0.9).toFixed(2)} | ${res.latenciesMs.length} |`,
    );
  }
  return lines;
}

/** The command line, checked. */
function parseOptions() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      batches: { type: 'string', default: '1,32,256' },
      threads: { type: 'string', default: '1,2' },
      inputs: { type: 'string', default: 'raw,jpeg' },
      repeats: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '1' },
      data: { type: 'string' },
      out: { type: 'string', default: path.join(__dirname, 'out') },
    },
  });
  const batches = values.batches.split(',').map(Number);
  const threadList = values.threads.split(',').map(Number);
  const kinds = values.inputs.split(',') as InputKind[];
  const repeats = Number(values.repeats);
  const seconds = Number(values.seconds);
  if (!batches.every((b) => Number.isInteger(b) && b >= 1 && b <= 4096)) throw new Error('--batches: integers in 1..4096');
  if (!threadList.every((t) => Number.isInteger(t) && t >= 1)) throw new Error('--threads: integers >= 1');
  if (!kinds.every((k) => k === 'raw' || k === 'jpeg')) throw new Error('--inputs: raw, jpeg');
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new Error('--repeats: an integer >= 1');
  if (!(seconds > 0)) throw new Error('--seconds: a number > 0');
  return { values, batches, threadList, kinds, repeats, seconds };
}

async function main(): Promise<void> {
  const { values, batches, threadList, kinds, repeats, seconds } = parseOptions();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-predict-bench-'));
  const classifiers: Classifier[] = [];
  try {
    const model = values.model ?? (await untrainedCheckpoint(tmp));
    const maxBatch = Math.max(...batches);
    const data = process.env.CIFAKE_DATA ?? values.data ?? path.resolve(__dirname, '../../shared/data/cifake-dev.zip');
    const { chw, source } = await sourceImages(maxBatch, data);
    const raws: RawImage[] = chw.map((x) => ({ data: toHwc(x), width: 32, height: 32 }));
    const jpegs = kinds.includes('jpeg')
      ? await Promise.all(raws.map((r) => sharp(r.data, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 75 }).toBuffer()))
      : [];
    const inputsFor = (kind: InputKind, b: number): (RawImage | Uint8Array)[] =>
      Array.from({ length: b }, (_, i) => (kind === 'raw' ? raws[i % raws.length] : jpegs[i % jpegs.length]));

    const info = loadNative().info();
    const devices: { device: string; threads: number | null }[] = threadList.map((t) => ({ device: 'cpu', threads: t }));
    if (info.cuda.available) devices.push({ device: 'cuda', threads: null });
    const configs: Config[] = [];
    for (const d of devices) {
      // maxBatch: one native forward per predictBatch call, whatever the batch.
      const clf = await Classifier.load(model, { device: d.device, threads: d.threads ?? undefined, maxBatch });
      classifiers.push(clf);
      for (const input of kinds) for (const batch of batches) configs.push({ ...d, batch, input, clf });
    }
    const ci = classifiers[0].info;
    const header =
      `model: ${ci.family} (${ci.parameters} parameters) from ${values.model ? ci.checkpoint : 'a fresh untrained hoc checkpoint'}; ` +
      `inputs: ${source}; ${kinds
        .map((k) =>
          k === 'raw'
            ? 'raw = 32x32 HWC pixels'
            : `jpeg = the same pixels re-encoded as quality-75 JPEG (${Math.round(jpegs.reduce((s, j) => s + j.length, 0) / jpegs.length)} bytes avg), decoded in every call`,
        )
        .join(', ')}; ` +
      `${repeats} repeats x >= ${seconds} s per configuration, alternated\n` +
      `machine: ${os.cpus()[0]?.model ?? '?'}, ${os.availableParallelism()} CPUs${info.cuda.available ? `, CUDA ${info.cuda.devices.map((d) => d.name).join(', ')}` : ', no CUDA'}; ` +
      `libtorch ${info.torchVersion}; ${environmentLine()}`;
    console.error(header);

    const inputs = new Map(configs.map((c) => [c, inputsFor(c.input, c.batch)]));
    // Warm-up: every configuration a few calls (oneDNN primitives per shape, allocator, sharp).
    for (const c of configs) for (let i = 0; i < 3; i++) await c.clf.predictBatch(inputs.get(c)!);

    const results = new Map<Config, Result>(configs.map((c) => [c, { imagesPerSec: [], latenciesMs: [] }]));
    for (let r = 1; r <= repeats; r++) {
      for (const c of configs) {
        const t = await timeCalls(c, inputs.get(c)!, seconds);
        const res = results.get(c)!;
        res.imagesPerSec.push(t.images / t.s);
        res.latenciesMs.push(...t.lat);
      }
      console.error(`repeat ${r}/${repeats} done, load ${os.loadavg()[0].toFixed(2)}`);
    }

    const lines = resultTable(configs, results);
    const md = [header, '', ...lines].join('\n');
    console.log(md);
    writeBenchReport(values.out, 'predict-throughput', md, {
      header,
      args: values,
      results: configs.map((c) => ({ device: c.device, threads: c.threads, input: c.input, batch: c.batch, ...results.get(c)! })),
    });
  } finally {
    for (const c of classifiers) c.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runBench(main);

// Full-epoch training time per model family on the real CIFAKE train split (CPU), through the
// library API exactly as `cifake train` runs an epoch: the preset's model, optimizer and
// channels-last setting, data resident on the device, one native trainEpoch call.
//
//   npx tsx bench/epoch-times.ts [--repeats 3] [--families paper-cnn,lightweight,hoc] [--threads 2[,1]]
//       [--batch 32] [--val-fraction 0.1] [--limit N] [--warmup-batches 50] [--data path.zip] [--out bench/out]
//
// Data: CIFAKE_DATA, else --data, else ../shared/data/cifake-dev.zip (train split, 100,000 images;
// loaded from the decoded-data cache when there is one). By default the epoch is what a training
// run trains on: the 90,000 images left after the stratified 10% validation split (valFraction 0.1,
// seed 42, as `cifake train`); --val-fraction 0 times the whole 100,000. The table also gives the
// time scaled to 100,000 images (epoch time is linear in the images: same batches, same ops).
// --limit N keeps N images per class (as the CLI's --limit), for a quick check.
//
// Each measurement: a fresh model (preset seed), the split handed over with setData (not timed),
// a short warm-up epoch on the first --warmup-batches batches (oneDNN primitive creation, allocator
// warm-up; not timed), then one timed full epoch (trainEpoch's own seconds). Models are alternated
// (a, b, c, a, b, c, ...) across repeats, because this machine's speed drifts by +-30% over minutes;
// the table gives medians and the min-max spread. The 1-minute load average is logged per epoch.
// Writes the table and every raw epoch to bench/out/epoch-times-<time>.{md,json}.
//
// The header records OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and the BLAS loaded: Debian's libblas.so.3
// here is OpenBLAS's pthread variant, whose own threads run the dense layers beside libtorch's
// OpenMP team; in short checks on 2 cores OPENBLAS_NUM_THREADS=1 trained HOC markedly faster with
// --threads 2. Worth one run with and one without.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { modelSpecOf, resolveConfig, type PresetName, type TrainConfig } from '../src/config';
import { loadSplit, stratifiedSplit, subsetImageSet, type ImageSet } from '../src/data';
import { CifakeModel } from '../src/model';
import { loadedBlasLibraries, loadNative } from '../src/native';
import { environmentLine, median, runBench, writeBenchReport } from './lib';

const FAMILY_PRESET: Record<string, PresetName> = {
  original: 'paper-cnn',
  'paper-cnn': 'paper-cnn',
  lightweight: 'lightweight',
  hoc: 'hoc',
};
const HOC_GOAL_S = 60;

const fmt = (x: number, d = 1) => x.toFixed(d);

interface Measurement {
  preset: PresetName;
  family: string;
  threads: number;
  repeat: number;
  images: number;
  batches: number;
  seconds: number;
  imagesPerSec: number;
  loss: number;
  loadAvg1: number;
  startedAt: string;
}

async function measure(config: TrainConfig, threads: number, train: ImageSet, warmup: ImageSet | null, batch: number): Promise<Omit<Measurement, 'preset' | 'repeat' | 'startedAt' | 'loadAvg1'>> {
  const model = CifakeModel.create(modelSpecOf(config.model), {
    device: 'cpu',
    seed: config.seed,
    threads,
    optimizer: config.optimizer,
    channelsLast: config.channelsLast,
  });
  try {
    await model.setData('train', train.images, train.labels);
    if (warmup) {
      await model.setData('warmup', warmup.images, warmup.labels);
      await model.trainEpoch({ data: 'warmup', batchSize: batch, seed: config.seed, epoch: 1000 });
      await model.dropData('warmup');
    }
    const r = await model.trainEpoch({ data: 'train', batchSize: batch, seed: config.seed, epoch: 0, lr: config.optimizer.lr });
    if (r.cancelled || r.nonFinite) throw new Error(`epoch ended early (cancelled ${r.cancelled}, non-finite ${r.nonFinite})`);
    return { family: config.model.family, threads, images: r.images, batches: r.batches, seconds: r.seconds, imagesPerSec: r.imagesPerSec, loss: r.loss };
  } finally {
    model.dispose();
  }
}

/** The command line, checked. */
function parseOptions() {
  const { values } = parseArgs({
    options: {
      repeats: { type: 'string', default: '3' },
      families: { type: 'string', default: 'paper-cnn,lightweight,hoc' },
      threads: { type: 'string', default: '2' },
      batch: { type: 'string', default: '32' },
      'val-fraction': { type: 'string', default: '0.1' },
      limit: { type: 'string' },
      'warmup-batches': { type: 'string', default: '50' },
      data: { type: 'string' },
      out: { type: 'string', default: path.join(__dirname, 'out') },
    },
  });
  const repeats = Number(values.repeats);
  const threadList = values.threads.split(',').map(Number);
  const batch = Number(values.batch);
  const valFraction = Number(values['val-fraction']);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  const warmupBatches = Number(values['warmup-batches']);
  const presets = values.families.split(',').map((f) => {
    const p = FAMILY_PRESET[f.trim()];
    if (!p) throw new Error(`--families: unknown '${f}' (allowed: ${Object.keys(FAMILY_PRESET).join(', ')})`);
    return p;
  });
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new Error('--repeats: an integer >= 1');
  if (!threadList.every((t) => Number.isInteger(t) && t >= 1)) throw new Error('--threads: integers >= 1, comma-separated');
  if (!(Number.isInteger(batch) && batch >= 2)) throw new Error('--batch: an integer >= 2');
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error('--val-fraction: a number in [0, 1)');
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new Error('--limit: an integer >= 1 (images per class)');
  if (!(Number.isInteger(warmupBatches) && warmupBatches >= 0)) throw new Error('--warmup-batches: an integer >= 0');
  return { values, repeats, threadList, batch, valFraction, limit, warmupBatches, presets };
}

async function main(): Promise<void> {
  const { values, repeats, threadList, batch, valFraction, limit, warmupBatches, presets } = parseOptions();
  const data = process.env.CIFAKE_DATA ?? values.data ?? path.resolve(__dirname, '../../shared/data/cifake-dev.zip');
  if (!fs.existsSync(data)) {
    console.error(`epoch-times: skipped, no CIFAKE data at ${data} (set CIFAKE_DATA or --data to the CIFAKE zip or folder)`);
    return;
  }

  const seed = resolveConfig({ preset: presets[0] }).seed;
  const t0 = Date.now();
  const full = await loadSplit(data, { split: 'train', limit, seed });
  const loadSeconds = (Date.now() - t0) / 1000;
  const train = valFraction > 0 ? stratifiedSplit(full, valFraction, seed).train : full;
  const warmN = Math.min(train.count, warmupBatches * batch);
  const warmup = warmN > 0 ? subsetImageSet(train, Uint32Array.from({ length: warmN }, (_, i) => i)) : null;

  const info = loadNative().info();
  const combos = presets.flatMap((preset) => threadList.map((threads) => ({ preset, threads, config: resolveConfig({ preset, overrides: { batchSize: batch } }) })));
  const header =
    `data: ${data} train split, ${full.count} images loaded in ${fmt(loadSeconds)} s${full.summary.cache.hit ? ' (cache)' : ''}` +
    `${limit ? ` (--limit ${limit} per class)` : ''}; timed epoch: ${train.count} images` +
    `${valFraction > 0 ? ` (after the stratified ${valFraction} val split, seed ${seed}, as cifake train)` : ' (whole split)'}; ` +
    `batch ${batch}; threads ${threadList.join(',')}; warm-up ${warmN} images per measurement; ${repeats} repeats, models alternated\n` +
    `machine: ${os.cpus()[0]?.model ?? '?'}, ${os.availableParallelism()} CPUs; libtorch ${info.torchVersion} (${info.torchSource}); ${environmentLine()}`;
  console.error(header);

  const all: Measurement[] = [];
  for (let repeat = 1; repeat <= repeats; repeat++)
    for (const c of combos) {
      const startedAt = new Date().toISOString();
      const m = await measure(c.config, c.threads, train, warmup, batch);
      const row: Measurement = { preset: c.preset, ...m, repeat, loadAvg1: os.loadavg()[0], startedAt };
      all.push(row);
      console.error(
        `repeat ${repeat}/${repeats} ${c.preset} threads ${c.threads}: ${fmt(m.seconds)} s (${Math.round(m.imagesPerSec)} img/s, ` +
          `${m.batches} batches, loss ${m.loss.toFixed(3)}), load ${row.loadAvg1.toFixed(2)}`,
      );
    }

  const lines = [
    `| model (preset) | threads | images/epoch | s/epoch median | s/epoch min-max | img/s median | s per 100k (scaled) | load avg (1 min) range | n |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const goal: string[] = [];
  for (const c of combos) {
    const ms = all.filter((m) => m.preset === c.preset && m.threads === c.threads);
    const s = ms.map((m) => m.seconds);
    const ips = median(ms.map((m) => m.imagesPerSec));
    const loads = ms.map((m) => m.loadAvg1);
    lines.push(
      `| ${c.config.model.family} (${c.preset}) | ${c.threads} | ${train.count} | ${fmt(median(s))} | ${fmt(Math.min(...s))}-${fmt(Math.max(...s))} | ` +
        `${Math.round(ips)} | ${fmt(100000 / ips)} | ${fmt(Math.min(...loads), 2)}-${fmt(Math.max(...loads), 2)} | ${ms.length} |`,
    );
    if (c.config.model.family === 'hoc')
      goal.push(
        `HOC, ${c.threads} thread(s): median ${fmt(median(s))} s per ${train.count}-image epoch, ${fmt(100000 / ips)} s per 100k scaled: ` +
          `goal <= ${HOC_GOAL_S} s ${100000 / ips <= HOC_GOAL_S ? 'met' : 'NOT met'}${limit ? ' (from a --limit subset: indicative only)' : ''}`,
      );
  }
  const md = [header, '', ...lines, '', ...goal].join('\n');
  console.log(md);

  writeBenchReport(values.out, 'epoch-times', md, { header, args: values, trainImages: train.count, measurements: all });
}

runBench(main);

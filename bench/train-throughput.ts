// Training throughput: this package's native loop vs an idiomatic Python PyTorch loop
// (Debian's python3-torch: the same libtorch), same models, same data, same threads,
// alternating A/B in one run. Usage:
//   npx tsx bench/train-throughput.ts [--images 20000] [--epochs 3] [--repeats 3] [--models original,lightweight,hoc]
//     [--batches 32,256] [--threads N] [--channels-last 1]
// Prints a markdown table of medians (images/s) and the native/python ratio.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { modelSpecOf, validateConfig } from '../src/config';
import { loadSplit } from '../src/data';
import { CifakeModel } from '../src/model';
import { availableCpus } from '../src/native';
import { makeImages } from '../test/helpers';
import { median, runBench } from './lib';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const N = Number(args.get('images') ?? 20000);
const EPOCHS = Number(args.get('epochs') ?? 3);
const REPEATS = Number(args.get('repeats') ?? 3);
const MODELS = (args.get('models') ?? 'original,lightweight,hoc').split(',') as ('original' | 'lightweight' | 'hoc')[];
const BATCHES = (args.get('batches') ?? '32,256').split(',').map(Number);
const THREADS = Number(args.get('threads') ?? availableCpus());
const PYTHON = args.get('python') ?? '/usr/bin/python3';
const CHANNELS_LAST = args.get('channels-last') === '1';
const zip = process.env.CIFAKE_ZIP ?? path.resolve(__dirname, '../../shared/data/cifake-dev.zip');


async function data(): Promise<{ images: Uint8Array; labels: Uint8Array; source: string }> {
  if (fs.existsSync(zip)) {
    const s = await loadSplit(zip, { split: 'train', limit: Math.ceil(N / 2), seed: 1 });
    return { images: s.images.subarray(0, N * 3072), labels: s.labels.subarray(0, N), source: `CIFAKE train (${zip})` };
  }
  const g = makeImages(N, 1);
  return { ...g, source: 'generated images (no CIFAKE zip found)' };
}

async function nativeRun(family: string, batch: number, images: Uint8Array, labels: Uint8Array): Promise<number[]> {
  const config = validateConfig({ model: { family } });
  const m = CifakeModel.create(modelSpecOf(config.model), { device: 'cpu', seed: 0, threads: THREADS, channelsLast: CHANNELS_LAST });
  try {
    await m.setData('train', images, labels);
    const out: number[] = [];
    for (let e = 0; e <= EPOCHS; e++) {
      const r = await m.trainEpoch({ data: 'train', batchSize: batch, epoch: e });
      if (e > 0) out.push(r.imagesPerSec); // epoch 0 is the warm-up
    }
    return out;
  } finally {
    m.dispose();
  }
}

function pythonRun(family: string, batch: number, file: string): number[] {
  const out = execFileSync(
    PYTHON,
    [path.join(__dirname, 'train_throughput.py'), '--model', family, '--batch', String(batch), '--images', String(N), '--epochs', String(EPOCHS), '--threads', String(THREADS), '--data', file],
    { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(THREADS) } },
  );
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).images_per_sec as number);
}

async function main() {
  const d = await data();
  const file = path.join(os.tmpdir(), `cifake-bench-${process.pid}.u8`);
  fs.writeFileSync(file, Buffer.concat([d.images, d.labels]));
  const pyVersion = execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  console.error(`data: ${N} images from ${d.source}; ${THREADS} threads${CHANNELS_LAST ? ', native channels-last' : ''}; ${EPOCHS} timed epochs after a warm-up; ${REPEATS} repeats, A/B alternating; python torch ${pyVersion}`);
  const rows: string[] = [];
  try {
    for (const family of MODELS)
      for (const batch of BATCHES) {
        const nat: number[] = [];
        const py: number[] = [];
        for (let r = 0; r < REPEATS; r++) {
          // Alternate which goes first, so drift hits both alike.
          if (r % 2 === 0) {
            nat.push(...(await nativeRun(family, batch, d.images, d.labels)));
            py.push(...pythonRun(family, batch, file));
          } else {
            py.push(...pythonRun(family, batch, file));
            nat.push(...(await nativeRun(family, batch, d.images, d.labels)));
          }
          console.error(`${family} b${batch} repeat ${r + 1}: native ${Math.round(median(nat))} img/s, python ${Math.round(median(py))} img/s`);
        }
        const ratios = nat.map((x, i) => x / py[i]);
        rows.push(`| ${family} | ${batch} | ${Math.round(median(nat))} | ${Math.round(median(py))} | ${median(ratios).toFixed(2)}x | ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)} |`);
      }
  } finally {
    fs.rmSync(file, { force: true });
  }
  console.log('| model | batch | native img/s (median) | python img/s (median) | ratio (median of pairs) | ratio range |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

runBench(main);

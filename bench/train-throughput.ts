// Training throughput: this package's native loop (channels-last, the default, and NCHW) vs an
// idiomatic Python PyTorch loop (bench/train_throughput.py on Debian's python3-torch: the same
// libtorch), same models, same images, same threads and the same environment on both sides
// (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY as the addon sets them, and the addon's
// glibc malloc thresholds given to Python as MALLOC_*_ variables), printed in the header.
// Systems alternate, rotating which goes first each round. Usage:
//   npx tsx bench/train-throughput.ts [--images 90000] [--epochs 1] [--rounds 2] [--models original,lightweight,hoc]
//     [--batches 32,256] [--threads N] [--systems native,nchw,python] [--warmup 2000] [--out DIR]
// Prints a markdown table: median img/s per system and the median of native/python pair ratios.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { modelSpecOf, validateConfig } from '../src/config';
import { loadSplit } from '../src/data';
import { CifakeModel } from '../src/model';
import { availableCpus, loadNative } from '../src/native';
import { makeImages } from '../test/helpers';
import { environmentLine, median, runBench, writeBenchReport } from './lib';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const N = Number(args.get('images') ?? 90000);
const EPOCHS = Number(args.get('epochs') ?? 1);
const ROUNDS = Number(args.get('rounds') ?? 2);
const WARMUP = Number(args.get('warmup') ?? 2000);
const MODELS = (args.get('models') ?? 'original,lightweight,hoc').split(',');
const BATCHES = (args.get('batches') ?? '32,256').split(',').map(Number);
const SYSTEMS = (args.get('systems') ?? 'native,nchw,python').split(',') as System[];
const THREADS = Number(args.get('threads') ?? availableCpus());
const PYTHON = args.get('python') ?? '/usr/bin/python3';
const OUT = args.get('out');
const zip = process.env.CIFAKE_ZIP ?? path.resolve(__dirname, '../../shared/data/cifake-dev.zip');
// The addon's mallopt at load (native/addon.cc), as environment variables glibc reads at startup.
const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: String(256 << 20), MALLOC_TRIM_THRESHOLD_: String(1 << 30) };

type System = 'native' | 'nchw' | 'python';

async function data(): Promise<{ images: Uint8Array; labels: Uint8Array; source: string }> {
  if (fs.existsSync(zip)) {
    const s = await loadSplit(zip, { split: 'train', limit: Math.ceil(N / 2), seed: 1 });
    return { images: s.images.subarray(0, N * 3072), labels: s.labels.subarray(0, N), source: `CIFAKE train (${zip})` };
  }
  const g = makeImages(N, 1);
  return { ...g, source: 'generated images (no CIFAKE zip found)' };
}

async function nativeRun(family: string, batch: number, channelsLast: boolean, images: Uint8Array, labels: Uint8Array): Promise<number[]> {
  const config = validateConfig({ model: { family } });
  const m = CifakeModel.create(modelSpecOf(config.model), { device: 'cpu', seed: 0, threads: THREADS, channelsLast });
  try {
    await m.setData('warmup', images.subarray(0, WARMUP * 3072), labels.subarray(0, WARMUP));
    await m.trainEpoch({ data: 'warmup', batchSize: batch, epoch: 0 });
    await m.setData('train', images, labels);
    const out: number[] = [];
    for (let e = 1; e <= EPOCHS; e++) out.push((await m.trainEpoch({ data: 'train', batchSize: batch, epoch: e })).imagesPerSec);
    return out;
  } finally {
    m.dispose();
  }
}

function pythonEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...MALLOC_ENV };
}

function pythonRun(family: string, batch: number, file: string): number[] {
  const argv = ['--model', family, '--batch', String(batch), '--images', String(N), '--epochs', String(EPOCHS), '--warmup', String(WARMUP), '--threads', String(THREADS), '--data', file];
  const out = execFileSync(PYTHON, [path.join(__dirname, 'train_throughput.py'), ...argv], { encoding: 'utf8', env: pythonEnv() });
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).images_per_sec as number);
}

async function main() {
  const info = loadNative().info(); // sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_WAIT_POLICY before Python inherits them
  const d = await data();
  const file = path.join(os.tmpdir(), `cifake-bench-${process.pid}.u8`);
  fs.writeFileSync(file, Buffer.concat([d.images, d.labels]));
  const pyVersion = execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  const pe = pythonEnv();
  const header = [
    `data: ${N} images from ${d.source}; ${EPOCHS} timed epoch(s) after a ${WARMUP}-image warm-up epoch; ${ROUNDS} rounds, systems alternating (${SYSTEMS.join(', ')}), first system rotating`,
    `both sides: ${THREADS} intra-op threads; OMP_NUM_THREADS=${pe.OMP_NUM_THREADS}, OPENBLAS_NUM_THREADS=${pe.OPENBLAS_NUM_THREADS}, OMP_WAIT_POLICY=${pe.OMP_WAIT_POLICY}; glibc malloc: addon mallopt, Python MALLOC_MMAP_THRESHOLD_=${MALLOC_ENV.MALLOC_MMAP_THRESHOLD_} MALLOC_TRIM_THRESHOLD_=${MALLOC_ENV.MALLOC_TRIM_THRESHOLD_}`,
    `native: libtorch ${info.torchVersion}; python: torch ${pyVersion} (${PYTHON}); ${os.cpus()[0]?.model ?? '?'}; ${environmentLine()}`,
  ];
  for (const h of header) console.error(h);
  const rows: string[] = [];
  const results: unknown[] = [];
  try {
    for (const family of MODELS)
      for (const batch of BATCHES) {
        const by: Record<System, number[]> = { native: [], nchw: [], python: [] };
        for (let r = 0; r < ROUNDS; r++) {
          for (let k = 0; k < SYSTEMS.length; k++) {
            const s = SYSTEMS[(k + r) % SYSTEMS.length];
            by[s].push(...(s === 'python' ? pythonRun(family, batch, file) : await nativeRun(family, batch, s === 'native', d.images, d.labels)));
          }
          console.error(`${family} b${batch} round ${r + 1}: ${SYSTEMS.map((s) => `${s} ${Math.round(median(by[s]))}`).join(', ')} img/s`);
        }
        const ratio = (s: System) => {
          if (!by[s].length || !by.python.length) return '-';
          const q = by[s].map((x, i) => x / by.python[i]);
          return `${median(q).toFixed(2)}x (${Math.min(...q).toFixed(2)}-${Math.max(...q).toFixed(2)})`;
        };
        const med = (s: System) => (by[s].length ? String(Math.round(median(by[s]))) : '-');
        rows.push(`| ${family} | ${batch} | ${med('native')} | ${med('nchw')} | ${med('python')} | ${ratio('native')} | ${ratio('nchw')} |`);
        results.push({ family, batch, imagesPerSec: by });
      }
  } finally {
    fs.rmSync(file, { force: true });
  }
  const table = [
    '| model | batch | native channels-last img/s | native NCHW img/s | Python img/s | channels-last / Python (range) | NCHW / Python (range) |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ];
  const md = [...header.map((h) => `<!-- ${h} -->`), `load average at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`, '', ...table].join('\n');
  console.log(md);
  if (OUT) writeBenchReport(OUT, 'train-throughput', md, { header, results });
}

runBench(main);

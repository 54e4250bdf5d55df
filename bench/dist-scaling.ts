// Data-parallel scaling: `cifake train` with 1 rank vs `--nproc N` ranks (c10d/Gloo over loopback),
// the same global batch, the same threads per rank, alternating in one run. Usage:
//   npx tsx bench/dist-scaling.ts [--model hoc] [--limit 10000] [--nproc 2] [--threads 1] [--repeats 3] [--batch 32]
// Each run trains 2 epochs; epoch 2's figures are used (epoch 1 warms up). Prints a markdown table of
// medians: images/s, scaling efficiency (speedup / ranks) and the collectives' share of rank 0's
// epoch time (all-reduce of gradients, broadcast of BN statistics, including waiting for the slower rank).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, runBench } from './lib';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const MODEL = args.get('model') ?? 'hoc';
const LIMIT = Number(args.get('limit') ?? 10000);
const NPROC = Number(args.get('nproc') ?? 2);
const THREADS = Number(args.get('threads') ?? 1);
const REPEATS = Number(args.get('repeats') ?? 3);
const BATCH = Number(args.get('batch') ?? 32);
const ROOT = path.resolve(__dirname, '..');
const zip = process.env.CIFAKE_DATA ?? process.env.CIFAKE_ZIP ?? path.resolve(ROOT, '../shared/data/cifake-dev.zip');
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-dist-bench-'));

interface EpochFigures {
  imagesPerSec: number;
  seconds: number;
  commSeconds: number;
}

function run(nproc: number, k: number): EpochFigures {
  const cli = path.join(ROOT, 'dist', 'bin', 'cifake.js');
  const cmd = ['train', '--model', MODEL, '--data', zip, '--limit', String(LIMIT), '--epochs', '2', '--no-early-stopping', '--batch-size', String(BATCH)];
  cmd.push('--threads', String(THREADS), '--device', 'cpu', '--out-dir', outDir, '--name', `r${nproc}-${k}`, '--json');
  if (nproc > 1) cmd.push('--nproc', String(nproc));
  const r = spawnSync(process.execPath, [cli, ...cmd], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cifake train (${nproc} ranks) failed:\n${r.stderr}`);
  const epochs = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((e) => e.event === 'epoch');
  const last = epochs.at(-1);
  return { imagesPerSec: last.imagesPerSec, seconds: last.seconds, commSeconds: last.commSeconds ?? 0 };
}

function main() {
  if (!fs.existsSync(zip)) {
    console.log(`skipped: no CIFAKE zip at ${zip} (set CIFAKE_DATA)`);
    return;
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'bin', 'cifake.js'))) throw new Error('build the TypeScript first: npx tsc -p tsconfig.json');
  const one: EpochFigures[] = [];
  const many: EpochFigures[] = [];
  for (let k = 0; k < REPEATS; k++) {
    // Alternate the order so drift of the machine's speed hits both sides alike.
    for (const n of k % 2 === 0 ? [1, NPROC] : [NPROC, 1]) {
      const f = run(n, k);
      (n === 1 ? one : many).push(f);
      console.error(`repeat ${k + 1}, ${n} rank(s): ${Math.round(f.imagesPerSec)} img/s, ${f.seconds.toFixed(1)} s, collectives ${f.commSeconds.toFixed(1)} s`);
    }
  }
  const ips1 = median(one.map((f) => f.imagesPerSec));
  const ipsN = median(many.map((f) => f.imagesPerSec));
  const speedups = many.map((f, i) => f.imagesPerSec / one[i].imagesPerSec);
  const share = median(many.map((f) => f.commSeconds / f.seconds));
  const train = Math.round(LIMIT * 2 * 0.9);
  console.log(`\n${MODEL}, ${train} train images (limit ${LIMIT}/class, 10% val), global batch ${BATCH}, ${THREADS} thread(s) per rank, ${os.cpus().length} CPUs, median of ${REPEATS}\n`);
  console.log('| ranks | img/s (epoch 2) | speedup | scaling efficiency | collectives share of epoch |');
  console.log('|---|---|---|---|---|');
  console.log(`| 1 | ${Math.round(ips1)} | 1.00x | 100% | - |`);
  console.log(
    `| ${NPROC} | ${Math.round(ipsN)} | ${median(speedups).toFixed(2)}x (range ${Math.min(...speedups).toFixed(2)}-${Math.max(...speedups).toFixed(2)}) | ` +
      `${((median(speedups) / NPROC) * 100).toFixed(0)}% | ${(share * 100).toFixed(1)}% |`,
  );
  fs.rmSync(outDir, { recursive: true, force: true });
}

runBench(main);

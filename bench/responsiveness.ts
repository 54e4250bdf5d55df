// Timing goals that the tests check only as behaviour (they do not time anything):
//   - the event loop stays responsive while a model trains (lag p99 during an epoch: goal < 50 ms);
//   - a rendezvous that a rank never joins fails soon after its timeout (1.5 s timeout: goal <= 10 s);
//   - a killed rank ends the job soon (--dist-timeout 20: rank 0 exits within goal <= 25 s of the kill).
//   OMP_NUM_THREADS=1 npx tsx bench/responsiveness.ts [--skip-ranks] [--out bench/out]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

import { synthesize } from '../src/data/synth';
import { CifakeModel } from '../src/model';
import { loadNative } from '../src/native';
import { DistContext } from '../src/parallel/group';
import { freePort } from '../src/parallel/launch';
import { makeImages } from '../test/helpers';
import { goalLine, runBench, writeBenchReport } from './lib';

const ROOT = path.resolve(__dirname, '..');
const HOC = { family: 'hoc', convFilters: [16, 32], dense: [64], dropout: 0.5, padding: 'same', batchNorm: true, hoc: true, fusedHoc: true } as const;

/** p99 of the event-loop delay (ms) while one HOC epoch over 1024 images trains natively. */
async function epochLag(): Promise<number> {
  const { images, labels } = makeImages(1024, 4);
  const m = CifakeModel.create({ ...HOC, convFilters: [...HOC.convFilters], dense: [...HOC.dense] }, { device: 'cpu', seed: 1, threads: 1 });
  try {
    await m.setData('train', images, labels);
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    await m.trainEpoch({ data: 'train', batchSize: 32 });
    h.disable();
    return h.percentile(99) / 1e6;
  } finally {
    m.dispose();
  }
}

/** Seconds until a rendezvous with a missing rank fails (timeout 1.5 s). */
async function rendezvousFailure(): Promise<number> {
  const port = await freePort();
  const t0 = Date.now();
  await DistContext.connect({ rank: 0, worldSize: 2, localRank: 0, localWorldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 1500 }).catch(() => null);
  return (Date.now() - t0) / 1000;
}

/** Seconds from killing rank 1 (after rank 0's first epoch) until rank 0 exits. */
async function killedRank(tmp: string): Promise<number> {
  const data = path.join(tmp, 'data');
  await synthesize(data, { trainPerClass: 120, testPerClass: 20, seed: 8 });
  const port = await freePort();
  const env = (rank: number) => ({ ...process.env, CIFAKE_CACHE_DIR: path.join(tmp, 'cache'), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank) });
  const args = ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts'), 'train', '--preset', 'lightweight', '--epochs', '30', '--no-early-stopping', '--name', 'killed', '--threads', '1', '--dist-timeout', '20'];
  const common = ['--data', data, '--out-dir', path.join(tmp, 'runs'), '--device', 'cpu', '--limit', '120', '--json'];
  const ranks = [0, 1].map((rank) => spawn(process.execPath, [...args, ...common], { cwd: ROOT, env: env(rank), stdio: ['ignore', 'pipe', 'ignore'] }));
  const exit0 = new Promise<void>((resolve) => ranks[0].on('exit', () => resolve()));
  await new Promise<void>((resolve) => {
    readline.createInterface({ input: ranks[0].stdout! }).on('line', (line) => line.includes('"event":"epoch"') && resolve());
    void exit0.then(resolve);
  });
  const killedAt = Date.now();
  ranks[1].kill('SIGKILL');
  await exit0;
  return (Date.now() - killedAt) / 1000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'skip-ranks': { type: 'boolean' }, out: { type: 'string', default: path.join(__dirname, 'out') } } });
  const lag = await epochLag();
  const lines = [goalLine('event-loop lag p99 during a HOC epoch', lag, 'ms', '<=', 50)];
  const results: Record<string, number> = { lagP99Ms: lag };
  if (!values['skip-ranks'] && loadNative().info().distributed) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-bench-ranks-'));
    try {
      results.rendezvousFailureSeconds = await rendezvousFailure();
      lines.push(goalLine('rendezvous with a missing rank fails after (timeout 1.5 s)', results.rendezvousFailureSeconds, 's', '<=', 10));
      results.killedRankSeconds = await killedRank(tmp);
      lines.push(goalLine('rank 0 exits after its peer is killed (--dist-timeout 20)', results.killedRankSeconds, 's', '<=', 25));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const md = lines.join('\n');
  console.log(md);
  writeBenchReport(values.out!, 'responsiveness', md, results);
}

runBench(main);

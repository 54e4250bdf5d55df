// Load test of `cifake serve` (src/serve): POST /classify with a real 32x32 JPEG at several concurrencies
// (autocannon), then RSS across 2 x 10k requests. Server and client share this process, on
// 127.0.0.1 only; every step is bounded (duration per level, request count for the memory run), then
// 4x the best sustained rate against a queue limit of 64 (share shed with 503, latency, RSS).
//
//   npx tsx bench/serve-load.ts [runDirOrCheckpoint] [--duration 10] [--levels 1,16,64]
//       [--requests 10000] [--memory-max-seconds 150] [--threads N] [--image photo.jpg] [--max-wait-ms 2]
//   (node --expose-gc --import tsx bench/serve-load.ts ... collects garbage between memory readings)
//
// On a shared or busy CPU, libtorch's OpenMP threads spin-wait: try --threads 1 or
// OMP_WAIT_POLICY=PASSIVE (several times the throughput when the cores are oversubscribed).
//
// Without a model, a small model of the default family (hoc) is trained for 1 epoch on generated images (about a
// minute on 2 cores). Prints a markdown table.
import autocannon from 'autocannon';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

import { createServer } from '../src/serve';
import { Classifier, train } from '../src';
import { renderSynthImage, synthesize } from '../src/data/synth';
import { runBench } from './lib';

const mb = (bytes: number) => bytes / 2 ** 20;

async function tinyModel(dir: string): Promise<string> {
  const data = path.join(dir, 'data');
  console.error('no model given: generating 2 x 300 images and training the default (hoc) model for 1 epoch...');
  await synthesize(data, { trainPerClass: 300, testPerClass: 50 });
  const r = await train({ data, epochs: 1, outDir: path.join(dir, 'runs'), name: 'bench' });
  console.error(`trained: ${r.runDir} (val accuracy ${r.metrics.val.accuracy.toFixed(3)})`);
  return r.runDir;
}

/** One autocannon run; stopped after maxSeconds whatever its duration or amount. */
function fire(opts: autocannon.Options, maxSeconds = 300): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(result);
    });
    const timer = setTimeout(() => instance.stop(), maxSeconds * 1000);
  });
}

/** What the load runs hit: the endpoint, the request and the check of every result. */
interface Target {
  url: string;
  request: { method: 'POST'; body: Buffer; headers: Record<string, string> };
  check: (r: autocannon.Result, what: string) => void;
}

/** Requests/s and latency per concurrency level, with the batch size the classifier coalesced. */
async function latencyTable(t: Target, clf: Classifier, levels: number[], duration: number): Promise<number[]> {
  const rows: string[] = [];
  const sustained: number[] = [];
  for (const c of levels) {
    const s0 = clf.stats;
    const r = await fire({ url: t.url, ...t.request, connections: c, duration });
    t.check(r, `concurrency ${c}`);
    sustained.push(r.requests.average);
    const s1 = clf.stats;
    const calls = s1.nativeCalls - s0.nativeCalls;
    rows.push(
      `| ${c} | ${r.requests.average.toFixed(0)} | ${r.latency.p50.toFixed(1)} | ${r.latency.p99.toFixed(1)} | ${r.latency.max.toFixed(1)} | ` +
        `${calls ? ((s1.images - s0.images) / calls).toFixed(1) : '-'} | ${r.requests.total} |`,
    );
  }
  console.log(`\n### POST /classify, ${duration} s per level\n`);
  console.log('| concurrency | requests/s | p50 ms | p99 ms | max ms | images per native call | requests |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
  return sustained;
}

/** Offered load at 4x the best sustained rate on 256 connections against a queue limit of 64: the share shed with 503, latency, RSS. */
async function overloadRun(t: Target, best: number, duration: number): Promise<void> {
  global.gc?.();
  const r0 = process.memoryUsage().rss;
  const over = await fire({ url: t.url, ...t.request, connections: 256, duration, overallRate: Math.round(4 * best) });
  global.gc?.();
  const r1 = process.memoryUsage().rss;
  const answered = over['2xx'] + over.non2xx;
  console.log(`\n### Overload: ${Math.round(4 * best)} requests/s offered (4x the best sustained ${best.toFixed(0)}/s), 256 connections, maxQueue 64, ${duration} s\n`);
  console.log('| answered | 200 | 503 (shed) | share shed | p50 ms (all) | p99 ms (all) | errors / timeouts | RSS before MiB | RSS after MiB |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(`| ${answered} | ${over['2xx']} | ${over.non2xx} | ${answered ? ((100 * over.non2xx) / answered).toFixed(1) : '-'}% | ${over.latency.p50.toFixed(1)} | ${over.latency.p99.toFixed(1)} | ${over.errors} / ${over.timeouts} | ${mb(r0).toFixed(1)} | ${mb(r1).toFixed(1)} |`);
}

/** RSS after warm-up, after `amount` requests, after `amount` more (the second delta shows a leak; the first includes allocator and JIT warm-up). */
async function memoryRuns(t: Target, amount: number, cap: number): Promise<void> {
  global.gc?.();
  const m0 = process.memoryUsage();
  const first = await fire({ url: t.url, ...t.request, connections: 16, amount }, cap);
  t.check(first, 'memory run 1');
  global.gc?.();
  const m1 = process.memoryUsage();
  const second = await fire({ url: t.url, ...t.request, connections: 16, amount }, cap);
  t.check(second, 'memory run 2');
  global.gc?.();
  const m2 = process.memoryUsage();
  const done = `${first.requests.total} + ${second.requests.total}${first.requests.total < amount || second.requests.total < amount ? ` (stopped at ${cap} s each)` : ''}`;
  console.log(`\n### Memory over ${done} requests (concurrency 16${global.gc ? ', after gc()' : ', run with node --expose-gc for gc() between runs'})\n`);
  console.log('| | before | after 1st | after 2nd | 2nd - 1st |');
  console.log('|---|---:|---:|---:|---:|');
  for (const k of ['rss', 'heapUsed', 'external'] as const)
    console.log(`| ${k} MiB | ${mb(m0[k]).toFixed(1)} | ${mb(m1[k]).toFixed(1)} | ${mb(m2[k]).toFixed(1)} | ${(mb(m2[k]) - mb(m1[k])).toFixed(1)} |`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      duration: { type: 'string', default: '10' },
      levels: { type: 'string', default: '1,16,64' },
      requests: { type: 'string', default: '10000' },
      threads: { type: 'string' },
      image: { type: 'string' },
      'max-wait-ms': { type: 'string' },
      'memory-max-seconds': { type: 'string', default: '150' },
    },
  });
  const duration = Number(values.duration);
  const levels = values.levels.split(',').map(Number);
  const amount = Number(values.requests);
  if (!(duration > 0 && duration <= 120)) throw new Error('--duration: seconds in (0, 120]');
  if (!levels.every((c) => Number.isInteger(c) && c >= 1 && c <= 1024)) throw new Error('--levels: integers in 1..1024');
  if (!(Number.isInteger(amount) && amount >= 100 && amount <= 1_000_000)) throw new Error('--requests: an integer in 100..1000000');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-serve-load-'));
  try {
    const model = positionals[0] ?? (await tinyModel(tmp));
    const threads = values.threads ? Number(values.threads) : undefined;
    const maxWaitMs = values['max-wait-ms'] !== undefined ? Number(values['max-wait-ms']) : undefined;
    const clf = await Classifier.load(model, { threads, maxWaitMs });
    const body = values.image
      ? fs.readFileSync(values.image)
      : await sharp(renderSynthImage('REAL', 12345), { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
    const meta = await sharp(body).metadata();
    const svc = createServer(clf, { log: () => {}, maxQueue: 64 });
    const base = await svc.listen(0, '127.0.0.1');
    const url = `${base}/classify`;
    const request = { method: 'POST' as const, body, headers: { 'content-type': `image/${meta.format}` } };
    const check = (r: autocannon.Result, what: string) => {
      if (r.non2xx || r.errors || r.timeouts) throw new Error(`${what}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    };

    const i = clf.info;
    console.log(
      `model: ${i.family} (${i.parameters} parameters) on ${i.device}, threads ${threads ?? `default (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS})`}` +
        `${process.env.OMP_WAIT_POLICY ? `, OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}` : ''}; ${os.availableParallelism()} CPUs, load average ${os.loadavg()[0].toFixed(1)}; ` +
        `body: ${meta.width}x${meta.height} ${meta.format}, ${body.length} bytes; node ${process.version}`,
    );
    await fire({ url, ...request, connections: 4, duration: 1 }); // warm-up

    const sustained = await latencyTable({ url, request, check }, clf, levels, duration);
    await memoryRuns({ url, request, check }, amount, Number(values['memory-max-seconds']));
    await overloadRun({ url, request, check }, Math.max(...sustained), duration);

    await svc.close(1000);
    clf.dispose();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runBench(main);

// OpenMP wait policy: how long idle OpenMP threads spin before sleeping, measured where it
// matters here. With OMP_WAIT_POLICY=ACTIVE (and libgomp's default spin count when unset) the
// team's threads spin at every barrier; on a machine whose cores are busy with other work the
// spinning competes with that work and with the team's own master.
//
//   npx tsx bench/omp-wait.ts [--repeats 3] [--predictions 2000] [--images 2048] [--threads 2]
//       [--policies unset,passive,active,spin10k] [--loads idle,busy] [--out bench/out]
//
// Each measurement is a fresh child process (libgomp reads the variables once, when it loads)
// with the policy in its environment:
//   unset:   libgomp's default spin count (what cifake-torch ran with before it defaulted to passive);
//   passive: OMP_WAIT_POLICY=PASSIVE;  active: OMP_WAIT_POLICY=ACTIVE;
//   spin10k: GOMP_SPINCOUNT=10000 (a short spin, then sleep).
// It times (a) --predictions single-image predictLogits calls (a service's pattern) and (b) one
// training epoch of the 'hoc' preset's model on --images generated images (batch 32), both with
// --threads intra-op threads. "busy": a second process trains beside it the whole time (its own
// threads = all CPUs, default policy). Policies are alternated within each repeat; the table
// gives medians (and min-max). The machine's load average is logged: "idle" is only as idle as
// the machine is. Writes bench/out/omp-wait-<time>.{md,json}.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { modelSpecOf, resolveConfig } from '../src/config';
import { CifakeModel } from '../src/model';

const POLICIES: Record<string, Record<string, string>> = {
  // libgomp's own default (300,000 spins before sleeping); spelled out because cifake-torch now
  // sets OMP_WAIT_POLICY=PASSIVE when neither variable is set.
  unset: { GOMP_SPINCOUNT: '300000' },
  passive: { OMP_WAIT_POLICY: 'PASSIVE' },
  active: { OMP_WAIT_POLICY: 'ACTIVE' },
  spin10k: { GOMP_SPINCOUNT: '10000' },
};

function images(n: number): { images: Uint8Array; labels: Uint8Array } {
  const img = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  let s = 12345;
  for (let i = 0; i < img.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    img[i] = s >>> 24;
  }
  for (let i = 0; i < n; i++) labels[i] = i % 2;
  return { images: img, labels };
}

/** Child: one measurement; prints { predictSeconds, epochSeconds }. */
async function child(predictions: number, n: number, threads: number): Promise<void> {
  const spec = modelSpecOf(resolveConfig({ preset: 'hoc' }).model);
  const m = CifakeModel.create(spec, { device: 'cpu', seed: 1, threads });
  const data = images(n);
  for (let i = 0; i < 20; i++) await m.predictLogits(data.images.subarray(0, 3072)); // warm-up
  let t = performance.now();
  for (let i = 0; i < predictions; i++) await m.predictLogits(data.images.subarray((i % n) * 3072, (i % n + 1) * 3072));
  const predictSeconds = (performance.now() - t) / 1000;
  await m.setData('train', data.images, data.labels);
  t = performance.now();
  const r = await m.trainEpoch({ data: 'train', batchSize: 32 });
  process.stdout.write(`${JSON.stringify({ predictSeconds, epochSeconds: (performance.now() - t) / 1000, images: r.images })}\n`);
  await m.disposeAsync();
}

/** Background load: trains forever until killed. */
async function load(): Promise<void> {
  const spec = modelSpecOf(resolveConfig({ preset: 'hoc' }).model);
  const m = CifakeModel.create(spec, { device: 'cpu', seed: 2 });
  const data = images(4096);
  await m.setData('train', data.images, data.labels);
  for (let epoch = 0; ; epoch++) await m.trainEpoch({ data: 'train', batchSize: 32, epoch });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function measure(policy: string, args: string[]): { predictSeconds: number; epochSeconds: number } {
  const env = { ...process.env };
  delete env.OMP_WAIT_POLICY;
  delete env.GOMP_SPINCOUNT;
  Object.assign(env, POLICIES[policy]);
  const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', __filename, '--child', ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child (${policy}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean', default: false },
      load: { type: 'boolean', default: false },
      repeats: { type: 'string', default: '3' },
      predictions: { type: 'string', default: '2000' },
      images: { type: 'string', default: '2048' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      policies: { type: 'string', default: 'unset,passive,active,spin10k' },
      loads: { type: 'string', default: 'idle,busy' },
      out: { type: 'string', default: 'bench/out' },
    },
  });
  if (values.child) return child(Number(values.predictions), Number(values.images), Number(values.threads));
  if (values.load) return load();
  const policies = values.policies.split(',');
  const childArgs = ['--predictions', values.predictions, '--images', values.images, '--threads', values.threads];
  const rows: { load: string; policy: string; predict: number[]; epoch: number[]; loadavg: number[] }[] = [];
  for (const loadKind of values.loads.split(',')) {
    let bg: ChildProcess | null = null;
    if (loadKind === 'busy') {
      bg = spawn(process.execPath, ['--require', 'tsx/cjs', __filename, '--load'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 3000));
    }
    try {
      const byPolicy = new Map(policies.map((p) => [p, { load: loadKind, policy: p, predict: [] as number[], epoch: [] as number[], loadavg: [] as number[] }]));
      for (let rep = 0; rep < Number(values.repeats); rep++)
        for (const p of policies) {
          const m = measure(p, childArgs);
          const row = byPolicy.get(p)!;
          row.predict.push(m.predictSeconds);
          row.epoch.push(m.epochSeconds);
          row.loadavg.push(os.loadavg()[0]);
          console.error(`${loadKind} ${p}: ${values.predictions} predictions ${m.predictSeconds.toFixed(2)} s, epoch ${m.epochSeconds.toFixed(2)} s (load ${os.loadavg()[0].toFixed(1)})`);
        }
      rows.push(...byPolicy.values());
    } finally {
      bg?.kill('SIGKILL');
    }
  }
  const fmt = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
  const md = [
    `# OpenMP wait policy (${os.cpus().length} CPUs, --threads ${values.threads}, ${values.repeats} repeats)`,
    '',
    `| load | policy | ${values.predictions} single-image predictions, s | epoch of ${values.images} images, s | load avg |`,
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.load} | ${r.policy} | ${fmt(r.predict)} | ${fmt(r.epoch)} | ${median(r.loadavg).toFixed(1)} |`),
  ].join('\n');
  console.log(md);
  fs.mkdirSync(values.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(values.out, `omp-wait-${stamp}.md`), `${md}\n`);
  fs.writeFileSync(path.join(values.out, `omp-wait-${stamp}.json`), JSON.stringify(rows, null, 2));
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});

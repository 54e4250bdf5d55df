// Data-parallel training on c10d/Gloo over loopback: collectives, equivalence with one process,
// the CLI launcher, a rank that dies, a rank that never comes, and resume.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import { synthesize } from '../src/data/synth';
import { DistContext } from '../src/parallel/group';
import { freePort } from '../src/parallel/launch';
import { distOptionsFrom, type DistOptions } from '../src/parallel/options';
import { CifakeModel } from '../src/model';
import { loadNative, type NativeModelSpec } from '../src/native';
import { readHistory } from '../src/run';
import { makeImages } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const distributed = loadNative().info().distributed;

const ORIGINAL: NativeModelSpec = { family: 'original', convFilters: [32, 32], dense: [64], dropout: 0, padding: 'valid', batchNorm: false, hoc: false, fusedHoc: false };
const LIGHTWEIGHT: NativeModelSpec = { family: 'lightweight', convFilters: [16, 32], dense: [64], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false };

async function twoRanks(timeoutMs = 20_000): Promise<DistContext[]> {
  const port = await freePort();
  const opts = (rank: number): DistOptions => ({ rank, worldSize: 2, localRank: rank, localWorldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs });
  return Promise.all([DistContext.connect(opts(0)), DistContext.connect(opts(1))]);
}

function maxRelDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let worst = 0;
  for (const [name, x] of Object.entries(a)) {
    const y = b[name];
    expect(y, name).to.not.equal(undefined);
    let scale = 1e-6;
    for (const v of x) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / scale);
  }
  return worst;
}

describe('distributed options (torchrun environment)', () => {
  it('is off without WORLD_SIZE or with WORLD_SIZE=1', () => {
    expect(distOptionsFrom({}, {})).to.equal(null);
    expect(distOptionsFrom({}, { WORLD_SIZE: '1', RANK: '0' })).to.equal(null);
  });
  it('reads the torchrun variables, and flags override them', () => {
    const env = { WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node0', MASTER_PORT: '29501' };
    expect(distOptionsFrom({}, env)).to.deep.include({ rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'node0', masterPort: 29501, timeoutMs: 300_000 });
    expect(distOptionsFrom({ rank: 2, masterPort: 1234, distTimeout: 5 }, env)).to.deep.include({ rank: 2, masterPort: 1234, timeoutMs: 5000 });
  });
  it('names the variable that is wrong', () => {
    expect(() => distOptionsFrom({}, { WORLD_SIZE: '2' })).to.throw(/RANK \/ --rank: required/);
    expect(() => distOptionsFrom({}, { WORLD_SIZE: '2', RANK: '2' })).to.throw(/RANK \/ --rank: must be < WORLD_SIZE/);
    expect(() => distOptionsFrom({}, { WORLD_SIZE: 'two', RANK: '0' })).to.throw(/WORLD_SIZE/);
    expect(() => distOptionsFrom({}, { WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '70000' })).to.throw(/MASTER_PORT.*65535/);
  });
});

(distributed ? describe : describe.skip)('data-parallel training (c10d/Gloo on loopback)', function () {
  this.timeout(300_000);

  it('gathers uneven shards in rank order, sums, and shares rank 0\'s bytes', async () => {
    const ranks = await twoRanks();
    try {
      const gathered = await Promise.all([ranks[0].gather(Float32Array.from([1, 2, 3])), ranks[1].gather(Float32Array.from([4, 5]))]);
      for (const g of gathered) expect(Array.from(g)).to.deep.equal([1, 2, 3, 4, 5]);
      const sums = await Promise.all([ranks[0].sum([1, 10]), ranks[1].sum([2, 20])]);
      for (const s of sums) expect(s).to.deep.equal([3, 30]);
      const shared = await Promise.all([ranks[0].shareFromLeader({ runDir: 'runs/x', n: 7 }), ranks[1].shareFromLeader(undefined)]);
      for (const s of shared) expect(s).to.deep.equal({ runDir: 'runs/x', n: 7 });
      expect([ranks[0].shard(5), ranks[1].shard(5)]).to.deep.equal([{ start: 0, end: 2 }, { start: 2, end: 5 }]);
    } finally {
      for (const r of ranks) r.close();
    }
  });

  // 33 images at batch 32: the last global batch has 1 image, so rank 0's slice of it is empty.
  // (Over many steps Adam amplifies rounding noise in near-zero gradient coordinates up to ~lr,
  // so the tolerance is checked on short epochs.)
  for (const n of [33, 192]) {
    it(`2 ranks x 16 images train the same weights as 1 process x 32 (original CNN, ${n} images, 1 epoch)`, async () => {
      const { images, labels } = makeImages(n, 5);
      const single = CifakeModel.create(ORIGINAL, { device: 'cpu', seed: 9, threads: 1 });
      await single.setData('train', images, labels);
      const one = await single.trainEpoch({ data: 'train', batchSize: 32, seed: 4, epoch: 0 });

      const ranks = await twoRanks();
      const models = ranks.map(() => CifakeModel.create(ORIGINAL, { device: 'cpu', seed: 9, threads: 1 }));
      try {
        const results = await Promise.all(
          models.map(async (m, r) => {
            await m.attachGroup(ranks[r].group);
            await m.setData('train', images, labels);
            return m.trainEpoch({ data: 'train', batchSize: 32, seed: 4, epoch: 0 });
          }),
        );
        const [a, b, ref] = await Promise.all([models[0].state(), models[1].state(), single.state()]);
        expect(maxRelDiff(a, b), 'rank 0 vs rank 1').to.equal(0);
        expect(maxRelDiff(a, ref), '2 ranks vs 1 process').to.be.below(1e-4);
        expect(maxRelDiff(a, await (async () => {
          const fresh = CifakeModel.create(ORIGINAL, { device: 'cpu', seed: 9, threads: 1 });
          try { return await fresh.state(); } finally { fresh.dispose(); }
        })()), 'training moved the weights').to.be.above(1e-3);
        for (const r of results) {
          expect(r.images).to.equal(n);
          expect(r.loss).to.be.closeTo(one.loss, 1e-4);
          expect(r.accuracy).to.be.closeTo(one.accuracy, 1e-9);
          expect(r.commSeconds).to.be.above(0);
        }
      } finally {
        for (const m of [...models, single]) m.dispose();
        for (const r of ranks) r.close();
      }
    });
  }

  it('keeps BN running statistics and weights identical on every rank (rank 0\'s statistics, like DDP)', async () => {
    const { images, labels } = makeImages(128, 6);
    const ranks = await twoRanks();
    // Different seeds: broadcastState must make the ranks start equal.
    const models = ranks.map((_, r) => CifakeModel.create(LIGHTWEIGHT, { device: 'cpu', seed: 20 + r, threads: 1 }));
    try {
      await Promise.all(models.map((m, r) => m.attachGroup(ranks[r].group)));
      await Promise.all(models.map((m) => m.broadcastState(0)));
      await Promise.all(models.map((m) => m.setData('train', images, labels)));
      await Promise.all(models.map((m) => m.trainEpoch({ data: 'train', batchSize: 32, seed: 1, epoch: 0, augment: { hflip: true, shift: 2 } })));
      const [a, b] = await Promise.all(models.map((m) => m.state()));
      expect(maxRelDiff(a, b)).to.equal(0);
      expect(Array.from(a['block1.bn.running_mean']).some((v) => v !== 0), 'BN statistics were updated').to.equal(true);
    } finally {
      for (const m of models) m.dispose();
      for (const r of ranks) r.close();
    }
  });

  it('cancelling one rank stops every rank after the same step, with identical weights', async () => {
    const { images, labels } = makeImages(2048, 7);
    const ranks = await twoRanks();
    const models = ranks.map(() => CifakeModel.create(ORIGINAL, { device: 'cpu', seed: 9, threads: 1 }));
    try {
      await Promise.all(models.map((m, r) => m.attachGroup(ranks[r].group)));
      await Promise.all(models.map((m) => m.setData('train', images, labels)));
      const ac = new AbortController();
      const results = await Promise.all(
        models.map((m, r) =>
          m.trainEpoch(
            { data: 'train', batchSize: 32, seed: 2, epoch: 0, progressIntervalMs: 0 },
            { signal: r === 1 ? ac.signal : undefined, onProgress: (p) => r === 1 && p.batch >= 3 && ac.abort() },
          ),
        ),
      );
      for (const r of results) expect(r.cancelled, 'cancelled').to.equal(true);
      expect(results[0].images).to.equal(results[1].images);
      expect(results[0].images).to.be.below(2048);
      const [a, b] = await Promise.all(models.map((m) => m.state()));
      expect(maxRelDiff(a, b)).to.equal(0);
    } finally {
      for (const m of models) m.dispose();
      for (const r of ranks) r.close();
    }
  });

  it('a rank that never joins fails the rendezvous, naming how many came', async () => {
    const port = await freePort();
    const err = await DistContext.connect({ rank: 0, worldSize: 2, localRank: 0, localWorldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 1500 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/rendezvous timed out after 1\.5 s: 1 of 2 ranks joined/); // how soon: bench/responsiveness.ts
  });
});

// ---- the CLI: --nproc, torchrun-style env, a killed rank, resume ----

(distributed ? describe : describe.skip)('cifake train with ranks (CLI)', function () {
  this.timeout(600_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-dist-'));
  const data = path.join(tmp, 'data');
  const out = path.join(tmp, 'runs');
  const env = { ...process.env, CIFAKE_CACHE_DIR: path.join(tmp, 'cache') };
  const bin = ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts')];
  const common = ['--data', data, '--out-dir', out, '--device', 'cpu', '--limit', '120', '--json'];

  before(async () => {
    await synthesize(data, { trainPerClass: 120, testPerClass: 20, seed: 8 });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('--nproc 2 trains one run: rank 0 writes it, and eval reproduces its test metrics', () => {
    const r = spawnSync(process.execPath, [...bin, 'train', '--preset', 'lightweight', '--epochs', '2', '--name', 'nproc2', '--nproc', '2', ...common], { cwd: ROOT, env, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const result = lines.find((l) => l.event === 'result');
    expect(result.worldSize).to.equal(2);
    const epochs = lines.filter((l) => l.event === 'epoch');
    expect(epochs).to.have.length(2);
    for (const e of epochs) expect(e.commSeconds).to.be.a('number');
    const dir = path.join(out, 'nproc2');
    expect(readHistory(dir)).to.have.length(2);
    const ev = spawnSync(process.execPath, [...bin, 'eval', '--model', dir, '--data', data, '--device', 'cpu', '--json'], { cwd: ROOT, env, encoding: 'utf8' });
    expect(ev.status, ev.stderr).to.equal(0);
    expect(JSON.parse(ev.stdout).metrics.accuracy).to.equal(result.metrics.test.accuracy);
  });

  it('a killed rank ends the job with a clear error, and --resume finishes it', async () => {
    const port = await freePort();
    const rankEnv = (rank: number) => ({ ...env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), LOCAL_RANK: String(rank) });
    const args = [...bin, 'train', '--preset', 'lightweight', '--epochs', '30', '--no-early-stopping', '--name', 'killed', '--threads', '1', '--dist-timeout', '20', ...common];
    const start = (rank: number) => spawn(process.execPath, args, { cwd: ROOT, env: rankEnv(rank), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = (c: ChildProcess) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      let stderr = '';
      c.stderr?.on('data', (d) => (stderr += d));
      c.on('exit', (code) => resolve({ code, stderr }));
    });
    const rank0 = start(0);
    const rank1 = start(1);
    const done0 = exited(rank0);
    const done1 = exited(rank1);
    // Kill rank 1 once rank 0 has finished (and checkpointed) its first epoch.
    await new Promise<void>((resolve) => {
      readline.createInterface({ input: rank0.stdout! }).on('line', (line) => {
        if (line.includes('"event":"epoch"')) resolve();
      });
      void done0.then(() => resolve());
    });
    rank1.kill('SIGKILL'); // how soon rank 0 notices: bench/responsiveness.ts
    const [r0] = await Promise.all([done0, done1]);
    expect(r0.code, r0.stderr).to.equal(1);
    expect(r0.stderr).to.match(/distributed: .*failed on rank 0 of 2/);
    const dir = path.join(out, 'killed');
    const before = readHistory(dir).length;
    expect(before).to.be.within(1, 29);

    const resumed = spawnSync(process.execPath, [...bin, 'train', '--resume', dir, '--nproc', '2', '--json'], { cwd: ROOT, env, encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).to.equal(0);
    const history = readHistory<{ epoch: number }>(dir);
    expect(history.map((h) => h.epoch)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});

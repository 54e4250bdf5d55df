// Sweeps: the paper grid's expansion, user grids (parsing, product, names, errors) and small
// end-to-end runs on a generated CIFAKE-layout folder (resume, failures, parallel threads).
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { main } from '../bin/cifake';
import { ConfigError } from '../src/config';
import { synthesize } from '../src/data/synth';
import {
  canonicalJson,
  expandGrid,
  GridError,
  loadGridFile,
  paperGrid,
  paperStage1,
  paperStage2,
  parseGrid,
  planSweep,
  readTrialRecords,
  runSweep,
  SWEEP_FILES,
  trialFilter,
  trialNames,
  type GridSpec,
  type SweepEvent,
  type SweepResult,
} from '../src/sweep';
import { RUN_FILES } from '../src/run';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-sweep-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function throwsGrid(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a GridError').to.be.instanceOf(GridError);
  expect(err).to.be.instanceOf(ConfigError); // exit code 2 in the CLI
  expect((err as Error).message).to.match(pattern);
}

describe('sweep', () => {
  describe('paper grid', () => {
    it('expands to 36 distinct configs: 12 extractors without dense layers, then 24 heads on the stage-2 extractor', () => {
      const plan = planSweep({ grid: 'paper', paperExtractor: true, outDir: tmp });
      expect(plan.trials).to.have.length(36);
      expect(plan.stage2).to.deep.equal({ extractor: { layers: 2, filters: 32 }, source: 'paper' });
      const configs = plan.trials.map((t) => t.config);
      expect(configs.every((c) => c !== null)).to.equal(true);
      expect(new Set(plan.trials.map((t) => t.name)).size).to.equal(36);
      expect(new Set(configs.map((c) => canonicalJson({ ...c, name: null }))).size).to.equal(36);

      const s1 = plan.trials.filter((t) => t.stage === 1);
      const s2 = plan.trials.filter((t) => t.stage === 2);
      expect(s1).to.have.length(12);
      expect(s2).to.have.length(24);
      expect(plan.trials.slice(0, 12)).to.deep.equal(s1); // stage 1 runs first
      const extractors = s1.map((t) => `${t.config!.model.convFilters.length}x${t.config!.model.convFilters[0]}`).sort();
      expect(extractors).to.deep.equal(['1x128', '1x16', '1x32', '1x64', '2x128', '2x16', '2x32', '2x64', '3x128', '3x16', '3x32', '3x64']);
      for (const t of s1) {
        expect(t.config!.model.dense).to.deep.equal([]);
        expect(new Set(t.config!.model.convFilters).size).to.equal(1);
      }
      const heads = s2.map((t) => `${t.config!.model.dense.length}x${t.config!.model.dense[0]}`);
      expect(new Set(heads).size).to.equal(24);
      for (const t of s2) {
        expect(t.config!.model.convFilters).to.deep.equal([32, 32]);
        expect(new Set(t.config!.model.dense).size).to.equal(1);
        expect(t.config!.model.dense.length).to.be.within(1, 3);
      }
      // the paper-cnn protocol, one seed for all
      for (const c of configs) {
        expect(c!.model.family).to.equal('original');
        expect(c!.optimizer).to.deep.include({ name: 'adam', lr: 1e-3 });
        expect(c!.batchSize).to.equal(32);
        expect(c!.epochs).to.equal(30);
        expect(c!.earlyStopping).to.equal(null);
        expect(c!.seed).to.equal(42);
        expect(c!.outDir).to.equal(path.join(tmp, 'paper'));
      }
      expect(s1.map((t) => t.name).slice(0, 5)).to.deep.equal(['s1-conv1x16', 's1-conv1x32', 's1-conv1x64', 's1-conv1x128', 's1-conv2x16']);
      expect(s2[0].name).to.equal('s2-conv2x32-dense1x32');
      expect(s2[23].name).to.equal('s2-conv2x32-dense3x4096');
    });

    it('fills in another stage-2 extractor; stage 2 waits for stage 1 unless --paper-extractor', () => {
      const s2 = paperStage2({ layers: 3, filters: 64 });
      expect(s2).to.have.length(24);
      expect(s2.every((t) => canonicalJson(t.params['model.convFilters']) === '[64,64,64]')).to.equal(true);
      expect(s2[0].name).to.equal('s2-conv3x64-dense1x32');
      expect(paperStage1()).to.have.length(12);
      expect(paperGrid()).to.have.length(36);

      const out = path.join(tmp, 'plan');
      expect(planSweep({ grid: 'paper', outDir: out }).trials).to.have.length(12); // extractor decided after stage 1
      expect(planSweep({ grid: 'paper', outDir: out, stage: 1, paperExtractor: true }).trials).to.have.length(12);
      expect(planSweep({ grid: 'paper', outDir: out, stage: 2, paperExtractor: true }).trials.map((t) => t.stage)).to.deep.equal(Array(24).fill(2));
      const p = planSweep({ grid: 'paper', outDir: out, settings: { limit: 2000, epochs: 2 } });
      expect(p.sweep).to.equal('paper-limit2000-ep2');
      expect(p.trials.every((t) => t.config!.epochs === 2 && t.config!.limit === 2000)).to.equal(true);
    });

    it('--only runs a subset by name patterns', () => {
      const keep = trialFilter(['s1-conv*x32', 's2-*dense1x?2']);
      expect(keep('s1-conv2x32')).to.equal(true);
      expect(keep('s1-conv2x320')).to.equal(false);
      expect(keep('s2-conv2x32-dense1x32')).to.equal(true);
      expect(keep('s2-conv2x32-dense1x512')).to.equal(false);
      expect(trialFilter(undefined)('anything')).to.equal(true);
      const out = path.join(tmp, 'plan');
      const p = planSweep({ grid: 'paper', outDir: out, paperExtractor: true, only: ['s1-conv*x16', 's2-*-dense3x*'] });
      expect(p.trials.map((t) => t.name)).to.deep.equal([
        's1-conv1x16',
        's1-conv2x16',
        's1-conv3x16',
        ...[32, 64, 128, 256, 512, 1024, 2048, 4096].map((u) => `s2-conv2x32-dense3x${u}`),
      ]);
      throwsGrid(() => planSweep({ grid: parseGrid({ axes: { epochs: [1, 2] } }), outDir: out, only: ['nope*'] }), /matches no trial/);
    });

    it('divides the CPUs among parallel trials and never oversubscribes them', () => {
      const out = path.join(tmp, 'plan');
      expect(planSweep({ grid: 'paper', outDir: out, parallel: 3, cpus: 8 })).to.include({ parallel: 3, threads: 2 });
      const capped = planSweep({ grid: 'paper', outDir: out, parallel: 4, cpus: 2 });
      expect(capped).to.include({ parallel: 2, threads: 1 });
      expect(capped.notes.join()).to.match(/capped/);
      expect(capped.trials.every((t) => t.config!.threads === 1)).to.equal(true);
    });
  });

  describe('user grids', () => {
    it('reads YAML and JSON; the cartesian product runs in axis order with stable names', () => {
      const yamlFile = path.join(tmp, 'lr-grid.yaml');
      fs.writeFileSync(
        yamlFile,
        ['preset: lightweight', 'base:', '  epochs: 3', 'axes:', '  model.convFilters: [[16, 32], [32, 64]]', '  optimizer.lr: [1e-3, 3.0e-4]', '  batchSize: [32, 128]', ''].join('\n'),
      );
      const g = loadGridFile(yamlFile);
      expect(g).to.deep.include({ kind: 'user', name: 'lr-grid', preset: 'lightweight', base: { epochs: 3 } });
      expect(g.axes.map((a) => a.path)).to.deep.equal(['model.convFilters', 'optimizer.lr', 'batchSize']);
      expect(g.axes[1].values).to.deep.equal([1e-3, 3e-4]);
      const trials = expandGrid(g);
      expect(trials).to.have.length(8);
      expect(trials.map((t) => t.name).slice(0, 3)).to.deep.equal([
        'convFilters-16-32_lr-0.001_batchSize-32',
        'convFilters-16-32_lr-0.001_batchSize-128',
        'convFilters-16-32_lr-0.0003_batchSize-32',
      ]);
      expect(trials[7].overrides).to.deep.equal({ model: { convFilters: [32, 64] }, optimizer: { lr: 3e-4 }, batchSize: 128 });
      // the same grid as JSON gives the same trials
      const jsonFile = path.join(tmp, 'lr-grid.json');
      fs.writeFileSync(jsonFile, JSON.stringify({ preset: 'lightweight', base: { epochs: 3 }, axes: { 'model.convFilters': [[16, 32], [32, 64]], 'optimizer.lr': [1e-3, 3e-4], batchSize: [32, 128] } }));
      expect(expandGrid(loadGridFile(jsonFile))).to.deep.equal(trials);

      const plan = planSweep({ grid: g, outDir: tmp, settings: { limit: 100 } });
      expect(plan.sweep).to.equal('lr-grid-limit100');
      const c = plan.trials[7].config!;
      expect(c.model).to.deep.include({ family: 'lightweight', convFilters: [32, 64], dropout: 0.5 });
      expect(c.optimizer.lr).to.equal(3e-4);
      expect(c.batchSize).to.equal(128);
      expect(c.epochs).to.equal(3);
      expect(c.limit).to.equal(100);
      expect(c.name).to.equal(plan.trials[7].name);
      expect(plan.trials.every((t) => t.config!.seed === 42)).to.equal(true);
    });

    it('names: exact values readable, lossy or long ones hashed, colliding ones disambiguated', () => {
      const names = trialNames(
        [{ device: 'cuda:0', dropout: 0.5 }, { device: 'cuda0', dropout: 0.5 }, { device: 'cpu', dropout: 0 }],
        ['device', 'dropout'],
      );
      expect(names[2]).to.equal('device-cpu_dropout-0');
      expect(names[0]).to.match(/^device-cuda0_dropout-0\.5-[0-9a-f]{8}$/);
      expect(names[1]).to.match(/^device-cuda0_dropout-0\.5-[0-9a-f]{8}$/); // collides with names[0]
      expect(trialNames([{ device: 'cuda0', dropout: 0.5 }], ['device', 'dropout'])).to.deep.equal(['device-cuda0_dropout-0.5']);
      expect(new Set(names).size).to.equal(3);
      const long = trialNames([{ 'model.dense': [8192, 8192, 8192], schedule: { type: 'cosine', warmupEpochs: 1 } }], ['model.dense', 'schedule']);
      expect(long[0]).to.match(/^dense-8192-8192-8192_schedule-type-cosine-warmupEpochs-1-[0-9a-f]{8}$/);
      const many = trialNames([{ a: 'x'.repeat(200) }], ['a']);
      expect(many[0].length).to.be.at.most(100);
      // same last segment: full paths
      expect(trialNames([{ 'model.dropout': 0.1, 'x.dropout': 0.2 }], ['model.dropout', 'x.dropout'])[0]).to.equal('model.dropout-0.1_x.dropout-0.2');
      expect(trialNames([{}], [])).to.deep.equal(['base']);
    });

    it('rejects invalid grids with every problem listed', () => {
      throwsGrid(() => parseGrid({ axes: { 'modle.dropout': [0.1] } }), /unknown config field 'modle'/);
      throwsGrid(() => parseGrid({ axes: { threads: [1, 2] } }), /threads is set by the sweep/);
      throwsGrid(() => parseGrid({ axes: { model: ['hoc'], 'model.dropout': [0.1] } }), /overlaps the axis model/);
      throwsGrid(() => parseGrid({ axes: { 'optimizer.lr': [] } }), /non-empty list/);
      throwsGrid(() => parseGrid({ axes: { 'optimizer.lr': [1e-3, 1e-3] } }), /listed twice/);
      throwsGrid(() => parseGrid({ preset: 'nope', axes: {} }), /unknown preset/);
      throwsGrid(() => parseGrid({ base: { outDir: 'x' }, axes: {} }), /base\.outDir: is set by the sweep/);
      throwsGrid(() => parseGrid({ axis: {} }), /unknown key/);
      throwsGrid(() => parseGrid([1, 2]), /must be an object/);
      const g = parseGrid({ axes: { epochs: [1, 2] } });
      throwsGrid(() => planSweep({ grid: g, settings: { epochs: 3 }, outDir: tmp }), /--epochs sets a field that is an axis/);
      const bad = path.join(tmp, 'bad.yaml');
      fs.writeFileSync(bad, 'axes: [unclosed\n');
      throwsGrid(() => loadGridFile(bad), /not valid YAML/);
      throwsGrid(() => planSweep({ grid: 'paper', name: '../x', outDir: tmp }), /invalid sweep name/);
    });
  });

  describe('running (generated CIFAKE-layout folder)', function () {
    this.timeout(60_000);
    let data: string;
    const savedCache = process.env.CIFAKE_CACHE_DIR;

    before(async () => {
      process.env.CIFAKE_CACHE_DIR = path.join(tmp, 'cache');
      data = (await synthesize(path.join(tmp, 'data'), { trainPerClass: 40, testPerClass: 20, seed: 5 })).root;
    });
    after(() => {
      if (savedCache === undefined) delete process.env.CIFAKE_CACHE_DIR;
      else process.env.CIFAKE_CACHE_DIR = savedCache;
    });

    // 2 trainable trials; valFraction 0 and 2000 filters fail config validation
    const grid = (): GridSpec =>
      parseGrid({
        name: 'tiny',
        preset: 'paper-cnn',
        base: { epochs: 1, limit: 12, batchSize: 8, model: { dense: [8] } },
        axes: { 'model.convFilters': [[4], [6], [2000]], valFraction: [0.25, 0] },
      });
    const outDir = () => path.join(tmp, 'runs');
    const sweepDir = () => path.join(outDir(), 'tiny');
    const OK = ['convFilters-4_valFraction-0.25', 'convFilters-6_valFraction-0.25'];
    const run = (events: SweepEvent[] = [], extra: Partial<Parameters<typeof runSweep>[0]> = {}): Promise<SweepResult> =>
      runSweep({ grid: grid(), settings: { data, device: 'cpu' }, outDir: outDir(), parallel: 2, cpus: 2, onEvent: (e) => events.push(e), ...extra });

    it('runs end to end with a leaderboard; failing trials are recorded and the others go on', async () => {
      const events: SweepEvent[] = [];
      const r = await run(events);
      expect(r.sweepDir).to.equal(sweepDir());
      expect(r.interrupted).to.equal(false);
      const lb = r.leaderboard;
      expect(lb.rows).to.have.length(6);
      expect(lb.counts).to.deep.equal({ done: 2, failed: 4, interrupted: 0, pending: 0 });
      // sorted by the metric: finished trials first, ranked
      expect(lb.rows.slice(0, 2).map((x) => x.trial).sort()).to.deep.equal(OK);
      expect(lb.rows.slice(0, 2).map((x) => x.rank)).to.deep.equal([1, 2]);
      expect(lb.rows[0].metric).to.be.at.least(lb.rows[1].metric!);
      for (const row of lb.rows.slice(0, 2)) {
        expect(row).to.include({ status: 'done', stage: null, epochs: 1, threads: 1, family: 'original' });
        expect(row.valAcc).to.be.within(0, 1);
        expect(row.testAcc).to.be.within(0, 1);
        expect(row.testF1Real).to.be.within(0, 1);
        expect(row.parameters).to.be.greaterThan(0);
        expect(row.trainSeconds).to.be.greaterThan(0);
        expect(row.metric).to.equal(row.valAcc);
        // a normal run directory, with the per-trial thread budget
        const cfg = JSON.parse(fs.readFileSync(path.join(sweepDir(), row.trial, RUN_FILES.config), 'utf8'));
        expect(cfg).to.include({ threads: 1, seed: 42, name: row.trial, outDir: sweepDir() });
        expect(fs.existsSync(path.join(sweepDir(), row.trial, RUN_FILES.best))).to.equal(true);
      }
      const failed = lb.rows.filter((x) => x.status === 'failed');
      expect(failed.map((x) => x.rank)).to.deep.equal([null, null, null, null]);
      expect(failed.find((x) => x.trial === 'convFilters-4_valFraction-0')!.error).to.match(/valFraction: must be > 0/);
      expect(failed.find((x) => x.trial === 'convFilters-2000_valFraction-0.25')!.error).to.match(/invalid config: model\.convFilters\[0\]/);

      // files: trials.jsonl with the errors, leaderboard.csv / .json, sweep.json
      const recs = readTrialRecords(sweepDir());
      expect(recs.size).to.equal(6);
      expect(recs.get('convFilters-6_valFraction-0')).to.include({ status: 'failed' });
      expect(recs.get('convFilters-6_valFraction-0')!.error).to.match(/valFraction/);
      const csv = fs.readFileSync(path.join(sweepDir(), SWEEP_FILES.csv), 'utf8').trim().split('\n');
      expect(csv).to.have.length(7);
      expect(csv[0]).to.match(/^rank,trial,stage,status,/);
      expect(csv[1]).to.match(/^1,convFilters-[46]_valFraction-0\.25,,done,original,\[[46]\],\[8\],\d+,1,/);
      const json = JSON.parse(fs.readFileSync(path.join(sweepDir(), SWEEP_FILES.json), 'utf8'));
      expect(json.rows).to.have.length(6);
      expect(json.metric).to.equal('val_acc');
      expect(JSON.parse(fs.readFileSync(path.join(sweepDir(), SWEEP_FILES.spec), 'utf8'))).to.include({ format: 'cifake-sweep', name: 'tiny' });

      // two at once, one thread each
      const starts = events.filter((e) => e.event === 'trial-start');
      expect(starts).to.have.length(2); // the four invalid configs never start
      expect(starts.every((e) => e.event === 'trial-start' && e.threads === 1 && !e.resume)).to.equal(true);
      // no run directory is left behind by a trial that could not start
      expect(fs.existsSync(path.join(sweepDir(), 'convFilters-4_valFraction-0'))).to.equal(false);
      expect(events.some((e) => e.event === 'epoch')).to.equal(true);
    });

    it('re-running skips finished trials without retraining them and checks the failed ones again', async () => {
      const mtimes = OK.map((t) => fs.statSync(path.join(sweepDir(), t, RUN_FILES.metrics)).mtimeMs);
      const events: SweepEvent[] = [];
      const r = await run(events);
      expect(OK.map((t) => fs.statSync(path.join(sweepDir(), t, RUN_FILES.metrics)).mtimeMs)).to.deep.equal(mtimes);
      const ends = events.filter((e) => e.event === 'trial-end');
      expect(ends.filter((e) => e.event === 'trial-end' && e.status === 'skipped').map((e) => e.event === 'trial-end' && e.trial).sort()).to.deep.equal(OK);
      expect(ends.filter((e) => e.event === 'trial-end' && e.status === 'failed')).to.have.length(4);
      expect(events.filter((e) => e.event === 'trial-start')).to.deep.equal([]); // all four are invalid configs
      expect(r.leaderboard.counts).to.include({ done: 2, failed: 4 });
      expect(r.leaderboard.rows.filter((x) => x.skipped).map((x) => x.trial).sort()).to.deep.equal(OK);
      const lines = fs.readFileSync(path.join(sweepDir(), SWEEP_FILES.trials), 'utf8').trim().split('\n');
      expect(lines).to.have.length(12);
    });

    it('continues an unfinished trial from its last checkpoint', async () => {
      const dir = path.join(sweepDir(), OK[0]);
      fs.rmSync(path.join(dir, RUN_FILES.metrics)); // as if killed after its last epoch
      const events: SweepEvent[] = [];
      const r = await run(events, { parallel: 1 });
      const start = events.find((e) => e.event === 'trial-start' && e.trial === OK[0]);
      expect(start).to.deep.include({ resume: true, threads: 2 });
      expect(fs.existsSync(path.join(dir, RUN_FILES.metrics))).to.equal(true);
      expect(JSON.parse(fs.readFileSync(path.join(dir, RUN_FILES.config), 'utf8')).threads).to.equal(2);
      expect(r.leaderboard.rows.find((x) => x.trial === OK[0])).to.include({ status: 'done', epochs: 1, skipped: false });
    });

    it('refuses a sweep folder that holds another sweep', async () => {
      let err: unknown;
      await runSweep({ grid: grid(), settings: { data, device: 'cpu', epochs: 2 }, outDir: outDir(), name: 'tiny' }).catch((e) => (err = e));
      expect(err).to.be.instanceOf(GridError);
      expect((err as Error).message).to.match(/holds a different sweep.*epochs/);
    });

    it('an aborted sweep starts no more trials', async () => {
      const ac = new AbortController();
      ac.abort();
      const events: SweepEvent[] = [];
      const r = await run(events, { name: 'aborted', signal: ac.signal });
      expect(r.interrupted).to.equal(true);
      expect(events.filter((e) => e.event === 'trial-start')).to.have.length(0);
      expect(r.leaderboard.counts).to.deep.equal({ done: 0, failed: 4, interrupted: 0, pending: 2 });
    });

    it('paper grid stage 1: runs the 12 extractors, selects the best, which then defines stage 2', async () => {
      const events: SweepEvent[] = [];
      const r = await runSweep({
        grid: 'paper',
        settings: { data, device: 'cpu', epochs: 1, limit: 10 },
        outDir: outDir(),
        stage: 1,
        parallel: 2,
        cpus: 2,
        onEvent: (e) => events.push(e),
      });
      expect(r.sweep).to.equal('paper-limit10-ep1');
      expect(r.leaderboard.counts.done).to.equal(12);
      expect(r.leaderboard.rows.every((x) => x.stage === 1 && x.dense!.length === 0)).to.equal(true);
      const sel = r.selection!;
      expect(sel.best).to.not.equal(null);
      expect(sel.best!.trial).to.equal(r.leaderboard.rows[0].trial);
      expect(sel.used).to.equal(null); // --stage 1
      expect(sel.matchesPaper).to.equal(sel.best!.extractor.layers === 2 && sel.best!.extractor.filters === 32);
      expect(sel.note).to.match(/stage 1 best extractor by val_acc: \dx\d+/);
      expect(events.some((e) => e.event === 'selection')).to.equal(true);
      // a later run plans stage 2 on that extractor (or on 2x32 with --paper-extractor)
      const plan = planSweep({ grid: 'paper', settings: { data, device: 'cpu', epochs: 1, limit: 10 }, outDir: outDir() });
      expect(plan.stage2).to.deep.equal({ extractor: sel.best!.extractor, source: 'best' });
      expect(plan.trials).to.have.length(36);
      const want = Array(sel.best!.extractor.layers).fill(sel.best!.extractor.filters);
      expect(plan.trials.filter((t) => t.stage === 2).every((t) => canonicalJson(t.config!.model.convFilters) === canonicalJson(want))).to.equal(true);
    });
  });

  describe('CLI', () => {
    it('cifake sweep --grid paper --dry-run --json lists the 36 trials', async () => {
      const chunks: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((s: string | Uint8Array) => {
        chunks.push(String(s));
        return true;
      }) as typeof process.stdout.write;
      let code: number;
      try {
        code = await main(['node', 'cifake', 'sweep', '--grid', 'paper', '--paper-extractor', '--dry-run', '--json', '--epochs', '2', '--out-dir', path.join(tmp, 'cli')]);
      } finally {
        process.stdout.write = write;
      }
      expect(code).to.equal(0);
      const plan = JSON.parse(chunks.join(''));
      expect(plan.event).to.equal('plan');
      expect(plan.sweep).to.equal('paper-ep2');
      expect(plan.trials).to.have.length(36);
      expect(plan.trials.filter((t: { stage: number }) => t.stage === 1)).to.have.length(12);
    });
  });
});

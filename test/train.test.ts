// The fit loop and the CLI end to end on a small generated CIFAKE-layout folder.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { synthesize } from '../src/data/synth';
import { ConfigError } from '../src/config';
import { readHistory, readRunConfig } from '../src/run';
import { train, TrainingInterrupted, type EpochLog, type RunResult } from '../src/train/fit';
import { loadNative } from '../src/native';
import { TEST_THREADS } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-train-'));
const data = path.join(tmp, 'data');
const cacheDir = path.join(tmp, 'cache');

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CIFAKE_CACHE_DIR: cacheDir },
  });
}

const base = (name: string) => ({
  data,
  outDir: path.join(tmp, 'runs'),
  name,
  threads: TEST_THREADS,
  device: 'cpu',
  limit: 60,
  seed: 3,
});

describe('training runs', function () {
  this.timeout(300_000);
  before(async () => {
    process.env.CIFAKE_CACHE_DIR = cacheDir;
    await synthesize(data, { trainPerClass: 60, testPerClass: 20, seed: 4 });
  });
  after(() => {
    delete process.env.CIFAKE_CACHE_DIR;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const preset of ['paper-cnn', 'lightweight', 'hoc']) {
    it(`cifake train --preset ${preset} writes a complete run directory, and eval reproduces its metrics`, () => {
      const out = path.join(tmp, 'runs');
      const report = preset === 'hoc' ? ['--report'] : [];
      const cutmix = preset === 'hoc' ? ['--cutmix', '0.5'] : [];
      const r = cli(['train', '--preset', preset, '--data', data, '--epochs', '2', '--limit', '60', '--out-dir', out, '--name', preset, '--device', 'cpu', '--json', ...report, ...cutmix]);
      expect(r.status, r.stderr).to.equal(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.filter((l) => l.event === 'epoch')).to.have.length(2);
      // The log states what the run trains with, flags over the preset included (the preset's own
      // description does not know them).
      const training = lines.find((l) => l.event === 'log' && l.message.startsWith('training: '));
      expect(training?.message, 'training log line').to.match(/ x 2 ep /);
      if (cutmix.length) expect(training?.message).to.match(/ cutmix 0\.5/);
      if (report.length) {
        const event = lines.find((l) => l.event === 'report');
        expect(event, 'report event').to.not.equal(undefined);
        expect(fs.existsSync(event.html), event.html).to.equal(true);
      }
      const result = lines.find((l) => l.event === 'result');
      expect(result, 'result event').to.not.equal(undefined);
      const dir = path.join(out, preset);
      for (const f of ['config.json', 'data.json', 'history.jsonl', 'metrics.json', 'last.pt', 'best.pt', 'scores-val.json', 'scores-test.json'])
        expect(fs.existsSync(path.join(dir, f)), f).to.equal(true);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      expect(config.model.family).to.equal({ 'paper-cnn': 'original', lightweight: 'lightweight', hoc: 'hoc' }[preset]);
      expect(config.batchSize).to.equal(32);
      expect(config.augment.cutmix).to.equal(preset === 'hoc' ? 0.5 : 0);
      expect(readHistory(dir)).to.have.length(2);

      const ev = cli(['eval', '--model', dir, '--data', data, '--split', 'test', '--device', 'cpu', '--json']);
      expect(ev.status, ev.stderr).to.equal(0);
      const evaluated = JSON.parse(ev.stdout);
      expect(evaluated.metrics.n).to.equal(40);
      // A run directory resolves to the model the run ended with (best.pt restored, or last.pt for paper-cnn).
      expect(evaluated.checkpoint).to.match(preset === 'paper-cnn' ? /last\.pt$/ : /best\.pt$/);
      expect(evaluated.metrics.accuracy).to.equal(result.metrics.test.accuracy);
      expect(evaluated.metrics.rocAuc).to.be.closeTo(result.metrics.test.rocAuc, 1e-9);
    });
  }

  it('early stopping stops at the right epoch of a scripted validation-loss sequence and restores those weights', async () => {
    // Best at epoch 2, then 3 epochs without improvement: patience 3 stops after epoch 5.
    const script = [1.0, 0.5, 0.7, 0.6, 0.55, 0.4];
    const logs: EpochLog[] = [];
    const r = await train(
      { ...base('es'), model: { family: 'lightweight' }, epochs: 6, earlyStopping: { patience: 3, restoreBest: true } },
      { monitorValue: (e) => script[e.epoch - 1], onEpochEnd: (e) => void logs.push(e) },
    );
    expect(r.epochsRun).to.equal(5);
    expect(r.stopReason).to.equal('early-stopped');
    expect(r.bestEpoch).to.equal(2);
    expect(logs.map((l) => l.improved)).to.deep.equal([true, true, false, false, false]);
    // The final model is epoch 2's: its validation accuracy and loss are the ones logged then.
    expect(r.metrics.val.accuracy).to.equal(logs[1].valAcc);
    expect(r.metrics.val.logLoss).to.be.closeTo(logs[1].valLoss, 1e-4);
  });

  it('resuming an interrupted run gives the same result as an uninterrupted one', async () => {
    const config = { model: { family: 'hoc' }, epochs: 3, earlyStopping: { patience: 5 } };
    const full = await train({ ...base('full'), ...config });

    const ac = new AbortController();
    const err = await train({ ...base('split'), ...config }, { signal: ac.signal, onEpochEnd: (e) => void (e.epoch === 1 && ac.abort()) }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(TrainingInterrupted);
    expect((err as TrainingInterrupted).completedEpochs).to.equal(1);
    const dir = path.join(tmp, 'runs', 'split');
    expect(readHistory(dir)).to.have.length(1);
    const resumed: RunResult = await train({}, { resume: dir });
    const strip = (h: EpochLog[]) => h.map(({ seconds, imagesPerSec, ...rest }) => rest);
    expect(strip(resumed.history)).to.deep.equal(strip(full.history));
    expect(resumed.metrics.test?.accuracy).to.equal(full.metrics.test?.accuracy);
    expect(resumed.metrics.val.logLoss).to.equal(full.metrics.val.logLoss);
  });

  it('streams the train split in shards with the same validation split as the in-memory path', async () => {
    const logs: string[] = [];
    const sharded = await train({ ...base('sharded'), model: { family: 'lightweight' }, epochs: 2, shardSize: 64 }, { onLog: (m) => void logs.push(m) });
    expect(logs.some((l) => /in shards of 64/.test(l))).to.equal(true);
    expect(sharded.epochsRun).to.equal(2);
    const whole = await train({ ...base('whole'), model: { family: 'lightweight' }, epochs: 1 });
    expect(sharded.metrics.val.n).to.equal(whole.metrics.val.n);
    const data = (name: string) => JSON.parse(fs.readFileSync(path.join(tmp, 'runs', name, 'data.json'), 'utf8'));
    expect(data('sharded').train.count).to.equal(data('whole').train.count);
    const val = (name: string) => JSON.parse(fs.readFileSync(path.join(tmp, 'runs', name, 'scores-val.json'), 'utf8')).files;
    expect(val('sharded')).to.deep.equal(val('whole'));
  });

  it('initFrom starts from the weights of another run of the same model; another model is a config error before any data is read', async () => {
    const model = { family: 'original', convFilters: [8, 8], dense: [16] }; // no batch norm: eval depends on the weights alone
    const a = await train({ ...base('init-a'), model, epochs: 2 });
    // lr ~0: the fine-tuned run keeps a's weights, so its validation logits are a's
    const logs: string[] = [];
    const b = await train({ ...base('init-b'), model, epochs: 1, optimizer: { lr: 1e-12 }, initFrom: a.runDir }, { onLog: (m) => void logs.push(m) });
    expect(logs.some((l) => l.startsWith('initial weights: ') && l.includes('init-a'))).to.equal(true);
    const logits = (r: RunResult) => JSON.parse(fs.readFileSync(path.join(r.runDir, 'scores-val.json'), 'utf8')).logits as number[];
    const la = logits(a), lb = logits(b);
    expect(lb).to.have.length(la.length);
    for (let i = 0; i < la.length; i++) expect(lb[i]).to.be.closeTo(la[i], 1e-4);
    // a random init of the same model does not give a's logits
    const c = await train({ ...base('init-c'), model, epochs: 1, optimizer: { lr: 1e-12 } });
    expect(logits(c).some((x, i) => Math.abs(x - la[i]) > 1e-2)).to.equal(true);
    const other = cli(['train', '--data', data, '--model', 'lightweight', '--init-from', a.runDir, '--out-dir', path.join(tmp, 'runs'), '--name', 'init-bad', '--epochs', '1']);
    expect(other.status, other.stderr).to.equal(2);
    expect(other.stderr).to.match(/initFrom: .*holds another model/);
    expect(fs.existsSync(path.join(tmp, 'runs', 'init-bad'))).to.equal(false);
    const missing = cli(['train', '--data', data, '--init-from', path.join(tmp, 'nowhere'), '--out-dir', path.join(tmp, 'runs'), '--name', 'init-missing']);
    expect(missing.status, missing.stderr).to.equal(2);
    expect(missing.stderr).to.match(/initFrom: model not found: .*nowhere/);
  });

  describe('a run that cannot start leaves no run directory (so --name can be reused)', () => {
    const expectNoRunDir = async (name: string, config: Record<string, unknown>, opts: Parameters<typeof train>[1], why: RegExp) => {
      const err = await train({ ...base(name), epochs: 1, ...config }, opts).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).to.match(why);
      expect(fs.existsSync(path.join(tmp, 'runs', name))).to.equal(false);
    };

    it('--device cuda on a CPU build', async function () {
      if (loadNative().info().cuda.available) this.skip();
      await expectNoRunDir('no-cuda', { device: 'cuda' }, {}, /cuda|CUDA/);
      const r = await train({ ...base('no-cuda'), epochs: 1, model: { family: 'lightweight', convFilters: [4, 8], dense: [8] } });
      expect(r.runDir).to.equal(path.join(tmp, 'runs', 'no-cuda'));
    });

    it('a strict decode failure', async () => {
      const bad = path.join(tmp, 'data-bad');
      await synthesize(bad, { trainPerClass: 8, testPerClass: 2, seed: 5 });
      fs.writeFileSync(path.join(bad, 'train', 'REAL', 'broken.jpg'), 'not a jpeg');
      await expectNoRunDir('strict', { data: bad, strict: true, cacheDir: false }, {}, /broken\.jpg/);
    });

    it('an onLog callback that throws', async () => {
      await expectNoRunDir('bad-log', {}, { onLog: () => { throw new Error('logger is down'); } }, /logger is down/);
    });
  });

  it('ends quietly with status 0 when the reader of its output goes away (`cifake ... | head`)', async () => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts'), 'train', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).to.not.match(/EPIPE|Error/);
    expect(status).to.equal(0);
  });

  it('rejects bad config values and unknown flags with exit code 2 and a message naming the field', () => {
    const bad = cli(['train', '--data', data, '--lr', '-1']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/optimizer\.lr/);
    const unknown = cli(['train', '--no-such-flag']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.match(/unknown option '--no-such-flag'/);
    for (const command of ['eval', 'report', 'gradcam', 'sweep']) expect(cli([command, '--no-such-flag']).status, command).to.equal(2);
    const preset = cli(['train', '--preset', 'resnet']);
    expect(preset.status).to.equal(2);
    expect(preset.stderr).to.match(/resnet/);
    const file = path.join(tmp, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ batchSize: 0, model: { family: 'hoc', dropout: 2 } }));
    const cfg = cli(['train', '--config', file, '--data', data]);
    expect(cfg.status).to.equal(2);
    expect(cfg.stderr).to.match(/batchSize/).and.to.match(/model\.dropout/);
    const broken = path.join(tmp, 'broken.json');
    fs.writeFileSync(broken, '{"epochs": 2,');
    const json = cli(['train', '--config', broken, '--data', data]);
    expect(json.status).to.equal(2);
    expect(json.stderr).to.contain(broken).and.to.match(/not valid JSON/);
    const val = cli(['train', '--data', data, '--val-fraction', '0', '--out-dir', path.join(tmp, 'runs-val0')]);
    expect(val.status).to.equal(2);
    expect(val.stderr).to.match(/valFraction: must be > 0/);
    expect(fs.existsSync(path.join(tmp, 'runs-val0')) ? fs.readdirSync(path.join(tmp, 'runs-val0')) : []).to.deep.equal([]);
  });

  it("a run directory's config.json that is valid JSON but not a valid config is rejected as broken JSON is (exit 2, file named)", () => {
    const dir = path.join(tmp, 'wrong-config');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'last.pt'), '');
    for (const [text, why] of [['{"earlyStopping": {"restoreBest": "no"}}', /earlyStopping\.restoreBest/], ['{"epochs": ', /not valid JSON/]] as const) {
      fs.writeFileSync(path.join(dir, 'config.json'), text);
      expect(() => readRunConfig(dir)).to.throw(ConfigError, why);
      for (const args of [['eval', '--model', dir, '--data', data], ['train', '--resume', dir]]) {
        const r = cli(args);
        expect(r.status, `${args[0]}: ${r.stderr}`).to.equal(2);
        expect(r.stderr).to.contain(path.join(dir, 'config.json')).and.to.match(why);
      }
    }
  });

  it("a stored config's threads are checked against this machine's CPUs only when the run trains here (resume), not when it is read", () => {
    const dir = path.join(tmp, 'many-threads');
    fs.mkdirSync(dir, { recursive: true });
    const threads = os.availableParallelism() + 1;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ threads }));
    expect(readRunConfig(dir).threads).to.equal(threads);
    expect(() => readRunConfig(dir, true)).to.throw(ConfigError, /threads: must be <=/);
    const r = cli(['train', '--resume', dir]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain(path.join(dir, 'config.json')).and.to.match(/threads/);
    // --threads on resume replaces the stored count (the run then fails later: it has no checkpoint)
    const fewer = cli(['train', '--resume', dir, '--threads', '1']);
    expect(fewer.stderr).to.not.match(/threads: must be <=/);
    expect(fewer.stderr).to.match(/no last\.pt|cannot resume/);
  });

  it('--resume takes runtime flags (threads, device, cache; logged when they change) and refuses flags that would change the run, naming them', async () => {
    const dir = path.join(tmp, 'runs', 'resume-threads');
    const ac = new AbortController();
    await train({ ...base('resume-threads'), model: { family: 'lightweight' }, epochs: 2 }, { signal: ac.signal, onEpochEnd: () => ac.abort() }).catch((e: Error) => e);
    const bad = cli(['train', '--resume', dir, '--epochs', '5', '--lr', '0.1']);
    expect(bad.status, bad.stderr).to.equal(2);
    expect(bad.stderr).to.contain('--epochs, --lr').and.to.contain('continues with its config.json');
    const logs: string[] = [];
    const r = await train({}, { resume: dir, resumeRuntime: { threads: TEST_THREADS, cacheDir: false }, onLog: (m) => void logs.push(m) });
    expect(r.epochsRun).to.equal(2);
    expect(logs).to.include('resume: cacheDir false (the run had null)'); // unchanged threads are not mentioned
  });

  it('--threads above the available CPUs is a usage error (exit 2) in every command that runs a model', () => {
    const tooMany = String(os.availableParallelism() + 1);
    const model = path.join(tmp, 'no-model.pt'); // never reached: the flag is checked first
    const commands = [
      ['train', '--data', data],
      ['eval', '--model', model, '--data', data],
      ['predict', '--model', model, 'x.png'],
      ['gradcam', '--model', model, '--out', path.join(tmp, 'cams'), 'x.png'],
      ['report', tmp],
    ];
    for (const args of commands) {
      const r = cli([...args, '--threads', tooMany]);
      expect(r.status, `${args[0]}: ${r.stderr}`).to.equal(2);
      expect(r.stderr, args[0]).to.contain('--threads').and.to.contain(`got '${tooMany}'`);
    }
  });

  it('a missing dataset is a clear error (exit 1)', () => {
    const r = cli(['train', '--data', path.join(tmp, 'nope.zip'), '--epochs', '1']);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/nope\.zip/);
  });
});


import { expect } from 'chai';
import os from 'node:os';
import {
  ConfigError,
  describeConfig,
  lrAtEpoch,
  modelSpecOf,
  PRESET_NAMES,
  PRESETS,
  resolveConfig,
  resolveThreads,
  TrainConfig,
  validateConfig,
} from '../src/config';

/** run fn, expect a ConfigError, return its message */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    expect(e).to.be.instanceOf(Error);
    expect((e as Error).name).to.equal('ConfigError');
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const RUNTIME_DEFAULTS = {
  seed: 42,
  device: 'auto',
  threads: null,
  valFraction: 0.1,
  limit: null,
  data: null,
  outDir: 'runs',
  name: null,
  threshold: 0.5,
  amp: 'none',
  labelSmoothing: 0,
  ema: null,
  robustAugment: null,
  initFrom: null,
  channelsLast: true,
  shardSize: null,
  resize: false,
  strict: false,
  classMap: null,
  cacheDir: null,
};

/** lightweight and hoc blocks: one conv each, no shortcut (model.convsPerBlock, model.residual) */
const ONE_CONV_BLOCKS = { convsPerBlock: 1, residual: false, members: 1 };
const ADAM_1E3 = { name: 'adam', lr: 1e-3, weightDecay: 0, betas: [0.9, 0.999] };
const NO_AUG = { hflip: false, shift: 0, cutmix: 0 };
const ES_PAPER = { monitor: 'val_loss', patience: 3, minDelta: 0, restoreBest: true };

describe('config', () => {
  describe('presets', () => {
    it('paper-cnn: original CNN, Adam 1e-3, batch 32, 30 epochs, no early stopping', () => {
      expect(resolveConfig({ preset: 'paper-cnn' })).to.deep.equal({
        model: { family: 'original', convFilters: [32, 32], padding: 'valid', dense: [64], dropout: 0, members: 1 },
        optimizer: ADAM_1E3,
        schedule: { type: 'none' },
        augment: NO_AUG,
        batchSize: 32,
        epochs: 30,
        earlyStopping: null,
        ...RUNTIME_DEFAULTS,
      });
    });

    it("no preset = schema defaults = paper-cnn's training with the hoc model (the CLI's default family)", () => {
      const paperTraining = { ...resolveConfig({ preset: 'paper-cnn' }), model: resolveConfig({ preset: 'hoc' }).model };
      expect(resolveConfig()).to.deep.equal(paperTraining);
      expect(resolveConfig({ preset: null })).to.deep.equal(paperTraining);
      expect(validateConfig({}).model.family).to.equal('hoc');
    });

    it('lightweight: lightweight family, Adam 1e-3, batch 32, 30 epochs, ES val_loss patience 3 restore best', () => {
      expect(resolveConfig({ preset: 'lightweight' })).to.deep.equal({
        model: { family: 'lightweight', convFilters: [16, 32], padding: 'same', dense: [64], dropout: 0.5, ...ONE_CONV_BLOCKS },
        optimizer: ADAM_1E3,
        schedule: { type: 'none' },
        augment: NO_AUG,
        batchSize: 32,
        epochs: 30,
        earlyStopping: ES_PAPER,
        ...RUNTIME_DEFAULTS,
      });
    });

    it('hoc: as lightweight with the hoc family (fused)', () => {
      expect(resolveConfig({ preset: 'hoc' })).to.deep.equal({
        model: { family: 'hoc', convFilters: [16, 32], padding: 'same', dense: [64], dropout: 0.5, fusedHoc: true, ...ONE_CONV_BLOCKS },
        optimizer: ADAM_1E3,
        schedule: { type: 'none' },
        augment: NO_AUG,
        batchSize: 32,
        epochs: 30,
        earlyStopping: ES_PAPER,
        ...RUNTIME_DEFAULTS,
      });
    });

    it('hoc-plus / lightweight-plus (ours): AdamW, cosine with 1 warmup epoch, hflip + shift 2, 40 epochs, patience 8', () => {
      const plus = {
        optimizer: { name: 'adamw', lr: 2e-3, weightDecay: 5e-4, betas: [0.9, 0.999] },
        schedule: { type: 'cosine', warmupEpochs: 1, minLr: 0 },
        augment: { hflip: true, shift: 2, cutmix: 0 },
        batchSize: 32,
        epochs: 40,
        earlyStopping: { monitor: 'val_loss', patience: 8, minDelta: 0, restoreBest: true },
        ...RUNTIME_DEFAULTS,
      };
      expect(resolveConfig({ preset: 'hoc-plus' })).to.deep.equal({
        model: { family: 'hoc', convFilters: [16, 32], padding: 'same', dense: [64], dropout: 0.5, fusedHoc: true, ...ONE_CONV_BLOCKS },
        ...plus,
      });
      expect(resolveConfig({ preset: 'lightweight-plus' })).to.deep.equal({
        model: { family: 'lightweight', convFilters: [16, 32], padding: 'same', dense: [64], dropout: 0.5, ...ONE_CONV_BLOCKS },
        ...plus,
      });
      expect(resolveConfig({ preset: 'hoc-deep-plus' })).to.deep.equal({
        model: { family: 'hoc', convFilters: [32, 64, 128], padding: 'same', dense: [64], dropout: 0.5, fusedHoc: true, ...ONE_CONV_BLOCKS },
        ...plus,
        epochs: 30,
      });
    });

    it('robust-plus (ours) is res-plus plus the default robustness augmentation at probability 0.5', () => {
      const { robustAugment, ...rest } = resolveConfig({ preset: 'robust-plus' });
      const { robustAugment: none, ...resPlus } = resolveConfig({ preset: 'res-plus' });
      expect(none).to.equal(null);
      expect(rest).to.deep.equal(resPlus);
      expect(robustAugment).to.deep.equal({ probability: 0.5, jpegProbability: 0.5, ops: ['blur', 'resize', 'noise'], jpegQuality: [30, 95], blurSigma: [0.3, 1.2], resizeTo: [12, 28], noiseSigma: [1, 8] });
    });

    it('res-ema-plus (ours) is res-plus with a weight average, 30 epochs and early stopping on val_acc', () => {
      const { ema, epochs, earlyStopping, ...rest } = resolveConfig({ preset: 'res-ema-plus' });
      const { ema: none, epochs: _e, earlyStopping: resStop, ...resPlus } = resolveConfig({ preset: 'res-plus' });
      expect(none).to.equal(null);
      expect(rest).to.deep.equal(resPlus);
      expect([ema, epochs]).to.deep.equal([0.999, 30]);
      expect(earlyStopping).to.deep.equal({ ...resStop, monitor: 'val_acc' });
    });

    it('preset table is complete, frozen and labelled by origin', () => {
      expect(Object.keys(PRESETS).sort()).to.deep.equal([...PRESET_NAMES].sort());
      for (const name of PRESET_NAMES) {
        expect(PRESETS[name].name).to.equal(name);
        expect(PRESETS[name].description).to.be.a('string').and.not.equal('');
      }
      expect(PRESETS['paper-cnn'].origin).to.equal('paper');
      expect(PRESETS.lightweight.origin).to.equal('paper');
      expect(PRESETS.hoc.origin).to.equal('paper');
      expect(PRESETS['hoc-plus'].origin).to.equal('ours');
      expect(PRESETS['lightweight-plus'].origin).to.equal('ours');
      expect(PRESETS['hoc-deep-plus'].origin).to.equal('ours');
      expect(PRESETS['hoc-plus'].description).to.match(/ours/);
      expect(Object.isFrozen(PRESETS.hoc.config)).to.equal(true);
    });

    it('resolved configs are independent copies (no shared arrays)', () => {
      const a = resolveConfig({ preset: 'hoc' });
      a.model.convFilters.push(64);
      a.optimizer.betas[0] = 0.5;
      const b = resolveConfig({ preset: 'hoc' });
      expect(b.model.convFilters).to.deep.equal([16, 32]);
      expect(b.optimizer.betas).to.deep.equal([0.9, 0.999]);
    });

    it('JSON round trip validates to the same config', () => {
      for (const name of PRESET_NAMES) {
        const c = resolveConfig({ preset: name });
        expect(validateConfig(JSON.parse(JSON.stringify(c)))).to.deep.equal(c);
      }
    });
  });

  describe('merging', () => {
    it('overrides win over file, file over preset', () => {
      const c = resolveConfig({
        preset: 'lightweight',
        file: { epochs: 10, batchSize: 64, optimizer: { lr: 5e-4 }, earlyStopping: { patience: 5 } },
        overrides: { epochs: 12, optimizer: { name: 'adamw' }, seed: undefined },
      });
      expect(c.epochs).to.equal(12); // override
      expect(c.batchSize).to.equal(64); // file
      expect(c.optimizer).to.deep.equal({ name: 'adamw', lr: 5e-4, weightDecay: 1e-2, betas: [0.9, 0.999] }); // merged
      expect(c.earlyStopping).to.deep.equal({ monitor: 'val_loss', patience: 5, minDelta: 0, restoreBest: true });
      expect(c.seed).to.equal(42); // undefined override ignored
      expect(c.model.family).to.equal('lightweight'); // preset
    });

    it('does not mutate its inputs', () => {
      const file = { model: { dropout: 0.2 }, schedule: 'cosine' };
      const overrides = { earlyStopping: false };
      const snapshot = JSON.stringify([file, overrides]);
      resolveConfig({ preset: 'hoc', file, overrides });
      expect(JSON.stringify([file, overrides])).to.equal(snapshot);
    });

    it('arrays replace, not merge', () => {
      const c = resolveConfig({ preset: 'paper-cnn', overrides: { model: { convFilters: [64] } } });
      expect(c.model.convFilters).to.deep.equal([64]);
    });

    it('changing the family starts from that family defaults', () => {
      const c = resolveConfig({ preset: 'paper-cnn', overrides: { model: 'hoc' } });
      expect(c.model).to.deep.equal({ family: 'hoc', convFilters: [16, 32], padding: 'same', dense: [64], dropout: 0.5, fusedHoc: true, ...ONE_CONV_BLOCKS });
      const d = resolveConfig({ preset: 'hoc', file: { model: { family: 'original', dropout: 0.25 } } });
      expect(d.model).to.deep.equal({ family: 'original', convFilters: [32, 32], padding: 'valid', dense: [64], dropout: 0.25, members: 1 });
    });

    it('same family merges field tweaks', () => {
      const c = resolveConfig({ preset: 'hoc', overrides: { model: { fusedHoc: false } } });
      expect(c.model).to.include({ family: 'hoc', fusedHoc: false, dropout: 0.5 });
      const d = resolveConfig({ overrides: { model: { dropout: 0.25 } } }); // no family → hoc
      expect(d.model).to.deep.equal({ family: 'hoc', convFilters: [16, 32], padding: 'same', dense: [64], dropout: 0.25, fusedHoc: true, ...ONE_CONV_BLOCKS });
    });

    it('schedule shorthand keeps same-type settings, a new type starts fresh', () => {
      const same = resolveConfig({ preset: 'hoc-plus', overrides: { schedule: 'cosine' } });
      expect(same.schedule).to.deep.equal({ type: 'cosine', warmupEpochs: 1, minLr: 0 });
      const step = resolveConfig({ preset: 'hoc-plus', overrides: { schedule: 'step' } });
      expect(step.schedule).to.deep.equal({ type: 'step', stepSize: 10, gamma: 0.1 });
      const none = resolveConfig({ preset: 'hoc-plus', overrides: { schedule: { type: 'none' } } });
      expect(none.schedule).to.deep.equal({ type: 'none' });
    });

    it('earlyStopping on/off', () => {
      expect(resolveConfig({ preset: 'lightweight', overrides: { earlyStopping: null } }).earlyStopping).to.equal(null);
      expect(resolveConfig({ preset: 'lightweight', overrides: { earlyStopping: false } }).earlyStopping).to.equal(null);
      expect(resolveConfig({ preset: 'paper-cnn', overrides: { earlyStopping: true } }).earlyStopping).to.deep.equal(ES_PAPER);
      expect(resolveConfig({ preset: 'paper-cnn', overrides: { earlyStopping: { monitor: 'val_acc' } } }).earlyStopping).to.deep.equal({
        ...ES_PAPER,
        monitor: 'val_acc',
      });
    });

    it('weight decay default follows the optimizer (Adam 0, AdamW 1e-2) unless given', () => {
      expect(resolveConfig({ overrides: { optimizer: { name: 'adamw' } } }).optimizer.weightDecay).to.equal(1e-2);
      expect(resolveConfig({ overrides: { optimizer: { name: 'adam' } } }).optimizer.weightDecay).to.equal(0);
      expect(resolveConfig({ overrides: { optimizer: { name: 'adamw', weightDecay: 0 } } }).optimizer.weightDecay).to.equal(0);
      expect(resolveConfig({ preset: 'hoc-plus', overrides: { optimizer: { lr: 1e-3 } } }).optimizer).to.include({ weightDecay: 5e-4, lr: 1e-3 });
    });

    it('accepts the remaining fields', () => {
      const c = resolveConfig({
        overrides: {
          device: 'cuda:1',
          threads: 1,
          limit: 500,
          data: '/data/cifake',
          outDir: 'out',
          name: 'exp-1.a_b',
          threshold: 0.7,
          amp: 'bf16',
          channelsLast: true,
          valFraction: 0.05,
          seed: 0,
          augment: { shift: 8 },
        },
      });
      expect(c).to.include({ device: 'cuda:1', threads: 1, limit: 500, data: '/data/cifake', outDir: 'out', name: 'exp-1.a_b', threshold: 0.7 });
      expect(c).to.include({ amp: 'bf16', channelsLast: true, valFraction: 0.05, seed: 0 });
      expect(c.augment).to.deep.equal({ hflip: false, shift: 8, cutmix: 0 });
      for (const device of ['cpu', 'cuda', 'cuda:0', 'auto']) expect(resolveConfig({ overrides: { device } }).device).to.equal(device);
    });
  });

  describe('validation errors', () => {
    it('negative lr names the field', () => {
      const e = configError(() => resolveConfig({ preset: 'hoc', overrides: { optimizer: { lr: -1 } } }));
      expect(e.message).to.contain('optimizer.lr: must be > 0, got -1 (allowed: number > 0)');
      expect(e.issues).to.have.length(1);
      expect(e.issues[0].path).to.equal('optimizer.lr');
    });

    it('unknown family lists the families', () => {
      const e = configError(() => resolveConfig({ overrides: { model: { family: 'resnet' } } }));
      expect(e.message).to.contain('model.family: invalid value "resnet" (allowed: original, lightweight, hoc)');
      configError(() => resolveConfig({ overrides: { model: 'vit' } }));
    });

    it('unknown keys are errors naming the key and the allowed keys', () => {
      const e = configError(() => resolveConfig({ file: { epoch: 3, model: { family: 'hoc', fused: true } } }));
      expect(e.issues.map((i) => i.path).sort()).to.deep.equal(['epoch', 'model.fused']);
      expect(e.message).to.match(/^ {2}epoch: unknown key \(allowed keys: model, optimizer, .*epochs/m);
      expect(e.message).to.contain('model.fused: unknown key (allowed keys in model: family, convFilters, padding, dense, dropout, fusedHoc, convsPerBlock, residual, members)');
      // a field of another family is unknown too
      const f = configError(() => resolveConfig({ preset: 'paper-cnn', overrides: { model: { fusedHoc: true } } }));
      expect(f.message).to.contain('model.fusedHoc: unknown key');
    });

    it('batchSize 0 and device gpu', () => {
      const e = configError(() => resolveConfig({ overrides: { batchSize: 0, device: 'gpu' } }));
      expect(e.message).to.contain('batchSize: must be >= 1, got 0 (allowed: integer 1..65536)');
      expect(e.message).to.contain('device: invalid value "gpu" (allowed: cpu, cuda, cuda:N, auto)');
      expect(e.message).to.match(/^Invalid training config \(2 issues\):\n/);
    });

    it('other bad values', () => {
      const cases: Array<[object, string]> = [
        [{ batchSize: 65537 }, 'batchSize: must be <= 65536'],
        [{ batchSize: 1.5 }, 'batchSize: must be an integer, got 1.5'],
        [{ epochs: 0 }, 'epochs: must be >= 1'],
        [{ model: { convFilters: [] } }, 'model.convFilters: must have at least 1 item(s), got 0'],
        [{ model: { convFilters: [16, 32, 64, 128, 256] } }, 'model.convFilters: must have at most 4 item(s), got 5'],
        [{ model: { convFilters: [16, 2048] } }, 'model.convFilters[1]: must be <= 1024, got 2048 (allowed: integer 1..1024)'],
        [{ model: { dense: [64, 64, 64, 64] } }, 'model.dense: must have at most 3 item(s)'],
        [{ model: { dropout: 1 } }, 'model.dropout: must be < 1, got 1'],
        [{ model: { padding: 'full' } }, 'model.padding: invalid value "full" (allowed: valid, same'],
        [{ model: { family: 'lightweight', padding: 'valid' } }, 'model.padding: invalid value "valid"'],
        [{ optimizer: { name: 'sgd' } }, 'optimizer.name: invalid value "sgd" (allowed: adam, adamw)'],
        [{ optimizer: { weightDecay: -1 } }, 'optimizer.weightDecay: must be >= 0'],
        [{ optimizer: { betas: [0.9, 1] } }, 'optimizer.betas[1]: must be < 1'],
        [{ schedule: 'linear' }, 'schedule.type: invalid value "linear" (allowed: none, cosine, step)'],
        [{ schedule: { type: 'step', gamma: 0 } }, 'schedule.gamma: must be > 0'],
        [{ schedule: { type: 'step', stepSize: 0 } }, 'schedule.stepSize: must be >= 1'],
        [{ schedule: { type: 'cosine', minLr: 0.5 } }, 'schedule.minLr: must not exceed optimizer.lr (0.001), got 0.5'],
        [{ schedule: { type: 'none', warmupEpochs: 1 } }, 'schedule.warmupEpochs: unknown key (allowed keys in schedule: type)'],
        [{ augment: { shift: 9 } }, 'augment.shift: must be <= 8'],
        [{ augment: { hflip: 'yes' } }, 'augment.hflip: expected boolean, got string "yes" (allowed: true, false)'],
        [{ augment: { cutmix: 1.2 } }, 'augment.cutmix: must be <= 1'],
        [{ earlyStopping: { patience: -1 } }, 'earlyStopping.patience: must be >= 0'],
        [{ earlyStopping: { monitor: 'loss' } }, 'earlyStopping.monitor: invalid value "loss" (allowed: val_loss, val_acc)'],
        [{ earlyStopping: 3 }, 'earlyStopping: expected object, got number 3'],
        [{ seed: -1 }, 'seed: must be >= 0'],
        [{ device: 'cuda:x' }, 'device: invalid value "cuda:x"'],
        [{ threads: 0 }, 'threads: must be >= 1'],
        [{ threads: os.availableParallelism() + 1 }, `threads: must be <= ${os.availableParallelism()} (the CPUs available to this process), got ${os.availableParallelism() + 1}`],
        [{ valFraction: 1 }, 'valFraction: must be < 1'],
        [{ valFraction: 0 }, 'valFraction: must be > 0'],
        [{ limit: 0 }, 'limit: must be >= 1'],
        [{ data: '' }, 'data: must be at least 1 character(s)'],
        [{ name: '../x' }, 'name: invalid value "../x"'],
        [{ name: '..' }, 'name: invalid value ".."'],
        [{ threshold: 1.1 }, 'threshold: must be <= 1'],
        [{ amp: 'fp8' }, 'amp: invalid value "fp8" (allowed: none, bf16, fp16)'],
        [{ amp: 'fp16', device: 'cpu' }, "amp: mixed precision 'fp16' needs a CUDA device"],
        [{ channelsLast: 1 }, 'channelsLast: expected boolean, got number 1'],
        [{ optimizer: { lr: '0.1' } }, 'optimizer.lr: expected number, got string "0.1"'],
      ];
      for (const [overrides, expected] of cases) {
        const e = configError(() => resolveConfig({ overrides }));
        expect(e.message, JSON.stringify(overrides)).to.contain(expected);
      }
    });

    it('reports every issue at once', () => {
      const e = configError(() => resolveConfig({ overrides: { epochs: 0, seed: -1, amp: 'x', bogus: 1 } }));
      expect(e.issues.map((i) => i.path).sort()).to.deep.equal(['amp', 'bogus', 'epochs', 'seed']);
    });

    it('unknown preset and non-object layers', () => {
      expect(configError(() => resolveConfig({ preset: 'resnet' })).message).to.contain(
        'preset: unknown preset "resnet" (allowed: paper-cnn, lightweight, hoc, lightweight-plus, hoc-plus, hoc-deep-plus, res-plus, res-ema-plus, res-ema-duo, robust-plus)',
      );
      expect(configError(() => resolveConfig({ file: [1, 2] })).message).to.contain('config file must be a plain object, got array');
      expect(configError(() => resolveConfig({ overrides: 'x' })).message).to.contain('overrides must be a plain object, got string');
    });
  });

  describe('lrAtEpoch', () => {
    const base = resolveConfig();

    it('none: constant', () => {
      for (const e of [0, 1, 29, 100]) expect(lrAtEpoch(base, e)).to.equal(1e-3);
    });

    it('step: lr · gamma^floor(epoch / stepSize)', () => {
      // lr 0.1, stepSize 3, gamma 0.5: epochs 0-2 → 0.1; 3-5 → 0.05; 6-8 → 0.025; 9 → 0.0125
      const c = resolveConfig({ overrides: { optimizer: { lr: 0.1 }, schedule: { type: 'step', stepSize: 3, gamma: 0.5 } } });
      const expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125];
      expected.forEach((lr, e) => expect(lrAtEpoch(c, e)).to.be.closeTo(lr, 1e-15));
      expect(lrAtEpoch(c, 2.99)).to.equal(0.1); // fractional epochs
    });

    it('cosine without warmup', () => {
      // lr 1, epochs 4, minLr 0: lr(e) = ½(1 + cos(π e / 4))
      //   e0: ½(1 + 1) = 1; e1: ½(1 + √2/2) = 0.8535534; e2: ½(1 + 0) = 0.5; e3: ½(1 − √2/2) = 0.1464466
      //   e4 (past the end): 0, clamped afterwards
      const c = resolveConfig({ overrides: { optimizer: { lr: 1 }, epochs: 4, schedule: 'cosine' } });
      const expected = [1, 0.8535533905932737, 0.5, 0.14644660940672627, 0, 0];
      expected.forEach((lr, e) => expect(lrAtEpoch(c, e)).to.be.closeTo(lr, 1e-12));
    });

    it('cosine with warmup and minLr', () => {
      // lr 1e-3, warmupEpochs 2, epochs 6, minLr 1e-4:
      //   warmup e < 2: lr·(e+1)/(W+1) → e0: 1e-3/3 = 3.3333e-4, e1: 2e-3/3 = 6.6667e-4
      //   cosine over span 6 − 2 = 4, t = (e − 2)/4, lr(t) = 1e-4 + 9e-4·½(1 + cos πt):
      //   e2: t 0   → 1e-3
      //   e3: t 1/4 → 1e-4 + 4.5e-4·(1 + 0.7071068) = 8.6820e-4
      //   e4: t 1/2 → 1e-4 + 4.5e-4 = 5.5e-4
      //   e5: t 3/4 → 1e-4 + 4.5e-4·(1 − 0.7071068) = 2.3180e-4
      //   e6+: minLr 1e-4
      const c = resolveConfig({
        overrides: { optimizer: { lr: 1e-3 }, epochs: 6, schedule: { type: 'cosine', warmupEpochs: 2, minLr: 1e-4 } },
      });
      const r = Math.SQRT1_2;
      const expected = [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-4 + 4.5e-4 * (1 + r), 5.5e-4, 1e-4 + 4.5e-4 * (1 - r), 1e-4, 1e-4];
      expected.forEach((lr, e) => expect(lrAtEpoch(c, e), `epoch ${e}`).to.be.closeTo(lr, 1e-15));
      expect(lrAtEpoch(c, 3)).to.be.closeTo(8.682e-4, 1e-8);
      expect(lrAtEpoch(c, 5)).to.be.closeTo(2.318e-4, 1e-8);
      // the warmup ramp meets the cosine continuously at epoch W (fractional epochs)
      expect(lrAtEpoch(c, 1.999999)).to.be.closeTo(1e-3, 1e-9);
    });

    it('hoc-plus: 1 warmup epoch at half lr, then cosine over 39 epochs', () => {
      const c = resolveConfig({ preset: 'hoc-plus' });
      expect(lrAtEpoch(c, 0)).to.be.closeTo(1e-3, 1e-15); // 2e-3 · 1/2
      expect(lrAtEpoch(c, 1)).to.be.closeTo(2e-3, 1e-15);
      expect(lrAtEpoch(c, 39)).to.be.closeTo(2e-3 * 0.5 * (1 + Math.cos((Math.PI * 38) / 39)), 1e-15);
      // monotone non-increasing after warmup
      for (let e = 2; e < 40; e++) expect(lrAtEpoch(c, e)).to.be.at.most(lrAtEpoch(c, e - 1));
    });

    it('warmup longer than training stays on the ramp, never NaN', () => {
      const c = resolveConfig({ preset: 'hoc-plus', overrides: { epochs: 1, schedule: { warmupEpochs: 3 } } });
      expect(lrAtEpoch(c, 0)).to.be.closeTo(2e-3 / 4, 1e-15);
      expect(lrAtEpoch(c, 3)).to.equal(2e-3);
    });

    it('rejects a negative epoch', () => {
      expect(() => lrAtEpoch(base, -1)).to.throw(/epoch/);
      expect(() => lrAtEpoch(base, NaN)).to.throw(/epoch/);
    });
  });

  describe('modelSpecOf', () => {
    it('original', () => {
      expect(modelSpecOf(resolveConfig({ preset: 'paper-cnn' }).model)).to.deep.equal({
        family: 'original',
        convFilters: [32, 32],
        dense: [64],
        dropout: 0,
        padding: 'valid',
        batchNorm: false,
        hoc: false,
        fusedHoc: false,
      });
    });

    it('lightweight', () => {
      expect(modelSpecOf(resolveConfig({ preset: 'lightweight' }).model)).to.deep.equal({
        family: 'lightweight',
        convFilters: [16, 32],
        dense: [64],
        dropout: 0.5,
        padding: 'same',
        batchNorm: true,
        hoc: false,
        fusedHoc: false,
      });
    });

    it('hoc (fused and unfused)', () => {
      const spec = modelSpecOf(resolveConfig({ preset: 'hoc' }).model);
      expect(spec).to.deep.equal({
        family: 'hoc',
        convFilters: [16, 32],
        dense: [64],
        dropout: 0.5,
        padding: 'same',
        batchNorm: true,
        hoc: true,
        fusedHoc: true,
      });
      expect(modelSpecOf(resolveConfig({ preset: 'hoc', overrides: { model: { fusedHoc: false } } }).model).fusedHoc).to.equal(false);
    });

    it('returns copies of the arrays', () => {
      const c: TrainConfig = resolveConfig({ preset: 'hoc' });
      const spec = modelSpecOf(c.model);
      spec.convFilters.push(1);
      expect(c.model.convFilters).to.deep.equal([16, 32]);
    });
  });

  describe('describeConfig / resolveThreads', () => {
    it('describes presets on one line', () => {
      expect(describeConfig(resolveConfig({ preset: 'paper-cnn' }))).to.equal(
        'original conv[32,32] valid dense[64] drop 0 | adam lr 0.001 | batch 32 x 30 ep | no ES | no aug | seed 42 device auto',
      );
      expect(describeConfig(resolveConfig({ preset: 'hoc-plus' }))).to.equal(
        'hoc conv[16,32] dense[64] drop 0.5 fused | adamw lr 0.002 wd 0.0005 cosine(warmup 1) | batch 32 x 40 ep | ES val_loss p8 | aug hflip shift 2 | seed 42 device auto',
      );
      const s = describeConfig(resolveConfig({ preset: 'lightweight', overrides: { schedule: 'step', amp: 'bf16', limit: 100 } }));
      expect(s).to.contain('step(10, x0.1)').and.contain('amp bf16').and.contain('limit 100/class');
      expect(s).to.not.contain('\n');
    });

    it('resolveThreads', () => {
      expect(resolveThreads(3)).to.equal(3);
      expect(resolveThreads(null)).to.be.a('number').and.at.least(1);
    });
  });
});

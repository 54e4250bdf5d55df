/**
 * The effective configuration of a training run: zod schema, presets, resolution
 * (preset ← config file ← CLI overrides), the learning-rate schedule and the conversion to
 * the native addon's model spec.
 *
 * Resolution rules (`resolveConfig`):
 *  - layers are deep-merged in order preset ← file ← overrides: plain objects merge key by
 *    key, anything else (arrays, null, scalars) replaces; `undefined` values are ignored
 *    (a CLI flag that was not given). Inputs are never mutated.
 *  - shorthands, accepted in every layer: `model: 'hoc'` ≡ `model: { family: 'hoc' }`,
 *    `schedule: 'cosine'` ≡ `schedule: { type: 'cosine' }`, `earlyStopping: false` ≡ `null`,
 *    `earlyStopping: true` ≡ `{}` (all defaults).
 *  - when a layer changes `model.family` (or `schedule.type`), the previous layer's model
 *    (schedule) is replaced instead of merged, so the new family starts from its own
 *    defaults; a layer that only tweaks fields (`{ model: { dropout: 0.2 } }`) merges into
 *    the family from below. A model without a family is `hoc` (the CLI's default preset's family).
 *  - no preset = the schema defaults: the `hoc` model with the `paper-cnn` training (Adam 1e-3,
 *    batch 32, 30 epochs, no early stopping).
 *  - the result is validated strictly (unknown keys are errors); every problem is reported
 *    in one `ConfigError` as `field.path: message (allowed: ...)`.
 *
 * Defaults worth knowing:
 *  - `optimizer.weightDecay` defaults follow PyTorch: 0 for Adam, 1e-2 for AdamW. (Adam's
 *    weight decay is the coupled L2 penalty, AdamW's the decoupled one.)
 *  - `schedule` step defaults (ours): stepSize 10, gamma 0.1.
 *  - `threads: null` = all CPUs available to the process (see `resolveThreads`).
 */
import * as fs from 'fs';
import * as os from 'os';
import { z } from 'zod';
import { ConfigError, issuesFromZod, show, typeName, type ConfigIssue } from './config-issues';
import type { NativeModelSpec } from './native';
import { isPresetName, PRESET_NAMES, PRESETS, type PresetName } from './presets';

export { isPresetName, PRESET_NAMES, PRESETS } from './presets';
export type { Preset, PresetName } from './presets';

export { ConfigError } from './config-issues';
export type { ConfigIssue } from './config-issues';

/** strict object whose unknown-key error lists the allowed keys */
function strictObject<T extends z.ZodRawShape>(shape: T) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `allowed keys: ${keys}` : undefined),
  });
}

// ---------------------------------------------------------------------------
// schema

const filters = (def: number[]) =>
  z
    .array(z.int().min(1).max(1024))
    .min(1)
    .max(4)
    .default(() => [...def]);
const denseLayers = (def: number[]) =>
  z
    .array(z.int().min(1).max(8192))
    .max(3)
    .default(() => [...def]);
const dropout = (def: number) => z.number().min(0).lt(1).default(def);
/** an ensemble of this many independently initialised networks, each trained on its own loss, logits averaged */
const members = z.int().min(1).max(8).default(1);

export const OriginalModelSchema = strictObject({
  family: z.literal('original'),
  convFilters: filters([32, 32]),
  padding: z.enum(['valid', 'same']).default('valid'),
  dense: denseLayers([64]),
  dropout: dropout(0),
  members,
});

export const LightweightModelSchema = strictObject({
  family: z.literal('lightweight'),
  convFilters: filters([16, 32]),
  padding: z.literal('same').default('same'),
  dense: denseLayers([64]),
  dropout: dropout(0.5),
  convsPerBlock: z.int().min(1).max(4).default(1),
  residual: z.boolean().default(false),
  members,
});

export const HocModelSchema = strictObject({
  family: z.literal('hoc'),
  convFilters: filters([16, 32]),
  padding: z.literal('same').default('same'),
  dense: denseLayers([64]),
  dropout: dropout(0.5),
  fusedHoc: z.boolean().default(true),
  convsPerBlock: z.int().min(1).max(4).default(1),
  residual: z.boolean().default(false),
  members,
});

export const ModelSchema = z.discriminatedUnion('family', [OriginalModelSchema, LightweightModelSchema, HocModelSchema]);

export const OptimizerSchema = strictObject({
  name: z.enum(['adam', 'adamw']).default('adam'),
  lr: z.number().gt(0).default(1e-3),
  weightDecay: z.number().min(0).optional(),
  betas: z
    .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
    .default(() => [0.9, 0.999] as [number, number]),
}).transform((o) => ({
  name: o.name,
  lr: o.lr,
  weightDecay: o.weightDecay ?? (o.name === 'adamw' ? 1e-2 : 0),
  betas: o.betas,
}));

export const ScheduleSchema = z.discriminatedUnion('type', [
  strictObject({ type: z.literal('none') }),
  strictObject({
    type: z.literal('cosine'),
    warmupEpochs: z.int().min(0).default(0),
    minLr: z.number().min(0).default(0),
  }),
  strictObject({
    type: z.literal('step'),
    stepSize: z.int().min(1).default(10),
    gamma: z.number().gt(0).max(1).default(0.1),
  }),
]);

export const AugmentSchema = strictObject({
  hflip: z.boolean().default(false),
  shift: z.int().min(0).max(8).default(0),
  /** CutMix: the probability that a train batch gets a box pasted from shuffled images, targets mixed by area (0 = off). */
  cutmix: z.number().min(0).max(1).default(0),
});

const range = (lo: z.ZodNumber, def: [number, number]) =>
  z
    .tuple([lo, lo])
    .refine(([a, b]) => a <= b, { message: 'min must not exceed max' })
    .default(() => [...def] as [number, number]);

/** Training-time degradations of a share of the train images each epoch (src/robustness/augment.ts). */
export const RobustAugmentSchema = strictObject({
  probability: z.number().min(0).max(1).default(0.5),
  jpegProbability: z.number().min(0).max(1).default(0.5),
  ops: z.array(z.enum(['blur', 'resize', 'noise'])).default(() => ['blur', 'resize', 'noise'] as ('blur' | 'resize' | 'noise')[]),
  jpegQuality: range(z.int().min(1).max(100), [30, 95]),
  blurSigma: range(z.number().gt(0).max(8), [0.3, 1.2]),
  resizeTo: range(z.int().min(4).max(31), [12, 28]),
  noiseSigma: range(z.number().gt(0).max(128), [1, 8]),
});

export const EarlyStoppingSchema = strictObject({
  monitor: z.enum(['val_loss', 'val_acc']).default('val_loss'),
  patience: z.int().min(0).default(3),
  minDelta: z.number().min(0).default(0),
  restoreBest: z.boolean().default(true),
});

const NAME_RE = /^[A-Za-z0-9._-]{1,100}$/;

export const TrainConfigSchema = strictObject({
  model: ModelSchema.prefault({ family: 'hoc' }),
  optimizer: OptimizerSchema.prefault({}),
  schedule: ScheduleSchema.prefault({ type: 'none' }),
  augment: AugmentSchema.prefault({}),
  batchSize: z.int().min(1).max(65536).default(32),
  epochs: z.int().min(1).default(30),
  earlyStopping: EarlyStoppingSchema.nullable().default(null),
  seed: z.int().min(0).default(42),
  device: z
    .string()
    .regex(/^(cpu|cuda|cuda:\d+|auto)$/)
    .default('auto'),
  threads: z.int().min(1).nullable().default(null),
  valFraction: z.number().gt(0).lt(1).default(0.1),
  limit: z.int().min(1).nullable().default(null),
  data: z.string().min(1).nullable().default(null),
  outDir: z.string().min(1).default('runs'),
  name: z
    .string()
    .regex(NAME_RE)
    .refine((s) => s !== '.' && s !== '..')
    .nullable()
    .default(null),
  threshold: z.number().min(0).max(1).default(0.5),
  amp: z.enum(['none', 'bf16', 'fp16']).default('none'),
  /** BCE against smoothed targets y (1 - e) + e / 2; 0 = plain labels. */
  labelSmoothing: z.number().min(0).lt(0.5).default(0),
  /**
   * Decay of a moving average of the weights updated after every step (e.g. 0.999); validation,
   * best.pt and the final model use the average. null = off.
   */
  ema: z.number().gt(0).lt(1).nullable().default(null),
  /** Robustness augmentation (JPEG re-saves, blur, down-up resizes, noise); null = off. */
  robustAugment: RobustAugmentSchema.nullable().default(null),
  /**
   * Start from these weights instead of a random init (fine-tuning): a run directory, a checkpoint,
   * or 'pretrained'; its model must be this config's. The optimizer starts fresh. null = random init.
   */
  initFrom: z.string().min(1).nullable().default(null),
  /** NHWC activations and conv weights: oneDNN's native layout; 1.3-2x faster training on CPU here. */
  channelsLast: z.boolean().default(true),
  /**
   * Stream the train split to the device in shards of this many images (bounded memory for data
   * larger than RAM); null hands the whole split over once.
   */
  shardSize: z.int().min(64).nullable().default(null),
  /** Data decoding: resize images that are not 32x32 (bilinear) instead of rejecting them. */
  resize: z.boolean().default(false),
  /** Data decoding: fail on the first unreadable image instead of skipping it. */
  strict: z.boolean().default(false),
  /** Class folder name -> label (0 FAKE, 1 REAL); null = { FAKE: 0, REAL: 1 }. */
  classMap: z.record(z.string(), z.union([z.literal(0), z.literal(1)])).nullable().default(null),
  /** Decoded-data cache folder; null = the default (~/.cache/cifake-torch), false = no cache. */
  cacheDir: z.union([z.string().min(1), z.literal(false)]).nullable().default(null),
}).superRefine((c, ctx) => {
  if (c.amp === 'fp16' && c.device === 'cpu') {
    ctx.addIssue({
      code: 'custom',
      path: ['amp'],
      message: `mixed precision 'fp16' needs a CUDA device, but device is 'cpu' (use amp 'bf16' or 'none' on CPU, or device cuda/auto)`,
    });
  }
  if (c.schedule.type === 'cosine' && c.schedule.minLr > c.optimizer.lr) {
    ctx.addIssue({
      code: 'custom',
      path: ['schedule', 'minLr'],
      message: `must not exceed optimizer.lr (${c.optimizer.lr}), got ${c.schedule.minLr}`,
    });
  }
});

/** The validated, fully defaulted training config (plain JSON). */
export type TrainConfig = z.output<typeof TrainConfigSchema>;
/** What the schema accepts (defaulted fields optional); shorthands are handled by resolveConfig. */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
export type ModelConfig = TrainConfig['model'];
export type ModelFamily = ModelConfig['family'];
export type OptimizerConfig = TrainConfig['optimizer'];
export type ScheduleConfig = TrainConfig['schedule'];
export type EarlyStoppingConfig = NonNullable<TrainConfig['earlyStopping']>;

// ---------------------------------------------------------------------------
// resolution

type Obj = Record<string, unknown>;

function isPlainObject(v: unknown): v is Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (isPlainObject(v)) {
    const o: Obj = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = clone(x);
    return o as T;
  }
  return v;
}

/** expand shorthands of one layer (returns a fresh object) */
function normalizeLayer(layer: unknown, where: string): Obj {
  if (layer === undefined || layer === null) return {};
  if (!isPlainObject(layer)) {
    throw new ConfigError([{ path: '', message: `${where} must be a plain object, got ${typeName(layer)}` }]);
  }
  const o = clone(layer);
  if (typeof o.model === 'string') o.model = { family: o.model };
  if (typeof o.schedule === 'string') o.schedule = { type: o.schedule };
  if (o.earlyStopping === false) o.earlyStopping = null;
  else if (o.earlyStopping === true) o.earlyStopping = {};
  return o;
}

/** discriminator keys: a layer that changes these replaces the object below instead of merging */
const DISCRIMINATORS: Record<string, string> = { model: 'family', schedule: 'type' };

function deepMerge(base: Obj, over: Obj, path: string[] = []): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    if (isPlainObject(v) && isPlainObject(b)) {
      const disc = path.length === 0 ? DISCRIMINATORS[k] : undefined;
      if (disc && v[disc] !== undefined && v[disc] !== b[disc]) out[k] = clone(v);
      else out[k] = deepMerge(b, v, [...path, k]);
    } else {
      out[k] = clone(v);
    }
  }
  return out;
}

export interface ResolveOptions {
  /** preset name (default: none = schema defaults, which equal 'paper-cnn') */
  preset?: PresetName | string | null;
  /** parsed JSON config file */
  file?: unknown;
  /** CLI flags etc.; `undefined` values are ignored */
  overrides?: unknown;
}

/**
 * Merge preset ← file ← overrides and validate. Throws `ConfigError` listing every problem.
 */
export function resolveConfig(options: ResolveOptions = {}): TrainConfig {
  const { preset, file, overrides } = options;
  let base: Obj = {};
  if (preset !== undefined && preset !== null) {
    if (!isPresetName(preset)) {
      throw new ConfigError([{ path: 'preset', message: `unknown preset ${show(preset)} (allowed: ${PRESET_NAMES.join(', ')})` }]);
    }
    base = normalizeLayer(PRESETS[preset].config, 'preset');
  }
  let merged = deepMerge(base, normalizeLayer(file, 'config file'));
  merged = deepMerge(merged, normalizeLayer(overrides, 'overrides'));
  if (isPlainObject(merged.model) && merged.model.family === undefined) {
    merged.model = { family: 'hoc', ...merged.model };
  }
  return validateConfig(merged);
}

/** `threads` above the CPUs of this machine would oversubscribe them. */
function cpuIssues(input: unknown): ConfigIssue[] {
  const threads = isPlainObject(input) ? input.threads : undefined;
  const cpus = Math.max(1, os.availableParallelism());
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads <= cpus) return [];
  return [{ path: 'threads', message: `must be <= ${cpus} (the CPUs available to this process), got ${threads}` }];
}

export interface ValidateOptions {
  /** The file the config came from, named in the error. */
  source?: string;
  /**
   * Reject `threads` above this machine's CPUs (default true: the config is about to run). A
   * stored config that is only read (a run evaluated or reported elsewhere) passes false.
   */
  forThisMachine?: boolean;
}

/** Validate an already merged object (no shorthands); throws ConfigError listing every problem. */
export function validateConfig(input: unknown, opts: ValidateOptions | string = {}): TrainConfig {
  const { source, forThisMachine = true } = typeof opts === 'string' ? { source: opts } : opts;
  const r = TrainConfigSchema.safeParse(input, { reportInput: true });
  const issues = [...(r.success ? [] : issuesFromZod(r.error)), ...(forThisMachine ? cpuIssues(input) : [])];
  if (issues.length || !r.success) throw new ConfigError(issues, source);
  return r.data;
}

/** Parses a JSON config file; a file that cannot be read or is not JSON is a ConfigError naming it. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read the file: ${(e as Error).message}` }], file);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError([{ path: '', message: `not valid JSON: ${(e as Error).message}` }], file);
  }
}

// ---------------------------------------------------------------------------
// helpers for the fit loop / CLI

/**
 * Learning rate at `epoch` (0-based). `epoch` may be fractional (epoch + batch/batches)
 * for per-iteration updates; integer epochs give the per-epoch schedule.
 *  - none:   lr
 *  - step:   lr · gamma^floor(epoch / stepSize)
 *  - cosine: linear warmup for W = warmupEpochs epochs, lr · (epoch + 1) / (W + 1) (so no
 *            epoch trains at 0 and the ramp meets the cosine continuously at epoch W), then
 *            minLr + (lr − minLr) · ½ · (1 + cos(π · (epoch − W) / (epochs − W))),
 *            i.e. the cosine reaches minLr at `epochs` (one past the last epoch, as
 *            PyTorch's CosineAnnealingLR(T_max = epochs − W)); clamped at minLr beyond.
 */
export function lrAtEpoch(config: Pick<TrainConfig, 'optimizer' | 'schedule' | 'epochs'>, epoch: number): number {
  if (!(Number.isFinite(epoch) && epoch >= 0)) throw new RangeError(`lrAtEpoch: epoch must be a number >= 0, got ${String(epoch)}`);
  const lr = config.optimizer.lr;
  const s = config.schedule;
  switch (s.type) {
    case 'none':
      return lr;
    case 'step':
      return lr * Math.pow(s.gamma, Math.floor(epoch / s.stepSize));
    case 'cosine': {
      const w = s.warmupEpochs;
      if (epoch < w) return (lr * (epoch + 1)) / (w + 1);
      const span = config.epochs - w;
      if (span <= 0) return lr;
      const t = Math.min(1, (epoch - w) / span);
      return s.minLr + (lr - s.minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
    }
  }
}

/** Model spec object expected by the native addon. */
export type ModelSpec = NativeModelSpec;

/** Block shape fields, sent only when they differ from a plain one-conv block (older checkpoints' specs stay as they were). */
function blocks(model: { convsPerBlock: number; residual: boolean }): Partial<ModelSpec> {
  const out: Partial<ModelSpec> = {};
  if (model.convsPerBlock !== 1) out.convsPerBlock = model.convsPerBlock;
  if (model.residual) out.residual = true;
  return out;
}

export function modelSpecOf(model: ModelConfig): ModelSpec {
  const common = { convFilters: [...model.convFilters], dense: [...model.dense], dropout: model.dropout, ...(model.members > 1 ? { members: model.members } : {}) };
  switch (model.family) {
    case 'original':
      return { family: 'original', ...common, padding: model.padding, batchNorm: false, hoc: false, fusedHoc: false };
    case 'lightweight':
      return { family: 'lightweight', ...common, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false, ...blocks(model) };
    case 'hoc':
      return { family: 'hoc', ...common, padding: 'same', batchNorm: true, hoc: true, fusedHoc: model.fusedHoc, ...blocks(model) };
  }
}

/** Number of CPU threads to use: `threads`, or all CPUs available to the process when null. */
export function resolveThreads(threads: number | null): number {
  return threads ?? Math.max(1, os.availableParallelism());
}

function fmtNum(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(3).replace(/\.?0+(e|$)/, '$1');
}

/** The architecture in one phrase, e.g. `lightweight conv[32,64,128] dense[128] drop 0.3 x2 residual`. */
export function describeModel(m: ModelConfig): string {
  let model = `${m.family} conv[${m.convFilters.join(',')}]${m.family === 'original' ? ` ${m.padding}` : ''} dense[${m.dense.join(',')}] drop ${fmtNum(m.dropout)}`;
  if (m.family === 'hoc') model += m.fusedHoc ? ' fused' : ' unfused';
  if (m.family !== 'original' && m.convsPerBlock > 1) model += ` x${m.convsPerBlock}`;
  if (m.family !== 'original' && m.residual) model += ' residual';
  if (m.members > 1) model += ` ensemble of ${m.members}`;
  return model;
}

/**
 * Short one-line description, e.g.
 * `hoc conv[16,32] dense[64] drop 0.5 fused | adamw lr 0.002 wd 0.0005 cosine(warmup 1) | batch 32 x 40 ep | ES val_loss p8 | aug hflip shift 2 | seed 42 device auto`
 */
export function describeConfig(c: TrainConfig): string {
  return `${describeModel(c.model)} | ${describeTraining(c)}`;
}

/** describeConfig without the model: how it trains (optimizer, schedule, batches, stopping, augmentation, seed, extras). */
export function describeTraining(c: TrainConfig): string {
  const o = c.optimizer;
  let opt = `${o.name} lr ${fmtNum(o.lr)}${o.weightDecay ? ` wd ${fmtNum(o.weightDecay)}` : ''}`;
  const s = c.schedule;
  if (s.type === 'cosine') opt += ` cosine(warmup ${s.warmupEpochs}${s.minLr ? `, min ${fmtNum(s.minLr)}` : ''})`;
  else if (s.type === 'step') opt += ` step(${s.stepSize}, x${fmtNum(s.gamma)})`;
  const es = c.earlyStopping ? `ES ${c.earlyStopping.monitor} p${c.earlyStopping.patience}` : 'no ES';
  const a = c.augment;
  let aug = a.hflip || a.shift || a.cutmix ? `aug${a.hflip ? ' hflip' : ''}${a.shift ? ` shift ${a.shift}` : ''}${a.cutmix ? ` cutmix ${fmtNum(a.cutmix)}` : ''}` : 'no aug';
  if (c.robustAugment) aug += ` robust p${fmtNum(c.robustAugment.probability)}/jpeg p${fmtNum(c.robustAugment.jpegProbability)}`;
  const extra = [c.amp !== 'none' ? `amp ${c.amp}` : '', c.labelSmoothing ? `smooth ${fmtNum(c.labelSmoothing)}` : '', c.ema !== null ? `ema ${fmtNum(c.ema)}` : '', c.channelsLast ? '' : 'NCHW', c.limit !== null ? `limit ${c.limit}/class` : '', c.initFrom ? `init ${c.initFrom}` : '']
    .filter(Boolean)
    .join(' ');
  return `${opt} | batch ${c.batchSize} x ${c.epochs} ep | ${es} | ${aug} | seed ${c.seed} device ${c.device}${extra ? ` ${extra}` : ''}`;
}

// How a configuration's problems are reported: one ConfigError listing every issue with its field
// path, the allowed values of each field and (for a file) the file's name; zod's issues translated.
import type { z } from 'zod';

// ---------------------------------------------------------------------------
// allowed-values table, used to build error messages

/** Human description of allowed values per field; array items use `[]`. */
const ALLOWED: Record<string, string> = {
  model: "an object { family, ... } or a family name: 'original', 'lightweight', 'hoc'",
  'model.family': 'original, lightweight, hoc',
  'model.convFilters': '1 to 4 integers, each 1..1024 (one per conv block)',
  'model.convsPerBlock': 'integer 1..4 (3x3 convs per block; lightweight and hoc)',
  'model.residual': 'true, false (lightweight and hoc)',
  'model.members': 'integer 1..8 (independently initialised networks, each trained on its own loss, logits averaged)',
  'model.convFilters[]': 'integer 1..1024',
  'model.padding': 'valid, same; lightweight and hoc: same only',
  'model.dense': '0 to 3 integers, each 1..8192',
  'model.dense[]': 'integer 1..8192',
  'model.dropout': 'number in [0, 1)',
  'model.fusedHoc': 'true, false',
  optimizer: 'an object { name, lr, weightDecay, betas }',
  'optimizer.name': 'adam, adamw',
  'optimizer.lr': 'number > 0',
  'optimizer.weightDecay': 'number >= 0',
  'optimizer.betas': '[beta1, beta2], each in [0, 1)',
  'optimizer.betas[]': 'number in [0, 1)',
  schedule: "'none', 'cosine', 'step' or an object { type, ... }",
  'schedule.type': 'none, cosine, step',
  'schedule.warmupEpochs': 'integer >= 0',
  'schedule.minLr': 'number >= 0, not above optimizer.lr',
  'schedule.stepSize': 'integer >= 1',
  'schedule.gamma': 'number in (0, 1]',
  augment: 'an object { hflip, shift, cutmix }',
  'augment.hflip': 'true, false',
  'augment.shift': 'integer 0..8 pixels',
  'augment.cutmix': 'probability in [0, 1] that a batch is cut-mixed',
  batchSize: 'integer 1..65536',
  epochs: 'integer >= 1',
  earlyStopping: 'null (off) or an object { monitor, patience, minDelta, restoreBest }',
  'earlyStopping.monitor': 'val_loss, val_acc',
  'earlyStopping.patience': 'integer >= 0; 0 = never stop',
  'earlyStopping.minDelta': 'number >= 0',
  'earlyStopping.restoreBest': 'true, false',
  seed: 'integer >= 0',
  device: 'cpu, cuda, cuda:N, auto',
  threads: 'integer from 1 to the CPUs available, or null = all available CPUs',
  valFraction: 'number in (0, 1); validation drives early stopping and the best checkpoint',
  limit: 'integer >= 1 = images per class, or null = no limit',
  data: 'a path string, or null = the embedded demo set',
  outDir: 'a non-empty path string',
  name: "null, or 1-100 characters from A-Z a-z 0-9 . _ - other than '.' and '..'",
  threshold: 'number in [0, 1]',
  amp: 'none, bf16, fp16',
  labelSmoothing: 'number in [0, 0.5)',
  ema: 'null (off), or the decay of the weight average, a number in (0, 1) such as 0.999',
  initFrom: "null (random init), or a run directory, a checkpoint or 'pretrained' with this config's model",
  robustAugment: 'null (off) or an object { probability, jpegProbability, ops, jpegQuality, blurSigma, resizeTo, noiseSigma }',
  'robustAugment.probability': 'number in [0, 1]',
  'robustAugment.jpegProbability': 'number in [0, 1]',
  'robustAugment.ops[]': 'blur, resize, noise',
  'robustAugment.jpegQuality': '[min, max], integers 1..100, min <= max',
  'robustAugment.blurSigma': '[min, max], numbers in (0, 8], min <= max',
  'robustAugment.resizeTo': '[min, max], integers 4..31, min <= max',
  'robustAugment.noiseSigma': '[min, max], numbers in (0, 128], min <= max',
  channelsLast: 'true, false',
};

// ---------------------------------------------------------------------------
// errors

export interface ConfigIssue {
  /** dotted field path, e.g. `model.convFilters[1]`; '' for the root */
  path: string;
  /** message without the path */
  message: string;
}

/** Invalid configuration. `message` lists one `field.path: message (allowed: ...)` per line. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  /** `source`: the file the config came from, named in the message. */
  constructor(
    issues: ConfigIssue[],
    readonly source?: string,
  ) {
    const lines = issues.map((i) => `  ${i.path || '(config)'}: ${i.message}`);
    const where = source ? ` in ${source}` : '';
    super(`Invalid training config${where} (${issues.length} issue${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${String(p)}` : String(p);
  }
  return s;
}

/** table key: array indices collapsed to [] */
function allowedKey(path: ReadonlyArray<PropertyKey>): string {
  return formatPath(path.map((p) => (typeof p === 'number' ? -1 : p))).replace(/\[-1\]/g, '[]');
}

export function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(v);
  }
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function withAllowed(path: ReadonlyArray<PropertyKey>, message: string): string {
  const allowed = ALLOWED[allowedKey(path)];
  return allowed ? `${message} (allowed: ${allowed})` : message;
}

export function issuesFromZod(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of error.issues) {
    const raw = iss as z.core.$ZodIssue & { input?: unknown };
    const input = raw.input;
    const path = iss.path;
    switch (iss.code) {
      case 'unrecognized_keys': {
        const allowed = iss.message.startsWith('allowed keys: ') ? iss.message.slice('allowed keys: '.length) : '';
        for (const key of iss.keys) {
          out.push({
            path: formatPath([...path, key]),
            message: `unknown key${allowed ? ` (allowed keys${path.length ? ` in ${formatPath(path)}` : ''}: ${allowed})` : ''}`,
          });
        }
        break;
      }
      case 'invalid_type': {
        const msg =
          input === undefined
            ? 'is required'
            : iss.expected === 'int' && typeof input === 'number'
              ? `must be an integer, got ${show(input)}`
              : `expected ${iss.expected}, got ${typeName(input)} ${show(input)}`;
        out.push({ path: formatPath(path), message: withAllowed(path, msg) });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const small = iss.code === 'too_small';
        const bound = small ? (iss as z.core.$ZodIssueTooSmall).minimum : (iss as z.core.$ZodIssueTooBig).maximum;
        const inclusive = iss.inclusive ?? true;
        let msg: string;
        if (iss.origin === 'array' || iss.origin === 'set') {
          const n = Array.isArray(input) ? input.length : '?';
          msg = `must have ${small ? 'at least' : 'at most'} ${String(bound)} item(s), got ${n}`;
        } else if (iss.origin === 'string') {
          msg = small ? `must be at least ${String(bound)} character(s)` : `must be at most ${String(bound)} characters`;
        } else {
          const op = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
          msg = `must be ${op} ${String(bound)}, got ${show(input)}`;
        }
        out.push({ path: formatPath(path), message: withAllowed(path, msg) });
        break;
      }
      case 'invalid_union': {
        const disc = (iss as { discriminator?: string }).discriminator;
        if (disc !== undefined) {
          // path already ends in the discriminator key; input is the enclosing object
          const value = input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[disc] : input;
          const msg = value === undefined ? 'is required' : `invalid value ${show(value)}`;
          out.push({ path: formatPath(path), message: withAllowed(path, msg) });
        } else {
          out.push({ path: formatPath(path), message: withAllowed(path, `invalid value ${show(input)}`) });
        }
        break;
      }
      case 'invalid_value':
      case 'invalid_format':
        out.push({ path: formatPath(path), message: withAllowed(path, `invalid value ${show(input)}`) });
        break;
      case 'custom':
        if (iss.message && iss.message !== 'Invalid input') out.push({ path: formatPath(path), message: iss.message });
        else out.push({ path: formatPath(path), message: withAllowed(path, `invalid value ${show(input)}`) });
        break;
      default:
        out.push({ path: formatPath(path), message: withAllowed(path, iss.message) });
    }
  }
  return out;
}

/**
 * The training presets: the paper's setups (faithful reproductions of the CIFAKE seed) and our own
 * recipes, each a partial config that the schema defaults complete (see config.ts's resolveConfig).
 */
import type { TrainConfigInput } from './config';

export const PRESET_NAMES = ['paper-cnn', 'lightweight', 'hoc', 'lightweight-plus', 'hoc-plus', 'hoc-deep-plus', 'res-plus', 'res-ema-plus', 'res-ema-duo', 'robust-plus'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  name: PresetName;
  /** 'paper': reproduces the CIFAKE seed setup; 'ours': our own tuned recipe, not from the paper */
  origin: 'paper' | 'ours';
  description: string;
  /** partial config; schema defaults fill the rest */
  config: TrainConfigInput;
}

/** Our recipe for the '-plus' presets (not the paper's): AdamW + cosine + light augmentation. */
const PLUS_RECIPE = {
  optimizer: { name: 'adamw', lr: 2e-3, weightDecay: 5e-4 },
  schedule: { type: 'cosine', warmupEpochs: 1, minLr: 0 },
  augment: { hflip: true, shift: 2 },
  batchSize: 32,
  epochs: 40,
  earlyStopping: { monitor: 'val_loss', patience: 8, minDelta: 0, restoreBest: true },
} as const satisfies Partial<TrainConfigInput>;

/** The residual model and its training, shared by res-plus and the presets built on it. */
const RES_PLUS = {
  model: { family: 'lightweight', convFilters: [32, 64, 128], convsPerBlock: 2, residual: true, dense: [64], dropout: 0.3 },
  ...PLUS_RECIPE,
  augment: { hflip: true, shift: 4 },
  batchSize: 64,
  epochs: 40,
  earlyStopping: { monitor: 'val_loss', patience: 10, minDelta: 0, restoreBest: true },
} as const satisfies Partial<TrainConfigInput>;

function freeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) freeze(v);
    Object.freeze(o);
  }
  return o;
}

export const PRESETS: Readonly<Record<PresetName, Preset>> = freeze({
  'paper-cnn': {
    name: 'paper-cnn',
    origin: 'paper',
    description: 'Bird & Lotfi CIFAKE CNN: conv 32-32 (valid padding), dense 64, Adam lr 1e-3, batch 32, 30 epochs, no early stopping',
    config: {
      model: { family: 'original' },
      optimizer: { name: 'adam', lr: 1e-3 },
      batchSize: 32,
      epochs: 30,
      earlyStopping: null,
    },
  },
  lightweight: {
    name: 'lightweight',
    origin: 'paper',
    description: 'lightweight CNN (conv 16-32, same padding, batch norm, dense 64, dropout 0.5), Adam lr 1e-3, batch 32, 30 epochs, early stopping on val_loss (patience 3, restore best)',
    config: {
      model: { family: 'lightweight' },
      optimizer: { name: 'adam', lr: 1e-3 },
      batchSize: 32,
      epochs: 30,
      earlyStopping: { monitor: 'val_loss', patience: 3, restoreBest: true },
    },
  },
  hoc: {
    name: 'hoc',
    origin: 'paper',
    description: 'lightweight CNN with higher-order (x, x²) convolutions, fused; same training as lightweight',
    config: {
      model: { family: 'hoc' },
      optimizer: { name: 'adam', lr: 1e-3 },
      batchSize: 32,
      epochs: 30,
      earlyStopping: { monitor: 'val_loss', patience: 3, restoreBest: true },
    },
  },
  'lightweight-plus': {
    name: 'lightweight-plus',
    origin: 'ours',
    description: 'ours, not the paper: lightweight CNN with AdamW lr 2e-3 wd 5e-4, cosine schedule (1 warmup epoch), hflip + 2px shift, 40 epochs, early stopping patience 8',
    config: { model: { family: 'lightweight' }, ...PLUS_RECIPE },
  },
  'hoc-plus': {
    name: 'hoc-plus',
    origin: 'ours',
    description: 'ours, not the paper: HOC CNN with AdamW lr 2e-3 wd 5e-4, cosine schedule (1 warmup epoch), hflip + 2px shift, 40 epochs, early stopping patience 8',
    config: { model: { family: 'hoc' }, ...PLUS_RECIPE },
  },
  'hoc-deep-plus': {
    name: 'hoc-deep-plus',
    origin: 'ours',
    description: 'ours, not the paper: three HOC blocks (32-64-128 filters), dense 64, dropout 0.5; the -plus training (AdamW 2e-3, cosine, hflip + 2px shift) for 30 epochs, early stopping patience 8',
    config: { model: { family: 'hoc', convFilters: [32, 64, 128] }, ...PLUS_RECIPE, epochs: 30 },
  },
  'res-plus': {
    name: 'res-plus',
    origin: 'ours',
    description: 'ours, not the paper: three residual blocks of two 3x3 convs (32-64-128 filters, BN, 1x1 projections), dense 64, dropout 0.3; AdamW 2e-3 wd 5e-4, cosine (1 warmup epoch), hflip + 4px shift (pad-and-crop), batch 64, 40 epochs, early stopping patience 10',
    config: RES_PLUS,
  },
  'res-ema-plus': {
    name: 'res-ema-plus',
    origin: 'ours',
    description:
      'ours, not the paper: res-plus with a moving average of the weights (decay 0.999; validation, best.pt and the final model use it), a 30-epoch cosine, early stopping on val_acc (patience 10)',
    config: { ...RES_PLUS, epochs: 30, ema: 0.999, earlyStopping: { ...RES_PLUS.earlyStopping, monitor: 'val_acc' } },
  },
  'res-ema-duo': {
    name: 'res-ema-duo',
    origin: 'ours',
    description:
      'ours, not the paper: two res-ema-plus networks in one model (859k parameters), each initialised apart and trained on its own loss over the same batches, logits averaged; validation, early stopping and the saved model are the average',
    config: { ...RES_PLUS, model: { ...RES_PLUS.model, members: 2 }, epochs: 30, ema: 0.999, earlyStopping: { ...RES_PLUS.earlyStopping, monitor: 'val_acc' } },
  },
  'robust-plus': {
    name: 'robust-plus',
    origin: 'ours',
    description:
      'ours, not the paper: res-plus trained on degraded copies too (each epoch half the images get one of blur/down-up resize/noise, half a JPEG re-save at quality 30-95), for detectors that meet re-saved and resized images; fine-tune with --init-from',
    config: { ...RES_PLUS, robustAugment: { probability: 0.5, jpegProbability: 0.5 } },
  },
});

export function isPresetName(s: unknown): s is PresetName {
  return typeof s === 'string' && (PRESET_NAMES as readonly string[]).includes(s);
}


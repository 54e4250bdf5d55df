// Per-image scores of a run (val and test), which the ROC curve and the score histogram need.
// Read from the run directory when training wrote them (scores-<split>.json, or <split>-scores.json),
// otherwise computed once by loading the run's checkpoint and its data, and written back
// (scores-<split>.json, same format) so that the next report is instant.
import fs from 'node:fs';
import path from 'node:path';

import type { TrainConfig } from '../config';
import { loadSplit, stratifiedSplit, type DatasetSummary, type ImageSet } from '../data';
import { ensureSynth } from '../data/synth';
import { sigmoid } from '../metrics';
import { CifakeModel } from '../model';
import { readJson, RUN_FILES, writeJson } from '../train/run-dir';

export type ScoreSplit = 'val' | 'test';
export const SCORE_SPLITS: readonly ScoreSplit[] = ['val', 'test'];

/** File names a run's scores may have, in order of preference. The first is the one written here. */
export function scoreFileNames(split: string): string[] {
  return [`scores-${split}.json`, `${split}-scores.json`];
}

export interface SplitScores {
  split: ScoreSplit;
  /** 0 = FAKE, 1 = REAL. */
  labels: Uint8Array;
  /** Raw logits when the file had them (the AUC and ROC use them: no sigmoid saturation ties). */
  logits: Float64Array | null;
  /** P(REAL) of each image. */
  pReal: Float64Array;
  /** Image names relative to the data root, when known. */
  files: string[] | null;
  /** The file the scores were read from or written to (null when not written). */
  file: string | null;
  /** 'run': written by training (or an earlier report); 'computed': by this report, from the checkpoint. */
  origin: 'run' | 'computed';
}

/** What a scores file holds (the fields fit.ts writes; pReal/probs accepted instead of logits). */
interface ScoresFile {
  split?: string;
  files?: string[];
  labels?: number[];
  logits?: number[];
  pReal?: number[];
  probs?: number[];
}

function parseScores(file: string, split: ScoreSplit, origin: SplitScores['origin']): SplitScores {
  const raw = readJson<ScoresFile>(file);
  const labels = raw?.labels;
  if (!Array.isArray(labels)) throw new Error(`${file}: no labels array`);
  const n = labels.length;
  const logitsIn = Array.isArray(raw.logits) ? raw.logits : null;
  const probsIn = Array.isArray(raw.pReal) ? raw.pReal : Array.isArray(raw.probs) ? raw.probs : null;
  if (!logitsIn && !probsIn) throw new Error(`${file}: neither logits nor pReal`);
  const values = (logitsIn ?? probsIn) as number[];
  if (values.length !== n) throw new Error(`${file}: ${values.length} scores for ${n} labels`);
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`${file}: labels[${i}] is ${String(labels[i])}, not 0 or 1`);
    if (typeof values[i] !== 'number' || Number.isNaN(values[i])) throw new Error(`${file}: score ${i} is not a number`);
  }
  const logits = logitsIn ? Float64Array.from(logitsIn) : null;
  return {
    split,
    labels: Uint8Array.from(labels),
    logits,
    pReal: logits ? sigmoid(logits) : Float64Array.from(probsIn as number[]),
    files: Array.isArray(raw.files) && raw.files.length === n ? raw.files : null,
    file,
    origin,
  };
}

/** The scores files present in a run directory, by split. Unreadable files are reported in `problems`. */
export function readRunScores(runDir: string): { scores: Partial<Record<ScoreSplit, SplitScores>>; problems: string[] } {
  const scores: Partial<Record<ScoreSplit, SplitScores>> = {};
  const problems: string[] = [];
  for (const split of SCORE_SPLITS) {
    for (const name of scoreFileNames(split)) {
      const file = path.join(runDir, name);
      if (!fs.existsSync(file)) continue;
      try {
        scores[split] = parseScores(file, split, 'run');
        break;
      } catch (e) {
        problems.push(`ignored ${name}: ${(e as Error).message}`);
      }
    }
  }
  return { scores, problems };
}

export interface RunAssetsOptions {
  /** Data path to use instead of the one the run was trained on. */
  data?: string;
  device?: string;
  threads?: number;
  onLog?: (message: string) => void;
}

/** The dataset a run used: explicit, else data.json's absolute source, else config.data, else the demo set. */
export async function resolveRunData(
  runDir: string,
  config: Pick<TrainConfig, 'data'>,
  dataSummary: { train?: { source?: string } } | null,
  explicit?: string,
): Promise<string> {
  if (explicit) return explicit;
  const recorded = dataSummary?.train?.source;
  if (recorded && fs.existsSync(recorded)) return recorded;
  if (config.data) {
    for (const candidate of [config.data, path.resolve(runDir, '..', '..', config.data)]) {
      if (fs.existsSync(candidate)) return candidate;
    }
    throw new Error(`the run's data ${config.data} was not found (pass the data path explicitly)`);
  }
  return ensureSynth();
}

/** The checkpoint whose predictions metrics.json reports: best.pt when the best weights were restored, else last.pt. */
export function reportedCheckpoint(runDir: string, config: Pick<TrainConfig, 'earlyStopping'>): string {
  const order = config.earlyStopping?.restoreBest ? [RUN_FILES.best, RUN_FILES.last] : [RUN_FILES.last, RUN_FILES.best];
  for (const f of order) {
    const p = path.join(runDir, f);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${runDir} holds no checkpoint (${RUN_FILES.best} or ${RUN_FILES.last})`);
}

/**
 * A finished run's model and data, loaded on first use: the checkpoint metrics.json reports, the
 * validation split rebuilt as training made it (same limit, seed and fraction) and the test split.
 * Call dispose() when done.
 */
export class RunAssets {
  readonly checkpoint: string;
  readonly notes: string[] = [];
  private dataPath: Promise<string> | null = null;
  private sets: Partial<Record<ScoreSplit, Promise<ImageSet | null>>> = {};
  private loaded: Promise<CifakeModel> | null = null;

  constructor(
    readonly runDir: string,
    readonly config: TrainConfig,
    private readonly dataSummary: { train?: { source?: string } } | null,
    private readonly opts: RunAssetsOptions = {},
  ) {
    this.checkpoint = reportedCheckpoint(runDir, config);
  }

  log(message: string): void {
    this.opts.onLog?.(message);
  }

  data(): Promise<string> {
    this.dataPath ??= resolveRunData(this.runDir, this.config, this.dataSummary, this.opts.data);
    return this.dataPath;
  }

  /** The images of a split; null (with a note) when the data has no such split. */
  set(split: ScoreSplit): Promise<ImageSet | null> {
    this.sets[split] ??= (async () => {
      const data = await this.data();
      if (split === 'val') {
        const all = await loadSplit(data, { split: 'train', limit: this.config.limit ?? undefined, seed: this.config.seed });
        return stratifiedSplit(all, this.config.valFraction, this.config.seed).val;
      }
      return loadSplit(data, { split }).catch((e: Error) => {
        this.notes.push(`no ${split} split: ${e.message.split('\n')[0]}`);
        return null;
      });
    })();
    return this.sets[split] as Promise<ImageSet | null>;
  }

  model(): Promise<CifakeModel> {
    this.loaded ??= (async () => {
      this.log(`report: loading ${this.checkpoint}`);
      const { model } = await CifakeModel.load(this.checkpoint, { device: this.opts.device ?? 'auto', threads: this.opts.threads, withOptimizer: false });
      return model;
    })();
    return this.loaded;
  }

  async dispose(): Promise<void> {
    const m = await this.loaded?.catch(() => null);
    m?.dispose();
    this.loaded = null;
  }
}

function roundLogits(logits: ArrayLike<number>): number[] {
  return Array.from(logits, (z) => Math.round(z * 1e5) / 1e5);
}

/**
 * Predicts the splits with the run's checkpoint; with `write` (default true) saves each as
 * scores-<split>.json in the run directory (the format training writes).
 */
export async function computeRunScores(
  assets: RunAssets,
  splits: readonly ScoreSplit[] = SCORE_SPLITS,
  write = true,
): Promise<{ scores: Partial<Record<ScoreSplit, SplitScores>>; summaries: Partial<Record<ScoreSplit, DatasetSummary>> }> {
  const scores: Partial<Record<ScoreSplit, SplitScores>> = {};
  const summaries: Partial<Record<ScoreSplit, DatasetSummary>> = {};
  for (const split of splits) {
    const set = await assets.set(split);
    if (!set) continue;
    summaries[split] = set.summary;
    const model = await assets.model();
    assets.log(`report: computing ${split} scores (${set.count} images)`);
    const rounded = roundLogits(await model.predictLogits(set.images));
    let file: string | null = null;
    if (write) {
      file = path.join(assets.runDir, scoreFileNames(split)[0]);
      writeJson(file, { split, files: set.files, labels: Array.from(set.labels), logits: rounded, checkpoint: path.basename(assets.checkpoint), writtenBy: 'cifake report' });
    }
    const l = Float64Array.from(rounded);
    scores[split] = { split, labels: Uint8Array.from(set.labels), logits: l, pReal: sigmoid(l), files: set.files, file, origin: 'computed' };
  }
  return { scores, summaries };
}

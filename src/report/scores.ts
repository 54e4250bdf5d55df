// Per-image scores of a run (val and test), which the ROC curve and the score histogram need.
// Read from the run directory when training wrote them (scores-<split>.json, or <split>-scores.json),
// otherwise computed once by loading the run's checkpoint and its data, and written back
// (scores-<split>.json, same format) so that the next report is instant.
import fs from 'node:fs';
import path from 'node:path';

import type { TrainConfig } from '../config';
import { loadSplit, stratifiedSplit, type DatasetSummary, type ImageSet } from '../data';
import { sigmoid } from '../metrics';
import { CifakeModel } from '../model';
import { endCheckpoint, readScoresFile, resolveRunData, scoreFileNames, writeScores, type RunDataSummary } from '../run';

export { scoreFileNames };

export type ScoreSplit = 'val' | 'test';
export const SCORE_SPLITS: readonly ScoreSplit[] = ['val', 'test'];

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

function parseScores(file: string, split: ScoreSplit, origin: SplitScores['origin']): SplitScores {
  const r = readScoresFile(file);
  const logits = r.logits ? Float64Array.from(r.logits) : null;
  return {
    split,
    labels: Uint8Array.from(r.labels),
    logits,
    pReal: logits ? sigmoid(logits) : Float64Array.from(r.pReal as number[]),
    files: r.files,
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
    private readonly dataSummary: RunDataSummary | null,
    private readonly opts: RunAssetsOptions = {},
  ) {
    this.checkpoint = endCheckpoint(runDir, config);
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
    const logits = await model.predictLogits(set.images);
    const file = write ? writeScores(assets.runDir, split, set, logits, { checkpoint: path.basename(assets.checkpoint), writtenBy: 'cifake report' }) : null;
    const l = Float64Array.from(logits, (z) => Math.round(z * 1e5) / 1e5); // as written
    scores[split] = { split, labels: Uint8Array.from(set.labels), logits: l, pReal: sigmoid(l), files: set.files, file, origin: 'computed' };
  }
  return { scores, summaries };
}

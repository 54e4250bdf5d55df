// What a training run writes into its run directory, behind one interface: RunRecorder writes
// (the only process, or rank 0 of a data-parallel job); the other ranks get NO_RECORDER, which
// writes nothing.
import path from 'node:path';

import { calibrateRun } from '../calibration/run';
import type { TrainConfig } from '../config';
import type { ImageSet } from '../data';
import type { CifakeModel } from '../model';
import {
  discardUnstartedRun,
  readHistory,
  RUN_FILES,
  writeHistory,
  writeRunConfig,
  writeRunDataSummary,
  writeRunSummary,
  writeScores,
  type RunDataSummary,
  type RunSummary,
} from '../run';

export interface Recorder {
  /** A fresh run: config.json and data.json. */
  begin(config: TrainConfig, data: RunDataSummary): void;
  /** A resumed run: the history up to the checkpoint's epoch (later epochs are dropped from the file). */
  resumeHistory<T extends { epoch: number }>(upToEpoch: number): T[];
  /** The checkpoint of an epoch: last.pt always, best.pt too when the epoch improved. */
  checkpoint(model: CifakeModel, which: 'best' | 'last', meta: object): Promise<void>;
  history(lines: unknown[]): void;
  scores(split: string, set: ImageSet, logits: Float32Array): void;
  finish(summary: RunSummary): void;
  /** Fits the temperature and Youden threshold on the written validation scores (src/calibration/run.ts). */
  calibrate(log: (m: string) => void): Promise<void>;
  /** After a failure: removes the run directory when no epoch was checkpointed. */
  discardUnstarted(): void;
}

export class RunRecorder implements Recorder {
  constructor(readonly runDir: string) {}

  begin(config: TrainConfig, data: RunDataSummary): void {
    writeRunConfig(this.runDir, config);
    writeRunDataSummary(this.runDir, data);
  }
  resumeHistory<T extends { epoch: number }>(upToEpoch: number): T[] {
    const history = readHistory<T>(this.runDir).filter((h) => h.epoch <= upToEpoch);
    writeHistory(this.runDir, history);
    return history;
  }
  checkpoint(model: CifakeModel, which: 'best' | 'last', meta: object): Promise<void> {
    return model.save(path.join(this.runDir, RUN_FILES[which]), meta as Record<string, unknown>);
  }
  history(lines: unknown[]): void {
    writeHistory(this.runDir, lines);
  }
  scores(split: string, set: ImageSet, logits: Float32Array): void {
    writeScores(this.runDir, split, set, logits);
  }
  finish(summary: RunSummary): void {
    writeRunSummary(this.runDir, summary);
  }
  async calibrate(log: (m: string) => void): Promise<void> {
    const c = await calibrateRun(this.runDir);
    log(`calibration (fitted on validation): temperature ${c.temperature.toFixed(3)}, Youden threshold ${c.youdenThreshold.toFixed(3)}` + (c.test ? `; test ECE ${c.test.eceBefore.toFixed(4)} -> ${c.test.eceAfter.toFixed(4)}` : ''));
  }
  discardUnstarted(): void {
    discardUnstartedRun(this.runDir);
  }
}

/** The recorder of a follower rank: rank 0 writes the run. */
export const NO_RECORDER: Recorder = {
  begin() {},
  resumeHistory: () => [],
  checkpoint: async () => {},
  history() {},
  scores() {},
  finish() {},
  calibrate: async () => {},
  discardUnstarted() {},
};

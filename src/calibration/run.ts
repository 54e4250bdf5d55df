/**
 * Calibration of a finished run: fits the temperature and the Youden threshold on the run's
 * validation scores (scores-val.json), measures ECE and accuracy on its test scores before and
 * after, writes calibration.json and stores the calibration in the final checkpoint's meta, so
 * `Classifier` and `predict` apply the temperature wherever the checkpoint goes.
 */
import path from 'node:path';

import { computeMetrics } from '../metrics';
import { CifakeModel } from '../model';
import { readRunScores, type SplitScores } from '../report/scores';
import { resolveCheckpoint, RUN_FILES, writeRunCalibration } from '../run';
import { calibrationReport, fitTemperature, temperedProbs, youdenThreshold, type CalibrationReport } from './index';

/** What a checkpoint's meta carries under `calibration` (all fitted on validation). */
export interface StoredCalibration {
  /** P(REAL) = sigmoid(logit / temperature) */
  temperature: number;
  /** Youden's J threshold on the tempered P(REAL) of validation (reported; predictions use the config threshold unless asked) */
  youdenThreshold: number;
  fittedOn: 'val';
}

export interface SplitCalibration {
  n: number;
  accuracyAt05: number;
  accuracyAtYouden: number;
  eceBefore: number;
  eceAfter: number;
  logLossBefore: number;
  logLossAfter: number;
  reliabilityBefore: CalibrationReport['bins'];
  reliabilityAfter: CalibrationReport['bins'];
}

export interface RunCalibration extends StoredCalibration {
  checkpoint: string;
  val: SplitCalibration;
  test: SplitCalibration | null;
}

/** The split's logits, or the logits of its P(REAL) where the file held only probabilities. */
function logitsOf(s: SplitScores): Float64Array {
  return s.logits ?? Float64Array.from(s.pReal, (p) => Math.log(Math.max(1e-12, p) / Math.max(1e-12, 1 - p)));
}

function splitCalibration(s: SplitScores, temperature: number, threshold: number): SplitCalibration {
  const logits = logitsOf(s);
  const before = temperedProbs(logits, 1);
  const after = temperedProbs(logits, temperature);
  const rb = calibrationReport(before, s.labels), ra = calibrationReport(after, s.labels);
  return {
    n: s.labels.length,
    accuracyAt05: computeMetrics(after, s.labels, { threshold: 0.5 }).accuracy,
    accuracyAtYouden: computeMetrics(after, s.labels, { threshold }).accuracy,
    eceBefore: rb.ece,
    eceAfter: ra.ece,
    logLossBefore: computeMetrics(before, s.labels).logLoss,
    logLossAfter: computeMetrics(after, s.labels).logLoss,
    reliabilityBefore: rb.bins,
    reliabilityAfter: ra.bins,
  };
}

/** Fits, measures and stores the calibration of the run in `runDir` (needs its scores-val.json). */
export async function calibrateRun(runDir: string): Promise<RunCalibration> {
  const { scores, problems } = readRunScores(runDir);
  const val = scores.val;
  if (!val) throw new Error(`${runDir}: no validation scores to calibrate on (${RUN_FILES.scores('val')})${problems.length ? `: ${problems.join('; ')}` : ''}`);
  const logits = logitsOf(val);
  const temperature = fitTemperature(logits, val.labels);
  const { threshold } = youdenThreshold(temperedProbs(logits, temperature), val.labels);
  const stored: StoredCalibration = { temperature, youdenThreshold: threshold, fittedOn: 'val' };
  const checkpoint = resolveCheckpoint(runDir);
  const result: RunCalibration = {
    ...stored,
    checkpoint: path.basename(checkpoint),
    val: splitCalibration(val, temperature, threshold),
    test: scores.test ? splitCalibration(scores.test, temperature, threshold) : null,
  };
  // Re-saved from the file, not from the trainer's live model: after restoring the best epoch the
  // live optimizer state is the last epoch's, and best.pt must keep its own for --resume.
  const { model, meta } = await CifakeModel.load(checkpoint, { device: 'cpu', threads: 1, withOptimizer: true });
  try {
    const { format: _f, spec: _s, ...rest } = meta;
    await model.save(checkpoint, { ...rest, calibration: stored });
  } finally {
    model.dispose();
  }
  writeRunCalibration(runDir, result);
  return result;
}

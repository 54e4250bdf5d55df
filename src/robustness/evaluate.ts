/**
 * Robustness evaluation: a model's metrics on a labelled split under each perturbation of a suite,
 * next to the clean figures: accuracy at the model's operating point (threshold, temperature),
 * AUROC, recall of each class, predictions flipped against clean, ECE, and the flip-consistency
 * of mild variants (the share of images whose label changes under JPEG 90, a 1-px shift or a
 * mirror).
 */
import { calibrationReport, temperedProbs } from '../calibration';
import { computeMetrics, type Labels } from '../metrics';
import { MILD_SUITE, parsePerturbation, perturbImages, type Perturbation } from './perturb';

/** What the evaluator needs of a model: logits for a batch of planar uint8 images. */
export interface LogitModel {
  predictLogits(images: Uint8Array): Promise<Float32Array>;
}

export interface OperatingPoint {
  /** decision threshold on P(REAL) (default 0.5) */
  threshold?: number;
  /** P(REAL) = sigmoid(logit / temperature) (default 1) */
  temperature?: number;
}

export interface RobustnessRow {
  /** 'clean' or the perturbation's canonical spec */
  perturbation: string;
  /** the spec's first step name ('clean' for clean): the chart's line */
  family: string;
  /** the first step's strength (null for clean and hflip): the chart's x */
  strength: number | null;
  n: number;
  accuracy: number;
  rocAuc: number | null;
  recallFake: number;
  recallReal: number;
  /** predictions (at the threshold) that differ from the clean ones */
  flipped: number;
  flippedShare: number;
  /** 15-bin top-label ECE of the tempered P(REAL) */
  ece: number;
  /** mean P(REAL) over the split: a moving mean is the threshold shift users see */
  meanProbReal: number;
}

export interface RobustnessReport {
  threshold: number;
  temperature: number;
  seed: number;
  rows: RobustnessRow[];
  /** share of images whose label changes under at least one mild variant (MILD_SUITE) */
  flipConsistency: { variants: string[]; unstableShare: number };
}

export interface RobustnessOptions extends OperatingPoint {
  /** perturbation specs (default: the caller's suite; see DEFAULT_SUITE) */
  suite: readonly (string | Perturbation)[];
  /** seed of the random draws (noise); default 0 */
  seed?: number;
  /** called after each perturbation with its row */
  onRow?: (row: RobustnessRow) => void;
}

function rowOf(name: string, perturbation: Perturbation | null, probs: Float64Array, labels: Labels, clean: Uint8Array | null, threshold: number): RobustnessRow {
  const m = computeMetrics(probs, labels, { threshold });
  let flipped = 0, mean = 0;
  for (let i = 0; i < probs.length; i++) {
    if (clean && (probs[i] >= threshold ? 1 : 0) !== clean[i]) flipped++;
    mean += probs[i];
  }
  const first = perturbation?.steps[0];
  return {
    perturbation: name,
    family: first?.name ?? 'clean',
    strength: first?.value ?? null,
    n: m.n,
    accuracy: m.accuracy,
    rocAuc: m.rocAuc,
    recallFake: m.recall.FAKE,
    recallReal: m.recall.REAL,
    flipped,
    flippedShare: probs.length ? flipped / probs.length : 0,
    ece: calibrationReport(probs, labels).ece,
    meanProbReal: probs.length ? mean / probs.length : NaN,
  };
}

const predictionsOf = (probs: Float64Array, threshold: number) => Uint8Array.from(probs, (p) => (p >= threshold ? 1 : 0));

/** Evaluates `model` on clean `images` and under every perturbation of the suite. */
export async function evaluateRobustness(model: LogitModel, images: Uint8Array, labels: Labels, options: RobustnessOptions): Promise<RobustnessReport> {
  const threshold = options.threshold ?? 0.5, temperature = options.temperature ?? 1, seed = options.seed ?? 0;
  if (!(temperature > 0)) throw new RangeError(`robustness: temperature must be > 0, got ${temperature}`);
  const perturbations = options.suite.map((s) => (typeof s === 'string' ? parsePerturbation(s) : s));
  const cleanProbs = temperedProbs(await model.predictLogits(images), temperature);
  const clean = predictionsOf(cleanProbs, threshold);
  const rows = [rowOf('clean', null, cleanProbs, labels, clean, threshold)];
  options.onRow?.(rows[0]);
  for (const p of perturbations) {
    const probs = temperedProbs(await model.predictLogits(await perturbImages(images, p, { seed })), temperature);
    const row = rowOf(p.spec, p, probs, labels, clean, threshold);
    rows.push(row);
    options.onRow?.(row);
  }
  return { threshold, temperature, seed, rows, flipConsistency: await flipConsistency(model, images, clean, { threshold, temperature, seed }) };
}

/** Share of images whose predicted label under at least one mild variant differs from `clean`. */
export async function flipConsistency(
  model: LogitModel,
  images: Uint8Array,
  clean: Uint8Array,
  options: OperatingPoint & { seed?: number; variants?: readonly string[] } = {},
): Promise<{ variants: string[]; unstableShare: number }> {
  const variants = [...(options.variants ?? MILD_SUITE)];
  const threshold = options.threshold ?? 0.5, temperature = options.temperature ?? 1;
  const unstable = new Uint8Array(clean.length);
  for (const v of variants) {
    const probs = temperedProbs(await model.predictLogits(await perturbImages(images, v, { seed: options.seed ?? 0 })), temperature);
    for (let i = 0; i < probs.length; i++) if ((probs[i] >= threshold ? 1 : 0) !== clean[i]) unstable[i] = 1;
  }
  const count = unstable.reduce((a, v) => a + v, 0);
  return { variants, unstableShare: clean.length ? count / clean.length : 0 };
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const num = (x: number | null, d = 4) => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));

/** Markdown table of a report. */
export function formatRobustnessTable(r: RobustnessReport): string {
  const lines = [
    `threshold ${r.threshold}, temperature ${num(r.temperature, 3)}, seed ${r.seed}; flip-consistency (${r.flipConsistency.variants.join(', ')}): ${pct(r.flipConsistency.unstableShare)} of images change label`,
    '',
    '| perturbation | accuracy | AUROC | recall FAKE | recall REAL | flipped vs clean | ECE | mean P(REAL) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of r.rows)
    lines.push(`| ${row.perturbation} | ${pct(row.accuracy)} | ${num(row.rocAuc)} | ${num(row.recallFake, 3)} | ${num(row.recallReal, 3)} | ${row.flipped} (${pct(row.flippedShare)}) | ${num(row.ece)} | ${num(row.meanProbReal, 3)} |`);
  return lines.join('\n');
}

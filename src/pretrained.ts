/**
 * The detector weights shipped inside the package (models/), and the manifest that describes them:
 * which run and command produced them, the config, parameter count, test metrics, calibration
 * and the file's sha256. `Classifier.load()`, `cifake predict`, `eval`, `gradcam`, `robustness` and
 * `serve` use them when no model is given (or with 'pretrained').
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { PACKAGE_ROOT } from './native';

export const PRETRAINED = 'pretrained';
export const PRETRAINED_DIR = path.join(PACKAGE_ROOT, 'models');
export const PRETRAINED_MANIFEST = path.join(PRETRAINED_DIR, 'manifest.json');

export interface PretrainedManifest {
  /** file name inside models/ */
  file: string;
  sha256: string;
  bytes: number;
  preset: string;
  /** the decision threshold on the tempered P(REAL) the shipped checkpoint's config carries (0.5, or the Youden threshold chosen on validation) */
  threshold?: number;
  parameters: number;
  /** the exact command that trained the weights */
  command: string;
  trainedEpochs: number;
  /** accuracy, AUC, ... on the test half used for the model card (with and without the duplicates) */
  test: Record<string, unknown>;
  calibration: { temperature: number; youdenThreshold: number } | null;
  /** free text shown by `cifake info` and the model card */
  notes: string;
  /** an ensemble (`cifake ensemble`): its networks' runs, and the validation images all of them held out (where it was calibrated) */
  ensemble?: { members: { run: string; seed: number; testAccuracy: number | null }[]; valImages: number | null };
}

export function readPretrainedManifest(): PretrainedManifest | null {
  if (!fs.existsSync(PRETRAINED_MANIFEST)) return null;
  return JSON.parse(fs.readFileSync(PRETRAINED_MANIFEST, 'utf8')) as PretrainedManifest;
}

/** The shipped checkpoint's path; throws a clear error when this build of the package has none. */
export function pretrainedCheckpoint(): string {
  const m = readPretrainedManifest();
  const file = m ? path.join(PRETRAINED_DIR, m.file) : null;
  if (!m || !file || !fs.existsSync(file))
    throw new Error(`no pretrained weights in this package (${path.relative(process.cwd(), PRETRAINED_MANIFEST) || PRETRAINED_MANIFEST} missing): pass --model RUN|CHECKPOINT, or train one with \`cifake train\``);
  return file;
}

/** `undefined`, '' or 'pretrained' -> the shipped checkpoint; anything else is returned as given. */
export function resolveModelTarget(target: string | undefined | null): string {
  return target === undefined || target === null || target === '' || target === PRETRAINED ? pretrainedCheckpoint() : target;
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** How commands name the model they use: the path, and for the shipped weights what they are. */
export function describeCheckpoint(file: string): string {
  const inside = path.relative(PRETRAINED_DIR, path.resolve(file));
  if (inside.startsWith('..') || path.isAbsolute(inside)) return file;
  const m = readPretrainedManifest();
  return m ? `the pretrained detector shipped in the package (${m.preset}${m.ensemble ? `, an ensemble of ${m.ensemble.members.length}` : ''}, sha256 ${m.sha256.slice(0, 12)}…; ${file})` : file;
}

/**
 * Portable weights: a cifake-torch checkpoint as safetensors (tensor names of the PyTorch
 * reference module, src/export/pytorch.ts) or as an ONNX graph (src/export/onnx.ts), and back:
 * safetensors weights trained in PyTorch with those names become a cifake-torch checkpoint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { modelSpecOf, resolveConfig } from '../config';
import { CifakeModel, type CheckpointMeta } from '../model';
import { loadNative, type NativeModelSpec } from '../native';
import { resolveModelTarget } from '../pretrained';
import { resolveCheckpoint } from '../run';
import { writeFileAtomic } from '../util/json-file';
import { packageVersion } from '../version';
import { checkState, tensorLayout } from './layout';
import { buildOnnx, ONNX_OPSET } from './onnx';
import { decodeSafetensors, encodeSafetensors, readSafetensors } from './safetensors';

export { buildOnnx, ONNX_OPSET } from './onnx';
export { checkState, tensorLayout, type TensorEntry } from './layout';
export { PYTORCH_REFERENCE } from './pytorch';
export { decodeSafetensors, encodeSafetensors, readSafetensors } from './safetensors';

export const EXPORT_FORMATS = ['onnx', 'safetensors'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  /** run directory, checkpoint, or 'pretrained' / undefined for the weights the package ships */
  model?: string;
  format: ExportFormat | string;
  /** output file (default: the checkpoint's name with .onnx / .safetensors, in the working directory) */
  out?: string;
  device?: string;
}

export interface ExportResult {
  file: string;
  format: ExportFormat;
  checkpoint: string;
  bytes: number;
  tensors: number;
  spec: NativeModelSpec;
  /** the temperature divided out of the logit (1 when the checkpoint has none) */
  temperature: number;
  threshold: number;
}

/** The operating point a checkpoint's meta records: calibrated temperature, threshold. */
export function operatingPoint(meta: CheckpointMeta): { temperature: number; threshold: number } {
  const cal = meta.calibration as { temperature?: number } | undefined;
  const threshold = (meta.config as { threshold?: number } | undefined)?.threshold ?? 0.5;
  const t = cal?.temperature;
  return { temperature: typeof t === 'number' && t > 0 && Number.isFinite(t) ? t : 1, threshold };
}

function assertFormat(format: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new Error(`export: unknown format '${format}' (expected ${EXPORT_FORMATS.join(' or ')})`);
  return format as ExportFormat;
}

/** Fails before any work when `file` cannot be written (missing or read-only directory, a directory in the way). */
export function assertWritable(file: string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a directory');
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new Error(`cannot write ${file}: directory ${dir} is missing or not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new Error(`cannot write ${file}: it is a directory`);
}

/** Writes atomically; a failed write leaves neither `file` nor its temporary beside it. */
function writeOut(file: string, bytes: Uint8Array): void {
  try {
    writeFileAtomic(file, bytes);
  } catch (e) {
    fs.rmSync(`${file}.tmp-${process.pid}`, { force: true });
    throw new Error(`cannot write ${file}: ${(e as Error).message}`);
  }
}

/** The bytes of `format` for a loaded model (its state read once). */
export async function exportBytes(model: CifakeModel, meta: CheckpointMeta, format: ExportFormat | string): Promise<Uint8Array> {
  const f = assertFormat(format);
  const state = await model.state();
  checkState(model.spec, state, 'export');
  const { temperature, threshold } = operatingPoint(meta);
  const metadata: Record<string, string> = {
    format: 'cifake-torch',
    spec: JSON.stringify(model.spec),
    config: JSON.stringify(meta.config ?? null),
    classNames: JSON.stringify(meta.classNames ?? ['FAKE', 'REAL']),
    temperature: String(temperature),
    threshold: String(threshold),
    input: 'float32 [N,3,32,32] = RGB pixel / 255 (no mean/std); P(REAL) = sigmoid(logit / temperature)',
    cifakeTorch: packageVersion(),
  };
  if (f === 'safetensors') {
    return encodeSafetensors(
      tensorLayout(model.spec).map((e) => ({ name: e.name, shape: e.shape, data: state[e.name], dtype: e.name.endsWith('num_batches_tracked') ? 'I64' : 'F32' })),
      metadata,
    );
  }
  const { input: _input, ...onnxMeta } = metadata;
  return buildOnnx(model.spec, state, {
    temperature,
    producerVersion: packageVersion(),
    metadata: { ...onnxMeta, contract: 'input float32 [N,3,32,32] = RGB pixel / 255; output logit [N] (temperature applied), p_real = sigmoid(logit)' },
  });
}

/** `cifake export`: a checkpoint (or the shipped weights) as ONNX or safetensors. */
export async function exportModel(opts: ExportOptions): Promise<ExportResult> {
  const format = assertFormat(opts.format);
  const checkpoint = resolveCheckpoint(resolveModelTarget(opts.model));
  const out = opts.out ?? `${path.basename(checkpoint).replace(/\.pt$/, '')}.${format}`;
  assertWritable(out);
  const { model, meta } = await CifakeModel.load(checkpoint, { device: opts.device ?? 'cpu', withOptimizer: false, threads: 1 });
  try {
    const bytes = await exportBytes(model, meta, format);
    writeOut(out, bytes);
    return { file: out, format, checkpoint, bytes: bytes.length, tensors: tensorLayout(model.spec).length, spec: model.spec, ...operatingPoint(meta) };
  } finally {
    model.dispose();
  }
}

// ---- import ----

export interface ImportOptions {
  /** safetensors file with the reference module's tensor names */
  safetensors: string;
  /**
   * Training config (as `cifake train --config` reads: a file path or the parsed object) that says
   * the architecture; default: the spec in the file's metadata (files this package exported).
   */
  config?: string | Record<string, unknown>;
  /** checkpoint to write */
  out: string;
  /** stored as the checkpoint's calibration (default: the file's metadata, else none) */
  temperature?: number;
}

export interface ImportedWeights {
  spec: NativeModelSpec;
  state: Record<string, Float32Array>;
  config: Record<string, unknown> | null;
  metadata: Record<string, string>;
}

function parseConfig(config: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof config !== 'string') return config;
  let text = config;
  if (!config.trim().startsWith('{')) {
    try {
      text = fs.readFileSync(config, 'utf8');
    } catch (e) {
      throw new Error(`cannot read config ${config}: ${(e as Error).message}`);
    }
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`config ${config.length > 80 ? 'JSON' : config} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Reads and checks safetensors weights against the architecture (no native code involved). */
export function readImportedWeights(file: string, config?: string | Record<string, unknown>, bytes?: Buffer): ImportedWeights {
  const st = bytes ? decodeSafetensors(bytes, file) : readSafetensors(file);
  let spec: NativeModelSpec;
  let cfg: Record<string, unknown> | null = null;
  if (config !== undefined) {
    const resolved = resolveConfig({ file: parseConfig(config) });
    cfg = resolved as unknown as Record<string, unknown>;
    spec = modelSpecOf(resolved.model);
  } else if (st.metadata.spec) {
    spec = JSON.parse(st.metadata.spec) as NativeModelSpec;
    cfg = st.metadata.config ? (JSON.parse(st.metadata.config) as Record<string, unknown> | null) : null;
  } else {
    throw new Error(`${file}: no model spec in its metadata; pass the architecture with --config (a training config JSON)`);
  }
  const state: Record<string, Float32Array> = {};
  for (const [name, t] of st.tensors) state[name] = t.data;
  const layout = checkState(spec, state, file);
  for (const e of layout) {
    const shape = st.tensors.get(e.name)!.shape;
    if (shape.join(',') !== e.shape.join(',')) throw new Error(`${file}: '${e.name}' has shape [${shape}], the model expects [${e.shape}]`);
  }
  return { spec, state, config: cfg, metadata: st.metadata };
}

/** `cifake import`: safetensors weights -> a cifake-torch checkpoint (loadable by every command). */
export async function importSafetensors(opts: ImportOptions): Promise<{ checkpoint: string; spec: NativeModelSpec; tensors: number }> {
  const w = readImportedWeights(opts.safetensors, opts.config);
  assertWritable(opts.out);
  const session = new (loadNative().Session)(w.spec, { device: 'cpu', seed: 0, threads: 1, channelsLast: true, amp: 'none' });
  try {
    await session.setState(w.state);
    const fromMeta = Number(w.metadata.temperature);
    const temperature = opts.temperature ?? (fromMeta > 0 && fromMeta !== 1 ? fromMeta : undefined);
    const meta: CheckpointMeta = {
      format: 'cifake-torch',
      spec: w.spec,
      config: w.config ?? { threshold: Number(w.metadata.threshold) || 0.5 },
      classNames: ['FAKE', 'REAL'],
      importedFrom: path.basename(opts.safetensors),
      ...(temperature ? { calibration: { temperature, youdenThreshold: Number(w.metadata.threshold) || 0.5, fittedOn: 'imported' } } : {}),
    };
    await session.save(opts.out, JSON.stringify(meta));
  } finally {
    session.dispose();
  }
  return { checkpoint: opts.out, spec: w.spec, tensors: Object.keys(w.state).length };
}

/**
 * A model straight from safetensors weights (for `Classifier.load` of a .safetensors file): imported
 * to a temporary checkpoint, loaded, and the temporary removed.
 */
export async function loadSafetensorsModel(
  file: string,
  opts: { config?: string | Record<string, unknown>; device?: string; threads?: number } = {},
): Promise<{ model: CifakeModel; meta: CheckpointMeta }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-import-'));
  try {
    const { checkpoint } = await importSafetensors({ safetensors: file, config: opts.config, out: path.join(dir, 'imported.pt') });
    return await CifakeModel.load(checkpoint, { device: opts.device ?? 'cpu', threads: opts.threads, withOptimizer: false });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

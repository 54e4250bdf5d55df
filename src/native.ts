// Loads the libtorch addon and declares its surface. Nothing else in src/ touches the .node file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';

import type { JpegBinding } from './data/types';

/**
 * The architecture, fully spelled out: the native side builds what the flags say and applies no
 * defaults of its own (src/config.ts `modelSpecOf` decides them). `family` is only a label
 * (describe(), run summaries, old checkpoints' meta).
 */
export interface NativeModelSpec {
  family: 'original' | 'lightweight' | 'hoc';
  convFilters: number[];
  dense: number[];
  dropout: number;
  padding: 'valid' | 'same';
  batchNorm: boolean;
  hoc: boolean;
  fusedHoc: boolean;
  /** 3x3 convs per block (default 1); only the first is higher-order */
  convsPerBlock?: number;
  /** ResNet basic-block shortcut around each block's convs (default false) */
  residual?: boolean;
  /** an ensemble of this many networks of the spec, logits averaged (default 1); tensor names get `memberK.` */
  members?: number;
}

export interface NativeSessionOptions {
  device?: string;
  seed?: number;
  threads?: number;
  optimizer?: { name?: 'adam' | 'adamw'; lr?: number; weightDecay?: number; betas?: [number, number] };
  channelsLast?: boolean;
  /** Mixed precision: none | bf16 (CPU or CUDA) | fp16 (CUDA, with dynamic loss scaling). */
  amp?: 'none' | 'bf16' | 'fp16';
}

export interface EpochProgress {
  batch: number;
  batches: number;
  images: number;
  loss: number;
  accuracy: number;
  imagesPerSec: number;
}

export interface EpochResult {
  loss: number;
  accuracy: number;
  images: number;
  batches: number;
  seconds: number;
  imagesPerSec: number;
  cancelled: boolean;
  nonFinite: boolean;
  /** Seconds inside gradient / buffer collectives (data-parallel epochs; 0 otherwise). */
  commSeconds?: number;
  /** fp16: optimizer steps skipped so far because the scaled gradients overflowed. */
  skippedSteps?: number;
  /** fp16: the dynamic loss scale at the end of the epoch (0 without fp16). */
  lossScale?: number;
}

export interface NativeEpochOptions {
  data?: string;
  batchSize?: number;
  seed?: number;
  epoch?: number;
  shuffle?: boolean;
  lr?: number;
  augment?: { hflip?: boolean; shift?: number; cutmix?: number };
  /** BCE targets y (1 - e) + e / 2 */
  labelSmoothing?: number;
  /** > 0: keep a moving average of the weights with this decay, updated after every step */
  emaDecay?: number;
  progressIntervalMs?: number;
}

export interface NativeGradCamOptions {
  layer?: string;
  target?: 'pred' | 'real' | 'fake';
  method?: 'gradcam' | 'hirescam';
  size?: number;
  /** also return the layer's activations and the gradients of the target score (N x C x h x w) */
  tensors?: boolean;
}

export interface NativeGradCamResult {
  n: number;
  layer: string;
  layerSize: number;
  size: number;
  raw: Float32Array;
  maps: Float32Array;
  rawMax: Float32Array;
  logits: Float32Array;
  targets: Int32Array;
  /** with `tensors`: channels C, activations and gradients N x C x layerSize x layerSize */
  channels?: number;
  activations?: Float32Array;
  gradients?: Float32Array;
}

export interface NativeDescription {
  family: string;
  parameters: number;
  /** networks averaged (1: a single network) */
  members: number;
  layers: string[];
  layerSizes: Record<string, number>;
  defaultLayer: string;
  device: string;
}

export interface NativeSession {
  setData(key: string, images: Uint8Array, labels: Uint8Array | null): Promise<void>;
  dropData(key: string): Promise<void>;
  trainEpoch(opts: NativeEpochOptions, onProgress?: (p: EpochProgress) => void): Promise<EpochResult>;
  predict(input: string | Uint8Array, opts?: { batchSize?: number }): Promise<Float32Array>;
  gradcam(images: Uint8Array, opts?: NativeGradCamOptions): Promise<NativeGradCamResult>;
  snapshot(): Promise<void>;
  restore(): Promise<void>;
  /** Exchanges the weights with their moving average; resolves true when the model now holds the average. */
  swapEma(): Promise<boolean>;
  save(path: string, metaJson: string): Promise<void>;
  load(path: string, opts?: { optimizer?: boolean }): Promise<string>;
  state(): Promise<Record<string, Float32Array>>;
  /** Replaces every parameter and buffer (names and sizes as state() gives them); nothing changes unless all match. */
  setState(state: Record<string, Float32Array>): Promise<void>;
  /** A no-op once disposed. */
  cancel(): void;
  /**
   * Returns at once: the running epoch is cancelled and the model and its data are freed on the
   * worker thread after it; the promise (never rejected) settles when that is done.
   */
  dispose(): Promise<void>;
  describe(): NativeDescription;
  attachGroup(group: NativeDistGroup | null): Promise<void>;
  broadcastState(root?: number): Promise<void>;
}

export interface NativeDistOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  ifname?: string;
}

/** One process's membership in a c10d (Gloo) process group; see src/dist. */
export interface NativeDistGroup {
  readonly rank: number;
  readonly size: number;
  connect(): Promise<void>;
  broadcastBytes(bytes: Uint8Array | null, root: number): Promise<Uint8Array>;
  allGather(values: Float32Array): Promise<Float32Array>;
  allReduce(values: Float64Array, op?: 'sum' | 'max'): Promise<Float64Array>;
  barrier(): Promise<void>;
  /** Leaves the group without blocking the event loop; the promise never rejects. */
  close(): Promise<void>;
}

export interface NativeInfo {
  torchVersion: string;
  torchSource: string;
  threads: number;
  config: string;
  parallel: string;
  cuda: { built: boolean; available: boolean; devices: { index: number; name: string; memory: number; capability: string }[] };
  /** Built with c10d/Gloo: data-parallel training is possible. */
  distributed: boolean;
}


export interface NativeBinding {
  Session: new (spec: NativeModelSpec, opts?: NativeSessionOptions) => NativeSession;
  DistGroup: new (opts: NativeDistOptions) => NativeDistGroup;
  info(): NativeInfo;
  setThreads(n: number): void;
  readCheckpointMeta(path: string): string;
  /**
   * The process is exiting: cancels every job and joins every worker thread (bounded), so exit()'s
   * static destructors never run under a training thread. Called from the main thread's 'exit' event.
   */
  shutdownAll?(): boolean;
  gradientCheck(spec: NativeModelSpec, seed: number): { maxAbsError: number; maxRelError: number; checked: number };
  /** libjpeg-turbo batch decoder (absent when built without libjpeg); typed in data/decode.ts. */
  decodeJpegBatch?: JpegBinding['decodeJpegBatch'];
  /** Re-encodes planar images at per-image JPEG qualities (0 = unchanged) and decodes them back (native/jpeg_encode.h). */
  jpegRoundTrip?(images: Uint8Array, qualities: Uint8Array, size: number): Promise<Uint8Array>;
}

export const PACKAGE_ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
export const ADDON_PATH = path.join(PACKAGE_ROOT, 'build', 'Release', 'cifake_native.node');

/** CPUs this process may use (respects affinity masks and cgroup-limited containers as libuv sees them). */
export function availableCpus(): number {
  return Math.max(1, os.availableParallelism());
}

let binding: NativeBinding | undefined;

/**
 * Loads the addon once. OMP_NUM_THREADS is set first (unless the user set it): OpenBLAS and
 * OpenMP read it when they load, and setting threads afterwards ran OpenBLAS at under half speed.
 * libtorch 1.13 would otherwise default to half the cores.
 * OPENBLAS_NUM_THREADS defaults to 1: Debian picks OpenBLAS's pthread build, whose own threads
 * then compete with libtorch's OpenMP team for the same cores (the dense layers' GEMMs are small
 * here); HOC training ran 1.6x faster with it on 2 cores (bench/epoch-times.ts, README).
 * OMP_WAIT_POLICY: see below. All three are read once, when the libraries load.
 */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  if (!process.env.OMP_NUM_THREADS) process.env.OMP_NUM_THREADS = String(availableCpus());
  if (!process.env.OPENBLAS_NUM_THREADS) process.env.OPENBLAS_NUM_THREADS = '1';
  // OMP_WAIT_POLICY defaults to PASSIVE (unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set): idle
  // OpenMP threads sleep instead of spinning. Spinning threads compete with whatever else runs on
  // the cores; on a shared 2-core machine 1,000 single-image predictions took 5-14 s with libgomp's
  // default spin and 0.8-2.6 s passive, an epoch 6-8 s vs 1.5-1.8 s (bench/omp-wait.ts, README).
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined)
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
  if (!fs.existsSync(ADDON_PATH)) {
    throw new Error(
      `cifake-torch: the native addon is not built (${ADDON_PATH} is missing).\n` +
        'npm 11 skips dependency install scripts unless allowed. Build it with:\n' +
        '  npx cifake build            (or: npm rebuild cifake-torch --allow-scripts=cifake-torch)\n' +
        'It needs libtorch: LIBTORCH or Torch_DIR, a python3 torch, or apt-get install libtorch-dev libopenblas0-openmp.',
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require(ADDON_PATH) as NativeBinding;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const hint = /cannot open shared object file|Library not loaded|undefined symbol/.test(msg)
      ? 'The libtorch it was built against cannot be loaded (moved, removed, or a different version). Rebuild with: npx cifake build'
      : 'Rebuild it with: npx cifake build';
    throw new Error(`cifake-torch: cannot load the native addon ${ADDON_PATH}: ${msg}\n${hint}`);
  }
  // process.exit() and uncaught exceptions emit 'exit' and then call exit(), which frees libtorch
  // while a worker thread may still be training (SIGSEGV, the exit code lost): stop them first.
  // Worker threads' sessions are stopped by their env cleanup hooks instead.
  const loaded = binding;
  if (isMainThread && loaded.shutdownAll) process.on('exit', () => loaded.shutdownAll?.());
  return binding;
}

/** BLAS libraries loaded in this process (Linux), e.g. Debian's libblas.so.3 alternative -> OpenBLAS. */
export function loadedBlasLibraries(): string[] {
  loadNative();
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const libs = new Set<string>();
    for (const line of maps.split('\n')) {
      const file = line.slice(line.indexOf('/'));
      if (line.includes('/') && /blas|mkl_|accelerate/i.test(path.basename(file))) libs.add(fs.realpathSync(file));
    }
    return [...libs];
  } catch {
    return [];
  }
}

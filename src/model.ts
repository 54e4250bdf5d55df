// A typed handle on one native session: a model, its optimizer and its data on one device.
import {
  loadNative,
  type EpochProgress,
  type EpochResult,
  type NativeDescription,
  type NativeDistGroup,
  type NativeEpochOptions,
  type NativeGradCamOptions,
  type NativeGradCamResult,
  type NativeModelSpec,
  type NativeSession,
} from './native';

export type { EpochProgress, EpochResult, NativeGradCamResult as GradCamResult } from './native';

export interface ModelOptions {
  /** cpu | cuda | cuda:N | auto (default auto). */
  device?: string;
  /** Seed of the weight initialisation. */
  seed?: number;
  /** Intra-op CPU threads of this model's worker thread (default: all CPUs available). */
  threads?: number | null;
  optimizer?: { name?: 'adam' | 'adamw'; lr?: number; weightDecay?: number; betas?: [number, number] };
  /** NHWC activations and conv weights (default true: oneDNN's native layout, faster on CPU). */
  channelsLast?: boolean;
  /** Mixed precision: none (default) | bf16 (CPU or CUDA autocast) | fp16 (CUDA, dynamic loss scaling). */
  amp?: 'none' | 'bf16' | 'fp16';
}

export interface EpochCallOptions {
  onProgress?: (p: EpochProgress) => void;
  /** Aborting stops the epoch within one batch; the result then has `cancelled: true`. */
  signal?: AbortSignal;
}

/** What a cifake-torch checkpoint carries besides the weights (JSON inside the checkpoint). */
export interface CheckpointMeta {
  format: 'cifake-torch';
  spec: NativeModelSpec;
  [key: string]: unknown;
}

export class CifakeModel {
  readonly spec: NativeModelSpec;
  readonly description: NativeDescription;
  private session: NativeSession | null;

  private constructor(spec: NativeModelSpec, session: NativeSession) {
    this.spec = spec;
    this.session = session;
    this.description = session.describe();
  }

  static create(spec: NativeModelSpec, opts: ModelOptions = {}): CifakeModel {
    const native = loadNative();
    const session = new native.Session(spec, {
      device: opts.device ?? 'auto',
      seed: opts.seed ?? 42,
      threads: opts.threads ?? 0,
      optimizer: opts.optimizer,
      channelsLast: opts.channelsLast ?? true,
      amp: opts.amp ?? 'none',
    });
    return new CifakeModel(spec, session);
  }

  /** Reads the meta of a checkpoint without loading its weights. */
  static readMeta(checkpoint: string): CheckpointMeta {
    const raw = loadNative().readCheckpointMeta(checkpoint);
    let meta: CheckpointMeta;
    try {
      meta = JSON.parse(raw) as CheckpointMeta;
    } catch {
      throw new Error(`${checkpoint}: checkpoint meta is not valid JSON`);
    }
    if (meta?.format !== 'cifake-torch' || typeof meta.spec !== 'object')
      throw new Error(`${checkpoint}: not a cifake-torch checkpoint (no model spec in its meta)`);
    return meta;
  }

  /** Builds the model a checkpoint describes and loads its weights (and optimizer state). */
  static async load(
    checkpoint: string,
    opts: ModelOptions & { withOptimizer?: boolean } = {},
  ): Promise<{ model: CifakeModel; meta: CheckpointMeta }> {
    const meta = CifakeModel.readMeta(checkpoint);
    const savedOptimizer = (meta.config as { optimizer?: ModelOptions['optimizer'] } | undefined)?.optimizer;
    const model = CifakeModel.create(meta.spec, { ...opts, optimizer: opts.optimizer ?? savedOptimizer });
    try {
      await model.native.load(checkpoint, { optimizer: opts.withOptimizer ?? true });
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { model, meta };
  }

  private get native(): NativeSession {
    if (!this.session) throw new Error('this model was disposed; load or create a new one');
    return this.session;
  }

  get parameters(): number {
    return this.description.parameters;
  }

  get disposed(): boolean {
    return this.session === null;
  }

  /** Hands a dataset to the device once: images N x 3 x 32 x 32 uint8 (CHW), labels N (0 FAKE, 1 REAL). */
  setData(key: string, images: Uint8Array, labels: Uint8Array | null): Promise<void> {
    return this.native.setData(key, images, labels);
  }

  dropData(key: string): Promise<void> {
    return this.native.dropData(key);
  }

  async trainEpoch(opts: NativeEpochOptions, call: EpochCallOptions = {}): Promise<EpochResult> {
    const session = this.native;
    const { signal, onProgress } = call;
    if (signal?.aborted) return abortedResult();
    const onAbort = () => session.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await session.trainEpoch(opts, onProgress);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Logits (P(REAL) = sigmoid) of a stored dataset (by key) or of raw CHW images. */
  predictLogits(input: string | Uint8Array, batchSize = 1024): Promise<Float32Array> {
    return this.native.predict(input, { batchSize });
  }

  async gradcam(images: Uint8Array, opts: NativeGradCamOptions = {}): Promise<NativeGradCamResult> {
    return this.native.gradcam(images, opts);
  }

  snapshot(): Promise<void> {
    return this.native.snapshot();
  }

  restore(): Promise<void> {
    return this.native.restore();
  }

  /**
   * Exchanges the weights with their moving average (kept by epochs trained with `emaDecay`);
   * resolves true when the model now holds the average. Training refuses to run until swapped back.
   */
  swapEma(): Promise<boolean> {
    return this.native.swapEma();
  }

  /** Atomic: written beside `path`, then renamed over it. */
  save(path: string, meta: Record<string, unknown>): Promise<void> {
    const full: CheckpointMeta = { ...meta, format: 'cifake-torch', spec: this.spec };
    return this.native.save(path, JSON.stringify(full));
  }

  async loadWeights(path: string, withOptimizer = true): Promise<CheckpointMeta> {
    return JSON.parse(await this.native.load(path, { optimizer: withOptimizer })) as CheckpointMeta;
  }

  /**
   * Trains later epochs data-parallel in `group` (each rank its slice of every global batch,
   * gradients all-reduced before each step); null trains alone again.
   */
  attachGroup(group: NativeDistGroup | null): Promise<void> {
    return this.native.attachGroup(group);
  }

  /** Every rank takes rank `root`'s parameters and buffers (needs an attached group). */
  broadcastState(root = 0): Promise<void> {
    return this.native.broadcastState(root);
  }

  /** Parameters and buffers by name, copied to CPU float32. */
  state(): Promise<Record<string, Float32Array>> {
    return this.native.state();
  }

  /** Replaces every parameter and buffer by name (e.g. weights imported from safetensors); throws naming a missing, unknown or mis-sized tensor before changing anything. */
  setState(state: Record<string, Float32Array>): Promise<void> {
    return this.native.setState(state);
  }

  /**
   * Frees native memory and stops the worker thread; later calls throw. Returns at once (a running
   * epoch is cancelled, the memory is freed on the worker thread); disposeAsync() waits for it.
   */
  dispose(): void {
    void this.disposeAsync();
  }

  /** dispose(), resolved once the native memory is freed and the worker thread has stopped. Never rejects. */
  disposeAsync(): Promise<void> {
    if (!this.session) return Promise.resolve();
    const done = this.session.dispose();
    this.session = null;
    return done;
  }
}

function abortedResult(): EpochResult {
  return { loss: NaN, accuracy: NaN, images: 0, batches: 0, seconds: 0, imagesPerSec: 0, cancelled: true, nonFinite: false };
}

// The embedding API: a trained detector in a Node app.
//   const clf = await Classifier.load('runs/hoc');
//   const { label, pReal } = await clf.predict(fs.readFileSync('cat.jpg'));
import { storedTemperature } from './calibration';
import { checkMaxPixels, decodeImages, PREDICT_MAX_PIXELS } from './data/decode';
import { explainImage, type ExplainMethod, type ExplainPngOptions, type ExplainTarget, type ImageExplanation } from './gradcam/explain';
import { sigmoid } from './metrics';
import { CifakeModel, type CheckpointMeta } from './model';
import { loadNative } from './native';
import { loadSafetensorsModel } from './export';
import { resolveModelTarget } from './pretrained';
import { MILD_SUITE, perturbImages } from './robustness/perturb';
import { resolveCheckpoint } from './run';
import { packageVersion } from './version';

/** Raw pixels: 32x32 RGB, interleaved (HWC, as sharp's .raw() gives) unless layout is 'chw'. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels?: 3;
  layout?: 'hwc' | 'chw';
}

/** A file path, encoded image bytes (JPEG, PNG, WebP, ...), or raw 32x32 RGB pixels. */
export type ImageInput = string | Uint8Array | RawImage;

export interface Prediction {
  label: 'REAL' | 'FAKE';
  pReal: number;
  pFake: number;
  /** the model's logit divided by the temperature: pReal = sigmoid(logit) */
  logit: number;
  /** with `{ stability: true }`: P(REAL) over mild variants (JPEG 90, a 1-px shift, a mirror) */
  stability?: Stability;
}

/** How much a prediction moves under mild variants of the image: a user-facing "unsure" signal. */
export interface Stability {
  variants: string[];
  /** P(REAL) of each variant, in `variants` order */
  pReal: number[];
  /** max - min of P(REAL) over the image and its variants */
  spread: number;
  /** some variant gets the other label */
  unstable: boolean;
}

export interface PredictOptions {
  /** also classify mild variants and report the spread of P(REAL) (4x the work) */
  stability?: boolean;
}

export interface ClassifierOptions {
  device?: string;
  threads?: number;
  /** Concurrent predict() calls are coalesced into batches of at most this many images. */
  maxBatch?: number;
  /** ...waiting at most this long for a batch to fill. */
  maxWaitMs?: number;
  /** P(REAL) >= threshold is REAL (default: the threshold the model was trained with, else 0.5). */
  threshold?: number;
  /** Resize images that are not 32x32 (bilinear), as `--resize` does for training data. Default true. */
  resize?: boolean;
  /** P(REAL) = sigmoid(logit / temperature) (default: the temperature stored in the checkpoint by calibration, else 1). */
  temperature?: number;
  /**
   * Encoded images whose header declares more pixels (width x height) are refused before decoding
   * (ImageInputError with kind 'too-large'). Default 4096 x 4096 (PREDICT_MAX_PIXELS).
   */
  maxPixels?: number;
}

export interface ClassifierInfo {
  checkpoint: string;
  family: string;
  parameters: number;
  device: string;
  spec: CheckpointMeta['spec'];
  trainedEpochs: unknown;
  metrics: unknown;
  versions: { trainedWith: unknown; cifakeTorch: string; libtorch: string };
}

/** Counters of a Classifier (cheap; for monitoring and tests). */
export interface ClassifierStats {
  /** Images classified (predict and predictBatch). */
  images: number;
  /** Native forward calls: one per coalesced predict() batch, one per predictBatch(). */
  nativeCalls: number;
  /** Largest coalesced predict() batch so far. */
  largestBatch: number;
  /** predict() calls waiting for the next batch. */
  queued: number;
}

const IMAGE_BYTES = 3 * 32 * 32;

interface Pending {
  image: Uint8Array;
  resolve: (p: Prediction) => void;
  reject: (e: Error) => void;
}

/**
 * An input that cannot be classified (unreadable file, not an image, bad raw pixels): the caller's
 * fault, e.g. HTTP 400 in a service. `code` is 'ERR_CIFAKE_INPUT'; `index` is the input's position
 * in predictBatch (0 for predict), `input` names it (the path, or `input[i] (N bytes)`); `kind` is
 * 'too-large' for an image over maxPixels (e.g. HTTP 413), else 'invalid'.
 */
export class ImageInputError extends Error {
  readonly code = 'ERR_CIFAKE_INPUT';
  constructor(
    message: string,
    readonly index: number,
    readonly input: string,
    readonly kind: 'invalid' | 'too-large' = 'invalid',
  ) {
    super(`${input}: ${message}`);
    this.name = 'ImageInputError';
  }
}

const DISPOSED = 'this classifier was disposed; load a new one with Classifier.load()';

function inputName(x: ImageInput, index: number): string {
  if (typeof x === 'string') return x === '' ? `input[${index}] (empty path)` : x;
  if (x instanceof Uint8Array) return `input[${index}] (${x.length} bytes)`;
  return `input[${index}] (raw)`;
}

function rawToChw(raw: RawImage, index: number): Uint8Array | Uint8ClampedArray {
  const fail = (m: string) => new ImageInputError(`raw image: ${m}`, index, inputName(raw, index));
  if (raw.width !== 32 || raw.height !== 32 || (raw.channels ?? 3) !== 3)
    throw fail(`expected 32x32 with 3 channels, got ${raw.width}x${raw.height}x${raw.channels ?? 3} (encode it, e.g. as PNG, to have it resized)`);
  if (raw.layout !== undefined && raw.layout !== 'hwc' && raw.layout !== 'chw') throw fail(`layout must be 'hwc' or 'chw', got ${JSON.stringify(raw.layout)}`);
  const data = raw.data as unknown;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray) || data.length !== IMAGE_BYTES)
    throw fail(`data must be a Uint8Array of ${IMAGE_BYTES} bytes (32 * 32 * 3), got ${describeData(data)}`);
  if (raw.layout === 'chw') return data;
  const out = new Uint8Array(IMAGE_BYTES);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[c * 1024 + p] = data[p * 3 + c];
  return out;
}

function describeData(d: unknown): string {
  if (ArrayBuffer.isView(d)) return `a ${d.constructor.name} of ${(d as { length?: number }).length ?? d.byteLength} elements`;
  return d === null ? 'null' : typeof d;
}

function isRaw(x: ImageInput): x is RawImage {
  return typeof x === 'object' && !(x instanceof Uint8Array) && x !== null && 'data' in x;
}

export class Classifier {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** A coalesced batch is running: the next one is flushed when it completes (the worker is serial anyway). */
  private batchRunning = false;
  private isDisposed = false;
  private readonly counters = { images: 0, nativeCalls: 0, largestBatch: 0 };
  private readonly maxBatch: number;
  private readonly maxWaitMs: number;
  readonly threshold: number;
  readonly temperature: number;
  private readonly resize: boolean;
  private readonly batchListeners = new Set<(images: number) => void>();
  private readonly maxPixels: number;

  private constructor(
    private readonly model: CifakeModel,
    private readonly meta: CheckpointMeta,
    private readonly checkpoint: string,
    opts: ClassifierOptions,
  ) {
    this.maxBatch = opts.maxBatch ?? 256;
    this.maxWaitMs = opts.maxWaitMs ?? 2;
    const trained = (meta.config as { threshold?: number } | undefined)?.threshold;
    this.threshold = opts.threshold ?? trained ?? 0.5;
    this.temperature = opts.temperature ?? storedTemperature(meta) ?? 1;
    this.resize = opts.resize ?? true;
    this.maxPixels = opts.maxPixels ?? PREDICT_MAX_PIXELS;
  }

  /**
   * Loads a run directory (the model the run ended with: best.pt if it restored it, else last.pt), a
   * checkpoint file, or with no target (or 'pretrained') the detector shipped in the package.
   */
  static async load(target?: string, opts: ClassifierOptions = {}): Promise<Classifier> {
    if (opts.maxBatch !== undefined && !(Number.isInteger(opts.maxBatch) && opts.maxBatch >= 1))
      throw new Error(`maxBatch: expected an integer >= 1, got ${opts.maxBatch}`);
    if (opts.threshold !== undefined && !(opts.threshold >= 0 && opts.threshold <= 1))
      throw new Error(`threshold: expected a number in [0, 1], got ${opts.threshold}`);
    if (opts.maxWaitMs !== undefined && !(opts.maxWaitMs >= 0 && Number.isFinite(opts.maxWaitMs)))
      throw new Error(`maxWaitMs: expected a finite number >= 0, got ${opts.maxWaitMs}`);
    if (opts.temperature !== undefined && !(opts.temperature > 0 && Number.isFinite(opts.temperature)))
      throw new Error(`temperature: expected a finite number > 0, got ${opts.temperature}`);
    checkMaxPixels(opts.maxPixels, PREDICT_MAX_PIXELS, 'maxPixels');
    const resolved = resolveModelTarget(target);
    if (resolved.endsWith('.safetensors')) {
      // Weights with the documented tensor names (e.g. trained in PyTorch), spec and config in the file's metadata.
      const { model, meta } = await loadSafetensorsModel(resolved, { device: opts.device ?? 'cpu', threads: opts.threads });
      return new Classifier(model, meta, resolved, opts);
    }
    const checkpoint = resolveCheckpoint(resolved);
    const { model, meta } = await CifakeModel.load(checkpoint, { device: opts.device ?? 'cpu', threads: opts.threads, withOptimizer: false });
    return new Classifier(model, meta, checkpoint, opts);
  }

  get info(): ClassifierInfo {
    return {
      checkpoint: this.checkpoint,
      family: this.meta.spec.family,
      parameters: this.model.parameters,
      device: this.model.description.device,
      spec: this.meta.spec,
      trainedEpochs: this.meta.epoch,
      metrics: this.meta.val ?? null,
      versions: { trainedWith: this.meta.versions, cifakeTorch: packageVersion(), libtorch: loadNative().info().torchVersion },
    };
  }

  /** The underlying model (for Grad-CAM and advanced use). */
  get native(): CifakeModel {
    if (this.isDisposed || this.model.disposed) throw new Error(DISPOSED);
    return this.model;
  }

  get disposed(): boolean {
    return this.isDisposed || this.model.disposed;
  }

  get stats(): ClassifierStats {
    return { ...this.counters, queued: this.queue.length };
  }

  /** Decodes inputs to N x 3 x 32 x 32 uint8 exactly as training data; errors name the input. */
  async decode(inputs: ImageInput[]): Promise<Uint8Array> {
    const out = new Uint8Array(inputs.length * IMAGE_BYTES);
    const encoded: { index: number; value: string | Uint8Array }[] = [];
    inputs.forEach((x, i) => {
      if (isRaw(x)) out.set(rawToChw(x, i), i * IMAGE_BYTES);
      else if (typeof x === 'string' || x instanceof Uint8Array) encoded.push({ index: i, value: x });
      else throw new ImageInputError('expected a file path, encoded image bytes or a raw image { data, width: 32, height: 32 }', i, `input[${i}]`);
    });
    if (encoded.length) {
      const d = await decodeImages(
        encoded.map((e) => e.value),
        { resize: this.resize, maxPixels: this.maxPixels },
      );
      if (d.errors.length) {
        const e = d.errors[0];
        const { index, value } = encoded[e.index];
        const message = e.message === 'empty file' && typeof value !== 'string' ? 'empty input (no image bytes)' : e.message;
        throw new ImageInputError(message, index, inputName(value, index), e.status === 'too-large' ? 'too-large' : 'invalid');
      }
      for (let k = 0; k < d.count; k++)
        out.set(d.images.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES), encoded[d.indices[k]].index * IMAGE_BYTES);
    }
    return out;
  }

  private toPrediction(rawLogit: number): Prediction {
    const logit = rawLogit / this.temperature;
    const pReal = sigmoid(logit);
    return { label: pReal >= this.threshold ? 'REAL' : 'FAKE', pReal, pFake: 1 - pReal, logit };
  }

  /** Calls `listener(images)` after every native inference call (for batch-size metrics); returns an unsubscribe function. */
  onBatch(listener: (images: number) => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  private async forward(images: Uint8Array): Promise<Float32Array> {
    const logits = await this.native.predictLogits(images, this.maxBatch);
    this.counters.nativeCalls++;
    this.counters.images += logits.length;
    for (const l of this.batchListeners) l(logits.length);
    return logits;
  }

  private async withStability(images: Uint8Array, predictions: Prediction[]): Promise<Prediction[]> {
    const variants = [...MILD_SUITE];
    const perVariant: Float32Array[] = [];
    for (const v of variants) perVariant.push(await this.forward(await perturbImages(images, v)));
    return predictions.map((p, i) => {
      const pReal = perVariant.map((l) => this.toPrediction(l[i]).pReal);
      const all = [p.pReal, ...pReal];
      return {
        ...p,
        stability: {
          variants,
          pReal,
          spread: Math.max(...all) - Math.min(...all),
          unstable: all.some((q) => q >= this.threshold !== p.pReal >= this.threshold),
        },
      };
    });
  }

  /**
   * Classifies one image. Concurrent calls are coalesced into one native call of up to maxBatch
   * images: the first waits at most maxWaitMs for others, and while a batch runs the next one fills.
   * Rejects with ImageInputError for inputs that cannot be decoded.
   */
  async predict(input: ImageInput, opts: PredictOptions = {}): Promise<Prediction> {
    if (this.disposed) throw new Error(DISPOSED);
    const image = await this.decode([input]);
    if (this.disposed) throw new Error(DISPOSED);
    const p = await new Promise<Prediction>((resolve, reject) => {
      this.queue.push({ image, resolve, reject });
      this.schedule();
    });
    return opts.stability ? (await this.withStability(image, [p]))[0] : p;
  }

  /** Classifies many images in one native call (all or nothing: the first bad input rejects). */
  async predictBatch(inputs: ImageInput[], opts: PredictOptions = {}): Promise<Prediction[]> {
    if (this.disposed) throw new Error(DISPOSED);
    if (inputs.length === 0) return [];
    const images = await this.decode(inputs);
    if (this.disposed) throw new Error(DISPOSED);
    const predictions = Array.from(await this.forward(images), (z) => this.toPrediction(z));
    return opts.stability ? this.withStability(images, predictions) : predictions;
  }

  /** Predictions for images already decoded to N x 3 x 32 x 32 uint8 (planar), in one native call. */
  async predictDecoded(images: Uint8Array): Promise<Prediction[]> {
    if (images.length % IMAGE_BYTES !== 0) throw new Error(`predictDecoded: ${images.length} bytes is not a whole number of 3 x 32 x 32 images`);
    return Array.from(await this.forward(images), (z) => this.toPrediction(z));
  }

  /**
   * Grad-CAM / HiResCAM of one image (eval mode; the model is not changed): the prediction, the
   * 32x32 map divided by its maximum, the raw layer-resolution map and, with `png`, a triptych.
   *   const { prediction, map, png } = await clf.explain('cat.jpg', { png: { colormap: 'turbo' } });
   */
  async explain(
    input: ImageInput,
    opts: { method?: ExplainMethod; target?: ExplainTarget; layer?: string; png?: boolean | ExplainPngOptions } = {},
  ): Promise<ImageExplanation> {
    const model = this.native;
    const image = await this.decode([input]);
    if (this.disposed) throw new Error(DISPOSED);
    return explainImage(model, image, { ...opts, threshold: this.threshold, fileName: typeof input === 'string' ? input : undefined });
  }

  private schedule(): void {
    if (this.batchRunning) return;
    if (this.queue.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.batchRunning || this.isDisposed) return;
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    const images = new Uint8Array(batch.length * IMAGE_BYTES);
    batch.forEach((p, i) => images.set(p.image, i * IMAGE_BYTES));
    this.batchRunning = true;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.length);
    this.forward(images).then(
      (logits) => {
        batch.forEach((p, i) => p.resolve(this.toPrediction(logits[i])));
      },
      (e: Error) => batch.forEach((p) => p.reject(e)),
    ).finally(() => {
      this.batchRunning = false;
      // Whatever arrived meanwhile has waited long enough.
      if (this.queue.length) this.flush();
    });
  }

  /**
   * Frees the native model now (do not wait for GC: native memory is invisible to V8). Queued
   * predictions are rejected; a batch already running completes (dispose waits for it). Later
   * calls reject with a 'disposed' error. Idempotent; also `using clf = await Classifier.load(...)`.
   */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = this.queue.splice(0);
    const err = new Error(DISPOSED);
    for (const p of pending) p.reject(err);
    this.model.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

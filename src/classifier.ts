// The embedding API: a trained detector in a Node app.
//   const clf = await Classifier.load('runs/hoc');
//   const { label, pReal } = await clf.predict(fs.readFileSync('cat.jpg'));
import { decodeImages } from './data';
import { sigmoid } from './metrics';
import { CifakeModel, type CheckpointMeta } from './model';
import { loadNative } from './native';
import { resolveCheckpoint } from './train/run-dir';
import { packageVersion } from './version';

/** Raw pixels: 32x32 RGB, interleaved (HWC, as sharp's .raw() gives) unless layout is 'chw'. */
export interface RawImage {
  data: Uint8Array;
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

const IMAGE_BYTES = 3 * 32 * 32;

interface Pending {
  image: Uint8Array;
  resolve: (p: Prediction) => void;
  reject: (e: Error) => void;
}

function rawToChw(raw: RawImage): Uint8Array {
  if (raw.width !== 32 || raw.height !== 32 || (raw.channels ?? 3) !== 3)
    throw new Error(`raw image: expected 32x32 with 3 channels, got ${raw.width}x${raw.height}x${raw.channels ?? 3}`);
  if (!(raw.data instanceof Uint8Array) || raw.data.length !== IMAGE_BYTES)
    throw new Error(`raw image: data must be a Uint8Array of ${IMAGE_BYTES} bytes, got ${raw.data?.length}`);
  if (raw.layout === 'chw') return raw.data;
  const out = new Uint8Array(IMAGE_BYTES);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[c * 1024 + p] = raw.data[p * 3 + c];
  return out;
}

function isRaw(x: ImageInput): x is RawImage {
  return typeof x === 'object' && !(x instanceof Uint8Array) && x !== null && 'data' in x;
}

export class Classifier {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly maxBatch: number;
  private readonly maxWaitMs: number;
  readonly threshold: number;
  private readonly resize: boolean;

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
    this.resize = opts.resize ?? true;
  }

  /** Loads a run directory (its best.pt, else last.pt) or a checkpoint file. */
  static async load(target: string, opts: ClassifierOptions = {}): Promise<Classifier> {
    if (opts.maxBatch !== undefined && !(Number.isInteger(opts.maxBatch) && opts.maxBatch >= 1))
      throw new Error(`maxBatch: expected an integer >= 1, got ${opts.maxBatch}`);
    if (opts.threshold !== undefined && !(opts.threshold >= 0 && opts.threshold <= 1))
      throw new Error(`threshold: expected a number in [0, 1], got ${opts.threshold}`);
    const checkpoint = resolveCheckpoint(target);
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
    if (this.model.disposed) throw new Error('this classifier was disposed');
    return this.model;
  }

  /** Decodes inputs to N x 3 x 32 x 32 uint8 exactly as training data; errors name the input. */
  async decode(inputs: ImageInput[]): Promise<Uint8Array> {
    const out = new Uint8Array(inputs.length * IMAGE_BYTES);
    const encoded: { index: number; value: string | Uint8Array }[] = [];
    inputs.forEach((x, i) => {
      if (isRaw(x)) out.set(rawToChw(x), i * IMAGE_BYTES);
      else if (typeof x === 'string' || x instanceof Uint8Array) encoded.push({ index: i, value: x });
      else throw new Error(`input[${i}]: expected a file path, encoded image bytes or a raw image { data, width, height }`);
    });
    if (encoded.length) {
      const d = await decodeImages(
        encoded.map((e) => e.value),
        { resize: this.resize },
      );
      if (d.errors.length) {
        const e = d.errors[0];
        throw new Error(`${typeof encoded[e.index].value === 'string' ? e.name : `input[${encoded[e.index].index}]`}: ${e.message}`);
      }
      for (let k = 0; k < d.count; k++)
        out.set(d.images.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES), encoded[d.indices[k]].index * IMAGE_BYTES);
    }
    return out;
  }

  private toPrediction(logit: number): Prediction {
    const pReal = sigmoid(logit);
    return { label: pReal >= this.threshold ? 'REAL' : 'FAKE', pReal, pFake: 1 - pReal };
  }

  /** Classifies one image; concurrent calls are batched together. */
  async predict(input: ImageInput): Promise<Prediction> {
    const model = this.native;
    const image = await this.decode([input]);
    if (model.disposed) throw new Error('this classifier was disposed');
    return new Promise<Prediction>((resolve, reject) => {
      this.queue.push({ image, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }

  /** Classifies many images in one native call. */
  async predictBatch(inputs: ImageInput[]): Promise<Prediction[]> {
    const model = this.native;
    if (inputs.length === 0) return [];
    const images = await this.decode(inputs);
    const logits = await model.predictLogits(images, this.maxBatch);
    return Array.from(logits, (z) => this.toPrediction(z));
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    if (this.queue.length) this.timer = setTimeout(() => this.flush(), 0);
    const images = new Uint8Array(batch.length * IMAGE_BYTES);
    batch.forEach((p, i) => images.set(p.image, i * IMAGE_BYTES));
    let call: Promise<Float32Array>;
    try {
      call = this.native.predictLogits(images, this.maxBatch);
    } catch (e) {
      for (const p of batch) p.reject(e as Error);
      return;
    }
    call.then(
      (logits) => batch.forEach((p, i) => p.resolve(this.toPrediction(logits[i]))),
      (e: Error) => batch.forEach((p) => p.reject(e)),
    );
  }

  /** Frees the native model; pending predictions are rejected, later calls throw. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = this.queue.splice(0);
    for (const p of pending) p.reject(new Error('this classifier was disposed'));
    this.model.dispose();
  }
}

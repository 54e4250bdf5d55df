// The Open Inference Protocol (KServe v2) surface of `cifake serve`: model metadata and the JSON
// tensor form of /v2/models/<name>/infer. Input: "images", [N, 3, 32, 32], UINT8 (0..255) or FP32
// (pixel / 255, quantised to the uint8 grid the model reads), RGB planar. Outputs: "logit" (FP32,
// tempered as predictions use it), "p_real" (FP32) and "label" (BYTES, FAKE | REAL).
import { HttpError } from './http';

const PER = 3 * 32 * 32;

export interface ModelMetadataInput {
  name: string;
  threshold: number;
  temperature: number;
  parameters: number;
  family: string;
}

export function modelMetadata(m: ModelMetadataInput) {
  return {
    name: m.name,
    versions: ['1'],
    platform: 'cifake-torch/libtorch',
    inputs: [{ name: 'images', datatype: 'UINT8', shape: [-1, 3, 32, 32] }],
    outputs: [
      { name: 'logit', datatype: 'FP32', shape: [-1] },
      { name: 'p_real', datatype: 'FP32', shape: [-1] },
      { name: 'label', datatype: 'BYTES', shape: [-1] },
    ],
    parameters: {
      labels: ['FAKE', 'REAL'],
      threshold: m.threshold,
      temperature: m.temperature,
      family: m.family,
      model_parameters: m.parameters,
      input: 'images: UINT8 0..255 or FP32 pixel/255, RGB planar (N x 3 x 32 x 32); p_real = sigmoid(logit)',
    },
  };
}

function flatten(data: unknown, out: number[]): void {
  if (Array.isArray(data)) for (const d of data) flatten(d, out);
  else out.push(data as number);
}

/** Parses an infer request body into planar uint8 images; errors are 400s naming the field. */
export function parseInferRequest(body: unknown, maxImages: number): { id?: string; images: Uint8Array; n: number; outputs: string[] | null } {
  const bad = (m: string) => new HttpError(400, `infer request: ${m}`);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('expected a JSON object { inputs: [...] }');
  const b = body as { id?: unknown; inputs?: unknown; outputs?: unknown };
  if (!Array.isArray(b.inputs) || b.inputs.length !== 1) throw bad("inputs: expected one tensor named 'images'");
  const t = b.inputs[0] as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown };
  if (t === null || typeof t !== 'object') throw bad('inputs[0]: expected a tensor object');
  if (t.name !== 'images') throw bad(`inputs[0].name: expected 'images', got ${JSON.stringify(t.name)}`);
  if (t.datatype !== 'UINT8' && t.datatype !== 'FP32') throw bad(`inputs[0].datatype: expected UINT8 or FP32, got ${JSON.stringify(t.datatype)}`);
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || shape.slice(1).join(',') !== '3,32,32' || !Number.isInteger(shape[0]) || shape[0] < 1)
    throw bad(`inputs[0].shape: expected [N, 3, 32, 32] with N >= 1, got ${JSON.stringify(shape)}`);
  const n = shape[0] as number;
  if (n > maxImages) throw new HttpError(413, `infer request: ${n} images in one request; the limit is ${maxImages}`);
  const flat: number[] = [];
  flatten(t.data, flat);
  if (flat.length !== n * PER) throw bad(`inputs[0].data: expected ${n * PER} values for shape ${JSON.stringify(shape)}, got ${flat.length}`);
  const images = new Uint8Array(flat.length);
  const fp = t.datatype === 'FP32';
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`inputs[0].data[${i}]: expected a number, got ${JSON.stringify(v)}`);
    const px = fp ? v * 255 : v;
    if (fp ? !(v >= 0 && v <= 1) : !(Number.isInteger(v) && v >= 0 && v <= 255))
      throw bad(`inputs[0].data[${i}] = ${v}: ${fp ? 'FP32 values are pixel / 255, in [0, 1]' : 'UINT8 values are integers 0..255'}`);
    images[i] = Math.round(px);
  }
  let outputs: string[] | null = null;
  if (b.outputs !== undefined) {
    if (!Array.isArray(b.outputs)) throw bad('outputs: expected an array of { name }');
    outputs = b.outputs.map((o, i) => {
      const name = (o as { name?: unknown })?.name;
      if (name !== 'logit' && name !== 'p_real' && name !== 'label') throw bad(`outputs[${i}].name: expected logit, p_real or label, got ${JSON.stringify(name)}`);
      return name;
    });
  }
  return { id: typeof b.id === 'string' ? b.id : undefined, images, n, outputs };
}

export function inferResponse(name: string, id: string | undefined, logits: ArrayLike<number>, pReal: ArrayLike<number>, labels: string[], outputs: string[] | null) {
  const n = labels.length;
  const all = {
    logit: { name: 'logit', datatype: 'FP32', shape: [n], data: Array.from(logits) },
    p_real: { name: 'p_real', datatype: 'FP32', shape: [n], data: Array.from(pReal) },
    label: { name: 'label', datatype: 'BYTES', shape: [n], data: labels },
  };
  return { model_name: name, model_version: '1', ...(id ? { id } : {}), outputs: (outputs ?? ['logit', 'p_real', 'label']).map((o) => all[o as keyof typeof all]) };
}

/**
 * The tensor names and shapes of a CifakeNet, derived from its spec exactly as native/models.cc
 * registers its modules: the names `state()` returns, the names in an exported safetensors file,
 * and the `state_dict()` names of the PyTorch reference module (src/export/pytorch.ts).
 */
import type { NativeModelSpec } from '../native';

export interface TensorEntry {
  name: string;
  shape: number[];
  /** BatchNorm's running statistics and counter (not trained; `num_batches_tracked` is int64 in PyTorch). */
  buffer: boolean;
}

/** One conv block's shapes: what the ONNX graph and the layout both walk. */
export interface BlockShape {
  prefix: string;
  inChannels: number;
  outChannels: number;
  /** spatial size after the block's convs, before the 2x2 max-pool */
  size: number;
}

export function blockShapes(spec: NativeModelSpec): { blocks: BlockShape[]; features: number } {
  let channels = 3, size = 32;
  const blocks: BlockShape[] = [];
  spec.convFilters.forEach((f, i) => {
    if (spec.padding === 'valid') size -= 2;
    blocks.push({ prefix: `block${i + 1}`, inChannels: channels, outChannels: f, size });
    channels = f;
    size = Math.floor(size / 2);
  });
  return { blocks, features: channels * size * size };
}

export function tensorLayout(spec: NativeModelSpec): TensorEntry[] {
  const members = spec.members ?? 1;
  if (members === 1) return networkLayout(spec);
  // An ensemble registers its networks as member1..memberK, parameters before buffers.
  const one = networkLayout({ ...spec, members: 1 });
  const named = (buffer: boolean) =>
    Array.from({ length: members }, (_, k) => one.filter((e) => e.buffer === buffer).map((e) => ({ ...e, name: `member${k + 1}.${e.name}` }))).flat();
  return [...named(false), ...named(true)];
}

function networkLayout(spec: NativeModelSpec): TensorEntry[] {
  const params: TensorEntry[] = [], buffers: TensorEntry[] = [];
  const conv = (name: string, o: number, i: number, k: number, bias: boolean) => {
    params.push({ name: `${name}.weight`, shape: [o, i, k, k], buffer: false });
    if (bias) params.push({ name: `${name}.bias`, shape: [o], buffer: false });
  };
  const bn = (name: string, c: number) => {
    params.push({ name: `${name}.weight`, shape: [c], buffer: false }, { name: `${name}.bias`, shape: [c], buffer: false });
    buffers.push(
      { name: `${name}.running_mean`, shape: [c], buffer: true },
      { name: `${name}.running_var`, shape: [c], buffer: true },
      { name: `${name}.num_batches_tracked`, shape: [], buffer: true },
    );
  };
  const convs = spec.convsPerBlock ?? 1;
  const { blocks, features } = blockShapes(spec);
  for (const b of blocks) {
    conv(`${b.prefix}.conv`, b.outChannels, b.inChannels, 3, true);
    if (spec.hoc) conv(`${b.prefix}.conv_sq`, b.outChannels, b.inChannels, 3, true);
    if (spec.batchNorm) bn(`${b.prefix}.bn`, b.outChannels);
    for (let k = 2; k <= convs; k++) {
      conv(`${b.prefix}.conv${k}`, b.outChannels, b.outChannels, 3, false);
      bn(`${b.prefix}.bn${k}`, b.outChannels);
    }
    if (spec.residual && b.inChannels !== b.outChannels) {
      conv(`${b.prefix}.proj`, b.outChannels, b.inChannels, 1, false);
      bn(`${b.prefix}.proj_bn`, b.outChannels);
    }
  }
  let n = features;
  spec.dense.forEach((u, i) => {
    params.push({ name: `dense${i + 1}.weight`, shape: [u, n], buffer: false }, { name: `dense${i + 1}.bias`, shape: [u], buffer: false });
    n = u;
  });
  params.push({ name: 'out.weight', shape: [1, n], buffer: false }, { name: 'out.bias', shape: [1], buffer: false });
  return [...params, ...buffers];
}

export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Checks a name -> values map against the spec's layout: every tensor present with the right
 * number of values and nothing extra. `what` names the source in the error.
 */
export function checkState(spec: NativeModelSpec, state: Record<string, Float32Array>, what: string): TensorEntry[] {
  const layout = tensorLayout(spec);
  const problems: string[] = [];
  const known = new Set(layout.map((e) => e.name));
  for (const e of layout) {
    const v = state[e.name];
    if (!v) problems.push(`missing '${e.name}' [${e.shape}]`);
    else if (v.length !== numel(e.shape)) problems.push(`'${e.name}' has ${v.length} values, the model expects [${e.shape}] = ${numel(e.shape)}`);
  }
  for (const k of Object.keys(state)) if (!known.has(k)) problems.push(`unexpected tensor '${k}'`);
  if (problems.length) throw new Error(`${what}: tensors do not match the model spec (a different architecture?):\n  ${problems.slice(0, 12).join('\n  ')}${problems.length > 12 ? `\n  ... ${problems.length - 12} more` : ''}`);
  return layout;
}

/**
 * A CifakeNet as an ONNX graph (opset 13), built from its weights with no Python: the same ops as
 * native/models.cc in the same order (Conv, the HOC term as Mul + a second Conv, or in the fused
 * form one Conv over Concat[x, x*x] with stacked weights; BatchNormalization; Relu; residual Add;
 * MaxPool 2; Flatten of NCHW; Gemm; an ensemble: Mean of its members' logits). Contract: input `input` float32 [N,3,32,32] = RGB pixel / 255;
 * output `logit` [N] (any stored temperature already divided out), output `p_real` = sigmoid(logit).
 */
import type { NativeModelSpec } from '../native';
import { blockShapes, numel, tensorLayout } from './layout';
import { ATTR, ONNX_FLOAT, ONNX_INT64, onnxType } from './onnx-proto';

export const ONNX_OPSET = 13;
/** libtorch's BatchNorm2d default, used by every BN of the model */
const BN_EPS = 1e-5;

interface Attr { name: string; type: number; i?: number; f?: number; ints?: number[] }
interface Node { op_type: string; input: string[]; output: string[]; name: string; attribute: Attr[] }
interface Init { name: string; dims: number[]; data_type: number; raw_data: Buffer }

export interface OnnxExportOptions {
  /** logits are divided by it inside the graph (default 1: no Div node) */
  temperature?: number;
  /** string -> string pairs stored as the model's metadata_props */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly inits: Init[] = [];
  private count = 0;

  constructor(private readonly state: Record<string, Float32Array>, private readonly shapes: Map<string, number[]>) {}

  /** An initializer from a model tensor (by its state name), or from given values. */
  weight(name: string, values?: Float32Array, dims?: number[]): string {
    const data = values ?? this.state[name];
    const shape = dims ?? this.shapes.get(name);
    if (!data || !shape) throw new Error(`onnx export: no tensor '${name}' in the model state`);
    if (!this.inits.some((i) => i.name === name))
      this.inits.push({ name, dims: shape, data_type: ONNX_FLOAT, raw_data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  int64(name: string, values: number[]): string {
    this.inits.push({ name, dims: [values.length], data_type: ONNX_INT64, raw_data: Buffer.from(BigInt64Array.from(values.map(BigInt)).buffer) });
    return name;
  }

  op(op: string, inputs: string[], attrs: Attr[] = [], out?: string): string {
    const output = out ?? `${op.toLowerCase()}_${++this.count}`;
    this.nodes.push({ op_type: op, input: inputs, output: [output], name: `${op}_${this.count}_${output}`, attribute: attrs });
    return output;
  }

  conv(x: string, prefix: string, kernel: number, pad: number, bias: boolean): string {
    const inputs = [x, this.weight(`${prefix}.weight`)];
    if (bias) inputs.push(this.weight(`${prefix}.bias`));
    return this.op('Conv', inputs, convAttrs(kernel, pad));
  }

  bn(x: string, prefix: string): string {
    const w = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => this.weight(`${prefix}.${k}`));
    return this.op('BatchNormalization', [x, ...w], [{ name: 'epsilon', type: ATTR.FLOAT, f: BN_EPS }]);
  }
}

function convAttrs(kernel: number, pad: number): Attr[] {
  return [
    { name: 'kernel_shape', type: ATTR.INTS, ints: [kernel, kernel] },
    { name: 'pads', type: ATTR.INTS, ints: [pad, pad, pad, pad] },
    { name: 'strides', type: ATTR.INTS, ints: [1, 1] },
  ];
}

/** The higher-order first conv in its fused form: one conv over [x, x*x], weights stacked on the input axis. */
function fusedHocConv(g: GraphBuilder, x: string, prefix: string, cin: number, cout: number, pad: number, state: Record<string, Float32Array>): string {
  const w = state[`${prefix}.conv.weight`], wsq = state[`${prefix}.conv_sq.weight`];
  const stacked = new Float32Array(cout * 2 * cin * 9);
  const per = cin * 9;
  for (let o = 0; o < cout; o++) {
    stacked.set(w.subarray(o * per, (o + 1) * per), o * 2 * per);
    stacked.set(wsq.subarray(o * per, (o + 1) * per), o * 2 * per + per);
  }
  const b = Float32Array.from(state[`${prefix}.conv.bias`], (v, i) => v + state[`${prefix}.conv_sq.bias`][i]);
  const cat = g.op('Concat', [x, g.op('Mul', [x, x])], [{ name: 'axis', type: ATTR.INT, i: 1 }]);
  return g.op('Conv', [cat, g.weight(`${prefix}.fused.weight`, stacked, [cout, 2 * cin, 3, 3]), g.weight(`${prefix}.fused.bias`, b, [cout])], convAttrs(3, pad));
}

/** One network's logit, [N, 1], reading its tensors as `${prefix}block1.conv.weight`, ... */
function networkLogit(g: GraphBuilder, spec: NativeModelSpec, state: Record<string, Float32Array>, prefix: string): string {
  const pad = spec.padding === 'same' ? 1 : 0;
  const convs = spec.convsPerBlock ?? 1;
  const { blocks } = blockShapes(spec);
  let x = 'input';
  for (const b of blocks) {
    const p = prefix + b.prefix;
    let y: string;
    if (!spec.hoc) y = g.conv(x, `${p}.conv`, 3, pad, true);
    else if (spec.fusedHoc) y = fusedHocConv(g, x, p, b.inChannels, b.outChannels, pad, state);
    else y = g.op('Add', [g.conv(x, `${p}.conv`, 3, pad, true), g.conv(g.op('Mul', [x, x]), `${p}.conv_sq`, 3, pad, true)]);
    if (spec.batchNorm) y = g.bn(y, `${p}.bn`);
    for (let k = 2; k <= convs; k++) y = g.bn(g.conv(g.op('Relu', [y]), `${p}.conv${k}`, 3, pad, false), `${p}.bn${k}`);
    if (spec.residual) {
      const shortcut = b.inChannels !== b.outChannels ? g.bn(g.conv(x, `${p}.proj`, 1, 0, false), `${p}.proj_bn`) : x;
      y = g.op('Add', [y, shortcut]);
    }
    y = g.op('Relu', [y]);
    x = g.op('MaxPool', [y], [
      { name: 'kernel_shape', type: ATTR.INTS, ints: [2, 2] },
      { name: 'strides', type: ATTR.INTS, ints: [2, 2] },
    ]);
  }
  x = g.op('Flatten', [x], [{ name: 'axis', type: ATTR.INT, i: 1 }]);
  const gemm = (v: string, name: string) => g.op('Gemm', [v, g.weight(`${prefix}${name}.weight`), g.weight(`${prefix}${name}.bias`)], [{ name: 'transB', type: ATTR.INT, i: 1 }]);
  spec.dense.forEach((_, i) => {
    x = g.op('Relu', [gemm(x, `dense${i + 1}`)]);
  });
  return gemm(x, 'out');
}

/** The serialized ModelProto of `spec` with weights `state` (names as `state()` returns them); an ensemble's member logits are averaged (Mean). */
export function buildOnnx(spec: NativeModelSpec, state: Record<string, Float32Array>, opts: OnnxExportOptions = {}): Uint8Array {
  const shapes = new Map(tensorLayout(spec).map((e) => [e.name, e.shape]));
  const g = new GraphBuilder(state, shapes);
  const members = spec.members ?? 1;
  const one = { ...spec, members: 1 };
  const out = members === 1 ? networkLogit(g, spec, state, '') : g.op('Mean', Array.from({ length: members }, (_, k) => networkLogit(g, one, state, `member${k + 1}.`)));
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new RangeError(`onnx export: temperature must be > 0, got ${temperature}`);
  let logit = g.op('Reshape', [out, g.int64('logit_shape', [-1])], [], temperature === 1 ? 'logit' : undefined);
  if (temperature !== 1) logit = g.op('Div', [logit, g.weight('temperature', Float32Array.of(temperature), [])], [], 'logit');
  g.op('Sigmoid', [logit], [], 'p_real');

  const tensorType = (dims: (number | string)[]) => ({
    tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } },
  });
  const model = {
    ir_version: 7,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'cifake-torch',
    producer_version: opts.producerVersion ?? '',
    doc_string: 'input: float32 [N,3,32,32] = RGB pixel / 255; logit: [N], P(REAL) = sigmoid(logit); p_real = sigmoid(logit)',
    graph: {
      name: `cifake_${spec.family}`,
      node: g.nodes,
      initializer: g.inits,
      input: [{ name: 'input', type: tensorType(['N', 3, 32, 32]) }],
      output: [
        { name: 'logit', type: tensorType(['N']) },
        { name: 'p_real', type: tensorType(['N']) },
      ],
    },
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  const T = onnxType('ModelProto');
  const err = T.verify(model);
  if (err) throw new Error(`onnx export: internal error building the graph: ${err}`);
  return T.encode(T.fromObject(model)).finish();
}


/**
 * The safetensors container (Hugging Face's format, read by `safetensors.torch.load_file`): an
 * 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
 * range, then the raw little-endian data. `__metadata__` holds string -> string pairs.
 */
import fs from 'node:fs';

export type SafetensorsDtype = 'F32' | 'F64' | 'I64';

export interface NamedTensor {
  name: string;
  shape: number[];
  /** F32 unless `dtype` says otherwise; I64 values are written from these (whole numbers). */
  data: Float32Array;
  dtype?: 'F32' | 'I64';
}

export interface SafetensorsFile {
  tensors: Map<string, { shape: number[]; data: Float32Array; dtype: SafetensorsDtype }>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, I64: 8 };

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (numel(t.shape) !== t.data.length)
      throw new Error(`safetensors: '${t.name}' has ${t.data.length} values, its shape [${t.shape}] needs ${numel(t.shape)}`);
    const dtype = t.dtype ?? 'F32';
    let bytes: Buffer;
    if (dtype === 'I64') {
      const v = new BigInt64Array(t.data.length);
      for (let i = 0; i < v.length; i++) v[i] = BigInt(Math.round(t.data[i]));
      bytes = Buffer.from(v.buffer);
    } else {
      bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json), ...chunks]);
}

/** Parses a safetensors buffer; `file` names it in errors. F32, F64 and I64 are read (as float32). */
export function decodeSafetensors(buf: Buffer, file = 'safetensors'): SafetensorsFile {
  if (buf.length < 8) throw new Error(`${file}: not a safetensors file (${buf.length} bytes, shorter than its header length)`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(buf.length - 8) || n > 100_000_000n)
    throw new Error(`${file}: not a safetensors file, or truncated (header of ${n} bytes in a ${buf.length}-byte file)`);
  const start = 8 + Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, start).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error(`${file}: not a safetensors file (its header is not JSON)`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${file}: not a safetensors file (header is not an object)`);
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsFile['tensors'] = new Map();
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, s] of Object.entries((v ?? {}) as Record<string, unknown>)) if (typeof s === 'string') metadata[k] = s;
      continue;
    }
    const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!e || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || typeof e.dtype !== 'string')
      throw new Error(`${file}: tensor '${name}' has no dtype, shape or data_offsets`);
    if (!(e.dtype in BYTES)) throw new Error(`${file}: tensor '${name}' is ${e.dtype}; only F32, F64 and I64 are read (save float32 weights)`);
    const dtype = e.dtype as SafetensorsDtype;
    const [b, end] = e.data_offsets;
    const count = numel(e.shape);
    if (!(b >= 0 && end >= b && start + end <= buf.length) || end - b !== count * BYTES[dtype])
      throw new Error(`${file}: tensor '${name}' has a bad byte range [${b}, ${end}] (truncated file?)`);
    const raw = Buffer.from(buf.subarray(start + b, start + end)); // copy: aligned for the typed view
    const data = new Float32Array(count);
    if (dtype === 'F32') data.set(new Float32Array(raw.buffer, raw.byteOffset, count));
    else if (dtype === 'F64') data.set(new Float64Array(raw.buffer, raw.byteOffset, count));
    else {
      const v = new BigInt64Array(raw.buffer, raw.byteOffset, count);
      for (let i = 0; i < count; i++) data[i] = Number(v[i]);
    }
    tensors.set(name, { shape: e.shape, data, dtype });
  }
  return { tensors, metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  return decodeSafetensors(buf, file);
}

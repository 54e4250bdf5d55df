// The fuzzing half of test/native-fuzz.test.ts, in a child process (a crash must not take mocha
// down): every exported native function and method called with wrong types, lengths and numbers,
// then checkpoint loading with mutated bytes. Prints one JSON summary line.
// Strings double as file paths for save/load: the parent runs this in an empty temporary
// directory, and no bad value is an absolute path or climbs out of it (no '/', no '..').
import fs from 'node:fs';

import { loadNative, type NativeModelSpec, type NativeSession } from '../src/native';
import { rng } from './data-helpers';

const native = loadNative();
const SPEC: NativeModelSpec = {
  family: 'lightweight', convFilters: [4], dense: [8], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false,
};
const IMG = new Uint8Array(3072 * 2).map((_, i) => i % 256);
const LAB = new Uint8Array([0, 1]);

function detached(): Uint8Array {
  const a = new Uint8Array(3072);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}
const throwingGetter = new Proxy({}, { get() { throw new Error('getter throws'); } });

/** Values that are wrong somewhere: types, lengths, NaN, infinities, negative, huge, empty. */
const BAD: unknown[] = [
  undefined, null, NaN, Infinity, -Infinity, -1, -0, 0.5, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, -1e308,
  '', 'x', 'cuda:99', 'a'.repeat(5000), true, false, {}, [], [1, 2], [NaN], [-1], [2 ** 40], ['8'],
  () => 1, Symbol('s'), 10n, new Uint8Array(0), new Uint8Array(3071), new Uint8Array(3073), new Float32Array(3072),
  new Uint32Array(2), new Float64Array(1), new DataView(new ArrayBuffer(8)), detached(), throwingGetter,
  { batchSize: -1 }, { batchSize: NaN }, { layer: 'conv99' }, { size: 0 }, { size: 1e9 }, { target: 7 }, { augment: 3 },
  { data: 12 }, { lr: -1 }, { seed: -5 }, { optimizer: 5 }, { device: 'tpu' }, { amp: 'fp8' }, { amp: 'fp16' },
  { convFilters: [] }, { convFilters: [0] }, { dense: {} }, { padding: 'full' }, { dropout: 1 }, { dropout: NaN },
];

let calls = 0;
let threw = 0;
const nonErrors: string[] = [];

const TRACE = process.env.CIFAKE_FUZZ_TRACE === '1';

async function attempt(name: string, f: () => unknown): Promise<void> {
  calls++;
  if (TRACE) process.stderr.write(`${name}\n`); // which call a crash happened in
  try {
    const r = f();
    if (r instanceof Promise) await r;
  } catch (e) {
    threw++;
    if (!(e instanceof Error)) nonErrors.push(`${name}: ${String(e)}`);
  }
}

// Calls f with each bad value in position i of good args.
async function fuzzArgs(name: string, good: unknown[], f: (...a: unknown[]) => unknown): Promise<void> {
  for (let i = 0; i < Math.max(1, good.length); i++)
    for (const v of BAD) {
      const args = [...good];
      args[i] = v;
      await attempt(`${name}[${i}]`, () => f(...args));
    }
}

async function fuzzSession(): Promise<void> {
  const s = new native.Session(SPEC, { device: 'cpu', seed: 1, threads: 1 }) as NativeSession & Record<string, (...a: unknown[]) => unknown>;
  await s.setData('t', IMG, LAB);
  const methods: [string, unknown[]][] = [
    ['setData', ['k', IMG, LAB]],
    ['dropData', ['k']],
    ['trainEpoch', [{ data: 't', batchSize: 2 }, () => undefined]],
    ['predict', [IMG, { batchSize: 4 }]],
    ['gradcam', [IMG, { layer: 'conv1' }]],
    ['snapshot', []],
    ['restore', []],
    ['save', ['/nonexistent-dir/x.pt', '{}']],
    ['load', ['/nonexistent-dir/x.pt', { optimizer: true }]],
    ['state', []],
    ['setState', [{}]],
    ['describe', []],
    ['cancel', []],
    ['attachGroup', [null]],
    ['broadcastState', [0]],
  ];
  for (const [m, good] of methods) await fuzzArgs(`Session.${m}`, good, (...a) => s[m](...a));
  // Constructor: spec fields and options one at a time.
  await fuzzArgs('new Session', [SPEC, { device: 'cpu', threads: 1 }], (spec, opts) => new native.Session(spec as NativeModelSpec, opts as object).dispose());
  for (const key of Object.keys(SPEC))
    for (const v of BAD) await attempt(`spec.${key}`, () => new native.Session({ ...SPEC, [key]: v }, { device: 'cpu', threads: 1 }).dispose());
  for (const key of ['device', 'seed', 'threads', 'optimizer', 'channelsLast', 'amp'])
    for (const v of BAD) await attempt(`opts.${key}`, () => new native.Session(SPEC, { device: 'cpu', threads: 1, [key]: v }).dispose());
  // Disposed: every method throws or is a no-op.
  await s.dispose();
  for (const [m, good] of methods) await attempt(`disposed.${m}`, () => s[m](...good));
  await attempt('disposed.dispose', () => s.dispose());
}

async function fuzzFunctions(): Promise<void> {
  await attempt('info', () => native.info());
  for (const v of BAD) await attempt('setThreads', () => native.setThreads(v as number));
  native.setThreads(1);
  await fuzzArgs('readCheckpointMeta', ['/nonexistent.pt'], (p) => native.readCheckpointMeta(p as string));
  await fuzzArgs('gradientCheck', [{ ...SPEC, convFilters: [2], dense: [] }, 1], (spec, seed) => native.gradientCheck(spec as NativeModelSpec, seed as number));
  if (native.decodeJpegBatch) {
    const dec = native.decodeJpegBatch;
    const blob = new Uint8Array(64).map((_, i) => (i * 37) % 256);
    await fuzzArgs('decodeJpegBatch', [blob, new Uint32Array([0, 32, 64]), 32, undefined], (b, o, sz, out) =>
      dec(b as Uint8Array, o as Uint32Array, sz as number, out as Uint8Array));
    await attempt('decodeJpegBatch offsets past end', () => dec(blob, new Uint32Array([0, 1e9]), 32));
    await attempt('decodeJpegBatch decreasing', () => dec(blob, new Uint32Array([10, 5]), 32));
  }
  await fuzzArgs('new DistGroup', [{ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: 29999, timeoutMs: 1000 }], (o) => {
    const g = new native.DistGroup(o as never);
    void g.close();
  });
  const g = new native.DistGroup({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 29998, timeoutMs: 1000 });
  const gm = g as unknown as Record<string, (...a: unknown[]) => unknown>;
  const gmethods: [string, unknown[]][] = [
    ['broadcastBytes', [IMG, 0]],
    ['allGather', [new Float32Array(2)]],
    ['allReduce', [new Float64Array(2), 'sum']],
    ['barrier', []],
  ];
  for (const [m, good] of gmethods) await fuzzArgs(`DistGroup.${m} (not connected)`, good, (...a) => gm[m](...a));
  await g.close();
  for (const [m, good] of gmethods) await attempt(`closed.${m}`, () => gm[m](...good));
  await attempt('closed.connect', () => g.connect());
}

/** Mutated copies of a real checkpoint: none may crash; accepted ones must load the original weights. */
async function fuzzCheckpoints(file: string, seeds: number): Promise<{ refused: number; accepted: number; changedButAccepted: number }> {
  const original = fs.readFileSync(file);
  const { spec } = JSON.parse(native.readCheckpointMeta(file)) as { spec: NativeModelSpec };
  const s = new native.Session(spec, { device: 'cpu', seed: 1, threads: 1 });
  await s.load(file);
  const reference = JSON.stringify(Object.entries(await s.state()).map(([k, v]) => [k, Array.from(v)]));
  let refused = 0;
  let accepted = 0;
  let changedButAccepted = 0;
  const out = `${file}.mut`;
  for (let seed = 1; seed <= seeds; seed++) {
    const rand = rng(seed);
    const bad = Buffer.from(original);
    const k = 1 + Math.floor(rand() * 8);
    for (let j = 0; j < k; j++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    fs.writeFileSync(out, bad);
    calls++;
    if (TRACE) process.stderr.write(`checkpoint seed ${seed}\n`);
    try {
      native.readCheckpointMeta(out);
      await s.load(out);
      accepted++;
      const state = JSON.stringify(Object.entries(await s.state()).map(([k2, v]) => [k2, Array.from(v)]));
      if (state !== reference) changedButAccepted++;
    } catch (e) {
      threw++;
      refused++;
      if (!(e instanceof Error)) nonErrors.push(`checkpoint seed ${seed}: ${String(e)}`);
    }
  }
  fs.rmSync(out, { force: true });
  await s.dispose();
  return { refused, accepted, changedButAccepted };
}

async function main(): Promise<void> {
  const ckpt = process.argv[2];
  for (const v of BAD) if (typeof v === 'string' && (v.includes('/') || v.includes('..'))) throw new Error(`unsafe path ${v}`);
  if (fs.readdirSync('.').length > 0) throw new Error('run me in an empty directory: save() writes relative paths');
  const seeds = Number(process.argv[3] ?? 200);
  await fuzzSession();
  await fuzzFunctions();
  const checkpoints = await fuzzCheckpoints(ckpt, seeds);
  process.stdout.write(`${JSON.stringify({ calls, threw, nonErrors, checkpoints })}\n`);
  if (TRACE) process.stderr.write('done: exiting\n');
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});

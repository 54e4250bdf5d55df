// The native boundary's lifecycle: exiting mid-epoch, throwing callbacks, dispose, detached
// buffers. Whatever could crash the process runs in a child process (test/native-child.ts)
// whose exit status and signal are checked.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

import { CifakeModel } from '../src/model';
import { loadNative, type NativeModelSpec } from '../src/native';
import { makeImages } from './helpers';

const CHILD = path.join(__dirname, 'native-child.ts');
const SPEC: NativeModelSpec = {
  family: 'lightweight', convFilters: [8, 16], dense: [32], dropout: 0.5, padding: 'same', batchNorm: true, hoc: false, fusedHoc: false,
};

function child(mode: string, nodeFlags: string[] = []) {
  const r = spawnSync(process.execPath, [...nodeFlags, '--require', require.resolve('tsx/cjs'), CHILD, mode], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1' },
    timeout: 90_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return { status: r.status, signal: r.signal, stderr: r.stderr, json: line.startsWith('{') ? JSON.parse(line) : null };
}

const POLICIES: [string, string[]][] = [
  ['default policy', []],
  ['--force-node-api-uncaught-exceptions-policy=true', ['--force-node-api-uncaught-exceptions-policy=true']],
];

describe('native lifecycle', function () {
  this.timeout(180_000);

  describe('exiting while an epoch trains keeps the exit code (no signal)', () => {
    it('process.exit(3) mid-epoch exits with 3 (three times: the old crash came about every other run)', () => {
      for (let k = 0; k < 3; k++) {
        const r = child('exit-mid-epoch');
        expect(r.signal, r.stderr).to.equal(null);
        expect(r.status, r.stderr).to.equal(3);
      }
    });

    it('an uncaught exception mid-epoch exits with 1', () => {
      const r = child('throw-mid-epoch');
      expect(r.signal, r.stderr).to.equal(null);
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stderr).to.contain('uncaught on purpose');
    });

    it('dispose() then process.exit(4) mid-epoch exits with 4', () => {
      const r = child('dispose-then-exit');
      expect(r.signal, r.stderr).to.equal(null);
      expect(r.status, r.stderr).to.equal(4);
    });
  });

  for (const [name, flags] of POLICIES) {
    describe(`a throwing onProgress (${name})`, () => {
      it('stops the epoch and rejects trainEpoch with the thrown error', () => {
        const r = child('progress-throws', flags);
        expect(r.signal, r.stderr).to.equal(null);
        expect(r.status, r.stderr).to.equal(0);
        expect(r.json).to.deep.equal({ rejected: true, same: true, calls: 2, againImages: 1024 });
        expect(r.stderr).not.to.contain('DEP0168');
      });

      it('rejects with a thrown non-Error value too (raw binding)', () => {
        const r = child('raw-progress-throws', flags);
        expect(r.signal, r.stderr).to.equal(null);
        expect(r.status, r.stderr).to.equal(0);
        expect(r.json).to.deep.equal({ rejected: true, value: 'a string' });
      });
    });
  }

  describe('dispose', () => {
    it('returns at once during an epoch; the epoch resolves cancelled or rejects as disposed', async () => {
      const m = CifakeModel.create(SPEC, { device: 'cpu', seed: 1, threads: 1 });
      const { images, labels } = makeImages(2048, 4);
      await m.setData('train', images, labels);
      const epoch = m.trainEpoch({ data: 'train', batchSize: 16 }).then((r) => r, (e: Error) => e);
      await new Promise((r) => setTimeout(r, 100));
      const done = m.disposeAsync();
      expect(m.disposed).to.equal(true);
      await done;
      const r = await epoch;
      if (r instanceof Error) expect(r.message).to.match(/disposed/);
      else expect(r.cancelled).to.equal(true);
    });

    it('every method of a disposed raw session throws "disposed"; cancel and dispose are no-ops', async () => {
      const native = loadNative();
      const s = new native.Session(SPEC, { device: 'cpu', seed: 1, threads: 1 });
      await s.dispose();
      const img = new Uint8Array(3072);
      const calls: [string, () => unknown][] = [
        ['setData', () => s.setData('k', img, null)],
        ['dropData', () => s.dropData('k')],
        ['trainEpoch', () => s.trainEpoch({})],
        ['predict', () => s.predict(img)],
        ['gradcam', () => s.gradcam(img, { layer: 'conv1' })],
        ['snapshot', () => s.snapshot()],
        ['restore', () => s.restore()],
        ['save', () => s.save('/nonexistent/x.pt', '{}')],
        ['load', () => s.load('/nonexistent/x.pt')],
        ['state', () => s.state()],
        ['describe', () => s.describe()],
        ['attachGroup', () => s.attachGroup(null)],
        ['broadcastState', () => s.broadcastState(0)],
      ];
      for (const [name, call] of calls) expect(call, name).to.throw(/disposed/);
      expect(() => s.cancel()).not.to.throw();
      await s.dispose();
    });
  });

  it('DistGroup.close() does not block the event loop while a connect waits for a missing peer', async function () {
    const native = loadNative();
    if (!native.info().distributed) this.skip();
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const g = new native.DistGroup({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 3000 });
    const connecting = g.connect().then(() => 'connected', (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 200)); // the worker is now inside the rendezvous
    let ticked = false;
    setImmediate(() => (ticked = true));
    const closing = g.close();
    expect(closing).to.be.instanceOf(Promise);
    expect(ticked).to.equal(false);
    await closing; // resolves once the rendezvous gave up on the worker thread
    expect(ticked).to.equal(true); // the loop ran meanwhile: close() did not join on the JS thread
    expect(await connecting).to.not.equal('connected');
    expect(() => g.barrier()).to.throw(/closed/);
  });

  describe('detached input buffers', () => {
    // structuredClone with a transfer list detaches the source, as postMessage(x, [buf]) does.
    const transfer = (b: ArrayBufferLike) => structuredClone(b, { transfer: [b as ArrayBuffer] });

    it('predict and gradcam copy their input: transferring it right after the call changes nothing', async () => {
      const m = CifakeModel.create(SPEC, { device: 'cpu', seed: 1, threads: 1 });
      const { images } = makeImages(64, 9);
      const expected = await m.predictLogits(images.slice());
      const a = images.slice();
      const p = m.predictLogits(a);
      transfer(a.buffer);
      expect(a.byteLength).to.equal(0);
      expect(Array.from(await p)).to.deep.equal(Array.from(expected));
      const camExpected = await m.gradcam(images.slice(0, 3072 * 4));
      const b = images.slice(0, 3072 * 4);
      const q = m.gradcam(b);
      transfer(b.buffer);
      expect(Array.from((await q).maps)).to.deep.equal(Array.from(camExpected.maps));
      await m.disposeAsync();
    });

    it('setData copies its input: training after a transfer sees the original images', async () => {
      const { images, labels } = makeImages(256, 2);
      const runs: number[] = [];
      for (const detach of [false, true]) {
        const m = CifakeModel.create(SPEC, { device: 'cpu', seed: 1, threads: 1 });
        const a = images.slice();
        const l = labels.slice();
        const p = m.setData('train', a, l);
        if (detach) {
          transfer(a.buffer);
          transfer(l.buffer);
        }
        await p;
        runs.push((await m.trainEpoch({ data: 'train', batchSize: 32 })).loss);
        await m.disposeAsync();
      }
      expect(runs[1]).to.equal(runs[0]);
    });

    it('decodeJpegBatch copies its blob and rejects clearly when `out` is detached', async function () {
      const native = loadNative();
      if (!native.decodeJpegBatch) this.skip();
      const sharp = (await import('sharp')).default;
      const jpeg = await sharp(Buffer.alloc(32 * 32 * 3, 128), { raw: { width: 32, height: 32, channels: 3 } }).jpeg().toBuffer();
      const blob = new Uint8Array(jpeg);
      const offsets = new Uint32Array([0, blob.length]);
      const expected = await native.decodeJpegBatch(blob.slice(), offsets, 32);
      const copy = blob.slice();
      const p = native.decodeJpegBatch(copy, offsets, 32);
      transfer(copy.buffer);
      const got = await p;
      expect(Buffer.from(got.images).equals(Buffer.from(expected.images))).to.equal(true);
      const out = new Uint8Array(3072);
      const q = native.decodeJpegBatch(blob, offsets, 32, out);
      transfer(out.buffer);
      const err = await q.then(() => null, (e: Error) => e);
      expect(err?.message).to.match(/out was detached/);
    });
  });
});

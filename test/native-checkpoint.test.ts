// Checkpoint integrity: a checksum over every saved entry; corrupt files are refused by name,
// checkpoints written before the checksum existed still load.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CifakeModel } from '../src/model';
import { tinyCheckpoint } from './helpers';

const FIXTURES = path.join(__dirname, 'fixtures');

/** Entries of a zip (PyTorch's archive format) from its central directory: name, data offset, size. */
export function zipEntries(buf: Buffer): { name: string; offset: number; size: number }[] {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out: { name: string; offset: number; size: number }[] = [];
  for (let k = 0; k < count && buf.readUInt32LE(p) === 0x02014b50; k++) {
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    const offset = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    out.push({ name, offset, size });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

describe('checkpoint integrity', function () {
  this.timeout(120_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-ckpt-'));
  const good = path.join(tmp, 'best.pt');
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  before(async () => tinyCheckpoint(good));

  it('a saved checkpoint loads and verifies', async () => {
    const { model, meta } = await CifakeModel.load(good, { device: 'cpu', threads: 1 });
    expect(meta.epoch).to.equal(2);
    await model.disposeAsync();
  });

  it('400 flipped bytes inside tensor data: load and readMeta refuse it, naming the file', async () => {
    const bytes = fs.readFileSync(good);
    const data = zipEntries(bytes).filter((e) => /\/data\/\d+$/.test(e.name));
    expect(data.length).to.be.greaterThan(3);
    const largest = data.reduce((a, b) => (b.size > a.size ? b : a));
    expect(largest.size).to.be.greaterThan(4000);
    const bad = Buffer.from(bytes);
    const start = largest.offset + Math.floor(largest.size / 2) - 200;
    for (let k = 0; k < 400; k++) bad[start + k] ^= 0x5a;
    const file = path.join(tmp, 'corrupt.pt');
    fs.writeFileSync(file, bad);
    expect(() => CifakeModel.readMeta(file)).to.throw(`${file}: checkpoint is corrupt (checksum mismatch`);
    const err = await CifakeModel.load(file, { device: 'cpu', threads: 1 }).then(() => null, (e: Error) => e);
    expect(err?.message).to.contain(`${file}: checkpoint is corrupt (checksum mismatch`);
    // loadWeights into an existing model refuses it too, and leaves the model as it was.
    const { model } = await CifakeModel.load(good, { device: 'cpu', threads: 1 });
    const before = await model.state();
    const e2 = await model.loadWeights(file).then(() => null, (e: Error) => e);
    expect(e2?.message).to.contain('checksum mismatch');
    expect(await model.state()).to.deep.equal(before);
    await model.disposeAsync();
  });

  it('a changed meta is refused as well', async () => {
    const bytes = fs.readFileSync(good);
    const at = bytes.indexOf(Buffer.from('"threshold":0.5'));
    expect(at).to.be.greaterThan(0);
    const bad = Buffer.from(bytes);
    bad.write('"threshold":0.9', at); // same length: the archive still parses
    const file = path.join(tmp, 'meta-changed.pt');
    fs.writeFileSync(file, bad);
    expect(() => CifakeModel.readMeta(file)).to.throw(/checkpoint is corrupt|not a readable/);
  });

  it('a checkpoint written before checksums existed still loads, with the same predictions', async () => {
    const file = path.join(FIXTURES, 'pre-checksum.pt');
    const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'pre-checksum.logits.json'), 'utf8')) as number[];
    const { model, meta } = await CifakeModel.load(file, { device: 'cpu', threads: 1 });
    expect(meta.epoch).to.equal(1);
    const images = new Uint8Array(8 * 3072);
    for (let i = 0; i < images.length; i++) images[i] = (i * 7919) % 251;
    const logits = await model.predictLogits(images);
    Array.from(logits).forEach((z, i) => expect(z).to.be.closeTo(expected[i], 1e-6));
    await model.disposeAsync();
  });
});

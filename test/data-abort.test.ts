// An AbortSignal (Ctrl-C in the CLI) stops the first decode of a split within a batch of files:
// the load rejects with an AbortError, having decoded at most one batch after the abort (the batch
// in flight), and leaves no cache behind.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JpegBinding, loadSplit, openSplit, prepare, setJpegBinding } from '../src/data';
import { BATCH } from '../src/data/ingest';
import { makeJpeg, TempDir, Tree, writeFolder, writeZip } from './data-helpers';

/** writeFolder for a tree of identical files: one written, the others hard links (writes are slow here). */
function linkFolder(root: string, tree: Tree): string {
  let first: string | null = null;
  for (const rel of tree.keys()) {
    const p = path.join(root, ...rel.split('/'));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (first === null) fs.writeFileSync((first = p), tree.get(rel) as Buffer);
    else fs.linkSync(first, p);
  }
  return root;
}

/** A stand-in for the native decoder that counts the files it is given (zero pixels, all ok). */
function countingDecoder(): JpegBinding & { files: number } {
  const d = {
    files: 0,
    async decodeJpegBatch(_blob: Uint8Array, offsets: Uint32Array, size: number, out?: Uint8Array) {
      const n = offsets.length - 1;
      d.files += n;
      return { images: out ?? new Uint8Array(n * 3 * size * size), status: new Int32Array(n), messages: new Array<string>(n).fill('') };
    },
  };
  return d;
}

async function abortError(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e, 'expected a rejection').to.be.instanceOf(Error);
  expect((e as Error).name).to.equal('AbortError');
  return e as Error;
}

describe('data: aborting a decode', function () {
  let tmp: TempDir;
  let tree: Tree;
  // More batches than can be read ahead and in flight when the first one is consumed (READ_AHEAD 3
  // in src/data/ingest.ts, plus one), so a decode that honours the abort always stops short of all.
  const total = 6 * BATCH;
  before(async function () {
    tmp = new TempDir('cifake-data-abort');
    // The same small JPEG under many names: what is counted is files handed to the decoder.
    const jpeg = await makeJpeg(1);
    tree = new Map();
    for (let i = 0; i < total / 2; i++) {
      tree.set(`train/FAKE/${i}.jpg`, jpeg);
      tree.set(`train/REAL/${i}.jpg`, jpeg);
    }
  });
  afterEach(() => setJpegBinding(undefined));
  after(() => tmp.remove());

  for (const [name, how] of [
    ['loadSplit from a folder (in memory)', 'load'],
    ['openSplit from a zip (streamed into the cache)', 'open'],
  ] as const) {
    it(`${name}: aborting after the first batch rejects having decoded at most one batch more`, async function () {
      const data = how === 'load' ? linkFolder(tmp.join('folder'), tree) : writeZip(tmp.join('set.zip'), tree);
      const cacheDir = tmp.join(`cache-${how}`);
      const decoder = countingDecoder();
      setJpegBinding(decoder);
      const ac = new AbortController();
      const seen: number[] = [];
      let atAbort = -1;
      const onProgress = ({ done }: { done: number }): void => {
        seen.push(done);
        if (done > 0 && atAbort < 0) {
          atAbort = decoder.files;
          ac.abort();
        }
      };
      const opts = { split: 'train', cacheDir, onProgress, signal: ac.signal };
      await abortError(how === 'load' ? loadSplit(data, opts) : openSplit(data, opts));
      expect(seen).to.deep.equal([0, BATCH]);
      // Batches read ahead may have been decoded before the abort; after it, at most the one in flight.
      expect(atAbort).to.be.at.least(BATCH);
      expect(decoder.files - atAbort).to.be.at.most(BATCH);
      expect(decoder.files).to.be.below(total);
      const left = fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [];
      expect(left, 'no cache (or temporary file) left').to.deep.equal([]);
      // The same load without an abort decodes everything once.
      const full = countingDecoder();
      setJpegBinding(full);
      const s = await loadSplit(data, { split: 'train', cacheDir: false });
      expect(s.count).to.equal(total);
      expect(full.files).to.equal(total);
    });
  }

  it('an already aborted signal decodes nothing (loadSplit, openSplit, prepare) and names the reason', async function () {
    const small: Tree = new Map([...tree].filter(([k]) => /\/[0-9]\.jpg$/.test(k)));
    const data = writeFolder(tmp.join('small'), small);
    const decoder = countingDecoder();
    setJpegBinding(decoder);
    const ac = new AbortController();
    ac.abort();
    const cacheDir = tmp.join('cache-pre');
    await abortError(loadSplit(data, { split: 'train', cacheDir, signal: ac.signal }));
    await abortError(openSplit(data, { split: 'train', cacheDir, signal: ac.signal }));
    await abortError(prepare(data, { cacheDir, signal: ac.signal }));
    expect(decoder.files).to.equal(0);
    const reason = new AbortController();
    reason.abort(Object.assign(new Error('stop: SIGINT'), { name: 'AbortError' }));
    const e = await abortError(loadSplit(data, { split: 'train', cacheDir: false, signal: reason.signal }));
    expect(e.message).to.equal('stop: SIGINT');
    expect(fs.existsSync(path.join(cacheDir))).to.equal(false);
  });
});

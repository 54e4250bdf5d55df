// Pixel bombs: an image whose header declares a huge size is refused from the header, before any
// pixel is decoded, with an error that names the file; the limit is an option (maxPixels).
import { expect } from 'chai';
import * as fs from 'node:fs';
import { decodeImages, DEFAULT_MAX_PIXELS, loadSplit, PREDICT_MAX_PIXELS, setJpegBinding } from '../src/data';
import { cifakeTree, dataErrorOf, jpegDeclaring, makeJpeg, makePng, nativeJpeg, pngDeclaring, TempDir, Tree, writeFolder, writeZip } from './data-helpers';

describe('data: pixel limit (image bombs)', function () {
  let tmp: TempDir;
  let bomb: Buffer;
  before(() => {
    tmp = new TempDir('cifake-data-pixels');
    bomb = pngDeclaring(16000, 16000);
  });
  after(() => {
    tmp.remove();
    setJpegBinding(undefined);
  });

  it('defaults: 4096 x 4096 for images to classify, 8192 x 8192 for training data', () => {
    expect(PREDICT_MAX_PIXELS).to.equal(4096 * 4096);
    expect(DEFAULT_MAX_PIXELS).to.equal(8192 * 8192);
  });

  for (const decoder of ['sharp', 'native'] as const) {
    it(`${decoder}: refuses a small file that declares 16000x16000 (PNG and JPEG) from its header`, async function () {
      if (decoder === 'native' && nativeJpeg() === null) this.skip();
      if (decoder === 'sharp') setJpegBinding(null);
      expect(bomb.length).to.be.below(1000);
      const jpegBomb = jpegDeclaring(await makeJpeg(5), 16000, 16000);
      const d = await decodeImages([bomb, await makePng(6), jpegBomb], { resize: true });
      expect(d.count).to.equal(1);
      expect(Array.from(d.indices)).to.deep.equal([1]);
      expect(d.errors.map((e) => [e.index, e.status])).to.deep.equal([
        [0, 'too-large'],
        [2, 'too-large'],
      ]);
      // Not a decoder failure on the missing rows: the header alone decided.
      expect(d.errors[0].message).to.equal('image is 16000x16000 (256000000 pixels), over the limit of 16777216 pixels (4096x4096) (maxPixels)');
      const file = tmp.join(`bomb-${decoder}.png`);
      fs.writeFileSync(file, bomb);
      const e = await dataErrorOf(decodeImages([file], { resize: true, strict: true }));
      expect(e.message).to.match(/bomb-(sharp|native)\.png: image is 16000x16000 .*over the limit/);
      expect(e.file).to.equal(file);
    });
  }

  it('applies a configured limit to real images, and validates it', async function () {
    const png64 = await makePng(7, 64);
    const under = await decodeImages([png64], { resize: true, maxPixels: 64 * 64 });
    expect(under.count).to.equal(1);
    const over = await decodeImages([png64], { resize: true, maxPixels: 64 * 64 - 1 });
    expect(over.errors.map((e) => e.status)).to.deep.equal(['too-large']);
    expect(over.errors[0].message).to.match(/image is 64x64 \(4096 pixels\), over the limit of 4095 pixels/);
    // A larger limit lets the crafted file reach the decoder, which then fails on its missing rows.
    const trusted = await decodeImages([bomb], { resize: true, maxPixels: 16000 * 16000 });
    expect(trusted.errors.map((e) => e.status)).to.deep.equal(['corrupt']);
    for (const bad of [0, -5, 1.5, Number.NaN]) {
      const e = await dataErrorOf(decodeImages([png64], { maxPixels: bad }));
      expect(e.message).to.match(/options\.maxPixels must be a positive integer/);
    }
  });

  it('loadSplit skips an oversized file (named, with the reason) and strict fails on it', async function () {
    nativeJpeg();
    const tree: Tree = await cifakeTree({ train: { FAKE: 3, REAL: 3 } }, 21);
    tree.set('train/FAKE/bomb.png', bomb);
    tree.set('train/REAL/big.png', await makePng(8, 64));
    for (const data of [writeFolder(tmp.join('set'), tree), writeZip(tmp.join('set.zip'), tree)]) {
      const s = await loadSplit(data, { split: 'train', cacheDir: false, resize: true });
      expect(s.summary.counts).to.deep.equal({ FAKE: 3, REAL: 4 });
      expect(s.summary.skipped.files.map((f) => [f.file.replace(/\\/g, '/').split(/[:/]train\//).pop(), f.reason])).to.deep.equal([
        ['FAKE/bomb.png', 'image is 16000x16000 (256000000 pixels), over the limit of 67108864 pixels (8192x8192) (maxPixels)'],
      ]);
      const strict = await dataErrorOf(loadSplit(data, { split: 'train', cacheDir: false, resize: true, strict: true }));
      expect(strict.message).to.match(/train\/FAKE\/bomb\.png: cannot decode image: image is 16000x16000 .*over the limit.*\(strict mode\)/);
      const low = await loadSplit(data, { split: 'train', cacheDir: false, resize: true, maxPixels: 32 * 32 });
      expect(low.summary.skipped.count).to.equal(2);
    }
    const cacheDir = tmp.join('cache');
    const folder = tmp.join('set');
    const a = await loadSplit(folder, { split: 'train', cacheDir, resize: true });
    const b = await loadSplit(folder, { split: 'train', cacheDir, resize: true, maxPixels: 32 * 32 });
    expect(b.summary.cache.path).to.not.equal(a.summary.cache.path);
    expect([a.summary.skipped.count, b.summary.skipped.count]).to.deep.equal([1, 2]);
    const e = await dataErrorOf(loadSplit(folder, { split: 'train', maxPixels: 0 }));
    expect(e.message).to.match(/options\.maxPixels must be a positive integer/);
  });
});

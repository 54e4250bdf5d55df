import { expect } from 'chai';
import * as fs from 'node:fs';
import sharp from 'sharp';
import { DataError, decodeImages, IMAGE_BYTES, setJpegBinding } from '../src/data';
import { decodeBatch } from '../src/data/decode';
import { openSource } from '../src/data/open';
import { makeJpeg, makePng, makeWebp, nativeJpeg, rawPixels, realDataOrSkip, sharpChw, TempDir, toChw } from './data-helpers';

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('data: decoding', function () {
  after(() => setJpegBinding(undefined));

  describe('sharp path (reference)', function () {
    before(() => setJpegBinding(null));

    it('writes planar CHW RGB: all R, then all G, then all B', async function () {
      const raw = rawPixels(7);
      const png = await makePng(7);
      const d = await decodeImages([png]);
      expect(d.count).to.equal(1);
      expect(d.images.length).to.equal(IMAGE_BYTES);
      expect(firstDiff(d.images, toChw(raw, 3))).to.equal(-1);
      // spot check one pixel: (x=5, y=9)
      const p = 9 * 32 + 5;
      expect([d.images[p], d.images[1024 + p], d.images[2048 + p]]).to.deep.equal([raw[p * 3], raw[p * 3 + 1], raw[p * 3 + 2]]);
    });

    it('drops the alpha channel of RGBA PNGs (no compositing)', async function () {
      const raw = rawPixels(8, 32, 32, 4);
      const d = await decodeImages([await makePng(8, 32, 4)]);
      expect(firstDiff(d.images, toChw(raw, 4))).to.equal(-1);
    });

    it('expands grayscale to three identical planes', async function () {
      const gray = await makeJpeg(9, { gray: true });
      expect((await sharp(gray).metadata()).channels).to.equal(1);
      const d = await decodeImages([gray]);
      const img = d.images;
      expect(firstDiff(img.subarray(0, 1024), img.subarray(1024, 2048))).to.equal(-1);
      expect(firstDiff(img.subarray(0, 1024), img.subarray(2048))).to.equal(-1);
      expect(firstDiff(img, await sharpChw(gray))).to.equal(-1);
    });

    it('decodes WebP losslessly', async function () {
      const d = await decodeImages([await makeWebp(10)]);
      expect(firstDiff(d.images, toChw(rawPixels(10), 3))).to.equal(-1);
    });

    it('rejects other sizes unless resize, then resizes bilinearly like sharp linear', async function () {
      const big = await makePng(11, 64);
      const no = await decodeImages([big]);
      expect(no.count).to.equal(0);
      expect(no.errors[0].message).to.match(/64x64, expected 32x32/);
      expect(no.errors[0].message).to.match(/resize/);
      const yes = await decodeImages([big], { resize: true });
      expect(yes.count).to.equal(1);
      expect(firstDiff(yes.images, await sharpChw(big, 32))).to.equal(-1);
    });

    it('leaves 32x32 images untouched when resize is on', async function () {
      const png = await makePng(12);
      const a = await decodeImages([png]);
      const b = await decodeImages([png], { resize: true });
      expect(firstDiff(a.images, b.images)).to.equal(-1);
    });
  });

  describe('bad inputs (both paths)', function () {
    for (const mode of ['sharp', 'native'] as const) {
      it(`${mode}: truncated JPEG, text named .jpg and empty input are errors, others still decode`, async function () {
        if (mode === 'native' && nativeJpeg() === null) this.skip();
        if (mode === 'sharp') setJpegBinding(null);
        const good = await makeJpeg(20);
        const truncated = good.subarray(0, Math.floor(good.length * 0.6));
        const text = Buffer.from('this is not an image\n');
        const empty = Buffer.alloc(0);
        const d = await decodeImages([good, truncated, text, empty, good]);
        expect(d.count).to.equal(2);
        expect(Array.from(d.indices)).to.deep.equal([0, 4]);
        expect(d.errors.map((e) => e.index)).to.deep.equal([1, 2, 3]);
        expect(d.errors[2].message).to.match(/empty/);
        expect(firstDiff(d.images.subarray(0, IMAGE_BYTES), await sharpChw(good))).to.equal(-1);
        const strict = await decodeImages([good, truncated], { strict: true }).catch((e: unknown) => e);
        expect(strict).to.be.instanceOf(DataError);
        expect((strict as DataError).message).to.match(/input\[1\]/);
        setJpegBinding(undefined);
      });
    }

    it('names the file path in errors for path inputs', async function () {
      const tmp = new TempDir();
      try {
        const p = tmp.join('notes.jpg');
        fs.writeFileSync(p, 'hello');
        const d = await decodeImages([p, tmp.join('missing.png')]);
        expect(d.errors.map((e) => e.name)).to.deep.equal([p, tmp.join('missing.png')]);
        expect(d.errors[1].message).to.match(/cannot read/);
        const e = await decodeImages([p], { strict: true }).catch((x: unknown) => x);
        expect((e as DataError).file).to.equal(p);
      } finally {
        tmp.remove();
      }
    });
  });

  describe('native libjpeg-turbo path', function () {
    before(function () {
      if (nativeJpeg() === null) {
        console.log('      (no native decodeJpegBatch: build the addon, or set CIFAKE_TEST_JPEG_ADDON; skipping)');
        this.skip();
      }
    });
    after(() => setJpegBinding(undefined));

    async function bothWays(inputs: Buffer[], resize = false): Promise<{ native: Awaited<ReturnType<typeof decodeBatch>>; ref: Awaited<ReturnType<typeof decodeBatch>> }> {
      const b = nativeJpeg();
      setJpegBinding(b);
      const native = await decodeBatch(inputs, { resize });
      setJpegBinding(null);
      const ref = await decodeBatch(inputs, { resize });
      setJpegBinding(b);
      return { native, ref };
    }

    it('is pixel-identical to sharp on generated JPEGs (qualities, 4:2:0 / 4:4:4, progressive, grayscale)', async function () {
      const inputs: Buffer[] = [];
      let seed = 100;
      for (const quality of [30, 75, 95]) {
        for (const chromaSubsampling of ['4:2:0', '4:4:4'] as const) {
          for (const progressive of [false, true]) inputs.push(await makeJpeg(seed++, { quality, chromaSubsampling, progressive }));
        }
        inputs.push(await makeJpeg(seed++, { quality, gray: true }));
      }
      const { native, ref } = await bothWays(inputs);
      native.results.forEach((r, i) => expect(r, `input ${i}`).to.include({ status: 'ok', via: 'native' }));
      ref.results.forEach((r) => expect(r).to.include({ status: 'ok', via: 'sharp' }));
      expect(firstDiff(native.images, ref.images)).to.equal(-1);
    });

    it('hands CMYK JPEGs and JPEGs with an ICC profile to sharp', async function () {
      const cmyk = await sharp(await makePng(30)).toColourspace('cmyk').jpeg().toBuffer();
      const icc = await sharp(await makePng(31)).withIccProfile('p3').jpeg().toBuffer();
      const { native, ref } = await bothWays([cmyk, icc]);
      expect(native.results.map((r) => r.via)).to.deep.equal(['sharp', 'sharp']);
      expect(firstDiff(native.images, ref.images)).to.equal(-1);
    });

    it('reports wrong sizes, and resizes through sharp with resize', async function () {
      const big = await makeJpeg(40, { size: 48 });
      const { native } = await bothWays([big]);
      expect(native.results[0]).to.include({ status: 'wrong-size' });
      expect(native.results[0].message).to.match(/48x48, expected 32x32/);
      const resized = await bothWays([big], true);
      expect(resized.native.results[0]).to.include({ status: 'ok', via: 'sharp', resized: true });
      expect(firstDiff(resized.native.images, resized.ref.images)).to.equal(-1);
    });

    it('rejects a truncated JPEG with libjpeg’s message and decodes its neighbours', async function () {
      const a = await makeJpeg(50);
      const b = await makeJpeg(51);
      const cut = b.subarray(0, b.length - 40);
      const { native } = await bothWays([a, cut, a]);
      expect(native.results.map((r) => r.status)).to.deep.equal(['ok', 'corrupt', 'ok']);
      expect(native.results[1].message).to.not.equal('');
      expect(firstDiff(native.images.subarray(IMAGE_BYTES, 2 * IMAGE_BYTES), new Uint8Array(IMAGE_BYTES))).to.equal(-1);
      expect(firstDiff(native.images.subarray(0, IMAGE_BYTES), native.images.subarray(2 * IMAGE_BYTES))).to.equal(-1);
    });

    it('decodes into a caller buffer and validates its arguments', async function () {
      const b = nativeJpeg();
      if (b === null) this.skip();
      const j = await makeJpeg(60);
      const blob = Buffer.concat([j, j]);
      const offsets = Uint32Array.from([0, j.length, 2 * j.length]);
      const out = new Uint8Array(2 * IMAGE_BYTES);
      const r = await b.decodeJpegBatch(blob, offsets, 32, out);
      expect(r.images === out).to.equal(true, 'images should be the out buffer (is the addon built from the current native/jpeg_binding.cc?)');
      expect(Array.from(r.status)).to.deep.equal([0, 0]);
      expect(firstDiff(out.subarray(0, IMAGE_BYTES), await sharpChw(j))).to.equal(-1);
      expect(() => b.decodeJpegBatch(blob, Uint32Array.from([0, 10, 5]), 32)).to.throw(/non-decreasing/);
      expect(() => b.decodeJpegBatch(blob, Uint32Array.from([0, blob.length + 1]), 32)).to.throw(/past the end/);
      expect(() => b.decodeJpegBatch(blob, offsets, 32, new Uint8Array(5))).to.throw(/expected/);
      const empty = await b.decodeJpegBatch(Buffer.alloc(0), Uint32Array.from([0]), 32);
      expect(empty.images.length).to.equal(0);
    });

    it('is pixel-identical to sharp on real CIFAKE files (when the zip is present)', async function () {
      const REAL_ZIP = realDataOrSkip(this, 'the real-file check');
      this.timeout(120000);
      const src = await openSource(REAL_ZIP);
      try {
        const picked = [];
        for (const dir of ['train/REAL', 'train/FAKE', 'test/REAL', 'test/FAKE']) {
          const files = await src.walk(dir);
          for (let k = 0; k < 75; k++) picked.push(files[Math.floor((k * files.length) / 75)]);
        }
        expect(picked.length).to.equal(300);
        const bufs = (await src.read(picked)) as Buffer[];
        const { native, ref } = await bothWays(bufs);
        expect(native.results.filter((r) => r.via === 'native').length).to.equal(picked.length);
        expect(ref.results.filter((r) => r.status === 'ok').length).to.equal(picked.length);
        expect(firstDiff(native.images, ref.images)).to.equal(-1);
      } finally {
        await src.close();
      }
    });
  });
});

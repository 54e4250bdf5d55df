import { expect } from 'chai';
import sharp from 'sharp';

import { jpegRoundTrip } from '../src/robustness/jpeg';
import { DEFAULT_SUITE, parsePerturbation, perturbImages, psnr } from '../src/robustness/perturb';
import { rng } from './data-helpers';

const S = 32, PER = 3 * S * S;
const at = (c: number, y: number, x: number, i = 0) => i * PER + c * S * S + y * S + x;

/** smooth synthetic photos (sums of low-frequency waves + a little texture), planar uint8 */
function smoothImages(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n * PER);
  for (let i = 0; i < n; i++) {
    const f = [r() * 0.3, r() * 0.3, r() * 6, r() * 6];
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < S; y++)
        for (let x = 0; x < S; x++)
          out[at(c, y, x, i)] = Math.round(128 + 60 * Math.sin(f[0] * x + f[2] + c) + 50 * Math.cos(f[1] * y + f[3]) + 8 * (r() - 0.5));
  }
  return out;
}

function constantImage(v: number): Uint8Array {
  return new Uint8Array(PER).fill(v);
}

describe('perturbations', () => {
  describe('spec parsing', () => {
    it('parses steps and compositions into a canonical spec', () => {
      expect(parsePerturbation('resize:16+jpeg:75')).to.deep.equal({ spec: 'resize:16+jpeg:75', steps: [{ name: 'resize', value: 16 }, { name: 'jpeg', value: 75 }] });
      expect(parsePerturbation(' hflip ').spec).to.equal('hflip');
      for (const s of DEFAULT_SUITE) expect(parsePerturbation(s).spec).to.equal(s);
    });

    it('names the bad part and what is allowed', () => {
      expect(() => parsePerturbation('jpeg:150')).to.throw(/invalid 'jpeg:150' \(allowed: jpeg:Q with Q an integer 1..100\)/);
      expect(() => parsePerturbation('blurr:1')).to.throw(/unknown step 'blurr' \(allowed: jpeg, blur/);
      expect(() => parsePerturbation('resize:32')).to.throw(/4 <= P < image size, image size 32/);
      expect(() => parsePerturbation('hflip:1')).to.throw(/takes no value/);
      expect(() => parsePerturbation('blur')).to.throw(/invalid 'blur'/);
      expect(() => parsePerturbation('jpeg:50:1')).to.throw(/more than one value/);
      expect(() => parsePerturbation('')).to.throw(/empty spec/);
      expect(() => parsePerturbation('noise:0')).to.throw(/0 < S <= 128/);
    });
  });

  describe('jpeg', () => {
    it('changes the bytes, stays close to the original, and loses more at lower quality', async () => {
      const images = smoothImages(16, 1);
      const q95 = await perturbImages(images, 'jpeg:95'), q30 = await perturbImages(images, 'jpeg:30');
      expect(Buffer.compare(Buffer.from(q95), Buffer.from(images))).to.not.equal(0);
      expect(psnr(images, q95)).to.be.above(30);
      expect(psnr(images, q30)).to.be.above(22);
      expect(psnr(images, q30)).to.be.below(psnr(images, q95));
    });

    it('agrees with sharp encoding and decoding at the same quality', async () => {
      const images = smoothImages(4, 2);
      const ours = await jpegRoundTrip(images, new Uint8Array(4).fill(75), S);
      const theirs = new Uint8Array(images.length);
      for (let i = 0; i < 4; i++) {
        const hwc = Buffer.alloc(PER);
        for (let c = 0; c < 3; c++) for (let p = 0; p < S * S; p++) hwc[p * 3 + c] = images[i * PER + c * S * S + p];
        const jpeg = await sharp(hwc, { raw: { width: S, height: S, channels: 3 } }).jpeg({ quality: 75, chromaSubsampling: '4:2:0' }).toBuffer();
        const back = await sharp(jpeg).raw().toBuffer();
        for (let c = 0; c < 3; c++) for (let p = 0; p < S * S; p++) theirs[i * PER + c * S * S + p] = back[p * 3 + c];
      }
      expect(psnr(ours, theirs)).to.be.above(38);
    });

    it('leaves quality-0 images unchanged and rejects a bad batch', async () => {
      const images = smoothImages(2, 3);
      const out = await jpegRoundTrip(images, Uint8Array.from([0, 50]), S);
      expect(Buffer.compare(Buffer.from(out.subarray(0, PER)), Buffer.from(images.subarray(0, PER)))).to.equal(0);
      expect(Buffer.compare(Buffer.from(out.subarray(PER)), Buffer.from(images.subarray(PER)))).to.not.equal(0);
      let err = '';
      await jpegRoundTrip(images, Uint8Array.from([50]), S).catch((e: Error) => (err = e.message));
      expect(err).to.match(/jpegRoundTrip: images has 6144 bytes, expected/);
    });
  });

  it('blur of a delta image is the Gaussian kernel', async () => {
    const img = constantImage(0);
    for (let c = 0; c < 3; c++) img[at(c, 16, 16)] = 255;
    const sigma = 1;
    const out = await perturbImages(img, `blur:${sigma}`);
    const g = (d: number) => Math.exp(-(d * d) / (2 * sigma * sigma));
    let norm = 0;
    for (let d = -3; d <= 3; d++) norm += g(d);
    for (let dy = -4; dy <= 4; dy++)
      for (let dx = -4; dx <= 4; dx++) {
        const want = Math.abs(dx) <= 3 && Math.abs(dy) <= 3 ? (255 * g(dx) * g(dy)) / (norm * norm) : 0;
        expect(out[at(1, 16 + dy, 16 + dx)]).to.be.closeTo(want, 0.5 + 1e-9);
      }
  });

  it('resize and crop keep a constant image constant, and a smaller resize loses more', async () => {
    for (const spec of ['resize:16', 'resize:24', 'crop:24', 'blur:0.5']) {
      const out = await perturbImages(constantImage(77), spec);
      expect(out.every((v) => v === 77), spec).to.equal(true);
    }
    const images = smoothImages(8, 4);
    expect(psnr(images, await perturbImages(images, 'resize:16'))).to.be.below(psnr(images, await perturbImages(images, 'resize:24')));
  });

  it('crop:16 doubles the centre: a left/right split stays at the centre column', async () => {
    const img = constantImage(0);
    for (let c = 0; c < 3; c++) for (let y = 0; y < S; y++) for (let x = 16; x < S; x++) img[at(c, y, x)] = 200;
    const out = await perturbImages(img, 'crop:16');
    for (let x = 0; x < 14; x++) expect(out[at(0, 5, x)]).to.equal(0);
    for (let x = 18; x < S; x++) expect(out[at(0, 5, x)]).to.equal(200);
  });

  it('brightness, contrast, shift and hflip follow their formulas', async () => {
    const img = smoothImages(1, 5);
    const bright = await perturbImages(img, 'brightness:0.1');
    bright.forEach((v, k) => expect(v).to.equal(Math.min(255, Math.round(img[k] + 25.5))));
    const mean = img.reduce((a, v) => a + v, 0) / img.length;
    const contrast = await perturbImages(img, 'contrast:0.5');
    contrast.forEach((v, k) => expect(v).to.equal(Math.round(mean + (img[k] - mean) * 0.5)));
    const shifted = await perturbImages(img, 'shift:2');
    expect(shifted[at(2, 10, 10)]).to.equal(img[at(2, 8, 8)]);
    expect(shifted[at(2, 0, 5)]).to.equal(img[at(2, 0, 3)]);
    const flipped = await perturbImages(img, 'hflip');
    expect(flipped[at(1, 3, 0)]).to.equal(img[at(1, 3, 31)]);
    expect(await perturbImages(flipped, 'hflip')).to.deep.equal(img);
  });

  it('noise has the requested spread and is deterministic for a seed', async () => {
    const img = new Uint8Array(50 * PER).fill(128);
    const a = await perturbImages(img, 'noise:8', { seed: 1 });
    const b = await perturbImages(img, 'noise:8', { seed: 1 });
    const c = await perturbImages(img, 'noise:8', { seed: 2 });
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).to.equal(0);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(c))).to.not.equal(0);
    let sum = 0, sq = 0;
    for (const v of a) {
      sum += v - 128;
      sq += (v - 128) ** 2;
    }
    const m = sum / a.length;
    expect(m).to.be.closeTo(0, 0.2);
    expect(Math.sqrt(sq / a.length - m * m)).to.be.closeTo(8, 0.3);
  });

  it('never modifies its input', async () => {
    const img = smoothImages(2, 6);
    const copy = new Uint8Array(img);
    for (const s of DEFAULT_SUITE) await perturbImages(img, s);
    expect(img).to.deep.equal(copy);
  });
});

// The embedding API: every input form gives the same prediction (and the CLI's), concurrent calls
// are coalesced, bad inputs are named, dispose is final, and the package imports from ESM.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';

import { Classifier, ImageInputError, type Prediction, type RawImage } from '../src/classifier';
import { PACKAGE_ROOT } from '../src/native';
import { jpegDeclaring, makeJpeg, makePng, pngDeclaring, rawPixels, toChw } from './data-helpers';
import { makeImages, tinyCheckpoint } from './helpers';

const run = promisify(execFile);
const TSX_CLI = path.join(PACKAGE_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');


async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

function expectSame(a: Prediction, b: Prediction, what: string): void {
  expect(a.pReal, what).to.be.closeTo(b.pReal, 1e-6);
  expect(a.label, what).to.equal(b.label);
}

const hwcRaw = (data: Uint8Array): RawImage => ({ data, width: 32, height: 32 });
const chwRaw = (hwc: Uint8Array): RawImage => ({ data: toChw(hwc, 3), width: 32, height: 32, layout: 'chw' });

describe('Classifier (embedding API)', function () {
  this.timeout(60_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-clf-'));
  const ckpt = path.join(tmp, 'tiny.pt');
  let clf: Classifier;

  interface Sample {
    png: Buffer;
    jpeg: Buffer;
    pngFile: string;
    jpegFile: string;
    /** HWC pixels of the PNG (the generated pixels) and of the decoded JPEG. */
    pngHwc: Uint8Array;
    jpegHwc: Uint8Array;
  }
  const samples: Sample[] = [];

  before(async () => {
    await tinyCheckpoint(ckpt);
    for (let seed = 1; seed <= 4; seed++) {
      const png = await makePng(seed);
      const jpeg = await makeJpeg(seed + 100);
      const pngFile = path.join(tmp, `s${seed}.png`);
      const jpegFile = path.join(tmp, `s${seed}.jpg`);
      fs.writeFileSync(pngFile, png);
      fs.writeFileSync(jpegFile, jpeg);
      const jpegHwc = new Uint8Array(await sharp(jpeg).raw().toBuffer());
      samples.push({ png, jpeg, pngFile, jpegFile, pngHwc: rawPixels(seed), jpegHwc });
    }
    clf = await Classifier.load(ckpt, { threads: 1 });
  });
  after(() => {
    clf?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('loads a checkpoint and describes it', () => {
    const info = clf.info;
    expect(info.checkpoint).to.equal(ckpt);
    expect(info.family).to.equal('lightweight');
    expect(info.parameters).to.be.greaterThan(1000);
    expect(info.device).to.equal('cpu');
    expect(clf.threshold).to.equal(0.5);
    expect(clf.disposed).to.equal(false);
  });

  it('gives the same prediction for a file path, JPEG/PNG bytes, raw HWC and raw CHW pixels', async () => {
    for (const [i, s] of samples.entries()) {
      const fromPngFile = await clf.predict(s.pngFile);
      expectSame(await clf.predict(s.png), fromPngFile, `PNG bytes ${i}`);
      expectSame(await clf.predict(hwcRaw(s.pngHwc)), fromPngFile, `raw HWC ${i}`);
      expectSame(await clf.predict({ ...hwcRaw(s.pngHwc), layout: 'hwc' }), fromPngFile, `raw HWC (explicit) ${i}`);
      expectSame(await clf.predict(chwRaw(s.pngHwc)), fromPngFile, `raw CHW ${i}`);
      expectSame(await clf.predict({ data: new Uint8ClampedArray(s.pngHwc), width: 32, height: 32 }), fromPngFile, `Uint8ClampedArray ${i}`);

      const fromJpegFile = await clf.predict(s.jpegFile);
      expectSame(await clf.predict(s.jpeg), fromJpegFile, `JPEG bytes ${i}`);
      expectSame(await clf.predict(new Uint8Array(s.jpeg)), fromJpegFile, `JPEG Uint8Array ${i}`);
      expectSame(await clf.predict(hwcRaw(s.jpegHwc)), fromJpegFile, `decoded JPEG, raw HWC ${i}`);
      expectSame(await clf.predict(chwRaw(s.jpegHwc)), fromJpegFile, `decoded JPEG, raw CHW ${i}`);

      expect(fromPngFile.pReal).to.be.within(0, 1);
      expect(fromPngFile.pFake).to.be.closeTo(1 - fromPngFile.pReal, 1e-12);
    }
    // predictBatch: mixed forms in one call, same answers.
    const mixed = samples.flatMap((s) => [s.pngFile, s.png, hwcRaw(s.pngHwc), s.jpeg, chwRaw(s.jpegHwc)]);
    const batch = await clf.predictBatch(mixed);
    expect(batch).to.have.length(mixed.length);
    for (let i = 0; i < samples.length; i++) {
      expectSame(batch[5 * i + 1], batch[5 * i], `batch PNG ${i}`);
      expectSame(batch[5 * i + 2], batch[5 * i], `batch raw ${i}`);
      expectSame(batch[5 * i + 4], batch[5 * i + 3], `batch JPEG ${i}`);
      expectSame(batch[5 * i], await clf.predict(samples[i].pngFile), `batch vs predict ${i}`);
    }
  });

  it('agrees with `cifake predict --json` on the same files', async () => {
    const files = samples.flatMap((s) => [s.pngFile, s.jpegFile]);
    const { stdout } = await run(process.execPath, [TSX_CLI, path.join(PACKAGE_ROOT, 'bin', 'cifake.ts'), 'predict', '--model', ckpt, '--json', ...files], {
      cwd: PACKAGE_ROOT,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    const rows = JSON.parse(stdout) as { file: string; pReal: number; label: string }[];
    expect(rows.map((r) => r.file)).to.deep.equal(files);
    for (const r of rows) {
      const p = await clf.predict(r.file);
      expect(r.pReal, r.file).to.be.closeTo(p.pReal, 1e-6);
      expect(r.label, r.file).to.equal(p.label);
    }
  });

  it('resizes other sizes unless resize: false', async () => {
    const big = await makePng(9, 64);
    expect((await clf.predict(big)).pReal).to.be.within(0, 1);
    const strict = await Classifier.load(ckpt, { threads: 1, resize: false });
    try {
      const e = await rejection(strict.predict(big));
      expect(e).to.be.instanceOf(ImageInputError);
      expect(e.message).to.match(/64x64, expected 32x32/);
    } finally {
      strict.dispose();
    }
  });

  it('coalesces 100 concurrent predictions into few native calls, with the sequential results', async () => {
    const { images } = makeImages(100, 77);
    const raws = Array.from({ length: 100 }, (_, i): RawImage => ({ data: images.subarray(i * 3072, (i + 1) * 3072), width: 32, height: 32, layout: 'chw' }));
    const sequential: Prediction[] = [];
    for (const r of raws.slice(0, 10)) sequential.push(await clf.predict(r));

    // Raw inputs reach the queue in the same tick: one native call, deterministically.
    const before = clf.stats;
    const concurrent = await Promise.all(raws.map((r) => clf.predict(r)));
    const after = clf.stats;
    expect(after.nativeCalls - before.nativeCalls).to.equal(1);
    expect(after.images - before.images).to.equal(100);
    expect(after.largestBatch).to.equal(100);
    expect(after.queued).to.equal(0);
    sequential.forEach((p, i) => expectSame(concurrent[i], p, `image ${i}`));
    const batch = await clf.predictBatch(raws);
    batch.forEach((p, i) => expectSame(concurrent[i], p, `predictBatch ${i}`));

    // Encoded inputs finish decoding at different times: still far fewer calls than requests.
    const jpegs = await Promise.all(Array.from({ length: 100 }, (_, i) => makeJpeg(1000 + i)));
    const b2 = clf.stats.nativeCalls;
    const fromJpeg = await Promise.all(jpegs.map((j) => clf.predict(j)));
    expect(clf.stats.nativeCalls - b2).to.be.at.most(25);
    const jpegBatch = await clf.predictBatch(jpegs);
    jpegBatch.forEach((p, i) => expectSame(fromJpeg[i], p, `jpeg ${i}`));
  });

  it('splits coalesced calls at maxBatch, and one bad input fails only its own call', async () => {
    const small = await Classifier.load(ckpt, { threads: 1, maxBatch: 32 });
    try {
      const { images } = makeImages(100, 5);
      const ps = await Promise.all(
        Array.from({ length: 100 }, (_, i) => small.predict({ data: images.subarray(i * 3072, (i + 1) * 3072), width: 32, height: 32, layout: 'chw' })),
      );
      expect(ps).to.have.length(100);
      // 32 (flushed when full) + the rest while it runs: 32, 32, 4.
      expect(small.stats.nativeCalls).to.equal(4);
      expect(small.stats.largestBatch).to.equal(32);

      const settled = await Promise.allSettled([small.predict(samples[0].png), small.predict(Buffer.from('not an image')), small.predict(samples[1].jpeg)]);
      expect(settled.map((s) => s.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    } finally {
      small.dispose();
    }
  });

  it('rejects bad inputs with an ImageInputError that names them', async () => {
    let e = await rejection(clf.predict(Buffer.from('hello, not an image')));
    expect(e).to.be.instanceOf(ImageInputError);
    expect((e as ImageInputError).code).to.equal('ERR_CIFAKE_INPUT');
    expect(e.message).to.match(/^input\[0\] \(19 bytes\): .*unsupported image format/);

    e = await rejection(clf.predict(Buffer.alloc(0)));
    expect(e.message).to.match(/^input\[0\] \(0 bytes\): empty input/);

    const missing = path.join(tmp, 'missing.jpg');
    e = await rejection(clf.predict(missing));
    expect(e.message).to.match(new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read file`));

    const truncated = samples[0].jpeg.subarray(0, 200);
    e = await rejection(clf.predictBatch([samples[0].png, samples[1].png, truncated]));
    expect(e).to.be.instanceOf(ImageInputError);
    expect((e as ImageInputError).index).to.equal(2);
    expect(e.message).to.match(/^input\[2\] \(200 bytes\): /);

    const raw = (x: unknown) => rejection(clf.predict(x as RawImage));
    expect((await raw({ data: new Uint8Array(3072), width: 16, height: 16 })).message).to.match(/expected 32x32 with 3 channels, got 16x16x3/);
    expect((await raw({ data: new Uint8Array(100), width: 32, height: 32 })).message).to.match(/Uint8Array of 3072 bytes.*got a Uint8Array of 100/);
    expect((await raw({ data: new Float32Array(3072), width: 32, height: 32 })).message).to.match(/got a Float32Array/);
    expect((await raw({ data: new Uint8Array(3072), width: 32, height: 32, layout: 'HWC' })).message).to.match(/layout must be 'hwc' or 'chw', got "HWC"/);
    expect((await raw({ data: new Uint8Array(4096), width: 32, height: 32, channels: 4 })).message).to.match(/3 channels/);
    for (const bad of [42, null, undefined, {}]) expect(await raw(bad)).to.be.instanceOf(ImageInputError);
  });

  it('refuses images whose header declares more than maxPixels (default 4096 x 4096) before decoding them', async () => {
    for (const bomb of [pngDeclaring(16000, 16000), jpegDeclaring(samples[0].jpeg, 5000, 4000)]) {
      const e = await rejection(clf.predict(bomb));
      expect(e).to.be.instanceOf(ImageInputError);
      expect((e as ImageInputError).kind).to.equal('too-large');
      expect(e.message).to.match(/^input\[0\] \(\d+ bytes\): image is (16000x16000|5000x4000) .*over the limit of 16777216 pixels \(4096x4096\)/);
    }
    const file = path.join(tmp, 'bomb.png');
    fs.writeFileSync(file, pngDeclaring(16000, 16000));
    const e = await rejection(clf.predictBatch([samples[0].png, file]));
    expect((e as ImageInputError).index).to.equal(1);
    expect(e.message.startsWith(`${file}: image is 16000x16000`)).to.equal(true);
    expect(((await rejection(clf.predict(Buffer.from('not an image')))) as ImageInputError).kind).to.equal('invalid');
    const tight = await Classifier.load(ckpt, { threads: 1, maxPixels: 50 * 50 });
    try {
      expect(((await rejection(tight.predict(await makePng(9, 64)))) as ImageInputError).kind).to.equal('too-large');
      expect((await tight.predict(samples[0].png)).pReal).to.be.within(0, 1);
    } finally {
      tight.dispose();
    }
  });

  it('validates load options and paths', async () => {
    expect((await rejection(Classifier.load(path.join(tmp, 'nope')))).message).to.match(/model not found/);
    expect((await rejection(Classifier.load(tmp))).message).to.match(/holds no checkpoint/);
    expect((await rejection(Classifier.load(ckpt, { maxBatch: 0 }))).message).to.match(/maxBatch/);
    expect((await rejection(Classifier.load(ckpt, { maxWaitMs: -1 }))).message).to.match(/maxWaitMs/);
    expect((await rejection(Classifier.load(ckpt, { threshold: 2 }))).message).to.match(/threshold/);
    expect((await rejection(Classifier.load(ckpt, { maxPixels: 0 }))).message).to.match(/maxPixels must be a positive integer/);
  });

  describe('dispose', () => {
    it('rejects queued predictions, then every later call, and is idempotent', async () => {
      const c = await Classifier.load(ckpt, { threads: 1, maxWaitMs: 10_000 });
      const { images } = makeImages(3, 9);
      const raw = (i: number): RawImage => ({ data: images.subarray(i * 3072, (i + 1) * 3072), width: 32, height: 32, layout: 'chw' });
      const queued = [c.predict(raw(0)), c.predict(raw(1)), c.predict(samples[0].png)];
      await new Promise((r) => setTimeout(r, 50)); // the raw ones are queued, waiting for the (long) batch window
      expect(c.stats.queued).to.be.at.least(2);
      c.dispose();
      expect(c.disposed).to.equal(true);
      for (const p of queued) expect((await rejection(p)).message).to.match(/classifier was disposed/);
      expect((await rejection(c.predict(raw(2)))).message).to.match(/classifier was disposed/);
      expect((await rejection(c.predictBatch([raw(2)]))).message).to.match(/classifier was disposed/);
      expect(() => c.native).to.throw(/classifier was disposed/);
      expect(c.stats.queued).to.equal(0);
      c.dispose();
      expect(c.info.family).to.equal('lightweight'); // metadata stays readable
    });

    it('lets a running batch finish (or reject) but never hang, and supports Symbol.dispose', async () => {
      const c = await Classifier.load(ckpt, { threads: 1, maxBatch: 1 });
      const p = c.predict(samples[0].png);
      while (c.stats.nativeCalls === 0) await new Promise((r) => setTimeout(r, 1));
      c[Symbol.dispose]();
      expect(c.disposed).to.equal(true);
      const outcome = await p.then(
        (x) => x.label,
        (e: Error) => e.message,
      );
      expect(outcome).to.match(/^(REAL|FAKE)$|disposed/);
    });
  });

  it('imports from an ES module (named exports of the CommonJS build)', async function () {
    // Emit the CommonJS build as tsc does (transpile only: type checking is `npm run lint`'s job)
    // into a package folder, then import it by name from an .mjs file.
    const ts = await import('typescript');
    const pkg = path.join(tmp, 'pkg');
    const emit = (dir: string) => {
      for (const f of fs.readdirSync(path.join(PACKAGE_ROOT, dir), { withFileTypes: true })) {
        const rel = path.join(dir, f.name);
        if (f.isDirectory()) emit(rel);
        else if (f.name.endsWith('.ts') && !f.name.endsWith('.d.ts')) {
          const out = ts.transpileModule(fs.readFileSync(path.join(PACKAGE_ROOT, rel), 'utf8'), {
            compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true },
            fileName: rel,
          });
          fs.mkdirSync(path.join(pkg, 'dist', dir), { recursive: true });
          fs.writeFileSync(path.join(pkg, 'dist', rel.replace(/\.ts$/, '.js')), out.outputText);
        }
      }
    };
    emit('src');
    fs.copyFileSync(path.join(PACKAGE_ROOT, 'package.json'), path.join(pkg, 'package.json'));
    fs.symlinkSync(path.join(PACKAGE_ROOT, 'build'), path.join(pkg, 'build'));
    fs.symlinkSync(path.join(PACKAGE_ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    const app = path.join(tmp, 'app');
    fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
    fs.symlinkSync(pkg, path.join(app, 'node_modules', 'cifake-torch'));
    const script = [
      "import { Classifier, train, CifakeModel } from 'cifake-torch';",
      "import cifake from 'cifake-torch';",
      `const clf = await Classifier.load(${JSON.stringify(ckpt)}, { threads: 1 });`,
      `const p = await clf.predict(${JSON.stringify(samples[0].pngFile)});`,
      'clf.dispose();',
      'console.log(JSON.stringify({ p, train: typeof train, model: typeof CifakeModel, def: typeof cifake.Classifier }));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env: { ...process.env, OMP_NUM_THREADS: '1' } });
    const out = JSON.parse(stdout) as { p: Prediction; train: string; model: string; def: string };
    expect(out.train).to.equal('function');
    expect(out.model).to.equal('function');
    expect(out.def).to.equal('function');
    expectSame(out.p, await clf.predict(samples[0].pngFile), 'ESM prediction');
  });
});

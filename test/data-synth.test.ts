import { expect } from 'chai';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  SYNTH_MARKER,
  SYNTH_README,
  SYNTH_VERSION,
  defaultSynthDir,
  ensureSynth,
  readSynthMarker,
  renderSynthImage,
  synthFileName,
  synthImageSeed,
  synthesize,
} from '../src/data/synth';

const SPLITS = ['train', 'test'] as const;
const CLASSES = ['REAL', 'FAKE'] as const;

/** All files under `dir`, relative, sorted. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

function jpgsOf(dir: string, split: string, cls: string): string[] {
  return fs
    .readdirSync(path.join(dir, split, cls))
    .filter((n) => n.endsWith('.jpg'))
    .sort();
}

/** Mean absolute difference between horizontally and vertically adjacent values. */
function hfEnergy(px: Buffer, w: number, h: number, ch: number): number {
  let sum = 0;
  let n = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < ch; c++) {
        const i = (y * w + x) * ch + c;
        if (x + 1 < w) {
          sum += Math.abs(px[i] - px[i + ch]);
          n++;
        }
        if (y + 1 < h) {
          sum += Math.abs(px[i] - px[i + w * ch]);
          n++;
        }
      }
    }
  }
  return sum / n;
}

describe('data/synth: synthetic CIFAKE-shaped demo set', function () {
  let tmpRoot: string;

  before(async () => {
    tmpRoot = await fsp.mkdtemp(path.join(os.tmpdir(), 'cifake-synth-test-'));
  });

  after(async () => {
    await fsp.rm(tmpRoot, { recursive: true, force: true });
  });

  describe('synthesize', () => {
    let dir: string;
    const opts = { trainPerClass: 20, testPerClass: 7, seed: 42 };
    let progress: [number, number][];
    let result: Awaited<ReturnType<typeof synthesize>>;

    before(async () => {
      dir = path.join(tmpRoot, 'a');
      progress = [];
      result = await synthesize(dir, { ...opts, onProgress: (d, t) => progress.push([d, t]) });
    });

    it('returns the absolute root and the exact counts', () => {
      expect(result.root).to.equal(path.resolve(dir));
      expect(result.counts).to.deep.equal({
        train: { REAL: 20, FAKE: 20 },
        test: { REAL: 7, FAKE: 7 },
      });
    });

    it('writes the Kaggle CIFAKE layout with exactly the requested number of JPEGs', () => {
      expect(fs.readdirSync(dir).sort()).to.deep.equal([SYNTH_MARKER, SYNTH_README, 'test', 'train'].sort());
      for (const split of SPLITS) {
        expect(fs.readdirSync(path.join(dir, split)).sort()).to.deep.equal(['FAKE', 'REAL']);
        for (const cls of CLASSES) {
          const n = split === 'train' ? 20 : 7;
          const files = fs.readdirSync(path.join(dir, split, cls)).sort();
          expect(files, `${split}/${cls}`).to.deep.equal(Array.from({ length: n }, (_, i) => synthFileName(i)).sort());
        }
      }
    });

    it('leaves no temporary directory behind', () => {
      const siblings = fs.readdirSync(tmpRoot).filter((n) => n.startsWith('a.'));
      expect(siblings).to.deep.equal([]);
    });

    it('reports progress up to the total', () => {
      const total = 2 * 20 + 2 * 7;
      expect(progress).to.have.length(total);
      expect(progress[progress.length - 1]).to.deep.equal([total, total]);
      progress.forEach(([d, t], i) => {
        expect(d).to.equal(i + 1);
        expect(t).to.equal(total);
      });
    });

    it('writes 32x32 3-channel JPEGs that decode with sharp', async () => {
      for (const split of SPLITS) {
        for (const cls of CLASSES) {
          for (const f of jpgsOf(dir, split, cls)) {
            const p = path.join(dir, split, cls, f);
            const meta = await sharp(p).metadata();
            expect(meta.format, p).to.equal('jpeg');
            expect([meta.width, meta.height, meta.channels], p).to.deep.equal([32, 32, 3]);
            const { info, data } = await sharp(p).raw().toBuffer({ resolveWithObject: true });
            expect([info.width, info.height, info.channels]).to.deep.equal([32, 32, 3]);
            expect(data.length).to.equal(32 * 32 * 3);
          }
        }
      }
    });

    it('writes a marker with version, seed and counts, and a README saying it is synthetic', async () => {
      const m = await readSynthMarker(dir);
      expect(m).to.not.equal(undefined);
      expect(m!.version).to.equal(SYNTH_VERSION);
      expect(m!.seed).to.equal(42);
      expect(m!.quality).to.equal(75);
      expect(m!.counts).to.deep.equal(result.counts);
      let total = 0;
      for (const split of SPLITS) {
        for (const cls of CLASSES) {
          const bytes = jpgsOf(dir, split, cls).reduce((s, f) => s + fs.statSync(path.join(dir, split, cls, f)).size, 0);
          expect(m!.bytes[split][cls]).to.equal(bytes);
          total += bytes;
        }
      }
      expect(total).to.be.greaterThan(0);
      const readme = fs.readFileSync(path.join(dir, SYNTH_README), 'utf8');
      expect(readme).to.match(/not a detector benchmark/i);
      expect(readme).to.match(/seed: 42\b/);
      expect(readme).to.match(/train images per class: 20\b/);
      expect(readme).to.match(/test images per class: 7\b/);
    });

    it('is deterministic: the same seed gives byte-identical files', async () => {
      const dir2 = path.join(tmpRoot, 'a-again');
      await synthesize(dir2, opts);
      const files = listFiles(dir);
      expect(listFiles(dir2)).to.deep.equal(files);
      for (const f of files) {
        expect(fs.readFileSync(path.join(dir2, f)).equals(fs.readFileSync(path.join(dir, f))), f).to.equal(true);
      }
    });

    it('a different seed gives different images', async () => {
      const dir3 = path.join(tmpRoot, 'b');
      await synthesize(dir3, { ...opts, seed: 43 });
      let differing = 0;
      let total = 0;
      for (const split of SPLITS) {
        for (const cls of CLASSES) {
          for (const f of jpgsOf(dir, split, cls)) {
            total++;
            if (!fs.readFileSync(path.join(dir, split, cls, f)).equals(fs.readFileSync(path.join(dir3, split, cls, f)))) differing++;
          }
        }
      }
      expect(differing).to.equal(total);
    });

    it('images within a set are all distinct', () => {
      const seen = new Set<string>();
      for (const f of listFiles(dir).filter((n) => n.endsWith('.jpg'))) {
        seen.add(fs.readFileSync(path.join(dir, f)).toString('base64'));
      }
      expect(seen.size).to.equal(2 * 20 + 2 * 7);
    });

    it('rejects invalid options', async () => {
      for (const bad of [{ trainPerClass: -1 }, { testPerClass: 1.5 }, { seed: -3 }, { seed: 2 ** 32 }, { quality: 0 }, { quality: 101 }]) {
        let err: unknown;
        try {
          await synthesize(path.join(tmpRoot, 'bad'), bad);
        } catch (e) {
          err = e;
        }
        expect(err, JSON.stringify(bad)).to.be.instanceOf(RangeError);
      }
      expect(fs.existsSync(path.join(tmpRoot, 'bad'))).to.equal(false);
    });

    it('refuses to replace a directory that is not a synthetic set', async () => {
      const foreign = path.join(tmpRoot, 'foreign');
      await fsp.mkdir(path.join(foreign, 'train', 'REAL'), { recursive: true });
      await fsp.writeFile(path.join(foreign, 'train', 'REAL', 'precious.jpg'), 'x');
      let err: unknown;
      try {
        await ensureSynth(foreign, { trainPerClass: 2, testPerClass: 1 });
      } catch (e) {
        err = e;
      }
      expect(String(err)).to.match(/refusing/);
      expect(fs.readFileSync(path.join(foreign, 'train', 'REAL', 'precious.jpg'), 'utf8')).to.equal('x');
      expect(fs.readdirSync(tmpRoot).filter((n) => n.startsWith('foreign.'))).to.deep.equal([]);
    });
  });

  describe('ensureSynth', () => {
    const opts = { trainPerClass: 6, testPerClass: 3, seed: 7 };

    const mtimes = (dir: string): Map<string, number> => {
      const m = new Map<string, number>();
      for (const f of listFiles(dir)) m.set(f, fs.statSync(path.join(dir, f)).mtimeMs);
      return m;
    };

    it('generates a missing set, then reuses it untouched', async () => {
      const dir = path.join(tmpRoot, 'ens1');
      const root = await ensureSynth(dir, opts);
      expect(root).to.equal(path.resolve(dir));
      expect(jpgsOf(dir, 'train', 'FAKE')).to.have.length(6);
      const before = mtimes(dir);
      const dirIno = fs.statSync(dir).ino;
      await new Promise((r) => setTimeout(r, 20));
      let rendered = 0;
      expect(await ensureSynth(dir, { ...opts, onProgress: () => rendered++ })).to.equal(root);
      expect(rendered, 'images rendered on reuse').to.equal(0);
      expect(fs.statSync(dir).ino).to.equal(dirIno);
      expect(mtimes(dir)).to.deep.equal(before);
    });

    it('regenerates when the marker is missing', async () => {
      const dir = path.join(tmpRoot, 'ens2');
      await ensureSynth(dir, opts);
      const ref = fs.readFileSync(path.join(dir, 'test', 'REAL', synthFileName(0)));
      await fsp.rm(path.join(dir, SYNTH_MARKER));
      let rendered = 0;
      await ensureSynth(dir, { ...opts, onProgress: () => rendered++ });
      expect(rendered).to.equal(2 * 6 + 2 * 3);
      expect(await readSynthMarker(dir)).to.not.equal(undefined);
      expect(fs.readFileSync(path.join(dir, 'test', 'REAL', synthFileName(0))).equals(ref)).to.equal(true);
    });

    it('regenerates when an image is missing, truncated or extra', async () => {
      const dir = path.join(tmpRoot, 'ens3');
      await ensureSynth(dir, opts);
      const victim = path.join(dir, 'train', 'REAL', synthFileName(3));
      const ref = fs.readFileSync(victim);
      await fsp.rm(victim);
      await ensureSynth(dir, opts);
      expect(fs.readFileSync(victim).equals(ref)).to.equal(true);

      await fsp.writeFile(victim, ref.subarray(0, ref.length >> 1));
      await ensureSynth(dir, opts);
      expect(fs.readFileSync(victim).equals(ref)).to.equal(true);

      const stray = path.join(dir, 'test', 'FAKE', 'stray.jpg');
      await fsp.writeFile(stray, ref);
      await ensureSynth(dir, opts);
      expect(fs.existsSync(stray)).to.equal(false);
      expect(jpgsOf(dir, 'test', 'FAKE')).to.have.length(3);
    });

    it('sweeps temporary directories left by dead processes, but not fresh ones', async () => {
      const dir = path.join(tmpRoot, 'ens6');
      let dead = 4_000_000;
      for (;;) {
        try {
          process.kill(dead, 0);
          dead++;
        } catch {
          break;
        }
      }
      const stale = `${dir}.tmp-${dead}-1`;
      const fresh = `${dir}.tmp-${dead}-2`;
      for (const d of [stale, fresh]) await fsp.mkdir(path.join(d, 'train'), { recursive: true });
      const old = new Date(Date.now() - 3600_000);
      await fsp.utimes(stale, old, old);
      await ensureSynth(dir, opts);
      expect(fs.existsSync(stale)).to.equal(false);
      expect(fs.existsSync(fresh)).to.equal(true);
      await fsp.rm(fresh, { recursive: true });
    });

    it('regenerates when the options differ from the marker', async () => {
      const dir = path.join(tmpRoot, 'ens4');
      await ensureSynth(dir, opts);
      await ensureSynth(dir, { ...opts, testPerClass: 4 });
      expect(jpgsOf(dir, 'test', 'FAKE')).to.have.length(4);
      expect((await readSynthMarker(dir))!.counts.test.FAKE).to.equal(4);
      const before = fs.readFileSync(path.join(dir, 'train', 'FAKE', synthFileName(0)));
      await ensureSynth(dir, { ...opts, testPerClass: 4, seed: 8 });
      expect((await readSynthMarker(dir))!.seed).to.equal(8);
      expect(fs.readFileSync(path.join(dir, 'train', 'FAKE', synthFileName(0))).equals(before)).to.equal(false);
    });

    it('two concurrent calls both end with one complete set', async () => {
      const dir = path.join(tmpRoot, 'ens5');
      const [a, b] = await Promise.all([ensureSynth(dir, opts), ensureSynth(dir, opts)]);
      expect(a).to.equal(b);
      expect(await readSynthMarker(dir)).to.not.equal(undefined);
      expect(jpgsOf(dir, 'train', 'REAL')).to.have.length(6);
      expect(fs.readdirSync(tmpRoot).filter((n) => n.startsWith('ens5.'))).to.deep.equal([]);
    });
  });

  describe('defaultSynthDir', () => {
    const saved = { c: process.env.CIFAKE_CACHE_DIR, x: process.env.XDG_CACHE_HOME };
    afterEach(() => {
      for (const [k, v] of [['CIFAKE_CACHE_DIR', saved.c], ['XDG_CACHE_HOME', saved.x]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });

    it('honours CIFAKE_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
      process.env.CIFAKE_CACHE_DIR = path.join(tmpRoot, 'cc');
      process.env.XDG_CACHE_HOME = path.join(tmpRoot, 'xdg');
      expect(defaultSynthDir()).to.equal(path.join(tmpRoot, 'cc', `demo-v${SYNTH_VERSION}`));
      delete process.env.CIFAKE_CACHE_DIR;
      expect(defaultSynthDir()).to.equal(path.join(tmpRoot, 'xdg', 'cifake-torch', `demo-v${SYNTH_VERSION}`));
      delete process.env.XDG_CACHE_HOME;
      expect(defaultSynthDir()).to.equal(path.join(os.homedir(), '.cache', 'cifake-torch', `demo-v${SYNTH_VERSION}`));
    });

    it('ensureSynth() defaults to it', async () => {
      process.env.CIFAKE_CACHE_DIR = path.join(tmpRoot, 'cache-default');
      const root = await ensureSynth(undefined, { trainPerClass: 1, testPerClass: 1 });
      expect(root).to.equal(defaultSynthDir());
      expect(jpgsOf(root, 'test', 'REAL')).to.have.length(1);
    });
  });

  describe('image model', () => {
    const N = 100;
    let real: number[];
    let fake: number[];

    before(async () => {
      // Statistic on the decoded JPEGs, as a detector would see them.
      const dir = path.join(tmpRoot, 'stats');
      await synthesize(dir, { trainPerClass: N, testPerClass: 0, seed: 3 });
      const measure = async (cls: string): Promise<number[]> =>
        Promise.all(
          jpgsOf(dir, 'train', cls).map(async (f) => {
            const { data, info } = await sharp(path.join(dir, 'train', cls, f)).raw().toBuffer({ resolveWithObject: true });
            return hfEnergy(data, info.width, info.height, info.channels);
          }),
        );
      real = await measure('REAL');
      fake = await measure('FAKE');
    });

    const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;

    it('FAKE images have less high-frequency energy than REAL on average', () => {
      expect(real).to.have.length(N);
      expect(fake).to.have.length(N);
      expect(mean(fake)).to.be.lessThan(mean(real) * 0.9);
    });

    it('but the classes overlap: no threshold on that statistic separates them', () => {
      const all = [...real.map((v) => ({ v, y: 1 })), ...fake.map((v) => ({ v, y: 0 }))].sort((a, b) => a.v - b.v);
      // Best accuracy of "REAL iff statistic > threshold" over all thresholds.
      let best = 0;
      let fakeBelow = 0;
      let realBelow = 0;
      for (let i = 0; i <= all.length; i++) {
        const acc = (fakeBelow + (N - realBelow)) / (2 * N);
        best = Math.max(best, acc);
        if (i < all.length) {
          if (all[i].y === 0) fakeBelow++;
          else realBelow++;
        }
      }
      expect(best).to.be.greaterThan(0.6);
      expect(best).to.be.lessThan(0.97);
      // Some FAKE images are busier than the median REAL one.
      const medianReal = [...real].sort((a, b) => a - b)[N >> 1];
      expect(fake.filter((v) => v > medianReal).length).to.be.greaterThan(0);
    });

    it('images vary: no two raw renders of a class are identical and pixel statistics spread', () => {
      const means: number[] = [];
      const seen = new Set<string>();
      for (let i = 0; i < 50; i++) {
        for (const cls of CLASSES) {
          const raw = renderSynthImage(cls, synthImageSeed(5, 'train', cls, i));
          expect(raw.length).to.equal(32 * 32 * 3);
          seen.add(raw.toString('base64'));
          means.push(raw.reduce((s, v) => s + v, 0) / raw.length);
        }
      }
      expect(seen.size).to.equal(100);
      const m = mean(means);
      const sd = Math.sqrt(mean(means.map((v) => (v - m) ** 2)));
      expect(sd).to.be.greaterThan(15);
    });

    it('FAKE images carry a period-8 pattern that REAL images lack', () => {
      // Variance of the image folded onto a p x p tile (a 4p x 4p crop
      // averaged over its 16 tiles): content that is not p-periodic averages
      // out, so the ratio E(8) / E(7) rises where a period-8 pattern exists.
      // Raw renders (pre-JPEG), so the codec's 8x8 blocks play no part.
      const folded = (raw: Buffer, p: number): number => {
        const t = new Float64Array(p * p);
        for (let y = 0; y < 4 * p; y++) {
          for (let x = 0; x < 4 * p; x++) {
            const i = (y * 32 + x) * 3;
            t[(y % p) * p + (x % p)] += (raw[i] + raw[i + 1] + raw[i + 2]) / 48;
          }
        }
        const m = t.reduce((s, v) => s + v, 0) / t.length;
        return t.reduce((s, v) => s + (v - m) ** 2, 0) / t.length;
      };
      const ratio = (cls: 'REAL' | 'FAKE', i: number): number => {
        const raw = renderSynthImage(cls, synthImageSeed(9, 'train', cls, i));
        return folded(raw, 8) / (folded(raw, 7) + 1e-9);
      };
      const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1];
      const rr = Array.from({ length: N }, (_, i) => ratio('REAL', i));
      const rf = Array.from({ length: N }, (_, i) => ratio('FAKE', i));
      // Without the pattern the medians are within ~6% of each other.
      expect(median(rf)).to.be.greaterThan(1.25 * median(rr));
    });
  });
});

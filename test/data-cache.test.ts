import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  cacheInfo,
  clearCache,
  defaultCacheDir,
  IMAGE_BYTES,
  ImageSet,
  loadSplit,
  iterateShards,
  openSplit,
  prepare,
  setJpegBinding,
  stratifiedSplitIndices,
} from '../src/data';
import { cifakeTree, makeJpeg, nativeJpeg, TempDir, Tree, writeFolder, writeZip } from './data-helpers';

function sameSet(a: ImageSet, b: ImageSet): void {
  expect(a.count).to.equal(b.count);
  expect(a.files).to.deep.equal(b.files);
  expect(Buffer.from(a.labels).equals(Buffer.from(b.labels))).to.equal(true);
  expect(Buffer.from(a.images).equals(Buffer.from(b.images))).to.equal(true);
}

function cacheFiles(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

describe('data: cache', function () {
  let tmp: TempDir;
  let tree: Tree;
  before(async function () {
    nativeJpeg();
    tmp = new TempDir();
    tree = await cifakeTree({ train: { FAKE: 30, REAL: 20 }, test: { FAKE: 4, REAL: 6 } }, 5);
  });
  after(() => {
    tmp.remove();
    setJpegBinding(undefined);
  });

  it('writes the split once, then loads identical bytes from it', async function () {
    const zip = writeZip(tmp.join('a.zip'), tree);
    const cacheDir = tmp.join('cache-a');
    const fresh = await loadSplit(zip, { split: 'train', cacheDir: false });
    const first = await loadSplit(zip, { split: 'train', cacheDir });
    expect(first.summary.cache).to.include({ hit: false, written: true });
    expect(cacheFiles(cacheDir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
    expect(cacheFiles(cacheDir).filter((f) => /^train-[0-9a-f]{20}\.(bin|json)$/.test(f)).length).to.equal(2);
    const second = await loadSplit(zip, { split: 'train', cacheDir });
    expect(second.summary.cache).to.include({ hit: true, written: false });
    expect(second.summary.cache.path).to.equal(first.summary.cache.path);
    sameSet(first, fresh);
    sameSet(second, fresh);
    expect(second.summary.counts).to.deep.equal({ FAKE: 30, REAL: 20 });
    // the binary layout: images, then labels, then NUL-terminated names
    const bin = fs.readFileSync(second.summary.cache.path as string);
    expect(bin.subarray(0, 50 * IMAGE_BYTES).equals(Buffer.from(fresh.images))).to.equal(true);
    expect(bin.subarray(50 * IMAGE_BYTES, 50 * IMAGE_BYTES + 50).equals(Buffer.from(fresh.labels))).to.equal(true);
    expect(bin.subarray(50 * IMAGE_BYTES + 50).toString('utf8')).to.equal(fresh.files.map((f) => `${f}\0`).join(''));
    const header = JSON.parse(fs.readFileSync((second.summary.cache.path as string).replace(/\.bin$/, '.json'), 'utf8'));
    expect(header).to.include({ format: 'cifake-torch-cache', version: 1, count: 50, split: 'train' });
    expect(header.shape).to.deep.equal([50, 3, 32, 32]);
    expect(header.classNames).to.deep.equal(['FAKE', 'REAL']);
    expect(header.source.fingerprint).to.match(/^zip:\d+:\d+$/);
    expect(header.options).to.deep.equal({ resize: false, size: 32, classMap: { fake: 0, real: 1 } });
  });

  it('rebuilds when the zip changes', async function () {
    const zip = writeZip(tmp.join('b.zip'), tree);
    const cacheDir = tmp.join('cache-b');
    await loadSplit(zip, { split: 'test', cacheDir });
    const t2: Tree = new Map(tree);
    t2.set('test/REAL/new.jpg', await makeJpeg(9999));
    writeZip(zip, t2);
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(zip, later, later);
    const s = await loadSplit(zip, { split: 'test', cacheDir });
    expect(s.summary.cache).to.include({ hit: false, written: true });
    expect(s.summary.cache.note).to.match(/source changed/);
    expect(s.summary.counts).to.deep.equal({ FAKE: 4, REAL: 7 });
    expect((await loadSplit(zip, { split: 'test', cacheDir })).summary.cache.hit).to.equal(true);
  });

  it('rebuilds when a folder changes (file modified, added or removed)', async function () {
    const folder = writeFolder(tmp.join('f'), tree);
    const cacheDir = tmp.join('cache-f');
    await loadSplit(folder, { split: 'test', cacheDir });
    expect((await loadSplit(folder, { split: 'test', cacheDir })).summary.cache.hit).to.equal(true);
    const victim = path.join(folder, 'test', 'REAL', '0 (1).jpg');
    const replacement = await makeJpeg(4242);
    fs.writeFileSync(victim, replacement);
    const later = new Date(Date.now() + 10000);
    fs.utimesSync(victim, later, later);
    const changed = await loadSplit(folder, { split: 'test', cacheDir });
    expect(changed.summary.cache.hit).to.equal(false);
    expect(changed.summary.cache.note).to.match(/source changed/);
    const fresh = await loadSplit(folder, { split: 'test', cacheDir: false });
    sameSet(changed, fresh);
    fs.writeFileSync(path.join(folder, 'test', 'FAKE', 'extra.jpg'), await makeJpeg(4343));
    expect((await loadSplit(folder, { split: 'test', cacheDir })).summary.counts).to.deep.equal({ FAKE: 5, REAL: 6 });
    fs.rmSync(path.join(folder, 'test', 'FAKE', 'extra.jpg'));
    const back = await loadSplit(folder, { split: 'test', cacheDir });
    expect(back.summary.cache.hit).to.equal(false);
    expect(back.summary.counts).to.deep.equal({ FAKE: 4, REAL: 6 });
  });

  it('detects a truncated, corrupted, foreign-version or garbled cache and rebuilds it', async function () {
    const zip = writeZip(tmp.join('c.zip'), tree);
    const cacheDir = tmp.join('cache-c');
    const fresh = await loadSplit(zip, { split: 'train', cacheDir });
    const bin = fresh.summary.cache.path as string;
    const json = bin.replace(/\.bin$/, '.json');
    const damage: Array<[string, () => void, RegExp]> = [
      ['truncated', () => fs.truncateSync(bin, fs.statSync(bin).size - 1000), /truncated/],
      [
        'bit flip',
        () => {
          const fd = fs.openSync(bin, 'r+');
          const b = Buffer.alloc(1);
          fs.readSync(fd, b, 0, 1, 777);
          b[0] ^= 0x10;
          fs.writeSync(fd, b, 0, 1, 777);
          fs.closeSync(fd);
        },
        /checksum/,
      ],
      [
        'label flip',
        () => {
          const fd = fs.openSync(bin, 'r+');
          fs.writeSync(fd, Buffer.from([1]), 0, 1, 50 * IMAGE_BYTES); // first label FAKE -> REAL
          fs.closeSync(fd);
        },
        /checksum/,
      ],
      ['version', () => fs.writeFileSync(json, fs.readFileSync(json, 'utf8').replace('"version": 1', '"version": 99')), /format version 99/],
      ['package', () => fs.writeFileSync(json, fs.readFileSync(json, 'utf8').replace(/"packageVersion": "[^"]*"/, '"packageVersion": "0.0.1"')), /cifake-torch 0\.0\.1/],
      ['garbage header', () => fs.writeFileSync(json, '{"format": "cifake-torch-cache", "ver'), /unreadable cache header/],
      ['missing data', () => fs.rmSync(bin), /cache data missing/],
    ];
    for (const [what, hurt, reason] of damage) {
      hurt();
      const s = await loadSplit(zip, { split: 'train', cacheDir });
      expect(s.summary.cache.hit, what).to.equal(false);
      expect(s.summary.cache.written, what).to.equal(true);
      expect(s.summary.cache.note, what).to.match(reason);
      sameSet(s, fresh);
      expect((await loadSplit(zip, { split: 'train', cacheDir })).summary.cache.hit, `${what}: rebuilt cache used`).to.equal(true);
    }
  });

  it('keys the cache by options: resize and classMap get their own files', async function () {
    const zip = writeZip(tmp.join('d.zip'), tree);
    const cacheDir = tmp.join('cache-d');
    const a = await loadSplit(zip, { split: 'test', cacheDir });
    const b = await loadSplit(zip, { split: 'test', cacheDir, resize: true });
    const c = await loadSplit(zip, { split: 'test', cacheDir, classMap: { real: 0, fake: 1 } });
    expect(new Set([a, b, c].map((s) => s.summary.cache.path)).size).to.equal(3);
    expect(c.summary.counts).to.deep.equal({ FAKE: 6, REAL: 4 });
    for (const opts of [{}, { resize: true }, { classMap: { real: 0 as const, fake: 1 as const } }]) {
      expect((await loadSplit(zip, { split: 'test', cacheDir, ...opts })).summary.cache.hit).to.equal(true);
    }
    expect(cacheFiles(cacheDir).length).to.equal(6);
  });

  it('defaults to CIFAKE_CACHE_DIR, else $XDG_CACHE_HOME/cifake-torch, else ~/.cache/cifake-torch', function () {
    const saved = { c: process.env.CIFAKE_CACHE_DIR, x: process.env.XDG_CACHE_HOME };
    try {
      process.env.CIFAKE_CACHE_DIR = tmp.join('envcache');
      expect(defaultCacheDir()).to.equal(tmp.join('envcache'));
      delete process.env.CIFAKE_CACHE_DIR;
      process.env.XDG_CACHE_HOME = tmp.join('xdg');
      expect(defaultCacheDir()).to.equal(tmp.join('xdg', 'cifake-torch'));
      delete process.env.XDG_CACHE_HOME;
      expect(defaultCacheDir()).to.equal(path.join(require('node:os').homedir(), '.cache', 'cifake-torch'));
    } finally {
      for (const [k, v] of [
        ['CIFAKE_CACHE_DIR', saved.c],
        ['XDG_CACHE_HOME', saved.x],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('uses CIFAKE_CACHE_DIR when no cacheDir is given', async function () {
    const saved = process.env.CIFAKE_CACHE_DIR;
    process.env.CIFAKE_CACHE_DIR = tmp.join('env-default');
    try {
      const s = await loadSplit(writeZip(tmp.join('e.zip'), tree), { split: 'test' });
      expect(path.dirname(s.summary.cache.path as string)).to.equal(tmp.join('env-default'));
    } finally {
      if (saved === undefined) delete process.env.CIFAKE_CACHE_DIR;
      else process.env.CIFAKE_CACHE_DIR = saved;
    }
  });

  it('limit: a seeded stratified subset, the same with and without the cache, not cached itself', async function () {
    const zip = writeZip(tmp.join('g.zip'), tree);
    const cacheDir = tmp.join('cache-g');
    const uncached = await loadSplit(zip, { split: 'train', cacheDir, limit: 8, seed: 3 });
    expect(uncached.summary.counts).to.deep.equal({ FAKE: 8, REAL: 8 });
    expect(uncached.summary.cache.written).to.equal(false);
    expect(cacheFiles(cacheDir)).to.deep.equal([]);
    await loadSplit(zip, { split: 'train', cacheDir }); // full split, cached
    const cached = await loadSplit(zip, { split: 'train', cacheDir, limit: 8, seed: 3 });
    expect(cached.summary.cache.hit).to.equal(true);
    sameSet(cached, uncached);
    const again = await loadSplit(zip, { split: 'train', cacheDir: false, limit: 8, seed: 3 });
    sameSet(again, uncached);
    const other = await loadSplit(zip, { split: 'train', cacheDir: false, limit: 8, seed: 4 });
    expect(other.files).to.not.deep.equal(uncached.files);
    const big = await loadSplit(zip, { split: 'train', cacheDir, limit: 25 });
    expect(big.summary.counts).to.deep.equal({ FAKE: 25, REAL: 20 });
  });

  it('limit tops up past unreadable files so each class still gets `limit` images', async function () {
    const t: Tree = new Map(tree);
    for (let i = 0; i < 10; i++) t.set(`train/REAL/broken${i}.jpg`, Buffer.from('x'));
    const zip = writeZip(tmp.join('h.zip'), t);
    const s = await loadSplit(zip, { split: 'train', cacheDir: false, limit: 18, seed: 1 });
    expect(s.summary.counts).to.deep.equal({ FAKE: 18, REAL: 18 });
    expect(s.files.some((f) => f.includes('broken'))).to.equal(false);
  });

  it('openSplit streams shards from the cache file (all, or chosen indices)', async function () {
    const zip = writeZip(tmp.join('s.zip'), tree);
    const cacheDir = tmp.join('cache-s');
    const full = await loadSplit(zip, { split: 'train', cacheDir: false });
    const h = await openSplit(zip, { split: 'train', cacheDir });
    expect(h.summary.cache.written).to.equal(true);
    expect(h.count).to.equal(50);
    expect(h.imageBytes).to.equal(50 * IMAGE_BYTES);
    expect(h.files).to.deep.equal(full.files);
    const parts: Buffer[] = [];
    const labels: number[] = [];
    let start = 0;
    for await (const shard of h.iterateShards(16)) {
      expect(shard.start).to.equal(start);
      expect(shard.count).to.be.at.most(16);
      expect(shard.images.length).to.equal(shard.count * IMAGE_BYTES);
      parts.push(Buffer.from(shard.images));
      labels.push(...shard.labels);
      start += shard.count;
    }
    expect(parts.length).to.equal(4);
    expect(Buffer.concat(parts).equals(Buffer.from(full.images))).to.equal(true);
    expect(labels).to.deep.equal(Array.from(full.labels));
    const { val } = stratifiedSplitIndices(h.labels, h.files, 0.2, 7);
    const got: Buffer[] = [];
    for await (const shard of h.iterateShards(3, val)) got.push(Buffer.from(shard.images));
    const want = Buffer.concat(Array.from(val, (i) => Buffer.from(full.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES))));
    expect(Buffer.concat(got).equals(want)).to.equal(true);
    sameSet(await h.load(), full);
    const again = await openSplit(zip, { split: 'train', cacheDir });
    expect(again.summary.cache.hit).to.equal(true);
    let n = 0;
    for await (const shard of iterateShards(zip, { split: 'train', cacheDir, shardSize: 20 })) n += shard.count;
    expect(n).to.equal(50);
    for await (const shard of again.iterateShards(10)) {
      expect(shard.count).to.equal(10);
      break; // stopping early closes the file without stray errors
    }
  });

  it('prepare caches every split; cacheInfo lists them; clearCache removes them', async function () {
    const zip = writeZip(tmp.join('p.zip'), new Map([...tree].map(([k, v]) => [`archive/${k}`, v])));
    const cacheDir = tmp.join('cache-p');
    const summaries = await prepare(zip, { cacheDir });
    expect(summaries.map((s) => [s.split, s.count])).to.deep.equal([
      ['test', 10],
      ['train', 50],
    ]);
    let info = await cacheInfo(cacheDir);
    expect(info.entries.map((e) => [e.split, e.status, e.count, e.sourceUnchanged])).to.deep.equal([
      ['test', 'ok', 10, true],
      ['train', 'ok', 50, true],
    ]);
    expect(info.bytes).to.be.greaterThan(60 * IMAGE_BYTES);
    fs.truncateSync(info.entries[0].binPath, 10);
    info = await cacheInfo(cacheDir);
    expect(info.entries[0].status).to.equal('incomplete');
    expect((await loadSplit(zip, { split: 'test', cacheDir })).summary.cache.hit).to.equal(false);
    expect(await clearCache(cacheDir)).to.equal(4);
    expect(cacheFiles(cacheDir)).to.deep.equal([]);
    expect((await cacheInfo(tmp.join('no-such-cache'))).entries).to.deep.equal([]);
  });

  it('loads and caches without a cache folder it can write (reports why)', async function () {
    const blocker = tmp.join('blocker');
    fs.writeFileSync(blocker, 'a file where the cache folder should be');
    const s = await loadSplit(writeZip(tmp.join('w.zip'), tree), { split: 'test', cacheDir: path.join(blocker, 'cache') });
    expect(s.count).to.equal(10);
    expect(s.summary.cache.written).to.equal(false);
    expect(s.summary.cache.note).to.match(/cache not written/);
  });
});

// Strict loads (strict: true, CLI --strict) fail on a bad file whether the split is decoded now or
// comes from a cache that a non-strict run wrote; symlinks that cannot be followed count as bad files.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadSplit, openSplit, prepare, setJpegBinding } from '../src/data';
import { cifakeTree, dataErrorOf, nativeJpeg, TempDir, Tree, writeFolder, writeZip } from './data-helpers';

describe('data: strict mode with and without the cache', function () {
  let tmp: TempDir;
  let tree: Tree;
  let bad: Tree;
  before(async function () {
    nativeJpeg();
    tmp = new TempDir('cifake-data-strict');
    tree = await cifakeTree({ train: { FAKE: 6, REAL: 5 }, test: { FAKE: 3, REAL: 3 } }, 11);
    bad = new Map(tree);
    bad.set('train/FAKE/bad-text.jpg', Buffer.from('not an image'));
    bad.set('train/REAL/bad-truncated.jpg', (tree.get('train/REAL/0 (1).jpg') as Buffer).subarray(0, 150));
  });
  after(() => {
    tmp.remove();
    setJpegBinding(undefined);
  });

  for (const kind of ['zip', 'folder'] as const) {
    it(`${kind}: a strict load fails on a cache a non-strict run wrote with skipped files, naming them`, async function () {
      const data = kind === 'zip' ? writeZip(tmp.join('bad.zip'), bad) : writeFolder(tmp.join('bad-folder'), bad);
      const cacheDir = tmp.join(`cache-${kind}`);
      const uncached = await dataErrorOf(loadSplit(data, { split: 'train', cacheDir: false, strict: true }));
      expect(uncached.message).to.match(/bad-text\.jpg: cannot decode image: .*\(strict mode\)/);

      const lax = await loadSplit(data, { split: 'train', cacheDir });
      expect(lax.summary.cache.written).to.equal(true);
      expect(lax.summary.skipped.count).to.equal(2);

      const fromCache = await dataErrorOf(loadSplit(data, { split: 'train', cacheDir, strict: true }));
      expect(fromCache.message).to.match(/bad-text\.jpg: cannot decode image: .*strict mode/);
      expect(fromCache.message).to.include('bad-truncated.jpg');
      expect(fromCache.message).to.include(lax.summary.cache.path as string);
      expect(fromCache.file).to.match(/bad-text\.jpg$/);
      const viaHandle = await dataErrorOf(openSplit(data, { split: 'train', cacheDir, strict: true }));
      expect(viaHandle.message).to.match(/bad-text\.jpg.*strict mode/);
      const viaPrepare = await dataErrorOf(prepare(data, { splits: ['train'], cacheDir, strict: true }));
      expect(viaPrepare.message).to.match(/bad-text\.jpg.*strict mode/);
      const limited = await dataErrorOf(loadSplit(data, { split: 'train', cacheDir, strict: true, limit: 100 }));
      expect(limited.message).to.match(/bad-text\.jpg.*strict mode/);

      // The cache is still good for non-strict loads; a clean split's cache serves strict loads.
      expect((await loadSplit(data, { split: 'train', cacheDir })).summary.cache.hit).to.equal(true);
      await loadSplit(data, { split: 'test', cacheDir });
      const strictTest = await loadSplit(data, { split: 'test', cacheDir, strict: true });
      expect(strictTest.summary.cache.hit).to.equal(true);
      expect(strictTest.count).to.equal(6);
    });
  }

  it('rebuilds (does not trust) a cache header without its skipped-files record', async function () {
    const zip = writeZip(tmp.join('norecord.zip'), bad);
    const cacheDir = tmp.join('cache-norecord');
    const s = await loadSplit(zip, { split: 'train', cacheDir });
    const json = (s.summary.cache.path as string).replace(/\.bin$/, '.json');
    const header = JSON.parse(fs.readFileSync(json, 'utf8')) as Record<string, unknown>;
    delete header.skipped;
    fs.writeFileSync(json, JSON.stringify(header));
    const again = await loadSplit(zip, { split: 'train', cacheDir });
    expect(again.summary.cache.hit).to.equal(false);
    expect(again.summary.cache.note).to.match(/skipped-files record/);
  });
});

describe('data: symlinks in folders', function () {
  let tmp: TempDir;
  let tree: Tree;
  before(async function () {
    nativeJpeg();
    tmp = new TempDir('cifake-data-symlinks');
    tree = await cifakeTree({ train: { FAKE: 4, REAL: 4 } }, 12);
  });
  after(() => {
    tmp.remove();
    setJpegBinding(undefined);
  });

  it('lists dangling and looping symlinks as skipped (strict fails on them), follows good ones', async function () {
    const root = writeFolder(tmp.join('links'), tree);
    const fake = path.join(root, 'train', 'FAKE');
    fs.symlinkSync(path.join(root, 'nowhere.jpg'), path.join(fake, 'dangling.jpg'));
    fs.symlinkSync(path.join(fake, 'loop-b.jpg'), path.join(fake, 'loop-a.jpg'));
    fs.symlinkSync(path.join(fake, 'loop-a.jpg'), path.join(fake, 'loop-b.jpg'));
    fs.symlinkSync(path.join(fake, '0 (1).jpg'), path.join(fake, 'good-link.jpg'));
    const s = await loadSplit(root, { split: 'train', cacheDir: false });
    expect(s.summary.listed).to.equal(12);
    expect(s.summary.counts).to.deep.equal({ FAKE: 5, REAL: 4 });
    expect(s.files).to.include('train/FAKE/good-link.jpg');
    const skipped = Object.fromEntries(s.summary.skipped.files.map((f) => [path.basename(f.file), f.reason]));
    expect(Object.keys(skipped).sort()).to.deep.equal(['dangling.jpg', 'loop-a.jpg', 'loop-b.jpg']);
    expect(skipped['dangling.jpg']).to.match(/dangling symlink|ENOENT/);
    expect(skipped['loop-a.jpg']).to.match(/symlink loop|ELOOP/);
    const e = await dataErrorOf(loadSplit(root, { split: 'train', cacheDir: false, strict: true }));
    expect(e.message).to.match(/dangling\.jpg: cannot decode image: .*(dangling symlink|ENOENT).*\(strict mode\)/);
    const cacheDir = tmp.join('cache-links');
    await loadSplit(root, { split: 'train', cacheDir });
    const cached = await dataErrorOf(loadSplit(root, { split: 'train', cacheDir, strict: true }));
    expect(cached.message).to.match(/dangling\.jpg.*strict mode/);
  });

  it('lists dangling, self-looping and ancestor folder links as skipped instead of walking them', async function () {
    const root = writeFolder(tmp.join('dirlinks'), tree);
    fs.symlinkSync(path.join(root, 'no-such-dir'), path.join(root, 'train', 'REAL', 'gone'));
    fs.symlinkSync(path.join(root, 'train', 'REAL', 'self'), path.join(root, 'train', 'REAL', 'self'));
    // Two folder links back to an ancestor: without loop detection, 2^32 paths to walk.
    fs.symlinkSync(path.join(root, 'train'), path.join(root, 'train', 'REAL', 'up1'));
    fs.symlinkSync(path.join(root, 'train'), path.join(root, 'train', 'REAL', 'up2'));
    const s = await loadSplit(root, { split: 'train', cacheDir: false });
    expect(s.summary.counts).to.deep.equal({ FAKE: 4, REAL: 4 });
    const skipped = Object.fromEntries(s.summary.skipped.files.map((f) => [path.basename(f.file), f.reason]));
    expect(Object.keys(skipped).sort()).to.deep.equal(['gone', 'self', 'up1', 'up2']);
    expect(skipped.up1).to.match(/symlink loop/);
    const e = await dataErrorOf(loadSplit(root, { split: 'train', cacheDir: false, strict: true }));
    expect(e.message).to.match(/train\/REAL\/gone: cannot decode image: dangling symlink/);
  });
});

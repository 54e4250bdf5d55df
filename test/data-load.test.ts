import { expect } from 'chai';
import * as fs from 'node:fs';
import { formatSummary, IMAGE_BYTES, ImageSet, loadSplit, progressBar, ProgressInfo, setJpegBinding } from '../src/data';
import { cifakeTree, dataErrorOf, makeJpeg, makePng, nativeJpeg, sharpChw, TempDir, Tree, treeHash, writeFolder, writeZip } from './data-helpers';

const COUNTS = { train: { FAKE: 7, REAL: 5 }, test: { FAKE: 3, REAL: 4 } };

function expectSorted(set: ImageSet): void {
  for (let i = 1; i < set.count; i++) {
    const a = [set.labels[i - 1], set.files[i - 1]] as const;
    const b = [set.labels[i], set.files[i]] as const;
    expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `order at ${i}: ${a[1]} then ${b[1]}`).to.equal(true);
  }
}

describe('data: loading zips and folders', function () {
  let tmp: TempDir;
  let tree: Tree;
  before(async function () {
    nativeJpeg(); // use the native decoder when there is one
    tmp = new TempDir();
    tree = await cifakeTree(COUNTS, 3);
  });
  after(() => {
    tmp.remove();
    setJpegBinding(undefined);
  });

  it('reads a Kaggle-layout zip: exact counts, labels (FAKE 0, REAL 1), names, order', async function () {
    const zip = writeZip(tmp.join('plain.zip'), tree);
    const train = await loadSplit(zip, { split: 'train', cacheDir: false });
    expect(train.count).to.equal(12);
    expect(train.images.length).to.equal(12 * IMAGE_BYTES);
    expect(Array.from(train.labels)).to.deep.equal([...Array(7).fill(0), ...Array(5).fill(1)]);
    expect(train.summary.counts).to.deep.equal({ FAKE: 7, REAL: 5 });
    expect(train.classNames).to.deep.equal(['FAKE', 'REAL']);
    expect(train.files.every((f, i) => f.startsWith(i < 7 ? 'train/FAKE/' : 'train/REAL/'))).to.equal(true);
    expect(new Set(train.files)).to.deep.equal(new Set([...tree.keys()].filter((k) => k.startsWith('train/'))));
    expectSorted(train);
    // pixels are those of the file named
    const k = 9;
    const ref = await sharpChw(tree.get(train.files[k]) as Buffer);
    expect(Buffer.from(train.images.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES)).equals(Buffer.from(ref))).to.equal(true);
    const test = await loadSplit(zip, { split: 'test', cacheDir: false });
    expect(test.summary.counts).to.deep.equal({ FAKE: 3, REAL: 4 });
    expect(test.summary.sourceKind).to.equal('zip');
    expect(test.summary.skipped.count).to.equal(0);
  });

  it('gives the same set from a zip with archive/ (deflated, directory entries) and from folders with and without archive/', async function () {
    const ref = await loadSplit(writeZip(tmp.join('ref.zip'), tree), { split: 'train', cacheDir: false });
    const wrapped = new Map([...tree].map(([k, v]) => [`archive/${k}`, v]));
    const sources = [
      writeZip(tmp.join('wrapped.zip'), wrapped, { deflate: true, dirEntries: true }),
      writeZip(tmp.join('wrapped-stored.zip'), wrapped),
      writeFolder(tmp.join('folder'), tree),
      writeFolder(tmp.join('folder-wrapped'), wrapped),
    ];
    for (const src of sources) {
      const s = await loadSplit(src, { split: 'train', cacheDir: false });
      expect(s.files, src).to.deep.equal(ref.files);
      expect(Array.from(s.labels), src).to.deep.equal(Array.from(ref.labels));
      expect(Buffer.from(s.images).equals(Buffer.from(ref.images)), src).to.equal(true);
    }
    const w = await loadSplit(sources[0], { split: 'TRAIN', cacheDir: false });
    expect(w.summary.splitPath).to.equal('archive/train');
    expect(w.files[0]).to.match(/^train\/FAKE\//);
  });

  it('maps other folder names with classMap (case-insensitive) and needs both classes', async function () {
    const t: Tree = new Map();
    let seed = 500;
    for (const [dir, n] of [
      ['train/Nature', 3],
      ['train/ai_sd', 2],
      ['train/AI_MJ', 2],
    ] as const) {
      for (let i = 0; i < n; i++) t.set(`${dir}/img${i}.jpg`, await makeJpeg(seed++));
    }
    const folder = writeFolder(tmp.join('custom'), t);
    const s = await loadSplit(folder, { split: 'train', cacheDir: false, classMap: { nature: 1, ai_sd: 0, ai_mj: 0 } });
    expect(s.summary.counts).to.deep.equal({ FAKE: 4, REAL: 3 });
    expect(s.summary.classFolders).to.deep.equal({ FAKE: ['AI_MJ', 'ai_sd'], REAL: ['Nature'] });
    const e = await dataErrorOf(loadSplit(folder, { split: 'train', cacheDir: false }));
    expect(e.message).to.match(/not classes: AI_MJ, Nature, ai_sd/);
    expect(e.message).to.match(/Expected layout/);
    const e2 = await dataErrorOf(loadSplit(folder, { split: 'train', cacheDir: false, classMap: { nature: 1 } }));
    expect(e2.message).to.match(/no folder maps to label 0/);
  });

  it('explains a missing split, a missing class and an empty class, showing the expected layout', async function () {
    const zip = writeZip(tmp.join('layout.zip'), tree);
    const e1 = await dataErrorOf(loadSplit(zip, { split: 'val', cacheDir: false }));
    expect(e1.message).to.match(/no 'val' folder/);
    expect(e1.message).to.match(/found folders: test, train/);
    expect(e1.message).to.match(/Expected layout/);

    const noReal = new Map([...tree].filter(([k]) => !k.startsWith('train/REAL/')));
    const e2 = await dataErrorOf(loadSplit(writeFolder(tmp.join('noreal'), noReal), { split: 'train', cacheDir: false }));
    expect(e2.message).to.match(/missing class REAL \(label 1\)/);
    expect(e2.message).to.match(/Expected layout/);

    const dir = writeFolder(tmp.join('emptyclass'), noReal);
    fs.mkdirSync(tmp.join('emptyclass', 'train', 'REAL'));
    fs.writeFileSync(tmp.join('emptyclass', 'train', 'REAL', '.DS_Store'), 'x');
    const e3 = await dataErrorOf(loadSplit(dir, { split: 'train', cacheDir: false }));
    expect(e3.message).to.match(/class REAL folder .*train[/\\]REAL is empty/);

    const e4 = await dataErrorOf(loadSplit(tmp.join('nope.zip'), { split: 'train', cacheDir: false }));
    expect(e4.message).to.match(/data not found/);
    fs.writeFileSync(tmp.join('notzip.zip'), 'hello');
    const e5 = await dataErrorOf(loadSplit(tmp.join('notzip.zip'), { split: 'train', cacheDir: false }));
    expect(e5.message).to.match(/not a readable zip/);
  });

  it('decodes PNG, grayscale JPEG and RGBA PNG through sharp, and ignores hidden files and loose files', async function () {
    const t: Tree = new Map(tree);
    t.set('train/REAL/zz-png.png', await makePng(600));
    t.set('train/REAL/zz-gray.jpg', await makeJpeg(601, { gray: true }));
    t.set('train/FAKE/zz-rgba.png', await makePng(602, 32, 4));
    t.set('train/FAKE/.DS_Store', Buffer.from('junk'));
    t.set('train/REAL/._zz-png.png', Buffer.from('apple double'));
    t.set('__MACOSX/train/REAL/._x.jpg', Buffer.from('junk'));
    t.set('train/README.txt', Buffer.from('notes'));
    const s = await loadSplit(writeZip(tmp.join('mixed.zip'), t), { split: 'train', cacheDir: false });
    expect(s.summary.counts).to.deep.equal({ FAKE: 8, REAL: 7 });
    expect(s.summary.skipped.count).to.equal(0);
    expect(s.summary.ignored.count).to.equal(1);
    expect(s.summary.ignored.files[0]).to.match(/train\/README\.txt$/);
    const native = nativeJpeg() !== null;
    expect(s.summary.decoded.sharp).to.equal(native ? 2 : 15); // the PNGs (and the gray JPEG natively)
    for (const name of ['train/REAL/zz-png.png', 'train/REAL/zz-gray.jpg', 'train/FAKE/zz-rgba.png']) {
      const i = s.files.indexOf(name);
      expect(i, name).to.be.greaterThan(-1);
      const ref = await sharpChw(t.get(name) as Buffer);
      expect(Buffer.from(s.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).equals(Buffer.from(ref)), name).to.equal(true);
    }
  });

  it('skips and lists truncated, empty and non-image files; strict fails on the first with its path', async function () {
    const t: Tree = new Map(tree);
    const good = tree.get('train/REAL/0 (1).jpg') as Buffer;
    t.set('train/REAL/bad-truncated.jpg', good.subarray(0, 200));
    t.set('train/FAKE/bad-text.jpg', Buffer.from('not an image'));
    t.set('train/FAKE/bad-empty.jpg', Buffer.alloc(0));
    const zip = writeZip(tmp.join('corrupt.zip'), t);
    const s = await loadSplit(zip, { split: 'train', cacheDir: false });
    expect(s.summary.counts).to.deep.equal({ FAKE: 7, REAL: 5 });
    expect(s.summary.listed).to.equal(15);
    expect(s.summary.skipped.count).to.equal(3);
    expect(s.summary.skipped.files.map((f) => f.file.split(':').pop()).sort()).to.deep.equal([
      'train/FAKE/bad-empty.jpg',
      'train/FAKE/bad-text.jpg',
      'train/REAL/bad-truncated.jpg',
    ]);
    expect(s.files.some((f) => f.includes('bad-'))).to.equal(false);
    expect(formatSummary(s.summary)).to.match(/skipped 3 unreadable files/);
    const e = await dataErrorOf(loadSplit(zip, { split: 'train', cacheDir: false, strict: true }));
    expect(e.message).to.match(/corrupt\.zip:train\/FAKE\/bad-empty\.jpg: cannot decode image: empty file/);
    expect(e.file).to.match(/bad-empty\.jpg$/);
  });

  it('fails when every file of a class is unreadable', async function () {
    const t: Tree = new Map([...tree].filter(([k]) => !k.startsWith('test/REAL/')));
    t.set('test/REAL/a.jpg', Buffer.from('nope'));
    const e = await dataErrorOf(loadSplit(writeZip(tmp.join('deadclass.zip'), t), { split: 'test', cacheDir: false }));
    expect(e.message).to.match(/class REAL .*none of its 1 files could be decoded/);
  });

  it('rejects a 64x64 image naming it, unless resize (then it is resized)', async function () {
    const t: Tree = new Map(tree);
    const big = await makeJpeg(700, { size: 64 });
    t.set('test/FAKE/big.jpg', big);
    const folder = writeFolder(tmp.join('big'), t);
    const e = await dataErrorOf(loadSplit(folder, { split: 'test', cacheDir: false }));
    expect(e.message).to.match(/big\.jpg: image is 64x64, expected 32x32; pass resize: true/);
    expect(e.file).to.equal(tmp.join('big', 'test', 'FAKE', 'big.jpg'));
    const s = await loadSplit(folder, { split: 'test', cacheDir: false, resize: true });
    expect(s.summary.counts).to.deep.equal({ FAKE: 4, REAL: 4 });
    expect(s.summary.decoded.resized).to.equal(1);
    const i = s.files.indexOf('test/FAKE/big.jpg');
    const ref = await sharpChw(big, 32);
    expect(Buffer.from(s.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).equals(Buffer.from(ref))).to.equal(true);
  });

  it('reports progress up to done == total and never modifies the source', async function () {
    const zip = writeZip(tmp.join('progress.zip'), tree);
    const folder = writeFolder(tmp.join('progress-folder'), tree);
    const before = [treeHash(zip), treeHash(folder)];
    for (const src of [zip, folder]) {
      const seen: ProgressInfo[] = [];
      await loadSplit(src, { split: 'train', cacheDir: tmp.join('cache-progress'), onProgress: (p) => seen.push({ ...p }) });
      expect(seen.length).to.be.greaterThan(1);
      expect(seen[seen.length - 1]).to.include({ done: 12, total: 12 });
      for (let i = 1; i < seen.length; i++) expect(seen[i].done).to.be.at.least(seen[i - 1].done);
      expect(seen.every((p) => Number.isFinite(p.imagesPerSec) && p.imagesPerSec >= 0)).to.equal(true);
    }
    expect([treeHash(zip), treeHash(folder)]).to.deep.equal(before);
  });

  it('progressBar returns an onProgress callback with an idempotent stop()', async function () {
    const bar = progressBar('test');
    expect(bar).to.be.a('function');
    const zip = writeZip(tmp.join('bar.zip'), tree);
    await loadSplit(zip, { split: 'test', cacheDir: false, onProgress: bar });
    bar({ done: 1, total: 2, imagesPerSec: 10 });
    bar.stop();
    bar.stop();
    bar({ done: 2, total: 2, imagesPerSec: 10 }); // ignored after stop
  });

  it('validates options with messages that name the field', async function () {
    const zip = writeZip(tmp.join('opts.zip'), tree);
    expect((await dataErrorOf(loadSplit(zip, { split: '' }))).message).to.match(/options\.split/);
    expect((await dataErrorOf(loadSplit(zip, { split: 'train', limit: 0 }))).message).to.match(/options\.limit/);
    expect((await dataErrorOf(loadSplit(zip, { split: 'train', seed: -1 }))).message).to.match(/options\.seed/);
    expect((await dataErrorOf(loadSplit(zip, { split: 'train', classMap: { FAKE: 0, REAL: 2 as 1 } }))).message).to.match(/classMap: label of "REAL"/);
  });
});

import { expect } from 'chai';
import { DataError, IMAGE_BYTES, ImageSet, limitIndices, stratifiedSplit, stratifiedSplitIndices } from '../src/data';

/** A synthetic set: image k is filled with k's low byte so subsets can be checked by content. */
function fakeSet(nFake: number, nReal: number): ImageSet {
  const n = nFake + nReal;
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Uint8Array(n);
  const files: string[] = [];
  for (let k = 0; k < n; k++) {
    images.fill(k & 0xff, k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES);
    labels[k] = k < nFake ? 0 : 1;
    files.push(`train/${k < nFake ? 'FAKE' : 'REAL'}/${k}.jpg`);
  }
  const summary = {
    source: '/x.zip', sourceKind: 'zip' as const, split: 'train', splitPath: 'train', count: n,
    counts: { FAKE: nFake, REAL: nReal }, classFolders: { FAKE: ['FAKE'], REAL: ['REAL'] }, listed: n,
    skipped: { count: 0, files: [] }, ignored: { count: 0, files: [] }, decoded: { native: n, sharp: 0, resized: 0 },
    resize: false, limit: null, seed: 0, cache: { path: null, hit: false, written: false }, seconds: 0,
  };
  return { images, labels, files, classNames: ['FAKE', 'REAL'], count: n, summary };
}

describe('data: splits', function () {
  it('stratifiedSplit keeps the class ratio, is disjoint and complete', function () {
    const set = fakeSet(600, 400);
    const { train, val } = stratifiedSplit(set, 0.1, 42);
    expect(val.summary.counts).to.deep.equal({ FAKE: 60, REAL: 40 });
    expect(train.summary.counts).to.deep.equal({ FAKE: 540, REAL: 360 });
    expect(train.count + val.count).to.equal(1000);
    const names = new Set([...train.files, ...val.files]);
    expect(names.size).to.equal(1000);
    expect(train.summary.subset).to.equal('train');
    expect(val.summary.subset).to.equal('val');
    // images and labels follow their files
    for (const s of [train, val]) {
      for (let k = 0; k < s.count; k += 37) {
        const orig = Number(/\/(\d+)\.jpg$/.exec(s.files[k])?.[1]);
        expect(s.images[k * IMAGE_BYTES]).to.equal(orig & 0xff);
        expect(s.labels[k]).to.equal(set.labels[orig]);
      }
    }
  });

  it('is deterministic for a seed and differs between seeds', function () {
    const set = fakeSet(300, 300);
    const a = stratifiedSplitIndices(set.labels, set.files, 0.2, 1);
    const b = stratifiedSplitIndices(set.labels, set.files, 0.2, 1);
    const c = stratifiedSplitIndices(set.labels, set.files, 0.2, 2);
    expect(Array.from(a.val)).to.deep.equal(Array.from(b.val));
    expect(Array.from(a.val)).to.not.deep.equal(Array.from(c.val));
    const va = new Set(a.val);
    expect(Array.from(a.train).some((i) => va.has(i))).to.equal(false);
    // sorted ascending, within range
    expect(Array.from(a.val)).to.deep.equal(Array.from(a.val).sort((x, y) => x - y));
  });

  it('is stable: a file stays in val when other files are added', function () {
    const small = fakeSet(200, 200);
    const bigger = fakeSet(200, 200);
    bigger.files.push('train/FAKE/extra-1.jpg', 'train/REAL/extra-2.jpg');
    const labels = new Uint8Array([...bigger.labels, 0, 1]);
    const a = new Set(Array.from(stratifiedSplitIndices(small.labels, small.files, 0.25, 9).val, (i) => small.files[i]));
    const b = new Set(Array.from(stratifiedSplitIndices(labels, bigger.files, 0.25, 9).val, (i) => bigger.files[i]));
    const common = [...a].filter((f) => b.has(f)).length;
    expect(common).to.be.at.least(a.size - 2);
  });

  it('handles small classes and rejects bad fractions', function () {
    const set = fakeSet(3, 2);
    const { train, val } = stratifiedSplitIndices(set.labels, set.files, 0.1, 0);
    expect(val.length).to.equal(2); // at least one per class
    expect(train.length).to.equal(3);
    expect(stratifiedSplitIndices(set.labels, set.files, 0, 0).val.length).to.equal(0);
    expect(() => stratifiedSplitIndices(set.labels, set.files, 1, 0)).to.throw(DataError, /valFraction/);
    expect(() => stratifiedSplitIndices(set.labels, set.files, -0.1, 0)).to.throw(DataError, /valFraction/);
    expect(() => stratifiedSplitIndices(set.labels, set.files, 0.1, 1.5)).to.throw(DataError, /seed/);
  });

  it('limitIndices takes at most `limit` per class, seeded, in ascending order', function () {
    const set = fakeSet(50, 20);
    const idx = limitIndices(set.labels, set.files, 25, 5);
    const fake = Array.from(idx).filter((i) => set.labels[i] === 0).length;
    expect([fake, idx.length - fake]).to.deep.equal([25, 20]);
    expect(Array.from(idx)).to.deep.equal(Array.from(idx).sort((a, b) => a - b));
    expect(Array.from(limitIndices(set.labels, set.files, 25, 5))).to.deep.equal(Array.from(idx));
    expect(Array.from(limitIndices(set.labels, set.files, 25, 6))).to.not.deep.equal(Array.from(idx));
  });

  it('spreads the validation picks over the whole class (not a prefix)', function () {
    const set = fakeSet(1000, 1000);
    const { val } = stratifiedSplitIndices(set.labels, set.files, 0.1, 123);
    const fakeVal = Array.from(val).filter((i) => i < 1000);
    const quarters = [0, 0, 0, 0];
    for (const i of fakeVal) quarters[Math.floor(i / 250)]++;
    for (const q of quarters) expect(q).to.be.within(10, 45);
  });
});

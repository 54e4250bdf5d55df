// The real CIFAKE zip (CIFAKE_DATA or CIFAKE_ZIP, else ../shared/data/cifake-dev.zip from the
// repository root): one ingest of both splits into a temporary cache, then a cached load. Skipped
// when the zip is absent.
import { expect } from 'chai';
import * as fs from 'node:fs';
import { cacheInfo, formatSummary, IMAGE_BYTES, loadSplit, prepare, progressBar, setJpegBinding, stratifiedSplit } from '../src/data';
import { duplicatesListPath, nativeJpeg, realDataOrSkip, TempDir } from './data-helpers';

describe('data: real CIFAKE zip (integration)', function () {
  this.timeout(15 * 60 * 1000);
  let tmp: TempDir;
  let REAL_ZIP: string;
  before(function () {
    REAL_ZIP = realDataOrSkip(this, 'the real-data integration test');
    nativeJpeg();
    tmp = new TempDir('cifake-data-integration');
  });
  after(() => {
    tmp?.remove();
    setJpegBinding(undefined);
  });

  it('ingests train 50000/50000 and test 5000/5000, then loads train from the cache', async function () {
    const cacheDir = tmp.join('cache');
    const bar = progressBar('cifake');
    let summaries;
    try {
      summaries = await prepare(REAL_ZIP, { cacheDir, onProgress: bar });
    } finally {
      bar.stop();
    }
    for (const s of summaries) console.log(`      ${formatSummary(s).split('\n').join('\n      ')}`);
    const bySplit = Object.fromEntries(summaries.map((s) => [s.split, s]));
    expect(Object.keys(bySplit).sort()).to.deep.equal(['test', 'train']);
    expect(bySplit.train.counts).to.deep.equal({ FAKE: 50000, REAL: 50000 });
    expect(bySplit.test.counts).to.deep.equal({ FAKE: 5000, REAL: 5000 });
    expect(bySplit.train.skipped.count + bySplit.test.skipped.count).to.equal(0);
    const info = await cacheInfo(cacheDir);
    expect(info.entries.map((e) => e.status)).to.deep.equal(['ok', 'ok']);

    const train = await loadSplit(REAL_ZIP, { split: 'train', cacheDir });
    console.log(`      cached load of train: ${train.summary.seconds.toFixed(2)} s`);
    expect(train.summary.cache.hit).to.equal(true);
    expect(train.count).to.equal(100000);
    expect(train.images.length).to.equal(100000 * IMAGE_BYTES);
    expect(train.files[0]).to.match(/^train\/FAKE\//);
    expect(train.files[99999]).to.match(/^train\/REAL\//);
    const { val } = stratifiedSplit(train, 0.1, 0);
    expect(val.summary.counts).to.deep.equal({ FAKE: 5000, REAL: 5000 });
    const duplicates = duplicatesListPath();
    if (duplicates !== null) {
      const test = await loadSplit(REAL_ZIP, { split: 'test', cacheDir });
      const names = new Set(test.files);
      const listed = fs.readFileSync(duplicates, 'utf8').split('\n').filter((l) => l.startsWith('test/'));
      expect(listed.every((l) => names.has(l))).to.equal(true);
    }
  });
});

// The real CIFAKE zip (CIFAKE_ZIP, default /work/shared/data/cifake-dev.zip): one ingest of both
// splits into a temporary cache, then a cached load. Skipped when the zip is absent.
import { expect } from 'chai';
import * as fs from 'node:fs';
import { cacheInfo, formatSummary, IMAGE_BYTES, loadSplit, prepare, progressBar, setJpegBinding, stratifiedSplit } from '../src/data';
import { nativeJpeg, REAL_ZIP, TempDir } from './data-helpers';

describe('data: real CIFAKE zip (integration)', function () {
  this.timeout(15 * 60 * 1000);
  let tmp: TempDir;
  before(function () {
    if (!fs.existsSync(REAL_ZIP)) {
      console.log(`      (skipped: ${REAL_ZIP} not found; set CIFAKE_ZIP to the CIFAKE zip to run it)`);
      this.skip();
    }
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
    const duplicates = '/work/shared/data/test-fake-duplicates.txt';
    if (fs.existsSync(duplicates)) {
      const test = await loadSplit(REAL_ZIP, { split: 'test', cacheDir });
      const names = new Set(test.files);
      const listed = fs.readFileSync(duplicates, 'utf8').split('\n').filter((l) => l.startsWith('test/'));
      expect(listed.every((l) => names.has(l))).to.equal(true);
    }
  });
});

// test/data-helpers.ts finds the real CIFAKE data through CIFAKE_DATA / CIFAKE_ZIP or beside the
// checkout (../shared/data), never at a fixed absolute path.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { duplicatesListPath, realDataLocation, realDataPath, SHARED_DATA_DIR, TempDir } from './data-helpers';

describe('data: locating the real data for tests', function () {
  const saved = { data: process.env.CIFAKE_DATA, zip: process.env.CIFAKE_ZIP };
  let tmp: TempDir;
  before(() => (tmp = new TempDir('cifake-data-paths')));
  afterEach(() => {
    for (const [k, v] of [['CIFAKE_DATA', saved.data], ['CIFAKE_ZIP', saved.zip]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  after(() => tmp.remove());

  it('looks in ../shared/data from the repository root by default', () => {
    delete process.env.CIFAKE_DATA;
    delete process.env.CIFAKE_ZIP;
    const repoRoot = path.resolve(__dirname, '..');
    expect(SHARED_DATA_DIR).to.equal(path.join(path.dirname(repoRoot), 'shared', 'data'));
    const expected = path.join(SHARED_DATA_DIR, 'cifake-dev.zip');
    expect(realDataPath()).to.equal(fs.existsSync(expected) ? expected : null);
    if (!fs.existsSync(expected)) expect(realDataLocation().note).to.include(expected).and.include('CIFAKE_DATA');
  });

  it('takes CIFAKE_DATA as the zip, or the folder holding it (with its duplicates list), before CIFAKE_ZIP', () => {
    const dir = tmp.join('data');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'cifake-dev.zip'), 'not really a zip');
    fs.writeFileSync(path.join(dir, 'test-fake-duplicates.txt'), 'test/FAKE/x.jpg\n');
    process.env.CIFAKE_ZIP = tmp.join('elsewhere.zip');
    process.env.CIFAKE_DATA = dir;
    expect(realDataPath()).to.equal(path.join(dir, 'cifake-dev.zip'));
    expect(duplicatesListPath()).to.equal(path.join(dir, 'test-fake-duplicates.txt'));
    process.env.CIFAKE_DATA = path.join(dir, 'cifake-dev.zip');
    expect(realDataPath()).to.equal(path.join(dir, 'cifake-dev.zip'));
    const folder = tmp.join('folder-set');
    fs.mkdirSync(path.join(folder, 'train'), { recursive: true });
    process.env.CIFAKE_DATA = folder;
    expect(realDataPath()).to.equal(folder);
  });

  it('keeps CIFAKE_ZIP working, and reports a missing path instead of guessing', () => {
    delete process.env.CIFAKE_DATA;
    const zip = tmp.join('my.zip');
    fs.writeFileSync(zip, 'x');
    process.env.CIFAKE_ZIP = zip;
    expect(realDataPath()).to.equal(zip);
    process.env.CIFAKE_ZIP = tmp.join('missing.zip');
    const loc = realDataLocation();
    expect(loc.path).to.equal(null);
    expect(loc.note).to.match(/CIFAKE_ZIP=.*missing\.zip does not exist/);
  });
});

// `evaluate`: metrics of a checkpoint on a split, without listed files, and with flip TTA.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadSplit } from '../src/data';
import { computeMetrics } from '../src/metrics';
import { CifakeModel } from '../src/model';
import { evaluate, hflipImages } from '../src/train/evaluate';
import { cifakeTree, writeFolder } from './data-helpers';
import { tinyCheckpoint } from './helpers';

describe('evaluate', function () {
  this.timeout(120_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-eval-'));
  const data = path.join(tmp, 'data');
  const ckpt = path.join(tmp, 'tiny.pt');
  const common = { data, device: 'cpu', threads: 1, cacheDir: false as const };

  before(async () => {
    writeFolder(data, await cifakeTree({ test: { FAKE: 12, REAL: 12 } }, 6));
    await tinyCheckpoint(ckpt);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('hflipImages mirrors each row of each channel, and twice is the identity', () => {
    const img = Uint8Array.from({ length: 2 * 3072 }, (_, i) => (i * 37) % 251);
    const once = hflipImages(img);
    expect(once[0]).to.equal(img[31]);
    expect(once[3072 + 2 * 1024 + 5 * 32 + 3]).to.equal(img[3072 + 2 * 1024 + 5 * 32 + 28]);
    expect(hflipImages(once)).to.deep.equal(img);
  });

  it('--tta averages the logits of each image and of its mirror', async () => {
    const plain = await evaluate(ckpt, { ...common, scores: true });
    const tta = await evaluate(ckpt, { ...common, scores: true, tta: true });
    expect(plain.tta).to.equal(false);
    expect(tta.tta).to.equal(true);
    const set = await loadSplit(data, { split: 'test', cacheDir: false });
    const { model } = await CifakeModel.load(ckpt, { device: 'cpu', threads: 1 });
    try {
      const mirrored = await model.predictLogits(hflipImages(set.images));
      const expected = Float32Array.from(plain.scores!.logits, (z, i) => (z + mirrored[i]) / 2);
      for (let i = 0; i < expected.length; i++) expect(tta.scores!.logits[i]).to.be.closeTo(expected[i], 1e-6);
      expect(tta.metrics.accuracy).to.equal(computeMetrics(expected, set.labels, { fromLogits: true }).accuracy);
      expect(Array.from(mirrored).some((z, i) => Math.abs(z - plain.scores!.logits[i]) > 1e-4), 'mirrors change the logits').to.equal(true);
    } finally {
      model.dispose();
    }
  });

  it('reports metrics without the listed images, matched by split/class/file', async () => {
    const list = path.join(tmp, 'exclude.txt');
    fs.writeFileSync(list, ['# duplicates', 'archive/test/FAKE/0 (1).jpg', 'test/FAKE/1 (2).jpg', 'test/FAKE/not-there.jpg', ''].join('\n'));
    const r = await evaluate(ckpt, { ...common, excludeList: list });
    expect(r.metrics.n).to.equal(24);
    expect(r.withoutExcluded).to.deep.include({ excluded: 2, listed: 3 });
    expect(r.withoutExcluded!.metrics.n).to.equal(22);
    await evaluate(ckpt, { ...common, excludeList: path.join(tmp, 'missing.txt') }).then(
      () => expect.fail('resolved'),
      (e: Error) => expect(e.message).to.match(/cannot read exclude list .*missing\.txt/),
    );
  });
});

// The detector shipped in models/: the file against its manifest and model card, loading without a
// model argument, the CLI saying which model it uses, and (where the real test half is present)
// its accuracy on 2,000 test images against the card's figure.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Classifier } from '../src/classifier';
import { limitIndices, loadSplit, subsetImageSet } from '../src/data';
import { CifakeModel, type CheckpointMeta } from '../src/model';
import type { EnsembleMeta } from '../src/train/ensemble';
import { PRETRAINED_DIR, readPretrainedManifest, sha256File, type PretrainedManifest } from '../src/pretrained';
import { makePng, realDataOrSkip } from './data-helpers';
import { TEST_THREADS } from './helpers';

const ROOT = path.resolve(__dirname, '..');

describe('the pretrained detector (models/)', function () {
  this.timeout(120_000);
  let m: PretrainedManifest;
  let file: string;

  before(() => {
    const read = readPretrainedManifest();
    expect(read, 'models/manifest.json').to.not.equal(null);
    m = read as PretrainedManifest;
    file = path.join(PRETRAINED_DIR, m.file);
  });

  it('is the file its manifest and model card describe (sha256, size), and is published with the package', () => {
    expect(fs.existsSync(file), file).to.equal(true);
    expect(fs.statSync(file).size).to.equal(m.bytes);
    expect(m.bytes).to.be.below(10e6); // "a few MB at most"
    expect(sha256File(file)).to.equal(m.sha256);
    const card = fs.readFileSync(path.join(PRETRAINED_DIR, 'README.md'), 'utf8');
    for (const text of [m.sha256, m.command, m.preset, m.parameters.toLocaleString('en-US')]) expect(card, text).to.include(text);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files.some((f) => f.replace(/\/$/, '') === 'models')).to.equal(true);
    const meta = CifakeModel.readMeta(file) as CheckpointMeta & { calibration?: { temperature: number }; ensemble?: EnsembleMeta };
    expect(meta.calibration?.temperature).to.equal(m.calibration?.temperature);
    // an ensemble: the manifest and card name as many networks as the checkpoint holds
    expect(m.ensemble?.members.length ?? 1).to.equal(meta.spec.members ?? 1);
    expect(meta.ensemble?.members.length ?? 1).to.equal(meta.spec.members ?? 1);
    for (const member of m.ensemble?.members ?? []) expect(card).to.include(member.run);
  });

  it("Classifier.load() and load('pretrained') load it, tempered by its stored temperature", async () => {
    const png = await makePng(3);
    const untempered = await Classifier.load('pretrained', { threads: TEST_THREADS, temperature: 1 });
    const [raw] = await untempered.predictBatch([png]);
    untempered.dispose();
    for (const target of [undefined, 'pretrained']) {
      const clf = await Classifier.load(target, { threads: TEST_THREADS });
      try {
        expect(clf.info.checkpoint).to.equal(file);
        expect(clf.info.parameters).to.equal(m.parameters);
        expect(clf.temperature).to.equal(m.calibration?.temperature);
        expect(clf.threshold).to.equal(m.threshold ?? 0.5);
        const [p] = await clf.predictBatch([png]);
        expect(p.logit).to.be.closeTo(raw.logit / (m.calibration?.temperature ?? 1), 1e-5);
        expect(p.pReal).to.be.closeTo(1 / (1 + Math.exp(-p.logit)), 1e-9);
      } finally {
        clf.dispose();
      }
    }
  });

  it('cifake predict without --model uses it and says so', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-pretrained-'));
    try {
      const png = path.join(tmp, 'x.png');
      fs.writeFileSync(png, await makePng(5));
      const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts'), 'predict', png, '--threads', String(TEST_THREADS)], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.include('the pretrained detector shipped in the package').and.to.include(m.sha256.slice(0, 12));
      expect(r.stdout).to.match(/x\.png.*(REAL|FAKE)/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("on 2,000 real test images (1,000 per class) its accuracy is within 1 point of the model card's", async function () {
    const data = realDataOrSkip(this, "the pretrained detector's accuracy check");
    const test = await loadSplit(data, { split: 'test' });
    const set = subsetImageSet(test, limitIndices(test.labels, test.files, 1000, 1));
    expect(set.labels.length).to.equal(2000);
    const { model } = await CifakeModel.load(file, { device: 'cpu', threads: TEST_THREADS, withOptimizer: false });
    try {
      const logits = await model.predictLogits(set.images);
      // at the card's operating point: tempered P(REAL) against the shipped threshold
      const t = m.calibration?.temperature ?? 1, threshold = m.threshold ?? 0.5;
      let correct = 0;
      for (let i = 0; i < logits.length; i++) if ((1 / (1 + Math.exp(-logits[i] / t)) >= threshold ? 1 : 0) === set.labels[i]) correct++;
      const card = (m.test as { accuracy: number }).accuracy;
      expect(correct / logits.length).to.be.closeTo(card, 0.01);
    } finally {
      model.dispose();
    }
  });
});

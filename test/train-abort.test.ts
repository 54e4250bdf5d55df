// Ctrl-C (an aborted signal) during the first decode of the training data stops the run at once.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { synthesize } from '../src/data/synth';
import { train } from '../src/train/fit';

describe('training: abort during the first decode', function () {
  this.timeout(60_000);
  it('rejects naming the decode, trains nothing and leaves no run directory or cache', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-abort-'));
    try {
      const data = path.join(tmp, 'data');
      await synthesize(data, { trainPerClass: 30, testPerClass: 5, seed: 1 });
      const ac = new AbortController();
      ac.abort();
      const err = await train({ data, outDir: path.join(tmp, 'runs'), name: 'x', device: 'cpu', threads: 1, cacheDir: path.join(tmp, 'cache'), model: { family: 'lightweight' }, epochs: 1 }, { signal: ac.signal }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).to.match(/interrupted while decoding the training data/);
      expect(fs.existsSync(path.join(tmp, 'runs', 'x'))).to.equal(false);
      const cached = fs.existsSync(path.join(tmp, 'cache')) ? fs.readdirSync(path.join(tmp, 'cache')).filter((f) => !f.startsWith('.')) : [];
      expect(cached).to.deep.equal([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

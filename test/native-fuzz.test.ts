// Fuzz test of the native boundary: test/native-fuzz-child.ts calls every native function and
// method with bad arguments and loads mutated checkpoints; a crash (signal, abort) fails here.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { tinyCheckpoint } from './helpers';

describe('native fuzz', function () {
  this.timeout(180_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-fuzz-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('every call throws a JS Error or succeeds; mutated checkpoints never crash and are mostly refused', async () => {
    const ckpt = path.join(tmp, 'tiny.pt');
    await tinyCheckpoint(ckpt);
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-')); // save() with fuzzed relative paths writes here
    const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'native-fuzz-child.ts'), ckpt, '200'], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1', CIFAKE_FUZZ_TRACE: '1' },
      timeout: 150_000,
    });
    expect(r.signal, `crashed after: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`).to.equal(null);
    expect(r.status, r.stderr.split('\n').filter((l) => !/^\S+(\[\d+\])?$/.test(l)).join('\n')).to.equal(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      calls: number;
      threw: number;
      nonErrors: string[];
      checkpoints: { refused: number; accepted: number; changedButAccepted: number };
    };
    expect(summary.calls).to.be.greaterThan(1500);
    expect(summary.threw).to.be.greaterThan(summary.calls / 2);
    expect(summary.nonErrors).to.deep.equal([]);
    const c = summary.checkpoints;
    expect(c.refused + c.accepted).to.equal(200);
    // A mutation that slips through may only hit bytes nothing reads (zip padding, local header copies).
    expect(c.changedButAccepted).to.equal(0);
    expect(c.refused).to.be.greaterThan(c.accepted);
  });
});

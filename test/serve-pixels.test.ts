// cifake serve refuses an image whose header declares more pixels than the classifier
// accepts with 413 (before decoding it), and still serves normal images.
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { createServer, type CifakeServer } from '../src/serve';
import { Classifier } from '../src/classifier';
import { makePng, pngDeclaring } from './data-helpers';
import { tinyCheckpoint } from './helpers';

function post(base: string, urlPath: string, body: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${urlPath}`, { method: 'POST' }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown> }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('cifake serve: pixel limit', function () {
  this.timeout(60_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-server-pixels-'));
  const logs: string[] = [];
  let clf: Classifier;
  let svc: CifakeServer;
  let base: string;

  before(async () => {
    const ckpt = path.join(tmp, 'tiny.pt');
    await tinyCheckpoint(ckpt);
    clf = await Classifier.load(ckpt, { threads: 1, maxPixels: 64 * 64 });
    svc = createServer(clf, { log: (l) => logs.push(l) });
    base = await svc.listen(0, '127.0.0.1');
  });
  after(async () => {
    await svc.close(100);
    clf.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('answers 413 naming the size and the limit on /classify and /explain, 200 under the limit', async () => {
    const bomb = pngDeclaring(16000, 16000);
    for (const route of ['/classify', '/explain']) {
      const r = await post(base, route, bomb);
      expect(r.status, route).to.equal(413);
      expect(r.json.error).to.equal('image too large: image is 16000x16000 (256000000 pixels), over the limit of 4096 pixels (64x64) (maxPixels)');
    }
    const over = await post(base, '/classify', await makePng(3, 65));
    expect(over.status).to.equal(413);
    expect((await post(base, '/classify', await makePng(3, 64))).status).to.equal(200);
    expect((await post(base, '/classify', Buffer.from('not an image'))).status).to.equal(400);
    expect(logs.some((l) => / 413 image too large/.test(l))).to.equal(true);
  });
});

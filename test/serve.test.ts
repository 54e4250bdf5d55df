// cifake serve (src/serve): the HTTP service answers images with predictions and Grad-CAM, v2
// tensors, metrics and its page, every bad request with a 4xx JSON error, overload with 503s, and
// shuts down gracefully, without falling over.
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { createServer, type CifakeServer } from '../src/serve';
import { Classifier } from '../src/classifier';
import { makeJpeg, makePng, makeWebp } from './data-helpers';
import { request, type Reply } from './http-helpers';
import { tinyCheckpoint } from './helpers';


describe('cifake serve', function () {
  this.timeout(60_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-server-'));
  const ckpt = path.join(tmp, 'tiny.pt');
  const logs: string[] = [];
  let clf: Classifier;
  let svc: CifakeServer;
  let base: string;
  let jpeg: Buffer;
  let png: Buffer;
  let webp: Buffer;

  before(async () => {
    await tinyCheckpoint(ckpt);
    clf = await Classifier.load(ckpt, { threads: 1 });
    svc = createServer(clf, { maxBodyBytes: 64 * 1024, log: (l) => logs.push(l) });
    base = await svc.listen(0, '127.0.0.1');
    jpeg = await makeJpeg(1);
    png = await makePng(2);
    webp = await makeWebp(3);
  });
  after(async () => {
    await svc.close(100);
    clf.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('listens on loopback, on a free port', () => {
    expect(base).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(base.split(':')[2])).to.be.greaterThan(0);
  });

  it('POST /classify answers JPEG, PNG and WebP bodies with the prediction of Classifier.predict', async () => {
    for (const [name, body] of [
      ['jpeg', jpeg],
      ['png', png],
      ['webp', webp],
    ] as const) {
      const r = await request(base, 'POST', '/classify', body, { 'content-type': `image/${name}` });
      expect(r.status, name).to.equal(200);
      expect(r.headers['content-type']).to.match(/^application\/json/);
      const got = r.json();
      expect(Object.keys(got).sort()).to.deep.equal(['label', 'pFake', 'pReal']);
      const want = await clf.predict(body);
      expect(got.pReal, name).to.be.closeTo(want.pReal, 1e-6);
      expect(got.pFake, name).to.be.closeTo(want.pFake, 1e-6);
      expect(got.label, name).to.equal(want.label);
    }
    // Any body type label, as curl --data-binary sends (application/x-www-form-urlencoded) or none.
    expect((await request(base, 'POST', '/classify', jpeg, { 'content-type': 'application/x-www-form-urlencoded' })).status).to.equal(200);
    expect((await request(base, 'POST', '/classify', jpeg)).status).to.equal(200);
    // Larger images are resized to 32x32.
    expect((await request(base, 'POST', '/classify', await makePng(4, 100))).status).to.equal(200);
  });

  it('answers 40 concurrent requests (coalesced into shared batches) each with its own prediction', async () => {
    const bodies = await Promise.all(Array.from({ length: 40 }, (_, i) => makeJpeg(500 + i)));
    const replies = await Promise.all(bodies.map((b) => request(base, 'POST', '/classify', b)));
    const want = await clf.predictBatch(bodies);
    replies.forEach((r, i) => {
      expect(r.status).to.equal(200);
      expect(r.json().pReal).to.be.closeTo(want[i].pReal, 1e-6);
    });
  });

  it('GET /healthz reports the model and counters', async () => {
    const r = await request(base, 'GET', '/healthz');
    expect(r.status).to.equal(200);
    const h = r.json() as { status: string; model: { family: string; parameters: number; checkpoint: string }; stats: { images: number } };
    expect(h.status).to.equal('ok');
    expect(h.model.family).to.equal('lightweight');
    expect(h.model.checkpoint).to.equal(path.basename(ckpt)); // no absolute paths
    expect(h.stats.images).to.be.greaterThan(0);
    expect((await request(base, 'HEAD', '/healthz')).status).to.equal(200);
  });

  it('POST /explain returns a Grad-CAM summary, the full map on request, or a PNG', async () => {
    const r = await request(base, 'POST', '/explain', jpeg);
    expect(r.status).to.equal(200);
    const e = r.json() as {
      label: string;
      pReal: number;
      target: string;
      layer: string;
      method: string;
      map: { size: number; peak: { x: number; y: number; value: number }; mean: number; coverage: number; grid: number[][]; map?: number[][] };
    };
    const want = await clf.predict(jpeg);
    expect(e.pReal).to.be.closeTo(want.pReal, 1e-5);
    expect(e.label).to.equal(want.label);
    expect(e.target).to.equal(want.label); // target 'pred'
    expect(e.method).to.equal('gradcam');
    expect(clf.native.description.layers).to.include(e.layer);
    expect(e.map.size).to.equal(32);
    expect(e.map.peak.x).to.be.within(0, 31);
    expect(e.map.peak.y).to.be.within(0, 31);
    expect(e.map.coverage).to.be.within(0, 1);
    expect(e.map.grid).to.have.length(8);
    for (const row of e.map.grid) {
      expect(row).to.have.length(8);
      for (const v of row) expect(v).to.be.within(0, 1);
    }
    expect(e.map.map).to.equal(undefined);

    const full = (await request(base, 'POST', '/explain?map=1&target=real&method=hirescam', jpeg)).json() as typeof e;
    expect(full.target).to.equal('REAL');
    expect(full.method).to.equal('hirescam');
    expect(full.map.map).to.have.length(32);
    expect(full.map.map![full.map.peak.y][full.map.peak.x]).to.be.closeTo(full.map.peak.value, 1e-3);

    const p = await request(base, 'POST', '/explain?format=png', png);
    expect(p.status).to.equal(200);
    expect(p.headers['content-type']).to.equal('image/png');
    expect(p.headers['x-cifake-label']).to.match(/^(REAL|FAKE)$/);
    expect(Number(p.headers['x-cifake-p-real'])).to.be.within(0, 1);
    const meta = await sharp(p.body).metadata();
    expect(meta.format).to.equal('png');
    expect(meta.width).to.be.greaterThan(meta.height!); // a triptych
  });

  describe('bad requests: 4xx JSON, and the service keeps serving', () => {
    const cases: Array<[string, () => Promise<Reply>, number, RegExp]> = [
      ['empty body', () => request(base, 'POST', '/classify', Buffer.alloc(0)), 400, /empty body/],
      ['text instead of an image', () => request(base, 'POST', '/classify', Buffer.from('hello, world')), 400, /not a readable image.*unsupported image format/],
      ['a truncated JPEG', () => request(base, 'POST', '/classify', jpeg.subarray(0, jpeg.length >> 1)), 400, /not a readable image/],
      ['a multipart form', () => request(base, 'POST', '/classify', jpeg, { 'content-type': 'multipart/form-data; boundary=x' }), 415, /image file itself/],
      ['too large (Content-Length)', () => request(base, 'POST', '/classify', Buffer.alloc(200 * 1024, 1)), 413, /too large.*65536/],
      ['too large (chunked, counted while streaming)', () => request(base, 'POST', '/classify', { chunks: Array.from({ length: 40 }, () => Buffer.alloc(8192, 7)) }), 413, /too large/],
      ['an explain body too large', () => request(base, 'POST', '/explain?format=png', Buffer.alloc(100 * 1024)), 413, /too large/],
      ['GET /classify', () => request(base, 'GET', '/classify'), 405, /takes POST/],
      ['POST /healthz', () => request(base, 'POST', '/healthz', jpeg), 405, /takes GET/],
      ['an unknown path', () => request(base, 'POST', '/predict', jpeg), 404, /no route \/predict/],
      ['an unknown explain target', () => request(base, 'POST', '/explain?target=cat', jpeg), 400, /target: expected one of pred, real, fake/],
      ['an unknown layer', () => request(base, 'POST', '/explain?layer=conv9', jpeg), 400, /unknown layer 'conv9' \(valid: conv1/],
      ['an unknown format', () => request(base, 'POST', '/explain?format=gif', jpeg), 400, /format/],
    ];
    for (const [name, send, status, message] of cases) {
      it(`${name} -> ${status}`, async () => {
        const r = await send();
        expect(r.status).to.equal(status);
        expect(r.headers['content-type']).to.match(/^application\/json/);
        expect(r.json().error).to.match(message);
        if (status === 405) expect(r.headers.allow).to.be.a('string');
        const ok = await request(base, 'POST', '/classify', jpeg);
        expect(ok.status).to.equal(200);
      });
    }

    it('survives a client that disconnects mid-upload', async () => {
      await new Promise<void>((resolve) => {
        const req = http.request(`${base}/classify`, { method: 'POST', headers: { 'content-length': 10_000 } });
        req.on('error', () => resolve());
        req.write(jpeg.subarray(0, 100), () => setTimeout(() => req.destroy(), 20));
        req.on('close', () => resolve());
      });
      await new Promise((r) => setTimeout(r, 50));
      expect((await request(base, 'POST', '/classify', jpeg)).status).to.equal(200);
      expect(logs.some((l) => / 500 |internal error/.test(l))).to.equal(false);
    });
  });

  it('drops a client that stalls mid-upload after requestTimeoutMs (408)', async () => {
    const s = createServer(clf, { requestTimeoutMs: 400, log: () => {} });
    const url = await s.listen();
    try {
      const status = await new Promise<number | string>((resolve) => {
        const req = http.request(`${url}/classify`, { method: 'POST', headers: { 'content-length': 5000 } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        req.write(jpeg.subarray(0, 100)); // ...and never the rest
      });
      expect(status).to.be.oneOf([408, 'ECONNRESET']);
      expect((await request(url, 'POST', '/classify', jpeg)).status).to.equal(200);
    } finally {
      await s.close(100);
    }
  });

  it('answers 503 once its classifier is disposed', async () => {
    const c = await Classifier.load(ckpt, { threads: 1 });
    const s = createServer(c, { log: () => {} });
    const url = await s.listen();
    try {
      expect((await request(url, 'POST', '/classify', jpeg)).status).to.equal(200);
      c.dispose();
      for (const [method, p] of [
        ['POST', '/classify'],
        ['POST', '/explain'],
        ['GET', '/healthz'],
      ]) {
        const r = await request(url, method, p, method === 'POST' ? jpeg : undefined);
        expect(r.status, p).to.equal(503);
        expect(r.json().error).to.match(/unloaded/);
      }
    } finally {
      await s.close(100);
    }
  });
});

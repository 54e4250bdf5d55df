// cifake serve: KServe v2 routes, /metrics, JSON batches, the pixel limit, backpressure under a slow
// model, inference timeouts, graceful shutdown, the CLI, and the web page in headless Chromium.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import yauzl from 'yauzl';

import { Classifier } from '../src/classifier';
import { createServer, type CifakeServer } from '../src/serve';
import { makeJpeg, pngDeclaring, realDataPath } from './data-helpers';
import { useChromium } from './browser-helpers';
import { request } from './http-helpers';
import { tinyCheckpoint } from './helpers';

const ROOT = path.resolve(__dirname, '..');

/** The first test/REAL and test/FAKE JPEGs of the real zip, or null where it is absent. */
function realTestImages(): Promise<Buffer[] | null> {
  const zipPath = realDataPath();
  if (!zipPath || !zipPath.endsWith('.zip')) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const found: Record<string, Buffer> = {};
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      zip.on('entry', (e: yauzl.Entry) => {
        const m = /(^|\/)test\/(REAL|FAKE)\/[^/]+\.jpe?g$/i.exec(e.fileName);
        if (!m || found[m[2]]) return zip.readEntry();
        zip.openReadStream(e, (er, s) => {
          if (er || !s) return reject(er);
          const parts: Buffer[] = [];
          s.on('data', (c: Buffer) => parts.push(c));
          s.on('end', () => {
            found[m[2]] = Buffer.concat(parts);
            if (found.REAL && found.FAKE) {
              zip.close();
              resolve([found.REAL, found.FAKE]);
            } else zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(Object.values(found)));
      zip.readEntry();
    });
  });
}

/** A Classifier whose inference waits `delayMs` first: a slow model for backpressure tests. */
function slowed(clf: Classifier, delayMs: number): Classifier {
  const wait = () => new Promise((r) => setTimeout(r, delayMs));
  return new Proxy(clf, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop === 'predict' || prop === 'predictBatch' || prop === 'predictDecoded')
        return async (...args: unknown[]) => {
          await wait();
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('cifake serve: protocol, limits and overload', function () {
  this.timeout(120_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-serve-'));
  const ckpt = path.join(tmp, 'tiny.pt');
  let clf: Classifier;
  let svc: CifakeServer;
  let base: string;
  let jpeg: Buffer;

  before(async () => {
    await tinyCheckpoint(ckpt);
    clf = await Classifier.load(ckpt, { threads: 1, maxPixels: 1000 * 1000 });
    svc = createServer(clf, { log: () => {}, maxImagesPerRequest: 8 });
    base = await svc.listen();
    jpeg = await makeJpeg(1);
  });
  after(async () => {
    await svc.close(100);
    clf.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('health and model metadata follow the v2 protocol', async () => {
    expect((await request(base, 'GET', '/v2/health/live')).json()).to.deep.equal({ live: true });
    expect((await request(base, 'GET', '/v2/health/ready')).json()).to.deep.equal({ ready: true });
    const m = (await request(base, 'GET', '/v2/models/cifake')).json() as { name: string; inputs: { shape: number[]; datatype: string }[]; outputs: { name: string }[]; parameters: { labels: string[]; threshold: number } };
    expect(m.name).to.equal('cifake');
    expect(m.inputs[0]).to.deep.include({ datatype: 'UINT8', shape: [-1, 3, 32, 32] });
    expect(m.outputs.map((o) => o.name)).to.deep.equal(['logit', 'p_real', 'label']);
    expect(m.parameters.labels).to.deep.equal(['FAKE', 'REAL']);
    expect(m.parameters.threshold).to.equal(clf.threshold);
    expect((await request(base, 'GET', '/v2/models/other')).status).to.equal(404);
  });

  it('v2 infer on UINT8 and FP32 tensors equals Classifier predictions of the same pixels', async () => {
    const images = await clf.decode([jpeg, await makeJpeg(2)]);
    const want = await clf.predictDecoded(images);
    const u8 = await request(base, 'POST', '/v2/models/cifake/infer', JSON.stringify({ id: 'a', inputs: [{ name: 'images', shape: [2, 3, 32, 32], datatype: 'UINT8', data: Array.from(images) }] }), { 'content-type': 'application/json' });
    expect(u8.status).to.equal(200);
    const r = u8.json() as { id: string; outputs: { name: string; data: (number | string)[]; shape: number[] }[] };
    expect(r.id).to.equal('a');
    const [logit, pReal, label] = r.outputs;
    expect(logit.shape).to.deep.equal([2]);
    want.forEach((p, i) => {
      expect(logit.data[i] as number).to.be.closeTo(p.logit, 1e-5);
      expect(pReal.data[i] as number).to.be.closeTo(p.pReal, 1e-6);
      expect(label.data[i]).to.equal(p.label);
    });
    const fp = await request(base, 'POST', '/v2/models/cifake/infer', JSON.stringify({ inputs: [{ name: 'images', shape: [2, 3, 32, 32], datatype: 'FP32', data: Array.from(images, (v) => v / 255) }], outputs: [{ name: 'p_real' }] }), { 'content-type': 'application/json' });
    const f = fp.json() as { outputs: { name: string; data: number[] }[] };
    expect(f.outputs.map((o) => o.name)).to.deep.equal(['p_real']);
    f.outputs[0].data.forEach((p, i) => expect(p).to.be.closeTo(want[i].pReal, 1e-6));
  });

  it('v2 infer errors name the field', async () => {
    const send = (body: unknown, type = 'application/json') => request(base, 'POST', '/v2/models/cifake/infer', typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': type });
    const cases: [unknown, number, RegExp][] = [
      ['{not json', 400, /invalid JSON body/],
      [{ inputs: [] }, 400, /inputs: expected one tensor/],
      [{ inputs: [{ name: 'x', shape: [1, 3, 32, 32], datatype: 'UINT8', data: [] }] }, 400, /inputs\[0\].name/],
      [{ inputs: [{ name: 'images', shape: [1, 3, 16, 16], datatype: 'UINT8', data: [] }] }, 400, /inputs\[0\].shape/],
      [{ inputs: [{ name: 'images', shape: [1, 3, 32, 32], datatype: 'INT64', data: [] }] }, 400, /datatype/],
      [{ inputs: [{ name: 'images', shape: [1, 3, 32, 32], datatype: 'UINT8', data: [1, 2] }] }, 400, /expected 3072 values/],
      [{ inputs: [{ name: 'images', shape: [1, 3, 32, 32], datatype: 'UINT8', data: new Array(3072).fill(300) }] }, 400, /data\[0\] = 300/],
      [{ inputs: [{ name: 'images', shape: [9, 3, 32, 32], datatype: 'UINT8', data: [] }] }, 413, /9 images in one request; the limit is 8/],
    ];
    for (const [body, status, message] of cases) {
      const r = await send(body);
      expect(r.status, JSON.stringify(body).slice(0, 60)).to.equal(status);
      expect(r.json().error).to.match(message);
    }
    expect((await send('{}', 'text/plain')).status).to.equal(415);
    expect((await request(base, 'GET', '/v2/models/cifake/infer')).status).to.equal(405);
  });

  it('POST /classify takes a JSON batch of base64 images', async () => {
    const bodies = [jpeg, await makeJpeg(3)];
    const r = await request(base, 'POST', '/classify', JSON.stringify({ images: bodies.map((b) => b.toString('base64')) }), { 'content-type': 'application/json' });
    expect(r.status).to.equal(200);
    const want = await clf.predictBatch(bodies);
    (r.json().predictions as { pReal: number }[]).forEach((p, i) => expect(p.pReal).to.be.closeTo(want[i].pReal, 1e-6));
    expect((await request(base, 'POST', '/classify', JSON.stringify({ images: [] }), { 'content-type': 'application/json' })).status).to.equal(400);
    expect((await request(base, 'POST', '/classify', 'hello', { 'content-type': 'text/plain' })).status).to.equal(415);
  });

  it('refuses an image whose header declares too many pixels (413) before decoding it', async () => {
    const bomb = pngDeclaring(16000, 16000);
    const r = await request(base, 'POST', '/classify', bomb, { 'content-type': 'image/png' });
    expect(r.status).to.equal(413);
    expect(r.json().error).to.match(/image is 16000x16000 \(256000000 pixels\), over the limit of 1000000 pixels/);
    expect((await request(base, 'POST', '/explain', bomb, { 'content-type': 'image/png' })).status).to.equal(413);
  });

  it('exposes Prometheus metrics: requests by route and status, latency, batch sizes, queue depth', async () => {
    await request(base, 'POST', '/classify', jpeg);
    await request(base, 'GET', '/nowhere');
    const text = (await request(base, 'GET', '/metrics')).body.toString('utf8');
    expect(text).to.match(/cifake_requests_total\{route="\/classify",status="200"\} \d+/);
    expect(text).to.match(/cifake_requests_total\{route="other",status="404"\} 1/);
    expect(text).to.match(/cifake_request_duration_seconds_bucket\{le="0.1",route="\/classify"\} \d+/);
    expect(text).to.match(/cifake_batch_size_count [1-9]\d*/);
    expect(text).to.match(/cifake_queue_depth 0/);
  });

  it('sheds load with 503 + Retry-After past its queue, answers the admitted, and recovers', async () => {
    const slow = createServer(slowed(clf, 300), { maxQueue: 3, log: () => {} });
    const url = await slow.listen();
    try {
      const replies = await Promise.all(Array.from({ length: 12 }, () => request(url, 'POST', '/classify', jpeg)));
      const ok = replies.filter((r) => r.status === 200), busy = replies.filter((r) => r.status === 503);
      expect(ok.length + busy.length).to.equal(12);
      expect(ok.length).to.be.at.least(3);
      expect(busy.length).to.be.at.least(1);
      for (const b of busy) {
        expect(b.headers['retry-after']).to.equal('1');
        expect(b.json().error).to.match(/server busy: 3 requests in progress \(limit 3\)/);
      }
      expect((await slow.metrics.text())).to.match(new RegExp(`cifake_rejected_total ${busy.length}`));
      expect((await request(url, 'POST', '/classify', jpeg)).status).to.equal(200);
    } finally {
      await slow.close(100);
    }
  });

  it('answers 504 when inference takes longer than its timeout', async () => {
    const slow = createServer(slowed(clf, 400), { inferenceTimeoutMs: 50, log: () => {} });
    const url = await slow.listen();
    try {
      const r = await request(url, 'POST', '/classify', jpeg);
      expect(r.status).to.equal(504);
      expect(r.json().error).to.match(/did not finish within 50 ms/);
    } finally {
      await slow.close(1000);
    }
  });

  it('shuts down gracefully: a request in flight completes, then it closes and refuses new connections', async () => {
    const slow = createServer(slowed(clf, 300), { log: () => {} });
    const url = await slow.listen();
    const inflight = request(url, 'POST', '/classify', jpeg);
    await new Promise((r) => setTimeout(r, 50));
    const closed = slow.close(5000);
    const r = await inflight;
    expect(r.status).to.equal(200);
    await closed;
    let refused = false;
    await request(url, 'GET', '/v2/health/live').catch(() => (refused = true));
    expect(refused).to.equal(true);
  });

  it('cifake serve starts, answers, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'bin', 'cifake.ts'), 'serve', '--model', ckpt, '--port', '0', '--threads', '1'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    expect((await request(url, 'POST', '/classify', jpeg)).status).to.equal(200);
    const exit = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
    child.kill('SIGTERM');
    expect(await exit).to.deep.equal([0, null]);
  });

  describe('the page in headless Chromium', function () {
    const browser = useChromium();

    it('uploads a test image and shows the verdict, P(REAL) and the Grad-CAM overlay', async () => {
      const real = await realTestImages();
      if (!real) console.log('      (no real data zip found: a generated JPEG instead)');
      const images = real ?? [jpeg];
      const page = await browser().newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
      await page.goto(base + '/');
      for (const [i, img] of images.entries()) {
        const file = path.join(tmp, `upload-${i}.jpg`);
        fs.writeFileSync(file, img);
        const want = await clf.predict(img);
        await page.setInputFiles('#file', file);
        await page.waitForSelector('#overlay:not([hidden])', { timeout: 20_000 });
        expect(await page.textContent('#verdict')).to.equal(want.label);
        expect(await page.textContent('#prob')).to.equal(`P(REAL) = ${want.pReal.toFixed(4)}`);
        const size = await page.$eval('#overlay', (el) => [(el as HTMLImageElement).naturalWidth, (el as HTMLImageElement).naturalHeight]);
        expect(size[0]).to.be.greaterThan(size[1]); // the triptych
        await page.evaluate(() => document.getElementById('overlay')!.setAttribute('hidden', ''));
      }
      expect(problems).to.deep.equal([]);
      await page.close();
    });
  });
});

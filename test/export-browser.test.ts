// The browser demo (examples/browser): built into a folder, served on loopback, opened in headless
// Chromium (Debian's, through playwright-core); onnxruntime-web's wasm backend classifies real
// CIFAKE JPEGs and its P(REAL) agrees with the package's (its libjpeg decode + native model).
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { openZipSource } from '../src/data/zip';
import { decodeImages } from '../src/data';
import { operatingPoint } from '../src/export';
import { CifakeModel } from '../src/model';
import { buildBrowserDemo } from '../examples/browser/build';
import { DATA_ZIP, EXPORT_FAMILIES, trainedModel } from './export-helpers';

const CHROMIUM = '/usr/bin/chromium';
const TYPES: Record<string, string> = { '.html': 'text/html', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.onnx': 'application/octet-stream', '.json': 'application/json' };

function serve(root: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      const index = path.join(file, 'index.html');
      if (fs.existsSync(index)) return res.writeHead(200, { 'content-type': TYPES['.html'] }).end(fs.readFileSync(index));
      return res.writeHead(404).end();
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** `perClass` JPEG files of each class of the zip's test split, as bytes. */
async function realJpegs(perClass: number): Promise<{ name: string; bytes: Buffer }[]> {
  const src = await openZipSource(DATA_ZIP);
  try {
    const out: { name: string; bytes: Buffer }[] = [];
    for (const cls of ['test/REAL', 'test/FAKE']) {
      const files = (await src.walk(cls)).slice(0, perClass);
      const reads = await src.read(files);
      reads.forEach((r, i) => {
        if (Buffer.isBuffer(r)) out.push({ name: files[i].path, bytes: Buffer.from(r) });
      });
    }
    return out;
  } finally {
    await src.close();
  }
}

describe('export: the browser demo in headless Chromium (onnxruntime-web, wasm)', function () {
  this.timeout(180_000);
  type Browser = import('playwright-core').Browser;
  let browser: Browser | null = null;
  let server: http.Server | null = null;
  let dir: string;
  let ckpt: string;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.log(`      skipped: ${CHROMIUM} not found (apt-get install chromium)`);
      this.skip();
    }
    if (!fs.existsSync(DATA_ZIP)) {
      console.log(`      skipped: CIFAKE zip not found at ${DATA_ZIP} (set CIFAKE_DATA)`);
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-browser-'));
    // CIFAKE_BROWSER_MODEL: check a real checkpoint instead of a tiny generated-data one.
    ckpt = process.env.CIFAKE_BROWSER_MODEL ?? path.join(dir, 'model.pt');
    if (!process.env.CIFAKE_BROWSER_MODEL) {
      const m = await trainedModel(EXPORT_FAMILIES[2].spec);
      await m.save(ckpt, { config: { threshold: 0.5 }, calibration: { temperature: 1.25, youdenThreshold: 0.5 } });
      m.dispose();
    }
    await buildBrowserDemo({ model: ckpt, out: path.join(dir, 'site') });
    server = await serve(path.join(dir, 'site'));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });

  after(async () => {
    await browser?.close();
    server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('classifies real 32x32 JPEGs like the package does (|dP(REAL)| < 1e-3), from local files only', async () => {
    const perClass = Number(process.env.CIFAKE_BROWSER_IMAGES ?? 10);
    const jpegs = await realJpegs(perClass);
    expect(jpegs.length).to.equal(2 * perClass);
    const { images } = await decodeImages(jpegs.map((j) => j.bytes));
    const { model, meta } = await CifakeModel.load(ckpt, { device: 'cpu', threads: 1, withOptimizer: false });
    const { temperature, threshold } = operatingPoint(meta);
    const native = Array.from(await model.predictLogits(images), (z) => 1 / (1 + Math.exp(-z / temperature)));
    model.dispose();

    const origin = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('request', (q) => !q.url().startsWith(origin) && !q.url().startsWith('blob:') && !q.url().startsWith('data:') && problems.push(`external request: ${q.url()}`));
    try {
      await page.goto(`${origin}/`, { waitUntil: 'load' });
      await page.waitForFunction(() => (window as unknown as { cifake?: unknown }).cifake !== undefined);
      await page.evaluate(() => (window as unknown as { cifake: { ready: Promise<boolean> } }).cifake.ready);
      expect(await page.textContent('#status')).to.contain(`model: ${meta.spec.family}, threshold ${threshold}`).and.contain(temperature === 1 ? '' : `temperature ${temperature}`);
      const browserP: number[] = [];
      for (const j of jpegs) {
        const r = await page.evaluate(
          (b64) => (window as unknown as { cifake: { classifyBytes(b: string): Promise<{ pReal: number; label: string }> } }).cifake.classifyBytes(b64),
          j.bytes.toString('base64'),
        );
        browserP.push(r.pReal);
        expect(r.label).to.equal(r.pReal >= threshold ? 'REAL' : 'FAKE');
      }
      let worst = 0;
      browserP.forEach((p, i) => (worst = Math.max(worst, Math.abs(p - native[i]))));
      console.log(`      max |P(REAL) browser - native| over ${jpegs.length} real JPEGs: ${worst.toExponential(2)}`);
      expect(worst).to.be.below(1e-3);
      expect(Math.max(...native) - Math.min(...native)).to.be.above(1e-3);
      // the page's own path: a file dropped on the input shows the same P(REAL)
      await page.setInputFiles('#file', { name: 'x.jpg', mimeType: 'image/jpeg', buffer: jpegs[0].bytes });
      await page.waitForFunction(() => /P\(REAL\)/.test(document.getElementById('label')?.textContent ?? ''));
      const shown = Number((await page.textContent('#label'))!.match(/P\(REAL\) = ([0-9.]+)/)![1]);
      expect(Math.abs(shown - native[0])).to.be.below(1e-3);
      expect(problems).to.deep.equal([]);
    } finally {
      await page.close();
    }
  });
});

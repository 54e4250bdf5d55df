/**
 * `cifake serve`: an HTTP inference service around a Classifier (node:http, no framework).
 *
 * Routes (Open Inference Protocol / KServe v2 where it fits, plus friendly ones):
 *   GET  /                              the web page (drop an image: verdict, P(REAL), Grad-CAM overlay)
 *   GET  /v2/health/live                200 while the process runs
 *   GET  /v2/health/ready               200 while accepting work, 503 while shutting down
 *   GET  /v2/models/<name>[/ready]      metadata (inputs, outputs, labels, threshold, temperature)
 *   POST /v2/models/<name>/infer        v2 JSON tensors ("images": [N, 3, 32, 32] UINT8 or FP32)
 *   POST /classify                      raw JPEG/PNG/WebP bytes -> {label, pReal, pFake};
 *                                       or JSON {images: [base64, ...]} -> {predictions: [...]}
 *   POST /explain                       raw image bytes -> Grad-CAM JSON, or ?format=png a triptych PNG
 *   GET  /metrics                       Prometheus text
 *   GET  /healthz                       {status, model (no paths), stats}
 * Errors are JSON {error}: 400 bad input, 404 unknown route or model, 405 wrong method, 408 a body
 * that does not arrive in time, 413 body or pixel count over the limit, 415 unsupported content
 * type, 503 queue full (with Retry-After) or shutting down, 504 inference past its timeout.
 *
 * Memory stays bounded: at most `maxQueue` requests are admitted at once (each holds at most
 * `maxBodyBytes`), image headers are checked against the Classifier's `maxPixels` before decoding, and concurrent
 * requests share native calls through the Classifier's micro-batching (maxBatch, maxWaitMs).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import type { Classifier, ImageInput, Prediction } from '../classifier';
import { renderTriptych } from '../gradcam/render';
import { checkImageUpload, HttpError, oneOf, parseJsonBody, readBody, sendBody, sendJson } from './http';
import { ServeMetrics } from './metrics';
import { PAGE_HTML } from './page';
import { inferResponse, modelMetadata, parseInferRequest } from './v2';

export interface ServeOptions {
  /** model name in the v2 routes (default 'cifake') */
  modelName?: string;
  /** largest accepted body in bytes (default 5 MiB) */
  maxBodyBytes?: number;
  /** requests admitted at once (reading, queued or running); past it: 503 with Retry-After (default 64) */
  maxQueue?: number;
  /** images in one /classify JSON batch or v2 infer request (default 256) */
  maxImagesPerRequest?: number;
  /** inference timeout per request in ms; past it: 504 (default 30 s) */
  inferenceTimeoutMs?: number;
  /** a request body that has not fully arrived in this time: 408 (default 30 s) */
  requestTimeoutMs?: number;
  /** one line per failed request and per service fault (default: console.error) */
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

const TARGETS = ['pred', 'real', 'fake'] as const;
/** Routes that answer without a loaded model. */
const ALWAYS_UP = new Set(['/', '/v2/health/live', '/v2/health/ready', '/metrics']);
const METHODS = ['gradcam', 'hirescam'] as const;

export interface CifakeServer {
  server: http.Server;
  metrics: ServeMetrics;
  /** Listens on host:port (port 0 = any free one) and resolves the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting, lets admitted requests finish (at most graceMs), then closes; resolves when closed. */
  close(graceMs?: number): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(504, `inference did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const publicPrediction = ({ label, pReal, pFake }: Prediction) => ({ label, pReal, pFake });

/** A compact description of a 32x32 map with peak 1: where it peaks, how much it covers, an 8x8 overview. */
export function summarizeMap(map: Float32Array, side = 32, includeMap = false) {
  const round = (x: number, digits = 4) => Number(x.toFixed(digits));
  let peak = 0, sum = 0, above = 0;
  for (let k = 0; k < map.length; k++) {
    if (map[k] > map[peak]) peak = k;
    sum += map[k];
    if (map[k] >= 0.5) above++;
  }
  const cells = 8, step = side / cells;
  const grid: number[][] = [];
  for (let gy = 0; gy < cells; gy++) {
    const row: number[] = [];
    for (let gx = 0; gx < cells; gx++) {
      let s = 0;
      for (let y = gy * step; y < (gy + 1) * step; y++) for (let x = gx * step; x < (gx + 1) * step; x++) s += map[y * side + x];
      row.push(round(s / (step * step), 3));
    }
    grid.push(row);
  }
  return {
    size: side,
    peak: { x: peak % side, y: Math.floor(peak / side), value: round(map[peak] ?? 0) },
    mean: round(sum / map.length),
    /** fraction of pixels at >= half the peak */
    coverage: round(above / map.length),
    /** 8x8 means of 4x4 blocks, row-major from the top left */
    grid,
    ...(includeMap ? { map: Array.from({ length: side }, (_, y) => Array.from(map.subarray(y * side, (y + 1) * side), (v) => round(v, 3))) } : {}),
  };
}

export function createServer(clf: Classifier, opts: ServeOptions = {}): CifakeServer {
  const name = opts.modelName ?? 'cifake';
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxQueue = opts.maxQueue ?? 64;
  const maxImages = opts.maxImagesPerRequest ?? 256;
  const inferenceMs = opts.inferenceTimeoutMs ?? 30_000;
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const log = opts.log ?? ((line: string) => console.error(line));
  const metrics = new ServeMetrics();
  const started = Date.now();
  let admitted = 0;
  let closing = false;
  let drained: (() => void) | null = null;
  const unsubscribe = clf.onBatch((n) => metrics.batchSize.observe(n));
  const v2 = `/v2/models/${name}`;

  const predictOne = (input: ImageInput) => withTimeout(clf.predict(input), inferenceMs);

  async function classify(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req, limit);
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    if (type.startsWith('application/json')) {
      const json = parseJsonBody(body) as { images?: unknown };
      if (!json || !Array.isArray(json.images) || json.images.length === 0) throw new HttpError(400, 'JSON body: expected { "images": ["<base64 image>", ...] } with at least one image');
      if (json.images.length > maxImages) throw new HttpError(413, `${json.images.length} images in one request; the limit is ${maxImages}`);
      const buffers = json.images.map((b, i) => {
        if (typeof b !== 'string' || b === '') throw new HttpError(400, `images[${i}]: expected a base64 string`);
        return Buffer.from(b, 'base64');
      });
      const predictions = await withTimeout(clf.predictBatch(buffers), inferenceMs);
      sendJson(res, 200, { predictions: predictions.map(publicPrediction) });
      return;
    }
    checkImageUpload(req, body);
    sendJson(res, 200, publicPrediction(await predictOne(body)));
  }

  async function explain(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const format = oneOf('format', url.searchParams.get('format'), ['json', 'png'] as const, 'json');
    const target = oneOf('target', url.searchParams.get('target'), TARGETS, 'pred');
    const method = oneOf('method', url.searchParams.get('method'), METHODS, 'gradcam');
    const layer = url.searchParams.get('layer') || undefined;
    const { layers } = clf.native.description;
    if (layer !== undefined && !layers.includes(layer)) throw new HttpError(400, `layer: unknown layer '${layer}' (valid: ${layers.join(', ')})`);
    const body = await readBody(req, limit);
    checkImageUpload(req, body);
    const e = await withTimeout(clf.explain(body, { target, method, layer, png: format === 'png' }), inferenceMs);
    const { label, pReal, pFake } = e.prediction;
    if (format === 'png') {
      const png = e.png ?? (await renderTriptych({ image: await clf.decode([body]), map: e.map, width: 32, height: 32, normalized: true, rawMax: e.rawMax, pReal, predicted: label === 'REAL' ? 1 : 0 }));
      sendBody(res, 200, 'image/png', png, { 'x-cifake-label': label, 'x-cifake-p-real': String(pReal), 'x-cifake-target': e.target });
      return;
    }
    sendJson(res, 200, { label, pReal, pFake, target: e.target, layer: e.layer, layerSize: e.layerSize, method: e.method, rawMax: e.rawMax, map: summarizeMap(e.map, 32, url.searchParams.get('map') === '1') });
  }

  async function infer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req, limit);
    const type = (req.headers['content-type'] ?? 'application/json').toLowerCase();
    if (!type.startsWith('application/json')) throw new HttpError(415, `unsupported content type ${type.split(';')[0]}: the v2 infer route takes application/json tensors`);
    const r = parseInferRequest(parseJsonBody(body), maxImages);
    const predictions = await withTimeout(clf.predictDecoded(r.images), inferenceMs);
    sendJson(res, 200, inferResponse(name, r.id, predictions.map((p) => p.logit), predictions.map((p) => p.pReal), predictions.map((p) => p.label), r.outputs));
  }

  function metadata() {
    return modelMetadata({ name, threshold: clf.threshold, temperature: clf.temperature, parameters: clf.info.parameters, family: clf.info.family });
  }

  type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> | void;
  const routes: Record<string, { method: 'GET' | 'POST'; handler: Handler; work?: boolean }> = {
    '/': { method: 'GET', handler: (_q, res) => sendBody(res, 200, 'text/html; charset=utf-8', PAGE_HTML) },
    '/v2/health/live': { method: 'GET', handler: (_q, res) => sendJson(res, 200, { live: true }) },
    '/v2/health/ready': { method: 'GET', handler: (_q, res) => (closing || clf.disposed ? sendJson(res, 503, { ready: false }) : sendJson(res, 200, { ready: true })) },
    [v2]: { method: 'GET', handler: (_q, res) => sendJson(res, 200, metadata()) },
    [`${v2}/ready`]: { method: 'GET', handler: (_q, res) => sendJson(res, closing ? 503 : 200, { name, ready: !closing }) },
    [`${v2}/infer`]: { method: 'POST', handler: infer, work: true },
    '/classify': { method: 'POST', handler: classify, work: true },
    '/explain': { method: 'POST', handler: explain, work: true },
    '/metrics': { method: 'GET', handler: async (_q, res) => sendBody(res, 200, metrics.registry.contentType, await metrics.text()) },
    '/healthz': {
      method: 'GET',
      handler: (_q, res) => {
        const { checkpoint, ...info } = clf.info;
        sendJson(res, 200, { status: closing ? 'closing' : 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000), model: { ...info, checkpoint: path.basename(checkpoint) }, stats: clf.stats, admitted });
      },
    },
  };

  async function route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const r = routes[url.pathname];
    if (!r) {
      if (url.pathname.startsWith('/v2/models/')) throw new HttpError(404, `unknown model '${url.pathname.split('/')[3]}' (this server serves '${name}')`);
      throw new HttpError(404, `no route ${url.pathname} (GET /, POST /classify, POST /explain, POST ${v2}/infer, GET ${v2}, GET /metrics, GET /v2/health/live|ready)`);
    }
    if (req.method !== r.method && !(r.method === 'GET' && req.method === 'HEAD'))
      throw new HttpError(405, `${url.pathname} takes ${r.method}, not ${req.method}`, { allow: r.method === 'GET' ? 'GET, HEAD' : r.method });
    if (clf.disposed && !ALWAYS_UP.has(url.pathname)) throw new HttpError(503, 'the model is unloaded (the service is shutting down)');
    if (!r.work) return r.handler(req, res, url);
    if (closing) throw new HttpError(503, 'the service is shutting down', { 'retry-after': '5', connection: 'close' });
    if (admitted >= maxQueue) {
      metrics.rejected.inc();
      throw new HttpError(503, `server busy: ${admitted} requests in progress (limit ${maxQueue}); retry shortly`, { 'retry-after': '1' });
    }
    admitted++;
    metrics.queueDepth.set(admitted);
    try {
      await r.handler(req, res, url);
    } finally {
      admitted--;
      metrics.queueDepth.set(admitted);
      if (admitted === 0 && drained) drained();
    }
  }

  function fail(req: http.IncomingMessage, res: http.ServerResponse, url: URL, e: unknown): number {
    const err = e as Error & { code?: string };
    let status: number, message: string, headers: Record<string, string> = {};
    if (e instanceof HttpError) ({ status, message, headers } = e);
    else if (err?.code === 'ERR_CIFAKE_INPUT' && (e as { kind?: string }).kind === 'too-large') {
      // The header declares more pixels than the classifier accepts (its maxPixels): refused before decoding.
      status = 413;
      message = `image too large: ${err.message.replace(/^input\[\d+\] \(\d+ bytes\): /, '')}`;
    } else if (err?.code === 'ERR_CIFAKE_INPUT') {
      status = 400;
      message = `not a readable image (JPEG, PNG or WebP expected): ${err.message.replace(/^input\[\d+\] \(\d+ bytes\): /, '')}`;
    } else if (/disposed/.test(err?.message ?? '')) {
      status = 503;
      message = 'the model is unloaded (the service is shutting down)';
    } else {
      status = 500;
      message = 'internal error';
      log(`${req.method} ${url.pathname}: ${err?.stack ?? String(e)}`);
    }
    metrics.errors.inc({ kind: status >= 500 ? String(status) : 'client' });
    if (status !== 500) log(`${req.method} ${url.pathname}: ${status} ${message}`);
    if (res.headersSent) {
      res.destroy();
      return status;
    }
    sendJson(res, status, { error: message }, headers);
    if (headers.connection === 'close') {
      // Stop reading an oversized upload: discard what is in flight, then drop the connection.
      req.resume();
      setTimeout(() => req.destroy(), 1000).unref();
    }
    return status;
  }

  const handler: http.RequestListener = (req, res) => {
    const t0 = process.hrtime.bigint();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    const known = routes[url.pathname] ? url.pathname : url.pathname.startsWith('/v2/models/') ? '/v2/models/*' : 'other';
    const done = (status: number) => {
      metrics.requests.inc({ route: known, status: String(status) });
      metrics.latency.observe({ route: known }, Number(process.hrtime.bigint() - t0) / 1e9);
    };
    route(req, res, url).then(
      () => done(res.statusCode),
      (e: unknown) => done(fail(req, res, url, e)),
    );
  };

  // Node answers a request that is still incomplete after requestTimeout with a bare 408 and closes it.
  const server = http.createServer(
    { requestTimeout, headersTimeout: Math.min(requestTimeout, 10_000), connectionsCheckingInterval: Math.max(50, Math.min(30_000, requestTimeout / 10)) },
    handler,
  );

  return {
    server,
    metrics,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
        });
      });
    },
    close(graceMs = 10_000) {
      closing = true;
      unsubscribe();
      const idle = admitted === 0 ? Promise.resolve() : new Promise<void>((resolve) => (drained = resolve));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      return Promise.race([idle, grace]).then(() => {
        server.closeAllConnections();
        return closed;
      });
    },
  };
}

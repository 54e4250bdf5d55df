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

import type { Classifier, Prediction } from '../classifier';
import { renderTriptych } from '../gradcam/render';
import { checkImageUpload, HttpError, oneOf, parseJsonBody, readBody, sendBody, sendJson } from './http';
import { ServeMetrics } from './metrics';
import { summarizeMap } from './map-summary';
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

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> | void;
interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
  /** inference work: admitted against maxQueue, refused while closing */
  work?: boolean;
}

/** The state of one running service and its route handlers. */
class Service {
  readonly metrics = new ServeMetrics();
  readonly routes: Record<string, Route>;
  private readonly name: string;
  private readonly v2: string;
  private readonly limit: number;
  private readonly maxQueue: number;
  private readonly maxImages: number;
  private readonly inferenceMs: number;
  private readonly log: (line: string) => void;
  private readonly started = Date.now();
  private readonly unsubscribe: () => void;
  admitted = 0;
  closing = false;
  private drained: (() => void) | null = null;

  constructor(
    private readonly clf: Classifier,
    opts: ServeOptions,
  ) {
    this.name = opts.modelName ?? 'cifake';
    this.v2 = `/v2/models/${this.name}`;
    this.limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxQueue = opts.maxQueue ?? 64;
    this.maxImages = opts.maxImagesPerRequest ?? 256;
    this.inferenceMs = opts.inferenceTimeoutMs ?? 30_000;
    this.log = opts.log ?? ((line: string) => console.error(line));
    this.unsubscribe = clf.onBatch((n) => this.metrics.batchSize.observe(n));
    this.routes = this.routeTable();
  }

  private routeTable(): Record<string, Route> {
    const json = (status: number, body: unknown) => (_q: http.IncomingMessage, res: http.ServerResponse) => sendJson(res, status, body);
    return {
      '/': { method: 'GET', handler: (_q, res) => sendBody(res, 200, 'text/html; charset=utf-8', PAGE_HTML) },
      '/v2/health/live': { method: 'GET', handler: json(200, { live: true }) },
      '/v2/health/ready': { method: 'GET', handler: (q, res) => (this.closing || this.clf.disposed ? json(503, { ready: false }) : json(200, { ready: true }))(q, res) },
      [this.v2]: { method: 'GET', handler: (_q, res) => sendJson(res, 200, this.metadata()) },
      [`${this.v2}/ready`]: { method: 'GET', handler: (_q, res) => sendJson(res, this.closing ? 503 : 200, { name: this.name, ready: !this.closing }) },
      [`${this.v2}/infer`]: { method: 'POST', handler: (q, res) => this.infer(q, res), work: true },
      '/classify': { method: 'POST', handler: (q, res) => this.classify(q, res), work: true },
      '/explain': { method: 'POST', handler: (q, res, u) => this.explain(q, res, u), work: true },
      '/metrics': { method: 'GET', handler: async (_q, res) => sendBody(res, 200, this.metrics.registry.contentType, await this.metrics.text()) },
      '/healthz': { method: 'GET', handler: (_q, res) => sendJson(res, 200, this.health()) },
    };
  }

  private health() {
    const { checkpoint, ...info } = this.clf.info;
    return { status: this.closing ? 'closing' : 'ok', uptimeSeconds: Math.round((Date.now() - this.started) / 1000), model: { ...info, checkpoint: path.basename(checkpoint) }, stats: this.clf.stats, admitted: this.admitted };
  }

  private metadata() {
    return modelMetadata({ name: this.name, threshold: this.clf.threshold, temperature: this.clf.temperature, parameters: this.clf.info.parameters, family: this.clf.info.family });
  }

  private timed<T>(p: Promise<T>): Promise<T> {
    return withTimeout(p, this.inferenceMs);
  }

  private async classify(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req, this.limit);
    if ((req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      const json = parseJsonBody(body) as { images?: unknown };
      if (!json || !Array.isArray(json.images) || json.images.length === 0) throw new HttpError(400, 'JSON body: expected { "images": ["<base64 image>", ...] } with at least one image');
      if (json.images.length > this.maxImages) throw new HttpError(413, `${json.images.length} images in one request; the limit is ${this.maxImages}`);
      const buffers = json.images.map((b, i) => {
        if (typeof b !== 'string' || b === '') throw new HttpError(400, `images[${i}]: expected a base64 string`);
        return Buffer.from(b, 'base64');
      });
      const predictions = await this.timed(this.clf.predictBatch(buffers));
      sendJson(res, 200, { predictions: predictions.map(publicPrediction) });
      return;
    }
    checkImageUpload(req, body);
    sendJson(res, 200, publicPrediction(await this.timed(this.clf.predict(body))));
  }

  private async explain(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const format = oneOf('format', url.searchParams.get('format'), ['json', 'png'] as const, 'json');
    const target = oneOf('target', url.searchParams.get('target'), TARGETS, 'pred');
    const method = oneOf('method', url.searchParams.get('method'), METHODS, 'gradcam');
    const layer = url.searchParams.get('layer') || undefined;
    const { layers } = this.clf.native.description;
    if (layer !== undefined && !layers.includes(layer)) throw new HttpError(400, `layer: unknown layer '${layer}' (valid: ${layers.join(', ')})`);
    const body = await readBody(req, this.limit);
    checkImageUpload(req, body);
    const e = await this.timed(this.clf.explain(body, { target, method, layer, png: format === 'png' }));
    const { label, pReal, pFake } = e.prediction;
    if (format === 'png') {
      const png = e.png ?? (await renderTriptych({ image: await this.clf.decode([body]), map: e.map, width: 32, height: 32, normalized: true, rawMax: e.rawMax, pReal, predicted: label === 'REAL' ? 1 : 0 }));
      sendBody(res, 200, 'image/png', png, { 'x-cifake-label': label, 'x-cifake-p-real': String(pReal), 'x-cifake-target': e.target });
      return;
    }
    sendJson(res, 200, { label, pReal, pFake, target: e.target, layer: e.layer, layerSize: e.layerSize, method: e.method, rawMax: e.rawMax, map: summarizeMap(e.map, 32, url.searchParams.get('map') === '1') });
  }

  private async infer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req, this.limit);
    const type = (req.headers['content-type'] ?? 'application/json').toLowerCase();
    if (!type.startsWith('application/json')) throw new HttpError(415, `unsupported content type ${type.split(';')[0]}: the v2 infer route takes application/json tensors`);
    const r = parseInferRequest(parseJsonBody(body), this.maxImages);
    const p = await this.timed(this.clf.predictDecoded(r.images));
    sendJson(res, 200, inferResponse(this.name, r.id, p.map((x) => x.logit), p.map((x) => x.pReal), p.map((x) => x.label), r.outputs));
  }

  async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const r = this.routes[url.pathname];
    if (!r) {
      if (url.pathname.startsWith('/v2/models/')) throw new HttpError(404, `unknown model '${url.pathname.split('/')[3]}' (this server serves '${this.name}')`);
      throw new HttpError(404, `no route ${url.pathname} (GET /, POST /classify, POST /explain, POST ${this.v2}/infer, GET ${this.v2}, GET /metrics, GET /v2/health/live|ready)`);
    }
    if (req.method !== r.method && !(r.method === 'GET' && req.method === 'HEAD'))
      throw new HttpError(405, `${url.pathname} takes ${r.method}, not ${req.method}`, { allow: r.method === 'GET' ? 'GET, HEAD' : r.method });
    if (this.clf.disposed && !ALWAYS_UP.has(url.pathname)) throw new HttpError(503, 'the model is unloaded (the service is shutting down)');
    if (!r.work) return r.handler(req, res, url);
    if (this.closing) throw new HttpError(503, 'the service is shutting down', { 'retry-after': '5', connection: 'close' });
    if (this.admitted >= this.maxQueue) {
      this.metrics.rejected.inc();
      throw new HttpError(503, `server busy: ${this.admitted} requests in progress (limit ${this.maxQueue}); retry shortly`, { 'retry-after': '1' });
    }
    this.admitted++;
    this.metrics.queueDepth.set(this.admitted);
    try {
      await r.handler(req, res, url);
    } finally {
      this.admitted--;
      this.metrics.queueDepth.set(this.admitted);
      if (this.admitted === 0 && this.drained) this.drained();
    }
  }

  /** Answers a failed request with its status and JSON error; returns the status. */
  fail(req: http.IncomingMessage, res: http.ServerResponse, url: URL, e: unknown): number {
    const { status, message, headers } = errorReply(e);
    if (status === 500) this.log(`${req.method} ${url.pathname}: ${(e as Error)?.stack ?? String(e)}`);
    else this.log(`${req.method} ${url.pathname}: ${status} ${message}`);
    this.metrics.errors.inc({ kind: status >= 500 ? String(status) : 'client' });
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

  readonly handle: http.RequestListener = (req, res) => {
    const t0 = process.hrtime.bigint();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    const known = this.routes[url.pathname] ? url.pathname : url.pathname.startsWith('/v2/models/') ? '/v2/models/*' : 'other';
    const done = (status: number) => {
      this.metrics.requests.inc({ route: known, status: String(status) });
      this.metrics.latency.observe({ route: known }, Number(process.hrtime.bigint() - t0) / 1e9);
    };
    this.route(req, res, url).then(
      () => done(res.statusCode),
      (e: unknown) => done(this.fail(req, res, url, e)),
    );
  };

  /** Resolves once no admitted request is left. */
  idle(): Promise<void> {
    this.closing = true;
    this.unsubscribe();
    return this.admitted === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.drained = resolve));
  }
}

/** Status, message and headers for an error a route threw. */
function errorReply(e: unknown): { status: number; message: string; headers: Record<string, string> } {
  const err = e as Error & { code?: string; kind?: string };
  if (e instanceof HttpError) return { status: e.status, message: e.message, headers: e.headers };
  const detail = () => err.message.replace(/^input\[\d+\] \(\d+ bytes\): /, '');
  // The header declares more pixels than the classifier accepts (its maxPixels): refused before decoding.
  if (err?.code === 'ERR_CIFAKE_INPUT' && err.kind === 'too-large') return { status: 413, message: `image too large: ${detail()}`, headers: {} };
  if (err?.code === 'ERR_CIFAKE_INPUT') return { status: 400, message: `not a readable image (JPEG, PNG or WebP expected): ${detail()}`, headers: {} };
  if (/disposed/.test(err?.message ?? '')) return { status: 503, message: 'the model is unloaded (the service is shutting down)', headers: {} };
  return { status: 500, message: 'internal error', headers: {} };
}

export function createServer(clf: Classifier, opts: ServeOptions = {}): CifakeServer {
  const service = new Service(clf, opts);
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  // Node answers a request that is still incomplete after requestTimeout with a bare 408 and closes it.
  const server = http.createServer(
    { requestTimeout, headersTimeout: Math.min(requestTimeout, 10_000), connectionsCheckingInterval: Math.max(50, Math.min(30_000, requestTimeout / 10)) },
    service.handle,
  );
  return {
    server,
    metrics: service.metrics,
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
      const idle = service.idle();
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

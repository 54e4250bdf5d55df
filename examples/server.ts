// A small HTTP service around the embedding API (node:http, no framework).
//
//   npx tsx examples/server.ts --model runs/hoc --port 8080
//   curl --data-binary @photo.jpg http://127.0.0.1:8080/classify
//   curl --data-binary @photo.jpg 'http://127.0.0.1:8080/explain?format=png' -o cam.png
//
// Routes (the request body is the raw image file: JPEG, PNG or WebP; other sizes are resized to 32x32):
//   POST /classify          -> {label, pReal, pFake}
//   POST /explain           -> {label, pReal, pFake, target, layer, method, map: {peak, mean, coverage, grid}}
//        ?format=png        -> image/png triptych (original | Grad-CAM | overlay), prediction in X-Cifake-* headers
//        ?target=pred|real|fake  ?method=gradcam|hirescam  ?layer=<name>  ?map=1 (adds the 32x32 map)
//   GET  /healthz           -> {status, model, stats}
// Errors are JSON {error} with a 4xx status (5xx only for faults of the service itself); an image
// whose header declares more pixels than the classifier's maxPixels is refused undecoded with 413.
//
// Configuration: --model (or CIFAKE_MODEL), --port (PORT, default 8080; 0 = any free port),
// --host (HOST, default 127.0.0.1), --device (CIFAKE_DEVICE, default cpu), --threads (CIFAKE_THREADS),
// --max-body-mb (default 5), --max-pixels (width x height, default 4096 x 4096). In an app, import from 'cifake-torch' instead of '../src'.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

import { Classifier, type ImageInput, type Prediction } from '../src';
import { renderTriptych } from '../src/gradcam/render';

export interface ServerOptions {
  /** Largest accepted body in bytes (default 5 MiB); checked against Content-Length and while streaming. */
  maxBodyBytes?: number;
  /** Gives up (408, connection closed) on a request that has not fully arrived in this time (default 30 s). */
  requestTimeoutMs?: number;
  /** One line per failed request and per service fault (default: console.error). */
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

const TARGETS = ['pred', 'real', 'fake'] as const;
const METHODS = ['gradcam', 'hirescam'] as const;
type Target = (typeof TARGETS)[number];
type Method = (typeof METHODS)[number];
const ROUTES: Record<string, string> = { '/classify': 'POST', '/explain': 'POST', '/healthz': 'GET' };

/** An error with an HTTP status, answered as JSON {error}. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Reads the whole body, refusing more than `limit` bytes (by Content-Length first, then as it streams). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `body too large: the limit is ${limit} bytes`, { connection: 'close' });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new HttpError(400, `upload failed: ${e.message}`));
    };
    const onAborted = () => {
      cleanup();
      reject(new HttpError(400, 'upload aborted by the client'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function checkUpload(req: http.IncomingMessage, body: Buffer): void {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  // (curl --data-binary labels bodies application/x-www-form-urlencoded: the bytes are still the file.)
  if (type.startsWith('multipart/'))
    throw new HttpError(415, `send the image file itself as the body, not ${type.split(';')[0]} (e.g. curl --data-binary @photo.jpg ...)`);
  if (body.length === 0) throw new HttpError(400, 'empty body: send the image bytes (JPEG, PNG or WebP) as the request body');
}

function oneOf<T extends string>(name: string, value: string | null, allowed: readonly T[], fallback: T): T {
  if (value === null || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new HttpError(400, `${name}: expected one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

/** What /explain needs of an explanation, whether from Classifier.explain or the fallback below. */
interface MapExplanation {
  prediction: Prediction;
  layer: string;
  layerSize: number;
  method: string;
  target: 'REAL' | 'FAKE';
  /** 32x32, peak 1. */
  map: Float32Array;
  rawMax: number;
  png?: Buffer;
}

interface ExplainRequest {
  target: Target;
  method: Method;
  layer?: string;
  png: boolean;
}

type ExplainFn = (input: ImageInput, opts: { target: Target; method: Method; layer?: string; png?: boolean }) => Promise<MapExplanation>;

/** Classifier.explain when the installed version has it; else Grad-CAM straight from the native model. */
async function explain(clf: Classifier, body: Buffer, r: ExplainRequest): Promise<MapExplanation> {
  const own = (clf as unknown as { explain?: ExplainFn }).explain;
  if (typeof own === 'function') return own.call(clf, body, { target: r.target, method: r.method, layer: r.layer, png: r.png });
  const image = await clf.decode([body]);
  const g = await clf.native.gradcam(image, { target: r.target, method: r.method, layer: r.layer, size: 32 });
  let max = 0;
  for (const v of g.maps) if (v > max) max = v;
  const map = new Float32Array(g.maps.length);
  if (max > 0) for (let k = 0; k < map.length; k++) map[k] = Math.min(1, g.maps[k] / max);
  const pReal = 1 / (1 + Math.exp(-g.logits[0]));
  const out: MapExplanation = {
    prediction: { label: pReal >= clf.threshold ? 'REAL' : 'FAKE', pReal, pFake: 1 - pReal },
    layer: g.layer,
    layerSize: g.layerSize,
    method: r.method,
    target: g.targets[0] === 1 ? 'REAL' : 'FAKE',
    map,
    rawMax: g.rawMax[0],
  };
  if (r.png)
    out.png = await renderTriptych({ image, map, width: 32, height: 32, normalized: true, rawMax: max, pReal, predicted: pReal >= clf.threshold ? 1 : 0 });
  return out;
}

const round = (x: number, digits = 4) => Number(x.toFixed(digits));

/** A compact description of a 32x32 map with peak 1: where it peaks, how much of the image it covers, an 8x8 overview. */
export function summarizeMap(map: Float32Array, side = 32, includeMap = false) {
  let peak = 0;
  let sum = 0;
  let above = 0;
  for (let k = 0; k < map.length; k++) {
    if (map[k] > map[peak]) peak = k;
    sum += map[k];
    if (map[k] >= 0.5) above++;
  }
  const cells = 8;
  const step = side / cells;
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
    /** Fraction of pixels at >= half the peak. */
    coverage: round(above / map.length),
    /** 8x8 means of 4x4 blocks, row-major from the top left. */
    grid,
    ...(includeMap ? { map: Array.from({ length: side }, (_, y) => Array.from(map.subarray(y * side, (y + 1) * side), (v) => round(v, 3))) } : {}),
  };
}

/** The request handler; `createServer` wraps it in an http.Server. */
export function createHandler(clf: Classifier, opts: ServerOptions = {}): http.RequestListener {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = opts.log ?? ((line: string) => console.error(line));
  const started = Date.now();

  async function route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const method = ROUTES[url.pathname];
    if (method === undefined) throw new HttpError(404, `no route ${url.pathname} (POST /classify, POST /explain, GET /healthz)`);
    if (req.method !== method && !(method === 'GET' && req.method === 'HEAD'))
      throw new HttpError(405, `${url.pathname} takes ${method}, not ${req.method}`, { allow: method === 'GET' ? 'GET, HEAD' : method });
    if (clf.disposed) throw new HttpError(503, 'the model is unloaded (the service is shutting down)');

    if (url.pathname === '/healthz') {
      sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000), model: clf.info, stats: clf.stats });
      return;
    }

    if (url.pathname === '/classify') {
      const body = await readBody(req, limit);
      checkUpload(req, body);
      const { label, pReal, pFake } = await clf.predict(body);
      sendJson(res, 200, { label, pReal, pFake });
      return;
    }

    // /explain
    const format = oneOf('format', url.searchParams.get('format'), ['json', 'png'] as const, 'json');
    const target = oneOf('target', url.searchParams.get('target'), TARGETS, 'pred');
    const gmethod = oneOf('method', url.searchParams.get('method'), METHODS, 'gradcam');
    const layer = url.searchParams.get('layer') || undefined;
    const { layers } = clf.native.description;
    if (layer !== undefined && !layers.includes(layer)) throw new HttpError(400, `layer: unknown layer '${layer}' (valid: ${layers.join(', ')})`);
    const body = await readBody(req, limit);
    checkUpload(req, body);
    const e = await explain(clf, body, { target, method: gmethod, layer, png: format === 'png' });
    const { label, pReal, pFake } = e.prediction;
    if (format === 'png') {
      if (!e.png) throw new Error('explain returned no PNG');
      res.writeHead(200, {
        'content-type': 'image/png',
        'content-length': e.png.length,
        'cache-control': 'no-store',
        'x-cifake-label': label,
        'x-cifake-p-real': String(pReal),
        'x-cifake-target': e.target,
      });
      res.end(e.png);
      return;
    }
    sendJson(res, 200, {
      label,
      pReal,
      pFake,
      target: e.target,
      layer: e.layer,
      layerSize: e.layerSize,
      method: e.method,
      rawMax: e.rawMax,
      map: summarizeMap(e.map, 32, url.searchParams.get('map') === '1'),
    });
  }

  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    route(req, res, url).catch((e: unknown) => {
      const err = e as Error & { code?: string };
      let status: number;
      let message: string;
      let headers: Record<string, string> = {};
      if (e instanceof HttpError) {
        ({ status, message, headers } = e);
      } else if (err?.code === 'ERR_CIFAKE_INPUT' && (e as { kind?: string }).kind === 'too-large') {
        // The header declares more pixels than the classifier accepts: refused before decoding.
        status = 413;
        message = `image too large: ${err.message.replace(/^input\[0\] \(\d+ bytes\): /, '')}`;
      } else if (err?.code === 'ERR_CIFAKE_INPUT') {
        // The image could not be decoded: the client's fault. Name it as the client knows it.
        status = 400;
        message = `not a readable image (JPEG, PNG or WebP expected): ${err.message.replace(/^input\[0\] \(\d+ bytes\): /, '')}`;
      } else if (/disposed/.test(err?.message ?? '')) {
        status = 503;
        message = 'the model is unloaded (the service is shutting down)';
      } else {
        status = 500;
        message = 'internal error';
        log(`${req.method} ${url.pathname}: ${err?.stack ?? String(e)}`);
      }
      if (status !== 500) log(`${req.method} ${url.pathname}: ${status} ${message}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, status, { error: message }, headers);
      if (headers.connection === 'close') {
        // Stop reading an oversized upload: discard what is in flight, then drop the connection.
        req.resume();
        setTimeout(() => req.destroy(), 1000).unref();
      }
    });
  };
}

/** An http.Server for `clf` (not listening yet: call .listen()). */
export function createServer(clf: Classifier, opts: ServerOptions = {}): http.Server {
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  // Node answers a request that is still incomplete after requestTimeout with a bare 408 and closes it.
  return http.createServer(
    { requestTimeout, headersTimeout: Math.min(requestTimeout, 10_000), connectionsCheckingInterval: Math.max(50, Math.min(30_000, requestTimeout / 10)) },
    createHandler(clf, opts),
  );
}

/** Listens on host:port (port 0 = any free one) and resolves the base URL. */
export function listen(server: http.Server, port = 0, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', short: 'm' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      device: { type: 'string' },
      threads: { type: 'string' },
      'max-body-mb': { type: 'string' },
      'max-pixels': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const usage = 'usage: npx tsx examples/server.ts --model <runDir|checkpoint> [--port 8080] [--host 127.0.0.1] [--device cpu] [--threads N] [--max-body-mb 5] [--max-pixels 16777216]';
  if (values.help) {
    console.log(usage);
    return;
  }
  const model = values.model ?? process.env.CIFAKE_MODEL;
  if (!model) throw new Error(`no model: pass --model or set CIFAKE_MODEL\n${usage}`);
  const int = (name: string, v: string | undefined, min: number, max: number): number | undefined => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}: expected an integer in ${min}..${max}, got '${v}'`);
    return n;
  };
  const port = int('--port', values.port ?? process.env.PORT, 0, 65535) ?? 8080;
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  const threads = int('--threads', values.threads ?? process.env.CIFAKE_THREADS, 1, 4096);
  const maxPixels = int('--max-pixels', values['max-pixels'], 1, Number.MAX_SAFE_INTEGER);
  const maxBodyMb = Number(values['max-body-mb'] ?? 5);
  if (!(maxBodyMb > 0)) throw new Error(`--max-body-mb: expected a number > 0, got '${values['max-body-mb']}'`);

  const clf = await Classifier.load(model, { device: values.device ?? process.env.CIFAKE_DEVICE ?? 'cpu', threads, maxPixels });
  const server = createServer(clf, { maxBodyBytes: Math.round(maxBodyMb * 1024 * 1024) });
  const url = await listen(server, port, host);
  const i = clf.info;
  console.log(`cifake server: ${i.family} model (${i.parameters} parameters, ${i.device}) from ${i.checkpoint}`);
  console.log(`listening on ${url}  (POST /classify, POST /explain, GET /healthz)`);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    console.log(`${signal}: closing`);
    server.close(() => {
      clf.dispose();
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
    }, 5000).unref();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}

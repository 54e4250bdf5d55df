// HTTP test helpers for the service tests.
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: () => Record<string, unknown>;
}

/**
 * One request. `chunks` are written one by one (chunked transfer encoding, no Content-Length);
 * a write that fails after the server answered (it stops reading oversized uploads) is ignored.
 */
export function request(base: string, method: string, urlPath: string, body?: Buffer | string | { chunks: Buffer[] }, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${urlPath}`, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(parts);
        resolve({ status: res.statusCode!, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body) || typeof body === 'string') req.end(body);
    else {
      const chunks = [...body.chunks];
      const next = () => {
        const c = chunks.shift();
        if (c === undefined || req.destroyed) req.end();
        else req.write(c, () => setImmediate(next));
      };
      next();
    }
  });
}

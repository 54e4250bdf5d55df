// HTTP plumbing of `cifake serve`: JSON replies, bounded body reads, the error type every route throws.
import type http from 'node:http';

/** An error with an HTTP status, answered as JSON {error}. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendBody(res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/** Reads the whole body, refusing more than `limit` bytes (by Content-Length first, then as it streams). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `body too large: the limit is ${limit} bytes`, { connection: 'close' });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
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
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif', 'image/tiff', 'application/octet-stream', 'application/x-www-form-urlencoded'];

/** A raw-image upload: refuses multipart and non-image content types (415) and empty bodies (400). */
export function checkImageUpload(req: http.IncomingMessage, body: Buffer): void {
  const type = (req.headers['content-type'] ?? '').toLowerCase().split(';')[0].trim();
  // (curl --data-binary labels bodies application/x-www-form-urlencoded: the bytes are still the file.)
  if (type.startsWith('multipart/'))
    throw new HttpError(415, `send the image file itself as the body, not ${type} (e.g. curl --data-binary @photo.jpg ...)`);
  if (type !== '' && !IMAGE_TYPES.includes(type))
    throw new HttpError(415, `unsupported content type ${type}: send image bytes (image/jpeg, image/png, image/webp) or application/json`);
  if (body.length === 0) throw new HttpError(400, 'empty body: send the image bytes (JPEG, PNG or WebP) as the request body');
}

export function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `invalid JSON body: ${(e as Error).message}`);
  }
}

export function oneOf<T extends string>(name: string, value: string | null, allowed: readonly T[], fallback: T): T {
  if (value === null || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new HttpError(400, `${name}: expected one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

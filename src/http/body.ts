/**
 * Request bodies, bounded: a body over the limit is refused with 413 before it is read whole,
 * at once from its Content-Length when it has one, else as soon as the bytes counted while
 * streaming pass the limit. Nothing past the limit is kept.
 */
import type { IncomingMessage } from 'node:http';
import { httpError } from './errors.js';

/** Throws BODY_TOO_LARGE when the declared length is over the limit. */
export function checkLength(req: IncomingMessage, limit: number): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw httpError('BODY_TOO_LARGE', limit);
}

/**
 * Counts the body's bytes as they pass, and stops the request with BODY_TOO_LARGE when they
 * go over the limit: for bodies handed to a parser as a stream (multipart).
 */
export function limitBody(req: IncomingMessage, limit: number, onTooLarge: () => void): void {
  checkLength(req, limit);
  let seen = 0;
  const count = (chunk: Buffer): void => {
    seen += chunk.length;
    if (seen > limit) {
      req.off('data', count);
      req.unpipe();
      req.pause();
      onTooLarge();
    }
  };
  req.on('data', count);
}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    try {
      checkLength(req, limit);
    } catch (err) {
      reject(err);
      return;
    }
    const chunks: Buffer[] = [];
    let seen = 0;
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > limit) {
        cleanup();
        req.pause();
        chunks.length = 0;
        reject(httpError('BODY_TOO_LARGE', limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, seen));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** A JSON object body; the type must say JSON, so a cross-site form cannot send one. */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json')
    throw httpError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with Content-Type: application/json.');
  const body = await readBody(req, limit);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw httpError('BAD_JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw httpError('BAD_JSON');
  return value as Record<string, unknown>;
}

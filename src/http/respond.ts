/**
 * How every HTTP answer is written: JSON bodies, the error shape, and the security headers that
 * go on every response (pages, API and images alike, so none is ever forgotten).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpError } from './errors.js';

/**
 * Pages may load their own scripts, styles and images (and images the page made itself), talk
 * to this server over fetch and WebSocket, and nothing else: no inline script, no plugins, no
 * framing by other sites.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(data.length),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : data);
}

/**
 * An error answer. When the request body has not been read (refused for its size, say), the
 * connection is closed after the answer rather than reading the rest to reach the next request.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const unread = !req.complete;
  sendJson(req, res, err.status, err.body, unread ? { ...err.headers, Connection: 'close' } : err.headers);
}

/**
 * The server's side of the WebSocket opening handshake (RFC 6455 4.2): from a request's method,
 * version and headers to either the 101 answer to write or why it is refused. No sockets: the
 * HTTP server calls it on an upgrade request (http/web-server.ts) and writes the answer.
 *
 * The frames that follow are read and written by this server's own code (ws-receiver.ts,
 * ws-frame.ts), so the handshake is ours too rather than ws's handleUpgrade(), which hands the
 * socket only to an object of its WebSocket class. No extension is negotiated (the receiver
 * requires the RSV bits clear, and frames are built once for every recipient, uncompressed),
 * and no subprotocol: the server speaks one protocol, the same JSON as TCP JSON mode.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Where WebSocket clients connect. */
export const WS_PATH = '/ws';

/** The one version of the protocol there is (RFC 6455 4.1); refusals name it. */
export const WS_VERSION = '13';

/** Appended to the client's key before hashing (RFC 6455 1.3). */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** 16 bytes in base64: 22 characters of data and the padding. */
const KEY = /^[+/0-9A-Za-z]{22}==$/;

/** What the handshake reads of a request (an IncomingMessage is one). */
export interface UpgradeRequest {
  method?: string;
  httpVersion: string;
  headers: IncomingHttpHeaders;
}

/** Why a handshake is refused: an HTTP error code (http/errors.ts), its detail and headers. */
export interface WsRefusal {
  code: 'METHOD_NOT_ALLOWED' | 'UPGRADE_REQUIRED' | 'WEBSOCKET_VERSION' | 'BAD_WEBSOCKET_HANDSHAKE';
  detail: string;
  headers?: Record<string, string>;
}

export type WsHandshake = { response: string } | { refusal: WsRefusal };

/** Checks an upgrade request; the Origin and the path are the HTTP server's to check. */
export function wsHandshake(req: UpgradeRequest): WsHandshake {
  const h = req.headers;
  if (req.method !== 'GET') return refuse('METHOD_NOT_ALLOWED', 'A WebSocket handshake is a GET.', { Allow: 'GET' });
  if (req.httpVersion !== '1.1') return refuse('BAD_WEBSOCKET_HANDSHAKE', 'it must be HTTP/1.1');
  if (!h.host) return refuse('BAD_WEBSOCKET_HANDSHAKE', 'it has no Host header');
  if (!hasToken(h.upgrade, 'websocket') || !hasToken(h.connection, 'upgrade'))
    return refuse('UPGRADE_REQUIRED', '', { Upgrade: 'websocket' });
  if (h['sec-websocket-version'] !== WS_VERSION)
    return refuse('WEBSOCKET_VERSION', String(h['sec-websocket-version'] ?? 'none'), { 'Sec-WebSocket-Version': WS_VERSION });
  const key = h['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return refuse('BAD_WEBSOCKET_HANDSHAKE', 'Sec-WebSocket-Key must be 16 bytes in base64');
  return {
    response:
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
  };
}

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** Whether a comma-separated header holds `token`, in any case. */
function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(',').some((t) => t.trim().toLowerCase() === token);
}

function refuse(code: WsRefusal['code'], detail: string, headers?: Record<string, string>): WsHandshake {
  return { refusal: { code, detail, headers } };
}

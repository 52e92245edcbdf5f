import { httpError } from '../../../src/http/errors.js';
import { acceptKey, wsHandshake, type UpgradeRequest } from '../../../src/transport/ws/ws-handshake.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='; // the example of RFC 6455 1.3

function request(headers: Record<string, string | undefined> = {}, method = 'GET', httpVersion = '1.1'): UpgradeRequest {
  const all: Record<string, string | undefined> = {
    host: 'chat.example:7447',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13',
    ...headers,
  };
  return { method, httpVersion, headers: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) };
}

test('the accept value is the one RFC 6455 gives for its example key', () => {
  expect(acceptKey(KEY)).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  expect(wsHandshake(request())).toEqual({
    response: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
  });
});

test('Upgrade and Connection are token lists in any case; offered extensions and subprotocols are not taken up', () => {
  const answer = wsHandshake(
    request({
      upgrade: 'WebSocket',
      connection: 'keep-alive, UPGRADE',
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
      'sec-websocket-protocol': 'chat',
    }),
  );
  expect(answer).toEqual(wsHandshake(request()));
});

test.each<[string, string, number, UpgradeRequest]>([
  ['a POST', 'METHOD_NOT_ALLOWED', 405, request({}, 'POST')],
  ['HTTP/1.0', 'BAD_WEBSOCKET_HANDSHAKE', 400, request({}, 'GET', '1.0')],
  ['no Host', 'BAD_WEBSOCKET_HANDSHAKE', 400, request({ host: undefined })],
  ['no Upgrade', 'UPGRADE_REQUIRED', 426, request({ upgrade: undefined })],
  ['another Upgrade', 'UPGRADE_REQUIRED', 426, request({ upgrade: 'h2c' })],
  ['no upgrade in Connection', 'UPGRADE_REQUIRED', 426, request({ connection: 'keep-alive' })],
  ['version 8', 'WEBSOCKET_VERSION', 426, request({ 'sec-websocket-version': '8' })],
  ['no version', 'WEBSOCKET_VERSION', 426, request({ 'sec-websocket-version': undefined })],
  ['no key', 'BAD_WEBSOCKET_HANDSHAKE', 400, request({ 'sec-websocket-key': undefined })],
  ['a key of 15 bytes', 'BAD_WEBSOCKET_HANDSHAKE', 400, request({ 'sec-websocket-key': Buffer.alloc(15).toString('base64') })],
  ['two keys (joined by Node)', 'BAD_WEBSOCKET_HANDSHAKE', 400, request({ 'sec-websocket-key': `${KEY}, ${KEY}` })],
])('%s is refused: %s, %i', (_what, code, status, req) => {
  const answer = wsHandshake(req);
  if (!('refusal' in answer)) throw new Error('accepted');
  expect(answer.refusal.code).toBe(code);
  expect(httpError(answer.refusal.code, answer.refusal.detail, answer.refusal.headers).status).toBe(status);
});

test('a refused version is told which one the server speaks', () => {
  const answer = wsHandshake(request({ 'sec-websocket-version': '8' }));
  expect(answer).toEqual({ refusal: { code: 'WEBSOCKET_VERSION', detail: '8', headers: { 'Sec-WebSocket-Version': '13' } } });
  expect(httpError('WEBSOCKET_VERSION', '8').message).toBe('This server speaks WebSocket version 13 (RFC 6455); the client asked for version 8.');
});

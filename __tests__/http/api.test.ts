/**
 * The HTTP API over real HTTP: every error is JSON with a stable code, bodies over the limit
 * are refused before they are read, static files never leave their directory, and the room,
 * health and metrics routes do what docs/protocol.md says.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WEB_DEFAULTS } from '../../src/http/context.js';
import { CONTENT_SECURITY_POLICY } from '../../src/http/respond.js';
import { Harness, until } from '../helpers/clients.js';
import { get, metrics, parseMetrics, postJson, rawExchange, rawJson, request, WsClient } from '../helpers/web.js';

const h = new Harness();
afterEach(() => h.cleanup());

let site: string;
let webDir: string;
beforeAll(async () => {
  // A web directory with a secret beside it (outside it) that traversal would reach.
  site = await mkdtemp(path.join(tmpdir(), 'roomcast-web-'));
  webDir = path.join(site, 'web');
  await mkdir(path.join(webDir, 'sub'), { recursive: true });
  await writeFile(path.join(webDir, 'index.html'), '<!doctype html><title>test page</title>');
  await writeFile(path.join(webDir, 'app.js'), 'console.log(1);');
  await writeFile(path.join(webDir, 'sub', 'index.html'), 'sub page');
  await writeFile(path.join(webDir, '.env'), 'SECRET=dotfile');
  await writeFile(path.join(site, 'secret.txt'), 'TOP SECRET');
});
afterAll(() => rm(site, { recursive: true, force: true }));

// A request whose first bytes come later than the greet delay is taken for a silent text
// client: the harness's 30 ms is too little for an HTTP client on a loaded machine.
const webServer = (extra: Partial<typeof WEB_DEFAULTS> = {}, more: Parameters<Harness['server']>[0] = {}) =>
  h.server({ ...more, connection: { greetDelay: 1000, ...more.connection }, web: { ...WEB_DEFAULTS, staticDir: webDir, ...extra } });

const errorOf = (body: any): { code: string; message: string } => body.error;

describe('errors are JSON with a stable code', () => {
  test('unknown paths: 404 NOT_FOUND, under /api and outside it', async () => {
    const server = await webServer();
    for (const p of ['/api/nope', '/api', '/no/such/file.html', '/api/rooms/lobby/nope']) {
      const r = await get(server.port, p);
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(errorOf(r.json).code).toBe('NOT_FOUND');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  test('a known path with the wrong method: 405 with Allow', async () => {
    const server = await webServer();
    const r = await request(server.port, { method: 'DELETE', path: '/api/rooms' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
    expect(errorOf(r.json)).toEqual({ code: 'METHOD_NOT_ALLOWED', message: 'Use GET, HEAD for this path.' });
    const post = await request(server.port, { method: 'POST', path: '/index.html', body: 'x' });
    expect(post.status).toBe(405);
  });

  test('a body that is not JSON: 400 BAD_JSON; not declared JSON: 415; a missing field: 400 BAD_MESSAGE', async () => {
    const server = await webServer();
    const bad = await postJson(server.port, '/api/rooms/lobby/messages', '{"text": "unterminated');
    expect(bad.status).toBe(400);
    expect(errorOf(bad.json)).toEqual({ code: 'BAD_JSON', message: 'The request body is not a JSON object.' });
    const array = await postJson(server.port, '/api/rooms/lobby/messages', '["text"]');
    expect(errorOf(array.json).code).toBe('BAD_JSON');
    const plain = await request(server.port, { method: 'POST', path: '/api/rooms/lobby/messages', headers: { 'Content-Type': 'text/plain' }, body: '{"text":"hi"}' });
    expect(plain.status).toBe(415);
    expect(errorOf(plain.json).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const missing = await postJson(server.port, '/api/rooms/lobby/messages', { nick: 'x' });
    expect(missing.status).toBe(400);
    expect(errorOf(missing.json)).toMatchObject({ code: 'BAD_MESSAGE' });
    const empty = await postJson(server.port, '/api/rooms/lobby/messages', { text: '  ' });
    expect(errorOf(empty.json).code).toBe('EMPTY_MESSAGE');
  });

  test('an unknown task: 404 NO_SUCH_TASK; an unknown image: 404 NO_SUCH_IMAGE', async () => {
    const server = await webServer();
    for (const id of ['12345', 'abc', '0', '-1']) {
      const r = await get(server.port, `/api/tasks/${id}`);
      expect(r.status).toBe(404);
      expect(errorOf(r.json).code).toBe('NO_SUCH_TASK');
    }
    const img = await get(server.port, '/api/images/99');
    expect(img.status).toBe(404);
    expect(errorOf(img.json).code).toBe('NO_SUCH_IMAGE');
  });

  test('rooms: an invalid name is 400 ROOM_INVALID, a room nobody is in 404 NO_SUCH_ROOM', async () => {
    const server = await webServer();
    const invalid = await get(server.port, '/api/rooms/bad%20room!/history');
    expect(invalid.status).toBe(400);
    expect(errorOf(invalid.json).code).toBe('ROOM_INVALID');
    const none = await postJson(server.port, '/api/rooms/nowhere/messages', { text: 'hi' });
    expect(none.status).toBe(404);
    expect(errorOf(none.json)).toEqual({
      code: 'NO_SUCH_ROOM',
      message: 'There is no room "nowhere". GET /api/rooms lists them; a room is listed while someone is in it, and its history is kept after.',
    });
    const badQuery = await get(server.port, '/api/rooms/lobby/history?limit=100000');
    expect(badQuery.status).toBe(400);
    expect(errorOf(badQuery.json).code).toBe('BAD_QUERY');
  });
});

describe('bodies over the limit: 413 before they are read', () => {
  test('a Content-Length over the limit is refused at once, with only the headers sent', async () => {
    const server = await webServer({ maxJsonBody: 1024 }, { connection: { maxImageBytes: 64 * 1024 } });
    // Headers that promise 100 MB, and then nothing: the answer must not wait for the body.
    for (const [p, type] of [['/api/rooms/lobby/messages', 'application/json'], ['/api/rooms/lobby/images', 'image/jpeg'], ['/api/rooms/lobby/images', 'multipart/form-data; boundary=x']]) {
      const r = await rawExchange(
        server.port,
        `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 100000000\r\n\r\n{`,
        { until: /\r\n\r\n\{.*\}$/s, timeoutMs: 2000 },
      );
      expect(r.text).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
      expect(r.text).toMatch(/\r\nConnection: close\r\n/i);
      expect(errorOf(rawJson(r.text)).code).toBe('BODY_TOO_LARGE');
    }
  });

  test('a client that asks first (Expect: 100-continue) is refused before it sends the body', async () => {
    const server = await webServer({}, { connection: { maxImageBytes: 64 * 1024 } });
    const ask = (length: number): Promise<{ text: string }> =>
      rawExchange(
        server.port,
        `POST /api/rooms/lobby/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`,
        { until: /\r\n\r\n/, timeoutMs: 2000 },
      );
    const big = await ask(10_000_000);
    expect(big.text).toMatch(/^HTTP\/1\.1 413 /);
    expect((await ask(1000)).text).toBe('HTTP/1.1 100 Continue\r\n\r\n');
  });

  test('a chunked body is counted as it streams and refused once it passes the limit', async () => {
    const server = await webServer({ maxJsonBody: 1024 }, { connection: { maxImageBytes: 64 * 1024 } });
    const chunk = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;
    const big = 'x'.repeat(4000);
    // Three 4000-byte chunks of a JSON body (limit 1024) and no final chunk: refused on the way.
    const json = await rawExchange(
      server.port,
      `POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` + chunk(big) + chunk(big) + chunk(big),
      { until: /\r\n\r\n\{.*\}$/s, timeoutMs: 2000 },
    );
    expect(json.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(errorOf(rawJson(json.text))).toEqual({
      code: 'BODY_TOO_LARGE',
      message: 'The request body is larger than 1024 bytes, the most this path takes.',
    });
    const image = await rawExchange(
      server.port,
      `POST /api/rooms/lobby/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n` + chunk('y'.repeat(40_000)) + chunk('y'.repeat(40_000)),
      { until: /\r\n\r\n\{.*\}$/s, timeoutMs: 2000 },
    );
    expect(image.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(errorOf(rawJson(image.text)).code).toBe('BODY_TOO_LARGE');
    // The server carries on.
    expect((await get(server.port, '/healthz')).status).toBe(200);
  });
});

describe('static files', () => {
  test('the page, with a strict Content-Security-Policy and nosniff; HEAD; ETag revalidation', async () => {
    const server = await webServer();
    const page = await get(server.port, '/');
    expect(page.status).toBe(200);
    expect(page.text).toBe('<!doctype html><title>test page</title>');
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    );
    expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect((await get(server.port, '/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await get(server.port, '/sub/')).text).toBe('sub page');
    expect((await get(server.port, '/sub')).text).toBe('sub page');
    const head = await request(server.port, { method: 'HEAD', path: '/index.html' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(page.body.length));
    const again = await get(server.port, '/', { 'If-None-Match': page.headers.etag as string });
    expect(again.status).toBe(304);
  });

  test('path traversal is refused however it is spelled, and nothing outside the directory is served', async () => {
    const server = await webServer();
    const attempts = [
      '/../secret.txt',
      '/sub/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E/secret.txt',
      '/.%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/sub/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/..%5csecret.txt',
      '/%5c..%5csecret.txt',
      '/secret.txt%00.html',
    ];
    for (const p of attempts) {
      const r = await get(server.port, p);
      expect({ p, status: r.status }).toEqual({ p, status: 400 });
      expect(errorOf(r.json).code).toBe('BAD_PATH');
      expect(r.text).not.toContain('TOP SECRET');
    }
    // Raw, exactly as sent (no client in between to normalise anything).
    const raw = await rawExchange(server.port, 'GET /../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(raw.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw.text).not.toContain('TOP SECRET');
    const bad = await get(server.port, '/%E0%A4%A');
    expect(errorOf(bad.json).code).toBe('BAD_PATH');
    const dot = await get(server.port, '/.env');
    expect(dot.status).toBe(404);
    expect(dot.text).not.toContain('SECRET');
  });
});

describe('rooms over HTTP', () => {
  test('post a message (as "web" or a nick nobody has), read it in the chat and in the history, page by page', async () => {
    const server = await webServer();
    const nc = await h.text(server, 'alice');

    const r = await postJson(server.port, '/api/rooms/lobby/messages', { text: 'from a script' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ room: 'lobby', seq: 1, nick: 'web' });
    await nc.waitLine('[lobby] web: from a script');
    expect((await postJson(server.port, '/api/rooms/%23LOBBY/messages', { nick: 'cron', text: 'nightly \u001b[31m done' })).status).toBe(200);
    await nc.waitLine('[lobby] cron: nightly \u241b[31m done');

    const taken = await postJson(server.port, '/api/rooms/lobby/messages', { nick: 'Alice', text: 'impersonating' });
    expect(taken.status).toBe(409);
    expect(errorOf(taken.json).code).toBe('NICK_TAKEN');
    const reserved = await postJson(server.port, '/api/rooms/lobby/messages', { nick: 'classifier', text: 'x' });
    expect(reserved.status).toBe(403);
    expect(errorOf(reserved.json).code).toBe('NICK_RESERVED');
    const invalid = await postJson(server.port, '/api/rooms/lobby/messages', { nick: 'no spaces', text: 'x' });
    expect(errorOf(invalid.json).code).toBe('NICK_INVALID');
    // Nobody can take the nick HTTP posts go out under.
    nc.send('/nick web');
    await nc.waitLine(/^! NICK_RESERVED: /);

    for (let i = 3; i <= 6; i++) await postJson(server.port, '/api/rooms/lobby/messages', { text: `m${i}` });
    const rooms = await get(server.port, '/api/rooms');
    expect(rooms.json).toEqual({ rooms: [{ room: 'lobby', members: 1, topic: '', seq: 6 }] });

    const newest = await get(server.port, '/api/rooms/lobby/history?limit=2');
    expect(newest.json.messages.map((m: any) => m.text)).toEqual(['m5', 'm6']);
    const page1 = await get(server.port, '/api/rooms/lobby/history?after=0&limit=4');
    expect(page1.json.messages.map((m: any) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(page1.json).toMatchObject({ room: 'lobby', first: 1, last: 6, missed: 0, more: true });
    const page2 = await get(server.port, '/api/rooms/lobby/history?after=4&limit=4');
    expect(page2.json.messages.map((m: any) => m.seq)).toEqual([5, 6]);
    expect(page2.json.more).toBe(false);
    expect(page2.json.messages[0]).toMatchObject({ type: 'message', room: 'lobby', nick: 'web', text: 'm5' });
  });

  test('browsers: a POST from another site is refused; from this server\'s own page, or with --origin, allowed', async () => {
    const server = await webServer();
    const host = `127.0.0.1:${server.port}`;
    const evil = await postJson(server.port, '/api/rooms/lobby/messages', { text: 'csrf' }, { Origin: 'http://evil.example' });
    expect(evil.status).toBe(403);
    expect(errorOf(evil.json).code).toBe('FORBIDDEN_ORIGIN');
    const own = await postJson(server.port, '/api/rooms/lobby/messages', { text: 'ok' }, { Origin: `http://${host}` });
    expect(own.status).toBe(200);

    const listed = await webServer({ origins: ['http://chat.example:8080'] });
    expect((await postJson(listed.port, '/api/rooms/lobby/messages', { text: 'x' }, { Origin: 'http://chat.example:8080' })).status).toBe(200);
    expect((await postJson(listed.port, '/api/rooms/lobby/messages', { text: 'x' }, { Origin: `http://127.0.0.1:${listed.port}` })).status).toBe(403);
  });
});

describe('health and metrics', () => {
  test('/healthz and /readyz (ready: no classifier configured)', async () => {
    const server = await webServer();
    expect((await get(server.port, '/healthz')).json).toEqual({ status: 'ok' });
    const ready = await get(server.port, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready', listening: true, classifier: null, history: { state: 'memory' } });
    const off = await webServer({}, { classifier: { off: 'no model installed' } });
    expect((await get(off.port, '/readyz')).json).toMatchObject({ status: 'ready', classifier: { state: 'off' } });
  });

  test('/metrics is Prometheus text, and its counts follow what happens', async () => {
    const server = await webServer();
    const before = await metrics(server.port);
    expect(before.get('roomcast_messages_received_total')).toBe(0);
    expect(before.get('roomcast_rooms')).toBe(1);

    const a = await h.text(server, 'a');
    const b = await h.json(server, 'b');
    const ws = await WsClient.registered(server.port, 'c');
    try {
      a.send('one', 'two');
      await b.waitFor(() => b.ofType('message').length === 2);
      await postJson(server.port, '/api/rooms/lobby/messages', { text: 'three' });
      await ws.waitFor(() => ws.events.filter((e) => e.type === 'message').length === 3);

      const r = await get(server.port, '/metrics');
      expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const after = parseMetrics(r.text);
      expect(after.get('roomcast_messages_received_total')).toBe(3);
      // "one" and "two" reach b and c; "three" (from outside the room) reaches all three.
      expect(after.get('roomcast_deliveries_total')).toBe(7);
      expect(after.get('roomcast_connections{transport="tcp"}')).toBe(2);
      expect(after.get('roomcast_connections{transport="websocket"}')).toBe(1);
      expect(after.get('roomcast_sessions')).toBe(3);
      expect(after.get('roomcast_room_members')).toBe(3);
      expect(after.get('roomcast_connections_accepted_total')).toBeGreaterThanOrEqual(4);
      expect(after.get('roomcast_sendq_disconnects_total{transport="websocket"}')).toBe(0);
      expect(after.get('roomcast_rate_limited_total{transport="tcp"}')).toBe(0);
      expect(after.get('roomcast_classifier_queue_depth')).toBe(0);
      expect(after.get('roomcast_classifier_state{state="off"}')).toBe(1);
      expect(after.get('roomcast_http_requests_total{route="POST /api/rooms/{room}/messages",status="200"}')).toBe(1);
      expect(after.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    } finally {
      ws.close();
    }
    await until(() => server.wsConnections.size === 0, 2000, 'the WebSocket to go');
    expect((await metrics(server.port)).get('roomcast_connections{transport="websocket"}')).toBe(0);
  });
});

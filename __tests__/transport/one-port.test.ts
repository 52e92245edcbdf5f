/**
 * One port for everything: raw TCP chat (text and JSON), HTTP and WebSocket told apart by the
 * first bytes; and --http-port, which gives HTTP and WebSocket a port of their own.
 */
import { CLI_ENV } from '../helpers/cli-child.js';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WEB_DEFAULTS } from '../../src/http/context.js';
import { CONTENT_SECURITY_POLICY } from '../../src/http/respond.js';
import { Harness, JsonClient, LineClient, until } from '../helpers/clients.js';
import { get, rawExchange, rawJson, WsClient } from '../helpers/web.js';

const h = new Harness();
const sockets: WsClient[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.close();
  await h.cleanup();
});
const track = (c: WsClient): WsClient => (sockets.push(c), c);

test('HTTP GET, a WebSocket, netcat text and TCP JSON all work on the same port, and see each other', async () => {
  const server = await h.server();
  const port = server.port;

  const page = await get(port, '/');
  expect(page.status).toBe(200);
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
  expect(page.headers['x-content-type-options']).toBe('nosniff');
  expect(page.text).toContain('<title>roomcast</title>');

  const nc = await h.text(server, 'netcat');
  const json = await h.json(server, 'jason');
  const ws = track(await WsClient.registered(port, 'webby'));
  expect(server.connections.size).toBe(2);
  expect(server.wsConnections.size).toBe(1);

  ws.send({ type: 'message', text: 'hello from the browser', id: 1 });
  expect(await ws.waitEvent((e) => e.type === 'ack')).toMatchObject({ id: 1, room: 'lobby' });
  await nc.waitLine('[lobby] webby: hello from the browser');
  await json.waitEvent((e) => e.type === 'message' && e.nick === 'webby');

  nc.send('hello from netcat');
  json.sendJson({ type: 'message', text: 'hello from JSON' });
  expect(await ws.waitEvent((e) => e.type === 'message' && e.nick === 'netcat')).toMatchObject({ text: 'hello from netcat' });
  expect(await ws.waitEvent((e) => e.type === 'message' && e.nick === 'jason')).toMatchObject({ text: 'hello from JSON' });

  // HTTP still answers while chat goes on, and sees the same rooms.
  const rooms = await get(port, '/api/rooms');
  expect(rooms.json.rooms).toEqual([{ room: 'lobby', members: 3, topic: '', seq: 3 }]);
});

test('a netcat user typing "GET something" (no HTTP/1.x) stays in the chat', async () => {
  const server = await h.server();
  const rx = await h.json(server, 'rx');
  const nc = await h.raw(server);
  nc.send('GET something');
  await nc.waitLine(/^\*\*\* Welcome to roomcast, guest\d+!/);
  await rx.waitEvent((e) => e.type === 'message' && e.text === 'GET something');
  // And what follows is chat too, even if it looks like HTTP.
  nc.send('GET / HTTP/1.1');
  await rx.waitEvent((e) => e.type === 'message' && e.text === 'GET / HTTP/1.1');
  expect(server.connections.size).toBe(2);
});

test('a request line that comes in pieces is still HTTP; a silent netcat user still gets its welcome', async () => {
  const server = await h.server({ connection: { greetDelay: 150 } });
  const t0 = Date.now();
  const silent = await h.raw(server);

  // The request line in two writes, the second well within the greeting delay.
  const split = await LineClient.connect(server.port);
  h.track(split);
  split.write('GET /heal');
  await new Promise((r) => setTimeout(r, 30));
  split.write('thz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await split.waitClosed();
  expect(split.raw.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(rawJson(split.raw.toString())).toEqual({ status: 'ok' });

  // "GE" and nothing more could have become HTTP; after the greeting delay it is chat.
  const ge = await h.raw(server);
  ge.write('GE');
  await ge.waitLine(/^\*\*\* Welcome to roomcast/);

  await silent.waitLine(/^\*\*\* Welcome to roomcast, guest\d+!/);
  const waited = Date.now() - t0;
  expect(waited).toBeGreaterThanOrEqual(140);
  expect(waited).toBeLessThan(1500);
});

test('an HTTP client silent past the greeting delay (a preconnected socket) is closed, its request not relayed', async () => {
  const server = await h.server({ connection: { greetDelay: 50 } });
  const rx = await h.json(server, 'rx');
  const late = await h.raw(server);
  await late.waitLine(/^\*\*\* Welcome to roomcast/);
  late.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await late.waitClosed();
  const left = await rx.waitEvent((e) => e.type === 'parted');
  expect(left.reason).toBe('an HTTP request after the greeting delay');
  expect(rx.ofType('message')).toEqual([]);
});

test('TCP JSON mode is unaffected by sniffing: a hello first line is JSON at once', async () => {
  const server = await h.server({ connection: { greetDelay: 10_000 } });
  const t0 = Date.now();
  const c = await JsonClient.registered(server.port, 'quick');
  h.track(c);
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(c.events[0]).toMatchObject({ type: 'welcome', nick: 'quick' });
});

test('--http-port: HTTP and WebSocket on their own port; the chat port is chat only', async () => {
  const server = await h.server({ web: { ...WEB_DEFAULTS, port: 0 } });
  expect(server.httpPort).toBeGreaterThan(0);
  expect(server.httpPort).not.toBe(server.port);
  expect(server.httpListening.map((l) => l.address)).toEqual(['127.0.0.1']);

  expect((await get(server.httpPort, '/healthz')).json).toEqual({ status: 'ok' });
  const nc = await h.text(server, 'nc');
  const ws = track(await WsClient.registered(server.httpPort, 'webby'));
  ws.send({ type: 'message', text: 'over the HTTP port' });
  await nc.waitLine('[lobby] webby: over the HTTP port');

  // On the chat port an HTTP request line is just a line of chat.
  const curlish = await LineClient.connect(server.port);
  h.track(curlish);
  curlish.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await curlish.waitLine(/^\*\*\* Welcome to roomcast/);
  await ws.waitEvent((e) => e.type === 'message' && e.text === 'GET /healthz HTTP/1.1');
});

test('connection limits count every transport: over the limit, HTTP gets 503 and a WebSocket handshake is refused', async () => {
  const server = await h.server({ maxConnections: 2 });
  await h.text(server, 'a');
  await h.json(server, 'b');

  const r = await rawExchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  expect(r.text).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
  expect(r.text).toMatch(/\r\nConnection: close\r\n/i);
  expect(rawJson(r.text)).toEqual({
    error: { code: 'TOO_MANY_CONNECTIONS', message: 'The server is full (2 connections). Try again later.' },
  });

  await expect(WsClient.open(server.port)).rejects.toMatchObject({ status: 503 });
  await until(() => server.connections.size === 2 && server.web.sockets.size === 0, 2000, 'the refused sockets to close');
  expect(server.stats.refused).toBe(2);
  expect(server.wsConnections.size).toBe(0);
});

test('an HTTP client that disconnects gives its place back', async () => {
  const server = await h.server({ maxConnections: 1 });
  expect((await get(server.port, '/healthz')).status).toBe(200);
  await until(() => server.web.sockets.size === 0, 2000, 'the HTTP socket to close');
  const nc = await h.text(server, 'after');
  expect(nc.hasLine(/TOO_MANY/)).toBe(false);
});

describe('roomcast serve flags', () => {
  const started: ChildProcessWithoutNullStreams[] = [];
  afterEach(async () => {
    for (const proc of started.splice(0)) {
      if (proc.exitCode !== null) continue;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  });

  test('--http-port, --origin, --ws-max-payload and --web-dir reach the server', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-cli-web-'));
    await writeFile(path.join(dir, 'index.html'), 'cli page');
    const proc = spawn(process.execPath, [
      path.resolve('bin/roomcast'), 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot',
      '--http-port', '0', '--origin', 'http://chat.example', '--ws-max-payload', '2048', '--web-dir', dir,
    ], { env: CLI_ENV });
    started.push(proc);
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d));
    const deadline = Date.now() + 10_000;
    while (!/^Web: /m.test(out)) {
      if (Date.now() > deadline) throw new Error(`no banner: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const chatPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const httpPort = Number(/HTTP and WebSocket on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    expect(out).toContain(`Web:      http://127.0.0.1:${httpPort}/`);
    expect(httpPort).not.toBe(chatPort);

    expect((await get(httpPort, '/')).text).toBe('cli page');
    await expect(WsClient.open(httpPort, { origin: `http://127.0.0.1:${httpPort}` })).rejects.toMatchObject({ status: 403 });
    const ws = track(await WsClient.open(httpPort, { origin: 'http://chat.example' }));
    ws.send({ type: 'hello', nick: 'cli' });
    await ws.waitEvent((e) => e.type === 'welcome');
    ws.ws.send('x'.repeat(3000));
    expect((await ws.waitClosed()).code).toBe(1009);
    await rm(dir, { recursive: true, force: true });
  });
});

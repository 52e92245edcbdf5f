/**
 * WebSocket clients over real sockets: the same JSON events as TCP JSON mode, the same rooms
 * as netcat users, and the same limits (Origin, message size, flood control, SendQ).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { WEB_DEFAULTS } from '../../../src/http/context.js';
import type { Frame } from '../../../src/protocol/frame.js';
import { WS_FRAME } from '../../../src/transport/ws/ws-frame.js';
import { Harness, until, type Ev, type LineClient } from '../../helpers/clients.js';
import { get, WsClient } from '../../helpers/web.js';

const h = new Harness();
const sockets: WsClient[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.close();
  await h.cleanup();
});
const open = async (port: number, opts: Parameters<typeof WsClient.open>[1] = {}): Promise<WsClient> => {
  const c = await WsClient.open(port, opts);
  sockets.push(c);
  return c;
};
const registered = async (port: number, nick: string, rooms?: string[]): Promise<WsClient> => {
  const c = await WsClient.registered(port, nick, rooms);
  sockets.push(c);
  return c;
};
const messages = (c: WsClient, nick?: string): Ev[] => c.events.filter((e) => e.type === 'message' && (!nick || e.nick === nick));
const textLines = (c: LineClient, room: string, nick: string): string[] =>
  c.lines.filter((l) => l.startsWith(`[${room}] ${nick}: `)).map((l) => l.slice(`[${room}] ${nick}: `.length));

test('a WebSocket user and a netcat user in one room see each other, with the events of JSON mode', async () => {
  const server = await h.server();
  const nc = await h.text(server, 'nelly');
  const ws = await registered(server.port, 'wendy', ['lobby', 'dev']);
  expect(ws.events[0]).toMatchObject({ type: 'welcome', nick: 'wendy', rooms: ['lobby', 'dev'] });
  expect(ws.events.find((e) => e.type === 'joined' && e.room === 'lobby')).toMatchObject({ self: true, members: ['nelly', 'wendy'] });
  await nc.waitLine('*** wendy joined [lobby]');

  nc.send('hi wendy');
  expect(await ws.waitEvent((e) => e.type === 'message')).toMatchObject({ room: 'lobby', nick: 'nelly', text: 'hi wendy', seq: 1 });
  ws.send({ type: 'message', room: 'lobby', text: 'hi nelly', id: 'm1' });
  expect(await ws.waitEvent((e) => e.type === 'ack')).toMatchObject({ id: 'm1', room: 'lobby', seq: 2 });
  await nc.waitLine('[lobby] wendy: hi nelly');
  ws.send({ type: 'privmsg', to: 'nelly', text: 'psst' });
  await nc.waitLine('[pm] wendy -> nelly: psst');
  nc.send('/me waves');
  expect(await ws.waitEvent((e) => e.type === 'message' && e.action === true)).toMatchObject({ text: 'waves' });

  // Each broadcast was framed for WebSocket once, on the frame shared by every recipient.
  const frames = server.hub.rooms.get('lobby')!.log.window(0, 10)!;
  const bytes = frames[0].encoded(WS_FRAME, () => {
    throw new Error('the server did not frame this message for WebSocket');
  });
  expect(bytes.subarray(2).toString()).toBe(frames[0].json.subarray(0, -1).toString());
  expect(bytes[0]).toBe(0x81); // FIN + text, unmasked

  ws.send({ type: 'quit', reason: 'bye now' });
  expect(await ws.waitEvent((e) => e.type === 'bye')).toMatchObject({ code: 'QUIT' });
  expect(await ws.waitClosed()).toEqual({ code: 1000, reason: 'goodbye' });
  await nc.waitLine('*** wendy left [lobby] (quit: bye now)');
  await until(() => server.wsConnections.size === 0, 2000, 'the WebSocket to go');
});

test('hello first: anything else is NOT_REGISTERED; bad JSON is BAD_JSON; the connection carries on', async () => {
  const server = await h.server();
  const ws = await open(server.port);
  ws.send({ type: 'message', text: 'too soon', id: 1 });
  expect(await ws.waitEvent((e) => e.type === 'error')).toMatchObject({ id: 1, code: 'NOT_REGISTERED' });
  ws.ws.send('{not json');
  expect(await ws.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'BAD_JSON' });
  ws.send({ type: 'hello', nick: 'late' });
  expect(await ws.waitEvent((e) => e.type === 'welcome')).toMatchObject({ nick: 'late' });
});

test('nothing valid within the registration timeout: REGISTRATION_TIMEOUT, close 1008', async () => {
  const server = await h.server({ connection: { registerTimeout: 200 } });
  const ws = await open(server.port);
  expect(await ws.waitEvent((e) => e.type === 'bye')).toMatchObject({ code: 'REGISTRATION_TIMEOUT' });
  expect(await ws.waitClosed()).toEqual({ code: 1008, reason: 'registration timeout' });
});

test('Origin: a page from another site is refused (403); this server\'s own page, and --origin, are allowed', async () => {
  const server = await h.server();
  const refused = await WsClient.open(server.port, { origin: 'http://evil.example' }).catch((e) => e);
  expect(refused).toMatchObject({ status: 403 });
  expect(JSON.parse(refused.body)).toEqual({
    error: {
      code: 'FORBIDDEN_ORIGIN',
      message: 'Requests from the web page at http://evil.example are not allowed here. Start the server with --origin http://evil.example to allow them.',
    },
  });
  expect(server.wsConnections.size).toBe(0);
  await open(server.port, { origin: `http://127.0.0.1:${server.port}` });
  await open(server.port); // not a browser: no Origin

  const listed = await h.server({ web: { ...WEB_DEFAULTS, origins: ['https://chat.example'] } });
  await open(listed.port, { origin: 'https://chat.example' });
  await expect(WsClient.open(listed.port, { origin: `http://127.0.0.1:${listed.port}` })).rejects.toMatchObject({ status: 403 });
  await expect(WsClient.open(listed.port, { path: '/not-ws' })).rejects.toMatchObject({ status: 404 });
  expect((await get(listed.port, '/ws')).status).toBe(426);
});

test('message size: over maxFrame is FRAME_TOO_LARGE and dropped; over maxPayload closes with 1009', async () => {
  const server = await h.server({
    connection: { maxFrame: 2048 },
    web: { ...WEB_DEFAULTS, wsMaxPayload: 4096 },
  });
  const nc = await h.text(server, 'nc');
  const ws = await registered(server.port, 'big');
  ws.send({ type: 'message', text: 'x'.repeat(3000), id: 1 });
  expect(await ws.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'FRAME_TOO_LARGE' });
  ws.send({ type: 'message', text: 'still here' });
  await nc.waitLine('[lobby] big: still here');

  ws.send({ type: 'message', text: 'y'.repeat(5000) });
  expect(await ws.waitClosed()).toEqual({ code: 1009, reason: 'message over the 4096-byte limit' });
  await nc.waitLine('*** big left [lobby] (WebSocket protocol error: message over the 4096-byte limit)');
  expect(nc.hasLine(/yyyy/)).toBe(false);
});

test('flood control: a WebSocket over its budget is slowed down (paused), loses nothing, and others are unaffected', async () => {
  const server = await h.server({ connection: { floodRate: 50, floodBurst: 5 } });
  const rx = await registered(server.port, 'rx');
  const other = await h.json(server, 'other');
  const fast = await registered(server.port, 'fast');
  const t0 = Date.now();
  for (let i = 1; i <= 25; i++) fast.ws.send(JSON.stringify({ type: 'message', text: `f${i}` }));
  other.sendJson({ type: 'message', text: 'meanwhile' });
  // The other client is not held up behind the flood.
  await rx.waitEvent((e) => e.type === 'message' && e.nick === 'other');
  expect(Date.now() - t0).toBeLessThan(300);
  await rx.waitFor(() => messages(rx, 'fast').length === 25, 5000, 'every flooded message');
  // 5 at once, then 20 more at 50/s.
  expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
  expect(messages(rx, 'fast').map((m) => m.text)).toEqual(Array.from({ length: 25 }, (_, i) => `f${i + 1}`));
  expect(server.stats.throttledBy.websocket).toBeGreaterThanOrEqual(1);
  expect(fast.closed).toBeNull();
});

test('a WebSocket that stops reading is closed with 1008 "SendQ exceeded"; everyone else gets everything, in order', async () => {
  const server = await h.server({ connection: { maxSendQueue: 64 * 1024, floodRate: 0, lingerMs: 10_000 } });
  const slow = await registered(server.port, 'slow');
  const rxWs = await registered(server.port, 'rxws');
  const rxTcp = await h.text(server, 'rxtcp');
  const tx = await registered(server.port, 'tx');
  slow.ws.pause(); // stops reading its socket: the server's output for it piles up

  const body = (n: number): string => `m${n} ` + String(n % 10).repeat(2000);
  let sent = 0;
  let cutAt = -1;
  const BATCH = 20;
  while (sent < 20_000) {
    for (let i = 1; i <= BATCH; i++) tx.send({ type: 'message', text: body(sent + i) });
    sent += BATCH;
    await rxWs.waitFor(() => messages(rxWs, 'tx').length === sent, 3000, `message ${sent} at rxws`);
    await rxTcp.waitFor(() => textLines(rxTcp, 'lobby', 'tx').length === sent, 3000, `message ${sent} at rxtcp`);
    if (cutAt < 0 && rxWs.events.some((e) => e.type === 'parted' && e.nick === 'slow')) cutAt = sent;
    if (cutAt > 0 && sent >= cutAt + 100) break;
  }
  expect(cutAt).toBeGreaterThan(0);
  const expected = Array.from({ length: sent }, (_, i) => body(i + 1));
  expect(messages(rxWs, 'tx').map((m) => m.text)).toEqual(expected);
  expect(messages(rxWs, 'tx').map((m) => m.seq)).toEqual(expected.map((_, i) => i + 1));
  expect(textLines(rxTcp, 'lobby', 'tx')).toEqual(expected);
  const parted = rxWs.events.find((e) => e.type === 'parted' && e.nick === 'slow')!;
  expect(parted.reason).toMatch(/^SendQ exceeded \(\d+ bytes queued\)$/);

  // The slow one gets a gapless prefix, then the reason, then the close frame.
  slow.ws.resume();
  expect(await slow.waitClosed(5000)).toEqual({ code: 1008, reason: 'SendQ exceeded' });
  const got = messages(slow, 'tx').map((m) => m.text);
  expect(got).toEqual(expected.slice(0, got.length));
  expect(slow.events.at(-1)).toMatchObject({ type: 'bye', code: 'SENDQ_EXCEEDED' });
  await until(() => server.stats.sendq.websocket === 1, 3000, 'the sendq disconnect to be counted');
  expect(server.stats.sendqDisconnects).toBe(1);
}, 30_000);

test('images: a header message, then the bytes as one binary message; mistakes are answered, not fatal', async () => {
  const server = await h.server({ classifier: { off: 'no model here' } });
  const nc = await h.text(server, 'nc');
  const ws = await registered(server.port, 'snap');
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(100, 7)]);

  ws.send({ type: 'image', id: 5, name: 'dir/dot.png', size: png.length });
  ws.ws.send(png);
  expect(await ws.waitEvent((e) => e.type === 'ack')).toMatchObject({ id: 5, room: 'lobby', seq: 1, image: 1 });
  await nc.waitLine('[lobby] snap posted image #1 dot.png (108 B)');
  await nc.waitLine('[lobby] classifier: #1 dot.png - the classifier bot is off: no model here');
  const bytes = await get(server.port, '/api/images/1');
  expect(bytes.headers['content-type']).toBe('image/png');
  expect(bytes.body.equals(png)).toBe(true);
  expect((await get(server.port, '/api/tasks/1')).json).toMatchObject({ id: '1', status: 'failed', error: { code: 'CLASSIFIER_OFF' } });

  ws.ws.send(png); // no header
  expect(await ws.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'BAD_MESSAGE' });
  ws.send({ type: 'image', id: 6, name: 'short.png', size: 500 });
  ws.ws.send(png);
  expect(await ws.waitEvent((e) => e.type === 'error')).toMatchObject({ id: 6, code: 'BAD_MESSAGE' });
  ws.send({ type: 'image', id: 7, name: 'huge.png', size: 9 << 20 });
  expect(await ws.waitEvent((e) => e.type === 'error')).toMatchObject({ id: 7, code: 'IMAGE_TOO_LARGE' });
  ws.ws.send(Buffer.alloc(10)); // the refused image's bytes (cut short here): skipped without a word
  ws.send({ type: 'ping', id: 8 });
  expect(await ws.waitEvent((e) => e.type === 'pong')).toMatchObject({ id: 8 });
  expect(ws.events.filter((e) => e.type === 'error')).toHaveLength(3);
  expect(server.hub.stats.images).toBe(1);
});

test('shutdown: WebSocket clients hear SHUTTING_DOWN and are closed with 1001', async () => {
  const server = await h.server({ shutdownTimeout: 2000 });
  const ws = await registered(server.port, 'w');
  const t0 = Date.now();
  await server.stop();
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(ws.events.at(-1)).toMatchObject({ type: 'bye', code: 'SHUTTING_DOWN' });
  expect(await ws.waitClosed()).toEqual({ code: 1001, reason: 'server shutting down' });
  expect(server.wsConnections.size).toBe(0);
  expect(server.hub.sessions.size).toBe(0);
});

test('pings are answered with their payload; a client\'s close is echoed, and the room hears it left', async () => {
  const server = await h.server();
  const nc = await h.text(server, 'nc');
  const ws = await registered(server.port, 'pinger');
  const pong = new Promise<string>((resolve) => ws.ws.once('pong', (data: Buffer) => resolve(data.toString())));
  ws.ws.ping('are you there');
  expect(await pong).toBe('are you there');
  ws.send({ type: 'message', text: 'after the ping' });
  await nc.waitLine('[lobby] pinger: after the ping');
  ws.ws.close(4000, 'done for today');
  expect(await ws.waitClosed()).toEqual({ code: 4000, reason: '' });
  await nc.waitLine('*** pinger left [lobby] (connection closed by the client)');
});

test('a text message that is not UTF-8 closes that WebSocket with 1007; the room carries on', async () => {
  const server = await h.server();
  const nc = await h.text(server, 'nc');
  const bad = await registered(server.port, 'bad');
  const good = await registered(server.port, 'good');
  bad.ws.send(Buffer.from([0x68, 0xff, 0x69]), { binary: false });
  expect(await bad.waitClosed()).toEqual({ code: 1007, reason: 'text messages must be UTF-8' });
  await nc.waitLine('*** bad left [lobby] (WebSocket protocol error: text messages must be UTF-8)');
  good.send({ type: 'message', text: 'still fine' });
  await nc.waitLine('[lobby] good: still fine');
});

test('frames that come in the same packet as the upgrade request are read, not lost with the handshake', async () => {
  const server = await h.server();
  const hello = Buffer.from(JSON.stringify({ type: 'hello', nick: 'eager' }));
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | hello.length, 0, 0, 0, 0]), hello]); // masked, zero key
  const socket = net.connect(server.port, '127.0.0.1');
  let seen = '';
  socket.on('data', (d: Buffer) => (seen += d.toString('latin1')));
  socket.write(
    Buffer.concat([
      Buffer.from(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
      frame,
    ]),
  );
  try {
    await until(() => seen.includes('"type":"welcome"'), 3000, 'the welcome');
    expect(seen.startsWith('HTTP/1.1 101 ')).toBe(true);
  } finally {
    socket.destroy();
  }
});

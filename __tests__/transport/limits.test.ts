/**
 * Every limit over real TCP: the offender's treatment, and that everyone else's messages still
 * arrive complete and in order.
 */
import { spawnSync } from 'node:child_process';
import { Harness, captureLogger, until, type Ev, type JsonClient, type LineClient } from '../helpers/clients.js';
import { WsClient } from '../helpers/web.js';

const h = new Harness();
afterEach(() => h.cleanup());

const texts = (c: JsonClient, nick: string): string[] =>
  c.events.filter((e) => e.type === 'message' && e.nick === nick).map((e) => e.text as string);
const textLines = (c: LineClient, room: string, nick: string): string[] =>
  c.lines.filter((l) => l.startsWith(`[${room}] ${nick}: `)).map((l) => l.slice(`[${room}] ${nick}: `.length));

describe('line length (text) and frame size (JSON)', () => {
  test('text: an oversized line gets LINE_TOO_LONG, is dropped whole, and the next line works', async () => {
    const server = await h.server({ connection: { maxLine: 200 } });
    const rx = await h.json(server, 'rx');
    const bob = await h.text(server, 'bob');
    const other = await h.text(server, 'other');

    bob.send('before', 'x'.repeat(201), 'after');
    other.send('o1');
    await bob.waitLine('! LINE_TOO_LONG: That line is longer than 200 bytes and was dropped. Send shorter lines.');
    // Oversized line in pieces, with the rest of a good line after its newline in the same write.
    bob.write('y'.repeat(150));
    await until(() => server.hub.stats.messages >= 3, 2000, 'the first messages');
    bob.write('y'.repeat(150));
    bob.write('y'.repeat(10) + '\nresync');
    bob.write('ed\n');
    other.send('o2');
    await bob.waitLine(/^! LINE_TOO_LONG: /);
    await rx.waitFor(() => texts(rx, 'bob').length === 3 && texts(rx, 'other').length === 2, 2000, 'all messages');
    expect(texts(rx, 'bob')).toEqual(['before', 'after', 'resynced']);
    expect(texts(rx, 'other')).toEqual(['o1', 'o2']);
    await other.waitFor(() => textLines(other, 'lobby', 'bob').length === 3);
    expect(textLines(other, 'lobby', 'bob')).toEqual(['before', 'after', 'resynced']);
    expect(bob.lines.filter((l) => l.startsWith('!'))).toHaveLength(2);
    expect(bob.closed).toBe(false);
  });

  test('a line of exactly maxLine bytes is accepted', async () => {
    const server = await h.server({ connection: { maxLine: 200 } });
    const rx = await h.json(server, 'rx');
    const bob = await h.text(server, 'bob');
    bob.send('z'.repeat(200));
    await rx.waitEvent((e) => e.type === 'message');
    expect(texts(rx, 'bob')).toEqual(['z'.repeat(200)]);
    expect(bob.hasLine(/^!/)).toBe(false);
  });

  test('JSON: an oversized frame gets FRAME_TOO_LARGE and the connection carries on', async () => {
    const server = await h.server({ connection: { maxLine: 100, maxFrame: 300 } });
    const rx = await h.text(server, 'rx');
    const tx = await h.json(server, 'tx');
    tx.sendJson({ type: 'message', id: 1, text: 'ok one' });
    tx.sendJson({ type: 'message', id: 2, text: 'q'.repeat(300) });
    tx.sendJson({ type: 'message', id: 3, text: 'ok three' });
    const err = await tx.waitEvent((e) => e.type === 'error');
    expect(err).toEqual({
      type: 'error',
      code: 'FRAME_TOO_LARGE',
      message: 'That frame is larger than 300 bytes and was dropped. Send smaller frames.',
    });
    await tx.waitFor(() => tx.ofType('ack').length === 2, 2000, 'two acks');
    expect(tx.ofType('ack').map((a) => [a.id, a.seq])).toEqual([
      [1, 1],
      [3, 2],
    ]);
    await rx.waitFor(() => textLines(rx, 'lobby', 'tx').length === 2);
    expect(textLines(rx, 'lobby', 'tx')).toEqual(['ok one', 'ok three']);
  });

  test('text: a line that never ends closes the connection with LINE_NEVER_ENDS; others carry on', async () => {
    const server = await h.server({ connection: { maxLine: 200 } });
    const rx = await h.json(server, 'rx');
    const other = await h.text(server, 'other');
    const bad = await h.text(server, 'bad');

    bad.write(Buffer.alloc((1 << 20) + 4096, 0x61)); // 1 MiB + 4 KiB, no newline
    other.send('still', 'talking');
    await bad.waitLine(/^! LINE_TOO_LONG: /);
    await bad.waitLine(
      '*** Disconnected: A line kept going past 1048576 bytes without an end; closing the connection.',
    );
    await bad.waitClosed();
    const parted = await rx.waitEvent((e) => e.type === 'parted' && e.nick === 'bad');
    expect(parted).toEqual({
      type: 'parted',
      room: 'lobby',
      nick: 'bad',
      reason: 'A line kept going past 1048576 bytes without an end; closing the connection.',
      quit: true,
    });
    other.send('after');
    await rx.waitFor(() => texts(rx, 'other').length === 3);
    expect(texts(rx, 'other')).toEqual(['still', 'talking', 'after']);
    expect(texts(rx, 'bad')).toEqual([]);
  });

  test('JSON: a frame that never ends gets a bye with code LINE_NEVER_ENDS', async () => {
    const server = await h.server();
    const rx = await h.json(server, 'rx');
    const bad = await h.json(server, 'bad');
    bad.write('{"type":"message","text":"' + 'a'.repeat((1 << 20) + 100));
    const err = await bad.waitEvent((e) => e.type === 'error');
    expect(err.code).toBe('FRAME_TOO_LARGE');
    const bye = await bad.waitEvent((e) => e.type === 'bye');
    expect(bye).toEqual({
      type: 'bye',
      code: 'LINE_NEVER_ENDS',
      reason: 'A line kept going past 1048576 bytes without an end; closing the connection.',
    });
    await bad.waitClosed();
    await rx.waitEvent((e) => e.type === 'parted' && e.nick === 'bad');
  });
});

describe('bounded send queue', () => {
  test('a client that stops reading is cut with "SendQ exceeded"; everyone else gets every message', async () => {
    const log = captureLogger();
    const server = await h.server({
      logger: log.logger,
      connection: { maxSendQueue: 64 * 1024, floodRate: 0 },
    });
    const slow = await h.text(server, 'slow');
    const rx1 = await h.json(server, 'rx1');
    const rx2 = await h.text(server, 'rx2');
    const tx = await h.json(server, 'tx');
    slow.socket.pause(); // stops reading: the server's output for it piles up

    const body = (n: number): string => `m${n} ` + String(n % 10).repeat(2000);
    let sent = 0;
    let cutAt = -1;
    const BATCH = 20;
    // Batches, each waited for by the readers, so only the one that does not read falls behind.
    while (sent < 20_000) {
      const batch = Array.from({ length: BATCH }, (_, i) => ({ type: 'message', text: body(sent + i + 1) }));
      tx.sendJson(...batch);
      sent += BATCH;
      await rx1.waitFor(() => rx1.ofType('message').length === sent, 3000, `message ${sent} at rx1`);
      await rx2.waitFor(() => textLines(rx2, 'lobby', 'tx').length === sent, 3000, `message ${sent} at rx2`);
      if (cutAt < 0 && rx1.events.some((e) => e.type === 'parted' && e.nick === 'slow')) cutAt = sent;
      if (cutAt > 0 && sent >= cutAt + 100) break;
    }
    expect(cutAt).toBeGreaterThan(0);
    slow.socket.resume();

    const expected = Array.from({ length: sent }, (_, i) => body(i + 1));
    expect(rx1.ofType('message').map((m) => m.text)).toEqual(expected);
    expect(rx1.ofType('message').map((m) => m.seq)).toEqual(expected.map((_, i) => i + 1));
    expect(textLines(rx2, 'lobby', 'tx')).toEqual(expected);
    await tx.waitFor(() => tx.ofType('ack').length === sent, 3000, 'every ack');
    expect(tx.ofType('ack').map((a) => a.seq)).toEqual(expected.map((_, i) => i + 1));

    const parted = rx1.events.find((e) => e.type === 'parted' && e.nick === 'slow') as Ev;
    expect(parted).toEqual({ type: 'parted', room: 'lobby', nick: 'slow', reason: expect.any(String), quit: true });
    const m = /^SendQ exceeded \((\d+) bytes queued\)$/.exec(parted.reason);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(64 * 1024);
    expect(rx2.lines).toContain(`*** slow left [lobby] (${parted.reason})`);

    // What the slow client did get is a complete, gapless prefix, then the reason.
    await slow.waitClosed(5000);
    const got = textLines(slow, 'lobby', 'tx');
    expect(got).toEqual(expected.slice(0, got.length));
    expect(slow.lines.at(-1)).toMatch(
      /^\*\*\* Disconnected: SendQ exceeded: you were not reading fast enough \(\d+ bytes queued\)\.$/,
    );

    await until(() => server.stats.sendqDisconnects === 1, 3000, 'the sendq disconnect to be counted');
    expect(log.lines).toContain(`info slow disconnected (${slowPeer(log.lines)}): ${parted.reason}`);
    expect(server.stats.sendqDisconnects).toBe(1);
  }, 25_000);
});

function slowPeer(lines: string[]): string {
  const l = lines.find((x) => x.startsWith('info slow disconnected ('));
  return l ? l.slice('info slow disconnected ('.length, l.indexOf(')')) : '(no log line)';
}

describe('connection limits', () => {
  test('max connections: the extra one is told in its own format and closed; after one leaves, a new one gets in', async () => {
    const server = await h.server({ maxConnections: 2 });
    const a = await h.text(server, 'a');
    const b = await h.json(server, 'b');

    const extraText = await h.raw(server);
    await extraText.waitClosed();
    expect(extraText.lines).toEqual([
      '! TOO_MANY_CONNECTIONS: The server is full (2 connections). Try again later.',
      '*** Disconnected: The server is full (2 connections). Try again later.',
    ]);

    const extraJson = await h.jsonOpen(server, { nick: 'c' });
    await extraJson.waitClosed();
    expect(extraJson.events).toEqual([
      { type: 'error', code: 'TOO_MANY_CONNECTIONS', message: 'The server is full (2 connections). Try again later.' },
      { type: 'bye', code: 'TOO_MANY_CONNECTIONS', reason: 'The server is full (2 connections). Try again later.' },
    ]);
    expect(server.stats.refused).toBe(2);
    expect(server.hub.sessions.size).toBe(2);

    // The two that got in carry on.
    a.send('still here');
    b.sendJson({ type: 'message', text: 'me too' });
    await b.waitEvent((e) => e.type === 'message' && e.nick === 'a' && e.text === 'still here');
    await a.waitLine('[lobby] b: me too');

    a.send('/quit');
    await a.waitClosed();
    await until(() => server.connections.size === 1, 2000, 'the server to see a go');
    const c = await h.json(server, 'c');
    expect(c.events[0]).toMatchObject({ type: 'welcome', nick: 'c' });
    expect(server.hub.sessions.size).toBe(2);
  });

  test('max per address: the extra one from 127.0.0.1 is refused, another address gets in', async () => {
    const server = await h.server({ maxPerAddress: 2 });
    const a = await h.text(server, 'a');
    const b = await h.text(server, 'b');
    const extra = await h.raw(server);
    await extra.waitClosed();
    expect(extra.lines).toEqual([
      '! TOO_MANY_FROM_ADDRESS: Too many connections from your address (2 from 127.0.0.1). Close one and try again.',
      '*** Disconnected: Too many connections from your address (2 from 127.0.0.1). Close one and try again.',
    ]);
    const extraJson = await h.jsonOpen(server, {});
    await extraJson.waitClosed();
    expect(extraJson.events.map((e) => [e.type, e.code])).toEqual([
      ['error', 'TOO_MANY_FROM_ADDRESS'],
      ['bye', 'TOO_MANY_FROM_ADDRESS'],
    ]);

    const elsewhere = await h.text(server, 'elsewhere', { localAddress: '127.0.0.2' });
    elsewhere.send('hi from .2');
    await a.waitLine('[lobby] elsewhere: hi from .2');
    a.send('hi a');
    await b.waitLine('[lobby] a: hi a');

    b.destroy();
    await until(() => server.hub.sessions.size === 2, 2000, 'the server to see b go');
    const again = await h.text(server, 'again');
    again.send('back');
    await a.waitLine('[lobby] again: back');
  });
});

describe('registration timeout', () => {
  const opts = { connection: { registerTimeout: 300 } };

  // Reading without talking is ordinary chat use: once a connection is a session, silence is
  // never a reason to close it. Each test waits for a connection that is NOT a session to be
  // closed by the same deadline (deadlines of one length expire in the order they were set), so
  // the silent readers opened before it are past their own deadline when it goes.
  test('text: a netcat user welcomed into [lobby] who never types stays, and still receives', async () => {
    const server = await h.server(opts);
    const reader = await h.text(server); // welcomed, never sends a byte
    const blank = await h.text(server);
    blank.send('', '   ', '/nosuch'); // nothing useful said, but a session all the same
    await blank.waitLine(/^! UNKNOWN_COMMAND: /);
    const unregistered = await h.jsonOpen(server, { nick: '9bad' });
    expect((await unregistered.waitEvent((e) => e.type === 'bye', 3000)).code).toBe('REGISTRATION_TIMEOUT');
    expect(reader.closed).toBe(false);
    expect(blank.closed).toBe(false);
    const talker = await h.json(server, 'talker');
    talker.sendJson({ type: 'message', room: 'lobby', text: 'anyone reading?' });
    await reader.waitLine('[lobby] talker: anyone reading?');
    await blank.waitLine('[lobby] talker: anyone reading?');
    expect(reader.lines.filter((l) => l.startsWith('*** Disconnected'))).toEqual([]);
  });

  test('JSON and WebSocket: a silent session stays; a WebSocket that never says hello is closed', async () => {
    const server = await h.server(opts);
    const json = await h.json(server, 'quietjson');
    const ws = await WsClient.registered(server.port, 'quietws');
    const never = await WsClient.open(server.port);
    try {
      expect(await never.waitEvent((e) => e.type === 'bye', 3000)).toMatchObject({ code: 'REGISTRATION_TIMEOUT' });
      expect(await never.waitClosed()).toEqual({ code: 1008, reason: 'registration timeout' });
      expect(json.closed).toBe(false);
      expect(ws.closed).toBeNull();
      const talker = await h.text(server, 'talker');
      talker.send('still there?');
      await json.waitEvent((e) => e.type === 'message' && e.text === 'still there?');
      await ws.waitEvent((e) => e.type === 'message' && e.text === 'still there?');
    } finally {
      ws.close();
      never.close();
    }
  });

  // With silence allowed, a peer that vanished without a FIN (power cut, cable pulled) is found
  // by TCP keepalive: the kernel's timer shows on the server's side of every kind of session.
  const ss = spawnSync('ss', ['-V']).status === 0;
  (ss ? test : test.skip)('TCP keepalive is on for text, JSON and WebSocket sessions (needs ss)', async () => {
    const server = await h.server();
    const text = await h.text(server);
    const json = await h.json(server, 'j');
    const ws = await WsClient.registered(server.port, 'w');
    try {
      const wsPort = [...server.wsConnections][0].socket.remotePort!;
      for (const [what, port] of [['text', text.socket.localPort!], ['JSON', json.socket.localPort!], ['WebSocket', wsPort]] as const) {
        // ss shows one timer per socket: while sent bytes wait for their ACK it is the
        // retransmission timer, so look until the keepalive timer is the one shown.
        let timer: RegExpExecArray | null = null;
        await until(() => {
          const out = spawnSync('ss', ['-tnoH', 'state', 'established', `( sport = :${server.port} and dport = :${port} )`], { encoding: 'utf8' }).stdout;
          return (timer = /timer:\(keepalive,(\d+)sec/.exec(out)) !== null;
        }, 3000, `a keepalive timer on the server's side of the ${what} session`);
        expect(Number(timer![1])).toBeLessThanOrEqual(60);
      }
    } finally {
      ws.close();
    }
  });

  test('JSON: a failed hello does not count; the bye says REGISTRATION_TIMEOUT; a good hello stays', async () => {
    const server = await h.server(opts);
    const bad = await h.jsonOpen(server, { nick: '9bad' });
    const good = await h.jsonOpen(server, { nick: 'good' });
    const err = await bad.waitEvent((e) => e.type === 'error');
    expect(err.code).toBe('NICK_INVALID');
    const bye = await bad.waitEvent((e) => e.type === 'bye', 3000);
    expect(bye.code).toBe('REGISTRATION_TIMEOUT');
    expect(bye.reason).toBe('No successful hello came in 300 ms; closing the connection. Connect again and send a hello first.');
    await bad.waitClosed();
    await new Promise((r) => setTimeout(r, 200)); // past the timeout for good as well
    expect(good.closed).toBe(false);
    good.sendJson({ type: 'ping', id: 'p' });
    await good.waitEvent((e) => e.type === 'pong' && e.id === 'p');
  });
});

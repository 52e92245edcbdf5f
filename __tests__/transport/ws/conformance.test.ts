/**
 * The WebSocket server against RFC 6455, over real sockets: a live server, and a client that
 * writes the handshake and every frame by hand, so it can send what no library client would
 * (unmasked frames, reserved bits and opcodes, bad close codes, lengths that lie). Each case
 * checks what the client reads (the close frame's code) and that the server closes the socket.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { WEB_DEFAULTS } from '../../../src/http/context.js';
import type { RoomcastServer } from '../../../src/server.js';
import { DEFAULT_WAIT, Harness, HOST, openSocket, type Ev } from '../../helpers/clients.js';
import { rawExchange, rawJson, WsClient } from '../../helpers/web.js';

const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

interface ServerFrame {
  fin: boolean;
  op: number;
  payload: Buffer;
}

interface FrameOptions {
  fin?: boolean;
  /** Unmasked, as only a server may send. */
  unmasked?: boolean;
  /** RSV1-3 as the bits 0x40, 0x20, 0x10 of the first byte. */
  rsv?: number;
  /** The header's 64-bit length, whatever the payload really is. */
  length64?: bigint;
}

/** A WebSocket client by hand: the handshake and frames as bytes; server frames parsed as they come. */
class RawWs {
  readonly frames: ServerFrame[] = [];
  /** The server closed the TCP connection (FIN or reset). */
  ended = false;
  /** The 101 has come; or what came instead, or what was wrong with a frame. */
  private handshaken = false;
  private problem: string | null = null;
  private buf = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  static async open(port: number): Promise<RawWs> {
    const socket = await openSocket(port);
    const c = new RawWs(socket);
    const key = randomBytes(16).toString('base64');
    socket.write(upgradeRequest(port, { 'Sec-WebSocket-Key': key }));
    await c.waitFor(() => c.handshaken, 'the 101');
    return c;
  }

  /** Opens and says hello, then waits for the welcome. */
  static async registered(port: number, nick: string): Promise<RawWs> {
    const c = await RawWs.open(port);
    c.send(OP.text, JSON.stringify({ type: 'hello', nick }));
    await c.waitEvent((e) => e.type === 'welcome');
    await c.waitEvent((e) => e.type === 'history');
    return c;
  }

  send(op: number, payload: string | Buffer = Buffer.alloc(0), o: FrameOptions = {}): void {
    this.socket.write(clientFrame(op, payload, o));
  }

  /** JSON events: the text frames the server sent. */
  get events(): Ev[] {
    return this.frames.filter((f) => f.op === OP.text).map((f) => JSON.parse(f.payload.toString()) as Ev);
  }

  async waitEvent(pred: (e: Ev) => boolean, what = 'an event'): Promise<Ev> {
    return this.waitFor(() => this.events.find(pred), what);
  }

  /** The server's close frame, and then the end of the connection. */
  async closed(): Promise<{ code: number; reason: string; frameCount: number }> {
    const close = await this.waitFor(() => this.frames.find((f) => f.op === OP.close), 'the close frame');
    await this.waitFor(() => this.ended, 'the server to close the connection');
    // The close frame is the last frame (RFC 6455 5.5.1).
    expect(this.frames.at(-1)).toBe(close);
    return { code: close.payload.readUInt16BE(0), reason: close.payload.toString('utf8', 2), frameCount: this.frames.length };
  }

  waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs = DEFAULT_WAIT): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.problem !== null) {
          clearTimeout(timer);
          this.waiters.delete(check);
          reject(new Error(this.problem));
          return;
        }
        const v = probe();
        if (!v) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const seen = this.frames.map((f) => `${f.op}:${f.payload.toString('latin1').slice(0, 80)}`);
        reject(new Error(`timed out waiting for ${what}; ended=${this.ended}; frames: ${seen.join(' | ')}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(): void {
    if (!this.handshaken) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.1 101 ')) {
        this.problem = `handshake refused: ${head}`;
        return;
      }
      this.handshaken = true;
      this.buf = this.buf.subarray(end + 4);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      const b1 = this.buf[1];
      if (b1 & 0x80) this.problem = 'the server masked a frame'; // a server never masks (5.1)
      let size = b1 & 0x7f;
      let at = 2;
      if (size === 126) {
        if (this.buf.length < 4) return;
        size = this.buf.readUInt16BE(2);
        at = 4;
      } else if (size === 127) {
        if (this.buf.length < 10) return;
        size = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buf.length < at + size) return;
      this.frames.push({ fin: (this.buf[0] & 0x80) !== 0, op: this.buf[0] & 0x0f, payload: Buffer.from(this.buf.subarray(at, at + size)) });
      this.buf = this.buf.subarray(at + size);
    }
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

function clientFrame(op: number, payload: string | Buffer, o: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = o.unmasked ? null : randomBytes(4);
  let head: Buffer;
  if (o.length64 !== undefined) {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(o.length64, 2);
  } else if (data.length < 126) {
    head = Buffer.from([0, data.length]);
  } else if (data.length < 65536) {
    head = Buffer.from([0, 126, data.length >> 8, data.length & 0xff]);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  head[0] = (o.fin === false ? 0 : 0x80) | (o.rsv ?? 0) | op;
  if (mask === null) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, masked]);
}

function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(code);
  return Buffer.concat([out, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

function upgradeRequest(port: number, headers: Record<string, string | null> = {}, requestLine = 'GET /ws HTTP/1.1'): string {
  const all: Record<string, string | null> = {
    Host: `${HOST}:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = Object.entries(all).filter(([, v]) => v !== null);
  return `${requestLine}\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** The answer to a handshake that the server refuses, and that it closed the connection after it. */
async function refused(port: number, request: string): Promise<{ status: number; head: string; code: string }> {
  const r = await rawExchange(port, request);
  expect(r.closed).toBe(true);
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(r.text)?.[1]);
  return { status, head: r.text.slice(0, r.text.indexOf('\r\n\r\n')), code: rawJson(r.text).error.code };
}

const h = new Harness();
const clients: RawWs[] = [];
const observers: WsClient[] = [];
let server: RoomcastServer;
beforeEach(async () => {
  server = await h.server({ web: { ...WEB_DEFAULTS, wsMaxPayload: 64 * 1024 } });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const o of observers.splice(0)) o.close();
  await h.cleanup();
});
const raw = async (nick?: string): Promise<RawWs> => {
  const c = nick === undefined ? await RawWs.open(server.port) : await RawWs.registered(server.port, nick);
  clients.push(c);
  return c;
};
const observer = async (nick: string): Promise<WsClient> => {
  const o = await WsClient.registered(server.port, nick);
  observers.push(o);
  return o;
};

describe('opening handshake (RFC 6455 4.2)', () => {
  test('a valid request is answered 101 with the accept value of its key, and no extension or subprotocol', async () => {
    // The example of RFC 6455 1.3.
    const request = upgradeRequest(server.port, {
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
      'Sec-WebSocket-Protocol': 'chat, superchat',
      Upgrade: 'WebSocket',
      Connection: 'keep-alive, Upgrade',
    });
    const r = await rawExchange(server.port, request, { until: /\r\n\r\n/ });
    expect(r.text).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    );
  });

  test('another version than 13 (or none) is refused with 426 and the version the server speaks', async () => {
    for (const version of ['8', '14', null]) {
      const r = await refused(server.port, upgradeRequest(server.port, { 'Sec-WebSocket-Version': version }));
      expect(r).toMatchObject({ status: 426, code: 'WEBSOCKET_VERSION' });
      expect(r.head).toMatch(/\r\nSec-WebSocket-Version: 13\r\n/);
    }
  });

  test('a missing key, or one that is not 16 bytes of base64, is refused with 400', async () => {
    const keys = [null, randomBytes(8).toString('base64'), randomBytes(17).toString('base64'), 'not base64 at all!!!!!==', ''];
    for (const key of keys) {
      expect(await refused(server.port, upgradeRequest(server.port, { 'Sec-WebSocket-Key': key }))).toMatchObject({
        status: 400,
        code: 'BAD_WEBSOCKET_HANDSHAKE',
      });
    }
  });

  test('without Connection: Upgrade, or with another Upgrade, it is no handshake: 426', async () => {
    // Each asks for Connection: close, so that a plain request's answer ends the exchange too.
    const cases: Record<string, string | null>[] = [{ Connection: 'close' }, { Upgrade: null, Connection: 'Upgrade, close' }, { Upgrade: 'h2c', Connection: 'Upgrade, close' }];
    for (const headers of cases) {
      const r = await refused(server.port, upgradeRequest(server.port, headers));
      expect(r).toMatchObject({ status: 426, code: 'UPGRADE_REQUIRED' });
      expect(r.head).toMatch(/\r\nUpgrade: websocket\r\n/);
    }
  });

  test('a method other than GET is refused with 405; HTTP/1.0 and a missing Host with 400', async () => {
    const post = await refused(server.port, upgradeRequest(server.port, {}, 'POST /ws HTTP/1.1'));
    expect(post).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });
    expect(post.head).toMatch(/\r\nAllow: GET\r\n/);
    expect(await refused(server.port, upgradeRequest(server.port, {}, 'GET /ws HTTP/1.0'))).toMatchObject({ status: 400, code: 'BAD_WEBSOCKET_HANDSHAKE' });
    expect(await refused(server.port, upgradeRequest(server.port, { Host: null }))).toMatchObject({ status: 400, code: 'BAD_WEBSOCKET_HANDSHAKE' });
  });

  test('an Origin of another site is refused with 403; another path with 404', async () => {
    expect(await refused(server.port, upgradeRequest(server.port, { Origin: 'http://evil.example' }))).toMatchObject({ status: 403, code: 'FORBIDDEN_ORIGIN' });
    expect(await refused(server.port, upgradeRequest(server.port, {}, 'GET /wss HTTP/1.1'))).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect(server.wsConnections.size).toBe(0);
  });

  test('a client that resets the connection once it is refused does not bring the server down', async () => {
    for (const path of ['/ws', '/elsewhere']) {
      const socket = await openSocket(server.port);
      const answered = new Promise((resolve) => socket.once('data', resolve));
      socket.write(upgradeRequest(server.port, { Origin: 'http://evil.example' }, `GET ${path} HTTP/1.1`));
      await answered;
      socket.resetAndDestroy();
    }
    await observer('still-up');
  });
});

describe('fragmented messages (RFC 6455 5.4)', () => {
  test.each([2, 10])('a text message in %i fragments is one message', async (n) => {
    const rx = await observer('rx');
    const c = await raw('frag');
    const json = Buffer.from(JSON.stringify({ type: 'message', text: `in ${n} pieces: ${'abcdefghij'.repeat(3)}` }));
    const cut = Array.from({ length: n + 1 }, (_, i) => Math.round((i * json.length) / n));
    for (let i = 0; i < n; i++) c.send(i === 0 ? OP.text : OP.continuation, json.subarray(cut[i], cut[i + 1]), { fin: i === n - 1 });
    expect(await rx.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'frag', text: `in ${n} pieces: ${'abcdefghij'.repeat(3)}` });
  });

  test('a UTF-8 character split across fragments is read whole', async () => {
    const rx = await observer('rx');
    const c = await raw('split');
    const json = Buffer.from(JSON.stringify({ type: 'message', text: 'caf\u00e9 \u{1f600}!' }));
    const e = json.indexOf(0xc3); // é is C3 A9; the emoji F0 9F 98 80
    const f = json.indexOf(0xf0);
    c.send(OP.text, json.subarray(0, e + 1), { fin: false });
    c.send(OP.continuation, json.subarray(e + 1, f + 2), { fin: false });
    c.send(OP.continuation, json.subarray(f + 2));
    expect(await rx.waitEvent((ev) => ev.type === 'message')).toMatchObject({ text: 'caf\u00e9 \u{1f600}!' });
  });

  test('a ping between fragments is answered at once with its payload; the message then completes', async () => {
    const c = await raw('pinger');
    const json = Buffer.from(JSON.stringify({ type: 'message', text: 'around a ping', id: 'm1' }));
    c.send(OP.text, json.subarray(0, 10), { fin: false });
    c.send(OP.ping, 'mid-message');
    const pong = await c.waitFor(() => c.frames.find((f) => f.op === OP.pong), 'the pong');
    expect(pong).toEqual({ fin: true, op: OP.pong, payload: Buffer.from('mid-message') });
    c.send(OP.pong, 'unasked'); // an unsolicited pong is ignored
    c.send(OP.continuation, json.subarray(10));
    expect(await c.waitEvent((e) => e.type === 'ack')).toMatchObject({ id: 'm1' });
    expect(c.frames.indexOf(pong)).toBeLessThan(c.frames.findIndex((f) => f.op === OP.text && f.payload.includes('"ack"')));
  });

  test('a new message before the last fragment, or a continuation of nothing, is 1002', async () => {
    const a = await raw();
    a.send(OP.text, '{"type":', { fin: false });
    a.send(OP.text, '{"type":"ping"}');
    expect((await a.closed()).code).toBe(1002);
    const b = await raw();
    b.send(OP.continuation, '{"type":"ping"}');
    expect((await b.closed()).code).toBe(1002);
  });
});

describe('closing (RFC 6455 5.5.1, 7.4)', () => {
  test('a close with a code and a reason is answered with that code, and the server closes the connection', async () => {
    const c = await raw('leaver');
    c.send(OP.close, closePayload(1000, 'see you'));
    expect(await c.closed()).toMatchObject({ code: 1000 });
  });

  test('a close without a payload is answered 1000', async () => {
    const c = await raw('quiet');
    c.send(OP.close);
    expect(await c.closed()).toMatchObject({ code: 1000 });
  });

  test.each([999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])('a close with code %i, which no endpoint may send, is 1002', async (code) => {
    const c = await raw();
    c.send(OP.close, closePayload(code, 'why'));
    expect((await c.closed()).code).toBe(1002);
  });

  test('a close payload of one byte is 1002', async () => {
    const c = await raw();
    c.send(OP.close, Buffer.from([0x03]));
    expect((await c.closed()).code).toBe(1002);
  });

  test('a close reason that is not UTF-8 is 1007', async () => {
    const c = await raw();
    c.send(OP.close, closePayload(1000, Buffer.from([0x62, 0x79, 0xff, 0x65])));
    expect((await c.closed()).code).toBe(1007);
  });

  test('nothing after the client\'s close frame is read', async () => {
    const rx = await observer('rx');
    const c = await raw('last');
    c.socket.write(Buffer.concat([clientFrame(OP.close, closePayload(1000)), clientFrame(OP.text, '{"type":"message","text":"ghost"}')]));
    expect((await c.closed()).code).toBe(1000);
    await rx.waitEvent((e) => e.type === 'parted' && e.nick === 'last');
    expect(rx.events.some((e) => e.text === 'ghost')).toBe(false);
  });
});

describe('frames the RFC says must fail the connection', () => {
  test('an unmasked client frame is 1002 (5.1)', async () => {
    const c = await raw();
    c.send(OP.text, '{"type":"ping"}', { unmasked: true });
    expect((await c.closed()).code).toBe(1002);
  });

  test.each([
    ['RSV1', 0x40],
    ['RSV2', 0x20],
    ['RSV3', 0x10],
  ])('%s set, with no extension negotiated, is 1002 (5.2)', async (_bit, rsv) => {
    const c = await raw();
    c.send(OP.text, '{"type":"ping"}', { rsv });
    expect((await c.closed()).code).toBe(1002);
  });

  test.each([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf])('the reserved opcode %i is 1002 (5.2)', async (op) => {
    const c = await raw();
    c.send(op, 'x');
    expect((await c.closed()).code).toBe(1002);
  });

  test('a ping of more than 125 bytes, or a fragmented one, is 1002 (5.5)', async () => {
    const a = await raw();
    a.send(OP.ping, Buffer.alloc(126, 0x61));
    expect((await a.closed()).code).toBe(1002);
    const b = await raw();
    b.send(OP.ping, 'part', { fin: false });
    expect((await b.closed()).code).toBe(1002);
  });

  test('a text message that is not UTF-8 is 1007', async () => {
    const c = await raw('bad');
    c.send(OP.text, Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]));
    expect((await c.closed()).code).toBe(1007);
  });

  test('bad UTF-8 in the first fragment fails at once, before the message is complete (8.1)', async () => {
    const c = await raw('early');
    c.send(OP.text, Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80]), { fin: false }); // a UTF-16 surrogate, encoded
    expect((await c.closed()).code).toBe(1007);
    const d = await raw('early2');
    d.send(OP.text, Buffer.from([0x7b, 0x22, 0xf8]), { fin: false }); // never a UTF-8 byte
    expect((await d.closed()).code).toBe(1007);
  });

  test('a message longer than the limit is 1009 on its header, before the rest of it comes', async () => {
    const c = await raw('big');
    // The header announces 1 MiB; only 10 bytes of it are sent.
    c.send(OP.binary, Buffer.alloc(10), { length64: BigInt(1 << 20) });
    expect((await c.closed()).code).toBe(1009);
  });

  test('fragments that add up to more than the limit are 1009', async () => {
    const c = await raw('piles');
    c.send(OP.text, Buffer.alloc(40 * 1024, 0x61), { fin: false });
    c.send(OP.continuation, Buffer.alloc(40 * 1024, 0x61), { fin: false });
    expect((await c.closed()).code).toBe(1009);
  });

  test('a 64-bit length with the most significant bit set is 1002 (5.2)', async () => {
    const c = await raw();
    c.send(OP.binary, Buffer.alloc(4), { length64: 1n << 63n });
    expect((await c.closed()).code).toBe(1002);
  });
});

test('a client that breaks the protocol is closed alone: the others in its room go on chatting', async () => {
  const rx = await observer('rx');
  const good = await raw('good');
  const bad = await raw('bad');
  bad.send(OP.text, '{"type":"message","text":"unmasked"}', { unmasked: true });
  expect((await bad.closed()).code).toBe(1002);
  await rx.waitEvent((e) => e.type === 'parted' && e.nick === 'bad');
  good.send(OP.text, JSON.stringify({ type: 'message', text: 'still here' }));
  expect(await rx.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'good', text: 'still here' });
  expect(rx.events.some((e) => e.text === 'unmasked')).toBe(false);
});

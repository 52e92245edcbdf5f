/**
 * The chat client against a real server on 127.0.0.1. Reconnect timers are fake: the test
 * decides when a reconnect happens, so "messages posted while it was away" is a certainty and
 * not a race, and nothing waits for a real backoff.
 */
import {
  ChatClient,
  ConnectError,
  NotConnectedError,
  RequestError,
  type Answered,
  type ChatClientOptions,
  type Timers,
} from '../../src/client/chat-client.js';
import type { MessageEvent, ServerEvent } from '../../src/protocol/events.js';
import net from 'node:net';
import { RoomcastServer } from '../../src/server.js';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness, HOST, until, type JsonClient } from '../helpers/clients.js';

/** Timers that only fire when told to. */
class ManualTimers implements Timers {
  private next = 1;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { fn, ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Fires every pending timer of exactly `ms`; returns how many fired. */
  fire(ms: number): number {
    const due = [...this.pending].filter(([, t]) => t.ms === ms);
    for (const [id, t] of due) {
      this.pending.delete(id);
      t.fn();
    }
    return due.length;
  }
  has(ms: number): boolean {
    return [...this.pending.values()].some((t) => t.ms === ms);
  }
}

/** A ChatClient plus everything it reported, for assertions. */
class Recorder {
  readonly events: { event: ServerEvent; answered?: Answered }[] = [];
  readonly log: string[] = [];
  constructor(readonly client: ChatClient) {
    client.on('event', (event, answered) => this.events.push({ event, answered }));
    client.on('connected', (w, info) =>
      this.log.push(`${info.reconnected ? 'reconnected' : 'connected'} ${w.nick}${info.historyLost ? ' to another history' : ''}`),
    );
    client.on('disconnected', (d) => this.log.push(`disconnected ${d.retryInMs}`));
    client.on('retrying', (r) => this.log.push(`retrying ${r.retryInMs}`));
    client.on('closed', (c) => this.log.push(`closed ${c.reason}`));
  }

  /** Every message seen in a room, live or from history, in the order reported. */
  messages(room: string): MessageEvent[] {
    const out: MessageEvent[] = [];
    for (const { event: e } of this.events) {
      if (e.type === 'message' && e.room === room) out.push(e);
      if (e.type === 'history' && e.room === room) out.push(...e.messages.filter((m): m is MessageEvent => m.type === 'message'));
    }
    return out;
  }

  texts(room: string): string[] {
    return this.messages(room).map((m) => m.text);
  }
}

const BACKOFF = { initialMs: 500, maxMs: 10_000, jitter: 0.25 };

describe('ChatClient against a real server', () => {
  const h = new Harness();
  const clients: ChatClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await h.cleanup();
  });

  function makeClient(server: RoomcastServer, opts: Partial<ChatClientOptions> = {}): { client: ChatClient; rec: Recorder; timers: ManualTimers } {
    const timers = new ManualTimers();
    const client = new ChatClient({
      host: HOST,
      port: server.port,
      timers,
      random: () => 0, // no jitter: the first retry is exactly initialMs
      heartbeatMs: 0,
      backoff: BACKOFF,
      ...opts,
    });
    clients.push(client);
    return { client, rec: new Recorder(client), timers };
  }

  /** Posts messages as a plain JSON client and waits for each ack. */
  async function post(poster: JsonClient, room: string, ...texts: string[]): Promise<void> {
    for (const text of texts) {
      poster.sendJson({ type: 'message', room, text, id: text });
      await poster.waitEvent((e) => e.type === 'ack' && e.id === text);
    }
  }

  function connectionOf(server: RoomcastServer, nick: string) {
    const conn = [...server.connections].find((c) => c.session?.nick === nick);
    if (!conn) throw new Error(`no connection for ${nick}`);
    return conn;
  }

  test('registers, joins its rooms, and matches replies to requests by id', async () => {
    const server = await h.server();
    const { client, rec } = makeClient(server, { nick: 'alice', rooms: ['dev', 'ops'] });
    const welcome = await client.connect();
    expect(welcome.nick).toBe('alice');
    await until(() => client.rooms.size === 2, 3000, 'both rooms joined');
    expect(client.currentRoom).toBe('ops');

    const [who, pong, ack] = await Promise.all([
      client.request({ type: 'who', room: 'dev' }),
      client.request({ type: 'ping' }),
      client.say('hello ops'),
    ]);
    expect(who).toMatchObject({ type: 'who', room: 'dev', members: ['alice'] });
    expect(pong.type).toBe('pong');
    expect(ack).toMatchObject({ type: 'ack', room: 'ops', seq: 1 });
    const ackReport = rec.events.find((e) => e.event.type === 'ack');
    expect(ackReport?.answered?.command).toMatchObject({ type: 'message', text: 'hello ops', room: 'ops' });

    // A join resolves with "joined" once its history has come too, and becomes the current room.
    const joined = await client.join('#Random');
    expect(joined).toMatchObject({ type: 'joined', room: 'random', self: true });
    expect(rec.events.some((e) => e.event.type === 'history' && e.event.room === 'random')).toBe(true);
    expect(client.currentRoom).toBe('random');

    await expect(client.request({ type: 'part', room: 'nowhere' })).rejects.toMatchObject({ code: 'NOT_IN_ROOM' });
    await expect(client.request({ type: 'nick', nick: 'bad nick' })).rejects.toBeInstanceOf(RequestError);
    await client.quit();
    expect(client.phase).toBe('closed');
    expect(rec.log.at(-1)).toBe('closed quit');
  });

  test('a taken nick gets a suffix', async () => {
    const server = await h.server();
    await h.json(server, 'bob');
    const { client, rec } = makeClient(server, { nick: 'bob' });
    expect((await client.connect()).nick).toBe('bob_2');
    expect(rec.log).toEqual(['connected bob_2']);
  });

  test('a refused connection and a refused hello fail connect() with a reason', async () => {
    const server = await h.server();
    const port = server.port;
    const { client: invalid } = makeClient(server, { nick: 'no spaces allowed' });
    await expect(invalid.connect()).rejects.toMatchObject({ code: 'NICK_INVALID' });
    await h.cleanup();
    const { client } = makeClient({ port } as RoomcastServer);
    const err = (await client.connect().catch((e: unknown) => e)) as ConnectError;
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.message).toBe(`could not connect to 127.0.0.1:${port}: connection refused — is the server running? start one with: roomcast serve`);
    expect(client.phase).toBe('closed');
  });

  test('after the server drops it, it reconnects and gets exactly the missed messages, once, in order', async () => {
    const server = await h.server();
    const poster = await h.json(server, 'poster', ['lobby', 'dev']);
    await post(poster, 'lobby', 'before 1', 'before 2');

    const { client, rec, timers } = makeClient(server, { nick: 'alice', rooms: ['lobby', 'dev'] });
    await client.connect();
    await until(() => rec.texts('lobby').length === 2, 3000, 'the replay');
    await post(poster, 'lobby', 'live 1');
    await until(() => rec.texts('lobby').includes('live 1'), 3000, 'a live message');
    await client.say('mine', 'lobby');

    // The server cuts the connection; nothing is sent to the client until it is back.
    connectionOf(server, 'alice').socket.destroy();
    await until(() => rec.log.includes('disconnected 500'), 3000, 'the drop to be noticed');
    expect(client.phase).toBe('waiting');
    await expect(client.say('while away')).rejects.toBeInstanceOf(NotConnectedError);
    await post(poster, 'lobby', 'missed 1', 'missed 2', 'missed 3');
    await post(poster, 'dev', 'missed in dev');

    expect(timers.fire(500)).toBe(1);
    await until(() => rec.log.includes('reconnected alice'), 3000, 'the reconnect');
    await until(() => rec.texts('lobby').includes('missed 3') && rec.texts('dev').includes('missed in dev'), 3000, 'the gap to fill');
    await post(poster, 'lobby', 'live 2');
    await until(() => rec.texts('lobby').includes('live 2'), 3000, 'live messages again');

    // "mine" came back as our own ack, never as a message; everything else exactly once.
    expect(rec.texts('lobby')).toEqual(['before 1', 'before 2', 'live 1', 'missed 1', 'missed 2', 'missed 3', 'live 2']);
    expect(rec.texts('dev')).toEqual(['missed in dev']);
    const seqs = rec.messages('lobby').map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(client.currentRoom).toBe('dev'); // the rejoin did not move the current room
    expect(client.rooms.get('lobby')?.lastSeq).toBe(8); // 2 before, live 1, mine, 3 missed, live 2
    expect(rec.log).toEqual(['connected alice', 'disconnected 500', 'reconnected alice']);

    // The server agrees about the current room: a message with no room goes where we think.
    poster.sendJson({ type: 'join', room: 'dev' });
    await client.say('to the current room');
    await poster.waitEvent((e) => e.type === 'message' && e.text === 'to the current room' && e.room === 'dev');
  });

  test('a registered nick: after /register, a reconnect logs in again and keeps it (not alice_2)', async () => {
    const server = await h.server();
    const { client, rec, timers } = makeClient(server, { nick: 'alice' });
    await client.connect();
    const answer = await client.request({ type: 'register', password: 'a long enough password' });
    expect(answer).toMatchObject({ type: 'notice', text: expect.stringMatching(/^Registered alice/) });
    connectionOf(server, 'alice').socket.destroy();
    await until(() => rec.log.includes('disconnected 500'), 3000, 'the drop to be noticed');
    expect(timers.fire(500)).toBe(1);
    await until(() => rec.log.includes('reconnected alice'), 3000, 'the reconnect as alice');
    expect(client.nick).toBe('alice');
    expect(server.hub.sessions.get('alice')?.account).toBe('alice');
  });

  test('backoff doubles while the server is away, and rooms survive a server restart', async () => {
    const first = await h.server();
    const port = first.port;
    const { client, rec, timers } = makeClient(first, { nick: 'alice', rooms: ['dev'] });
    await client.connect();
    const poster = await h.json(first, 'poster', ['dev']);
    await post(poster, 'dev', 'old 1', 'old 2', 'old 3');
    await until(() => rec.texts('dev').length === 3, 3000, 'the old messages');

    await first.stop();
    await until(() => client.phase === 'waiting', 3000, 'the drop to be noticed');
    // Nothing listens: each attempt fails and the next waits twice as long.
    expect(timers.fire(500)).toBe(1);
    await until(() => rec.log.includes('retrying 1000'), 3000, 'a failed attempt');
    expect(timers.fire(1000)).toBe(1);
    await until(() => rec.log.includes('retrying 2000'), 3000, 'a second failed attempt');

    // A new server on the same port numbers the room from 1 again.
    const second = new RoomcastServer({ hosts: [HOST], port, connection: { ...CONNECTION_DEFAULTS, greetDelay: 30 } });
    await second.start();
    try {
      const poster2 = await h.json(second, 'poster', ['dev']);
      await post(poster2, 'dev', 'new 1', 'new 2');
      expect(timers.fire(2000)).toBe(1);
      await until(() => rec.texts('dev').includes('new 2'), 3000, 'the new server\'s messages');
      await post(poster2, 'dev', 'new 3');
      await until(() => rec.texts('dev').includes('new 3'), 3000, 'a live message on the new server');
      expect(rec.texts('dev')).toEqual(['old 1', 'old 2', 'old 3', 'new 1', 'new 2', 'new 3']);
      expect(client.rooms.get('dev')?.lastSeq).toBe(3);
      // Backoff starts over after a success.
      connectionOf(second, 'alice').socket.destroy();
      await until(() => rec.log.at(-1) === 'disconnected 500', 3000, 'a fresh backoff');
      client.close();
    } finally {
      await second.stop();
    }
  });

  test('several addresses: one that does not answer is passed over, and when the node in use is lost the client goes on at the next', async () => {
    const a = await h.server();
    const b = await h.server();
    const nobody = net.createServer();
    await new Promise<void>((resolve) => nobody.listen(0, HOST, resolve));
    const deadPort = (nobody.address() as net.AddressInfo).port;
    await new Promise((resolve) => nobody.close(resolve));
    const { client, rec, timers } = makeClient(a, {
      port: deadPort,
      alternates: [
        { host: HOST, port: a.port },
        { host: HOST, port: b.port },
      ],
      nick: 'alice',
      rooms: ['lobby'],
    });
    const infos: { moved: boolean; port: number }[] = [];
    client.on('connected', (_w, info) => infos.push({ moved: info.moved, port: info.address.port }));
    await client.connect();
    expect(client.address.port).toBe(a.port);

    await a.stop();
    await until(() => client.phase === 'waiting', 3000, 'the loss to be noticed');
    expect(timers.fire(500)).toBe(1);
    await until(() => rec.log.length === 3, 3000, 'the reconnect');
    // Another server, so another history: the client knows its numbers mean nothing there.
    expect(rec.log).toEqual(['connected alice', 'disconnected 500', 'reconnected alice to another history']);
    expect(infos).toEqual([
      { moved: false, port: a.port },
      { moved: true, port: b.port },
    ]);
    const poster = await h.json(b, 'poster', ['lobby']);
    await post(poster, 'lobby', 'on b');
    await until(() => rec.texts('lobby').includes('on b'), 3000, 'a message on the next node');
  });

  test('requests in flight when the connection drops are failed, not left hanging', async () => {
    const server = await h.server();
    const { client, timers } = makeClient(server, { nick: 'alice' });
    await client.connect();
    const conn = connectionOf(server, 'alice');
    conn.socket.pause(); // the server stops reading: the ping is never answered
    const ping = client.request({ type: 'ping' });
    await new Promise((r) => setImmediate(r));
    conn.socket.destroy();
    await expect(ping).rejects.toBeInstanceOf(NotConnectedError);
    expect(timers.has(500)).toBe(true);
  });

  test('an error the server could not tag with an id fails the oldest request', async () => {
    const server = await h.server({ connection: { maxFrame: 1024 } });
    const { client } = makeClient(server, { nick: 'alice' });
    await client.connect();
    const tooBig = client.say('x'.repeat(2000));
    const fine = client.say('small');
    await expect(tooBig).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
    await expect(fine).resolves.toMatchObject({ type: 'ack' });
  });

  test('with reconnect off, a drop closes the client', async () => {
    const server = await h.server();
    const { client, rec } = makeClient(server, { nick: 'alice', reconnect: false });
    await client.connect();
    connectionOf(server, 'alice').socket.destroy();
    await client.closed;
    expect(rec.log).toEqual(['connected alice', 'disconnected null', expect.stringMatching(/^closed /)]);
    await expect(client.whenReady()).rejects.toBeInstanceOf(NotConnectedError);
  });

  test('a silent server is pinged, and dropped when it does not answer', async () => {
    const server = await h.server();
    let now = 1_000_000;
    const { client, rec, timers } = makeClient(server, { nick: 'alice', heartbeatMs: 1000, now: () => now });
    await client.connect();
    now += 1000;
    expect(timers.fire(1000)).toBe(1); // silent for 1 s: a ping goes out, and is answered
    expect(timers.has(1000)).toBe(true);
    // Replies come in order, so once our own ping is answered the heartbeat's was too; only
    // ours reached the listeners.
    await client.request({ type: 'ping' });
    expect(rec.events.filter((e) => e.event.type === 'pong')).toHaveLength(1);
    const conn = connectionOf(server, 'alice');
    conn.socket.pause(); // now the server stops answering
    now += 1000;
    timers.fire(1000);
    now += 1000;
    timers.fire(1000);
    await until(() => rec.log.includes('disconnected 500'), 3000, 'the dead link to be dropped');
  });
});

/**
 * A scripted server, to check what a real one never does: send the same message twice. It
 * also records exactly what the client asks for when it rejoins.
 */
describe('ChatClient against a scripted server', () => {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  let port = 0;
  const received: Record<string, unknown>[][] = []; // per connection, what the client sent
  let script: (send: (e: object) => void, cmd: Record<string, unknown>, conn: number) => void;

  beforeEach(async () => {
    received.length = 0;
    server = net.createServer((socket) => {
      sockets.add(socket);
      const conn = received.push([]) - 1;
      let buf = '';
      const send = (e: object): void => void socket.write(JSON.stringify(e) + '\n');
      socket.on('data', (d) => {
        buf += d.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
          const cmd = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
          buf = buf.slice(nl + 1);
          received[conn].push(cmd);
          script(send, cmd, conn);
        }
      });
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    port = (server.address() as net.AddressInfo).port;
  });

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  const m = (seq: number, text = `m${seq}`) => ({ type: 'message', room: 'lobby', seq, nick: 'bob', text, time: 0 });
  const welcome = { type: 'welcome', nick: 'alice', server: 'fake', version: '0', history: 'h1', rooms: ['lobby'], limits: {} };

  test('duplicates are dropped by seq, and a rejoin asks for what came after the last one seen', async () => {
    script = (send, cmd, conn) => {
      if (cmd.type === 'hello' && conn === 0) {
        send(welcome);
        send({ type: 'joined', room: 'lobby', nick: 'alice', self: true, members: ['alice', 'bob'], seq: 2, topic: '' });
        send({ type: 'history', room: 'lobby', messages: [m(1), m(2)], first: 1, last: 2, missed: 0 });
        send(m(2)); // a duplicate of a history message
        send(m(3));
        send({ type: 'history', room: 'lobby', messages: [m(2), m(3), m(4)], first: 1, last: 4, missed: 0 });
        send(m(3)); // and of a live one
        send({ type: 'notice', text: 'end of script' });
      } else if (cmd.type === 'hello') {
        send({ ...welcome, rooms: [] });
      } else if (cmd.type === 'join') {
        send({ type: 'joined', id: cmd.id, room: 'lobby', nick: 'alice', self: true, members: ['alice'], seq: 6, topic: '' });
        // A careless server that ignores "after": the client must still show 5 and 6 only.
        send({ type: 'history', id: cmd.id, room: 'lobby', messages: [m(3), m(4), m(5), m(6)], first: 1, last: 6, missed: 0 });
      }
    };
    const timers = new ManualTimers();
    const client = new ChatClient({ host: HOST, port, nick: 'alice', timers, random: () => 0, heartbeatMs: 0 });
    const rec = new Recorder(client);
    await client.connect();
    await until(() => rec.events.some((e) => e.event.type === 'notice'), 3000, 'the script to play');
    expect(rec.texts('lobby')).toEqual(['m1', 'm2', 'm3', 'm4']);

    for (const s of sockets) s.destroy();
    await until(() => timers.has(500), 3000, 'the drop to be noticed');
    timers.fire(500);
    await until(() => rec.texts('lobby').includes('m6'), 3000, 'the rejoin');
    expect(rec.texts('lobby')).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(received[1]).toEqual([
      { type: 'hello', nick: 'alice', rooms: [] },
      { type: 'join', room: 'lobby', after: 4, id: expect.any(Number) },
    ]);
    client.close();
    await client.closed;
  });

  test("a rejoin sends the room's epoch; a message shown unnumbered is not shown again numbered; another epoch starts the room afresh", async () => {
    const away = { type: 'message', room: 'lobby', seq: 0, nick: 'bob', text: 'said while Redis was away', time: 5, local: true };
    const picture = { type: 'image', room: 'lobby', seq: 0, nick: 'bob', image: 7, name: 'away.png', size: 10, time: 6, local: true };
    script = (send, cmd, conn) => {
      if (cmd.type === 'hello' && conn === 0) {
        send(welcome);
        send({ type: 'joined', room: 'lobby', nick: 'alice', self: true, members: ['alice', 'bob'], seq: 2, topic: '', epoch: 'e1' });
        send({ type: 'history', room: 'lobby', messages: [m(1), m(2)], first: 1, last: 2, missed: 0 });
        send(away);
        send(picture);
        send({ type: 'notice', text: 'end of script' });
      } else if (cmd.type === 'hello') {
        send({ ...welcome, rooms: [] });
      } else if (cmd.type === 'join' && conn === 1) {
        // Another node: the message said while Redis was away has its number now.
        send({ type: 'joined', id: cmd.id, room: 'lobby', nick: 'alice', self: true, members: ['alice'], seq: 5, topic: '', epoch: 'e1' });
        const numbered = { ...away, seq: 3, local: undefined };
        send({ type: 'history', id: cmd.id, room: 'lobby', messages: [numbered, { ...picture, seq: 4, local: undefined }, m(5, 'after')], first: 1, last: 5, missed: 0 });
      } else if (cmd.type === 'join') {
        // Redis lost the room since: a new numbering, and the room as it is now.
        send({ type: 'joined', id: cmd.id, room: 'lobby', nick: 'alice', self: true, members: ['alice'], seq: 2, topic: '', epoch: 'e2' });
        send({ type: 'notice', id: cmd.id, text: '[lobby] the history you had seen here is gone' });
        send({ type: 'history', id: cmd.id, room: 'lobby', messages: [m(1, 'new1'), m(2, 'new2')], first: 1, last: 2, missed: 0 });
      }
    };
    const timers = new ManualTimers();
    const client = new ChatClient({ host: HOST, port, nick: 'alice', timers, random: () => 0, heartbeatMs: 0 });
    const rec = new Recorder(client);
    await client.connect();
    await until(() => rec.events.some((e) => e.event.type === 'notice'), 3000, 'the script to play');
    const drop = async (): Promise<void> => {
      for (const s of sockets) s.destroy();
      await until(() => timers.has(500), 3000, 'the drop to be noticed');
      timers.fire(500);
    };
    await drop();
    await until(() => rec.texts('lobby').includes('after'), 3000, 'the first rejoin');
    expect(rec.texts('lobby')).toEqual(['m1', 'm2', 'said while Redis was away', 'after']);
    const images = rec.events.flatMap((e) => (e.event.type === 'image' ? [e.event] : e.event.type === 'history' ? e.event.messages.filter((m) => m.type === 'image') : []));
    expect(images.map((i) => [i.image, i.seq])).toEqual([[7, 0]]);
    expect(received[1]).toEqual([
      { type: 'hello', nick: 'alice', rooms: [] },
      { type: 'join', room: 'lobby', after: 2, epoch: 'e1', id: expect.any(Number) },
    ]);
    await drop();
    await until(() => rec.texts('lobby').includes('new2'), 3000, 'the second rejoin');
    expect(rec.texts('lobby')).toEqual(['m1', 'm2', 'said while Redis was away', 'after', 'new1', 'new2']);
    expect(received[2]).toEqual([
      { type: 'hello', nick: 'alice', rooms: [] },
      { type: 'join', room: 'lobby', after: 5, epoch: 'e1', id: expect.any(Number) },
    ]);
    expect(client.rooms.get('lobby')).toMatchObject({ lastSeq: 2, epoch: 'e2' });
    client.close();
    await client.closed;
  });

  test('a reconnect answered with another history: told so, and every room counts afresh (no "after", nothing dropped as seen)', async () => {
    script = (send, cmd, conn) => {
      if (cmd.type === 'hello' && conn === 0) {
        send(welcome);
        send({ type: 'joined', room: 'lobby', nick: 'alice', self: true, members: ['alice'], seq: 3, topic: '' });
        send({ type: 'history', room: 'lobby', messages: [m(1), m(2), m(3)], first: 1, last: 3, missed: 0 });
      } else if (cmd.type === 'hello') {
        // Restarted without its history, and busy since: its numbering is already past ours.
        send({ ...welcome, history: 'h2', rooms: [] });
      } else if (cmd.type === 'join') {
        send({ type: 'joined', id: cmd.id, room: 'lobby', nick: 'alice', self: true, members: ['alice'], seq: 5, topic: '' });
        send({ type: 'history', id: cmd.id, room: 'lobby', messages: [1, 2, 3, 4, 5].map((s) => m(s, `new${s}`)), first: 1, last: 5, missed: 0 });
      }
    };
    const timers = new ManualTimers();
    const client = new ChatClient({ host: HOST, port, nick: 'alice', timers, random: () => 0, heartbeatMs: 0 });
    const rec = new Recorder(client);
    await client.connect();
    await until(() => rec.texts('lobby').length === 3, 3000, 'the first history');
    for (const s of sockets) s.destroy();
    await until(() => timers.has(500), 3000, 'the drop to be noticed');
    timers.fire(500);
    await until(() => rec.texts('lobby').includes('new5'), 3000, 'the rejoin');
    expect(rec.texts('lobby')).toEqual(['m1', 'm2', 'm3', 'new1', 'new2', 'new3', 'new4', 'new5']);
    expect(rec.log).toContain('reconnected alice to another history');
    expect(received[1]).toEqual([
      { type: 'hello', nick: 'alice', rooms: [] },
      { type: 'join', room: 'lobby', after: 0, id: expect.any(Number) },
    ]);
    client.close();
    await client.closed;
  });
});

/**
 * A cluster end to end: three built `roomcast serve --redis` processes on one real Redis (its
 * own, on a free loopback port, stopped by PID), with JSON clients spread over them. Every
 * client must see every room message once, in the one order Redis gave them, whatever happens
 * to the subscriber connections or to Redis itself.
 */
import { spawn } from 'node:child_process';
import { createClient } from '@redis/client';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { JsonClient, type Ev } from '../helpers/clients.js';
import { bmp } from '../helpers/image-bytes.js';
import { imageFrame } from '../helpers/images.js';
import { describeWithRedis, RedisServer } from '../helpers/redis-server.js';

const WAIT = 15_000;


describeWithRedis('a cluster of three servers over Redis', () => {
  let redis: RedisServer;
  const children: CliChild[] = [];
  const clients: JsonClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const c of children.splice(0)) {
      c.kill();
      await c.waitExit(WAIT).catch(() => {});
    }
    if (!redis.pid) await redis.start();
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.sendCommand(['FLUSHALL']);
    await admin.close();
  });

  async function node(args: string[] = []): Promise<number> {
    const child = new CliChild(
      'serve',
      spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--flood-rate', '0', '--redis', redis.url, ...args], { cwd: ROOT, env: CLI_ENV }),
      WAIT,
    );
    children.push(child);
    await child.waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(child.stdout) || child.exitCode !== null, 'roomcast listening on ...');
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${child.stderr}`);
    return Number(/listening on 127\.0\.0\.1:(\d+)/.exec(child.stdout)![1]);
  }

  async function client(port: number, nick: string, rooms = ['dev']): Promise<JsonClient> {
    const c = await JsonClient.registered(port, nick, rooms);
    clients.push(c);
    return c;
  }

  /** What a client saw of a room: the others' messages and its own acks, by seq. */
  function seen(c: JsonClient, room = 'dev'): Map<number, string> {
    const bySeq = new Map<number, string>();
    for (const e of c.events) {
      if (e.room !== room || typeof e.seq !== 'number') continue;
      if (e.type === 'message') {
        if (bySeq.has(e.seq)) throw new Error(`${e.seq} delivered twice`);
        bySeq.set(e.seq, `${e.nick}: ${e.text}`);
      }
    }
    return bySeq;
  }

  const messagesOf = (c: JsonClient, room = 'dev'): Ev[] => c.events.filter((e) => e.type === 'message' && e.room === room);
  const acksOf = (c: JsonClient): Ev[] => c.events.filter((e) => e.type === 'ack');
  /** The seqs a client got after joining with `after`: its history (the gap), then what followed live. */
  const seqsAfterJoin = (c: JsonClient): number[] =>
    c.events.flatMap((e) => (e.type === 'history' && e.room === 'dev' ? (e.messages as Ev[]).map((m) => m.seq as number) : e.type === 'message' && e.room === 'dev' ? [e.seq as number] : []));

  test('clients on three nodes: every message reaches every other client once, in the same order, numbered 1..N without a gap', async () => {
    const ports = [await node(), await node(), await node()];
    const people = await Promise.all(['ann', 'bob', 'cat', 'dan', 'eve', 'fay'].map((nick, i) => client(ports[i % 3]!, nick)));
    const per = 25;
    for (let i = 0; i < per; i++) for (const [k, c] of people.entries()) c.sendJson({ type: 'message', room: 'dev', text: `${k}-${i}`, id: i });
    const total = per * people.length;
    for (const c of people) await c.waitFor(() => messagesOf(c).length + acksOf(c).length >= total, WAIT, 'every message or its ack');
    const texts = new Map<number, string>();
    for (const [k, c] of people.entries()) {
      const msgs = messagesOf(c);
      expect(msgs.length).toBe(total - per);
      // In the order of their numbers, each once.
      const seqs = msgs.map((e) => e.seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      // With its own acks, every number from 1 to total, and every text under one number everywhere.
      const own = acksOf(c).map((a) => a.seq as number);
      expect([...seqs, ...own].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      for (const [seq, text] of seen(c)) {
        if (texts.has(seq)) expect(texts.get(seq)).toBe(text);
        else texts.set(seq, text);
      }
      // A sender's own messages keep their order too.
      const mine = [...texts.entries()].filter(([, t]) => t.startsWith(`${['ann', 'bob', 'cat', 'dan', 'eve', 'fay'][k]}: `));
      expect(mine.map(([, t]) => t)).toEqual([...mine].sort((a, b) => a[0] - b[0]).map(([, t]) => t));
    }
    // Someone who joins later, on any node, gets the history from Redis.
    const late = await client(ports[2]!, 'gus');
    const history = late.events.find((e) => e.type === 'history' && e.room === 'dev')!;
    expect(history.last).toBe(total);
    expect((history.messages as Ev[]).map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => total - 19 + i));
  });

  test('CLIENT KILL TYPE pubsub: what was published while the subscribers reconnected is filled from the Stream', async () => {
    const [a, b] = [await node(), await node()];
    const sender = await client(a, 'ann');
    const reader = await client(b, 'bob');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    } finally {
      await admin.close();
    }
    for (let i = 1; i <= 30; i++) sender.sendJson({ type: 'message', room: 'dev', text: `after the kill ${i}`, id: i });
    await reader.waitFor(() => messagesOf(reader).length >= 30, WAIT, '30 messages');
    expect(messagesOf(reader).map((e) => e.text)).toEqual(Array.from({ length: 30 }, (_, i) => `after the kill ${i + 1}`));
    expect(messagesOf(reader).map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  test('Redis away, then back without its data: local chat goes on meanwhile, readiness says why, then everything re-syncs from 1', async () => {
    const [a, b] = [await node(), await node()];
    const ann = await client(a, 'ann');
    const cat = await client(a, 'cat');
    const bob = await client(b, 'bob');
    ann.sendJson({ type: 'message', room: 'dev', text: 'before', id: 1 });
    await bob.waitEvent((e) => e.type === 'message' && e.text === 'before');
    const welcomeBefore = ann.events.find((e) => e.type === 'welcome')!;

    await redis.stop();
    await bob.waitEvent((e) => e.type === 'notice' && /lost its cluster/.test(e.text), WAIT);
    const ready = await fetch(`http://127.0.0.1:${b}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reasons: string[] }).reasons.join()).toMatch(/cluster: Redis unreachable/);
    // Chat goes on on each node: cat, on ann's node, hears her at once (not numbered yet).
    ann.sendJson({ type: 'message', room: 'dev', text: 'while down', id: 2 });
    expect(await cat.waitEvent((e) => e.type === 'message' && e.text === 'while down', WAIT)).toMatchObject({ nick: 'ann', seq: 0, local: true });
    // So do an image post and a topic.
    ann.write(imageFrame({ room: 'dev', name: 'away.bmp', id: 'img' }, bmp(4, 4)));
    const shownImage = await cat.waitEvent((e) => e.type === 'image' && e.name === 'away.bmp', WAIT);
    expect(shownImage).toMatchObject({ nick: 'ann', seq: 0, local: true });
    ann.sendJson({ type: 'topic', room: 'dev', topic: 'set while Redis was away', id: 't' });
    expect(await cat.waitEvent((e) => e.type === 'topic' && e.room === 'dev', WAIT)).toMatchObject({ topic: 'set while Redis was away', nick: 'ann' });
    // A join into a room this node does not follow yet waits, and says why.
    ann.sendJson({ type: 'join', room: 'elsewhere', id: 'j' });
    expect((await ann.waitEvent((e) => e.type === 'notice' && /joining waits for the cluster/.test(e.text), WAIT)).text).toMatch(/^\[elsewhere\]/);

    await redis.start();
    await bob.waitEvent((e) => e.type === 'notice' && /lost this room's history/.test(e.text), WAIT);
    await ann.waitEvent((e) => e.type === 'notice' && /lost this room's history/.test(e.text), WAIT);
    // The join that waited has gone through.
    expect(await ann.waitFor(() => ann.events.find((e) => e.type === 'joined' && e.room === 'elsewhere' && e.self), WAIT, 'the join')).toMatchObject({ id: 'j', seq: 0 });
    // What was said meanwhile reaches the other node, numbered, and ann gets her ack; cat is not told twice.
    expect(await bob.waitEvent((e) => e.type === 'message' && e.text === 'while down', WAIT)).toMatchObject({ nick: 'ann', seq: 1 });
    expect(await ann.waitFor(() => ann.events.find((e) => e.type === 'ack' && e.id === 2), WAIT, 'the ack')).toMatchObject({ seq: 1 });
    ann.sendJson({ type: 'message', room: 'dev', text: 'after', id: 3 });
    const after = await bob.waitEvent((e) => e.type === 'message' && e.text === 'after', WAIT);
    expect(after.seq).toBe(3); // after "while down" (1) and the image (2)
    await cat.waitEvent((e) => e.type === 'message' && e.text === 'after', WAIT);
    expect(cat.events.filter((e) => e.type === 'message' && e.text === 'while down')).toHaveLength(1);
    // The image, numbered, reaches the other node (its id kept) and ann gets its ack; cat is not shown it twice.
    const anyEvent = (c: JsonClient, pred: (e: Ev) => boolean, what: string) => c.waitFor(() => c.events.find(pred), WAIT, what);
    expect(await anyEvent(bob, (e) => e.type === 'image' && e.name === 'away.bmp', 'the image')).toMatchObject({ image: shownImage.image, seq: 2, nick: 'ann' });
    expect(await ann.waitFor(() => ann.events.find((e) => e.type === 'ack' && e.id === 'img'), WAIT, 'the image ack')).toMatchObject({ image: shownImage.image });
    expect(cat.events.filter((e) => e.type === 'image' && e.name === 'away.bmp')).toHaveLength(1);
    // The topic set meanwhile reaches the other node, and is kept: a newcomer there sees it.
    expect(await anyEvent(bob, (e) => e.type === 'topic' && e.room === 'dev', 'the topic')).toMatchObject({ topic: 'set while Redis was away', nick: 'ann' });
    const dan = await client(b, 'dan');
    expect(dan.events.find((e) => e.type === 'joined' && e.self && e.room === 'dev')).toMatchObject({ topic: 'set while Redis was away' });
    expect((await fetch(`http://127.0.0.1:${b}/readyz`)).status).toBe(200);
    // Someone new is given another history id, so a client resuming with old numbers knows.
    const carl = await client(a, 'carl');
    expect(carl.events.find((e) => e.type === 'welcome')!.history).not.toBe(welcomeBefore.history);
    // The nicks and members Redis forgot are claimed and listed again: ann is still ann everywhere.
    const impostor = await JsonClient.open(b, { nick: 'ann' });
    clients.push(impostor);
    expect((await impostor.waitEvent((e) => e.type === 'error')).code).toBe('NICK_TAKEN');
  });

  test("one room's keys lost in Redis: a client resuming on another node with the room's old epoch is told its history is gone, never given wrong seqs", async () => {
    const [a, b] = [await node(), await node()];
    const ann = await client(a, 'ann');
    const bob = await client(b, 'bob');
    for (let i = 1; i <= 3; i++) ann.sendJson({ type: 'message', room: 'dev', text: `old${i}` });
    await bob.waitFor(() => messagesOf(bob).length === 3, WAIT, 'three messages');
    const { epoch } = bob.events.find((e) => e.type === 'joined' && e.self && e.room === 'dev')!;
    bob.socket.destroy();
    // The room alone is lost (evicted, deleted by hand): the cluster's history id stays the same.
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const keys = ['meta', 'stream'].map((k) => `roomcast:{room:dev}:${k}`);
    expect(await admin.sendCommand(['DEL', ...keys])).toBe(2);
    await admin.close();
    ann.sendJson({ type: 'message', room: 'dev', text: 'new1', id: 'n1' });
    expect(await ann.waitFor(() => ann.events.find((e) => e.type === 'ack' && e.id === 'n1'), WAIT, 'the ack')).toMatchObject({ seq: 1 });
    await ann.waitEvent((e) => e.type === 'notice' && /lost this room's history/.test(e.text), WAIT);

    const back = await JsonClient.open(b, { nick: 'bob2', rooms: [] });
    clients.push(back);
    await back.waitEvent((e) => e.type === 'welcome');
    back.sendJson({ type: 'join', room: 'dev', after: 3, epoch, id: 'r' });
    const joined = await back.waitEvent((e) => e.type === 'joined' && e.self, WAIT);
    expect(joined.epoch).toEqual(expect.any(String));
    expect(joined.epoch).not.toBe(epoch);
    expect((await back.waitEvent((e) => e.type === 'notice' && e.id === 'r')).text).toMatch(/history you had seen here is gone/);
    // The room as it is now: "new1" as 1, not "everything after 3" of the new numbering.
    const history = await back.waitEvent((e) => e.type === 'history' && e.id === 'r');
    expect((history.messages as Ev[]).map((m) => [m.seq, m.text])).toEqual([[1, 'new1']]);
  });

  test('who is where: /who, join and part notices, /msg, topics and nick uniqueness span the nodes', async () => {
    const [a, b] = [await node(), await node()];
    const ann = await client(a, 'ann');
    const bob = await client(b, 'bob');
    await ann.waitEvent((e) => e.type === 'joined' && e.nick === 'bob' && !e.self);
    expect(bob.events.find((e) => e.type === 'joined' && e.self)!.members).toEqual(['ann', 'bob']);
    ann.sendJson({ type: 'who', room: 'dev', id: 1 });
    expect((await ann.waitEvent((e) => e.type === 'who' && e.id === 1)).members).toEqual(['ann', 'bob']);
    // A room with members on one node only is listed on the other too, with the cluster's counts.
    const carl = await client(b, 'carl', ['lab']);
    ann.sendJson({ type: 'rooms', id: 7 });
    const rooms = await ann.waitEvent((e) => e.type === 'rooms' && e.id === 7);
    expect(rooms.rooms).toEqual(
      expect.arrayContaining([expect.objectContaining({ room: 'dev', members: 2 }), expect.objectContaining({ room: 'lab', members: 1 })]),
    );
    const api = (await (await fetch(`http://127.0.0.1:${a}/api/rooms`)).json()) as { rooms: { room: string; members: number }[] };
    expect(api.rooms.find((r) => r.room === 'lab')?.members).toBe(1);
    carl.sendJson({ type: 'part', room: 'lab' });
    await new Promise((r) => setTimeout(r, 200));
    ann.sendJson({ type: 'rooms', id: 8 });
    expect((await ann.waitEvent((e) => e.type === 'rooms' && e.id === 8)).rooms.map((r: Ev) => r.room)).not.toContain('lab');

    // A nick held on one node cannot be had on another, in any case.
    const taken = await JsonClient.open(b, { nick: 'ANN' });
    clients.push(taken);
    expect((await taken.waitEvent((e) => e.type === 'error')).code).toBe('NICK_TAKEN');
    bob.sendJson({ type: 'nick', nick: 'Ann', id: 2 });
    expect((await bob.waitEvent((e) => e.type === 'error' && e.id === 2)).code).toBe('NICK_TAKEN');

    ann.sendJson({ type: 'privmsg', to: 'bob', text: 'psst', id: 3 });
    expect(await bob.waitEvent((e) => e.type === 'privmsg')).toMatchObject({ from: 'ann', to: 'bob', text: 'psst' });
    expect(await ann.waitEvent((e) => e.type === 'privmsg' && e.id === 3)).toMatchObject({ text: 'psst' });
    ann.sendJson({ type: 'privmsg', to: 'nobody', text: 'hello?', id: 4 });
    expect((await ann.waitEvent((e) => e.type === 'error' && e.id === 4)).code).toBe('NO_SUCH_NICK');

    ann.sendJson({ type: 'topic', room: 'dev', topic: 'cluster talk' });
    expect(await bob.waitEvent((e) => e.type === 'topic')).toMatchObject({ topic: 'cluster talk', nick: 'ann' });
    bob.sendJson({ type: 'nick', nick: 'robert', id: 5 });
    expect(await ann.waitEvent((e) => e.type === 'nick')).toMatchObject({ old: 'bob', nick: 'robert' });
    bob.sendJson({ type: 'part', room: 'dev' });
    expect(await ann.waitEvent((e) => e.type === 'parted')).toMatchObject({ nick: 'robert' });
    ann.sendJson({ type: 'who', room: 'dev', id: 6 });
    expect((await ann.waitEvent((e) => e.type === 'who' && e.id === 6)).members).toEqual(['ann']);
    // The old nick is free again, on any node.
    const newBob = await client(a, 'bob');
    expect(newBob.events.find((e) => e.type === 'welcome')!.nick).toBe('bob');
  });

  test('accounts span the nodes: a nick registered on one is kept on the other, and its password opens it there', async () => {
    const [a, b] = [await node(), await node()];
    const ann = await client(a, 'ann');
    ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r' });
    expect((await ann.waitFor(() => ann.events.find((e) => e.id === 'r'), WAIT, 'the registration')).text).toMatch(/^Registered ann/);
    ann.socket.destroy();
    const squatter = await JsonClient.open(b, { nick: 'ann' });
    clients.push(squatter);
    expect(await squatter.waitEvent((e) => e.type === 'error', WAIT)).toMatchObject({ code: 'NICK_REGISTERED' });
    const bob = await client(b, 'bob');
    bob.sendJson({ type: 'nick', nick: 'ann', id: 'n' });
    expect(await bob.waitFor(() => bob.events.find((e) => e.id === 'n'), WAIT, 'the rename')).toMatchObject({ type: 'error', code: 'NICK_REGISTERED' });
    const back = await JsonClient.open(b, { nick: 'ann', password: 'a long enough password', rooms: ['dev'] });
    clients.push(back);
    expect(await back.waitEvent((e) => e.type === 'welcome' || e.type === 'error', WAIT)).toMatchObject({ type: 'welcome', nick: 'ann' });
    // Members of the other node see that ann is logged in, as members of hers do.
    const cat = await client(a, 'cat');
    cat.sendJson({ type: 'who', room: 'dev', id: 'w' });
    expect(await cat.waitFor(() => cat.events.find((e) => e.id === 'w'), WAIT, 'who')).toMatchObject({ members: ['ann', 'bob', 'cat'], loggedIn: ['ann'] });
  });

  test("operators span the nodes: a kick, a mute and a ban of a member on another node are enforced there, and the rules live in Redis", async () => {
    const [a, b] = [await node(), await node()];
    const ann = await client(a, 'ann', ['lobby']);
    ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r' });
    await ann.waitFor(() => ann.events.find((e) => e.id === 'r'), WAIT, 'the registration');
    ann.sendJson({ type: 'join', room: 'lab', id: 'j' });
    expect(await ann.waitFor(() => ann.events.find((e) => e.id === 'j' && e.type === 'joined'), WAIT, 'the join')).toMatchObject({ ops: ['ann'] });
    const bob = await client(b, 'bob', ['lab']);
    const carl = await client(b, 'carl', ['lab']);
    expect(bob.events.find((e) => e.type === 'joined' && e.self)).toMatchObject({ ops: ['ann'], members: ['ann', 'bob'] });
    await ann.waitEvent((e) => e.type === 'joined' && e.nick === 'carl', WAIT);
    // An operator only on another node is still not one here.
    carl.sendJson({ type: 'kick', nick: 'bob', room: 'lab', id: 'k0' });
    expect(await carl.waitFor(() => carl.events.find((e) => e.id === 'k0'), WAIT, 'the refusal')).toMatchObject({ code: 'NOT_OPERATOR' });

    ann.sendJson({ type: 'kick', nick: 'bob', room: 'lab', reason: 'time out', id: 'k' });
    expect(await bob.waitEvent((e) => e.type === 'parted', WAIT)).toMatchObject({ self: true, room: 'lab', kickedBy: 'ann', reason: 'time out' });
    expect(await carl.waitEvent((e) => e.type === 'parted', WAIT)).toMatchObject({ nick: 'bob', kickedBy: 'ann' });

    ann.sendJson({ type: 'mute', nick: 'carl', room: 'lab', id: 'm' });
    expect(await carl.waitEvent((e) => e.type === 'moderation', WAIT)).toMatchObject({ action: 'mute', target: 'carl', by: 'ann' });
    carl.sendJson({ type: 'message', room: 'lab', text: 'can you hear me', id: 's' });
    expect(await carl.waitFor(() => carl.events.find((e) => e.id === 's'), WAIT, 'the refusal')).toMatchObject({ code: 'MUTED' });

    ann.sendJson({ type: 'ban', mask: 'bob', room: 'lab', id: 'b' });
    expect(await carl.waitEvent((e) => e.type === 'moderation', WAIT)).toMatchObject({ action: 'ban', target: 'nick:bob' });
    bob.sendJson({ type: 'join', room: 'lab', id: 'again' });
    expect(await bob.waitFor(() => bob.events.find((e) => e.id === 'again'), WAIT, 'the refusal')).toMatchObject({ code: 'BANNED' });

    // A third node, started after all this, reads the same rules from Redis.
    bob.socket.destroy();
    const c = await node();
    let late: JsonClient;
    // The nick is free once bob's node has seen him go.
    for (let tries = 0; ; tries++) {
      late = await JsonClient.open(c, { nick: 'bob', rooms: ['lobby'] });
      clients.push(late);
      if ((await late.waitEvent((e) => e.type === 'welcome' || e.type === 'error', WAIT)).type === 'welcome') break;
      if (tries > 50) throw new Error('bob never came back');
      late.socket.destroy();
      await new Promise((r) => setTimeout(r, 100));
    }
    late.sendJson({ type: 'join', room: 'lab', id: 'late' });
    expect(await late.waitFor(() => late.events.find((e) => e.id === 'late'), WAIT, 'the refusal')).toMatchObject({ code: 'BANNED' });
  });

  test('SIGKILL a node under load: its clients resume on another node with contiguous seqs, and its members leave within the lease', async () => {
    const lease = ['--lease', '1500'];
    const [a, b] = [await node(lease), await node(lease)];
    const writer = await client(a, 'ann');
    const reader = await client(b, 'bob');
    const victim = children[1]!;
    let sent = 0;
    const load = setInterval(() => {
      if (sent >= 400) return;
      for (let i = 0; i < 20; i++) writer.sendJson({ type: 'message', room: 'dev', text: `m${++sent}` });
    }, 10);
    try {
      await reader.waitFor(() => messagesOf(reader).length >= 100, WAIT, '100 messages before the kill');
      victim.proc.kill('SIGKILL');
      await victim.waitExit(WAIT);
      const last = Math.max(...messagesOf(reader).map((e) => e.seq as number));
      // bob comes back on the other node and asks for everything after what he saw, in the
      // room's numbering as his node named it: every node names it alike.
      const { epoch } = reader.events.find((e) => e.type === 'joined' && e.self && e.room === 'dev')!;
      expect(epoch).toEqual(expect.any(String));
      const back = await JsonClient.open(a, { nick: 'bob2', rooms: [] });
      clients.push(back);
      await back.waitEvent((e) => e.type === 'welcome');
      back.sendJson({ type: 'join', room: 'dev', after: last, epoch });
      expect(await back.waitEvent((e) => e.type === 'joined' && e.self)).toMatchObject({ epoch });
      await back.waitFor(() => sent >= 400 && Math.max(0, ...seqsAfterJoin(back)) >= 400, WAIT, 'the rest of the 400');
      const seqs = [...messagesOf(reader).map((e) => e.seq as number), ...seqsAfterJoin(back)];
      expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    } finally {
      clearInterval(load);
    }
    // bob's node is gone: within the lease (and a reap), the room says he left.
    const gone = await writer.waitEvent((e) => e.type === 'parted' && e.nick === 'bob', WAIT);
    expect(gone.quit).toBe(true);
    writer.sendJson({ type: 'who', room: 'dev', id: 9 });
    expect((await writer.waitEvent((e) => e.type === 'who' && e.id === 9)).members).toEqual(['ann', 'bob2']);
  });

  test('--processes 2: two server processes on one port share the rooms; one that dies is replaced', async () => {
    const port = await node(['--processes', '2']);
    const banner = children[0]!.stdout;
    const pids = /Processes: 2 \(pids (\d+), (\d+)\)/.exec(banner);
    expect(pids).not.toBeNull();
    const people = await Promise.all(['ann', 'bob', 'cat', 'dan'].map((nick) => client(port, nick)));
    for (const [k, c] of people.entries()) for (let i = 0; i < 10; i++) c.sendJson({ type: 'message', room: 'dev', text: `${k}-${i}` });
    for (const c of people) await c.waitFor(() => messagesOf(c).length >= 30, WAIT, "the others' 30 messages");
    for (const c of people) expect(messagesOf(c)).toHaveLength(30);
    // Both processes took clients (the primary hands connections out in turn): the room's
    // members in Redis are listed under two node ids.
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const members = (await admin.sendCommand(['HVALS', 'roomcast:{room:dev}:members'])) as string[];
    await admin.close();
    expect(new Set(members.map((m) => m.split(' ')[0])).size).toBe(2);
    const last = people[3]!;
    last.sendJson({ type: 'who', room: 'dev', id: 1 });
    expect((await last.waitEvent((e) => e.type === 'who' && e.id === 1)).members).toEqual(['ann', 'bob', 'cat', 'dan']);

    process.kill(Number(pids![1]), 'SIGKILL');
    await children[0]!.waitFor(() => /server process \d+ ended \(SIGKILL\); starting another/.test(children[0]!.stderr), 'a replacement');
    const eve = await client(port, 'eve');
    const fay = await client(port, 'fay');
    eve.sendJson({ type: 'message', room: 'dev', text: 'still here' });
    expect(await fay.waitEvent((e) => e.type === 'message' && e.text === 'still here', WAIT)).toMatchObject({ nick: 'eve' });

    const alone = new CliChild('serve', spawn(process.execPath, [BIN, 'serve', '--port', '0', '--processes', '2'], { cwd: ROOT, env: CLI_ENV }), WAIT);
    children.push(alone);
    expect(await alone.waitExit(WAIT)).toBe(1);
    expect(alone.stderr).toMatch(/--processes needs --redis/);
  });

  test('search says plainly that it is off; an unreachable Redis at start-up is one line and exit 1', async () => {
    const a = await node();
    const ann = await client(a, 'ann');
    ann.sendJson({ type: 'search', room: 'dev', q: 'anything', id: 5 });
    const off = await ann.waitEvent((e) => e.type === 'error' && e.id === 5);
    expect(off.code).toBe('SEARCH_OFF');
    expect(off.message).toMatch(/off in a cluster/);

    const child = new CliChild(
      'serve',
      spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--redis', 'redis://127.0.0.1:1'], { cwd: ROOT, env: CLI_ENV }),
      WAIT,
    );
    children.push(child);
    expect(await child.waitExit(WAIT)).toBe(1);
    expect(child.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^roomcast: cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*start redis-server there, or fix --redis$/)]);
    // Not a Redis URL at all: refused while the arguments are read, with what to give instead.
    const bad = new CliChild('serve', spawn(process.execPath, [BIN, 'serve', '--port', '0', '--no-bot', '--redis', 'lab-pc:6379'], { cwd: ROOT, env: CLI_ENV }), WAIT);
    children.push(bad);
    expect(await bad.waitExit(WAIT)).toBe(2);
    expect(bad.stderr).toMatch(/argument 'lab-pc:6379' is invalid\. Give a Redis URL such as redis:\/\/HOST:6379/);
  });
});

/**
 * Rooms in a real Redis (a redis-server of the test's own): the atomic publish numbers events
 * from several clients without a gap or a repeat, the Stream keeps them in that order, a feed
 * behind a subscriber that Redis cuts off fills the gap from the Stream, and a Redis that lost
 * everything gives the room a new epoch.
 */
import type { MessageEvent, RoomEvent } from '../../src/protocol/events.js';
import { parseLive, RedisRooms } from '../../src/cluster/redis-rooms.js';
import { roomKeys, roomOfChannel } from '../../src/cluster/room-keys.js';
import { RoomFeed } from '../../src/cluster/room-feed.js';
import { withDefaults } from '../../src/cluster/redis-script.js';
import { describeWithRedis, useRedis } from '../helpers/redis-server.js';

const message = (room: string, text: string): MessageEvent => ({ type: 'message', room, seq: 0, nick: 'ann', text, time: 1_767_225_600_000 });

test('room keys share one hash tag, and a channel names its room', () => {
  const k = roomKeys('lab-2');
  expect([k.meta, k.stream, k.channel, k.members].map((key) => key.match(/\{[^}]*\}/)![0])).toEqual(Array(4).fill('{room:lab-2}'));
  expect(roomOfChannel(k.channel)).toBe('lab-2');
  expect(roomOfChannel('other:channel')).toBeNull();
});

test('an option given as undefined keeps its default (a timer of undefined ms would fire every millisecond)', () => {
  expect(withDefaults({ everyMs: 5000, prefix: 'roomcast' }, { everyMs: undefined, prefix: 'lab' })).toEqual({ everyMs: 5000, prefix: 'lab' });
});

test('a channel message that is not ours is ignored', () => {
  expect(parseLive('a', 'junk')).toBeNull();
  expect(parseLive('a', 'e1 x {}')).toBeNull();
  expect(parseLive('a', 'e1 3 {not json')).toBeNull();
  expect(parseLive('a', 'e1 3 {"type":"message","nick":"n","text":"t","time":1}')).toEqual([
    { epoch: 'e1', event: { type: 'message', room: 'a', seq: 3, nick: 'n', text: 't', time: 1 } },
  ]);
  // A batch: consecutive numbers, a line each.
  expect(parseLive('a', 'e1 7 {"type":"message","nick":"n","text":"x\\ny","time":1}\n{"type":"message","nick":"m","text":"z","time":2}')!.map((m) => [m.event.seq, (m.event as MessageEvent).text])).toEqual([
    [7, 'x\ny'],
    [8, 'z'],
  ]);
  expect(parseLive('a', 'e1 7 {"type":"message"}\n{broken')).toBeNull();
});

describeWithRedis('rooms in a real Redis', () => {
  const redis = useRedis();
  const client = () => redis.connect();

  test("one client's publishes are numbered in the order they were made, also while Redis is learning the script again", async () => {
    const c = await client();
    const rooms = new RedisRooms(c);
    for (const round of [1, 2]) {
      // As after a Redis restart: the script is gone from its cache.
      await c.sendCommand(['SCRIPT', 'FLUSH']);
      // Calls keep coming while the first answers arrive, as from a busy room.
      const sent: Promise<{ seq: number }>[] = [];
      for (let burst = 0; burst < 30; burst++) {
        for (let i = 0; i < 10; i++) sent.push(rooms.publish(message(`order${round}`, `m${sent.length}`)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect((await Promise.all(sent)).map((p) => p.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    }
  });

  test('two clients publishing at once: numbers 1..N, each once, in the Stream in that order', async () => {
    const [a, b] = [new RedisRooms(await client()), new RedisRooms(await client())];
    const sent = await Promise.all(
      Array.from({ length: 600 }, (_, i) => (i % 2 === 0 ? a : b).publish(message('lobby', `m${i}`))),
    );
    const seqs = sent.map((p) => p.seq).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(new Set(sent.map((p) => p.epoch)).size).toBe(1);
    const page = await a.read('lobby', 0, 1000);
    expect(page).toMatchObject({ epoch: sent[0]!.epoch, first: 1, last: 600 });
    expect(page.events.map((e) => e.seq)).toEqual(seqs);
    // Each event is the one published under its number.
    const bySeq = new Map(sent.map((p, i) => [p.seq, `m${i}`]));
    for (const e of page.events) expect((e as MessageEvent).text).toBe(bySeq.get(e.seq));
    expect((await a.read('lobby', 595, 3)).events.map((e) => e.seq)).toEqual([596, 597, 598]);
    expect(await a.read('empty', 0, 10)).toEqual({ epoch: '', events: [], first: 1, last: 0, topic: '', topicNick: '', topicTime: 0 });
  });

  test('the newest events oldest first, and a topic kept beside the numbers (only for a room Redis has)', async () => {
    const rooms = new RedisRooms(await client());
    for (let i = 1; i <= 10; i++) await rooms.publish(message('lab', `m${i}`));
    const latest = await rooms.latest('lab', 3);
    expect(latest.events.map((e) => [e.seq, (e as MessageEvent).text])).toEqual([[8, 'm8'], [9, 'm9'], [10, 'm10']]);
    expect([latest.first, latest.last]).toEqual([1, 10]);
    expect((await rooms.latest('lab', 50)).events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(await rooms.setTopic('lab', 'microscopes', 'ann', 5)).toBe(true);
    expect(await rooms.read('lab', 10, 1)).toMatchObject({ topic: 'microscopes', topicNick: 'ann', topicTime: 5 });
    expect(await rooms.setTopic('nowhere', 'x', 'ann', 5)).toBe(false);
    expect((await rooms.read('nowhere', 0, 1)).epoch).toBe('');
  });

  test("a node's read may make the room's epoch before anyone has spoken; the first publish keeps it", async () => {
    const rooms = new RedisRooms(await client(), { newEpoch: (() => { let n = 0; return () => `e${++n}`; })() });
    expect((await rooms.read('quiet', 0, 1)).epoch).toBe('');
    const made = await rooms.read('quiet', 0, 1, true);
    expect([made.epoch, made.last, made.events]).toEqual(['e1', 0, []]);
    expect((await rooms.read('quiet', 0, 1, true)).epoch).toBe('e1');
    expect(await rooms.publish(message('quiet', 'first'))).toEqual({ epoch: 'e1', seq: 1 });
  });

  test('a Stream keeps about maxLen entries; reads report where it now starts', async () => {
    const rooms = new RedisRooms(await client(), { maxLen: 100 });
    for (let i = 0; i < 1000; i++) void rooms.publish(message('busy', `m${i}`));
    await rooms.publish(message('busy', 'last'));
    const page = await rooms.read('busy', 0, 5000);
    expect(page.last).toBe(1001);
    expect(page.first).toBeGreaterThan(800);
    expect(page.events[0]!.seq).toBe(page.first);
    expect(page.events.at(-1)!.seq).toBe(1001);
  });

  test('scripts flushed from Redis are sent again', async () => {
    const c = await client();
    const rooms = new RedisRooms(c);
    await rooms.publish(message('r', 'one'));
    await c.sendCommand(['SCRIPT', 'FLUSH']);
    expect((await rooms.publish(message('r', 'two'))).seq).toBe(2);
  });

  test('a subscriber that Redis cuts off (CLIENT KILL TYPE pubsub): its feed fills the gap from the Stream, every event once, in order', async () => {
    const pub = new RedisRooms(await client());
    const reader = new RedisRooms(await client());
    const sub = await client();
    const delivered: RoomEvent[] = [];
    const feed = new RoomFeed({ room: 'lobby', read: (after, n) => reader.read('lobby', after, n), deliver: (e) => delivered.push(e) });
    const { channel } = roomKeys('lobby');
    await sub.subscribe(channel, (msg) => {
      const live = parseLive('lobby', msg);
      for (const one of live ?? []) feed.live(one);
    });
    // After a reconnect node-redis subscribes again; what was published meanwhile comes from the Stream.
    sub.on('ready', () => void feed.catchUp());
    const admin = await client();
    const N = 3000;
    for (let i = 1; i <= N; i++) {
      void pub.publish(message('lobby', `m${i}`));
      if (i % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      if (i === 1500) await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    }
    await pub.publish(message('lobby', 'end'));
    const deadline = Date.now() + 10_000;
    while (delivered.length < N + 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      void feed.catchUp(); // the periodic position check a node runs
    }
    expect(delivered.map((e) => e.seq)).toEqual(Array.from({ length: N + 1 }, (_, i) => i + 1));
    expect((delivered.at(-1) as MessageEvent).text).toBe('end');
  }, 30_000);

  test('a client resuming on another node (epoch, last seq) while the room goes on: subscribe, read the Stream after its seq, then the channel, each event once', async () => {
    const pub = new RedisRooms(await client());
    let epoch = '';
    for (let i = 1; i <= 100; i++) epoch = (await pub.publish(message('lobby', `m${i}`))).epoch;
    // The node the client comes to: a feed from where the client left off (seq 40).
    const reader = new RedisRooms(await client());
    const sub = await client();
    const delivered: number[] = [];
    const feed = new RoomFeed({ room: 'lobby', read: (after, n) => reader.read('lobby', after, n), deliver: (e) => delivered.push(e.seq) }, { epoch, last: 40 });
    await sub.subscribe(roomKeys('lobby').channel, (msg) => {
      const live = parseLive('lobby', msg);
      for (const one of live ?? []) feed.live(one);
    });
    const more = Array.from({ length: 200 }, (_, i) => pub.publish(message('lobby', `n${i}`)));
    await feed.catchUp();
    await Promise.all(more);
    await feed.catchUp();
    const deadline = Date.now() + 5000;
    while (delivered.length < 260 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(delivered).toEqual(Array.from({ length: 260 }, (_, i) => 41 + i));
  });

  test('Redis restarted without persistence: the room gets a new epoch, numbering starts again, and the feed says what was lost', async () => {
    const pubClient = await client();
    const rooms = new RedisRooms(pubClient);
    const before = await rooms.publish(message('lobby', 'a'));
    await rooms.publish(message('lobby', 'b'));
    const lost: unknown[] = [];
    const delivered: number[] = [];
    const feed = new RoomFeed({ room: 'lobby', read: (after, n) => rooms.read('lobby', after, n), deliver: (e) => delivered.push(e.seq), lost: (w) => lost.push(w) });
    await feed.catchUp();
    expect(delivered).toEqual([1, 2]);

    await redis.server.stop();
    await redis.server.start();
    const deadline = Date.now() + 10_000;
    while (!pubClient.isReady && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const after = await rooms.publish(message('lobby', 'c'));
    expect(after.seq).toBe(1);
    expect(after.epoch).not.toBe(before.epoch);
    await feed.catchUp();
    expect(lost).toEqual([{ kind: 'epoch', previous: before.epoch, epoch: after.epoch, last: 2 }]);
    expect(delivered).toEqual([1, 2, 1]);
  }, 30_000);
});

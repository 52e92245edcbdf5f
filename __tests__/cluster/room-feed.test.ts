/**
 * A room's feed against a fake Stream: whatever the channel does (duplicates, gaps, disorder,
 * messages crossing a read, a new epoch), each event is delivered once, in the Stream's order.
 */
import type { MessageEvent, RoomEvent } from '../../src/protocol/events.js';
import type { LiveMessage, StreamPage } from '../../src/cluster/redis-rooms.js';
import { RoomFeed, type RoomFeedOptions } from '../../src/cluster/room-feed.js';

const room = 'lobby';
const event = (seq: number): MessageEvent => ({ type: 'message', room, seq, nick: 'ann', text: `m${seq}`, time: seq });

/** A room's Stream as Redis would hold it, with reads that can be held back. */
class FakeStream {
  epoch = 'e1';
  topic = { topic: '', nick: '', time: 0 };
  events: RoomEvent[] = [];
  first = 1;
  reads = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  add(n: number): void {
    for (let i = 0; i < n; i++) this.events.push(event(this.events.length + this.first));
  }
  get last(): number {
    return this.first + this.events.length - 1;
  }
  live(seq: number, epoch = this.epoch): LiveMessage {
    return { epoch, event: event(seq) };
  }
  /** Reads wait until release(). */
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  read = async (after: number, limit: number): Promise<StreamPage> => {
    this.reads++;
    if (this.gate) await this.gate;
    const events = this.events.filter((e) => e.seq > after).slice(0, limit);
    return { epoch: this.epoch, events, first: this.events.length > 0 ? this.first : this.last + 1, last: this.last, topic: this.topic.topic, topicNick: this.topic.nick, topicTime: this.topic.time };
  };
}

function feed(stream: FakeStream, extra: Partial<RoomFeedOptions> = {}) {
  const delivered: number[] = [];
  const lost: unknown[] = [];
  const f = new RoomFeed({ room, read: stream.read, deliver: (e) => delivered.push(e.seq), lost: (w) => lost.push(w), pageSize: 4, ...extra });
  return { f, delivered, lost };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("a catch-up reports the topic Redis keeps, so that a node whose subscriber missed its announcement learns it", async () => {
  const stream = new FakeStream();
  const topics: unknown[] = [];
  const { f } = feed(stream, { topic: (t) => topics.push(t) });
  await f.catchUp();
  expect(topics).toEqual([]); // none set: nothing to say
  stream.topic = { topic: 'set while we were away', nick: 'ann', time: 1234 };
  await f.catchUp();
  expect(topics).toEqual([{ topic: 'set while we were away', nick: 'ann', time: 1234 }]);
});

test('in order: delivered at once, without reading the Stream; duplicates dropped', () => {
  const s = new FakeStream();
  s.add(3);
  const { f, delivered } = feed(s);
  for (const seq of [1, 2, 2, 1, 3, 3]) f.live(s.live(seq));
  expect(delivered).toEqual([1, 2, 3]);
  expect(s.reads).toBe(0);
});

test('a gap is filled from the Stream, in pages, and what the channel brings meanwhile follows in order, once', async () => {
  const s = new FakeStream();
  s.add(20);
  const { f, delivered } = feed(s);
  f.live(s.live(1));
  s.hold();
  f.live(s.live(12)); // 2..11 lost on the channel
  for (const seq of [14, 13, 12, 15]) f.live(s.live(seq)); // arriving during the read, out of order, one twice
  s.release();
  await f.catchUp();
  await settle();
  expect(delivered).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  expect(s.reads).toBeGreaterThan(2); // pages of 4
});

test('catchUp() after a silent loss at the end of a burst delivers the rest; concurrent calls share one read', async () => {
  const s = new FakeStream();
  s.add(6);
  const { f, delivered } = feed(s);
  for (const seq of [1, 2, 3]) f.live(s.live(seq));
  await Promise.all([f.catchUp(), f.catchUp()]);
  expect(delivered).toEqual([1, 2, 3, 4, 5, 6]);
  expect(s.reads).toBe(1);
});

test('a new epoch (Redis lost the room): reported once with what was delivered, numbering starts again', async () => {
  const s = new FakeStream();
  s.add(5);
  const { f, delivered, lost } = feed(s);
  for (const seq of [1, 2, 3, 4, 5]) f.live(s.live(seq));
  s.epoch = 'e2';
  s.events = [];
  s.add(2);
  f.live(s.live(2, 'e2')); // its 1 lost on the channel
  await f.catchUp();
  await settle();
  expect(lost).toEqual([{ kind: 'epoch', previous: 'e1', epoch: 'e2', last: 5 }]);
  expect(delivered).toEqual([1, 2, 3, 4, 5, 1, 2]);
  expect(f.epoch).toBe('e2');
});

test('Redis holding nothing of a room it had (restarted without its data): reported at the next read, and the next publish starts at 1', async () => {
  const s = new FakeStream();
  s.add(3);
  const { f, delivered, lost } = feed(s);
  for (const seq of [1, 2, 3]) f.live(s.live(seq));
  s.epoch = '';
  s.events = [];
  await f.catchUp();
  expect(lost).toEqual([{ kind: 'epoch', previous: 'e1', epoch: '', last: 3 }]);
  expect(f.last).toBe(0);
  await f.catchUp(); // nothing new to say: reported once
  expect(lost).toHaveLength(1);
  s.epoch = 'e3';
  s.add(1);
  f.live(s.live(1, 'e3'));
  expect(delivered).toEqual([1, 2, 3, 1]);
  expect(f.epoch).toBe('e3');
});

test('a Stream trimmed past what was delivered: the missing run is reported, and the feed goes on from what is there', async () => {
  const s = new FakeStream();
  s.add(10);
  const { f, delivered, lost } = feed(s);
  f.live(s.live(1));
  s.events = s.events.slice(7); // 2..7 trimmed away
  s.first = 8;
  f.live(s.live(10));
  await f.catchUp();
  await settle();
  expect(lost).toEqual([{ kind: 'trimmed', from: 2, to: 7 }]);
  expect(delivered).toEqual([1, 8, 9, 10]);
});

test('a failed read is reported; the next message tries again and nothing is lost', async () => {
  const s = new FakeStream();
  s.add(4);
  const failures: unknown[] = [];
  let fail = true;
  const read = (after: number, limit: number): Promise<StreamPage> => (fail ? Promise.reject(new Error('down')) : s.read(after, limit));
  const { f, delivered } = feed(s, { read, failed: (e) => failures.push(e) });
  f.live(s.live(1));
  f.live(s.live(3));
  await settle();
  expect(failures).toHaveLength(1);
  fail = false;
  f.live(s.live(4));
  await f.catchUp();
  await settle();
  expect(delivered).toEqual([1, 2, 3, 4]);
});

test('a late message of an epoch Redis has since lost is dropped after one read, not read for again and again', async () => {
  const s = new FakeStream();
  s.epoch = 'e2';
  s.add(2);
  const { f, delivered } = feed(s);
  f.live(s.live(1));
  f.live(s.live(2));
  f.live(s.live(7, 'e1')); // published before the loss, delivered by the channel late
  await f.catchUp();
  await settle();
  await settle();
  expect(delivered).toEqual([1, 2]);
  expect(s.reads).toBe(1);
});

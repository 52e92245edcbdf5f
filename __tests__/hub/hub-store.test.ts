/**
 * The hub over a message store that keeps more than the rooms' windows: numbers that go on
 * after a restart and after a room empties, replays read from the store in order with what is
 * said meanwhile, and acks that wait for the write.
 */
import { Hub, type HubOptions } from '../../src/hub/hub.js';
import type { Link, Session } from '../../src/hub/session.js';
import type { Frame } from '../../src/protocol/frame.js';
import type { EventOf, ServerEvent } from '../../src/protocol/events.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { MessageStore } from '../../src/store/store.js';

class FakeLink implements Link {
  readonly frames: Frame[] = [];
  readonly peer = 'peer';
  closedWith: unknown = null;
  send(frame: Frame): void {
    this.frames.push(frame);
  }
  close(bye: unknown): void {
    this.closedWith = bye;
  }
  private seen = 0;
  take(): ServerEvent[] {
    const out = this.frames.slice(this.seen).map((f) => f.event);
    this.seen = this.frames.length;
    return out;
  }
}

const NOW = 1_767_225_600_000;
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function storeOf(perRoom = 100_000): Promise<MemoryStore> {
  const store = new MemoryStore({ perRoom, now: () => NOW });
  await store.open();
  return store;
}

async function hubOn(store: MessageStore, opts: Partial<HubOptions> = {}): Promise<Hub> {
  const hub = new Hub({ now: () => NOW, historySize: 4, store, ...opts });
  hub.restore(await store.open());
  return hub;
}

function member(hub: Hub, nick: string, rooms: string[] = ['lobby']): { s: Session; link: FakeLink } {
  const link = new FakeLink();
  const s = hub.attach(link, { nick, rooms });
  if (rooms.length === 0) link.take();
  return { s, link };
}

function say(hub: Hub, s: Session, n: number, room?: string): void {
  for (let i = 0; i < n; i++) hub.handle(s, { type: 'message', room, text: `m${i}` });
}

const seqsOf = (events: ServerEvent[]): number[] =>
  events.flatMap((e) => (e.type === 'history' ? e.messages.map((m) => m.seq) : e.type === 'message' ? [e.seq] : []));

describe('Hub over a message store', () => {
  test('a restart: numbers go on from the store, the topic is back, a resume reads the store', async () => {
    const store = await storeOf();
    const one = await hubOn(store);
    const a = member(one, 'a');
    say(one, a.s, 30);
    one.handle(a.s, { type: 'topic', topic: 'kept' });
    await settle();

    const two = await hubOn(store); // the same store, as after a restart
    const b = member(two, 'b', []);
    two.handle(b.s, { type: 'join', room: 'lobby', after: 10 });
    const joined = b.link.take();
    expect(joined[0]).toMatchObject({ type: 'joined', topic: 'kept', seq: 30 });
    await settle();
    const pages = b.link.take();
    expect(seqsOf(pages)).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));
    expect(pages[0]).toMatchObject({ type: 'history', first: 1, last: 30, missed: 0 });
    const c = member(two, 'c');
    two.handle(c.s, { type: 'message', text: 'after the restart' });
    expect(c.link.take().at(-1)).toMatchObject({ type: 'ack', seq: 31 });
  });

  test('what is said while a replay is read reaches the member after it, once and in order', async () => {
    const store = await storeOf();
    const hub = await hubOn(store, { pageSize: 7 });
    const a = member(hub, 'a');
    say(hub, a.s, 50);
    const b = member(hub, 'b', []);
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 0 });
    say(hub, a.s, 3); // 51..53, while 1..50 are read
    expect(seqsOf(b.link.frames.map((f) => f.event))).toEqual([]);
    for (let i = 0; i < 10; i++) await settle();
    const got = b.link.take();
    expect(seqsOf(got)).toEqual(Array.from({ length: 53 }, (_, i) => i + 1));
    expect(got.filter((e) => e.type === 'history').length).toBe(Math.ceil(50 / 7));
    say(hub, a.s, 1);
    expect(seqsOf(b.link.take())).toEqual([54]); // no longer held
  });

  test('a resume past maxResume sends the newest and counts the rest as missed', async () => {
    const hub = await hubOn(await storeOf(), { maxResume: 10 });
    const a = member(hub, 'a');
    say(hub, a.s, 40);
    const b = member(hub, 'b', []);
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 5 });
    await settle();
    const h = b.link.take().find((e) => e.type === 'history') as EventOf<'history'>;
    expect(h.messages.map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 31 + i));
    expect(h.missed).toBe(25);
  });

  test('an empty room leaves the list but keeps its numbers and history for its return', async () => {
    const hub = await hubOn(await storeOf());
    const a = member(hub, 'a', ['tmp']);
    say(hub, a.s, 6, 'tmp');
    hub.handle(a.s, { type: 'topic', room: 'tmp', topic: 'still here' });
    hub.handle(a.s, { type: 'part', room: 'tmp' });
    expect(hub.rooms.has('tmp')).toBe(false);
    expect(hub.knowsRoom('tmp')).toBe(true);
    expect((await hub.readHistory('tmp', null, 3))!.events.map((e) => e.seq)).toEqual([4, 5, 6]);
    a.link.take();
    hub.handle(a.s, { type: 'join', room: 'tmp', history: 2 });
    expect(a.link.take()[0]).toMatchObject({ type: 'joined', seq: 6, topic: 'still here' });
    await settle();
    say(hub, a.s, 1, 'tmp');
    expect(a.link.take().at(-1)).toMatchObject({ type: 'ack', seq: 7 });
  });

  test('under ackWhenDurable an ack waits for the store to report the write', async () => {
    const hub = await hubOn(await storeOf(), { ackWhenDurable: true });
    const a = member(hub, 'a');
    a.link.take();
    say(hub, a.s, 2);
    expect(a.link.take()).toEqual([]);
    hub.durable('lobby', 1);
    expect(a.link.take()).toEqual([expect.objectContaining({ type: 'ack', seq: 1 })]);
    hub.durable('lobby', 2);
    expect(a.link.take()).toEqual([expect.objectContaining({ type: 'ack', seq: 2 })]);
  });

  test('a store that cannot be read: an error to the reader, the room goes on', async () => {
    const store = await storeOf();
    const failed: unknown[] = [];
    const hub = new Hub({ now: () => NOW, historySize: 2, store }, { storeFailed: (e) => failed.push(e) });
    const a = member(hub, 'a');
    say(hub, a.s, 5);
    const range = store.range.bind(store);
    store.range = async () => {
      store.range = range;
      throw new Error('disk on fire');
    };
    const b = member(hub, 'b', []);
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 0 });
    await settle();
    expect(b.link.take().at(-1)).toMatchObject({ type: 'error', code: 'HISTORY_UNAVAILABLE' });
    say(hub, a.s, 1);
    expect(seqsOf(b.link.take())).toEqual([6]);
    expect(failed).toHaveLength(1);
  });

  test('a replay that cannot keep up (the store stalls) cuts that member, not the room', async () => {
    const store = await storeOf();
    const hub = await hubOn(store, { maxResume: 5 });
    const a = member(hub, 'a');
    say(hub, a.s, 10);
    store.range = () => new Promise(() => {}); // never answers
    const b = member(hub, 'b', []);
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 0 });
    say(hub, a.s, 6);
    expect(b.link.closedWith).toMatchObject({ code: 'SENDQ_EXCEEDED' });
    expect(a.link.take().filter((e) => e.type === 'ack')).toHaveLength(16);
  });
});

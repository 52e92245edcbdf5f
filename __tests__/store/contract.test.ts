/**
 * What every message store promises, run against each: the memory store and the SQLite store
 * (in a temporary directory). Anything the hub relies on belongs here, so a third store (Redis)
 * can be held to the same contract by adding one line to STORES.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LabelsEvent, MessageEvent, RoomEvent } from '../../src/protocol/events.js';
import { StoreError } from '../../src/store/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { MessageStore, StoreObserver } from '../../src/store/store.js';

interface Made {
  store: MessageStore;
  cleanup(): void;
}

type Make = (now: () => number, observer: StoreObserver) => Made;

const STORES: [string, Make][] = [
  ['memory', (now, observer) => ({ store: new MemoryStore({ perRoom: 10_000, now, observer }), cleanup() {} })],
  [
    'sqlite',
    (now, observer) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-store-'));
      return { store: new SqliteStore({ dir, fsync: 'batch', now, observer }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  ],
];

function message(room: string, seq: number, text = `message ${seq}`, time = 1_000 + seq): MessageEvent {
  return { type: 'message', room, seq, nick: 'ann', text, time };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe.each(STORES)('%s store', (_name, make) => {
  let clock = 1_000_000;
  let made: Made;
  let store: MessageStore;
  let durable: [string, number][];

  beforeEach(async () => {
    clock = 1_000_000;
    durable = [];
    made = make(() => clock, { durable: (room, seq) => durable.push([room, seq]) });
    store = made.store;
    expect(await store.open()).toEqual([]);
  });

  afterEach(async () => {
    await store.close();
    made.cleanup();
  });

  function fill(room: string, from: number, to: number): MessageEvent[] {
    const out: MessageEvent[] = [];
    for (let seq = from; seq <= to; seq++) {
      const e = message(room, seq);
      store.append(e);
      out.push(e);
    }
    return out;
  }

  test('its history has a name: the same each time it is asked, another for another store', async () => {
    const other = make(() => clock, {});
    try {
      await other.store.open();
      expect(store.historyId()).toMatch(/^[0-9a-f]{16}$/);
      expect(store.historyId()).toBe(store.historyId());
      expect(other.store.historyId()).not.toBe(store.historyId());
    } finally {
      await other.store.close();
      other.cleanup();
    }
  });

  test('range: events after a seq, oldest first, with the room bounds', async () => {
    const events = fill('lobby', 1, 5);
    expect(await store.range('lobby', 0, 100)).toEqual({ events, first: 1, last: 5 });
    expect(await store.range('lobby', 3, 100)).toEqual({ events: events.slice(3), first: 1, last: 5 });
    expect(await store.range('lobby', 5, 100)).toEqual({ events: [], first: 1, last: 5 });
    expect(await store.range('nowhere', 0, 100)).toEqual({ events: [], first: 1, last: 0 });
  });

  test('range pages through a room: each page continues after the last seq of the one before', async () => {
    const events = fill('lobby', 1, 25);
    const pages: number[][] = [];
    let after = 0;
    for (;;) {
      const page = await store.range('lobby', after, 10);
      if (page.events.length === 0) break;
      pages.push(page.events.map((e) => e.seq));
      after = page.events[page.events.length - 1]!.seq;
    }
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual(events.map((e) => e.seq));
    await store.flush();
    expect((await store.range('lobby', 20, 3)).events.map((e) => e.seq)).toEqual([21, 22, 23]);
  });

  test('latest: the newest n, oldest first, before and after they are written', async () => {
    const events = fill('lobby', 1, 8);
    expect(await store.latest('lobby', 3)).toEqual({ events: events.slice(5), first: 1, last: 8 });
    await store.flush();
    expect(await store.latest('lobby', 3)).toEqual({ events: events.slice(5), first: 1, last: 8 });
    const more = fill('lobby', 9, 10);
    expect((await store.latest('lobby', 4)).events).toEqual([...events.slice(6), ...more]);
    expect((await store.latest('lobby', 100)).events).toHaveLength(10);
    expect((await store.latest('lobby', 0)).events).toEqual([]);
  });

  test('rooms are kept apart', async () => {
    fill('a', 1, 3);
    fill('b', 1, 2);
    fill('a', 4, 4);
    await store.flush();
    expect((await store.range('a', 0, 10)).events.map((e) => [e.room, e.seq])).toEqual([['a', 1], ['a', 2], ['a', 3], ['a', 4]]);
    expect((await store.latest('b', 10)).events.map((e) => [e.room, e.seq])).toEqual([['b', 1], ['b', 2]]);
  });

  test('every kind of room event comes back as it went in', async () => {
    const labels: LabelsEvent = {
      type: 'labels',
      room: 'lobby',
      seq: 4,
      nick: 'classifier',
      image: 7,
      name: 'cat.jpg',
      time: 5,
      labels: [{ index: 281, label: 'tabby', score: 0.75 }],
      model: 'mobilenet',
      timings: { decode: 1.5, infer: 2 },
      preview: { width: 2, height: 1, rgb: 'AAAAAAAA' },
    };
    const events: RoomEvent[] = [
      message('lobby', 1, 'plain «text» with "quotes", émoji 🐈 and a tab\there'),
      { type: 'message', room: 'lobby', seq: 2, nick: 'bob', text: 'waves', time: 3, action: true },
      { type: 'image', room: 'lobby', seq: 3, nick: 'bob', image: 7, name: 'cat.jpg', size: 12345, time: 4 },
      labels,
      { type: 'labels', room: 'lobby', seq: 5, nick: 'classifier', image: 8, name: 'x.png', time: 6, error: { code: 'IMAGE_INVALID', message: 'no' } },
    ];
    for (const e of events) store.append(e);
    await store.flush();
    expect((await store.range('lobby', 0, 10)).events).toEqual(events);
  });

  test('durable: reported once per room per write with its highest seq, never inside append()', async () => {
    fill('a', 1, 3);
    fill('b', 1, 1);
    expect(durable).toEqual([]);
    await store.flush();
    await turn();
    expect(durable.sort()).toEqual([['a', 3], ['b', 1]]);
    fill('a', 4, 4);
    expect(durable).not.toContainEqual(['a', 4]);
    // The next write comes within a turn or a few milliseconds (SqliteStoreOptions.writeDelayMs).
    for (let i = 0; i < 50 && !durable.some(([r, n]) => r === 'a' && n === 4); i++) await new Promise((r) => setTimeout(r, 5));
    expect(durable).toContainEqual(['a', 4]);
  });

  test('append refuses seqs that do not grow, and anything when not open', async () => {
    fill('lobby', 1, 3);
    const code = (f: () => void): string | undefined => {
      try {
        f();
      } catch (err) {
        return err instanceof StoreError ? err.code : 'not a StoreError';
      }
      return undefined;
    };
    expect(code(() => store.append(message('lobby', 3)))).toBe('STORE_INVALID_EVENT');
    expect(code(() => store.append(message('lobby', 2)))).toBe('STORE_INVALID_EVENT');
    expect(code(() => store.append(message('lobby', 0.5)))).toBe('STORE_INVALID_EVENT');
    expect(code(() => store.append(message('', 1)))).toBe('STORE_INVALID_EVENT');
    expect(code(() => store.append(message('lobby', 2 ** 40)))).toBe('STORE_INVALID_EVENT');
    // A refused event leaves nothing behind, and numbering goes on.
    store.append(message('lobby', 10));
    await store.flush();
    expect((await store.range('lobby', 0, 10)).events.map((e) => e.seq)).toEqual([1, 2, 3, 10]);
    await store.close();
    expect(code(() => store.append(message('lobby', 11)))).toBe('STORE_CLOSED');
    expect(code(() => store.setTopic('lobby', 't', 'ann'))).toBe('STORE_CLOSED');
  });

  test('topics: open() reports each room with its last seq, first kept seq and topic', async () => {
    fill('lobby', 1, 3);
    clock = 42_000;
    store.setTopic('lobby', 'welcome all', 'ann');
    store.setTopic('quiet', 'nothing yet', 'bob');
    await store.flush();
    const rooms = await store.open();
    expect(rooms.sort((a, b) => a.room.localeCompare(b.room))).toEqual([
      { room: 'lobby', lastSeq: 3, firstSeq: 1, topic: 'welcome all', topicNick: 'ann', topicTime: 42_000 },
      { room: 'quiet', lastSeq: 0, firstSeq: 1, topic: 'nothing yet', topicNick: 'bob', topicTime: 42_000 },
    ]);
  });

  test('retention by count keeps the newest of each room, and the numbering', async () => {
    fill('a', 1, 10);
    fill('b', 1, 2);
    await store.flush();
    expect(await store.prune({ maxPerRoom: 3 })).toEqual({ deleted: 7 });
    expect(await store.range('a', 0, 100)).toEqual({ events: [message('a', 8), message('a', 9), message('a', 10)], first: 8, last: 10 });
    expect((await store.range('b', 0, 100)).events).toHaveLength(2);
    expect(await store.prune({ maxPerRoom: 0 })).toEqual({ deleted: 5 });
    expect(await store.range('a', 0, 100)).toEqual({ events: [], first: 11, last: 10 });
    store.append(message('a', 11));
    expect(await store.range('a', 0, 100)).toEqual({ events: [message('a', 11)], first: 11, last: 11 });
    expect((await store.open()).find((r) => r.room === 'a')).toMatchObject({ lastSeq: 11, firstSeq: 11 });
  });

  test('retention by age drops the oldest run of events, up to the first one young enough', async () => {
    const t = (seq: number, time: number): MessageEvent => message('lobby', seq, `m${seq}`, time);
    // Clocks step back: seq 4 is older than seq 3, but after it, so it stays while 3 stays.
    for (const e of [t(1, 100), t(2, 200), t(3, 900), t(4, 150), t(5, 1000)]) store.append(e);
    await store.flush();
    clock = 1100;
    expect(await store.prune({ maxAgeMs: 500 })).toEqual({ deleted: 2 });
    expect(await store.range('lobby', 0, 10)).toMatchObject({ first: 3, last: 5 });
    expect((await store.range('lobby', 0, 10)).events.map((e) => e.seq)).toEqual([3, 4, 5]);
    // Both bounds: whichever drops more.
    expect(await store.prune({ maxAgeMs: 10_000, maxPerRoom: 1 })).toEqual({ deleted: 2 });
    expect((await store.range('lobby', 0, 10)).events.map((e) => e.seq)).toEqual([5]);
  });

  describe('search', () => {
    beforeEach(async () => {
      const texts = [
        'The cat sat on the mat',
        'A dog and a CAT',
        'Café au lait, s’il vous plaît',
        'catalogue of cats: nothing here',
        'no match at all',
        'the cat, the Cat and the CAT!',
      ];
      texts.forEach((text, i) => store.append(message('lobby', i + 1, text)));
      store.append({ type: 'image', room: 'lobby', seq: 7, nick: 'bob', image: 1, name: 'cat.jpg', size: 10, time: 1 });
      store.append(message('other', 1, 'cat in another room'));
      await store.flush();
    });

    const seqs = (hits: { event: { seq: number } }[]): number[] => hits.map((h) => h.event.seq);

    test('whole words, case ignored, newest first; only messages of the room', async () => {
      const hits = await store.search('lobby', 'CAT', 10);
      expect(seqs(hits)).toEqual([6, 2, 1]);
      expect(hits[0]!.marks).toEqual([[4, 7], [13, 16], [25, 28]]);
      expect(hits[1]).toEqual({ event: message('lobby', 2, 'A dog and a CAT'), marks: [[12, 15]] });
    });

    test('every word must be there; marks cover each of them', async () => {
      const hits = await store.search('lobby', 'cat mat', 10);
      expect(seqs(hits)).toEqual([1]);
      expect(hits[0]!.marks).toEqual([[4, 7], [19, 22]]);
    });

    test('accents are ignored, and a trailing * matches a prefix', async () => {
      expect(await store.search('lobby', 'cafe PLAIT', 10)).toEqual([
        { event: message('lobby', 3, 'Café au lait, s’il vous plaît'), marks: [[0, 4], [24, 29]] },
      ]);
      const hits = await store.search('lobby', 'cat*', 10);
      expect(seqs(hits)).toEqual([6, 4, 2, 1]);
      expect(hits[1]!.marks).toEqual([[0, 9], [13, 17]]);
    });

    test('limit and beforeSeq page through the hits', async () => {
      const first = await store.search('lobby', 'cat', 2);
      expect(seqs(first)).toEqual([6, 2]);
      expect(seqs(await store.search('lobby', 'cat', 2, first[1]!.event.seq))).toEqual([1]);
      expect(seqs(await store.search('lobby', 'cat', 10, 1))).toEqual([]);
    });

    test('what people type is words, never query syntax', async () => {
      for (const q of ['"cat', 'cat)', 'NOT cat', 'cat OR dog', 'cat AND', '*', '-cat', 'cat:', '^cat', 'NEAR(cat dog)', '']) {
        expect(Array.isArray(await store.search('lobby', q, 10))).toBe(true);
      }
      expect(seqs(await store.search('lobby', '"cat"  -dog', 10))).toEqual([2]);
      expect(await store.search('lobby', 'cat OR dog', 10)).toEqual([]);
      expect(await store.search('lobby', '  ', 10)).toEqual([]);
    });

    test('messages appended this turn are found too', async () => {
      store.append(message('lobby', 8, 'a fresh cat'));
      expect(seqs(await store.search('lobby', 'fresh', 10))).toEqual([8]);
    });

    test('pruned messages are no longer found', async () => {
      await store.prune({ maxPerRoom: 2 });
      expect(seqs(await store.search('lobby', 'cat', 10))).toEqual([6]);
    });
  });

  test('health: ok, nothing queued after a flush', async () => {
    fill('lobby', 1, 3);
    await store.flush();
    expect(store.health()).toEqual({ state: 'ok', failedWrites: 0, queued: 0, dropped: 0 });
  });
});

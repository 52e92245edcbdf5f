import { RoomLog } from '../../src/hub/room-log.js';
import { Frame } from '../../src/protocol/frame.js';
import type { MessageEvent } from '../../src/protocol/events.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { MessageStore } from '../../src/store/store.js';

const NOW = 1_767_225_600_000;
const msg = (room: string, seq: number): MessageEvent => ({ type: 'message', room, seq, nick: 'a', text: `m${seq}`, time: NOW });
const seqs = (frames: Frame[] | null): number[] | null => frames && frames.map((f) => (f.event as MessageEvent).seq);

async function opened(perRoom = 1000): Promise<MemoryStore> {
  const store = new MemoryStore({ perRoom, now: () => NOW });
  await store.open();
  return store;
}

function fill(log: RoomLog, n: number): void {
  for (let i = 0; i < n; i++) log.append(new Frame(msg(log.room, log.next())));
}

describe('RoomLog', () => {
  test('a new room: nothing kept, the window answers for everything', async () => {
    const log = new RoomLog('r', await opened(), 5, undefined, () => {});
    expect(log.first).toBe(1);
    expect(seqs(log.window(0, 10))).toEqual([]);
  });

  test('keeps the newest in the window; older ones must be read from the store', async () => {
    const store = await opened();
    const log = new RoomLog('r', store, 5, undefined, () => {});
    fill(log, 3);
    expect(seqs(log.window(0, 10))).toEqual([1, 2, 3]);
    expect(seqs(log.window(1, 10))).toEqual([2, 3]);
    expect(seqs(log.window(3, 10))).toEqual([]);
    expect(seqs(log.window(0, 2))).toEqual([1, 2]); // the first ones after `after`: a forward page
    fill(log, 9);
    expect(log.firstInWindow).toBe(8);
    expect(seqs(log.window(7, 100))).toEqual([8, 9, 10, 11, 12]);
    expect(seqs(log.window(9, 2))).toEqual([10, 11]);
    expect(log.window(0, 100)).toBeNull(); // 1..7 are in the store only
    const page = await log.page(0, 100);
    expect(page.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(page).toMatchObject({ first: 1, last: 12 });
  });

  test('once the store says what it no longer keeps, the window answers again', async () => {
    const log = new RoomLog('r', await opened(5), 5, undefined, () => {});
    fill(log, 12); // the store keeps 8..12, as the window does
    expect(log.window(0, 100)).toBeNull(); // the log cannot know yet
    expect((await log.page(0, 100)).first).toBe(8);
    expect(log.first).toBe(8);
    expect(seqs(log.window(0, 100))).toEqual([8, 9, 10, 11, 12]);
  });

  test('numbers go on from where the store left off, with the topic', async () => {
    const log = new RoomLog('r', await opened(), 5, { lastSeq: 40, firstSeq: 1, topic: 'kept' }, () => {});
    expect(log.seq).toBe(40);
    expect(log.topic).toBe('kept');
    expect(log.window(0, 10)).toBeNull(); // 1..40 are on disk, not in memory
    expect(seqs(log.window(40, 10))).toEqual([]);
    expect(log.next()).toBe(41);
  });

  test('a write the store refuses is reported, not thrown: the event was delivered already', async () => {
    const store = await opened();
    await store.close();
    const refused: unknown[] = [];
    const log = new RoomLog('r', store as MessageStore, 5, undefined, (err) => refused.push(err));
    fill(log, 2);
    log.setTopic('t', 'a');
    expect(refused).toHaveLength(3);
    expect(seqs(log.window(0, 10))).toEqual([1, 2]);
  });
});

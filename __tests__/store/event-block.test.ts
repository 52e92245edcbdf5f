/**
 * The SQLite store's block layout: whatever goes into a block comes out equal, whichever
 * form (binary record or JSON) it took, and the binary record is the smaller.
 */
import type { LabelsEvent, MessageEvent, RoomEvent } from '../../src/protocol/events.js';
import { blockEvents, blockOf, blockText, BlockWriter, firstTime, FIRST_TIME_BYTES } from '../../src/store/event-block.js';

const room = 'lobby';
const msg = (seq: number, text: string, extra: Partial<MessageEvent> = {}): MessageEvent => ({
  type: 'message',
  room,
  seq,
  nick: 'ann',
  text,
  time: 1_767_225_600_000 + seq,
  ...extra,
});

test('messages, /me messages, images and labels come back equal, in order', () => {
  const labels: LabelsEvent = {
    type: 'labels',
    room,
    seq: 4,
    nick: 'classifier',
    image: 9,
    name: 'cat.png',
    time: 5,
    labels: [{ index: 281, label: 'tabby, tabby cat', score: 0.93 }],
  };
  const events: RoomEvent[] = [
    msg(1, 'hello'),
    msg(2, 'waves', { action: true }),
    { type: 'image', room, seq: 3, nick: 'bob', time: 4, image: 9, name: 'cat.png', bytes: 1200, mime: 'image/png' } as unknown as RoomEvent,
    labels,
    msg(2 ** 40 - 1, ''),
  ];
  expect(blockEvents(room, blockOf(events))).toEqual(events);
});

test('any text survives: every script, emoji, quotes and backslashes, a lone surrogate (kept as JSON)', () => {
  const texts = ['Café naïve', 'Привет мир', '日本語のテキスト', '🎉👍🏽 family 👨‍👩‍👧', '"quoted" \\ back\\slash', 'x'.repeat(70_000), 'lone \ud800 surrogate', 'tail \udfff'];
  const events = texts.map((t, i) => msg(i + 1, t, i === 2 ? { nick: 'ünïcödé' } : {}));
  expect(blockEvents(room, blockOf(events))).toEqual(events);
});

test('a message with a field beyond today goes as JSON and keeps it', () => {
  const future = { ...msg(1, 'hi'), reply: 7 } as unknown as RoomEvent;
  expect(blockEvents(room, blockOf([future, msg(2, 'next')]))).toEqual([future, msg(2, 'next')]);
});

test('a message record is smaller than its JSON, and the writer reuses its buffer across blocks', () => {
  const m = msg(12345, 'an ordinary chat message of a few words');
  expect(blockOf([m]).length).toBeLessThan(Buffer.byteLength(JSON.stringify(m)) * 0.75);
  const writer = new BlockWriter();
  for (let b = 0; b < 3; b++) {
    writer.reset();
    for (let i = 1; i <= 1000; i++) writer.add(msg(b * 1000 + i, `message ${i} of block ${b}`));
    const events = blockEvents(room, Buffer.from(writer.body));
    expect(events).toHaveLength(1000);
    expect(writer.count).toBe(1000);
    expect(events[999]).toEqual(msg(b * 1000 + 1000, `message 1000 of block ${b}`));
  }
});

test("a block's index text is its messages' text, a line each", () => {
  expect(blockText([msg(1, 'red sky'), msg(2, 'blue sea'), { type: 'labels', room, seq: 3, nick: 'c', image: 1, name: 'x', time: 1 }])).toBe(
    'red sky\nblue sea\n',
  );
});

test("a block's first time is read from its head when the first event is a message record, else null", () => {
  const head = (events: RoomEvent[]): Buffer => blockOf(events).subarray(0, FIRST_TIME_BYTES);
  expect(firstTime(head([msg(7, 'hi'), msg(8, 'there')]))).toBe(msg(7, '').time);
  expect(firstTime(head([msg(7, 'waves', { action: true })]))).toBe(msg(7, '').time);
  expect(firstTime(head([{ type: 'labels', room, seq: 1, nick: 'c', image: 1, name: 'x', time: 5 }]))).toBeNull();
  expect(firstTime(Buffer.alloc(3))).toBeNull();
});

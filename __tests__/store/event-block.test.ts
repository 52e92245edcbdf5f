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

test('a writer holding events until a write: slices, the part after a seq, and dropping the written part', () => {
  // Small to start with, so that both the bytes and the record table grow on the way.
  const writer = new BlockWriter(64, 2);
  const events: RoomEvent[] = [];
  for (let seq = 10; seq < 40; seq++) {
    const e: RoomEvent =
      seq % 7 === 0 ? { type: 'image', room, seq, nick: 'ann', image: seq, name: `${seq}.png`, size: seq * 100, time: seq } : msg(seq, `text ${seq} ` + 'é'.repeat(seq));
    events.push(e);
    writer.add(e);
  }
  expect(writer.count).toBe(30);
  expect(writer.seqAt(0)).toBe(10);
  expect(writer.timeAt(29)).toBe(events[29]!.time);
  expect(writer.after(9)).toBe(0);
  expect(writer.after(24)).toBe(15);
  expect(writer.after(39)).toBe(30);
  expect(blockEvents(room, writer.slice(5, 12))).toEqual(events.slice(5, 12));
  expect(writer.events(room, 28)).toEqual(events.slice(28));
  expect(writer.events(room, 30)).toEqual([]);

  writer.dropFirst(12);
  expect(writer.count).toBe(18);
  expect(writer.seqAt(0)).toBe(22);
  expect(writer.events(room)).toEqual(events.slice(12));
  expect(Buffer.from(writer.body)).toEqual(blockOf(events.slice(12)));
  writer.add(msg(40, 'after the drop'));
  expect(writer.events(room, writer.after(38))).toEqual([events[29], msg(40, 'after the drop')]);

  writer.dropFirst(writer.count);
  expect(writer.count).toBe(0);
  expect(writer.body.length).toBe(0);
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

import { Hub } from '../../src/hub/hub.js';
import type { Link } from '../../src/hub/session.js';
import type { ServerEvent } from '../../src/protocol/events.js';
import { Frame } from '../../src/protocol/frame.js';
import { eventJson, eventJsonMost, writeEventJson } from '../../src/protocol/json.js';

// A small deterministic generator, so a failure names a seed that reproduces it.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

// Code units JSON treats differently: plain ASCII, quote, backslash, controls, DEL, Latin-1,
// BMP, both halves of a surrogate pair (also alone, and in the wrong order).
const UNITS = ['a', ' ', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u00e9', '\u2028', '\u20ac', '\ud83d', '\ude00', '\ud83d\ude00', '/'];

function randomText(next: () => number): string {
  let s = '';
  const n = Math.floor(next() * 40);
  for (let i = 0; i < n; i++) s += next() < 0.6 ? 'abcxyz0189'[Math.floor(next() * 10)] : UNITS[Math.floor(next() * UNITS.length)];
  return s;
}

/** The event's bytes as writeEventJson() writes them, into a buffer with exactly the room it asks for. */
function written(event: ServerEvent): string {
  const most = eventJsonMost(event);
  const at = 3;
  // Filled with a byte JSON never ends with, so bytes written past `end` would show.
  const buf = Buffer.alloc(at + most + 8, 0xff);
  const end = writeEventJson(event, buf, at);
  expect(end).toBeLessThanOrEqual(at + most);
  expect(buf[end]).toBe(0xff);
  return buf.toString('utf8', at, end);
}

const TIME = 1_767_225_600_000;

describe('writeEventJson', () => {
  test.each(['', 'plain', 'say "hi"', 'back\\slash', 'tab\there', 'nul\u0000', '\u2028', 'caf\u00e9', '\u{1F600}', '\ud800', 'x\udc00y', '\u0000'.repeat(50), '\u20ac'.repeat(50)])(
    'text %j is written as JSON.stringify writes it, within the room asked for',
    (text) => {
      const event: ServerEvent = { type: 'message', room: text || 'r', seq: 1, nick: text || 'n', text, time: TIME };
      expect(written(event)).toBe(JSON.stringify(event));
    },
  );

  test('the longest a message or an ack can be still fits the room asked for', () => {
    const long = -0.0000012345678901234567; // the longest number JSON writes (25 characters)
    const all = '\u0000'.repeat(40); // 6 bytes each
    const message: ServerEvent = { type: 'message', room: all, seq: long, nick: all, text: all, time: long, action: true };
    const ack: ServerEvent = { type: 'ack', room: all, seq: long, time: long, image: long, id: all };
    for (const event of [message, ack]) {
      expect(written(event)).toBe(JSON.stringify(event));
      expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThanOrEqual(eventJsonMost(event));
    }
    // False, the longer of the two, as written for an event that is not the hub's own.
    const falseAction = { ...message, action: false } as unknown as ServerEvent;
    expect(written(falseAction)).toBe(JSON.stringify(falseAction));
  });

  test('a message event, with and without action, is the text JSON.stringify gives (500 random ones)', () => {
    const next = rng(7);
    for (let i = 0; i < 500; i++) {
      const event: ServerEvent = {
        type: 'message',
        room: randomText(next) || 'lobby',
        seq: Math.floor(next() * 2 ** (i % 2 === 0 ? 32 : 40)),
        nick: randomText(next) || 'bob',
        text: randomText(next),
        time: TIME + Math.floor(i / 3),
      };
      if (i % 3 === 0) event.action = true;
      expect([event, written(event)]).toEqual([event, JSON.stringify(event)]);
    }
  });

  test.each<ServerEvent>([
    { type: 'ack', room: 'lobby', seq: 1, time: TIME },
    { type: 'ack', room: 'lab', seq: 0, time: 5, image: 12 },
    { type: 'ack', room: 'lab', seq: 4294967295, time: 5, id: 7 },
    { type: 'ack', room: 'lab', seq: 4294967296, time: 5, id: -7 },
    { type: 'ack', room: 'lab', seq: 42, time: 5, image: 3, id: 'req "7"\n' },
    { type: 'ack', room: 'lab', seq: 42, time: -1.5e-300, id: 'x'.repeat(64) },
    { type: 'ack', room: 'lab', seq: Number.NaN, time: Number.POSITIVE_INFINITY },
  ])('the ack %j is the text JSON.stringify gives', (event) => {
    expect(written(event)).toBe(JSON.stringify(event));
  });

  test('other events have no byte writer; their text is JSON.stringify\'s', () => {
    const event: ServerEvent = { type: 'notice', text: 'say "hi"' };
    expect(eventJsonMost(event)).toBe(-1);
    expect(eventJson(event)).toBe(JSON.stringify(event));
  });

  test("the hub's own message and ack events, request ids included, go on the wire as JSON.stringify writes them", () => {
    const got: Frame[] = [];
    const link = (peer: string): Link => ({ peer, send: (f) => void got.push(f), close: () => undefined });
    const hub = new Hub({ now: () => TIME });
    const a = hub.attach(link('a'), { nick: 'a\u00e9' });
    hub.attach(link('b'), { nick: 'b' });
    got.length = 0;
    hub.handle(a, { type: 'message', text: 'hi "there"', id: 'x1' });
    hub.handle(a, { type: 'message', text: 'waves', action: true, id: 2 });
    hub.handle(a, { type: 'message', text: 'no id' });
    expect(got.map((f) => f.event.type)).toEqual(['message', 'ack', 'message', 'ack', 'message', 'ack']);
    for (const f of got) {
      expect(f.json.toString()).toBe(JSON.stringify(f.event) + '\n');
      expect(f.jsonText).toBe(JSON.stringify(f.event));
    }
  });
});

import { Hub } from '../src/hub/hub.js';
import type { Link } from '../src/hub/session.js';
import type { ServerEvent } from '../src/protocol/events.js';
import { Frame } from '../src/protocol/frame.js';
import { eventJson, jsonString } from '../src/protocol/json.js';

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

describe('jsonString', () => {
  test.each(['', 'plain', 'say "hi"', 'back\\slash', 'tab\there', 'nul\u0000', '\u2028', 'caf\u00e9', '\u{1F600}', '\ud800', 'x\udc00y'])(
    '%j is written as JSON.stringify writes it',
    (s) => {
      expect(jsonString(s)).toBe(JSON.stringify(s));
    },
  );

  test('so is any mix of the characters JSON escapes (2,000 random strings)', () => {
    const next = rng(42);
    for (let i = 0; i < 2000; i++) {
      const s = randomText(next);
      expect([s, jsonString(s)]).toEqual([s, JSON.stringify(s)]);
    }
  });
});

describe('eventJson', () => {
  test('a message event, with and without action, is the text JSON.stringify gives', () => {
    const next = rng(7);
    for (let i = 0; i < 500; i++) {
      const event: ServerEvent = {
        type: 'message',
        room: randomText(next) || 'lobby',
        seq: Math.floor(next() * 2 ** 40),
        nick: randomText(next) || 'bob',
        text: randomText(next),
        time: 1_767_225_600_000 + i,
      };
      if (i % 3 === 0) event.action = true;
      expect(eventJson(event)).toBe(JSON.stringify(event));
    }
  });

  test.each<ServerEvent>([
    { type: 'ack', room: 'lobby', seq: 1, time: 1_767_225_600_000 },
    { type: 'ack', room: 'lab', seq: 42, time: 5, image: 12 },
    { type: 'ack', room: 'lab', seq: 42, time: 5, id: 7 },
    { type: 'ack', room: 'lab', seq: 42, time: 5, image: 3, id: 'req "7"\n' },
  ])('the ack %j is the text JSON.stringify gives', (event) => {
    expect(eventJson(event)).toBe(JSON.stringify(event));
  });

  test('other events go through JSON.stringify', () => {
    const event: ServerEvent = { type: 'notice', text: 'say "hi"' };
    expect(eventJson(event)).toBe(JSON.stringify(event));
  });

  test("the hub's own message and ack events, request ids included, encode as JSON.stringify does", () => {
    const got: Frame[] = [];
    const link = (peer: string): Link => ({ peer, mode: 'json', send: (f) => void got.push(f), close: () => undefined });
    const hub = new Hub({ now: () => 1_767_225_600_000 });
    const a = hub.attach(link('a'), { nick: 'a\u00e9' });
    hub.attach(link('b'), { nick: 'b' });
    got.length = 0;
    hub.handle(a, { type: 'message', text: 'hi "there"', id: 'x1' });
    hub.handle(a, { type: 'message', text: 'waves', action: true, id: 2 });
    hub.handle(a, { type: 'message', text: 'no id' });
    expect(got.map((f) => f.event.type)).toEqual(['message', 'ack', 'message', 'ack', 'message', 'ack']);
    for (const f of got) expect(f.jsonText).toBe(JSON.stringify(f.event));
  });
});

/**
 * The JSON byte writer (writeEventJson, sized by eventJsonMost) against JSON.stringify, on
 * random message and ack events: the same bytes, never more than the room asked for, and not
 * a byte written outside it. fast-check shrinks a failure to a small event and prints the seed
 * and path that reproduce it.
 */
import fc from 'fast-check';
import type { ServerEvent } from '../../src/protocol/events.js';
import { eventJson, eventJsonMost, writeEventJson } from '../../src/protocol/json.js';

// Fixed, so a run is repeatable; a failure prints it with the path of the shrunk case.
const SEED = 0x5eed_0018;
const RUNS = 2000;

// One UTF-16 unit or code point of each kind JSON treats differently: what JSON writes as it
// is (ASCII, Latin-1, BMP, astral), what it escapes (quote, backslash, C0 controls) and lone
// surrogates, which JSON.stringify writes as \u escapes.
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.constantFrom('"', '\\', '/', '\u007f', '\u00e9', '\u2028', '\u2029', '\u20ac', '\ud83d\ude00', '\ufffd') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);
const text = fc.string({ unit, maxLength: 40 });

// Numbers with the most digits JSON writes (17 significant, with sign) at any decimal exponent,
// and more often at the exponents where JavaScript switches between plain and exponent
// notation, or writes a three-digit exponent: among them the longest text any number takes.
const exponent = fc.oneof(
  fc.integer({ min: -330, max: 310 }),
  fc.constantFrom(-324, -308, -300, -100, -99, -8, -7, -6, -5, -1, 0, 1, 15, 16, 20, 21, 22, 99, 100, 308),
);
const longNumber = fc
  .tuple(fc.boolean(), fc.noBias(fc.bigInt({ min: 10n ** 16n, max: 10n ** 17n - 1n })), exponent)
  .map(([negative, digits, exp]) => {
    const d = String(digits);
    return Number(`${negative ? '-' : ''}${d[0]}.${d.slice(1)}e${exp}`);
  });

// Integers of every bit length up to 53, either sign: as many of 33 bits as of 3.
const integer = fc
  .tuple(fc.integer({ min: 0, max: 53 }), fc.noBias(fc.maxSafeNat()), fc.boolean())
  .map(([bits, n, negative]) => (negative ? -1 : 1) * (n % 2 ** bits));

const number = fc.oneof(
  fc.nat({ max: 0xffffffff }), // the writer's own digit loop
  integer,
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.maxSafeInteger(),
  fc.double(), // NaN, +-Infinity, -0, subnormals included
  longNumber,
  fc.constantFrom(0, -0, 2 ** 32 - 1, 2 ** 32, 1e21, -1e21, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity, 1_767_225_600_000),
);
// The time is a millisecond count in practice; it is written from a cache keyed on the last one.
const time = fc.oneof(fc.constantFrom(1_767_225_600_000, 1_767_225_600_001), number);

// Events in the hub's key order (the writer's); `action` beyond the type's `true`, as an event
// not built by the hub may have it.
const message: fc.Arbitrary<ServerEvent> = fc
  .record({
    room: text,
    seq: number,
    nick: text,
    text,
    time,
    action: fc.option(fc.boolean(), { nil: undefined }),
  })
  .map(({ room, seq, nick, text, time, action }) => {
    const e = { type: 'message', room, seq, nick, text, time } as Record<string, unknown>;
    if (action !== undefined) e.action = action;
    return e as unknown as ServerEvent;
  });

const ack: fc.Arbitrary<ServerEvent> = fc
  .record({
    room: text,
    seq: number,
    time,
    image: fc.option(number, { nil: undefined }),
    id: fc.option(fc.oneof(text, number), { nil: undefined }),
  })
  .map(({ room, seq, time, image, id }) => {
    const e: Record<string, unknown> = { type: 'ack', room, seq, time };
    if (image !== undefined) e.image = image;
    if (id !== undefined) e.id = id;
    return e as unknown as ServerEvent;
  });

// Sizing, where the room asked for is tightest: every field at the longest it is documented to
// take (strings of C0 controls, six bytes each as \u001f; numbers as long as
// -0.0000012345678901234567, 25 characters; action false; an ack's every optional field) but
// one number, which may be random. A number longer than the writer allows for, or a key it does
// not count, then overflows.
const LONG = -0.0000012345678901234567;
const control = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));
const longText = fc.string({ unit: control, maxLength: 6 });
const longest: fc.Arbitrary<ServerEvent> = fc.oneof(
  fc
    .record({ room: longText, nick: longText, text: longText, field: fc.constantFrom('seq', 'time'), n: fc.oneof(fc.constant(LONG), longNumber, number) })
    .map(({ room, nick, text, field, n }) => {
      const e = { type: 'message', room, seq: LONG, nick, text, time: LONG, action: false };
      return { ...e, [field]: n } as unknown as ServerEvent;
    }),
  fc
    .record({ room: longText, field: fc.constantFrom('seq', 'time', 'image', 'id'), n: fc.oneof(fc.constant(LONG), longNumber, number) })
    .map(({ room, field, n }) => ({ type: 'ack', room, seq: LONG, time: LONG, image: LONG, id: LONG, [field]: n }) as ServerEvent),
);

const SENTINEL = 0xa5; // a byte no JSON of these events holds in that place

/** Writes `e` at `at` into a buffer of exactly at + eventJsonMost(e) bytes; checks the bytes around. */
function check(e: ServerEvent, at: number): void {
  const want = Buffer.from(JSON.stringify(e));
  expect(eventJson(e)).toBe(JSON.stringify(e));
  const most = eventJsonMost(e);
  expect(want.length).toBeLessThanOrEqual(most);
  const buf = Buffer.alloc(at + most, SENTINEL);
  const end = writeEventJson(e, buf, at);
  expect(end - at).toBeLessThanOrEqual(most);
  expect(buf.subarray(at, end).toString('hex')).toBe(want.toString('hex'));
  // Nothing before `at`, nor between the end and the room's end, was touched.
  expect(buf.subarray(0, at).every((b) => b === SENTINEL)).toBe(true);
  expect(buf.subarray(end).every((b) => b === SENTINEL)).toBe(true);
}

const params = { seed: SEED, numRuns: RUNS };

describe('writeEventJson against JSON.stringify', () => {
  // Found by the sizing property below: plain notation between 1e-6 and 1e-5 makes a number
  // 25 characters long, one more than the writer allowed for.
  test.each<ServerEvent>([
    { type: 'ack', room: '', seq: -0.0000010000000000000002, time: -1.2345678901234567e-300, image: -1.2345678901234567e-300, id: -1.2345678901234567e-300 },
    { type: 'message', room: '', seq: -1.2345678901234567e-300, nick: '', text: '', time: -0.0000012345678901234567, action: false } as unknown as ServerEvent,
    { type: 'message', room: '', seq: -0.0000012345678901234567, nick: '', text: '', time: -0.0000012345678901234567, action: true },
    // A message said while the cluster was away, with both flags, the longest a message gets.
    { type: 'message', room: '', seq: -0.0000012345678901234567, nick: '', text: '', time: -0.0000012345678901234567, action: true, local: true },
    { type: 'message', room: 'r', seq: 0, nick: 'n', text: 't', time: 1, local: true },
  ])('a number of 25 characters fits the room asked for: %j', (e) => check(e, 3));

  test('message events: the same bytes, within eventJsonMost, at any offset', () => {
    fc.assert(
      fc.property(message, fc.nat({ max: 64 }), (e, at) => check(e, at)),
      params,
    );
  });

  test('ack events: the same bytes, within eventJsonMost, at any offset', () => {
    fc.assert(
      fc.property(ack, fc.nat({ max: 64 }), (e, at) => check(e, at)),
      params,
    );
  });

  test('events with every field at its longest, but one number, often random, still fit the room asked for', () => {
    fc.assert(
      fc.property(longest, fc.nat({ max: 8 }), (e, at) => check(e, at)),
      params,
    );
  });

  test('events written one after another into one buffer, as the slab does', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(message, ack), { minLength: 1, maxLength: 8 }), (events) => {
        const total = events.reduce((n, e) => n + eventJsonMost(e), 0);
        const buf = Buffer.alloc(total, SENTINEL);
        let at = 0;
        const want: Buffer[] = [];
        for (const e of events) {
          at = writeEventJson(e, buf, at);
          want.push(Buffer.from(JSON.stringify(e)));
        }
        expect(buf.subarray(0, at).toString('hex')).toBe(Buffer.concat(want).toString('hex'));
      }),
      { ...params, numRuns: RUNS / 4 },
    );
  });
});

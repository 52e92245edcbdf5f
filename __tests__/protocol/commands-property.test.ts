/**
 * The fast reader of message lines (plainMessage, which parseJsonLine tries first) against the
 * general one (JSON.parse, then commandFromObject), on random lines: both give the same
 * command, field order included, or the same error. The lines are commands as programs write
 * them (JSON.stringify, in the orders clients use or shuffled), the same in other spellings
 * JSON allows (spaces, escapes, other number forms, a key twice), and junk. fast-check shrinks
 * a failure to a short line and prints the seed and path that reproduce it.
 */
import fc from 'fast-check';
import { commandFromObject, parseJsonLine, plainMessage } from '../../src/protocol/commands.js';
import { RoomcastError } from '../../src/protocol/errors.js';

const SEED = 0x5eed_0018;
const RUNS = 2000;

/** What a parse gives: the command with its keys in order, or the error's code, id and message. */
function outcome(parse: () => unknown): unknown {
  try {
    const cmd = parse() as Record<string, unknown>;
    return { keys: Object.keys(cmd), cmd };
  } catch (err) {
    if (!(err instanceof RoomcastError)) return { notRoomcastError: String(err) };
    return { code: err.code, id: err.id, message: err.message };
  }
}

/** The general way, as the fast one is measured against: any JSON.parse failure is BAD_JSON. */
function general(line: string): unknown {
  return outcome(() => {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      throw new RoomcastError('BAD_JSON');
    }
    return commandFromObject(obj);
  });
}

// Characters the two ways could disagree on: what JSON escapes, what sanitize() replaces (C0,
// DEL, C1, bidi overrides), lone surrogates and pairs, and the JSON syntax characters.
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ' ', '"', '\\', '/', '\t', '\n', '\r', '\u0000', '\u0008', '\u001b', '\u001f', '\u007f', '\u0080', '\u0085',
      '\u009b', '\u009f', '\u00a0', '\u00e9', '\u2028', '\u2029', '\u202a', '\u202e', '\u202f', '\u2065',
      '\u2066', '\u2069', '\u206a', '\ud83d', '\ude00', '\ud83d\ude00', '\ufffd', '\ufeff', '{', '}', ',', ':',
    ),
  },
);
const str = fc.string({ unit, maxLength: 12 });
// Text as people mostly type it, which the fast way takes.
const typed = fc.string({
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.constantFrom('\u00e9', '\u2028', '\ud83d\ude00', '\ud83d', '\ufffd', '\u00a0') },
  ),
  maxLength: 12,
});

const intId = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, -0, 7, -7, 999999999999999, 1e15, -999999999999999, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e21),
);
/** Anything a field could hold, the wrong types included. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: str },
  { weight: 1, arbitrary: intId },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(true, false, null, [], {}, ['a'], [1], { a: 1 }) },
  { weight: 1, arbitrary: fc.array(str, { maxLength: 3 }) },
);
const text = fc.oneof({ weight: 4, arbitrary: typed }, { weight: 4, arbitrary: str }, { weight: 1, arbitrary: anyValue });
const id = fc.oneof(
  { weight: 3, arbitrary: intId },
  { weight: 3, arbitrary: fc.oneof(typed, str) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(64), 'x'.repeat(65), '\u00e9'.repeat(64), '\ud83d\ude00'.repeat(32), '\ud83d\ude00'.repeat(33)) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(1.5, -0.5, NaN, null, true, false, [], {}, [1], '') },
);

type Fields = [string, unknown][];

// Message commands in the shapes clients write: the terminal client's {type, text, room?, id?},
// the web page's {type, room, text, id, action?}, a program's {type, text}. Mostly with values
// as clients send them; else with any values, the wrong types included.
const fieldValues = (text: fc.Arbitrary<unknown>, id: fc.Arbitrary<unknown>, action: fc.Arbitrary<unknown>) =>
  fc.record({
    text,
    room: fc.option(text, { nil: undefined }),
    roomFirst: fc.boolean(),
    id: fc.option(id, { nil: undefined }),
    action: fc.option(action, { nil: undefined }),
  });
const messageFields: fc.Arbitrary<Fields> = fc
  .oneof(
    { weight: 2, arbitrary: fieldValues(typed, fc.oneof(fc.integer(), typed), fc.boolean()) },
    { weight: 1, arbitrary: fieldValues(text, id, fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: anyValue })) },
  )
  .map(({ text, room, roomFirst, id, action }) => {
    const fields: Fields = [['type', 'message']];
    if (room !== undefined && roomFirst) fields.push(['room', room]);
    fields.push(['text', text]);
    if (room !== undefined && !roomFirst) fields.push(['room', room]);
    if (id !== undefined) fields.push(['id', id]);
    if (action !== undefined) fields.push(['action', action]);
    return fields;
  });

const TYPES = ['hello', 'nick', 'join', 'part', 'message', 'privmsg', 'rooms', 'who', 'topic', 'history', 'help', 'ping', 'quit', 'bot', 'image'];
const KEYS = ['nick', 'rooms', 'room', 'after', 'history', 'reason', 'text', 'action', 'to', 'topic', 'limit', 'name', 'size', 'id', 'extra'];

// Any command, or something near one: a type (known, unknown or not a string) and some keys.
const otherFields: fc.Arbitrary<Fields> = fc
  .tuple(
    fc.oneof({ weight: 8, arbitrary: fc.constantFrom<unknown>(...TYPES) }, { weight: 1, arbitrary: anyValue }),
    fc.array(fc.tuple(fc.constantFrom(...KEYS), anyValue), { maxLength: 5 }),
    fc.boolean(),
  )
  .map(([type, rest, typed]) => (typed ? [['type', type] as [string, unknown], ...rest] : rest));

// Other shapes of the same fields: shuffled, a key given twice (JSON.parse keeps the last), an
// unknown key.
const reshaped = (fields: fc.Arbitrary<Fields>): fc.Arbitrary<Fields> =>
  fc
    .tuple(fields, fc.constantFrom('as is', 'as is', 'as is', 'shuffled', 'twice', 'twice', 'extra'), fc.nat(), fc.nat(), fc.oneof(typed, anyValue))
    .chain(([f, how, i, j, v]) => {
      if (f.length === 0 || how === 'as is') return fc.constant(f);
      if (how === 'shuffled') return fc.shuffledSubarray(f, { minLength: f.length });
      const copy = [...f];
      if (how === 'twice') copy.splice(j % (copy.length + 1), 0, [f[i % f.length][0], v]);
      else copy.splice(j % (copy.length + 1), 0, ['extra', v]);
      return fc.constant(copy);
    });

/** How a line is spelt: compact as JSON.stringify writes, or with JSON's other spellings. */
interface Spelling {
  /** Chance of whitespace at each place JSON allows it. */
  space: number;
  /** Chance of a character in a string being written as an escape it need not be. */
  escape: number;
  /** Chance of a number in another notation (1e2, 1.0, -0). */
  numbers: number;
  /** Chance of a number in a notation JSON does not allow (01, +1, 1., .5): junk. */
  wrongNumbers?: number;
  seed: number;
}
const spelling: fc.Arbitrary<Spelling> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ space: fc.constant(0), escape: fc.constant(0), numbers: fc.constant(0), seed: fc.constant(0) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      space: fc.constantFrom(0, 0.05, 0.3),
      escape: fc.constantFrom(0, 0.05, 0.3),
      numbers: fc.constantFrom(0, 0.3),
      seed: fc.integer(),
    }),
  },
);

function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '/': '\\/', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A JSON object's text with these fields in this order, spelt as `s` says. */
function spell(fields: Fields, s: Spelling): string {
  const next = random(s.seed);
  const ws = (): string => (next() < s.space ? [' ', '\t', '  ', '\r\n', ' \t'][Math.floor(next() * 5)] : '');
  const string = (v: string): string => {
    if (s.escape === 0) return JSON.stringify(v);
    let out = '"';
    for (const ch of v) {
      const c = ch.codePointAt(0)!;
      if (next() < s.escape || ch === '"' || ch === '\\' || c < 0x20) {
        if (SHORT[ch] !== undefined && next() < 0.5) out += SHORT[ch];
        else
          for (let i = 0; i < ch.length; i++) {
            const hex = ch.charCodeAt(i).toString(16).padStart(4, '0');
            out += '\\u' + (next() < 0.5 ? hex : hex.toUpperCase());
          }
      } else {
        out += ch;
      }
    }
    return out + '"';
  };
  const number = (n: number): string => {
    const plain = JSON.stringify(n);
    if (next() < (s.wrongNumbers ?? 0)) {
      const wrong = [`0${plain}`, `-0${Math.abs(n)}`, `+${plain}`, `${plain}.`, `.${plain}`, `${plain}e`, `--${plain}`, `0x${plain}`, `${plain}_0`];
      return wrong[Math.floor(next() * wrong.length)];
    }
    if (!Number.isFinite(n) || next() >= s.numbers) return plain;
    const forms = [n.toExponential(), n.toExponential().toUpperCase(), `${plain}e0`];
    if (Number.isInteger(n) && Math.abs(n) < 1e21) forms.push(`${plain}.0`, `${plain}.000`, `${plain}E+0`, n === 0 ? '-0' : plain);
    return forms[Math.floor(next() * forms.length)];
  };
  const value = (v: unknown): string => {
    if (typeof v === 'string') return string(v);
    if (typeof v === 'number') return number(v);
    if (Array.isArray(v)) return '[' + ws() + v.map((x) => value(x)).join(ws() + ',' + ws()) + ws() + ']';
    if (v !== null && typeof v === 'object') return spell(Object.entries(v), s);
    return JSON.stringify(v);
  };
  const members = fields.map(([k, v]) => ws() + string(k) + ws() + ':' + ws() + value(v) + ws());
  return ws() + '{' + members.join(',') + '}' + ws();
}

const commandLine: fc.Arbitrary<string> = fc
  .tuple(fc.oneof({ weight: 4, arbitrary: reshaped(messageFields) }, { weight: 1, arbitrary: reshaped(otherFields) }), spelling)
  .map(([fields, s]) => spell(fields, s));

// Junk: lines cut, with a character put in or taken out, with numbers JSON does not allow, and
// strings of JSON's own pieces.
const junk: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(fc.oneof(reshaped(messageFields), reshaped(otherFields)), fc.integer())
    .map(([fields, seed]) => spell(fields, { space: 0, escape: 0, numbers: 0, wrongNumbers: 0.5, seed })),
  fc
    .tuple(commandLine, fc.nat(), fc.nat(), fc.constantFrom('cut', 'drop', 'insert'), fc.constantFrom('"', '\\', '}', '{', ',', ':', ' ', 'x', '0', '1', '-', '\u0000'))
    .map(([line, a, b, how, ch]) => {
      const i = a % (line.length + 1);
      if (how === 'cut') return line.slice(0, i);
      if (how === 'drop') return line.slice(0, i) + line.slice(i + 1);
      return line.slice(0, i) + ch + line.slice(i + (b % 2));
    }),
  fc
    .array(fc.constantFrom('{', '}', '[', ']', '"', ':', ',', ' ', '\\', 'type', 'message', 'text', 'room', 'id', 'action', 'true', 'false', 'null', '0', '-1', '1.5', 'x', '\u00e9'), { maxLength: 20 })
    .map((pieces) => pieces.join('')),
  fc.string({ unit, maxLength: 30 }),
);

describe('parseJsonLine: the fast way against JSON.parse and commandFromObject', () => {
  test('command lines as programs write them, and in every other spelling JSON allows', () => {
    let fast = 0;
    fc.assert(
      fc.property(commandLine, (line) => {
        const want = general(line);
        const quick = plainMessage(line);
        if (quick !== null) {
          fast++;
          expect(outcome(() => quick)).toEqual(want);
        }
        expect(outcome(() => parseJsonLine(line))).toEqual(want);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The fast way was taken, and not always: both were compared.
    expect(fast).toBeGreaterThan(RUNS / 10);
    expect(fast).toBeLessThan(RUNS * 0.9);
  });

  test('junk lines: the same error, or the same command', () => {
    fc.assert(
      fc.property(junk, (line) => {
        const want = general(line);
        const quick = plainMessage(line);
        if (quick !== null) expect(outcome(() => quick)).toEqual(want);
        expect(outcome(() => parseJsonLine(line))).toEqual(want);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});

/**
 * Our parser of client frames (WsReceiver) against ws's own Receiver, on random streams of
 * client frames: masked with random keys, text and binary, whole or in fragments with pings
 * and pongs between them, closes, and frames the RFC says must fail the connection; the bytes
 * read in chunks cut anywhere. Both must report the same messages, pings and close, and on a
 * failure the same close code (1002, 1007, 1009), nothing after it compared. fast-check
 * shrinks a failure to a short stream and prints the seed and path that reproduce it.
 *
 * Where this server reads the RFC more strictly than ws, the expected outcome is ws's, moved
 * accordingly (see expected()):
 * - a 64-bit length with its most significant bit set is 1002 (RFC 6455 5.2), where ws says
 *   1009 as for any length past 2^53;
 * - a fragmented text message fails with 1007 on the first fragment whose bytes cannot begin
 *   valid UTF-8 (8.1), where ws checks the whole message when its last fragment comes.
 * And ws reports pongs, which our parser drops (the server sends no pings of its own).
 */
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import * as wsModule from 'ws';
import { WsReceiver } from '../../../src/transport/ws/ws-receiver.js';

const SEED = 0x5eed_0018;
const RUNS = 1000;

interface WsReceiverLike {
  write(chunk: Buffer): boolean;
  on(event: string, listener: (...args: never[]) => void): unknown;
  readonly errored: (Error & { code?: string }) | null;
}
const { Receiver } = wsModule as unknown as {
  Receiver: new (o: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean }) => WsReceiverLike;
};

// ---- Frames -------------------------------------------------------------------------------

type Form = 'minimal' | '16' | '64';

interface Frame {
  fin: boolean;
  rsv: number;
  op: number;
  masked: boolean;
  key: number;
  payload: Buffer;
  /** How the length is written: in as few bytes as it takes, or in more (RFC 5.2 says not to). */
  form: Form;
  /** A length written in the header with no payload after it: the frame never completes. */
  declared?: bigint;
  /** A frame the RFC says fails the connection on its header (for the UTF-8 timing model). */
  bad?: boolean;
}

function encode(f: Frame): Buffer {
  const len = f.declared ?? BigInt(f.payload.length);
  let form = f.form;
  if (form === 'minimal') form = len < 126n ? 'minimal' : len < 65536n ? '16' : '64';
  else if (form === '16' && len > 0xffffn) form = '64';
  const head = [(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.op];
  const ext = Buffer.alloc(form === '16' ? 2 : form === '64' ? 8 : 0);
  if (form === 'minimal') head.push(Number(len));
  else if (form === '16') {
    head.push(126);
    ext.writeUInt16BE(Number(len));
  } else {
    head.push(127);
    ext.writeBigUInt64BE(len);
  }
  if (f.masked) head[1] |= 0x80;
  const key = Buffer.alloc(f.masked ? 4 : 0);
  if (f.masked) key.writeUInt32BE(f.key >>> 0);
  if (f.declared !== undefined) return Buffer.concat([Buffer.from(head), ext, key]);
  const payload = Buffer.from(f.payload);
  if (f.masked) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, payload]);
}

// A place in something, from its start (0) to its end (1). (fc.double spreads its values over
// the doubles, most of which are tiny: cuts would crowd at the start.)
const fraction = fc.integer({ min: 0, max: 10_000 }).map((n) => n / 10_000);

const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };

const key = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) }, { weight: 1, arbitrary: fc.constant(0) });
const form = fc.constantFrom<Form>('minimal', 'minimal', 'minimal', 'minimal', '16', '64');
const frame = (op: number, payload: Buffer, fin: boolean, k: number, fm: Form): Frame => ({
  fin,
  rsv: 0,
  op,
  masked: true,
  key: k,
  payload,
  form: fm,
});

// ---- Payloads -----------------------------------------------------------------------------

// Text that is UTF-8: every code point's length (1-4 bytes), so fragments cut through some.
const validText = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.constantFrom(125, 126, 127, 300, 65535, 65536).map((n) => Buffer.from('\u00e9'.repeat(n >> 1) + 'a'.repeat(n & 1))) },
);
// Byte sequences that are not UTF-8: a byte never used, overlong forms, a UTF-16 surrogate,
// past U+10FFFF, a continuation alone, a sequence cut short.
const notUtf8 = fc.constantFrom(
  [0xff],
  [0xfe],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0x80],
  [0xbf],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xc3],
);
// Text with such a sequence somewhere, often in its middle.
const someText = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => Buffer.from(s));
const invalidText = fc.tuple(someText, notUtf8, someText).map(([before, bad, after]) => Buffer.concat([before, Buffer.from(bad), after]));
const binary = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(125, 126, 300, 65536).map((n) => Buffer.alloc(n, 0x5a)) },
);
const controlPayload = fc.uint8Array({ maxLength: 125 }).map((a) => Buffer.from(a));

// ---- Frames the RFC says fail the connection anywhere -------------------------------------

const small = fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a));
const badFrame: fc.Arbitrary<Frame> = fc.oneof(
  // Unmasked (5.1).
  fc.tuple(fc.constantFrom(OP.text, OP.binary, OP.ping, OP.pong), small).map(([op, p]) => ({ ...frame(op, p, true, 0, 'minimal'), masked: false, bad: true })),
  // An RSV bit with no extension negotiated (5.2).
  fc.tuple(fc.constantFrom(4, 4, 1, 2, 3, 5, 6, 7), fc.constantFrom(OP.text, OP.binary, OP.ping), small, key).map(([rsv, op, p, k]) => ({ ...frame(op, p, true, k, 'minimal'), rsv, bad: true })),
  // A reserved opcode (5.2).
  fc.tuple(fc.constantFrom(3, 4, 5, 6, 7, 11, 12, 13, 14, 15), small, fc.boolean(), key).map(([op, p, fin, k]) => ({ ...frame(op, p, fin, k, 'minimal'), bad: true })),
  // A control frame of more than 125 bytes, or fragmented (5.5).
  fc.tuple(fc.constantFrom(OP.ping, OP.pong, OP.close), fc.integer({ min: 126, max: 200 }), key).map(([op, n, k]) => ({ ...frame(op, Buffer.alloc(n, 0x03), true, k, 'minimal'), bad: true })),
  fc.tuple(fc.constantFrom(OP.ping, OP.pong), small, key).map(([op, p, k]) => ({ ...frame(op, p, false, k, 'minimal'), bad: true })),
  // A control frame's length in more bytes than it takes (5.2: "the minimal number of bytes").
  fc.tuple(fc.constantFrom(OP.ping, OP.pong), small, key, fc.constantFrom<Form>('16', '64')).map(([op, p, k, fm]) => ({ ...frame(op, p, true, k, fm), bad: true })),
);
// A continuation of no message (5.4): bad between messages, not inside one.
const orphan: fc.Arbitrary<Frame> = fc.tuple(small, fc.boolean(), key).map(([p, fin, k]) => ({ ...frame(OP.continuation, p, fin, k, 'minimal'), bad: true }));

// The close frame: a code (valid, or one no endpoint may send) and a reason (UTF-8 or not), or
// no payload, or one byte.
const closeFrame: fc.Arbitrary<Frame> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999),
      fc.constantFrom(0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535),
      fc.integer({ min: 0, max: 0xffff }),
    ),
    fc.oneof({ weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map((s) => Buffer.from(s)) }, { weight: 1, arbitrary: invalidText.filter((b) => b.length <= 123) }),
    fc.constantFrom('code and reason', 'code and reason', 'nothing', 'one byte'),
    key,
  )
  .map(([code, reason, what, k]) => {
    const codeBytes = Buffer.alloc(2);
    codeBytes.writeUInt16BE(code);
    const payload = what === 'nothing' ? Buffer.alloc(0) : what === 'one byte' ? codeBytes.subarray(0, 1) : Buffer.concat([codeBytes, reason]);
    return frame(OP.close, payload, true, k, 'minimal');
  });

// A frame whose header alone decides: a length over the limit, past 2^53, or with its most
// significant bit set. Its payload never comes, so it ends the stream.
type Huge = 'over the limit' | 'past 2^53' | 'top bit';
const hugeFrame: fc.Arbitrary<{ frame: Frame; huge: Huge }> = fc
  .tuple(
    fc.constantFrom<Huge>('over the limit', 'past 2^53', 'top bit'),
    fc.constantFrom(OP.text, OP.binary, OP.continuation, OP.ping),
    fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
    fc.nat(2000),
    form,
    key,
  )
  .map(([huge, op, low, extra, fm, k]) => ({
    huge,
    frame: {
      ...frame(op, Buffer.alloc(0), true, k, huge === 'over the limit' ? fm : '64'),
      // 'over the limit' is fixed up against maxPayload when the stream is put together.
      declared: huge === 'top bit' ? 2n ** 63n + low : huge === 'past 2^53' ? 2n ** 53n + low : BigInt(extra),
    },
  }));

// ---- Streams ------------------------------------------------------------------------------

const control = fc.tuple(fc.constantFrom(OP.ping, OP.pong), controlPayload, key).map(([op, p, k]) => frame(op, p, true, k, 'minimal'));
const newData = fc.tuple(fc.constantFrom(OP.text, OP.binary), small, key).map(([op, p, k]) => ({ ...frame(op, p, true, k, 'minimal'), bad: true }));

// A data message: its payload cut into fragments, with pings and pongs between them; with
// faults, the text may not be UTF-8, and a bad frame (a new data frame among them) may come
// between fragments.
const cuts = (least: number) => fc.array(fraction, { minLength: least, maxLength: 4 });
const message = (faults: boolean): fc.Arbitrary<Frame[]> =>
  fc
    .tuple(
      fc.oneof(
        { weight: 5, arbitrary: fc.tuple(fc.constant(OP.text), validText, cuts(0)) },
        // Whole, or in several fragments, so that bad bytes may come before the last.
        { weight: faults ? 1 : 0, arbitrary: fc.tuple(fc.constant(OP.text), invalidText, fc.constant([])) },
        { weight: faults ? 3 : 0, arbitrary: fc.tuple(fc.constant(OP.text), invalidText, cuts(2)) },
        { weight: 3, arbitrary: fc.tuple(fc.constant(OP.binary), binary, cuts(0)) },
      ),
      fc.array(
        fc.option(
          fc.oneof({ weight: 6, arbitrary: control }, { weight: faults ? 1 : 0, arbitrary: badFrame }, { weight: faults ? 1 : 0, arbitrary: newData }),
          { freq: 3 },
        ),
        { minLength: 4, maxLength: 4 },
      ),
      fc.array(fc.tuple(key, form), { minLength: 5, maxLength: 5 }),
    )
    .map(([[op, payload, cuts], between, looks]) => {
      const at = [0, ...cuts.map((c) => Math.floor(c * payload.length)).sort((a, b) => a - b), payload.length];
      const frames: Frame[] = [];
      for (let i = 0; i + 1 < at.length; i++) {
        const last = i + 2 === at.length;
        frames.push(frame(i === 0 ? op : OP.continuation, payload.subarray(at[i], at[i + 1]), last, ...looks[i]));
        const extra = between[i];
        if (!last && extra) frames.push(extra);
      }
      return frames;
    });

const item = (faults: boolean): fc.Arbitrary<Frame[]> =>
  fc.oneof(
    { weight: 8, arbitrary: message(faults) },
    { weight: 2, arbitrary: control.map((f) => [f]) },
    { weight: faults ? 1 : 0, arbitrary: fc.oneof(badFrame, orphan).map((f) => [f]) },
    { weight: faults ? 1 : 0, arbitrary: closeFrame.map((f) => [f]) },
  );

interface Stream {
  frames: Frame[];
  huge: Huge | null;
  /** Where the bytes are cut into reads, as fractions of the stream's length. */
  cuts: number[];
  maxPayload: number;
}

// Streams a client may send (messages, pings, pongs, perhaps a close at the end), and streams
// with faults: any frame above, and perhaps a header that decides alone at the end.
const stream: fc.Arbitrary<Stream> = fc
  .boolean()
  .chain((faults) =>
    fc.record({
      items: fc.array(item(faults), { maxLength: 8 }),
      close: fc.option(closeFrame, { freq: 2 }),
      tail: faults ? fc.option(hugeFrame, { freq: 4 }) : fc.constant(null),
      cuts: fc.array(fraction, { maxLength: 30 }),
      maxPayload: faults ? fc.oneof(fc.constant(1 << 20), fc.integer({ min: 1, max: 200 })) : fc.constant(1 << 20),
    }),
  )
  .map(({ items, close, tail, cuts, maxPayload }) => {
    const frames = items.flat();
    if (close !== null) frames.push(close);
    if (tail !== null) {
      const f = { ...tail.frame };
      if (tail.huge === 'over the limit') f.declared = BigInt(maxPayload) + 1n + (f.declared ?? 0n);
      frames.push(f);
    }
    return { frames, huge: tail?.huge ?? null, cuts, maxPayload };
  });

// ---- Running both -------------------------------------------------------------------------

type Seen = { text: string; bytes: number } | { binary: string } | { ping: string } | { close: number; reason: string } | { fail: number };

/** The stream's bytes, where each frame ends in them, and the reads: the bytes cut at `cuts`, up to `end`. */
function wire(s: Stream): { bytes: Buffer; ends: number[] } {
  const encoded = s.frames.map(encode);
  const ends: number[] = [];
  let n = 0;
  for (const e of encoded) ends.push((n += e.length));
  return { bytes: Buffer.concat(encoded), ends };
}

function reads(bytes: Buffer, cuts: number[], end = bytes.length): Buffer[] {
  const at = [...new Set([0, ...cuts.map((c) => Math.floor(c * bytes.length)), bytes.length])].sort((a, b) => a - b);
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < at.length && at[i] < end; i++) out.push(Buffer.from(bytes.subarray(at[i], Math.min(at[i + 1], end))));
  return out;
}

function ours(chunks: Buffer[], maxPayload: number): Seen[] {
  // Binary payloads and pings are kept as given and read at the end: the handler says they may be.
  const seen: (Seen | { binaryData: Buffer } | { pingData: Buffer })[] = [];
  const rx = new WsReceiver(maxPayload, {
    text: (text, bytes) => seen.push({ text, bytes }),
    binary: (data) => seen.push({ binaryData: data }),
    ping: (data) => seen.push({ pingData: data }),
    close: (code, reason) => seen.push({ close: code ?? 1005, reason }),
    fail: (code) => seen.push({ fail: code }),
  });
  for (const chunk of chunks) rx.push(Buffer.from(chunk));
  return seen.map((s) => ('binaryData' in s ? { binary: s.binaryData.toString('hex') } : 'pingData' in s ? { ping: s.pingData.toString('hex') } : s));
}

// ws's error codes, by the close code each stands for.
const WS_ERRORS: Record<string, number> = {
  WS_ERR_UNEXPECTED_RSV_1: 1002,
  WS_ERR_UNEXPECTED_RSV_2_3: 1002,
  WS_ERR_INVALID_OPCODE: 1002,
  WS_ERR_EXPECTED_FIN: 1002,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 1002,
  WS_ERR_EXPECTED_MASK: 1002,
  WS_ERR_INVALID_CLOSE_CODE: 1002,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
};

function theirs(chunks: Buffer[], maxPayload: number): { seen: Seen[]; error?: string } {
  const seen: Seen[] = [];
  const rx = new Receiver({ isServer: true, maxPayload, skipUTF8Validation: false });
  let closed = false;
  rx.on('message', (data: Buffer, isBinary: boolean) => seen.push(isBinary ? { binary: data.toString('hex') } : { text: data.toString('utf8'), bytes: data.length }));
  rx.on('ping', (data: Buffer) => seen.push({ ping: data.toString('hex') }));
  rx.on('conclude', (code: number, reason: Buffer) => {
    closed = true;
    seen.push({ close: code, reason: reason.toString('utf8') });
  });
  // The error is read from `errored` as soon as write() returns; the event comes a tick later.
  rx.on('error', () => undefined);
  for (const chunk of chunks) {
    rx.write(Buffer.from(chunk));
    const err = rx.errored;
    if (err) {
      const code = WS_ERRORS[err.code ?? ''];
      if (code === undefined) throw new Error(`ws failed with ${err.code}, which this test does not map: ${err.message}`);
      seen.push({ fail: code });
      return { seen, error: err.code };
    }
    // After the close frame ws reads nothing more (and refuses writes).
    if (closed) break;
  }
  return { seen };
}

/** Whether `bytes` can still become UTF-8 with more bytes after them. */
function utf8Prefix(bytes: Buffer): boolean {
  const more = [0x80, 0x90, 0xa0];
  const tails: number[][] = [[]];
  for (let n = 1; n <= 3; n++) for (const t of tails.filter((t) => t.length === n - 1)) for (const b of more) tails.push([...t, b]);
  return tails.some((t) => isUtf8(Buffer.concat([bytes, Buffer.from(t)])));
}

/**
 * Where our parser should fail a fragmented text message for bad UTF-8: the end of the first
 * fragment after which the message's bytes cannot begin UTF-8, if one comes before anything
 * else ends the stream's meaning (a bad frame, a close).
 */
function utf8FailsAt(s: Stream, ends: number[]): number | null {
  let text: Buffer[] | null = null;
  for (let i = 0; i < s.frames.length; i++) {
    const f = s.frames[i];
    if (f.bad || f.declared !== undefined || f.op === OP.close) return null;
    if (f.op >= OP.close) continue;
    if (f.op === OP.text && !f.fin) text = [f.payload];
    else if (f.op === OP.continuation && text !== null) text.push(f.payload);
    else continue;
    if (!utf8Prefix(Buffer.concat(text))) return ends[i];
    if (f.fin) text = null;
  }
  return null;
}

/** ws's outcome, moved where this server reads the RFC more strictly (see the top of the file). */
function expected(s: Stream, bytes: Buffer, ends: number[]): Seen[] {
  const cut = utf8FailsAt(s, ends);
  if (cut !== null) {
    const before = theirs(reads(bytes, s.cuts, cut), s.maxPayload).seen;
    const last = before[before.length - 1];
    if (last === undefined || !('fail' in last || 'close' in last)) return [...before, { fail: 1007 }];
    return before;
  }
  const { seen, error } = theirs(reads(bytes, s.cuts), s.maxPayload);
  if (error === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH' && s.huge === 'top bit') seen[seen.length - 1] = { fail: 1002 };
  return seen;
}

describe('WsReceiver against ws’s Receiver', () => {
  // Found by the property below: our parser read a frame's longer length before looking at what
  // its first two bytes already decide, so it took a control frame whose length was written in
  // 16 or 64 bits, and called a control frame or a misplaced data frame with a length past 2^53
  // too big (1009) rather than a protocol error (1002), as ws does.
  const KEY = [0x12, 0x34, 0x56, 0x78];
  const masked = (head: number[], payload: number[] = []): Buffer =>
    Buffer.from([...head.slice(0, 1), head[1] | 0x80, ...head.slice(2), ...KEY, ...payload.map((b, i) => b ^ KEY[i & 3])]);
  test.each<[string, Buffer]>([
    ['a ping with its empty length in 16 bits', masked([0x89, 126, 0, 0])],
    ['a pong with its length of 3 in 64 bits', masked([0x8a, 127, 0, 0, 0, 0, 0, 0, 0, 3], [1, 2, 3])],
    ['a ping with a length of 2^53', masked([0x89, 127, 0, 0x20, 0, 0, 0, 0, 0, 0])],
    ['a continuation of no message with a length of 2^60', masked([0x80, 127, 0x10, 0, 0, 0, 0, 0, 0, 0])],
    ['a new message inside a fragmented one, with a length of 2^53', Buffer.concat([masked([0x01, 1], [0x61]), masked([0x82, 127, 0, 0x20, 0, 0, 0, 0, 0, 0])])],
  ])('%s is 1002, as ws has it', (_what, bytes) => {
    expect(theirs([bytes], 1 << 20).seen).toEqual([{ fail: 1002 }]);
    expect(ours([bytes], 1 << 20)).toEqual([{ fail: 1002 }]);
  });

  test('random client streams, read in random chunks: the same messages, pings, close or failure', () => {
    const outcomes = { clean: 0, close: 0, fail: 0 };
    fc.assert(
      fc.property(stream, (s) => {
        const { bytes, ends } = wire(s);
        const got = ours(reads(bytes, s.cuts), s.maxPayload);
        expect(got).toEqual(expected(s, bytes, ends));
        const last = got[got.length - 1];
        outcomes[last === undefined || !('fail' in last || 'close' in last) ? 'clean' : 'fail' in last ? 'fail' : 'close']++;
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // All three endings were compared, often.
    expect(Math.min(outcomes.clean, outcomes.close, outcomes.fail)).toBeGreaterThan(RUNS / 20);
  });
});

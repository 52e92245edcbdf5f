import * as wsModule from 'ws';
import { WsReceiver } from '../../../src/transport/ws/ws-receiver.js';

// Client frames as ws's client writes them (masked with a random key): the reference input.
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
};
function clientFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat(Sender.frame(Buffer.from(data), { fin, opcode, mask: true, readOnly: false, rsv1: false }));
}

type Seen =
  | { message: string; binary: boolean }
  | { ping: string }
  | { close: number | undefined; reason: string }
  | { fail: number; reason: string };

function receiver(maxPayload = 1 << 20): { rx: WsReceiver; seen: Seen[] } {
  const seen: Seen[] = [];
  const rx = new WsReceiver(maxPayload, {
    text: (text, bytes) => {
      expect(Buffer.byteLength(text)).toBe(bytes);
      seen.push({ message: text, binary: false });
    },
    binary: (data) => seen.push({ message: data.toString('hex'), binary: true }),
    ping: (data) => seen.push({ ping: data.toString('utf8') }),
    close: (close, reason) => seen.push({ close, reason }),
    fail: (fail, reason) => seen.push({ fail, reason }),
  });
  return { rx, seen };
}

// A small deterministic generator, so a failure can be run again as it was.
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

test.each([1, 2, 3, 4, 5])('messages of every size, fragmented or not, with pings between, read in chunks cut anywhere (seed %i)', (seed) => {
  const rand = random(seed);
  const sizes = [0, 1, 3, 125, 126, 127, 1000, 65535, 65536, 70000];
  const wire: Buffer[] = [];
  const want: Seen[] = [];
  for (let m = 0; m < 40; m++) {
    const size = sizes[Math.floor(rand() * sizes.length)];
    const binary = rand() < 0.3;
    // Text with multi-byte characters, so fragments may cut through one.
    const text = Array.from({ length: size }, (_, i) => (i % 7 === 3 ? 'é' : String.fromCharCode(97 + (i % 26)))).join('');
    const payload = binary ? Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + m) & 0xff)) : Buffer.from(text);
    want.push({ message: binary ? payload.toString('hex') : text, binary });
    const pieces = rand() < 0.4 ? 1 + Math.floor(rand() * 4) : 1;
    let at = 0;
    for (let p = 0; p < pieces; p++) {
      const end = p === pieces - 1 ? payload.length : Math.floor(at + rand() * (payload.length - at));
      wire.push(clientFrame(p === 0 ? (binary ? 2 : 1) : 0, payload.subarray(at, end), p === pieces - 1));
      at = end;
      // Control frames may come between the fragments of a message.
      if (rand() < 0.2) {
        wire.push(clientFrame(9, `ping ${m}.${p}`));
        // Before the message, unless it came after its last fragment.
        if (p === pieces - 1) want.push({ ping: `ping ${m}.${p}` });
        else want.splice(want.length - 1, 0, { ping: `ping ${m}.${p}` });
      }
    }
  }
  wire.push(clientFrame(8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])));
  want.push({ close: 1000, reason: 'bye' });
  const bytes = Buffer.concat(wire);
  const { rx, seen } = receiver();
  for (let at = 0; at < bytes.length; ) {
    const n = rand() < 0.1 ? 1 : Math.ceil(rand() * 20000);
    rx.push(Buffer.from(bytes.subarray(at, at + n)));
    at += n;
  }
  expect(seen).toEqual(want);
});

test('frames after the close frame are not read', () => {
  const { rx, seen } = receiver();
  rx.push(Buffer.concat([clientFrame(8, Buffer.alloc(0)), clientFrame(1, 'late')]));
  expect(seen).toEqual([{ close: undefined, reason: '' }]);
});

test.each<[string, Buffer, number, RegExp]>([
  ['an unmasked frame', Buffer.from([0x81, 0x02, 0x68, 0x69]), 1002, /masked/],
  ['an RSV bit', (() => { const f = clientFrame(1, 'hi'); f[0] |= 0x40; return f; })(), 1002, /RSV/],
  ['an unknown opcode', (() => { const f = clientFrame(1, 'hi'); f[0] = 0x83; return f; })(), 1002, /opcode 3/],
  ['a fragmented ping', clientFrame(9, 'p', false), 1002, /fragmented/],
  ['a continuation of nothing', clientFrame(0, 'x'), 1002, /continuation/],
  ['a new message inside a fragmented one', Buffer.concat([clientFrame(1, 'a', false), clientFrame(1, 'b')]), 1002, /inside/],
  ['a ping of 126 bytes', clientFrame(9, 'p'.repeat(126)), 1002, /125/],
  ['text that is not UTF-8', clientFrame(1, Buffer.from([0x68, 0xff, 0x69])), 1007, /UTF-8/],
  ['fragmented text that is not UTF-8', Buffer.concat([clientFrame(1, Buffer.from([0x68, 0xe2, 0x82]), false), clientFrame(0, Buffer.from([0x69]))]), 1007, /UTF-8/],
  // Failed on its first fragment: were it not, the next message would fail it as "inside" this one.
  ['a first fragment that is not UTF-8, before the message ends', clientFrame(1, Buffer.from([0x68, 0xff]), false), 1007, /UTF-8/],
  ['a 64-bit length with its most significant bit set', Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]), 1002, /most significant/],
  ['a surrogate encoded as UTF-8 (CESU-8)', clientFrame(1, Buffer.from([0xed, 0xa0, 0xbd])), 1007, /UTF-8/],
  ['a close frame of one byte', clientFrame(8, Buffer.from([0x03])), 1002, /close code/],
  ['close code 1005, which is never sent', clientFrame(8, Buffer.from([0x03, 0xed])), 1002, /close code/],
  ['a close reason that is not UTF-8', clientFrame(8, Buffer.from([0x03, 0xe8, 0xc3])), 1007, /UTF-8/],
])('%s fails the connection with its close code, and nothing after it is read', (_what, bad, code, reason) => {
  const { rx, seen } = receiver();
  rx.push(Buffer.concat([clientFrame(1, 'before'), bad, clientFrame(1, 'after')]));
  expect(seen).toEqual([{ message: 'before', binary: false }, { fail: code, reason: expect.stringMatching(reason) }]);
});

test('text holding U+FFFD itself is valid UTF-8 and is delivered, whole or in fragments', () => {
  const { rx, seen } = receiver();
  const text = 'bad byte? \ufffd no, a real replacement character';
  const bytes = Buffer.from(text);
  rx.push(Buffer.concat([clientFrame(1, text), clientFrame(1, bytes.subarray(0, 11), false), clientFrame(0, bytes.subarray(11))]));
  expect(seen).toEqual([
    { message: text, binary: false },
    { message: text, binary: false },
  ]);
});

test('a message over maxPayload is refused on its header, before its bytes come', () => {
  const { rx, seen } = receiver(1000);
  const big = clientFrame(2, Buffer.alloc(1001));
  rx.push(big.subarray(0, 8)); // header, 16-bit length and mask only
  expect(seen).toEqual([{ fail: 1009, reason: 'message over the 1000-byte limit' }]);
});

test('fragments are counted together against maxPayload', () => {
  const { rx, seen } = receiver(1000);
  rx.push(Buffer.concat([clientFrame(1, 'a'.repeat(600), false), clientFrame(0, 'b'.repeat(401))]));
  expect(seen).toEqual([{ fail: 1009, reason: 'message over the 1000-byte limit' }]);
});

test('a 64-bit length beyond what a number holds is too big, not a wrong number', () => {
  const { rx, seen } = receiver();
  rx.push(Buffer.from([0x82, 0xff, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]));
  expect(seen).toEqual([{ fail: 1009, reason: expect.stringMatching(/limit/) }]);
});

test('a zero mask key (valid: it leaves the payload as it is) and a message of exactly maxPayload', () => {
  const { rx, seen } = receiver(5);
  rx.push(Buffer.from([0x81, 0x85, 0, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
  expect(seen).toEqual([{ message: 'hello', binary: false }]);
});

test('a message in too many fragments fails with 1009 rather than costing a Buffer per byte', () => {
  const { rx, seen } = receiver();
  const frames = [clientFrame(1, 'a', false)];
  for (let i = 0; i < 16 * 1024; i++) frames.push(clientFrame(0, 'a', false));
  rx.push(Buffer.concat(frames));
  expect(seen).toEqual([{ fail: 1009, reason: 'a message in more than 16384 fragments' }]);
});

test('a frame trickled in a byte per read fails once it is in too many pieces', () => {
  const { rx, seen } = receiver();
  const frame = clientFrame(2, Buffer.alloc(300_000));
  let at = 0;
  while (seen.length === 0 && at < frame.length) rx.push(frame.subarray(at, ++at));
  expect(seen).toEqual([{ fail: 1009, reason: 'a frame in more than 262144 pieces' }]);
  expect(at).toBeLessThan(270_000);
});

import * as wsModule from 'ws';
import { Frame } from '../../../src/protocol/frame.js';
import { closeFrame, pongFrame, textFrame, WS_FRAME, wsBytes } from '../../../src/transport/ws/ws-frame.js';

// What ws.send() would have written for the same text: ws's own framing, as the reference.
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
};
function wsReference(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }));
}

test.each([0, 1, 125, 126, 127, 65535, 65536, 70000])('a text frame of %i bytes is the one ws frames', (size) => {
  const text = 'x'.repeat(size);
  expect(textFrame(text).equals(wsReference(text))).toBe(true);
});

test('the length counts UTF-8 bytes, not characters', () => {
  const text = 'caf\u00e9 \u{1F600} '.repeat(20); // 2- and 4-byte sequences, 120 characters
  const frame = textFrame(text);
  expect(frame.equals(wsReference(text))).toBe(true);
  expect(frame.subarray(4).toString()).toBe(text);
});

test('frames cut from the shared slab stay intact as later frames fill it and the next one', () => {
  // Lengths around both header sizes and the slab's frame limit, in 1-, 2-, 3- and 4-byte
  // characters, enough of them to go through several slabs.
  const chars = ['x', '\u00e9', '\u20ac', '\u{1F600}'];
  const texts: string[] = [];
  for (let i = 0; i < 400; i++) {
    const ch = chars[i % chars.length];
    const units = [0, 1, 40, 41, 42, 125, 126, 300, 682, 683, 700][i % 11];
    texts.push(ch.repeat(Math.max(0, Math.floor(units / ch.length))) + i);
  }
  const frames = texts.map((t) => textFrame(t));
  frames.forEach((frame, i) => expect(frame.equals(wsReference(texts[i]))).toBe(true));
});

test('message and ack events written as bytes are the frames and lines of their JSON text, as slabs fill', () => {
  // Texts around the 126-byte header step and the slab's limit (past it the text is framed
  // from JSON.stringify), in 1- to 4-byte characters; every frame checked after all are made.
  const chars = ['x', '\u00e9', '\u20ac', '\u{1F600}', '"'];
  const frames: Frame[] = [];
  for (let i = 0; i < 300; i++) {
    const ch = chars[i % chars.length];
    const units = [0, 1, 20, 30, 40, 200, 300, 330, 340, 700][i % 10];
    const text = ch.repeat(Math.floor(units / ch.length));
    const time = 1_767_225_600_000 + i;
    frames.push(new Frame({ type: 'message', room: 'lab', seq: i, nick: 'n\u00e9', text, time }));
    frames.push(new Frame({ type: 'ack', room: 'lab', seq: i, time, id: i % 2 ? i : `r${i}` }));
  }
  const ws = frames.map((f) => wsBytes(f));
  const lines = frames.map((f) => f.json);
  frames.forEach((f, i) => {
    expect([i, ws[i].equals(wsReference(JSON.stringify(f.event)))]).toEqual([i, true]);
    expect([i, lines[i].toString()]).toEqual([i, JSON.stringify(f.event) + '\n']);
  });
});

test('a frame is encoded once, whoever asks', () => {
  const frame = new Frame({ type: 'notice', text: 'hello' });
  const first = wsBytes(frame);
  expect(wsBytes(frame)).toBe(first);
  expect(first.subarray(2).toString()).toBe(frame.jsonText);
  expect(frame.encoded(WS_FRAME, () => Buffer.alloc(0))).toBe(first);
  // A second kind of encoding does not evict the first.
  const other = frame.encoded('other', () => Buffer.from('other'));
  expect(frame.encoded('other', () => Buffer.alloc(0))).toBe(other);
  expect(wsBytes(frame)).toBe(first);
});

function wsControl(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat(Sender.frame(payload, { fin: true, opcode, mask: false, readOnly: true, rsv1: false }));
}

test('close and pong frames are the ones ws frames', () => {
  const status = Buffer.from([0x03, 0xf0]); // 1008
  expect(closeFrame(1008, 'SendQ exceeded').equals(wsControl(8, Buffer.concat([status, Buffer.from('SendQ exceeded')])))).toBe(true);
  expect(pongFrame(Buffer.from('are you there')).equals(wsControl(10, Buffer.from('are you there')))).toBe(true);
  expect(pongFrame(Buffer.alloc(0)).equals(wsControl(10, Buffer.alloc(0)))).toBe(true);
});

test('a long close reason is cut to fit a control frame, between characters', () => {
  const frame = closeFrame(1000, 'é'.repeat(100)); // 200 bytes of UTF-8
  expect(frame[1]).toBeLessThanOrEqual(125);
  const reason = frame.subarray(4);
  expect(reason.toString('utf8')).toBe('é'.repeat(61));
});

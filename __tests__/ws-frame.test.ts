import * as wsModule from 'ws';
import { Frame } from '../src/protocol/frame.js';
import { textFrame, WS_FRAME, wsBytes } from '../src/transport/ws-frame.js';

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

/**
 * Output coalescing: a broadcast's bytes are joined once per encoding, not once per recipient,
 * also when recipients of different encodings (text, JSON, WebSocket) come interleaved.
 */
import { joinBatch } from '../src/transport/flush.js';

test('recipients of interleaved encodings share one joined copy per encoding', () => {
  const text = [Buffer.from('[lobby] a: one\n'), Buffer.from('[lobby] a: two\n')];
  const ws = [Buffer.from('\x81\x05one!!'), Buffer.from('\x81\x05two!!')];
  const bytes = (parts: Buffer[]): number => parts.reduce((n, b) => n + b.length, 0);
  const firstText = joinBatch([...text], bytes(text));
  const firstWs = joinBatch([...ws], bytes(ws));
  expect(firstText.toString()).toBe('[lobby] a: one\n[lobby] a: two\n');
  for (let i = 0; i < 5; i++) {
    expect(joinBatch([...text], bytes(text))).toBe(firstText);
    expect(joinBatch([...ws], bytes(ws))).toBe(firstWs);
  }
  // Other Buffers with the same bytes are another batch: never mistaken for a shared one.
  const copy = text.map((b) => Buffer.from(b));
  const other = joinBatch(copy, bytes(copy));
  expect(other).not.toBe(firstText);
  expect(other.equals(firstText)).toBe(true);
  expect(joinBatch([text[0]], text[0].length)).toBe(text[0]);
});

/**
 * Output coalescing: a broadcast's bytes are joined once per encoding, not once per recipient,
 * also when recipients of different encodings (text, JSON, WebSocket) come interleaved.
 */
import { EARLY_FLUSH_BYTES, joinBatch, noteQueued, scheduleFlush, type Flushable } from '../../src/transport/flush.js';

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

/** A recipient that notes in `log` when it is flushed. */
function recorder(log: string[], name: string): Flushable {
  return { flush: () => log.push(name) };
}

test('a turn is flushed once the event loop moves on, not per message', async () => {
  const log: string[] = [];
  scheduleFlush(recorder(log, 'a'));
  noteQueued(100);
  scheduleFlush(recorder(log, 'b'));
  noteQueued(100);
  await Promise.resolve();
  expect(log).toEqual([]); // small turns wait for the end of the turn
  await new Promise((r) => setImmediate(r));
  expect(log).toEqual(['a', 'b']);
});

test('a turn that has queued EARLY_FLUSH_BYTES is flushed when the current callback returns', async () => {
  const log: string[] = [];
  scheduleFlush(recorder(log, 'a'));
  noteQueued(EARLY_FLUSH_BYTES - 1);
  await Promise.resolve();
  expect(log).toEqual([]);
  noteQueued(1);
  expect(log).toEqual([]); // never in the middle of a callback: a broadcast is never split
  await Promise.resolve();
  expect(log).toEqual(['a']);
  // The count starts again: the next recipient waits for its turn's end or its own megabyte.
  scheduleFlush(recorder(log, 'b'));
  noteQueued(10);
  await Promise.resolve();
  expect(log).toEqual(['a']);
  await new Promise((r) => setImmediate(r));
  expect(log).toEqual(['a', 'b']);
});

import { LineReader, type Incoming } from '../../src/protocol/line-reader.js';

/** Pulls every frame the reader can give now, lines shown as strings. */
function drain(r: LineReader): (string | Incoming)[] {
  const out: (string | Incoming)[] = [];
  for (let item = r.next(); item !== null; item = r.next()) {
    out.push(item.kind === 'line' ? item.line.toString('utf8') : item);
  }
  return out;
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('LineReader', () => {
  test('several lines coalesced in one chunk come out one at a time, in order', () => {
    const r = new LineReader(100);
    r.push(b('one\ntwo\nthree\n'));
    expect(r.next()).toEqual({ kind: 'line', line: b('one') });
    expect(r.next()).toEqual({ kind: 'line', line: b('two') });
    expect(r.next()).toEqual({ kind: 'line', line: b('three') });
    expect(r.next()).toBeNull();
    expect(r.buffered).toBe(0);
  });

  test('a line split over many chunks (one byte at a time) comes out whole, once', () => {
    const r = new LineReader(100);
    const got: (string | Incoming)[] = [];
    for (const ch of 'héllo wörld\nnext\n') {
      for (const byte of b(ch)) {
        r.push(Buffer.from([byte]));
        got.push(...drain(r));
      }
    }
    expect(got).toEqual(['héllo wörld', 'next']);
  });

  test('a partial line waits, and is counted as buffered', () => {
    const r = new LineReader(100);
    r.push(b('abc\nde'));
    expect(drain(r)).toEqual(['abc']);
    expect(r.buffered).toBe(2);
    r.push(b('f\n'));
    expect(drain(r)).toEqual(['def']);
    expect(r.buffered).toBe(0);
  });

  test('CRLF: the CR before the LF is dropped, a CR elsewhere is kept', () => {
    const r = new LineReader(100);
    r.push(b('a\r\nb\rc\n\r\n\n'));
    expect(drain(r)).toEqual(['a', 'b\rc', '', '']);
  });

  test('CRLF split between chunks', () => {
    const r = new LineReader(100);
    r.push(b('hello\r'));
    expect(drain(r)).toEqual([]);
    r.push(b('\nworld\r\n'));
    expect(drain(r)).toEqual(['hello', 'world']);
  });

  test('a line of exactly the limit passes; one byte more is oversize', () => {
    const r = new LineReader(5);
    r.push(b('12345\n123456\nok\n'));
    expect(drain(r)).toEqual(['12345', { kind: 'oversize', limit: 5 }, 'ok']);
  });

  test('the limit does not count the CR of a CRLF, even when the LF comes in the next chunk', () => {
    const r = new LineReader(5);
    r.push(b('12345\r\n'));
    expect(drain(r)).toEqual(['12345']);
    r.push(b('abcde\r'));
    expect(drain(r)).toEqual([]);
    r.push(b('\nnext\n'));
    expect(drain(r)).toEqual(['abcde', 'next']);
  });

  test('oversize line arriving in pieces: reported once, skipped to its newline, then resynchronised', () => {
    const r = new LineReader(8);
    r.push(b('0123456789'));
    expect(drain(r)).toEqual([{ kind: 'oversize', limit: 8 }]);
    expect(r.buffered).toBe(0); // nothing of it is kept
    r.push(b('abcdefghij'));
    expect(drain(r)).toEqual([]);
    r.push(b('tail\nafter\n'));
    expect(drain(r)).toEqual(['after']);
  });

  test('oversize line complete in one chunk, between good lines', () => {
    const r = new LineReader(4);
    r.push(b('ab\nTOOLONGLINE\ncd\n'));
    expect(drain(r)).toEqual(['ab', { kind: 'oversize', limit: 4 }, 'cd']);
  });

  test('a line that never ends past giveUpAfter is an overflow', () => {
    const r = new LineReader(4, 20);
    r.push(b('x'.repeat(10)));
    expect(drain(r)).toEqual([{ kind: 'oversize', limit: 4 }]);
    r.push(b('x'.repeat(10))); // 20 skipped: not past the bound yet
    expect(drain(r)).toEqual([]);
    r.push(b('x'));
    expect(r.next()).toEqual({ kind: 'overflow', limit: 20 });
  });

  test('the default give-up bound is max(64 * maxLine, 1 MiB)', () => {
    const r = new LineReader(16);
    r.push(Buffer.alloc(1 << 20, 0x61));
    expect(drain(r)).toEqual([{ kind: 'oversize', limit: 16 }]);
    r.push(b('a'));
    expect(r.next()).toEqual({ kind: 'overflow', limit: 1 << 20 });
  });

  test('raw byte blocks: exactly n bytes, whole, across chunks, then lines again', () => {
    const r = new LineReader(100);
    r.push(b('head\n\x00\x01'));
    expect(r.next()).toEqual({ kind: 'line', line: b('head') });
    r.expectBytes(5);
    expect(r.next()).toBeNull();
    expect(r.buffered).toBe(2);
    r.push(Buffer.from([0x0a, 0xff]));
    expect(r.next()).toBeNull();
    r.push(b('\x02line\n'));
    expect(r.next()).toEqual({ kind: 'bytes', data: Buffer.from([0, 1, 0x0a, 0xff, 2]) });
    expect(drain(r)).toEqual(['line']);
  });

  test('a raw block already fully buffered comes out in one frame', () => {
    const r = new LineReader(100);
    r.push(b('abcdef\n'));
    r.expectBytes(3);
    expect(r.next()).toEqual({ kind: 'bytes', data: b('abc') });
    expect(drain(r)).toEqual(['def']);
  });

  test('raising maxLine (JSON mode) takes effect for the next line', () => {
    const r = new LineReader(4);
    r.push(b('123456\n'));
    expect(drain(r)).toEqual([{ kind: 'oversize', limit: 4 }]);
    r.maxLine = 10;
    r.push(b('123456\n'));
    expect(drain(r)).toEqual(['123456']);
  });

  test('lines returned stay intact after more input is pushed', () => {
    const r = new LineReader(100);
    r.push(b('first\nsec'));
    const first = r.next();
    r.push(b('ond\n'));
    const second = r.next();
    expect(first).toEqual({ kind: 'line', line: b('first') });
    expect(second).toEqual({ kind: 'line', line: b('second') });
  });
});

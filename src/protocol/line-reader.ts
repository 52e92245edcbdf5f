/**
 * Framing of what TCP clients send: newline-delimited lines, plus counted raw byte blocks (the
 * body of an image message). A pull parser: the connection pushes what the socket gave it and
 * pulls one frame at a time, so it can stop pulling when a client is over its flood budget and
 * leave the rest where it is. Knows nothing of sockets.
 *
 * A line longer than the limit is reported once and then skipped up to its newline, so the
 * connection resynchronises; one that has no newline within `giveUpAfter` bytes cannot be
 * resynchronised and is reported as overflow.
 */
export type Incoming =
  | { kind: 'line'; line: Buffer }
  | { kind: 'oversize'; limit: number }
  | { kind: 'bytes'; data: Buffer }
  | { kind: 'overflow'; limit: number };

const NL = 0x0a;
const CR = 0x0d;

export class LineReader {
  private buf: Buffer | null = null;
  private pos = 0;
  private discarding = 0; // bytes skipped so far of an oversized line; 0 = not skipping
  private rawWanted = 0;
  private rawChunks: Buffer[] | null = null; // only while a raw block is coming: idle readers hold no array
  private rawHave = 0;
  private rawKeep = true;

  constructor(
    public maxLine: number,
    private readonly giveUpAfter = Math.max(maxLine * 64, 1 << 20),
  ) {}

  push(chunk: Buffer): void {
    if (this.buf === null || this.pos >= this.buf.length) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
  }

  /**
   * The next `n` bytes are a raw block, returned whole as one `bytes` frame; with keep=false
   * they are counted and dropped as they come (an upload refused for its size), and the frame
   * is empty.
   */
  expectBytes(n: number, keep = true): void {
    this.rawWanted = n;
    this.rawChunks = null;
    this.rawHave = 0;
    this.rawKeep = keep;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return (this.buf ? this.buf.length - this.pos : 0) + this.rawHave;
  }

  next(): Incoming | null {
    const buf = this.buf;
    if (this.rawWanted > 0) return this.nextRaw();
    if (buf === null) return null;
    const start = this.pos;
    const nl = buf.indexOf(NL, start);

    if (this.discarding > 0) {
      if (nl === -1) {
        this.discarding += buf.length - start;
        this.release();
        return this.discarding > this.giveUpAfter
          ? { kind: 'overflow', limit: this.giveUpAfter }
          : null;
      }
      this.discarding = 0;
      this.consumeTo(nl + 1);
      return this.next();
    }

    if (nl === -1) {
      // A trailing CR may be the first half of a CRLF split across reads: it is not content.
      const pending = buf.length - start - (buf[buf.length - 1] === CR ? 1 : 0);
      if (pending > this.maxLine) {
        this.discarding = pending;
        this.release();
        return { kind: 'oversize', limit: this.maxLine };
      }
      return null;
    }

    const end = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
    this.consumeTo(nl + 1);
    if (end - start > this.maxLine) return { kind: 'oversize', limit: this.maxLine };
    return { kind: 'line', line: buf.subarray(start, end) };
  }

  private nextRaw(): Incoming | null {
    const buf = this.buf;
    if (buf !== null) {
      const take = Math.min(buf.length - this.pos, this.rawWanted - this.rawHave);
      if (take > 0) {
        if (this.rawKeep) (this.rawChunks ??= []).push(buf.subarray(this.pos, this.pos + take));
        this.rawHave += take;
        this.consumeTo(this.pos + take);
      }
    }
    if (this.rawHave < this.rawWanted) return null;
    const chunks = this.rawChunks ?? [];
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    this.rawWanted = 0;
    this.rawChunks = null;
    this.rawHave = 0;
    return { kind: 'bytes', data };
  }

  private consumeTo(pos: number): void {
    if (this.buf !== null && pos >= this.buf.length) this.release();
    else this.pos = pos;
  }

  // Idle connections hold no buffer at all: it matters at ten thousand of them.
  private release(): void {
    this.buf = null;
    this.pos = 0;
  }
}

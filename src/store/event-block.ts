/**
 * How the SQLite store lays out a room's events: a block is a run of one room's events written
 * together as one row, one record after another. One row for many events keeps the B-tree's
 * work per write, not per message.
 *
 * A message is a small binary record (its text and nick as UTF-8, its numbers as doubles):
 * cheaper to make than JSON, and smaller, and bytes are what the hub pays for on every write
 * (docs/performance.md has the figures). Any other event, and a message with fields beyond
 * today's, is kept as JSON, so that fields added to the protocol later are kept without a
 * migration. The room is the block's and is not repeated.
 *
 *   message: kind (0, or 1 for /me) u8, seq f64, time f64, nick bytes u16, text bytes u32, nick, text
 *   other:   kind 2 u8, JSON bytes u32, JSON (the whole event)
 */
import type { MessageEvent, RoomEvent } from '../protocol/events.js';

const KIND_MESSAGE = 0;
const KIND_ACTION = 1;
const KIND_JSON = 2;
const MESSAGE_HEAD = 1 + 8 + 8 + 2 + 4;
const JSON_HEAD = 1 + 4;

/**
 * Buffer's own UTF-8 writer, which buf.write(s, at, 'utf8') calls after checking and sorting
 * out its arguments: a record makes room first, so the checks are skipped on this path.
 */
type Utf8Writable = Buffer & { utf8Write(s: string, at: number, most: number): number };

/** The fields a message record holds; a message with any other is kept as JSON. */
const MESSAGE_FIELDS = new Set(['type', 'room', 'seq', 'nick', 'text', 'time', 'action']);

/**
 * A block being built: events encoded as they come, so that a store holding events until its
 * next write holds bytes, not objects. Objects that wait a few milliseconds outlive the
 * young generation and make every scavenge copy them (docs/performance.md).
 */
export class BlockWriter {
  private buf: Buffer;
  private at = 0;
  /** Per record: its seq, its time and the offset where it ends. */
  private seqs: Float64Array;
  private times: Float64Array;
  private ends: Float64Array;
  count = 0;

  constructor(bytes = 64 * 1024, records = 256) {
    this.buf = Buffer.allocUnsafeSlow(bytes);
    this.seqs = new Float64Array(records);
    this.times = new Float64Array(records);
    this.ends = new Float64Array(records);
  }

  /** Starts the next block. */
  reset(): void {
    this.at = 0;
    this.count = 0;
  }

  add(event: RoomEvent): void {
    if (event.type === 'message' && isPlainMessage(event)) {
      const { nick, text } = event;
      this.ensure(MESSAGE_HEAD + 3 * (nick.length + text.length));
      const buf = this.buf;
      const head = this.at;
      buf[head] = event.action ? KIND_ACTION : KIND_MESSAGE;
      buf.writeDoubleLE(event.seq, head + 1);
      buf.writeDoubleLE(event.time, head + 9);
      const w = buf as Utf8Writable;
      const nickBytes = w.utf8Write(nick, head + MESSAGE_HEAD, buf.length - head - MESSAGE_HEAD);
      const textAt = head + MESSAGE_HEAD + nickBytes;
      const textBytes = w.utf8Write(text, textAt, buf.length - textAt);
      buf.writeUInt16LE(nickBytes, head + 17);
      buf.writeUInt32LE(textBytes, head + 19);
      this.at = head + MESSAGE_HEAD + nickBytes + textBytes;
    } else {
      const json = JSON.stringify(event);
      this.ensure(JSON_HEAD + 3 * json.length);
      const head = this.at;
      this.buf[head] = KIND_JSON;
      const n = (this.buf as Utf8Writable).utf8Write(json, head + JSON_HEAD, this.buf.length - head - JSON_HEAD);
      this.buf.writeUInt32LE(n, head + 1);
      this.at = head + JSON_HEAD + n;
    }
    if (this.count === this.seqs.length) this.growRecords();
    this.seqs[this.count] = event.seq;
    this.times[this.count] = event.time;
    this.ends[this.count] = this.at;
    this.count++;
  }

  /** The block so far: a view of the writer's buffer, valid until the next add() or reset(). */
  get body(): Buffer {
    return this.buf.subarray(0, this.at);
  }

  /** Bytes the writer holds on to, used or not. */
  get capacity(): number {
    return this.buf.length;
  }

  /** Records from..to-1 as a block body: a view, valid like body. */
  slice(from: number, to: number): Buffer {
    return this.buf.subarray(this.start(from), this.start(to));
  }

  seqAt(i: number): number {
    return this.seqs[i]!;
  }

  timeAt(i: number): number {
    return this.times[i]!;
  }

  /** The index of the first record with a seq above `seq` (count when none is). */
  after(seq: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The events of records from..count-1, decoded. */
  events(room: string, from = 0): RoomEvent[] {
    return from >= this.count ? [] : blockEvents(room, this.slice(from, this.count));
  }

  /** Forgets the first k records, keeping the rest in order. */
  dropFirst(k: number): void {
    if (k >= this.count) return this.reset();
    const cut = this.start(k);
    this.buf.copy(this.buf, 0, cut, this.at);
    this.at -= cut;
    const rest = this.count - k;
    this.seqs.copyWithin(0, k, this.count);
    this.times.copyWithin(0, k, this.count);
    this.ends.copyWithin(0, k, this.count);
    for (let i = 0; i < rest; i++) this.ends[i] = this.ends[i]! - cut;
    this.count = rest;
  }

  private start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]!;
  }

  private ensure(more: number): void {
    if (this.at + more <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.at + more));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }

  private growRecords(): void {
    const n = this.seqs.length * 2;
    for (const key of ['seqs', 'times', 'ends'] as const) {
      const grown = new Float64Array(n);
      grown.set(this[key]);
      this[key] = grown;
    }
  }
}

/** ES2024's String.prototype.isWellFormed, which Node 20 has: false when a surrogate is alone. */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * Whether the record holds all of the message. UTF-8 cannot carry a lone surrogate (JSON
 * can), so a text with one goes as JSON too.
 */
function isPlainMessage(event: MessageEvent): boolean {
  for (const key in event) if (!MESSAGE_FIELDS.has(key) && (event as unknown as Record<string, unknown>)[key] !== undefined) return false;
  return (event.action === undefined || event.action === true) && wellFormed(event.text) && wellFormed(event.nick);
}

/** A block's body for these events (one-off: prune's rewrites, the migration). */
export function blockOf(events: readonly RoomEvent[]): Buffer {
  const writer = new BlockWriter(4096, 16);
  for (const e of events) writer.add(e);
  return Buffer.from(writer.body);
}

/** The events of a block body, in the order written. */
export function blockEvents(room: string, body: Uint8Array): RoomEvent[] {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const events: RoomEvent[] = [];
  for (let at = 0; at < buf.length; ) {
    const kind = buf[at]!;
    if (kind === KIND_JSON) {
      const n = buf.readUInt32LE(at + 1);
      events.push(JSON.parse(buf.toString('utf8', at + JSON_HEAD, at + JSON_HEAD + n)) as RoomEvent);
      at += JSON_HEAD + n;
      continue;
    }
    const nickBytes = buf.readUInt16LE(at + 17);
    const textBytes = buf.readUInt32LE(at + 19);
    const nickAt = at + MESSAGE_HEAD;
    const event: MessageEvent = {
      type: 'message',
      room,
      seq: buf.readDoubleLE(at + 1),
      nick: buf.toString('utf8', nickAt, nickAt + nickBytes),
      text: buf.toString('utf8', nickAt + nickBytes, nickAt + nickBytes + textBytes),
      time: buf.readDoubleLE(at + 9),
    };
    if (kind === KIND_ACTION) event.action = true;
    events.push(event);
    at = nickAt + nickBytes + textBytes;
  }
  return events;
}

/** Bytes from a block's start that hold its first event's time, when that event is a message record. */
export const FIRST_TIME_BYTES = 17;

/**
 * The time of a block's first event from its first FIRST_TIME_BYTES bytes, or null when that
 * event is JSON (the whole block must be read for it).
 */
export function firstTime(head: Uint8Array): number | null {
  const buf = Buffer.isBuffer(head) ? head : Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (buf.length < FIRST_TIME_BYTES || (buf[0] !== KIND_MESSAGE && buf[0] !== KIND_ACTION)) return null;
  return buf.readDoubleLE(9);
}

/**
 * What the full-text index holds for a block: its messages' text, one a line. A block
 * matches when all of a query's words are somewhere in it; the store then keeps the messages
 * that hold them all.
 */
export function blockText(events: readonly RoomEvent[]): string {
  let text = '';
  for (const e of events) if (e.type === 'message') text += e.text + '\n';
  return text;
}

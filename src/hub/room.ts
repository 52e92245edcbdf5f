/**
 * A room: its members, its topic, and its numbered history. Sequence numbers are per room and
 * never reused, so a client that reconnects asks for "everything after N" and gets no
 * duplicates. History is a ring of already-encoded frames: replaying it costs no encoding.
 */
import type { RoomEvent } from '../protocol/events.js';
import type { Frame } from '../protocol/frame.js';
import type { Session } from './session.js';

export class Room {
  readonly members = new Set<Session>();
  topic = '';
  /** Sequence number of the last message; the next one gets seq + 1. */
  seq = 0;
  private ring: (Frame | undefined)[];
  private head = 0; // index where the next frame goes
  private count = 0;

  constructor(
    readonly name: string,
    readonly predefined: boolean,
    historySize: number,
  ) {
    this.ring = new Array(Math.max(0, historySize));
  }

  record(frame: Frame): void {
    if (this.ring.length === 0) return;
    this.ring[this.head] = frame;
    this.head = (this.head + 1) % this.ring.length;
    if (this.count < this.ring.length) this.count++;
  }

  /** Lowest sequence number still kept (seq + 1 when nothing is kept). */
  get firstKept(): number {
    return this.seq - this.count + 1;
  }

  /** Kept frames with seq > after, oldest first, at most `limit` (the newest ones). */
  since(after: number, limit: number): Frame[] {
    const n = Math.min(this.count, Math.max(0, this.seq - after), Math.max(0, limit));
    const out: Frame[] = new Array(n);
    const len = this.ring.length;
    for (let i = 0; i < n; i++) out[i] = this.ring[(this.head - n + i + len) % len]!;
    return out;
  }

  messagesSince(after: number, limit: number): RoomEvent[] {
    return this.since(after, limit).map((f) => f.event as RoomEvent);
  }
}

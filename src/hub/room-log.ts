/**
 * A room's log: the one place that numbers a room's events and hands them to the message
 * store. It keeps the newest events as encoded frames, a window that most replays come from
 * without a read; anything older is read from the store. Nothing but the hub uses it, and
 * nothing but it calls the store's writes.
 */
import type { RoomEvent } from '../protocol/events.js';
import type { Frame } from '../protocol/frame.js';
import type { HistoryPage, MessageStore } from '../store/store.js';

/** What a room's log starts from: the store's word on a room seen before, or nothing. */
export interface LogStart {
  lastSeq: number;
  /** Lowest sequence number the store keeps (lastSeq + 1 when none). */
  firstSeq: number;
  topic: string;
  /** Names the numbering (RoomLog.epoch); kept as it was when not given. */
  epoch?: string;
}

export class RoomLog {
  /** Sequence number of the last event; the next one gets seq + 1. */
  seq: number;
  topic: string;
  /**
   * Names the room's numbering: it changes when the numbers start again (a history lost), so
   * that a client's "after N" of the old numbering is not taken for one of the new.
   */
  epoch: string;
  /** Lowest sequence number the store is known to keep: what a replay can reach at best. */
  private storedFirst: number;
  private readonly ring: (Frame | undefined)[];
  private head = 0; // index where the next frame goes
  private count = 0;

  constructor(
    readonly room: string,
    private readonly store: MessageStore,
    windowSize: number,
    start: LogStart | undefined,
    /** A write the store refused; the event has been delivered all the same. */
    private readonly refused: (err: unknown) => void,
    /** The store keeps no more than the window does (the hub's own memory store): never read it. */
    private readonly windowIsAll = false,
  ) {
    this.seq = start?.lastSeq ?? 0;
    this.topic = start?.topic ?? '';
    this.epoch = start?.epoch ?? store.historyId();
    this.storedFirst = start?.firstSeq ?? 1;
    this.ring = new Array(Math.max(0, windowSize));
  }

  /** The number the next event gets; call append() with that event before any other next(). */
  next(): number {
    return ++this.seq;
  }

  /** Keeps a numbered event: in the window now, in the store at the end of the turn. */
  append(frame: Frame): void {
    this.keep(frame);
    try {
      this.store.append(frame.event as RoomEvent);
    } catch (err) {
      this.refused(err);
    }
  }

  /**
   * Where a room numbered elsewhere (a cluster's relay) stands when this node starts to follow
   * it: nothing is in the window yet, and everything up to lastSeq is in the shared store.
   */
  begin(start: LogStart): void {
    this.seq = start.lastSeq;
    this.storedFirst = start.firstSeq;
    this.topic = start.topic;
    if (start.epoch !== undefined) this.epoch = start.epoch;
    this.head = 0;
    this.count = 0;
  }

  /** An event numbered and stored elsewhere (a cluster's relay), the next after seq: into the window. */
  record(frame: Frame): void {
    const { seq } = frame.event as RoomEvent;
    // A gap the relay reports lost: the window must not pretend to hold it.
    if (seq !== this.seq + 1) this.count = 0;
    this.seq = seq;
    this.keep(frame);
  }

  private keep(frame: Frame): void {
    if (this.ring.length === 0) return;
    this.ring[this.head] = frame;
    this.head = (this.head + 1) % this.ring.length;
    if (this.count < this.ring.length) this.count++;
  }

  setTopic(topic: string, nick: string): void {
    this.topic = topic;
    try {
      this.store.setTopic(this.room, topic, nick);
    } catch (err) {
      this.refused(err);
    }
  }

  /** Lowest sequence number in the window (seq + 1 when it is empty). */
  get firstInWindow(): number {
    return this.seq - this.count + 1;
  }

  /**
   * The first `limit` frames with seq > after, oldest first, when the window holds all the
   * store could give; null when older events must be read from the store.
   */
  window(after: number, limit: number): Frame[] | null {
    const first = this.firstInWindow;
    if (after + 1 < first && this.storedFirst < first && !this.windowIsAll) return null;
    const from = Math.max(after + 1, first); // the first seq sent
    const n = Math.max(0, Math.min(this.seq - from + 1, limit));
    const out: Frame[] = new Array(n);
    const len = this.ring.length;
    // The frame of seq s sits (seq - s + 1) places behind head.
    for (let i = 0; i < n; i++) out[i] = this.ring[(this.head - (this.seq - (from + i) + 1) + len) % len]!;
    return out;
  }

  /** Lowest sequence number still to be had, in the window or in the store. */
  get first(): number {
    return this.windowIsAll ? this.firstInWindow : Math.min(this.storedFirst, this.firstInWindow);
  }

  /** Up to `limit` events with seq > after, oldest first, from the store. */
  async page(after: number, limit: number): Promise<HistoryPage> {
    const page = await this.store.range(this.room, after, limit);
    // Retention may have dropped the oldest since the log started.
    this.storedFirst = Math.max(this.storedFirst, page.first);
    return page;
  }
}

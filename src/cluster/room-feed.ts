/**
 * One room's events as a node delivers them: in the order of the room's Stream in Redis, each
 * once, whatever the channel does. Pub/sub is fast but may lose messages (a subscriber that
 * reconnects, a client output buffer Redis cuts) and a node's own reads may cross it, so the
 * feed tracks the last seq it delivered:
 *  - a message at or below it is a duplicate, dropped;
 *  - the next one is delivered;
 *  - one beyond it opens a gap, filled from the Stream (its XRANGE), while what the channel
 *    brings meanwhile is held and follows in order;
 *  - a new epoch means Redis lost the room: the feed says so and starts again from 1.
 * catchUp() is also what a node calls after its subscriber reconnects and now and then, to
 * catch a loss the channel could not show (the last message of a burst, say).
 *
 * Pure of sockets: the Stream is read through `read`, so tests drive it with a fake one.
 */
import type { RoomEvent } from '../protocol/events.js';
import type { LiveMessage, StreamPage } from './redis-rooms.js';

export interface RoomFeedOptions {
  room: string;
  /** Up to `limit` of the room's events with seq > after, and its bounds. */
  read(after: number, limit: number): Promise<StreamPage>;
  deliver(event: RoomEvent): void;
  /**
   * Events that will never come: Redis lost the room (a new epoch: everything up to `last`
   * of the old one is gone) or trimmed its Stream past events not yet delivered (from..to).
   */
  lost?(what: { kind: 'epoch'; previous: string; epoch: string; last: number } | { kind: 'trimmed'; from: number; to: number }): void;
  /** A read of the Stream failed; the feed tries again at the next message or catchUp(). */
  failed?(err: unknown): void;
  /**
   * The room's topic as Redis keeps it, after each read: an announcement of it may have been
   * missed (published while this node's subscriber was away).
   */
  topic?(topic: { topic: string; nick: string; time: number }): void;
  /** Events read from the Stream at a time. */
  pageSize?: number;
}

export class RoomFeed {
  /** The epoch of what has been delivered; null until the first event or read. */
  epoch: string | null;
  /** The last seq delivered. */
  last: number;
  private catching: Promise<void> | null = null;
  /** Channel messages that came while the Stream was being read, to take after it. */
  private held: LiveMessage[] = [];
  private readonly pageSize: number;

  constructor(
    private readonly opts: RoomFeedOptions,
    start: { epoch: string | null; last: number } = { epoch: null, last: 0 },
  ) {
    this.epoch = start.epoch;
    this.last = start.last;
    this.pageSize = opts.pageSize ?? 500;
  }

  /** A message from the room's channel. */
  live(message: LiveMessage): void {
    if (this.catching) {
      this.held.push(message);
      return;
    }
    if (this.epoch !== null && message.epoch !== this.epoch) {
      // Possibly a new epoch the Stream will confirm; read it to be sure what was lost.
      this.held.push(message);
      this.startCatchUp();
      return;
    }
    this.epoch = message.epoch;
    const { seq } = message.event;
    if (seq <= this.last) return;
    if (seq === this.last + 1) {
      this.last = seq;
      this.opts.deliver(message.event);
      return;
    }
    this.held.push(message);
    this.startCatchUp();
  }

  /**
   * Reads the Stream from the last seq delivered to its end, delivering what was missed, then
   * takes what the channel brought meanwhile. Concurrent calls share one catch-up.
   */
  catchUp(): Promise<void> {
    return (this.catching ??= (async () => {
      try {
        await this.readStream();
      } finally {
        this.catching = null;
      }
      // After a failed read the held messages wait for the next try: retrying at once would
      // spin while Redis is away. After a good one the Stream has said which epoch is current:
      // a message of another (one published before Redis lost the room, arriving late) is
      // dropped, or it would start a read again and again.
      const held = this.held.splice(0).filter((m) => this.epoch === null || m.epoch === this.epoch);
      held.sort((a, b) => a.event.seq - b.event.seq);
      for (const m of held) this.live(m);
    })());
  }

  private startCatchUp(): void {
    this.catchUp().catch((err: unknown) => this.opts.failed?.(err));
  }

  private async readStream(): Promise<void> {
    for (;;) {
      const page = await this.opts.read(this.last, this.pageSize);
      if (page.epoch === '') {
        // Redis holds nothing of the room: not yet, or no longer (restarted without its data).
        if (this.epoch !== null) {
          this.opts.lost?.({ kind: 'epoch', previous: this.epoch, epoch: '', last: this.last });
          this.epoch = null;
          this.last = 0;
          this.held = [];
        }
        return;
      }
      if (this.epoch !== null && page.epoch !== this.epoch) {
        this.opts.lost?.({ kind: 'epoch', previous: this.epoch, epoch: page.epoch, last: this.last });
        this.epoch = page.epoch;
        this.last = 0;
        // The held messages of the old epoch mean nothing now.
        this.held = this.held.filter((m) => m.epoch === page.epoch);
        continue;
      }
      this.epoch = page.epoch;
      if (page.topicTime > 0) this.opts.topic?.({ topic: page.topic, nick: page.topicNick, time: page.topicTime });
      for (const event of page.events) {
        if (event.seq <= this.last) continue;
        if (event.seq > this.last + 1) this.opts.lost?.({ kind: 'trimmed', from: this.last + 1, to: event.seq - 1 });
        this.last = event.seq;
        this.opts.deliver(event);
      }
      if (page.events.length === 0 && page.last > this.last && page.first > this.last + 1) {
        // Everything after `last` that the Stream still had is trimmed too.
        this.opts.lost?.({ kind: 'trimmed', from: this.last + 1, to: page.last });
        this.last = page.last;
      }
      if (page.events.length < this.pageSize) return;
    }
  }
}

/**
 * The hub's relay when rooms span a cluster (`serve --redis`): every room event is numbered by
 * the publish script (redis-rooms.ts) and comes back to every node that follows the room over
 * one subscriber connection, each room's channel subscribed only while the node has members
 * in it. A RoomFeed per room turns the channel into "each event once, in the Stream's order",
 * filling gaps from the Stream; after the subscriber reconnects, and every positionCheckMs,
 * every room is read up to the end of its Stream, which catches a loss the channel could not
 * show.
 */
import type { RoomEvent } from '../protocol/events.js';
import type { RoomRelay, RoomStart } from '../hub/room-relay.js';
import { MAX_SEQ } from '../store/store.js';
import { parseLive, RedisRooms, type LiveMessage } from './redis-rooms.js';
import { RoomFeed } from './room-feed.js';
import { roomKeys } from './room-keys.js';
import type { CommandSender } from './redis-script.js';

/** The subscriber side of a Redis connection (node-redis' subscribe API). */
export interface Subscriber {
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown>;
}

/** Where the relay's rooms go: the hub, and what it should tell their members. */
export interface RelaySink {
  arrive(room: string, event: RoomEvent): void;
  /** Redis lost the room (a new epoch): its numbers start again after `start.lastSeq`. */
  restarted(room: string, start: RoomStart): void;
  /** Events from..to of the room will never come (its Stream was trimmed past them). */
  skipped(room: string, from: number, to: number): void;
  /** Something failed; the relay retries by itself. */
  failed(err: unknown): void;
}

export interface ClusterRelayOptions {
  prefix?: string;
  /** Entries each room's Stream keeps. */
  maxLen?: number;
  /** How often every followed room is read to the end of its Stream. */
  positionCheckMs?: number;
  /** Longest wait between tries to follow a room while Redis is away. */
  retryMaxMs?: number;
}

export const RELAY_DEFAULTS = { positionCheckMs: 5000, retryMaxMs: 2000 };

interface Followed {
  /** Channel messages that came before the feed was made, or while the hub took the room up. */
  early: LiveMessage[] | null;
  feed: RoomFeed | null;
  listener: (message: string) => void;
  /** Unfollowed meanwhile: a follow that is still under way gives up. */
  dropped: boolean;
}

export class ClusterRelay implements RoomRelay {
  readonly rooms: RedisRooms;
  private readonly followed = new Map<string, Followed>();
  private readonly prefix: string | undefined;
  private readonly opts: typeof RELAY_DEFAULTS;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: CommandSender,
    private readonly subscriber: Subscriber,
    private readonly sink: RelaySink,
    opts: ClusterRelayOptions = {},
  ) {
    this.prefix = opts.prefix;
    this.rooms = new RedisRooms(redis, { prefix: opts.prefix, maxLen: opts.maxLen });
    this.opts = { ...RELAY_DEFAULTS, ...opts };
    this.timer = setInterval(() => this.resync(), this.opts.positionCheckMs);
    this.timer.unref();
  }

  async publish(event: RoomEvent): Promise<number> {
    return (await this.rooms.publish(event)).seq;
  }

  async follow(room: string): Promise<RoomStart> {
    const channel = roomKeys(room, this.prefix).channel;
    const f: Followed = { early: [], feed: null, dropped: false, listener: (message) => this.onMessage(room, f, message) };
    if (this.followed.has(room)) this.unfollow(room);
    this.followed.set(room, f);
    for (let wait = 50; ; wait = Math.min(wait * 2, this.opts.retryMaxMs)) {
      if (f.dropped) throw new Error(`room "${room}" is no longer followed`);
      try {
        // Subscribed first, read second: nothing published after the read can be missed.
        await this.subscriber.subscribe(channel, f.listener);
        const page = await this.rooms.read(room, MAX_SEQ, 1);
        f.feed = new RoomFeed(
          {
            room,
            read: (after, limit) => this.rooms.read(room, after, limit),
            deliver: (event) => this.sink.arrive(room, event),
            lost: (what) => {
              if (what.kind === 'epoch') this.sink.restarted(room, { lastSeq: 0, firstSeq: 1, topic: '' });
              else this.sink.skipped(room, what.from, what.to);
            },
            failed: (err) => this.sink.failed(err),
          },
          { epoch: page.epoch === '' ? null : page.epoch, last: page.last },
        );
        // The hub takes the room up when this resolves; what came meanwhile follows after.
        setImmediate(() => {
          const early = f.early ?? [];
          f.early = null;
          for (const m of early) f.feed!.live(m);
        });
        return { lastSeq: page.last, firstSeq: page.first, topic: page.topic };
      } catch (err) {
        this.sink.failed(err);
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
  }

  unfollow(room: string): void {
    const f = this.followed.get(room);
    if (!f) return;
    f.dropped = true;
    this.followed.delete(room);
    this.subscriber.unsubscribe(roomKeys(room, this.prefix).channel, f.listener).catch((err: unknown) => this.sink.failed(err));
  }

  /**
   * Reads every followed room to the end of its Stream: after the subscriber reconnected (what
   * was published meanwhile never came) and now and then.
   */
  resync(): void {
    for (const f of this.followed.values()) f.feed?.catchUp().catch((err: unknown) => this.sink.failed(err));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const room of [...this.followed.keys()]) this.unfollow(room);
  }

  private onMessage(room: string, f: Followed, message: string): void {
    const live = parseLive(room, message);
    if (!live) return;
    if (f.early) f.early.push(live);
    else f.feed?.live(live);
  }
}

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
import type { Announcement, PrivateMessage, RoomRelay, RoomStart } from '../hub/room-relay.js';
import { Presence } from './presence.js';
import { nickKey } from '../protocol/text.js';
import { MAX_SEQ } from '../store/store.js';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseLive, RedisRooms } from './redis-rooms.js';
import { RoomFeed } from './room-feed.js';
import { roomKeys } from './room-keys.js';
import { withDefaults, type CommandSender } from './redis-script.js';

/** The subscriber side of a Redis connection (node-redis' subscribe API). */
export interface Subscriber {
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string, listener?: (message: string, channel: string) => void): Promise<unknown>;
}

/** Where the relay's rooms go: the hub, and what it should tell their members. */
export interface RelaySink {
  arrive(room: string, event: RoomEvent): void;
  /** Another node's member joined, left, changed nick or set the topic (or its node died). */
  announced(room: string, event: Announcement): void;
  /** A private message for a member of this node. */
  privateMessage(key: string, event: PrivateMessage): void;
  /** Redis lost the room (a new epoch): its numbers start again after `start.lastSeq`. */
  restarted(room: string, start: RoomStart): void;
  /** The topic Redis keeps for a room, read after a gap: newer than this node's, it is told. */
  topicRead(room: string, topic: { topic: string; nick: string; time: number }): void;
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
  /** How long this node's lease lasts unrenewed: a dead node's members leave within about this. */
  leaseMs?: number;
  /** This node's id in the cluster (default: host, pid and a random part). */
  node?: string;
}

export const RELAY_DEFAULTS = { positionCheckMs: 5000, retryMaxMs: 2000, leaseMs: 10_000 };

/** Events kept while Redis is away; beyond, a message is refused (CLUSTER_UNAVAILABLE). */
const MAX_HELD = 1000;

/** A channel message that is an announcement, not a numbered event: "- NODE JSON". */
const ANNOUNCE = '- ';

interface Followed {
  /** What the channel brought before the feed was made, or while the hub took the room up. */
  early: (() => void)[] | null;
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
  private readonly timers: NodeJS.Timeout[] = [];
  readonly presence: Presence;
  private readonly inbox: string;

  constructor(
    private readonly redis: CommandSender,
    private readonly subscriber: Subscriber,
    private readonly sink: RelaySink,
    opts: ClusterRelayOptions = {},
  ) {
    this.prefix = opts.prefix;
    this.rooms = new RedisRooms(redis, { prefix: opts.prefix, maxLen: opts.maxLen });
    this.opts = withDefaults(RELAY_DEFAULTS, opts);
    this.presence = new Presence(redis, opts.node ?? nodeId(), { prefix: opts.prefix, leaseMs: this.opts.leaseMs });
    this.inbox = `${opts.prefix ?? 'roomcast'}:node:${this.presence.node}:inbox`;
  }

  get node(): string {
    return this.presence.node;
  }

  /**
   * Joins the cluster: takes this node's lease and its inbox (private messages), and starts
   * the timers that renew the lease, clear what dead nodes left, and check every room's position.
   */
  async start(): Promise<void> {
    await this.presence.renew();
    await this.subscriber.subscribe(this.inbox, (message) => this.onPrivate(message));
    const every = (ms: number, run: () => void): void => {
      const t = setInterval(run, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.positionCheckMs, () => this.resync());
    every(Math.max(100, Math.floor(this.opts.leaseMs / 3)), () => this.presence.renew().catch((err: unknown) => this.sink.failed(err)));
    every(Math.max(100, Math.floor(this.opts.leaseMs / 2)), () => this.reap());
  }

  reachable = true;
  /** Events published while Redis was away, oldest first, to go out when it is back. */
  private held: { event: RoomEvent; resolve(seq: number): void; reject(err: unknown): void }[] = [];

  publish(event: RoomEvent): Promise<number> {
    if (!this.reachable) {
      if (this.held.length >= MAX_HELD) return Promise.reject(new Error(`${MAX_HELD} messages already wait for the cluster`));
      return new Promise((resolve, reject) => this.held.push({ event, resolve, reject }));
    }
    return this.rooms.publish(event).then((p) => p.seq);
  }

  /** Redis is away (false) or back (true): what was held goes out, in the order it came. */
  setReachable(reachable: boolean): void {
    this.reachable = reachable;
    if (!reachable) return;
    for (const h of this.held.splice(0)) this.rooms.publish(h.event).then((p) => h.resolve(p.seq), h.reject);
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
        const [page, members] = await Promise.all([this.rooms.read(room, MAX_SEQ, 1, true), this.presence.members(room)]);
        f.feed = new RoomFeed(
          {
            room,
            read: (after, limit) => this.rooms.read(room, after, limit, true),
            deliver: (event) => this.sink.arrive(room, event),
            lost: (what) => {
              if (what.kind === 'epoch') this.sink.restarted(room, { lastSeq: 0, firstSeq: 1, topic: '', epoch: what.epoch, members: [] });
              else this.sink.skipped(room, what.from, what.to);
            },
            failed: (err) => this.sink.failed(err),
            topic: (topic) => this.sink.topicRead(room, topic),
          },
          { epoch: page.epoch === '' ? null : page.epoch, last: page.last },
        );
        // The hub takes the room up when this resolves; what came meanwhile follows after.
        setImmediate(() => {
          const early = f.early ?? [];
          f.early = null;
          for (const run of early) run();
        });
        const elsewhere = members.filter((m) => m.node !== this.node).map((m) => ({ key: nickKey(m.nick), nick: m.nick }));
        return { lastSeq: page.last, firstSeq: page.first, topic: page.topic, epoch: page.epoch, members: elsewhere };
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

  announce(event: Announcement, key: string, oldKey?: string): void {
    const { room } = event;
    const fail = (err: unknown): void => this.sink.failed(err);
    // The member list changes before the announcement goes out, on the same connection, so a
    // node that reads the list after hearing it finds the change made.
    if (event.type === 'joined') this.presence.join(room, key, event.nick).catch(fail);
    else if (event.type === 'parted') this.presence.part(room, key).catch(fail);
    else if (event.type === 'nick') {
      if (oldKey !== undefined && oldKey !== key) this.presence.part(room, oldKey).catch(fail);
      this.presence.join(room, key, event.nick).catch(fail);
    }
    this.redis.sendCommand(['PUBLISH', roomKeys(room, this.prefix).channel, `${ANNOUNCE}${this.node} ${JSON.stringify(event)}`]).catch(fail);
  }

  claimNick(key: string): Promise<boolean> {
    return this.presence.claimNick(key);
  }

  releaseNick(key: string): void {
    this.presence.releaseNick(key).catch((err: unknown) => this.sink.failed(err));
  }

  listRooms(): Promise<{ room: string; members: number; topic: string }[]> {
    return this.presence.rooms();
  }

  async sendPrivate(key: string, event: PrivateMessage): Promise<boolean> {
    const node = await this.presence.nodeOf(key);
    if (node === null) return false;
    const receivers = Number(await this.redis.sendCommand(['PUBLISH', `${this.prefix ?? 'roomcast'}:node:${node}:inbox`, JSON.stringify({ key, event })]));
    return receivers > 0;
  }

  /**
   * Clears what dead nodes left (their nicks, their members): any node may do it, and the one
   * that does tells the rooms, here and on the other nodes, that those members left.
   */
  private reap(): void {
    this.presence.reap().then(
      (reaped) => {
        for (const { rooms } of reaped)
          for (const { room, nicks } of rooms)
            for (const nick of nicks) {
              const event: Announcement = { type: 'parted', room, nick, quit: true, reason: 'their server stopped answering' };
              this.sink.announced(room, event);
              this.redis.sendCommand(['PUBLISH', roomKeys(room, this.prefix).channel, `${ANNOUNCE}${this.node} ${JSON.stringify(event)}`]).catch(() => {});
            }
      },
      (err: unknown) => this.sink.failed(err),
    );
  }

  /**
   * Reads every followed room to the end of its Stream: after the subscriber reconnected (what
   * was published meanwhile never came) and now and then.
   */
  resync(): void {
    for (const f of this.followed.values()) f.feed?.catchUp().catch((err: unknown) => this.sink.failed(err));
  }

  /** Leaves the cluster: the timers stop, and the lease goes, so others clear this node's members at once. */
  async close(): Promise<void> {
    for (const h of this.held.splice(0)) h.reject(new Error('the server is shutting down'));
    for (const t of this.timers.splice(0)) clearInterval(t);
    for (const room of [...this.followed.keys()]) this.unfollow(room);
    await this.presence.leave().catch(() => {});
  }

  private onMessage(room: string, f: Followed, message: string): void {
    let run: () => void;
    if (message.startsWith(ANNOUNCE)) {
      const space = message.indexOf(' ', ANNOUNCE.length);
      if (space < 0 || message.slice(ANNOUNCE.length, space) === this.node) return;
      let event: Announcement;
      try {
        event = JSON.parse(message.slice(space + 1)) as Announcement;
      } catch {
        return;
      }
      if (event?.room !== room) return;
      run = () => this.sink.announced(room, event);
    } else {
      const live = parseLive(room, message);
      if (!live) return;
      run = () => {
        for (const m of live) f.feed?.live(m);
      };
    }
    if (f.early) f.early.push(run);
    else run();
  }

  private onPrivate(message: string): void {
    try {
      const { key, event } = JSON.parse(message) as { key: string; event: PrivateMessage };
      if (typeof key === 'string' && event?.type === 'privmsg') this.sink.privateMessage(key, event);
    } catch {
      // Not one of ours.
    }
  }
}

/** A node id no other node has: where it runs, and a random part for restarts on the same pid. */
function nodeId(): string {
  return `${hostname().replace(/\s+/g, '-')}.${process.pid}.${randomBytes(3).toString('hex')}`;
}

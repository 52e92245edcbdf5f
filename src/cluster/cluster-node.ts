/**
 * One node of a cluster (`serve --redis URL`): its two Redis connections (commands, and the
 * subscriber that pub/sub needs to itself), the relay that numbers and shares the rooms, the
 * store that reads their history, and whether Redis can be reached now. The server wires it to
 * the hub; nothing here knows about sockets of clients.
 *
 * node-redis' offline queue is off: while Redis is away a command fails at once, and what
 * should wait for Redis (messages said meanwhile) waits in the relay, bounded, where the hub
 * knows it waits (it shows those messages to this node's members at once).
 */
import { createClient } from '@redis/client';
import type { RoomEvent } from '../protocol/events.js';
import type { Announcement, PrivateMessage, RoomStart } from '../hub/room-relay.js';
import { ClusterRelay, type RelaySink } from './cluster-relay.js';
import { RedisStore } from './redis-store.js';
import { ClassifierWorker, RemoteClassifier, type Classify } from './classifier-jobs.js';
import { ClusterTasks } from './cluster-tasks.js';
import { ClusterImages } from './cluster-images.js';
import type { ImageKeeper } from '../images/image-store.js';

export interface ClusterOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prefix of every key: clusters may share one Redis. */
  prefix?: string;
  /** Entries each room's Stream keeps (its history). */
  maxLen?: number;
  positionCheckMs?: number;
  /** How long a node's lease lasts unrenewed (its members leave within about this when it dies). */
  leaseMs?: number;
}

export interface ClusterHealth {
  state: 'ok' | 'down';
  /** Why Redis cannot be reached (when down). */
  reason?: string;
  /** Times the node lost Redis since it started. */
  outages: number;
}

/** What the node reports: the hub's side of the relay, plus the outages for the log. */
export interface ClusterObserver extends Omit<RelaySink, 'failed'> {
  down(reason: string): void;
  up(health: ClusterHealth): void;
}

type Client = ReturnType<typeof createClient>;

/** Image ids a node takes at a time. */
const IMAGE_ID_BLOCK = 1_000_000;

/** Redis could not be reached at start-up: the message says where and what to do. */
export class ClusterUnreachable extends Error {
  override name = 'ClusterUnreachable';
}

/**
 * Socket options of a cluster's Redis connections: at start-up (until `started()`) a Redis
 * that is not there is an error to report; once running, an outage to ride out, retrying
 * with a growing pause.
 */
export function clusterSocket(started: () => boolean) {
  return {
    reconnectStrategy: (retries: number, cause: Error) => (started() ? Math.min(50 * 2 ** Math.min(retries, 6), 2000) : cause),
    connectTimeout: 2000,
  };
}

/** Redis could not be reached at start-up: where, why, and what to do. */
export function unreachable(url: string, err: unknown): ClusterUnreachable {
  return new ClusterUnreachable(`cannot reach Redis at ${redactedUrl(url)} (${(err as Error)?.message || err}): start redis-server there, or fix --redis`);
}

/** The URL as logs and errors may show it: without its password. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export class ClusterNode {
  readonly relay: ClusterRelay;
  readonly store: RedisStore;
  /** Where this node's image posts go: the cluster's classifier workers. */
  readonly classifier: RemoteClassifier;
  /** Tasks every node can read. */
  readonly tasks: ClusterTasks;
  /** This node's own model serving the queue too, when it has one. */
  private worker: ClassifierWorker | null = null;
  private blocking: Client | null = null;
  private readonly commands: Client;
  private readonly subscriber: Client;
  private down: string | null = null;
  private outages = 0;
  private started = false;

  constructor(
    readonly opts: ClusterOptions,
    private readonly observer: ClusterObserver,
  ) {
    this.commands = createClient({ url: opts.url, socket: clusterSocket(() => this.started), disableOfflineQueue: true });
    this.subscriber = this.commands.duplicate();
    for (const client of [this.commands, this.subscriber]) {
      client.on('error', (err: Error) => this.lost(err.message || String(err)));
      client.on('ready', () => this.ready());
    }
    this.relay = new ClusterRelay(
      this.commands,
      this.subscriber,
      {
        arrive: (room: string, event: RoomEvent) => observer.arrive(room, event),
        restarted: (room: string, start: RoomStart) => observer.restarted(room, start),
        topicRead: (room: string, topic: { topic: string; nick: string; time: number }) => observer.topicRead(room, topic),
        skipped: (room: string, from: number, to: number) => observer.skipped(room, from, to),
        announced: (room: string, event: Announcement) => observer.announced(room, event),
        privateMessage: (key: string, event: PrivateMessage) => observer.privateMessage(key, event),
        // Redis being away shows in every command; the outage is reported once (lost()).
        failed: (err: unknown) => this.lost((err as Error)?.message ?? String(err)),
      },
      { prefix: opts.prefix, maxLen: opts.maxLen, positionCheckMs: opts.positionCheckMs, leaseMs: opts.leaseMs },
    );
    this.store = new RedisStore(this.commands, this.relay.rooms, redactedUrl(opts.url), opts.prefix);
    this.classifier = new RemoteClassifier(this.commands, this.relay.node, { prefix: opts.prefix });
    this.tasks = new ClusterTasks(this.commands, opts.prefix);
  }

  /** Posted images kept here and in Redis, where any node and the classifier's workers find them. */
  images(local: ImageKeeper): ImageKeeper {
    return new ClusterImages(local, this.commands, this.opts.prefix);
  }

  /**
   * This node classifies too: its local pool takes jobs from the shared queue, like a
   * `roomcast classifier` worker (on a connection of its own, which the blocking read holds).
   */
  async serveClassifier(classify: Classify, model: string, concurrency: number): Promise<void> {
    const blocking = this.commands.duplicate();
    blocking.on('error', () => {});
    await blocking.connect();
    this.blocking = blocking;
    this.worker = new ClassifierWorker(this.commands, blocking, `${this.relay.node}.worker`, classify, model, concurrency, { prefix: this.opts.prefix }, (err) =>
      this.lost((err as Error)?.message ?? String(err)),
    );
    await this.worker.start();
  }

  /** Connects both connections; rejects with an Error that says where and what to do. */
  async connect(): Promise<void> {
    try {
      await Promise.all([this.commands.connect(), this.subscriber.connect()]);
    } catch (err) {
      await this.close();
      throw unreachable(this.opts.url, err);
    }
    this.started = true;
    this.down = null;
    await this.relay.start();
    await this.classifier.start();
    await this.subscriber.subscribe(this.classifier.channel, (message) => this.classifier.resultArrived(message));
  }

  /**
   * The first of a block of image ids no other node uses (ids go on above it): an image is
   * fetched by its number, so two nodes must never hand out the same one.
   */
  async imageIdBlock(): Promise<number> {
    const top = Number(await this.commands.sendCommand(['INCRBY', `${this.opts.prefix ?? 'roomcast'}:image-ids`, String(IMAGE_ID_BLOCK)]));
    return top - IMAGE_ID_BLOCK;
  }

  health(): ClusterHealth {
    return this.down === null ? { state: 'ok', outages: this.outages } : { state: 'down', reason: this.down, outages: this.outages };
  }

  async close(): Promise<void> {
    this.classifier.close();
    await this.worker?.stop();
    if (this.blocking?.isOpen) await this.blocking.close().catch(() => this.blocking?.destroy());
    await this.relay.close();
    for (const client of [this.subscriber, this.commands]) {
      if (!client.isOpen) continue;
      await client.close().catch(() => client.destroy());
    }
  }

  private lost(reason: string): void {
    if (!this.started || this.down !== null) return;
    this.down = reason;
    this.outages++;
    this.relay.setReachable(false);
    this.observer.down(reason);
  }

  private ready(): void {
    if (!this.started || this.down === null) return;
    // Both connections must be back: the subscriber's channels are subscribed again by then.
    if (!this.commands.isReady || !this.subscriber.isReady) return;
    this.down = null;
    // The lease first (Redis may have come back without it): the node's nicks, claimed
    // again by up(), count as held only while it stands.
    const back = (): void => {
      this.observer.up(this.health());
      this.relay.setReachable(true);
    };
    this.relay.presence.renew().then(back, back);
    // What was published while the subscriber was away never came: read every room up.
    this.relay.resync();
    this.store.refreshHistory().catch(() => {});
  }
}

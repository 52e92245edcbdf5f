/**
 * The hub: the registry of sessions, nicks and rooms, and the relay. It is synchronous and
 * does no I/O: it hands frames to links, whose send() only queues. Transports (TCP,
 * WebSocket) and the bot depend on it; it depends on none of them.
 */
import { RoomcastError } from '../protocol/errors.js';
import { localEventKey, type BotStatus, type EventOf, type ImageEvent, type MessageEvent, type RequestId, type RoomEvent, type RoomInfo, type SearchHit, type ServerEvent } from '../protocol/events.js';
import { Frame } from '../protocol/frame.js';
import { sniffImageFormat } from '../protocol/image-format.js';
import { isValidNick, mixedScripts, nickKey, normalizeRoom, sanitize } from '../protocol/text.js';
import type { Command } from '../protocol/commands.js';
import { checkText, echoed, HANDLERS } from './handlers.js';
import { Intake } from './intake.js';
import { AccountDesk } from './accounts.js';
import { Moderation, modeString } from './moderation.js';
import { ServerPassword } from '../auth/server-password.js';
import { addressOfPeer } from '../net/address.js';
import { MemoryStore } from '../store/memory-store.js';
import type { HistoryPage, MessageStore, StoredRoom } from '../store/store.js';
import { StoreError } from '../store/errors.js';
import { Room } from './room.js';
import { RoomLog, type LogStart } from './room-log.js';
import type { Announcement, PrivateMessage, RoomRelay, RoomStart } from './room-relay.js';
import { Session, type Link } from './session.js';

/** Search hits per answer: by default, and at most. */
export const SEARCH_DEFAULT = 20;
export const MAX_SEARCH = 100;
/** How long a join into a room of a cluster waits before the joiner is told why. */
const FOLLOW_NOTICE_MS = 1000;
/** A join whose room's rules a cluster cannot read yet tries again this often, this many times. */
const RULES_RETRY_MS = 500;
const RULES_RETRIES = 1200;
/** Longest search query, in characters. */
export const SEARCH_QUERY_MAX = 200;

export interface HubOptions {
  /** Messages each room keeps in memory. */
  historySize: number;
  /** Messages replayed to someone who joins a room. */
  replay: number;
  maxRoomsPerSession: number;
  maxTextLength: number;
  /** Rooms that exist from the start and never disappear. */
  rooms: string[];
  defaultRoom: string;
  reservedNicks: string[];
  serverName: string;
  version: string;
  /** Advertised in the welcome, so clients can size what they send. */
  limits: Record<string, number>;
  /** Wall clock for message times (milliseconds since the epoch). */
  now: () => number;
  /**
   * Where every room's events are kept beyond the in-memory window; an in-memory store of
   * historySize events a room when absent. The server opens it before the hub takes traffic.
   */
  store?: MessageStore;
  /** Most events a join with `after` replays (the oldest beyond it count as missed). */
  maxResume: number;
  /** Events per history event of a replay read from the store. */
  pageSize: number;
  /**
   * Acks wait until the store says the event is written (the `always` fsync policy), so a
   * seq that came back is never lost.
   */
  ackWhenDurable: boolean;
  /**
   * In a cluster, most events handed to the relay and not yet numbered before the hub stops
   * reading its links (Intake); it reads again at half.
   */
  maxRelayBacklog: number;
  /** A password every client must give before anything else (--password-file). */
  serverPassword?: string;
  /** Accounts that are server operators (--admin): operators of every room while logged in. */
  admins: string[];
}

export const HUB_DEFAULTS: HubOptions = {
  historySize: 200,
  replay: 20,
  maxRoomsPerSession: 20,
  maxTextLength: 4000,
  rooms: [],
  defaultRoom: 'lobby',
  // "web" is who posts through the HTTP API when no nick is given.
  reservedNicks: ['classifier', 'server', 'roomcast', 'system', 'web'],
  serverName: 'roomcast',
  version: '0.1.0',
  limits: {},
  now: Date.now,
  maxResume: 10_000,
  pageSize: 500,
  ackWhenDurable: false,
  maxRelayBacklog: 2048,
  admins: [],
};

/** What the hub reports, for logs and metrics; the server wires it to its logger. */
export interface HubObserver {
  registered?(s: Session): void;
  left?(s: Session, reason: string): void;
  joined?(s: Session, room: Room): void;
  parted?(s: Session, room: Room): void;
  renamed?(s: Session, old: string): void;
  failed?(s: Session, err: unknown): void;
  /** The store refused an event or could not be read; chat went on from memory. */
  storeFailed?(err: unknown): void;
  /** An operator acted in a room (a kick: a parted event with kickedBy). */
  moderated?(room: Room, event: EventOf<'moderation'> | EventOf<'parted'>): void;
}

/** An image someone posted, on its way to whoever classifies it. */
export interface ImagePost {
  room: string;
  image: number;
  name: string;
  nick: string;
  bytes: Buffer;
}

/**
 * Where an image command goes once the hub has resolved its room: the post's whole life (the
 * bytes kept, its task, the classifier) is the server's images/ module, which depends on the hub
 * and not the reverse. Without one the hub only shows the post to the room.
 */
export interface ImagePort {
  /**
   * `from`: the member who posted over a chat link, who gets an ack (carrying the request's
   * `id`) instead of the image event, before anything else is said about the post.
   */
  post(room: Room, nick: string, name: string, bytes: Buffer, from?: Session, id?: RequestId): ImageEvent;
  /** The classifier bot's state; null when there is no bot. */
  botStatus(): BotStatus | null;
}

export interface Hello {
  nick?: string;
  rooms?: string[];
  /** The server password, on a server that has one (HubOptions.serverPassword). */
  serverPassword?: string;
  /** The password of the account `nick` names: the session starts logged in. */
  password?: string;
}

/** What a join asks for besides the room (the join command's fields). */
export interface JoinOptions {
  id?: RequestId;
  /** Resume: the events after this seq instead of the recent ones. */
  after?: number;
  /** How many recent events to replay (no `after`). */
  history?: number;
  /** The numbering `after` belongs to (the room's epoch when the client last joined). */
  epoch?: string;
}

export class Hub {
  readonly opts: HubOptions;
  readonly sessions = new Map<string, Session>(); // by nick key
  readonly rooms = new Map<string, Room>();
  readonly store: MessageStore;
  /** Whether the links may hand the hub more input (their flood gates ask it). */
  readonly intake: Intake;
  /** The password every client must give first; null when the server has none. */
  readonly password: ServerPassword | null;
  /** Registered nicks, kept in the store. */
  readonly accounts: AccountDesk;
  /** Operators and the rules they set in rooms. */
  readonly moderation: Moderation;
  /** The store is the hub's own, in memory, keeping what the rooms' windows keep. */
  private readonly ownStore: boolean;
  /** Nick keys known to be registered accounts (see loggedIn()). */
  private readonly registeredKeys = new Set<string>();
  /** Where the rooms that are not alive (no members) left off, so their numbers go on. */
  private readonly dormant = new Map<string, LogStart>();
  /** Acks waiting for their event to be written, per room, in seq order. */
  private readonly unacked = new Map<string, { seq: number; session: Session; event: ServerEvent }[]>();
  readonly stats = { messages: 0, deliveries: 0, privmsgs: 0, images: 0 };
  images: ImagePort = {
    post: (room, nick, name, bytes, from, id) => this.postImage(room, nick, name, bytes, from, id).event,
    botStatus: () => null,
  };
  /**
   * Set when the rooms span a cluster: the relay numbers every room event and brings it back
   * through arrive(), on this node as on every other. Null: the hub numbers events itself.
   * Set by useRelay() before any traffic.
   */
  private relay: RoomRelay | null = null;
  private nextImage = 1;
  private nextId = 1;
  private nextGuest = 1;
  private readonly reserved: Set<string>;

  constructor(
    opts: Partial<HubOptions> = {},
    readonly observer: HubObserver = {},
  ) {
    this.opts = { ...HUB_DEFAULTS, ...opts };
    this.intake = new Intake(this.opts.maxRelayBacklog);
    this.password = this.opts.serverPassword === undefined ? null : new ServerPassword(this.opts.serverPassword, { now: this.opts.now });
    this.reserved = new Set(this.opts.reservedNicks.map(nickKey));
    this.ownStore = this.opts.store === undefined;
    if (this.opts.store) this.store = this.opts.store;
    else {
      this.store = new MemoryStore({ perRoom: this.opts.historySize, now: this.opts.now });
      void this.store.open();
    }
    this.accounts = new AccountDesk(this.store, this.opts.now);
    this.moderation = new Moderation(this, this.opts.admins);
    this.restore([]);
  }

  /**
   * Takes up what the store holds (its open() answer) before any traffic: each room's numbers
   * go on from its last stored event, and its topic is back.
   */
  restore(stored: StoredRoom[]): void {
    for (const r of stored) this.dormant.set(r.room, { lastSeq: r.lastSeq, firstSeq: r.firstSeq, topic: r.topic });
    for (const name of [this.opts.defaultRoom, ...this.opts.rooms]) {
      const room = normalizeRoom(name);
      if (room === null) throw new RoomcastError('ROOM_INVALID', name);
      const alive = this.rooms.get(room);
      if (alive && alive.members.size > 0) continue;
      this.rooms.set(room, this.newRoom(room, true));
    }
  }

  /** Makes the rooms span a cluster from now on (see relay); rooms already here are followed. */
  useRelay(relay: RoomRelay): void {
    this.relay = relay;
    for (const room of this.rooms.values()) this.follow(room);
  }

  private newRoom(name: string, predefined: boolean): Room {
    const start = this.dormant.get(name);
    this.dormant.delete(name);
    const log = new RoomLog(name, this.store, this.opts.historySize, start, (err) => this.observer.storeFailed?.(err), this.ownStore);
    const room = new Room(name, predefined, log);
    // From the store, not from a room of that name being replaced (restore() after open()).
    const rules = this.moderation.storedRules(name);
    if (rules !== undefined) room.rules = rules;
    this.moderation.taken(name);
    if (this.relay) this.follow(room);
    return room;
  }

  /**
   * A room of a cluster is ready once the relay follows it: its numbers and topic are then
   * known, and joins that came meanwhile finish (their reply and history).
   */
  private follow(room: Room): void {
    room.pending = [];
    // Redis away: whoever waits to join hears why, rather than nothing.
    const slow = setTimeout(() => {
      if (room.pending === null || this.rooms.get(room.name) !== room) return;
      const notice = new Frame({ type: 'notice', text: `[${room.name}] joining waits for the cluster (its Redis does not answer); you are in the room as soon as it does` });
      for (const m of room.members) m.link.send(notice);
    }, FOLLOW_NOTICE_MS);
    slow.unref();
    this.relay!.follow(room.name).then(
      (start) => {
        clearTimeout(slow);
        if (this.rooms.get(room.name) !== room) return;
        room.log.begin(start);
        room.remote = new Map();
        for (const m of start.members) if (!this.sessions.has(m.key)) room.remote.set(m.key, m.nick);
        void this.learnRegistered(room.remote.keys());
        const waiting = room.pending ?? [];
        room.pending = null;
        for (const finish of waiting) finish();
      },
      (err: unknown) => this.observer.storeFailed?.(err),
    );
  }

  /**
   * An event of a followed room, numbered by the relay, in order: into the room's window and
   * to its members. Whoever posted it (a member with its nick) has had an ack instead.
   */
  arrive(name: string, event: RoomEvent): void {
    const room = this.rooms.get(name);
    if (!room || event.seq <= room.log.seq) return;
    const frame = new Frame(event);
    room.log.record(frame);
    if (room.shownLocally !== null && event.type !== 'labels' && room.shownLocally.delete(localEventKey(event))) {
      if (room.shownLocally.size === 0) room.shownLocally = null;
      return;
    }
    const poster = event.type === 'labels' ? undefined : this.sessions.get(nickKey(event.nick));
    this.broadcast(room, frame, poster);
    if (event.type === 'message') {
      this.stats.messages++;
      this.stats.deliveries += poster && room.members.has(poster) ? room.members.size - 1 : room.members.size;
    }
  }

  /**
   * The cluster lost a room's history (Redis restarted without its data): the window goes, the
   * numbers start again, and the members are told why the seqs they see went back.
   */
  restartRoom(name: string, start: RoomStart): void {
    const room = this.rooms.get(name);
    if (!room) return;
    // The numbers start again, the topic does not: one set meanwhile (told by another node
    // before this one saw the new epoch) must not be wiped by the restart.
    room.log.begin({ ...start, topic: start.topic || room.log.topic });
    this.broadcast(room, new Frame({ type: 'notice', text: `[${name}] the cluster lost this room's history (Redis restarted without its data): numbering starts again from ${start.lastSeq + 1}` }));
  }

  /**
   * The topic the cluster keeps for a room, read after a gap: when it was set after the last
   * change this node heard of (its announcement was missed), the members here are told.
   */
  topicRead(name: string, t: { topic: string; nick: string; time: number }): void {
    const room = this.rooms.get(name);
    if (!room || room.pending || room.topicUnsent !== null || t.time <= room.topicTime || t.topic === room.log.topic) return;
    room.log.topic = t.topic;
    room.topicTime = t.time;
    this.broadcast(room, new Frame({ type: 'topic', room: name, topic: t.topic, ...(t.nick ? { nick: t.nick } : {}) }));
  }

  /** A notice to every room of this server (the cluster went away, or came back). */
  noticeAll(text: string): void {
    for (const room of this.rooms.values()) this.broadcast(room, new Frame({ type: 'notice', text: `[${room.name}] ${text}` }));
  }

  /** Events of a followed room that will never come: the members hear of the hole. */
  skippedEvents(name: string, from: number, to: number): void {
    const room = this.rooms.get(name);
    if (!room) return;
    const which = from === to ? `message ${from} was` : `messages ${from}-${to} were`;
    this.broadcast(room, new Frame({ type: 'notice', text: `[${name}] ${which} dropped from the cluster's history before this server could deliver them` }));
  }

  /**
   * A room event, numbered and delivered to the room's members but `except`: here and now, or
   * through the relay (which delivers it on every node, this one included). The relay's
   * answer is a promise, rejected with CLUSTER_UNAVAILABLE when the event went nowhere.
   */
  private emit<E extends RoomEvent>(room: Room, event: E, except?: Session): E | Promise<E> {
    if (this.relay) {
      // Held while Redis is away (bounded by the relay) is not a backlog to stop reading for:
      // local chat goes on meanwhile.
      const counted = this.relay.reachable;
      if (counted) this.intake.started();
      return this.relay.publish(event).then(
        (seq) => {
          if (counted) this.intake.settled();
          event.seq = seq;
          return event;
        },
        (err: unknown) => {
          if (counted) this.intake.settled();
          throw new RoomcastError('CLUSTER_UNAVAILABLE', (err as Error)?.message ?? String(err));
        },
      );
    }
    event.seq = room.log.next();
    const frame = new Frame(event);
    room.log.append(frame);
    this.broadcast(room, frame, except);
    return event;
  }

  /** Runs `then` with an emitted event when it is numbered; a failure goes to `from` when given. */
  private numbered<E extends RoomEvent>(emitted: E | Promise<E>, then: (e: E) => void, from?: Session, id?: RequestId): void {
    if (!(emitted instanceof Promise)) return then(emitted);
    emitted.then(then, (err: unknown) => {
      if (from && !from.detached) this.fail(from, err, id);
    });
  }

  /**
   * Registers a link: a checked nick (or a fresh guest nick) and its first rooms (the default
   * room unless the hello names others). Throws a RoomcastError when the nick cannot be had.
   */
  attach(link: Link, hello: Hello = {}, account: string | null = null): Session {
    const nick = hello.nick === undefined ? this.guestNick() : this.checkNick(hello.nick, account);
    return this.register(link, hello, nick, account);
  }

  /** attach() as the transports call it: in a cluster, once the nick is claimed there. */
  admit(link: Link, hello: Hello = {}): Session | Promise<Session> {
    this.password?.check(addressOfPeer(link.peer), hello.serverPassword);
    if (hello.password !== undefined && hello.nick !== undefined) return this.admitLoggedIn(link, hello, hello.nick, hello.password);
    return this.relay ? this.attachInCluster(this.relay, link, hello) : this.attach(link, hello);
  }

  /** A hello that logs in: the session starts as the account's nick, proved. */
  private async admitLoggedIn(link: Link, hello: Hello, nick: string, password: string): Promise<Session> {
    const account = await this.accounts.verify(addressOfPeer(link.peer), nick, password);
    const as = { ...hello, nick: account.nick };
    const session = this.relay ? await this.attachInCluster(this.relay, link, as, account.key) : this.attach(link, as, account.key);
    return session;
  }

  /**
   * In a cluster a nick is claimed in Redis first, so that no two nodes give it out; a guest
   * nick is taken the same way, trying the next number while one is in use elsewhere.
   */
  private async attachInCluster(relay: RoomRelay, link: Link, hello: Hello, account: string | null = null): Promise<Session> {
    let nick: string;
    if (hello.nick !== undefined) {
      nick = this.checkNick(hello.nick, account);
      // The store is Redis, asked rather than known: any node may have registered the nick.
      if (account !== nickKey(nick) && (await this.accounts.registered(nickKey(nick)))) throw new RoomcastError('NICK_REGISTERED', nick);
      if (!(await relay.claimNick(nickKey(nick)))) throw new RoomcastError('NICK_TAKEN', nick);
    } else {
      for (let tries = 0; ; tries++) {
        nick = this.guestNick();
        if (await relay.claimNick(nickKey(nick))) break;
        if (tries >= 50) throw new RoomcastError('NICK_TAKEN', nick);
      }
    }
    try {
      // Another of this node's connections may have taken it meanwhile: that one keeps it.
      return this.register(link, hello, this.checkNick(nick, account), account);
    } catch (err) {
      if (!this.sessions.has(nickKey(nick))) relay.releaseNick(nickKey(nick));
      throw err;
    }
  }

  private register(link: Link, hello: Hello, nick: string, account: string | null = null): Session {
    const rooms = [...new Set((hello.rooms ?? [this.opts.defaultRoom]).map((r) => this.checkRoom(r)))];
    if (rooms.length > this.opts.maxRoomsPerSession)
      throw new RoomcastError('TOO_MANY_ROOMS', this.opts.maxRoomsPerSession);
    const session = new Session(this.nextId++, nick, nickKey(nick), link);
    session.account = account;
    this.sessions.set(session.key, session);
    this.send(session, {
      type: 'welcome',
      nick,
      server: this.opts.serverName,
      version: this.opts.version,
      history: this.store.historyId(),
      rooms,
      limits: this.opts.limits,
    });
    this.observer.registered?.(session);
    for (const room of rooms) this.enter(session, room, {});
    return session;
  }

  /** Removes a session everywhere and tells its rooms why. Safe to call twice. */
  detach(session: Session, reason: string): void {
    if (session.detached) return;
    session.detached = true;
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
    for (const room of session.rooms.values()) {
      room.members.delete(session);
      room.sessionOps?.delete(session);
      this.broadcast(room, new Frame({ type: 'parted', room: room.name, nick: session.nick, reason, quit: true }));
      this.relay?.announce({ type: 'parted', room: room.name, nick: session.nick, reason, quit: true }, session.key);
      this.dropIfEmpty(room);
    }
    if (this.relay && !this.sessions.has(session.key)) this.relay.releaseNick(session.key);
    session.rooms.clear();
    session.current = null;
    this.observer.left?.(session, reason);
  }

  /** Runs one command; any RoomcastError becomes an error event to that session alone. */
  handle(session: Session, cmd: Command): void {
    if (session.detached) return;
    // No closure here (handleErrors): this runs for every line a client sends.
    try {
      const handler = HANDLERS[cmd.type];
      const room = handler.room ? this.memberRoom(session, (cmd as { room?: string }).room) : null;
      (handler.run as (h: Hub, s: Session, c: Command, r: Room | null) => void)(this, session, cmd, room);
    } catch (err) {
      this.fail(session, err, cmd.id);
    }
  }

  fail(session: Session, err: unknown, id?: RequestId): void {
    if (err instanceof RoomcastError) {
      this.send(session, { type: 'error', id: id ?? err.id, code: err.code, message: err.message });
    } else {
      this.observer.failed?.(session, err);
      this.send(session, { type: 'error', id, code: 'INTERNAL', message: 'internal error' });
    }
  }

  /** Image ids go on above `id` (the highest one kept from before a restart). */
  continueImagesAfter(id: number): void {
    this.nextImage = Math.max(this.nextImage, id + 1);
  }

  /** A new server-wide image id. */
  imageId(): number {
    return this.nextImage++;
  }

  /**
   * Posts an event with a sequence number to a room on behalf of someone who is not a member
   * (the bot), to every member. Returns false when the room has gone meanwhile.
   */
  postAs<E extends RoomEvent>(roomName: string, build: (seq: number, time: number) => E): boolean {
    const room = this.rooms.get(roomName);
    if (!room) return false;
    const emitted = this.emit(room, build(0, this.opts.now()));
    // The answer is built at once; through a relay its number follows.
    if (emitted instanceof Promise) emitted.catch((err: unknown) => this.observer.storeFailed?.(err));
    return true;
  }

  /**
   * emit(), and while the cluster is away, this node's members are shown the event at once,
   * unnumbered (`local`); the rest hear it when it is numbered, and those here not again.
   */
  private emitOrShow<E extends MessageEvent | ImageEvent>(room: Room, event: E, from?: Session): E | Promise<E> {
    const shown = this.relay && !this.relay.reachable ? localEventKey(event) : null;
    if (shown !== null) {
      (room.shownLocally ??= new Set()).add(shown);
      this.broadcast(room, new Frame({ ...event, local: true }), from);
    }
    const emitted = this.emit(room, event, from);
    // Shown here but never sent after all (the relay held too many): nothing will come back to hide.
    if (shown !== null && emitted instanceof Promise) emitted.catch(() => room.shownLocally?.delete(shown));
    return emitted;
  }

  /**
   * A message to a room, from a member (`except`: the sender, who gets an ack instead) or from
   * someone who is not one (the HTTP API). Throws EMPTY_MESSAGE or TEXT_TOO_LONG.
   */
  say(room: Room, nick: string, raw: string, action = false, from?: Session, id?: RequestId): MessageEvent | Promise<MessageEvent> {
    // Whatever a transport parsed, what enters a room is checked here (clean text passes as is).
    const text = sanitize(raw);
    checkText(this, text);
    const event: MessageEvent = { type: 'message', room: room.name, seq: 0, nick, text, time: this.opts.now() };
    if (action) event.action = true;
    const emitted = this.emitOrShow(room, event, from);
    if (!this.relay) {
      this.stats.messages++;
      this.stats.deliveries += from ? room.members.size - 1 : room.members.size;
    }
    // Every sender gets its ack; a wire format that shows none (text) drops it when encoding.
    if (from) this.numbered(emitted, (e) => this.ack(from, id, { type: 'ack', room: room.name, seq: e.seq, time: e.time }), from, id);
    return emitted;
  }

  /**
   * Shows an image post in its room: the members see who posted what and how big, and the
   * poster (`from`, over a chat link) gets its ack instead. Bytes that are not an image of an accepted format are refused (NOT_AN_IMAGE) before
   * anyone hears of them, and the name is neutralised like any text; every transport posts
   * through here (by way of the image port), so none can skip either.
   */
  postImage(room: Room, nick: string, name: string, data: Buffer, from?: Session, id?: RequestId): { event: ImageEvent; post: ImagePost; emitted: ImageEvent | Promise<ImageEvent> } {
    // Only the file's own name is shown: a path says nothing to the room and may say too much.
    const shown = sanitize(name.split(/[\\/]/).pop()!.slice(0, 100)) || 'image';
    if (sniffImageFormat(data) === null) throw new RoomcastError('NOT_AN_IMAGE', data.length === 0 ? `"${shown}" (0 bytes)` : `"${shown}"`);
    const event: ImageEvent = {
      type: 'image',
      room: room.name,
      seq: 0,
      nick,
      image: this.imageId(),
      name: shown,
      size: data.length,
      time: this.opts.now(),
    };
    const emitted = this.emitOrShow(room, event, from);
    if (from) this.numbered(emitted, (e) => this.ack(from, id, { type: 'ack', room: room.name, seq: e.seq, time: e.time, image: e.image }), from, id);
    this.stats.images++;
    const post: ImagePost = { room: room.name, image: event.image, name: shown, nick, bytes: data };
    return { event, post, emitted };
  }

  /** Writes one frame to every member but `except`, the same bytes for each. */
  broadcast(room: Room, frame: Frame, except?: Session): void {
    const held = room.held;
    if (held === null) {
      for (const member of room.members) if (member !== except) member.link.send(frame);
      return;
    }
    for (const member of room.members) {
      if (member === except) continue;
      const waiting = held.get(member);
      if (!waiting) member.link.send(frame);
      else if (waiting.length < this.opts.maxResume) waiting.push(frame);
      else {
        // A replay that cannot keep up with the room (a store that stalls) must not pin
        // memory: like a reader that stalls, the member is cut and may resume later.
        held.delete(member);
        member.link.close({
          code: 'SENDQ_EXCEEDED',
          reason: `SendQ exceeded: the room moved on faster than your history could be read (${waiting.length} events waiting). Reconnect to resume.`,
        });
      }
    }
  }

  /**
   * Acknowledges a numbered event to its sender: at once, or under ackWhenDurable once the
   * store reports it written (durable()).
   */
  ack(session: Session, id: RequestId | undefined, ack: EventOf<'ack'>): void {
    const event = id === undefined ? ack : { ...ack, id };
    if (!this.opts.ackWhenDurable) {
      this.send(session, event);
      return;
    }
    let waiting = this.unacked.get(ack.room);
    if (!waiting) this.unacked.set(ack.room, (waiting = []));
    waiting.push({ seq: ack.seq, session, event });
  }

  /** The store has written the room's events up to `seq`: their acks go out. */
  durable(room: string, seq: number): void {
    const waiting = this.unacked.get(room);
    if (!waiting) return;
    let n = 0;
    while (n < waiting.length && waiting[n]!.seq <= seq) {
      const { session, event } = waiting[n++]!;
      if (!session.detached) this.send(session, event);
    }
    if (n === waiting.length) this.unacked.delete(room);
    else waiting.splice(0, n);
  }

  send(session: Session, event: ServerEvent): void {
    session.link.send(new Frame(event));
  }

  /** Sends the answer to a request, carrying the request's id so a program can match them. */
  reply(session: Session, id: RequestId | undefined, event: ServerEvent): void {
    this.send(session, id === undefined ? event : ({ ...event, id } as ServerEvent));
  }

  /**
   * A join as a member asks for it: checked against the room's rules first (bans, invite
   * only, its key), which a cluster's store may have to read; a refusal goes to the member.
   */
  enter(session: Session, name: string, opts: JoinOptions & { key?: string }): void {
    if (session.rooms.has(name)) {
      this.join(session, name, opts);
      return;
    }
    const rules = this.moderation.rulesNow(name);
    if (rules === undefined) {
      const attempt = (tries: number): void => {
        this.moderation.load(name).then(
          () => {
            if (!session.detached) this.handleErrors(session, opts.id, () => this.enter(session, name, opts));
          },
          (err: unknown) => {
            if (session.detached) return;
            // Redis away: the join waits for it, as a join of a room not followed yet does.
            if (this.relay && tries < RULES_RETRIES) {
              if (tries === 0) this.send(session, { type: 'notice', text: `[${name}] joining waits for the cluster (its Redis does not answer); you are in the room as soon as it does` });
              setTimeout(() => attempt(tries + 1), RULES_RETRY_MS).unref();
              return;
            }
            this.observer.storeFailed?.(err);
            this.fail(session, new RoomcastError('RULES_UNAVAILABLE', (err as Error)?.message ?? String(err)), opts.id);
          },
        );
      };
      attempt(0);
      return;
    }
    this.handleErrors(session, opts.id, () => {
      this.moderation.admit(session, name, rules, opts.key);
      this.join(session, name, opts);
    });
  }

  private handleErrors(session: Session, id: RequestId | undefined, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.fail(session, err, id);
    }
  }

  join(session: Session, name: string, opts: JoinOptions): Room {
    let room = session.rooms.get(name);
    let founder = false;
    if (!room) {
      if (session.rooms.size >= this.opts.maxRoomsPerSession)
        throw new RoomcastError('TOO_MANY_ROOMS', this.opts.maxRoomsPerSession);
      room = this.rooms.get(name);
      if (!room) {
        room = this.newRoom(name, false);
        this.rooms.set(name, room);
      }
      this.broadcast(room, new Frame({ type: 'joined', room: name, nick: session.nick }));
      room.members.add(session);
      session.rooms.set(name, room);
      founder = this.moderation.founded(session, room);
      this.relay?.announce({ type: 'joined', room: name, nick: session.nick }, session.key);
      this.observer.joined?.(session, room);
    }
    session.current = room;
    if (room.pending) {
      // A room of a cluster not followed yet: its numbers are not known, so the reply and the
      // history wait; what the room says meanwhile waits too (held), and follows them.
      const held = (room.held ??= new Map());
      if (!held.has(session)) held.set(session, []);
      const joined = room;
      room.pending.push(() => {
        const waiting = this.unhold(joined, held, session);
        if (waiting === null) return;
        this.welcomeTo(session, joined, opts, founder);
        for (const f of waiting) session.link.send(f);
      });
      return room;
    }
    this.welcomeTo(session, room, opts, founder);
    return room;
  }

  /**
   * Ends a member's hold on the room's frames (Room.held) and gives back what waited for it,
   * or null when the member is gone meanwhile.
   */
  private unhold(room: Room, held: Map<Session, Frame[]>, session: Session): Frame[] | null {
    const waiting = held.get(session) ?? [];
    held.delete(session);
    if (held.size === 0 && room.held === held) room.held = null;
    return session.detached || !room.members.has(session) ? null : waiting;
  }

  /** The reply to a join, and the history it brings. */
  private welcomeTo(session: Session, room: Room, opts: JoinOptions, founder = false): void {
    const { name } = room;
    this.reply(session, opts.id, {
      type: 'joined',
      room: name,
      nick: session.nick,
      self: true,
      topic: room.topic,
      members: this.memberNicks(room),
      ...this.loggedIn(room),
      ops: this.moderation.opsOf(room),
      modes: modeString(room.rules),
      seq: room.seq,
      epoch: room.log.epoch,
    });
    if (founder) this.send(session, { type: 'notice', text: `[${name}] is a new room and you are its operator: /help lists what operators can do, /op NICK passes it on` });
    // Numbers of another numbering than the room's now: "after N" would mean other messages.
    const lost = opts.after !== undefined && opts.epoch !== undefined && opts.epoch !== room.log.epoch;
    if (lost)
      this.reply(session, opts.id, {
        type: 'notice',
        text: `[${name}] the history you had seen here is gone (the server lost it and numbering started again): this is the room as it is now`,
      });
    if (opts.after === undefined || lost) {
      // The recent past, from the window when it holds it.
      const n = Math.max(0, Math.min(opts.history ?? this.opts.replay, this.opts.historySize));
      this.sendHistory(session, room, room.seq - n, n, opts.id, true);
    } else {
      // A reconnecting client's gap, all of it up to maxResume, before anything said after.
      const after = Math.max(0, Math.floor(opts.after));
      const from = Math.max(after, room.seq - this.opts.maxResume);
      this.replay(session, room, after, from, room.seq, opts.id);
    }
  }

  /**
   * The room's events after `after`, at most `limit` of them (the newest), in one history
   * event: from the window, or read from the store. `replay`: the history a join sends
   * unasked, which a wire format may leave out when it is empty (Frame.replay).
   */
  sendHistory(session: Session, room: Room, after: number, limit: number, id?: RequestId, replay = false): void {
    const frames = room.log.window(after, limit);
    if (frames !== null) {
      const messages = frames.map((f) => f.event as RoomEvent);
      this.deliverHistory(session, room, after, messages, room.log.first, room.seq, id, replay);
      return;
    }
    if (replay) {
      this.replay(session, room, after, Math.max(after, room.seq - limit), room.seq, id);
      return;
    }
    this.fromStore(session, room.log.page(after, limit), id, (page) => this.deliverHistory(session, room, after, page.events, page.first, page.last, id, false));
  }

  /**
   * Sends a member the room's events after `from` up to `to` (and counts those after `after`
   * and up to `from` as missed), in pages read from the store when the window does not hold
   * them. What the room says meanwhile waits (Room.held) and follows the history, so the
   * member sees every event once and in order.
   */
  private replay(session: Session, room: Room, after: number, from: number, to: number, id?: RequestId): void {
    const frames = room.log.window(from, to - from);
    if (frames !== null) {
      const messages = frames.map((f) => f.event as RoomEvent);
      this.deliverHistory(session, room, after, messages, room.log.first, room.seq, id, true, from);
      return;
    }
    const held = (room.held ??= new Map());
    if (held.has(session)) {
      // A second join while the first replay reads: what it asks for follows the first.
      held.get(session)!.push(new Frame({ type: 'notice', text: `[${room.name}] history is still being sent` }));
      return;
    }
    held.set(session, []);
    const release = (): void => {
      for (const f of this.unhold(room, held, session) ?? []) session.link.send(f);
    };
    const next = (cursor: number, first: boolean): void => {
      const read = room.log.page(cursor, Math.min(this.opts.pageSize, to - cursor));
      this.fromStore(session, read, id, (page) => {
        if (session.detached || !room.members.has(session)) return release();
        const events = page.events.filter((e) => e.seq <= to);
        const last = events.length > 0 ? events[events.length - 1]!.seq : to;
        // Only the first page counts what was missed; the next ones follow on from it.
        this.deliverHistory(session, room, first ? after : cursor, events, page.first, room.seq, id, true, first ? from : cursor);
        if (last < to && events.length > 0) next(last, false);
        else release();
      }, release);
    };
    next(from, true);
  }

  /**
   * A page of a room's history for a reader outside the room (HTTP): the first `limit` events
   * after `after`, or the newest `limit` when after is null. The room may be dormant (no
   * members): its history is still there. Null when the room has never had an event.
   */
  async readHistory(name: string, after: number | null, limit: number): Promise<HistoryPage | null> {
    const room = this.rooms.get(name);
    if (room) {
      const from = after ?? Math.max(0, room.seq - limit);
      const frames = room.log.window(from, limit);
      if (frames !== null) return { events: frames.map((f) => f.event as RoomEvent), first: room.log.first, last: room.seq };
      return room.log.page(from, limit);
    }
    const start = this.dormant.get(name);
    if (!start && !this.relay) return null;
    const page = await (after === null ? this.store.latest(name, limit) : this.store.range(name, after, limit));
    // Any node may have made the room: the shared store is the one to ask.
    return start || page.last > 0 ? page : null;
  }

  /**
   * The room's messages that hold every word of `q`, newest first, at most `limit` (bounded
   * by MAX_SEARCH), before seq `before` when given. Throws SEARCH_EMPTY or TEXT_TOO_LONG at
   * once; a failing store rejects with SEARCH_UNAVAILABLE.
   */
  searchRoom(name: string, q: string, limit = SEARCH_DEFAULT, before?: number): Promise<{ q: string; hits: SearchHit[]; more: boolean }> {
    const words = sanitize(q).trim();
    if (words === '') throw new RoomcastError('SEARCH_EMPTY');
    if (words.length > SEARCH_QUERY_MAX) throw new RoomcastError('TEXT_TOO_LONG', SEARCH_QUERY_MAX);
    const n = Math.min(Math.max(1, Math.floor(limit)), MAX_SEARCH);
    // One more than asked, to tell whether there is a next page.
    return this.store.search(name, words, n + 1, before).then(
      (found) => ({
        q: words,
        hits: found.slice(0, n).map(({ event: e, marks }) => ({ seq: e.seq, nick: e.nick, text: e.text, time: e.time, ...(e.action ? { action: true as const } : {}), marks })),
        more: found.length > n,
      }),
      (err: unknown) => {
        if (err instanceof StoreError && err.code === 'STORE_NO_SEARCH') throw new RoomcastError('SEARCH_OFF', err.detail);
        this.observer.storeFailed?.(err);
        throw new RoomcastError('SEARCH_UNAVAILABLE', (err as Error)?.message ?? String(err));
      },
    );
  }

  /** Runs a member's search and answers it when the store has. */
  search(session: Session, room: Room, cmd: { q: string; limit?: number; before?: number; id?: RequestId }): void {
    this.searchRoom(room.name, cmd.q, cmd.limit, cmd.before).then(
      ({ q, hits, more }) => {
        if (!session.detached) this.reply(session, cmd.id, { type: 'search', room: room.name, q, hits, more });
      },
      (err: unknown) => {
        if (!session.detached) this.fail(session, err, cmd.id);
      },
    );
  }

  /** Whether a room is alive or has a history to come back to. */
  knowsRoom(name: string): boolean {
    return this.rooms.has(name) || this.dormant.has(name) || this.relay !== null;
  }

  /** Runs `then` with a read's result, or tells the session the history could not be read. */
  private fromStore(session: Session, read: Promise<HistoryPage>, id: RequestId | undefined, then: (page: HistoryPage) => void, anyway?: () => void): void {
    read.then(then, (err: unknown) => {
      this.observer.storeFailed?.(err);
      if (!session.detached) this.fail(session, new RoomcastError('HISTORY_UNAVAILABLE', (err as Error)?.message ?? String(err)), id);
      anyway?.();
    });
  }

  /** `from`: where the messages start when some after `after` are left out on purpose. */
  private deliverHistory(session: Session, room: Room, after: number, messages: RoomEvent[], first: number, last: number, id: RequestId | undefined, replay: boolean, from = after): void {
    const history: EventOf<'history'> = {
      type: 'history',
      room: room.name,
      messages,
      first,
      last,
      missed: Math.max(0, Math.max(first, from + 1) - 1 - Math.max(0, after)),
    };
    const event = id === undefined ? history : { ...history, id };
    session.link.send(replay ? Frame.replay(event) : new Frame(event));
  }

  part(session: Session, room: Room, reason?: string, kickedBy?: string, except?: Session): void {
    room.members.delete(session);
    room.sessionOps?.delete(session);
    session.rooms.delete(room.name);
    if (session.current === room) session.current = [...session.rooms.values()].pop() ?? null;
    const event: EventOf<'parted'> = { type: 'parted', room: room.name, nick: session.nick, reason, ...(kickedBy !== undefined ? { kickedBy } : {}) };
    this.broadcast(room, new Frame(event), except);
    this.relay?.announce(event, session.key);
    this.dropIfEmpty(room);
    this.observer.parted?.(session, room);
  }

  /**
   * An operator (`by`) puts a member of this server out of the room: the room and the member
   * hear who and why; `kicker`, answered on its own, is not told twice.
   */
  kick(room: Room, target: Session, by: string, reason?: string, kicker?: Session): void {
    this.part(target, room, reason, by, kicker);
    this.send(target, { type: 'parted', room: room.name, nick: target.nick, self: true, kickedBy: by, ...(reason !== undefined ? { reason } : {}) });
    this.observer.moderated?.(room, { type: 'parted', room: room.name, nick: target.nick, kickedBy: by, ...(reason !== undefined ? { reason } : {}) });
  }

  /** Kicks a member of another node of the cluster: that node puts them out (announced()). */
  kickElsewhere(room: Room, nick: string, by: Session, reason?: string): void {
    const event: EventOf<'parted'> = { type: 'parted', room: room.name, nick, kickedBy: by.nick, ...(reason !== undefined ? { reason } : {}) };
    room.remote?.delete(nickKey(nick));
    this.broadcast(room, new Frame(event), by);
    this.relay?.announce(event, nickKey(nick));
    this.observer.moderated?.(room, event);
  }

  /** /password NEW: the logged-in account's password is replaced. */
  changePassword(session: Session, password: string, id?: RequestId): void {
    const account = session.account;
    if (account === null) throw new RoomcastError('NOT_LOGGED_IN');
    this.accounts.changePassword(account, password).then(
      () => {
        if (!session.detached) this.reply(session, id, { type: 'notice', text: 'Your password is changed: use the new one from now on.' });
      },
      (err: unknown) => this.fail(session, err, id),
    );
  }

  rename(session: Session, wanted: string, id?: RequestId): void {
    const key = nickKey(wanted);
    // A change of case keeps the key, but the new spelling must still be a valid nick.
    // A change of spelling keeps the key, but the new one must still be a valid nick of one script.
    const nick = key === session.key ? this.checkSpelling(wanted) : this.checkNick(wanted, session.account);
    const relay = this.relay;
    if (relay && key !== session.key) {
      // Registered (on any node) and claimed in the cluster first; the rename happens when
      // Redis says it is this node's.
      const free = session.account === key ? Promise.resolve(true) : this.accounts.registered(key).then((taken) => !taken);
      free
        .then((ok) => {
          if (!ok) throw new RoomcastError('NICK_REGISTERED', nick);
          return relay.claimNick(key);
        })
        .then(
        (mine) => {
          if (session.detached) return relay.releaseNick(key);
          if (!mine) return this.fail(session, new RoomcastError('NICK_TAKEN', nick), id);
          try {
            this.renameNow(session, this.checkNick(nick, session.account), id);
          } catch (err) {
            this.fail(session, err, id);
          }
        },
        (err: unknown) => this.fail(session, err instanceof RoomcastError ? err : new RoomcastError('CLUSTER_UNAVAILABLE', (err as Error)?.message ?? String(err)), id),
      );
      return;
    }
    this.renameNow(session, nick, id);
  }

  /** /register PASSWORD: the session's nick becomes an account, and the session is logged in. */
  registerAccount(session: Session, password: string, id?: RequestId): void {
    if (session.account === session.key) {
      this.reply(session, id, { type: 'notice', text: `You are logged in as ${session.nick} already: the nick is registered.` });
      return;
    }
    if (/^guest\d+$/.test(session.key)) throw new RoomcastError('REGISTER_GUEST');
    const { nick, key } = session;
    this.accounts.register(nick, password).then(
      () => {
        if (session.detached) return;
        // Logged in as the nick registered, even if the session has moved on meanwhile.
        session.account = key;
        this.reply(session, id, { type: 'notice', text: `Registered ${nick}: nobody else can take it now. Next time, /login ${nick} PASSWORD (JSON: "password" in the hello).` });
      },
      (err: unknown) => this.fail(session, err, id),
    );
  }

  /** /login NICK PASSWORD: proves the account, and takes its nick. */
  login(session: Session, nick: string, password: string, id?: RequestId): void {
    this.accounts.verify(addressOfPeer(session.link.peer), nick, password).then(
      (account) => {
        if (session.detached) return;
        const holder = this.sessions.get(account.key);
        if (holder && holder !== session) throw new RoomcastError('NICK_TAKEN', account.nick);
        session.account = account.key;
        if (session.key !== account.key) this.rename(session, account.nick, id);
        this.reply(session, id, { type: 'notice', text: `You are logged in as ${account.nick}.` });
      },
      (err: unknown) => this.fail(session, err, id),
    ).catch((err: unknown) => this.fail(session, err, id));
  }

  private renameNow(session: Session, nick: string, id?: RequestId): void {
    const key = nickKey(nick);
    const old = session.nick;
    const oldKey = session.key;
    if (nick === old) {
      this.reply(session, id, { type: 'nick', old, nick, self: true });
      return;
    }
    this.sessions.delete(session.key);
    session.nick = nick;
    session.key = key;
    this.sessions.set(key, session);
    if (this.relay) {
      for (const room of session.rooms.values()) this.relay.announce({ type: 'nick', room: room.name, old, nick }, key, oldKey);
      if (oldKey !== key) this.relay.releaseNick(oldKey);
    }
    const notice = new Frame({ type: 'nick', old, nick });
    const told = new Set<Session>([session]);
    for (const room of session.rooms.values())
      for (const m of room.members)
        if (!told.has(m)) {
          told.add(m);
          m.link.send(notice);
        }
    this.reply(session, id, { type: 'nick', old, nick, self: true });
    this.observer.renamed?.(session, old);
  }

  /** Everyone in the room, on this node and (in a cluster) on the others. */
  /**
   * The room's members who are logged in to their nick's account, as an event's field (absent
   * when none). A member of another node holds a registered nick only when logged in to it (no
   * one else may take it), so there the nick being registered says it.
   */
  loggedIn(room: Room): { loggedIn?: string[] } {
    const nicks = [...room.members].filter((m) => m.account === m.key).map((m) => m.nick);
    if (room.remote) for (const [key, nick] of room.remote) if (this.registeredKeys.has(key) && !this.sessions.has(key)) nicks.push(nick);
    return nicks.length === 0 ? {} : { loggedIn: nicks.sort((a, b) => a.localeCompare(b)) };
  }

  /** Learns which of these nicks (of members elsewhere) are registered; an account is never dropped, so a yes is kept. */
  async learnRegistered(keys: Iterable<string>): Promise<void> {
    const unknown = [...keys].filter((k) => !this.registeredKeys.has(k));
    const found = await Promise.all(unknown.map((k) => this.accounts.registered(k).catch(() => false)));
    unknown.forEach((k, i) => found[i] && this.registeredKeys.add(k));
  }

  memberNicks(room: Room): string[] {
    const nicks = [...room.members].map((m) => m.nick);
    if (room.remote) for (const [key, nick] of room.remote) if (!this.sessions.has(key)) nicks.push(nick);
    return nicks.sort((a, b) => a.localeCompare(b));
  }

  /**
   * The rooms /rooms lists, by name, with their counts (and seq where this node knows it): this
   * node's rooms; in a cluster also every room with members on any node, with the cluster's
   * counts (this node's own view when the cluster cannot say).
   */
  roomList(): (RoomInfo & { seq?: number })[] | Promise<(RoomInfo & { seq?: number })[]> {
    const local = (): (RoomInfo & { seq?: number })[] =>
      [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => ({ room: r.name, members: this.memberCount(r), topic: r.topic, seq: r.seq }));
    if (!this.relay) return local();
    const merged = (rooms: RoomInfo[]): (RoomInfo & { seq?: number })[] => {
      const byName = new Map(local().map((r) => [r.room, r]));
      for (const r of rooms) byName.set(r.room, { ...byName.get(r.room), ...r });
      return [...byName.values()].sort((a, b) => a.room.localeCompare(b.room));
    };
    return this.relay.listRooms().then(merged, () => merged([]));
  }

  /** How many are in the room, everywhere. */
  memberCount(room: Room): number {
    return room.remote ? this.memberNicks(room).length : room.members.size;
  }

  /** Tells the other nodes of a room about a change made here (a topic); nothing on a single server. */
  announce(event: Announcement, key: string): void {
    this.relay?.announce(event, key);
  }

  /**
   * A member sets the room's topic: kept, shown to the room here, told to the other nodes.
   * While the cluster is away only this node hears of it; it goes out when the cluster is back
   * (reannounce()).
   */
  setTopic(room: Room, topic: string, by: Session): void {
    room.log.setTopic(topic, by.nick);
    room.topicTime = this.opts.now();
    const event: EventOf<'topic'> = { type: 'topic', room: room.name, topic: room.topic, nick: by.nick };
    this.broadcast(room, new Frame(event), by);
    if (this.relay && !this.relay.reachable) room.topicUnsent = by;
    else this.announce(event, by.key);
  }

  /**
   * Says again who is here, after Redis was away (it may have come back without its data):
   * every local nick claimed, every local member listed in its rooms. The other nodes already
   * listing them take it as nothing new.
   */
  reannounce(): void {
    const relay = this.relay;
    if (!relay) return;
    for (const session of this.sessions.values()) {
      relay.claimNick(session.key).catch(() => {});
      for (const room of session.rooms.values()) relay.announce({ type: 'joined', room: room.name, nick: session.nick }, session.key);
    }
    for (const room of this.rooms.values()) {
      const by = room.topicUnsent;
      if (by === null) continue;
      room.topicUnsent = null;
      room.log.setTopic(room.topic, by.nick);
      relay.announce({ type: 'topic', room: room.name, topic: room.topic, nick: by.nick }, by.key);
    }
  }

  /** A member of another node joined, left, changed nick or set a topic: this node's members hear of it. */
  announced(name: string, event: Announcement): void {
    const room = this.rooms.get(name);
    if (!room || room.pending) return;
    const remote = (room.remote ??= new Map());
    switch (event.type) {
      case 'joined':
        if (remote.has(nickKey(event.nick))) return;
        remote.set(nickKey(event.nick), event.nick);
        void this.learnRegistered([nickKey(event.nick)]);
        break;
      case 'parted': {
        const here = event.kickedBy === undefined ? undefined : this.sessions.get(nickKey(event.nick));
        if (here && room.members.has(here)) {
          // Kicked by an operator on another node: this node puts its member out.
          this.kick(room, here, event.kickedBy!, event.reason);
          return;
        }
        // Said once: a dead node's members may be reported by more than one reaper.
        if (!remote.delete(nickKey(event.nick))) return;
        break;
      }
      case 'moderation':
        this.moderation.heard(room, event, () => this.broadcast(room, new Frame(event)));
        return;
      case 'nick':
        remote.delete(nickKey(event.old));
        remote.set(nickKey(event.nick), event.nick);
        void this.learnRegistered([nickKey(event.nick)]);
        break;
      case 'topic':
        room.log.topic = event.topic;
        room.topicTime = this.opts.now();
        break;
    }
    this.broadcast(room, new Frame(event.type === 'nick' ? { type: 'nick', old: event.old, nick: event.nick } : event));
  }

  /** A private message from a member of another node to one of this node's. */
  privateFromElsewhere(key: string, event: PrivateMessage): void {
    const to = this.sessions.get(key);
    if (to && !to.detached) this.send(to, event);
  }

  /**
   * A private message to a nick that is not on this node: through the relay to its node, or
   * NO_SUCH_NICK when no node has it. Throws NO_SUCH_NICK at once on a single server.
   */
  sendPrivate(from: Session, toNick: string, event: PrivateMessage, id?: RequestId, onSent?: () => void): void {
    const relay = this.relay;
    if (!relay) throw new RoomcastError('NO_SUCH_NICK', echoed(toNick));
    relay.sendPrivate(nickKey(toNick), event).then(
      (sent) => {
        if (from.detached) return;
        if (sent && onSent) onSent();
        else if (sent) this.reply(from, id, event);
        else this.fail(from, new RoomcastError('NO_SUCH_NICK', echoed(toNick)), id);
      },
      (err: unknown) => this.fail(from, new RoomcastError('CLUSTER_UNAVAILABLE', (err as Error)?.message ?? String(err)), id),
    );
  }

  /** The room a command acts on: the named one, or the current one; the sender must be in it. */
  memberRoom(session: Session, name: string | undefined): Room {
    if (name === undefined) {
      if (!session.current) throw new RoomcastError('NO_ROOM');
      return session.current;
    }
    const key = this.checkRoom(name);
    const room = session.rooms.get(key);
    if (!room) throw new RoomcastError('NOT_IN_ROOM', key);
    return room;
  }

  checkRoom(name: string): string {
    const key = normalizeRoom(name);
    if (key === null) throw new RoomcastError('ROOM_INVALID', echoed(name));
    return key;
  }

  /**
   * A nick someone may take now: valid, not reserved, not in use, and not registered to an
   * account other than `account` (the one the asker has proved).
   */
  checkNick(nick: string, account: string | null = null): string {
    this.checkSpelling(nick);
    const key = nickKey(nick);
    if (this.reserved.has(key)) throw new RoomcastError('NICK_RESERVED', nick);
    if (this.sessions.has(key)) throw new RoomcastError('NICK_TAKEN', nick);
    if (key !== account && this.accounts.registeredNow(key) === true) throw new RoomcastError('NICK_REGISTERED', nick);
    return nick.normalize('NFC');
  }

  /** A nick's own form: valid, of one script (docs/security.md); returned in NFC. */
  private checkSpelling(nick: string): string {
    if (!isValidNick(nick)) throw new RoomcastError('NICK_INVALID', echoed(nick));
    const mixed = mixedScripts(nick);
    if (mixed !== null) throw new RoomcastError('NICK_MIXED_SCRIPTS', `"${nick}" mixes letters of ${mixed.join(' and ')}`);
    return nick.normalize('NFC');
  }

  private guestNick(): string {
    for (;;) {
      const nick = `guest${this.nextGuest++}`;
      if (!this.sessions.has(nick)) return nick;
    }
  }

  /** An empty room leaves /rooms unless predefined; its numbers and topic wait for its return. */
  private dropIfEmpty(room: Room): void {
    if (room.members.size > 0 || room.predefined) return;
    this.rooms.delete(room.name);
    if (this.relay) {
      // The cluster keeps its numbers; the room comes back from there.
      this.relay.unfollow(room.name);
      return;
    }
    this.dormant.set(room.name, { lastSeq: room.log.seq, firstSeq: room.log.first, topic: room.log.topic });
  }
}

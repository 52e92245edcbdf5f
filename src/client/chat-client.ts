/**
 * A roomcast client that speaks the JSON protocol: connects, registers, matches replies to
 * requests by id, keeps track of its rooms, and reconnects by itself, filling the gap from each
 * room's history so that every message is seen exactly once.
 *
 * It knows nothing of terminals: the terminal client, one-shot tools and benchmarks all drive
 * it, and each decides what to show. Timers, randomness and the socket are injectable so tests
 * step through backoff without waiting.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type tls from 'node:tls';
import type { Command } from '../protocol/commands.js';
import { protocolError, type ErrorCode } from '../protocol/errors.js';
import { localEventKey, type EventOf, type EventType, type ImageEvent, type LabelsEvent, type MessageEvent, type RequestId, type RoomEvent, type ServerEvent } from '../protocol/events.js';
import { LineReader } from '../protocol/line-reader.js';
import { NICK_MAX, nickKey, normalizeRoom } from '../protocol/text.js';
import type { ServerAddress } from './address.js';
import { briefConnectError, connectErrorCode, explainConnectError, explainTlsHandshake, TLS_HANDSHAKE } from './connect-errors.js';
import { openTls, peerCertificate } from './tls-connect.js';
import { ServerTrust, type Trusted, type TrustError, type TrustOptions } from './trust.js';

export type Welcome = EventOf<'welcome'>;

/** Commands that get a reply; hello and quit are the client's own business. */
export type Request = Exclude<Command, { type: 'hello' | 'quit' | 'pass' }>;

/** The reply a request resolves with (for a join: "joined", once its history has come too). */
interface ReplyTypes {
  nick: 'nick';
  join: 'joined';
  part: 'parted';
  message: 'ack';
  privmsg: 'privmsg';
  rooms: 'rooms';
  who: 'who';
  topic: 'topic';
  history: 'history';
  search: 'search';
  help: 'help';
  ping: 'pong';
  bot: 'bot';
  image: 'ack';
  register: 'notice';
  login: 'notice';
  password: 'notice';
  op: 'moderation';
  deop: 'moderation';
  ban: 'moderation';
  unban: 'moderation';
  mute: 'moderation';
  unmute: 'moderation';
  invite: 'moderation';
  mode: 'moderation' | 'mode';
  key: 'moderation';
  kick: 'parted';
  bans: 'bans';
}
export type ReplyTo<C extends Request> = EventOf<ReplyTypes[C['type']]>;

/** A request's last reply: a join is answered by "joined" and then its "history". */
const FINAL_REPLY: Partial<Record<Request['type'], EventType>> = { join: 'history' };

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** Fraction of each delay taken off at random, so clients dropped together do not return together. */
  jitter: number;
}

export interface ChatClientOptions extends ServerAddress {
  /**
   * Other addresses of the same service (the nodes of a cluster): when the one in use cannot be
   * reached, or its connection is lost, the next one is tried, in turn.
   */
  alternates: ServerAddress[];
  /** Wanted nick; taken ones get a suffix (alice_2). None: the server picks one. */
  nick?: string;
  /** Rooms to join at first; none: the server's default room. */
  rooms?: string[];
  /** The server's password, on a server that has one (sent in every hello, reconnects too). */
  serverPassword?: string;
  reconnect: boolean;
  backoff: Backoff;
  connectTimeoutMs: number;
  /** Silence after which the server is pinged; twice this with no answer drops the link. 0: off. */
  heartbeatMs: number;
  /** Nicks tried (alice, alice_2, ...) before registration gives up. */
  nickAttempts: number;
  timers: Timers;
  random: () => number;
  now: () => number;
  /** Opens the connection: for an address with `tls`, a TLS socket that leaves verification to trust.ts. */
  openSocket: (address: ServerAddress) => net.Socket;
  /** How a TLS server's certificate is judged (trust.ts): --fingerprint, the question, the known-servers file. */
  trust: TrustOptions;
}

export const CLIENT_DEFAULTS: Omit<ChatClientOptions, 'host' | 'port'> = {
  alternates: [],
  reconnect: true,
  backoff: { initialMs: 500, maxMs: 10_000, jitter: 0.25 },
  connectTimeoutMs: 10_000,
  heartbeatMs: 30_000,
  nickAttempts: 20,
  timers: realTimers,
  random: Math.random,
  now: Date.now,
  openSocket: (address) => (address.tls ? openTls(address) : net.connect({ host: address.host, port: address.port })),
  trust: {},
};

/** The server answered a request with an error. */
export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly command: Command,
    /**
     * True when the client refused it before sending, with the code the server would have
     * given (an image over the server's advertised limit): no error event was reported for it.
     */
    readonly local = false,
  ) {
    super(message);
  }
}

/** Nothing came in time (the classifier bot's answer to an image, say). */
export class TimeoutError extends Error {
  readonly code = 'TIMEOUT';
}

/** An image to post: its name (shown to the room) and its bytes, sent as they are. */
export interface ImageUpload {
  room?: string;
  name: string;
  /** Not copied: leave it unchanged until postImage() has settled. */
  bytes: Uint8Array;
}

/** Image bytes go out in slices this big, each only once the socket has taken the last. */
const UPLOAD_CHUNK = 64 * 1024;

/** Recent bot answers kept for waitForLabels() callers that ask after the answer came. */
const LABELS_KEPT = 256;
/** Unnumbered messages remembered per room (a server keeps at most 1,000 for its cluster). */
const MAX_SHOWN_LOCALLY = 1000;

interface LabelWaiter {
  resolve(event: LabelsEvent): void;
  reject(reason: string): void;
}

type OutItem = { kind: 'line'; data: string } | { kind: 'upload'; header: string; bytes: Uint8Array };

/**
 * What is being written to one socket. An image's bytes must reach the server unbroken right
 * after its header line, so while they are going out every other line waits its turn here.
 */
interface Output {
  socket: net.Socket;
  queue: OutItem[];
  /** An upload is being written: new lines queue behind it. */
  busy: boolean;
}

/** A request that could not be sent, or whose answer was lost with the connection. */
export class NotConnectedError extends Error {
  constructor(
    message: string,
    /** True when it went out before the connection dropped: it may have been carried out. */
    readonly sent = false,
  ) {
    super(message);
  }
}

/** The first connection could not be made or the server would not register us. */
export class ConnectError extends Error {
  constructor(
    message: string,
    /** A protocol error code when the server refused us, else the socket's error code. */
    readonly code: string | undefined,
    /** A few words for a repeated report, such as a failed reconnect ("connection refused"). */
    readonly brief: string = message,
    /** The server answered and said no (a nick, a full server), rather than not answering. */
    readonly refused = false,
    /**
     * No retry can mend it: the server is not to be trusted (trust.ts). A reconnect that meets
     * it closes the client rather than trying again.
     */
    readonly final = false,
  ) {
    super(message);
  }
}

/** What the client remembers of a room it is in. */
export interface RoomState {
  readonly name: string;
  /** Highest sequence number seen: a rejoin asks for everything after it. */
  lastSeq: number;
  /** The numbering lastSeq belongs to (the server's word on joining); a rejoin sends it back. */
  epoch?: string;
  members: Set<string>;
  topic: string;
}

/** The request an event answers, so a listener can tell a reply from news. */
export interface Answered {
  command: Command;
  sentAt: number;
  /** Sent by the client itself (a rejoin, a gap fill), not by its user. */
  internal: boolean;
}

export type Phase = 'idle' | 'connecting' | 'ready' | 'waiting' | 'closed';

export interface ChatClientEvents {
  /** Every event worth a listener's attention; duplicate messages are never reported. */
  event: [event: ServerEvent, answered: Answered | undefined];
  /** Registered, the first time or again after a drop. */
  /**
   * historyLost: the server that answered a reconnect has another history than before (it
   * restarted without keeping its history, or another server answered), so every room starts
   * counting afresh and what was said while away is not to be had.
   */
  connected: [
    welcome: Welcome,
    info: {
      reconnected: boolean;
      wantedNick: string | undefined;
      historyLost: boolean;
      address: ServerAddress;
      moved: boolean;
      /** How the server's certificate was trusted; null on a clear-text connection. */
      tls: Trusted | null;
    },
  ];
  /** The connection dropped; retryInMs is null when no reconnect will follow. */
  disconnected: [info: { reason: string; retryInMs: number | null }];
  /** A reconnect attempt failed; another follows after retryInMs. */
  retrying: [info: { reason: string; attempt: number; retryInMs: number }];
  /** A reconnect met a server not to be trusted (its certificate changed): the client closes next. */
  fatal: [error: ConnectError];
  /** Done for good: quit, closed, or disconnected without reconnecting. */
  closed: [info: { reason: string }];
  /** Something odd from the server that was skipped. */
  warning: [text: string];
}

interface Pending {
  command: Command;
  sentAt: number;
  internal: boolean;
  /** Internal requests whose replies interest nobody but the client (heartbeat pings). */
  quiet: boolean;
  first?: ServerEvent;
  resolve(event: ServerEvent): void;
  reject(err: Error): void;
}

interface Handshake {
  reconnecting: boolean;
  baseNick: string | undefined;
  tries: number;
  refusal?: ConnectError;
  /** The TCP connection was made (a TLS handshake that fails after it is TLS_HANDSHAKE). */
  linked?: boolean;
  /** The TLS handshake is done; how its certificate came to be trusted, once it has. */
  secured?: boolean;
  trusted?: Trusted;
  /** The connection was closed to ask a person about the certificate: their answer goes on. */
  asking?: boolean;
  resolve(welcome: Welcome): void;
  reject(err: ConnectError): void;
}

/**
 * Sequence numbers seen in one room, to drop duplicates. Bounded: it keeps the most recent
 * ones, and anything at or below what has been evicted counts as seen.
 */
class SeenSeqs {
  private readonly seqs = new Set<number>();
  private floor = 0;
  constructor(private readonly capacity = 2048) {}

  has(seq: number): boolean {
    return seq <= this.floor || this.seqs.has(seq);
  }

  add(seq: number): void {
    this.seqs.add(seq);
    if (this.seqs.size > this.capacity) {
      const oldest = this.seqs.values().next().value as number;
      this.seqs.delete(oldest);
      this.floor = Math.max(this.floor, oldest);
    }
  }

  clear(): void {
    this.seqs.clear();
    this.floor = 0;
  }
}

/** Nick to try after `tries` refusals: alice, alice_2, alice_3, ... kept within the limit. */
export function nickCandidate(base: string, tries: number): string {
  if (tries === 0) return base;
  const suffix = `_${tries + 1}`;
  return base.slice(0, NICK_MAX - suffix.length) + suffix;
}

/** Exponential backoff with jitter: attempt 0 waits about initialMs, doubling up to maxMs. */
export function backoffDelay(b: Backoff, attempt: number, random: () => number): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (1 - b.jitter * random()));
}

export class ChatClient extends EventEmitter<ChatClientEvents> {
  readonly opts: ChatClientOptions;
  /** Our nick as the server knows it; undefined until registered. */
  nick: string | undefined;
  welcome: Welcome | undefined;
  private readonly joined = new Map<string, RoomState>();
  private current: string | null = null;
  private readonly seen = new Map<string, SeenSeqs>();
  /** The account this client logged in to (/register, /login): every later hello proves it. */
  private account: { nick: string; password: string } | null = null;
  /**
   * Messages and image posts shown to us unnumbered while the server's cluster was away (by
   * room, then localEventKey): the same one numbered later, live or in a replay on another
   * server, is not reported again.
   */
  private readonly shownLocally = new Map<string, Set<string>>();
  private state: Phase = 'idle';
  private socket: net.Socket | null = null;
  private reader = new LineReader(1 << 24);
  private out: Output | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly labels = new Map<number, LabelsEvent>();
  private readonly labelWaiters = new Map<number, Set<LabelWaiter>>();
  private nextId = 1;
  private handshake: Handshake | null = null;
  private socketError: NodeJS.ErrnoException | null = null;
  private bye: EventOf<'bye'> | null = null;
  private connectTimer: unknown = null;
  private retryTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private lastHeard = 0;
  /** When an upload last made progress: a long upload is not a silent server. */
  private lastSent = 0;
  private retries = 0;
  /** The service's addresses, the one given first; `at` is the one in use. */
  private readonly addresses: ServerAddress[];
  private at = 0;
  /** The address of the last connection that registered. */
  private lastAt: number | null = null;
  private quitting = false;
  private closeReason = 'quit';
  private readyWaiters: { resolve(): void; reject(err: Error): void }[] = [];
  private closedPromise: Promise<void>;
  private markClosed!: () => void;
  private readonly trust: ServerTrust;

  constructor(opts: Partial<ChatClientOptions> & ServerAddress) {
    super();
    this.opts = { ...CLIENT_DEFAULTS, ...opts };
    const first: ServerAddress = { host: opts.host, port: opts.port, ...(opts.tls ? { tls: true } : {}) };
    this.addresses = [first, ...this.opts.alternates];
    this.trust = new ServerTrust(this.opts.trust);
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
  }

  /** Rooms we are in, in the order they were joined. */
  get rooms(): ReadonlyMap<string, RoomState> {
    return this.joined;
  }

  get phase(): Phase {
    return this.state;
  }

  get connected(): boolean {
    return this.state === 'ready';
  }

  /** The room messages go to: the last one joined, kept here rather than on the server. */
  get currentRoom(): string | null {
    return this.current;
  }

  /** Switches the current room to one we are in; false if we are not in it. */
  switchRoom(name: string): boolean {
    const key = normalizeRoom(name);
    if (key === null || !this.rooms.has(key)) return false;
    this.current = key;
    return true;
  }

  /** Resolves once the client is done for good (quit, or dropped with no reconnect). */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Connects and registers. Rejects with a ConnectError saying why, in words for a person. */
  async connect(): Promise<Welcome> {
    if (this.state !== 'idle') throw new Error(`connect() called twice (client is ${this.state})`);
    const n = this.addresses.length;
    for (let i = 0; ; i++) {
      try {
        return await this.attempt(false);
      } catch (err) {
        // A server that answered and said no speaks for the service; only one that did not
        // answer makes the next address worth a try.
        if (i + 1 < n && err instanceof ConnectError && !err.refused) {
          this.nextAddress();
          continue;
        }
        this.finish((err as Error).message);
        throw err;
      }
    }
  }

  /** The address in use, or to be tried next. */
  get address(): ServerAddress {
    return this.addresses[this.at]!;
  }

  /** Resolves when the client is registered; rejects if it closes first. */
  whenReady(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new NotConnectedError('the client is closed'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Sends a command and resolves with its reply, or rejects with a RequestError (the server
   * said no) or a NotConnectedError (not connected, or the connection dropped before the answer
   * came, in which case the command may or may not have been carried out).
   */
  request<C extends Request>(command: C): Promise<ReplyTo<C>> {
    return this.send(this.withRoom(command), false, false) as Promise<ReplyTo<C>>;
  }

  say(text: string, room?: string): Promise<EventOf<'ack'>> {
    return this.request({ type: 'message', text, room });
  }

  join(room: string): Promise<EventOf<'joined'>> {
    return this.request({ type: 'join', room });
  }

  /** The largest image the server takes, from its welcome; undefined if it did not say. */
  get maxImageBytes(): number | undefined {
    const max = this.welcome?.limits?.maxImageBytes;
    return typeof max === 'number' && max >= 0 ? max : undefined;
  }

  /**
   * Posts an image: the header line, then the raw bytes, written as the socket takes them.
   * Resolves with the server's ack, whose `image` is the id the bot's answer will carry (see
   * waitForLabels). Rejects like request(); an image over the server's advertised limit is
   * refused here, without uploading it, with the server's code (IMAGE_TOO_LARGE).
   */
  postImage(upload: ImageUpload): Promise<EventOf<'ack'>> {
    const room = upload.room ?? this.current ?? undefined;
    const command: Extract<Command, { type: 'image' }> = { type: 'image', name: upload.name, size: upload.bytes.length };
    if (room !== undefined) command.room = room;
    const max = this.maxImageBytes;
    if (max !== undefined && upload.bytes.length > max) {
      const { message } = protocolError('IMAGE_TOO_LARGE', `${upload.bytes.length} bytes; the limit is ${max} bytes`);
      return Promise.reject(new RequestError('IMAGE_TOO_LARGE', message, command, true));
    }
    return this.send(command, false, false, upload.bytes) as Promise<EventOf<'ack'>>;
  }

  /**
   * Resolves with the classifier bot's answer to image `image` (an ack's `image`), labels or
   * error, whether it comes live or in a history replay after a reconnect, and even if it came
   * before this was called. Rejects with a TimeoutError after timeoutMs, or a NotConnectedError
   * when the client closes first.
   */
  waitForLabels(image: number, timeoutMs = 30_000): Promise<LabelsEvent> {
    const known = this.labels.get(image);
    if (known) return Promise.resolve(known);
    if (this.state === 'closed') return Promise.reject(new NotConnectedError('the client is closed'));
    return new Promise((resolve, reject) => {
      let waiters = this.labelWaiters.get(image);
      if (!waiters) this.labelWaiters.set(image, (waiters = new Set()));
      const settle = (fn: () => void): void => {
        this.opts.timers.clearTimeout(timer);
        waiters!.delete(waiter);
        if (waiters!.size === 0 && this.labelWaiters.get(image) === waiters) this.labelWaiters.delete(image);
        fn();
      };
      const waiter: LabelWaiter = {
        resolve: (e) => settle(() => resolve(e)),
        reject: (reason) =>
          settle(() => reject(new NotConnectedError(`the client closed (${reason}) before the answer to image #${image} came`))),
      };
      const timer = this.opts.timers.setTimeout(
        () => settle(() => reject(new TimeoutError(`no answer to image #${image} within ${formatSeconds(timeoutMs)}`))),
        timeoutMs,
      );
      waiters.add(waiter);
    });
  }

  /** Says goodbye and closes; no reconnect follows. Resolves when the connection is closed. */
  async quit(reason?: string): Promise<void> {
    if (this.state === 'closed') return;
    this.quitting = true;
    this.clearTimer('retryTimer');
    const socket = this.socket;
    if (this.state === 'ready' && socket && !socket.destroyed) {
      this.writeLine(JSON.stringify(reason ? { type: 'quit', reason } : { type: 'quit' }) + '\n');
      // The server answers with "bye" and hangs up; one that does not is not waited for long.
      const cut = this.opts.timers.setTimeout(() => socket.destroy(), 2000);
      await this.closedPromise;
      this.opts.timers.clearTimeout(cut);
    } else {
      this.close('quit');
    }
  }

  /** Closes at once, without a goodbye; no reconnect follows. */
  close(reason = 'closed'): void {
    if (this.state === 'closed') return;
    this.quitting = true;
    this.closeReason = reason;
    this.clearTimer('retryTimer');
    if (this.socket) this.socket.destroy();
    else this.finish(reason);
  }

  // ---- requests ----

  /** Commands that act on a room default to ours, not the server's: after a reconnect the
   *  server's idea of "current" is merely whichever room was rejoined last. */
  private withRoom(command: Request): Request {
    const c = { ...command } as Request & { room?: string };
    switch (c.type) {
      case 'message':
      case 'part':
      case 'topic':
      case 'history':
      case 'who':
        if (c.room === undefined && this.current !== null) c.room = this.current;
        break;
      case 'join': {
        // A join of a room we are in asks only for what we have not seen.
        const key = normalizeRoom(c.room);
        const state = key === null ? undefined : this.rooms.get(key);
        if (state && c.after === undefined && c.history === undefined) {
          c.after = state.lastSeq;
          if (state.epoch !== undefined) c.epoch = state.epoch;
        }
        break;
      }
    }
    return c;
  }

  /** With `bytes`, the command is an image header and the bytes follow it on the wire. */
  private send(command: Request, internal: boolean, quiet: boolean, bytes?: Uint8Array): Promise<ServerEvent> {
    const socket = this.socket;
    if (this.state !== 'ready' || !socket || socket.destroyed)
      return Promise.reject(new NotConnectedError('not connected to the server'));
    const id = this.nextId++;
    const promise = new Promise<ServerEvent>((resolve, reject) => {
      this.pending.set(id, { command, sentAt: this.opts.now(), internal, quiet, resolve, reject });
    });
    if (command.type === 'join' && !internal) this.switchOptimistically(command.room, id);
    const line = JSON.stringify({ ...command, id }) + '\n';
    if (bytes === undefined) this.writeLine(line);
    else this.enqueueOut({ kind: 'upload', header: line, bytes });
    if (internal) promise.catch(() => {}); // its failure is handled where it is answered
    return promise;
  }

  // ---- output ----

  private writeLine(data: string): void {
    const out = this.out;
    if (!out) return;
    if (!out.busy && out.queue.length === 0) out.socket.write(data);
    else this.enqueueOut({ kind: 'line', data });
  }

  private enqueueOut(item: OutItem): void {
    const out = this.out;
    if (!out) return;
    out.queue.push(item);
    if (!out.busy) void this.drainOut(out);
  }

  /** Writes queued items in order; an upload's bytes go out only as fast as the socket takes them. */
  private async drainOut(out: Output): Promise<void> {
    out.busy = true;
    try {
      while (out.queue.length > 0 && this.out === out && !out.socket.destroyed) {
        const item = out.queue.shift()!;
        if (item.kind === 'line') out.socket.write(item.data);
        else await this.upload(out.socket, item.header, item.bytes);
      }
    } finally {
      out.busy = false;
    }
  }

  private async upload(socket: net.Socket, header: string, bytes: Uint8Array): Promise<void> {
    this.lastSent = this.opts.now();
    let open = socket.write(header) || (await drained(socket));
    for (let at = 0; open && at < bytes.length; at += UPLOAD_CHUNK) {
      open = socket.write(bytes.subarray(at, at + UPLOAD_CHUNK)) || (await drained(socket));
      this.lastSent = this.opts.now();
    }
  }

  /**
   * A join makes its room current at once, not when the server answers, so the lines typed
   * (or piped) right after it go to the new room. A refused join puts the old one back.
   */
  private switchOptimistically(room: string, id: number): void {
    const key = normalizeRoom(room);
    if (key === null) return;
    const before = this.current;
    this.current = key;
    const p = this.pending.get(id)!;
    const reject = p.reject;
    p.reject = (err) => {
      if (this.current === key && !this.rooms.has(key)) this.current = before;
      reject(err);
    };
  }

  private settle(event: ServerEvent, p: Pending, id: number): void {
    if (event.type === 'error') {
      this.pending.delete(id);
      p.reject(new RequestError(event.code, event.message, p.command));
      return;
    }
    p.first ??= event;
    const final = FINAL_REPLY[p.command.type as Request['type']];
    if (final === undefined || event.type === final) {
      this.pending.delete(id);
      p.resolve(p.first);
    }
  }

  private failPending(reason: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new NotConnectedError(reason, true));
  }

  // ---- connecting ----

  private attempt(reconnecting: boolean): Promise<Welcome> {
    this.state = 'connecting';
    this.socketError = null;
    this.bye = null;
    this.reader = new LineReader(1 << 24);
    const address = this.address;
    const socket = this.opts.openSocket(address);
    this.socket = socket;
    this.out = { socket, queue: [], busy: false };
    let hs!: Handshake;
    const promise = new Promise<Welcome>((resolve, reject) => {
      hs = this.handshake = { reconnecting, baseNick: this.nick ?? this.opts.nick, tries: 0, resolve, reject };
    });
    this.connectTimer = this.opts.timers.setTimeout(() => {
      this.connectTimer = null;
      socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, this.opts.connectTimeoutMs);
    socket.once('connect', () => {
      hs.linked = true;
      if (!address.tls) this.opened(socket);
    });
    if (address.tls) socket.once('secureConnect', () => this.secure(socket as tls.TLSSocket, address, hs));
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (socket === this.socket) this.socketError ??= err;
    });
    socket.on('close', () => this.onSocketClose(socket));
    return promise;
  }

  private opened(socket: net.Socket): void {
    this.clearTimer('connectTimer');
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    this.sendHello();
  }

  /**
   * The TLS handshake is done: nothing is sent (not the nick, not the server password) until
   * the certificate is trusted. A person may be asked, so the connect deadline ends here.
   */
  private secure(socket: tls.TLSSocket, address: ServerAddress, hs: Handshake): void {
    this.clearTimer('connectTimer');
    hs.secured = true;
    const refuse = (err: ConnectError): void => {
      if (hs.asking) hs.reject(err);
      else if (socket === this.socket) {
        hs.refusal = err;
        socket.destroy();
      }
    };
    const check = this.trust.check({
      host: address.host,
      port: address.port,
      peer: peerCertificate(socket, address.host),
      reconnecting: hs.reconnecting,
      hangUp: () => {
        hs.asking = true;
        socket.destroy();
      },
      warn: (text) => this.emit('warning', text),
    });
    check.then(
      (trusted) => {
        if (hs.asking) {
          // Known now: the next connection goes through without a question.
          if (this.quitting) hs.reject(new ConnectError('closed before connecting', undefined));
          else this.attempt(hs.reconnecting).then(hs.resolve, hs.reject);
          return;
        }
        if (socket !== this.socket) return;
        hs.trusted = trusted;
        this.opened(socket);
      },
      (err: TrustError) => refuse(new ConnectError(err.message, err.code, err.brief, true, true)),
    );
  }

  private sendHello(): void {
    const hs = this.handshake!;
    const hello: Command = { type: 'hello' };
    if (hs.baseNick !== undefined) hello.nick = nickCandidate(hs.baseNick, hs.tries);
    if (this.account !== null && hello.nick !== undefined && nickKey(hello.nick) === nickKey(this.account.nick)) hello.password = this.account.password;
    // A reconnect joins with "after" itself, so the server must not replay anything first.
    if (hs.reconnecting) hello.rooms = [];
    else if (this.opts.rooms && this.opts.rooms.length > 0) hello.rooms = this.opts.rooms;
    if (this.opts.serverPassword !== undefined) hello.serverPassword = this.opts.serverPassword;
    this.writeLine(JSON.stringify(hello) + '\n');
  }

  private onHandshakeEvent(hs: Handshake, event: ServerEvent): void {
    if (event.type === 'welcome') {
      this.handshake = null;
      this.registered(event, hs);
      return;
    }
    if (event.type === 'error') {
      // A registered nick is taken too, for now: the session that comes in as alice_2 can /login alice.
      const taken = event.code === 'NICK_TAKEN' || event.code === 'NICK_RESERVED' || event.code === 'NICK_REGISTERED';
      if (taken && hs.baseNick !== undefined && hs.tries + 1 < this.opts.nickAttempts) {
        hs.tries++;
        this.sendHello();
        return;
      }
      // Rejected when the socket has closed, like every other way registration can fail.
      hs.refusal = new ConnectError(event.message, event.code, event.message, true);
      this.socket?.destroy();
      return;
    }
    if (event.type === 'bye') this.bye = event;
  }

  private registered(welcome: Welcome, hs: Handshake): void {
    const before = this.welcome?.history;
    const historyLost = hs.reconnecting && typeof before === 'string' && typeof welcome.history === 'string' && welcome.history !== before;
    if (historyLost) for (const room of this.rooms.keys()) this.startCounting(room);
    this.welcome = welcome;
    this.nick = welcome.nick;
    this.state = 'ready';
    this.retries = 0;
    this.lastHeard = this.opts.now();
    this.armHeartbeat();
    const moved = this.lastAt !== null && this.lastAt !== this.at;
    this.lastAt = this.at;
    this.emit('connected', welcome, { reconnected: hs.reconnecting, wantedNick: hs.baseNick, historyLost, address: this.address, moved, tls: hs.trusted ?? null });
    if (hs.reconnecting) this.rejoin();
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    hs.resolve(welcome);
  }

  /** Rejoins every room asking for what came after the last message seen, current room last
   *  so the server's current room agrees with ours. */
  private rejoin(): void {
    const names = [...this.rooms.keys()].filter((r) => r !== this.current);
    if (this.current !== null && this.rooms.has(this.current)) names.push(this.current);
    for (const room of names) {
      const state = this.rooms.get(room)!;
      const epoch = state.epoch === undefined ? {} : { epoch: state.epoch };
      void this.send({ type: 'join', room, after: state.lastSeq, ...epoch }, true, false).catch((err: Error) => {
        if (err instanceof RequestError) this.forgetRoom(room);
      });
    }
  }

  private onSocketClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.out = null;
    this.clearTimer('connectTimer');
    this.clearTimer('heartbeatTimer');
    const reason = this.bye ? this.bye.reason : briefConnectError(this.socketError);
    this.failPending(`connection lost (${reason}) before the server answered`);

    const hs = this.handshake;
    if (hs) {
      this.handshake = null;
      // Closed to ask a person about the certificate: their answer decides what follows (secure()).
      if (hs.asking) return;
      if (hs.refusal) hs.reject(hs.refusal);
      else if (this.bye) {
        const message = `the server refused the connection: ${this.bye.reason}`;
        hs.reject(new ConnectError(message, this.bye.code, message, true));
      } else hs.reject(this.connectFailure(hs));
      return;
    }
    if (this.quitting || this.state === 'closed') {
      this.finish(this.closeReason);
      return;
    }
    // A server that says it is leaving for good would say so in its bye; every other loss is
    // worth retrying, including "shutting down", since servers are restarted.
    if (this.state === 'ready' && this.opts.reconnect) {
      // Another node of the service may well be up while this one is not.
      this.nextAddress();
      const delay = this.nextDelay();
      this.state = 'waiting'; // before listeners hear of it: they may ask whether we are connected
      this.emit('disconnected', { reason, retryInMs: delay });
      this.scheduleReconnect(delay);
    } else {
      this.emit('disconnected', { reason, retryInMs: null });
      this.finish(reason);
    }
  }

  /** Why a connection that never registered failed, in words for a person. */
  private connectFailure(hs: Handshake): ConnectError {
    const err = this.socketError;
    const target = { ...this.opts, ...this.address };
    if (this.address.tls && hs.linked && !hs.secured)
      return new ConnectError(explainTlsHandshake(err, target), TLS_HANDSHAKE, 'the server did not answer TLS');
    return new ConnectError(
      explainConnectError(err ?? new Error('the server closed the connection'), target),
      connectErrorCode(err),
      briefConnectError(err),
    );
  }

  private nextAddress(): void {
    this.at = (this.at + 1) % this.addresses.length;
  }

  private nextDelay(): number {
    return backoffDelay(this.opts.backoff, this.retries++, this.opts.random);
  }

  private scheduleReconnect(delay: number): void {
    this.state = 'waiting';
    this.retryTimer = this.opts.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.quitting) return;
      this.attempt(true).catch((err: Error) => {
        if (this.quitting) {
          this.finish(this.closeReason);
          return;
        }
        if (err instanceof ConnectError && err.final) {
          this.emit('fatal', err);
          this.finish(err.brief);
          return;
        }
        this.nextAddress();
        const next = this.nextDelay();
        const reason = err instanceof ConnectError ? err.brief : err.message;
        this.emit('retrying', { reason, attempt: this.retries, retryInMs: next });
        this.scheduleReconnect(next);
      });
    }, delay);
  }

  private finish(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimer('retryTimer');
    this.clearTimer('connectTimer');
    this.clearTimer('heartbeatTimer');
    this.failPending('the client is closed');
    for (const w of this.readyWaiters.splice(0)) w.reject(new NotConnectedError(`the client is closed: ${reason}`));
    for (const set of [...this.labelWaiters.values()]) for (const w of [...set]) w.reject(reason);
    this.emit('closed', { reason });
    this.markClosed();
  }

  private clearTimer(which: 'connectTimer' | 'retryTimer' | 'heartbeatTimer'): void {
    if (this[which] !== null) this.opts.timers.clearTimeout(this[which]);
    this[which] = null;
  }

  // A connection that went away without a FIN (a laptop lid, a pulled cable) looks alive until
  // something is sent on it; a ping after a silence finds out.
  private armHeartbeat(): void {
    const every = this.opts.heartbeatMs;
    if (every <= 0) return;
    this.heartbeatTimer = this.opts.timers.setTimeout(() => {
      this.heartbeatTimer = null;
      const socket = this.socket;
      if (this.state !== 'ready' || !socket) return;
      const silent = this.opts.now() - Math.max(this.lastHeard, this.out?.busy ? this.lastSent : 0);
      if (silent >= 2 * every) {
        socket.destroy(Object.assign(new Error('the server stopped answering'), { code: 'EHEARTBEAT' }));
        return;
      }
      if (silent >= every) void this.send({ type: 'ping' }, true, true);
      this.armHeartbeat();
    }, every);
    (this.heartbeatTimer as { unref?: () => void }).unref?.();
  }

  // ---- incoming ----

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.lastHeard = this.opts.now();
    this.reader.push(chunk);
    for (let item = this.reader.next(); item !== null; item = this.reader.next()) {
      if (item.kind === 'line') this.onLine(item.line.toString('utf8'));
      else if (item.kind === 'oversize') this.emit('warning', `skipped a line from the server longer than ${item.limit} bytes`);
      else if (item.kind === 'overflow') {
        socket.destroy(new Error('the server sent a line that never ends'));
        return;
      }
      if (socket !== this.socket) return; // a listener closed us
    }
  }

  private onLine(line: string): void {
    let event: ServerEvent;
    try {
      event = JSON.parse(line) as ServerEvent;
    } catch {
      this.emit('warning', 'skipped a line from the server that is not JSON');
      return;
    }
    if (event === null || typeof event !== 'object' || typeof event.type !== 'string') {
      this.emit('warning', 'skipped a JSON line from the server that is not an event');
      return;
    }
    const hs = this.handshake;
    if (hs) {
      this.onHandshakeEvent(hs, event);
      return;
    }
    this.onEvent(event);
  }

  private onEvent(event: ServerEvent): void {
    const { id: pendingId, p } = this.answering(event);
    const shown = this.track(event, p);
    if (shown !== null && !p?.quiet) {
      this.emit('event', shown, p ? { command: p.command, sentAt: p.sentAt, internal: p.internal } : undefined);
    }
    if (p && pendingId !== undefined) this.settle(event, p, pendingId);
  }

  /** The pending request an event answers. The server answers in order, so an error it could
   *  not tag with an id (the line did not parse) belongs to the oldest request waiting. */
  private answering(event: ServerEvent): { id?: number; p?: Pending } {
    const id = (event as { id?: RequestId }).id;
    if (typeof id === 'number' && this.pending.has(id)) return { id, p: this.pending.get(id) };
    if (event.type === 'error' && id === undefined && this.pending.size > 0) {
      const oldest = this.pending.keys().next().value as number;
      return { id: oldest, p: this.pending.get(oldest) };
    }
    return {};
  }

  /**
   * Updates what the client knows from one event. Returns the event to report, with
   * already-seen messages taken out, or null when there is nothing new to report.
   */
  private track(event: ServerEvent, p: Pending | undefined): ServerEvent | null {
    switch (event.type) {
      case 'message':
        // Said while the server's cluster was away: no number yet, and never shown twice.
        if (event.local) return (this.keepLocal(event), this.memberSaw(event.room, event.nick), event);
        return this.fresh(event.room, event.seq) && !this.cameBack(event) ? (this.memberSaw(event.room, event.nick), event) : null;
      case 'image':
        if (event.local) return (this.keepLocal(event), this.memberSaw(event.room, event.nick), event);
        return this.fresh(event.room, event.seq) && !this.cameBack(event) ? (this.memberSaw(event.room, event.nick), event) : null;
      case 'labels':
        if (!this.fresh(event.room, event.seq)) return null;
        this.gotLabels(event);
        return event;
      case 'ack':
        this.fresh(event.room, event.seq);
        return event;
      case 'history':
        return this.trackHistory(event, p);
      case 'joined':
        this.trackJoined(event, p);
        return event;
      case 'parted':
        if (event.self) this.forgetRoom(event.room);
        else this.rooms.get(event.room)?.members.delete(event.nick);
        return event;
      case 'nick':
        if (event.self) this.nick = event.nick;
        for (const r of this.rooms.values())
          if (r.members.delete(event.old)) r.members.add(event.nick);
        return event;
      case 'who': {
        const r = this.rooms.get(event.room);
        if (r && Array.isArray(event.members)) r.members = new Set(event.members);
        return event;
      }
      case 'topic': {
        const r = this.rooms.get(event.room);
        if (r) r.topic = event.topic;
        return event;
      }
      case 'bye':
        this.bye = event;
        return event;
      case 'notice':
        // The answer to a /register or /login that worked: a reconnect logs in again with it,
        // or the server would keep the registered nick from its own owner.
        if (p && !p.internal && (p.command.type === 'register' || p.command.type === 'login')) {
          const nick = p.command.type === 'login' ? p.command.nick : this.nick;
          if (nick !== undefined) this.account = { nick, password: p.command.password };
        }
        return event;
      default:
        return event;
    }
  }

  /** Records a message's seq; false if it was seen before. */
  private fresh(room: string, seq: number): boolean {
    if (!Number.isSafeInteger(seq)) return true;
    let seen = this.seen.get(room);
    if (!seen) this.seen.set(room, (seen = new SeenSeqs()));
    if (seen.has(seq)) return false;
    seen.add(seq);
    const state = this.rooms.get(room);
    if (state && seq > state.lastSeq) state.lastSeq = seq;
    return true;
  }

  private keepLocal(event: MessageEvent | ImageEvent): void {
    let keys = this.shownLocally.get(event.room);
    if (!keys) this.shownLocally.set(event.room, (keys = new Set()));
    // As many as a server keeps for its cluster (the oldest go first): a bound, not a leak.
    if (keys.size >= MAX_SHOWN_LOCALLY) keys.delete(keys.values().next().value!);
    keys.add(localEventKey(event));
  }

  /** A numbered message we were shown before, unnumbered: true, and it is forgotten. */
  private cameBack(event: MessageEvent | ImageEvent): boolean {
    const keys = this.shownLocally.get(event.room);
    if (!keys?.delete(localEventKey(event))) return false;
    if (keys.size === 0) this.shownLocally.delete(event.room);
    return true;
  }

  private memberSaw(room: string, nick: string): void {
    this.rooms.get(room)?.members.add(nick);
  }

  private trackHistory(event: EventOf<'history'>, p: Pending | undefined): ServerEvent | null {
    // History asked for by the user is old news on purpose: shown as it is, never deduplicated.
    if (p?.command.type === 'history' && !p.internal) {
      for (const m of Array.isArray(event.messages) ? event.messages : []) if (m?.type === 'labels') this.gotLabels(m);
      return event;
    }
    const messages = (Array.isArray(event.messages) ? event.messages : []).filter(
      (m: RoomEvent) => this.fresh(event.room, m.seq) && !(m?.type !== 'labels' && this.cameBack(m)),
    );
    for (const m of messages) if (m?.type === 'labels') this.gotLabels(m);
    const state = this.rooms.get(event.room);
    // Nothing at or below "last" can come later, kept or not: that is where a rejoin resumes;
    // unless more pages of this replay are to come (their messages stop short of "last").
    const end = event.messages?.length ? event.messages[event.messages.length - 1]!.seq : null;
    if (state && Number.isSafeInteger(event.last) && event.last > state.lastSeq && (end === null || end >= event.last)) state.lastSeq = event.last;
    return { ...event, messages };
  }

  private trackJoined(event: EventOf<'joined'>, p: Pending | undefined): void {
    if (!event.self) {
      this.memberSaw(event.room, event.nick);
      return;
    }
    let state = this.rooms.get(event.room);
    if (!state) {
      state = { name: event.room, lastSeq: 0, members: new Set(), topic: '' };
      this.joined.set(event.room, state);
    }
    state.members = new Set(Array.isArray(event.members) ? event.members : []);
    state.topic = event.topic ?? '';
    if (!p?.internal) this.current = event.room;
    if (typeof event.epoch === 'string') {
      // Another numbering: the server has said so (a notice) and sends the room as it is now,
      // all of it new to us.
      if (state.epoch !== undefined && state.epoch !== event.epoch) this.startCounting(event.room);
      state.epoch = event.epoch;
    }
    // The room's numbering is behind what we saw: the server restarted, or the room emptied and
    // was made anew. Its messages are all new to us, so fetch them and start counting afresh.
    if (typeof event.seq === 'number' && event.seq < state.lastSeq) {
      this.startCounting(event.room);
      if (event.seq > 0) void this.send({ type: 'history', room: event.room, after: 0, limit: 1_000_000 }, true, false);
    }
  }

  /** Forgets the room's numbering: what comes next is all new to us. */
  private startCounting(room: string): void {
    const state = this.rooms.get(room);
    if (state) state.lastSeq = 0;
    this.seen.get(room)?.clear();
    // Image ids are numbered by the server too, and a restarted one reuses them.
    this.labels.clear();
  }

  /** Keeps a bot answer for waitForLabels() and hands it to whoever waits for it. */
  private gotLabels(event: LabelsEvent): void {
    if (!Number.isSafeInteger(event.image)) return;
    this.labels.delete(event.image);
    this.labels.set(event.image, event);
    if (this.labels.size > LABELS_KEPT) this.labels.delete(this.labels.keys().next().value as number);
    for (const w of [...(this.labelWaiters.get(event.image) ?? [])]) w.resolve(event);
  }

  private forgetRoom(room: string): void {
    this.joined.delete(room);
    this.seen.delete(room);
    this.shownLocally.delete(room);
    if (this.current === room) this.current = [...this.rooms.keys()].pop() ?? null;
  }
}

/** Resolves true when the socket wants more, false when it closed first. */
function drained(socket: net.Socket): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (open: boolean) => (): void => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(open);
    };
    const onDrain = done(true);
    const onClose = done(false);
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

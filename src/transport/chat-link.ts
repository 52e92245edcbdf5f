/**
 * What every chat connection has in common, whatever carries it (a TCP socket in text or JSON
 * mode, a WebSocket): the bounded send queue flushed once per event-loop turn, flood control,
 * registration, image uploads, the greeting and registration deadlines, and the session's
 * lifecycle. Subclasses say how events are framed and how their transport reads and ends.
 *
 * Two rules keep one client from costing anyone else anything:
 * - Input over the flood budget is not dropped; the input is paused, so the excess waits in
 *   the client's own TCP buffers and comes in later at the allowed rate.
 * - Output is never waited for. It queues here, bounded in bytes (queue + the socket's own
 *   buffer); past the bound the client is disconnected ("SendQ exceeded") instead of the
 *   broadcast slowing down.
 */
import type { Socket } from 'node:net';
import type { Command } from '../protocol/commands.js';
import { protocolError, RoomcastError, type ErrorCode, type ProtocolError } from '../protocol/errors.js';
import type { EventOf, ServerEvent } from '../protocol/events.js';
import { Frame, type WireMode } from '../protocol/frame.js';
import { TokenBucket, type Clock } from '../hub/flood.js';
import type { Hub } from '../hub/hub.js';
import type { Link, Session } from '../hub/session.js';
import { deadlines, type DeadlineQueue, type Expiring, type Ticket } from './deadlines.js';
import { joinBatch, noteQueued, scheduleFlush, type Flushable } from './flush.js';

export interface ConnectionOptions {
  /** Longest text-mode line, in bytes. */
  maxLine: number;
  /** Longest JSON-mode line (or WebSocket text message), in bytes. */
  maxFrame: number;
  /** Largest image a JSON client may post (the raw bytes after an image header). */
  maxImageBytes: number;
  /** Bytes that may wait for a slow reader before it is disconnected. */
  maxSendQueue: number;
  /** Lines per second a client may send (0: no limit), and how many may come at once. */
  floodRate: number;
  floodBurst: number;
  /** How long a silent new connection is given to say it speaks JSON before it gets text. */
  greetDelay: number;
  /** A connection that is not a session by then (no successful hello) is closed (ms; 0: never). */
  registerTimeout: number;
  /** How long a closing connection may take to flush before it is cut (ms). */
  lingerMs: number;
  clock?: Clock;
}

export const CONNECTION_DEFAULTS: ConnectionOptions = {
  maxLine: 4096,
  maxFrame: 16384,
  maxImageBytes: 8 << 20,
  maxSendQueue: 1 << 20,
  floodRate: 20,
  floodBurst: 40,
  greetDelay: 150,
  registerTimeout: 120_000,
  lingerMs: 2000,
};

export type Transport = 'tcp' | 'websocket';

/** Why a link ended, for the transport's own goodbye (a WebSocket close code). */
export type EndCode = ErrorCode | 'QUIT' | null;

type ImageCommand = Extract<Command, { type: 'image' }>;

export interface LinkHooks {
  /** Called once, when the transport has closed. */
  closed(link: ChatLink, reason: string): void;
  /** A client was slowed down by flood control. */
  throttled?(link: ChatLink): void;
}

export abstract class ChatLink implements Link, Flushable, Expiring {
  abstract readonly transport: Transport;
  mode: WireMode = 'text';
  session: Session | null = null;
  reason = 'connection closed by the client';
  protected state: 'detect' | 'hello' | 'ready' | 'closing' = 'detect';
  protected readonly bucket: TokenBucket;
  /** Input is paused by flood control. */
  protected paused = false;
  /**
   * Output of this event-loop turn: null when nothing is queued (an idle link holds no array),
   * one Buffer for the common single frame (no array per delivery), else the frames in order.
   */
  private out: Buffer | Buffer[] | null = null;
  private outBytes = 0;
  /** The linger timer of a closing link. */
  private lingerTimer: NodeJS.Timeout | null = null;
  private pumpTimer: NodeJS.Timeout | null = null;
  /** The greeting or registration deadline, on a queue shared by all links. */
  private deadline: DeadlineQueue | null = null;
  private ticket: Ticket = 0;
  private pendingImage: ImageCommand | null = null;

  constructor(
    readonly socket: Socket,
    readonly peer: string,
    protected readonly hub: Hub,
    protected readonly opts: ConnectionOptions,
    protected readonly hooks: LinkHooks,
    /** Set when the connection is over a limit: it is told why in its own format, then closed. */
    protected readonly rejection: ProtocolError | null = null,
  ) {
    this.bucket = new TokenBucket(opts.floodRate, opts.floodBurst, opts.clock);
    socket.setNoDelay(true);
    // A session may stay silent for as long as it likes (reading is ordinary chat use), so a
    // peer that vanished without a FIN is found by keepalive probes after a minute's quiet.
    socket.setKeepAlive(true, 60_000);
  }

  // ---- what a transport provides ----

  /** The bytes of a frame in this link's format; null when it has none (an ack in text mode). */
  protected abstract encode(frame: Frame): Buffer | null;
  /** Ends the transport after the queued output (a FIN, or a WebSocket close frame). */
  protected abstract endTransport(code: EndCode, reason: string): void;
  protected abstract pauseInput(): void;
  protected abstract resumeInput(): void;
  /** Input is waiting to be handled. */
  protected abstract hasInput(): boolean;
  /** Handles one item of input (taking a flood token if it costs one); false if none is complete. */
  protected abstract nextInput(): boolean;
  /** The next `size` bytes of input are an image's (keep) or are to be skipped (not keep). */
  protected abstract expectImageBytes(size: number, keep: boolean): void;
  /** The greeting delay passed without a first line (TCP: text mode). */
  protected greetTimedOut(): void {}
  /** All buffered input has been handled. */
  protected drained(): void {}
  /** Output may still be written (a WebSocket that has sent its close frame may not). */
  protected get writable(): boolean {
    return !this.socket.destroyed;
  }

  // ---- Link ----

  send(frame: Frame): void {
    if (this.state === 'closing') return;
    const bytes = this.encode(frame);
    if (bytes !== null) this.enqueue(bytes);
  }

  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void {
    if (this.state === 'closing') return;
    if (bye) this.pushOut(this.encodeEvent({ type: 'bye', ...bye }));
    this.finish(bye?.reason ?? 'closed by the server', bye?.code ?? null);
  }

  protected closeWith(err: ProtocolError): void {
    this.close({ code: err.code, reason: err.message });
  }

  // ---- output ----

  /** Bytes of the transport's own (a WebSocket pong), queued like any event. */
  protected sendBytes(bytes: Buffer): void {
    if (this.state !== 'closing') this.enqueue(bytes);
  }

  private enqueue(bytes: Buffer): void {
    const queued = this.outBytes + bytes.length;
    if (queued > this.opts.maxSendQueue || queued + this.socket.writableLength > this.opts.maxSendQueue) {
      this.overflow(queued + this.socket.writableLength);
      return;
    }
    if (this.out === null) scheduleFlush(this);
    this.pushOut(bytes);
    noteQueued(bytes.length);
  }

  private pushOut(bytes: Buffer): void {
    const out = this.out;
    if (out === null) this.out = bytes;
    else if (Array.isArray(out)) out.push(bytes);
    else this.out = [out, bytes];
    this.outBytes += bytes.length;
  }

  flush(): void {
    const out = this.out;
    if (out === null || !this.writable) return;
    const bytes = this.outBytes;
    this.out = null;
    this.outBytes = 0;
    // One write per turn; several frames are joined (one copy, shared with other recipients of
    // the same frames). cork() + a write per frame (writev) measured half as fast: a stream
    // request object per frame costs more than copying a hundred bytes.
    this.socket.write(Array.isArray(out) ? joinBatch(out, bytes) : out);
  }

  private encodeEvent(event: ServerEvent): Buffer {
    return this.encode(new Frame(event)) ?? Buffer.alloc(0);
  }

  protected sendEvent(event: ServerEvent): void {
    this.send(new Frame(event));
  }

  private overflow(bytes: number): void {
    // What is queued will never be read in time; drop it and say why after what the socket holds.
    this.out = null;
    this.outBytes = 0;
    const err = protocolError('SENDQ_EXCEEDED', bytes);
    this.pushOut(this.encodeEvent({ type: 'bye', code: err.code, reason: err.message }));
    this.finish(`SendQ exceeded (${bytes} bytes queued)`, err.code);
  }

  /** Stops reading, detaches from the hub, writes what is queued, and ends the transport. */
  protected finish(reason: string, code: EndCode): void {
    this.state = 'closing';
    this.reason = reason;
    this.clearTimers();
    if (this.session) this.hub.detach(this.session, reason);
    // Keep reading (and discarding) so the peer's goodbye is seen and the socket closes promptly.
    this.paused = false;
    this.resumeInput();
    this.flush();
    this.endTransport(code, reason);
    // A peer that does not read cannot take even the goodbye: cut it after a while.
    this.lingerTimer = setTimeout(() => this.socket.destroy(), this.opts.lingerMs);
    this.lingerTimer.unref();
  }

  // ---- input ----

  /** Handles buffered input while the flood budget lasts. */
  protected pump(): void {
    this.pumpTimer = null;
    while (this.state !== 'closing' && this.hasInput()) {
      const wait = this.bucket.wait();
      if (wait > 0) {
        this.throttle(wait);
        return;
      }
      if (!this.nextInput()) break;
    }
    if (this.paused && this.state !== 'closing') {
      this.paused = false;
      this.resumeInput();
    }
    this.drained();
  }

  private throttle(wait: number): void {
    if (!this.paused) {
      this.paused = true;
      this.pauseInput();
      this.hooks.throttled?.(this);
    }
    this.pumpTimer = setTimeout(() => this.pump(), wait);
  }

  /** A parsed command from the client. */
  protected command(cmd: Command): void {
    if (cmd.type === 'image') this.startImage(cmd);
    else if (this.state === 'hello') this.hello(cmd);
    else this.hub.handle(this.session!, cmd);
  }

  /**
   * An image header: its `size` raw bytes follow, and are read (or, when refused, skipped
   * without being kept) before the next command, so the stream stays in step either way.
   */
  private startImage(cmd: ImageCommand): void {
    const max = this.opts.maxImageBytes;
    if (cmd.size < 0) {
      this.reject(new RoomcastError('BAD_MESSAGE', '"size" must be the number of bytes that follow'), cmd.id);
      return;
    }
    const detail = `${cmd.size} bytes; the limit is ${max} bytes`;
    if (cmd.size > max * 4) {
      this.reject(new RoomcastError('IMAGE_TOO_LARGE', detail), cmd.id);
      this.closeWith(protocolError('IMAGE_FAR_TOO_LARGE', `${cmd.size} bytes`));
      return;
    }
    if (cmd.size > max || this.state !== 'ready') {
      this.reject(new RoomcastError(this.state === 'ready' ? 'IMAGE_TOO_LARGE' : 'NOT_REGISTERED', detail), cmd.id);
      this.expectImageBytes(cmd.size, false);
      return;
    }
    this.pendingImage = cmd;
    if (cmd.size === 0) this.endImage(Buffer.alloc(0));
    else this.expectImageBytes(cmd.size, true);
  }

  /** The bytes announced by the image header have come. */
  protected endImage(data: Buffer): void {
    const cmd = this.pendingImage;
    this.pendingImage = null;
    if (cmd && this.session) this.hub.handle(this.session, { ...cmd, data });
  }

  /** An image header whose bytes never came as announced; the client hears why. */
  protected dropImage(err: RoomcastError): void {
    const cmd = this.pendingImage;
    this.pendingImage = null;
    if (cmd) this.reject(err, cmd.id);
  }

  private hello(cmd: Command): void {
    if (cmd.type !== 'hello') {
      this.reject(new RoomcastError('NOT_REGISTERED'), cmd.id);
      return;
    }
    if (this.refused()) return;
    try {
      this.attach({ nick: cmd.nick, rooms: cmd.rooms });
    } catch (err) {
      this.reject(err, cmd.id);
    }
  }

  /**
   * The connection becomes a session (a text connection at its welcome, JSON and WebSocket at a
   * successful hello). The registration deadline is for connections that never get this far;
   * a session's silence is a reader's, and dead peers are found by keepalive and the send queue.
   */
  protected attach(hello?: { nick?: string; rooms?: string[] }): void {
    this.session = this.hub.attach(this, hello);
    this.state = 'ready';
    this.disarm();
  }

  /** An over-limit connection learns why, in the format it speaks, and is closed. */
  protected refused(): boolean {
    if (!this.rejection) return false;
    // The error line ("! CODE: ..." in text mode) carries the code; the bye then closes.
    this.sendEvent({ type: 'error', code: this.rejection.code, message: this.rejection.message });
    this.closeWith(this.rejection);
    return true;
  }

  protected reject(err: unknown, id?: Command['id']): void {
    if (this.session) {
      this.hub.fail(this.session, err, id);
      return;
    }
    const e = err instanceof RoomcastError ? err : new RoomcastError('INTERNAL', String(err));
    this.sendEvent({ type: 'error', id: id ?? e.id, code: e.code, message: e.message });
  }

  // ---- deadlines ----

  /**
   * The format is known: the greeting deadline is over. A connection that must still say hello
   * (JSON, WebSocket) gets the registration deadline; a text one is a session from its welcome.
   */
  protected detected(): void {
    this.disarm();
    if (this.state === 'hello' && this.opts.registerTimeout > 0 && !this.rejection) this.arm(this.opts.registerTimeout);
  }

  protected arm(delay: number): void {
    this.deadline = deadlines(delay);
    this.ticket = this.deadline.add(this);
  }

  protected disarm(): void {
    this.deadline?.cancel(this.ticket);
    this.deadline = null;
  }

  /** The greeting or registration deadline has passed (called by the DeadlineQueue). */
  expire(): void {
    this.deadline = null;
    if (this.state === 'detect') {
      this.detected();
      this.greetTimedOut();
    } else if (this.session === null && this.state !== 'closing') {
      const ms = this.opts.registerTimeout;
      this.closeWith(protocolError('REGISTRATION_TIMEOUT', ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`));
    }
  }

  protected clearTimers(): void {
    this.disarm();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.lingerTimer = this.pumpTimer = null;
  }

  /** The transport has closed: the session goes, and the owner hears of it once. */
  protected closed(): void {
    this.clearTimers();
    if (this.session) this.hub.detach(this.session, this.reason);
    this.state = 'closing';
    this.hooks.closed(this, this.reason);
  }
}

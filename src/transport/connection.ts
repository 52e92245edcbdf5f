/**
 * One TCP chat connection: protocol detection (text or JSON), framing, flood control and a
 * bounded send queue. It is the hub's Link for this socket.
 *
 * Two rules keep one client from costing anyone else anything:
 * - Input over the flood budget is not dropped; the socket is paused, so the excess waits in
 *   the client's own TCP buffers and comes in later at the allowed rate.
 * - Output is never waited for. It queues here, bounded in bytes (queue + the socket's own
 *   buffer); past the bound the client is disconnected ("SendQ exceeded") instead of the
 *   broadcast slowing down.
 */
import type { Socket } from 'node:net';
import { parseJsonLine, parseTextLine, isHelloLine, type Command } from '../protocol/commands.js';
import { protocolError, RoomcastError, type ProtocolError } from '../protocol/errors.js';
import type { EventOf, ServerEvent } from '../protocol/events.js';
import { Frame, type WireMode } from '../protocol/frame.js';
import { LineReader } from '../protocol/line-reader.js';
import { decodeUtf8 } from '../protocol/text.js';
import { TokenBucket, type Clock } from '../hub/flood.js';
import type { Hub } from '../hub/hub.js';
import type { Link, Session } from '../hub/session.js';
import { deadlines, type DeadlineQueue, type Expiring, type Ticket } from './deadlines.js';
import { joinBatch, scheduleFlush } from './flush.js';

export interface ConnectionOptions {
  /** Longest text-mode line, in bytes. */
  maxLine: number;
  /** Longest JSON-mode line, in bytes. */
  maxFrame: number;
  /** Largest image a JSON client may post (the raw bytes after an image header line). */
  maxImageBytes: number;
  /** Bytes that may wait for a slow reader before it is disconnected. */
  maxSendQueue: number;
  /** Lines per second a client may send (0: no limit), and how many may come at once. */
  floodRate: number;
  floodBurst: number;
  /** How long a silent new connection is given to say it speaks JSON before it gets text. */
  greetDelay: number;
  /** A connection that has sent nothing valid by then is closed (ms; 0: never). */
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

type State = 'detect' | 'hello' | 'ready' | 'closing';

/** The socket's back-reference to its connection, for the shared socket listeners. */
const OWNER = Symbol('roomcast.connection');
type OwnedSocket = Socket & { [OWNER]: Connection };

export interface ConnectionHooks {
  /** Called once, when the socket has closed. */
  closed(c: Connection, reason: string): void;
  /** A client was slowed down by flood control. */
  throttled?(c: Connection): void;
}

export class Connection implements Link, Expiring {
  mode: WireMode = 'text';
  session: Session | null = null;
  reason = 'connection closed by the client';
  private state: State = 'detect';
  private readonly reader: LineReader;
  private readonly bucket: TokenBucket;
  /** Output of this event-loop turn; null when nothing is queued, so an idle connection holds no array. */
  private out: Buffer[] | null = null;
  private outBytes = 0;
  /** The linger timer of a closing connection. */
  private timer: NodeJS.Timeout | null = null;
  /** The greeting or registration deadline, on a queue shared by all connections. */
  private deadline: DeadlineQueue | null = null;
  private ticket: Ticket = 0;
  private valid = false;
  private paused = false;
  private pendingImage: Extract<Command, { type: 'image' }> | null = null;
  /** The client has sent FIN (the server listens with allowHalfOpen, so it is ours to end). */
  private ended = false;
  private pumpTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: Socket,
    readonly peer: string,
    private readonly hub: Hub,
    private readonly opts: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
    /** Set when the connection is over a limit: it is told why in its own format, then closed. */
    private readonly rejection: ProtocolError | null = null,
  ) {
    this.reader = new LineReader(opts.maxLine);
    this.bucket = new TokenBucket(opts.floodRate, opts.floodBurst, opts.clock);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    // The listeners are shared by every connection and find it through the socket: four closures
    // (and their context) per connection add up at ten thousand idle ones.
    (socket as OwnedSocket)[OWNER] = this;
    socket.on('data', Connection.onSocketData);
    socket.on('error', Connection.onSocketError);
    socket.on('end', Connection.onSocketEnd);
    socket.on('close', Connection.onSocketClose);
    this.arm(opts.greetDelay);
  }

  private static onSocketData(this: Socket, chunk: Buffer): void {
    (this as OwnedSocket)[OWNER].onData(chunk);
  }

  private static onSocketError(this: Socket, err: NodeJS.ErrnoException): void {
    const c = (this as OwnedSocket)[OWNER];
    if (c.state !== 'closing') c.reason = err.code === 'ECONNRESET' ? 'connection reset' : err.message;
  }

  private static onSocketEnd(this: Socket): void {
    (this as OwnedSocket)[OWNER].onEnd();
  }

  private static onSocketClose(this: Socket): void {
    (this as OwnedSocket)[OWNER].onClose();
  }

  // ---- Link ----

  send(frame: Frame): void {
    if (this.state === 'closing') return;
    const bytes = frame.bytes(this.mode);
    if (bytes !== null) this.enqueue(bytes);
  }

  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void {
    if (this.state === 'closing') return;
    if (bye) this.pushOut(this.encode({ type: 'bye', ...bye }));
    this.finish(bye?.reason ?? 'closed by the server');
  }

  private closeWith(err: ProtocolError): void {
    this.close({ code: err.code, reason: err.message });
  }

  // ---- output ----

  private enqueue(bytes: Buffer): void {
    const queued = this.outBytes + bytes.length;
    if (queued > this.opts.maxSendQueue || queued + this.socket.writableLength > this.opts.maxSendQueue) {
      this.overflow(queued + this.socket.writableLength);
      return;
    }
    if (this.out === null) scheduleFlush(this);
    this.pushOut(bytes);
  }

  private pushOut(bytes: Buffer): void {
    if (this.out === null) this.out = [bytes];
    else this.out.push(bytes);
    this.outBytes += bytes.length;
  }

  flush(): void {
    const out = this.out;
    if (out === null || this.socket.destroyed) return;
    const bytes = this.outBytes;
    this.out = null;
    this.outBytes = 0;
    // One write per turn; several frames are joined (one copy, shared with other recipients of
    // the same frames). cork() + a write per frame (writev) measured half as fast: a stream
    // request object per frame costs more than copying a hundred bytes.
    this.socket.write(joinBatch(out, bytes));
  }

  private encode(event: ServerEvent): Buffer {
    return new Frame(event).bytes(this.mode) ?? Buffer.alloc(0);
  }

  private sendEvent(event: ServerEvent): void {
    this.send(new Frame(event));
  }

  private overflow(bytes: number): void {
    // What is queued will never be read in time; drop it and say why after what the socket holds.
    this.out = null;
    this.outBytes = 0;
    const err = protocolError('SENDQ_EXCEEDED', bytes);
    this.pushOut(this.encode({ type: 'bye', code: err.code, reason: err.message }));
    this.finish(`SendQ exceeded (${bytes} bytes queued)`);
  }

  /** Stops reading, detaches from the hub, writes what is queued, and ends the socket. */
  private finish(reason: string): void {
    this.state = 'closing';
    this.reason = reason;
    this.clearTimers();
    if (this.session) this.hub.detach(this.session, reason);
    // Keep reading (and discarding) so the peer's FIN is seen and the socket closes promptly.
    this.paused = false;
    this.socket.resume();
    this.flush();
    this.socket.end();
    // A peer that does not read cannot take even the goodbye: cut it after a while.
    this.timer = setTimeout(() => this.socket.destroy(), this.opts.lingerMs);
    this.timer.unref();
  }

  // ---- input ----

  private onData(chunk: Buffer): void {
    if (this.state === 'closing') return;
    this.reader.push(chunk);
    if (!this.paused) this.pump();
  }

  /** Handles buffered frames while the flood budget lasts. */
  private pump(): void {
    this.pumpTimer = null;
    while (this.state !== 'closing' && this.reader.buffered > 0) {
      const wait = this.bucket.wait();
      if (wait > 0) {
        this.throttle(wait);
        return;
      }
      const item = this.reader.next();
      if (item === null) break;
      switch (item.kind) {
        case 'line':
          this.bucket.take();
          this.onLine(item.line);
          break;
        case 'oversize':
          this.bucket.take();
          this.reject(new RoomcastError(this.mode === 'json' ? 'FRAME_TOO_LARGE' : 'LINE_TOO_LONG', item.limit));
          break;
        case 'overflow':
          this.closeWith(protocolError('LINE_NEVER_ENDS', item.limit));
          return;
        case 'bytes':
          this.endImage(item.data);
          break;
      }
    }
    if (this.paused && this.state !== 'closing') {
      this.paused = false;
      this.socket.resume();
    }
    if (this.ended && this.state !== 'closing') this.finish(this.reason);
  }

  /** FIN from the client: lines that flood control is still holding back are handled first. */
  private onEnd(): void {
    this.ended = true;
    if (!this.paused && this.state !== 'closing') this.finish(this.reason);
  }

  private throttle(wait: number): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
      this.hooks.throttled?.(this);
    }
    this.pumpTimer = setTimeout(() => this.pump(), wait);
  }

  private onLine(bytes: Buffer): void {
    const line = decodeUtf8(bytes);
    if (this.state === 'detect') {
      this.detected();
      if (isHelloLine(line)) {
        this.mode = 'json';
        this.reader.maxLine = this.opts.maxFrame;
        this.state = 'hello';
      } else {
        this.startText();
        if ((this.state as State) !== 'ready') return; // refused: over a limit
      }
    }
    let cmd: Command | null;
    try {
      cmd = this.mode === 'json' ? parseJsonLine(line) : parseTextLine(line);
    } catch (err) {
      this.reject(err);
      return;
    }
    if (cmd === null) return;
    if (cmd.type === 'image') this.startImage(cmd);
    else if (this.state === 'hello') this.hello(cmd);
    else {
      this.markValid();
      this.hub.handle(this.session!, cmd);
    }
  }

  /**
   * An image header line: its `size` raw bytes follow, and are read (or, when refused, skipped
   * without being kept) before the next line, so the stream stays in step either way.
   */
  private startImage(cmd: Extract<Command, { type: 'image' }>): void {
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
      this.reader.expectBytes(cmd.size, false);
      return;
    }
    this.markValid();
    this.pendingImage = cmd;
    if (cmd.size === 0) this.endImage(Buffer.alloc(0));
    else this.reader.expectBytes(cmd.size);
  }

  private endImage(data: Buffer): void {
    const cmd = this.pendingImage;
    this.pendingImage = null;
    if (cmd && this.session) this.hub.handle(this.session, { ...cmd, data });
  }

  private hello(cmd: Command): void {
    if (cmd.type !== 'hello') {
      this.reject(new RoomcastError('NOT_REGISTERED'), cmd.id);
      return;
    }
    if (this.refused()) return;
    try {
      this.session = this.hub.attach(this, { nick: cmd.nick, rooms: cmd.rooms });
      this.state = 'ready';
      this.markValid();
    } catch (err) {
      this.reject(err, cmd.id);
    }
  }

  private startText(): void {
    this.mode = 'text';
    if (this.refused()) return;
    this.session = this.hub.attach(this);
    this.state = 'ready';
  }

  /** An over-limit connection learns why, in the format it speaks, and is closed. */
  private refused(): boolean {
    if (!this.rejection) return false;
    // The error line ("! CODE: ..." in text mode) carries the code; the bye then closes.
    this.sendEvent({ type: 'error', code: this.rejection.code, message: this.rejection.message });
    this.closeWith(this.rejection);
    return true;
  }

  private reject(err: unknown, id?: Command['id']): void {
    if (this.session) {
      this.hub.fail(this.session, err, id);
      return;
    }
    const e = err instanceof RoomcastError ? err : new RoomcastError('INTERNAL', String(err));
    this.sendEvent({ type: 'error', id: id ?? e.id, code: e.code, message: e.message });
  }

  /** The format is known: the greeting timer gives way to the registration timer. */
  private detected(): void {
    this.disarm();
    if (this.opts.registerTimeout > 0 && !this.rejection) this.arm(this.opts.registerTimeout);
  }

  private markValid(): void {
    if (this.valid) return;
    this.valid = true;
    this.disarm();
  }

  private arm(delay: number): void {
    this.deadline = deadlines(delay);
    this.ticket = this.deadline.add(this);
  }

  private disarm(): void {
    this.deadline?.cancel(this.ticket);
    this.deadline = null;
  }

  /** The greeting or registration deadline has passed (called by the DeadlineQueue). */
  expire(): void {
    this.deadline = null;
    if (this.state === 'detect') {
      this.detected();
      this.startText();
    } else if (!this.valid && this.state !== 'closing') {
      const ms = this.opts.registerTimeout;
      this.closeWith(protocolError('REGISTRATION_TIMEOUT', ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`));
    }
  }

  private clearTimers(): void {
    this.disarm();
    if (this.timer) clearTimeout(this.timer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.timer = this.pumpTimer = null;
  }

  private onClose(): void {
    this.clearTimers();
    if (this.session) this.hub.detach(this.session, this.reason);
    this.state = 'closing';
    this.hooks.closed(this, this.reason);
  }
}

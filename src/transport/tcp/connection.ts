/**
 * One TCP chat connection: protocol detection (text, JSON, or an HTTP request on a shared
 * port) and line framing. It is the hub's Link for this socket, and owns the parts it shares
 * with WebSocket connections (chat-link.ts): a send queue, a flood gate, registration (with
 * the registration deadline of a JSON connection) and image uploads. The greeting deadline,
 * after which a silent connection gets text, is its own.
 */
import type { Socket } from 'node:net';
import { parseJsonLine, parseTextLine, isHelloLine, type Command } from '../../protocol/commands.js';
import { protocolError, RoomcastError, type ProtocolError } from '../../protocol/errors.js';
import { Frame, type WireMode } from '../../protocol/frame.js';
import type { EventOf } from '../../protocol/events.js';
import { LineReader } from '../../protocol/line-reader.js';
import { decodeUtf8 } from '../../protocol/text.js';
import type { Hub } from '../../hub/hub.js';
import type { Session } from '../../hub/session.js';
import type { ChatLink, LinkHooks } from '../chat-link.js';
import { deadlines, NO_TICKET, type Expiring, type Ticket } from '../deadlines.js';
import { FloodGate, type GatedInput } from '../flood-gate.js';
import { ImageUpload, type ImageSource } from '../image-upload.js';
import type { ConnectionOptions } from '../options.js';
import { Registration } from '../registration.js';
import { SendQueue, type SendQueueOwner } from '../send-queue.js';
import { classifyFirstBytes, isRequestLine } from '../sniff.js';

/** The socket's back-reference to its connection, for the shared socket listeners. */
const OWNER = Symbol('roomcast.connection');
type OwnedSocket = Socket & { [OWNER]?: Connection };

export interface ConnectionHooks extends LinkHooks<Connection> {
  /**
   * Set when HTTP shares the port: the first bytes were an HTTP request line. The connection
   * has let go of the socket; `head` is what it read, to be put back before the HTTP parser.
   */
  http?(c: Connection, head: Buffer): void;
  /**
   * Set when the server speaks TLS: the first bytes were a TLS handshake. The connection has
   * let go of the socket, as for http(); the server wraps it and makes a connection inside.
   */
  tls?(c: Connection, head: Buffer): void;
  /** Set with --tls-only: the one line a clear-text chat client gets before it is closed. */
  clearTextRefused?: string;
}

export class Connection implements ChatLink, GatedInput, SendQueueOwner, ImageSource, Expiring {
  mode: WireMode = 'text';
  reason = 'connection closed by the client';
  private readonly queue: SendQueue;
  private readonly gate: FloodGate;
  private readonly registration: Registration;
  /** Made at the first image header: most connections never post one. */
  private upload: ImageUpload | null = null;
  private readonly reader: LineReader;
  /**
   * The greeting deadline, armed while the first line has not shown whether this is text or
   * JSON: a connection still silent when it passes gets text.
   */
  private greeting: Ticket;
  private closing = false;
  /** The client has sent FIN (the server listens with allowHalfOpen, so it is ours to end). */
  private ended = false;
  /** The port is shared with HTTP and the first bytes have not yet shown which this is. */
  private sniffing: boolean;
  /** First bytes held back while they may still be an HTTP request line. */
  private head: Buffer | null = null;
  /**
   * Greeted as text after a silence, on a port shared with HTTP: a browser's speculative
   * (preconnected) socket looks exactly like that until its request comes.
   */
  private greetedSilent = false;

  constructor(
    readonly socket: Socket,
    readonly peer: string,
    hub: Hub,
    private readonly opts: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
    /** Set when the connection is over a limit: it is told why in its own format, then closed. */
    rejection: ProtocolError | null = null,
  ) {
    this.queue = new SendQueue(socket, opts.maxSendQueue, this);
    this.gate = new FloodGate(opts.floodRate, opts.floodBurst, opts.clock, this, hub.intake);
    this.registration = new Registration(hub, this, opts.registerTimeout, rejection);
    this.reader = new LineReader(opts.maxLine);
    this.sniffing = hooks.http !== undefined || hooks.tls !== undefined;
    socket.setNoDelay(true);
    // A session may stay silent for as long as it likes (reading is ordinary chat use), so a
    // peer that vanished without a FIN is found by keepalive probes after a minute's quiet.
    socket.setKeepAlive(true, 60_000);
    // The listeners are shared by every connection and find it through the socket: four closures
    // (and their context) per connection add up at ten thousand idle ones.
    const owned: OwnedSocket = socket;
    owned[OWNER] = this;
    socket.on('data', Connection.onSocketData);
    socket.on('error', Connection.onSocketError);
    socket.on('end', Connection.onSocketEnd);
    socket.on('close', Connection.onSocketClose);
    this.greeting = deadlines(opts.greetDelay).add(this);
  }

  private static onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[OWNER]?.onData(chunk);
  }

  private static onSocketError(this: OwnedSocket, err: NodeJS.ErrnoException): void {
    const c = this[OWNER];
    if (c && !c.closing) c.reason = err.code === 'ECONNRESET' ? 'connection reset' : err.message;
  }

  private static onSocketEnd(this: OwnedSocket): void {
    this[OWNER]?.onEnd();
  }

  private static onSocketClose(this: OwnedSocket): void {
    this[OWNER]?.onClose();
  }

  get session(): Session | null {
    return this.registration.session;
  }

  // ---- output ----

  send(frame: Frame): void {
    if (this.closing) return;
    const bytes = frame.bytes(this.mode);
    if (bytes !== null) this.queue.push(bytes);
  }

  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void {
    if (this.closing) return;
    if (bye) this.lastWord(bye);
    this.finish(bye?.reason ?? 'closed by the server');
  }

  sendqExceeded(bytes: number): void {
    const err = protocolError('SENDQ_EXCEEDED', bytes);
    this.lastWord({ code: err.code, reason: err.message });
    this.finish(`SendQ exceeded (${bytes} bytes queued)`);
  }

  /** The goodbye goes after what is queued, past the queue's bound. */
  private lastWord(bye: Omit<EventOf<'bye'>, 'type'>): void {
    const bytes = new Frame({ type: 'bye', ...bye }).bytes(this.mode);
    if (bytes !== null) this.queue.pushLast(bytes);
  }

  /** Stops reading, detaches from the hub, writes what is queued, and sends FIN. */
  private finish(reason: string): void {
    this.closing = true;
    this.reason = reason;
    this.endGreeting();
    this.gate.stop();
    this.registration.end(reason);
    // Keep reading (and discarding) so the peer's goodbye is seen and the socket closes promptly.
    this.socket.resume();
    this.queue.flush();
    this.socket.end();
    this.queue.linger(this.opts.lingerMs);
  }

  /** The socket has closed: the session goes, and the owner hears of it once. */
  private onClose(): void {
    this.closing = true;
    this.endGreeting();
    this.gate.stop();
    this.registration.end(this.reason);
    this.hooks.closed(this, this.reason);
  }

  // ---- input (GatedInput: the flood gate pulls lines one at a time) ----

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    if (this.sniffing) {
      const head = this.sniff(chunk);
      if (head === null) return;
      chunk = head;
    }
    this.reader.push(chunk);
    this.gate.arrived();
  }

  hasInput(): boolean {
    return !this.closing && this.reader.buffered > 0;
  }

  nextInput(): boolean {
    const item = this.reader.next();
    if (item === null) return false;
    switch (item.kind) {
      case 'line':
        this.gate.take();
        this.onLine(item.line);
        break;
      case 'oversize':
        this.gate.take();
        this.registration.reject(new RoomcastError(this.mode === 'json' ? 'FRAME_TOO_LARGE' : 'LINE_TOO_LONG', item.limit));
        break;
      case 'overflow': {
        const err = protocolError('LINE_NEVER_ENDS', item.limit);
        this.close({ code: err.code, reason: err.message });
        break;
      }
      case 'bytes':
        this.upload?.end(item.data);
        break;
    }
    return true;
  }

  pauseInput(flood: boolean): void {
    this.socket.pause();
    if (flood) this.hooks.throttled?.(this);
  }

  resumeInput(): void {
    this.socket.resume();
  }

  /** FIN after the last line: lines that flood control was still holding back are handled first. */
  drained(): void {
    if (this.ended && !this.closing) this.finish(this.reason);
  }

  expectImageBytes(size: number, keep: boolean): void {
    this.reader.expectBytes(size, keep);
  }

  /**
   * On a port shared with HTTP, holds the first bytes until they show what they are. Returns
   * what the line reader may take once they are chat; null while they are held back, or when
   * they were handed over to HTTP.
   */
  private sniff(chunk: Buffer): Buffer | null {
    const head = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
    this.head = null;
    const kind = classifyFirstBytes(head);
    if (kind === 'undecided') {
      this.head = head;
      return null;
    }
    if (kind === 'http' && this.hooks.http) this.handOver(head, this.hooks.http);
    else if (kind === 'tls' && this.hooks.tls) this.handOver(head, this.hooks.tls);
    else if (kind === 'tls') this.finish('a TLS handshake, and this server was started without --tls');
    else {
      this.sniffing = false;
      if (!this.refuseClearText()) return head;
    }
    return null;
  }

  /** Under --tls-only a clear-text chat client is told how to connect, and closed: true then. */
  private refuseClearText(): boolean {
    const line = this.hooks.clearTextRefused;
    if (line === undefined || this.closing) return false;
    this.endGreeting();
    this.queue.pushLast(Buffer.from(`${line}\n`));
    this.finish('clear text on a --tls-only server');
    return true;
  }

  /** The socket is an HTTP (or TLS) client's: this connection lets go of it without a word. */
  private handOver(head: Buffer, to: (c: Connection, head: Buffer) => void): void {
    const socket: OwnedSocket = this.socket;
    this.sniffing = false;
    this.endGreeting();
    this.closing = true;
    socket.off('data', Connection.onSocketData);
    socket.off('error', Connection.onSocketError);
    socket.off('end', Connection.onSocketEnd);
    socket.off('close', Connection.onSocketClose);
    delete socket[OWNER];
    to(this, head);
  }

  private onEnd(): void {
    this.ended = true;
    if (this.head !== null) {
      // FIN ends any hope of a request line: what was held back is chat input like any other.
      const head = this.head;
      this.head = null;
      this.sniffing = false;
      this.reader.push(head);
    }
    if (!this.gate.paused && !this.closing) this.finish(this.reason);
  }

  /** The greeting deadline passed without a first line: the connection gets text. */
  expire(): void {
    if (!this.detecting || this.closing) return;
    // A busy event loop runs its timers before it reads its sockets, so what the client sent in
    // time (a TLS handshake, a request line, a hello) may be waiting unread: it is read first,
    // in this turn's poll, and only if nothing came is the connection taken for a silent one.
    const ticket = this.greeting;
    setImmediate(() => {
      if (this.greeting === ticket && !this.closing) this.greetSilent();
    });
  }

  private greetSilent(): void {
    this.greeting = NO_TICKET;
    this.greetedSilent = this.sniffing;
    this.sniffing = false;
    if (this.refuseClearText()) return;
    this.startText();
    // Bytes that might have become a request line were a slow typist's after all.
    const head = this.head;
    if (head !== null) {
      this.head = null;
      this.onData(head);
    }
  }

  private onLine(bytes: Buffer): void {
    const line = decodeUtf8(bytes);
    if (this.greetedSilent) {
      this.greetedSilent = false;
      // Too late for HTTP (it has had the welcome), but its request is not a chat message.
      if (isRequestLine(line)) {
        this.finish('an HTTP request after the greeting delay');
        return;
      }
    }
    if (this.detecting) {
      this.endGreeting();
      if (isHelloLine(line)) {
        this.mode = 'json';
        this.reader.maxLine = this.opts.maxFrame;
        this.registration.awaitHello();
      } else if (!this.startText()) return; // refused: over a limit
    }
    let cmd: Command | null;
    try {
      cmd = this.mode === 'json' ? parseJsonLine(line) : parseTextLine(line);
    } catch (err) {
      this.registration.reject(err);
      return;
    }
    if (cmd === null) return;
    if (cmd.type === 'image') (this.upload ??= new ImageUpload(this.opts.maxImageBytes, this.registration, this)).start(cmd);
    else this.registration.handle(cmd);
  }

  private get detecting(): boolean {
    return this.greeting !== NO_TICKET;
  }

  private endGreeting(): void {
    if (this.greeting === NO_TICKET) return;
    deadlines(this.opts.greetDelay).cancel(this.greeting);
    this.greeting = NO_TICKET;
  }

  /** A text connection is a session from its welcome; false when it was refused. */
  private startText(): boolean {
    this.mode = 'text';
    return this.registration.attachNow();
  }
}

/**
 * One TCP chat connection: protocol detection (text, JSON, or an HTTP request on a shared
 * port) and line framing. It is the hub's Link for this socket; the send queue, flood control
 * and registration it shares with WebSocket connections live in ChatLink.
 */
import type { Socket } from 'node:net';
import { parseJsonLine, parseTextLine, isHelloLine, type Command } from '../../protocol/commands.js';
import { protocolError, RoomcastError, type ProtocolError } from '../../protocol/errors.js';
import type { Frame } from '../../protocol/frame.js';
import { LineReader } from '../../protocol/line-reader.js';
import { decodeUtf8 } from '../../protocol/text.js';
import type { Hub } from '../../hub/hub.js';
import { ChatLink, type ConnectionOptions, type LinkHooks } from '../chat-link.js';
import { classifyFirstBytes, isRequestLine } from '../sniff.js';

export { CONNECTION_DEFAULTS, type ConnectionOptions } from '../chat-link.js';

/** The socket's back-reference to its connection, for the shared socket listeners. */
const OWNER = Symbol('roomcast.connection');
type OwnedSocket = Socket & { [OWNER]?: Connection };

export interface ConnectionHooks extends LinkHooks {
  closed(c: Connection, reason: string): void;
  throttled?(c: Connection): void;
  /**
   * Set when HTTP shares the port: the first bytes were an HTTP request line. The connection
   * has let go of the socket; `head` is what it read, to be put back before the HTTP parser.
   */
  http?(c: Connection, head: Buffer): void;
}

export class Connection extends ChatLink {
  readonly transport = 'tcp';
  private readonly reader: LineReader;
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
    socket: Socket,
    peer: string,
    hub: Hub,
    opts: ConnectionOptions,
    protected override readonly hooks: ConnectionHooks,
    rejection: ProtocolError | null = null,
  ) {
    super(socket, peer, hub, opts, hooks, rejection);
    this.reader = new LineReader(opts.maxLine);
    this.sniffing = hooks.http !== undefined;
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
    (this as OwnedSocket)[OWNER]!.onData(chunk);
  }

  private static onSocketError(this: Socket, err: NodeJS.ErrnoException): void {
    const c = (this as OwnedSocket)[OWNER]!;
    if (c.state !== 'closing') c.reason = err.code === 'ECONNRESET' ? 'connection reset' : err.message;
  }

  private static onSocketEnd(this: Socket): void {
    (this as OwnedSocket)[OWNER]!.onEnd();
  }

  private static onSocketClose(this: Socket): void {
    (this as OwnedSocket)[OWNER]!.closed();
  }

  // ---- ChatLink ----

  protected encode(frame: Frame): Buffer | null {
    return frame.bytes(this.mode);
  }

  protected endTransport(): void {
    this.socket.end();
  }

  protected pauseInput(): void {
    this.socket.pause();
  }

  protected resumeInput(): void {
    this.socket.resume();
  }

  protected hasInput(): boolean {
    return this.reader.buffered > 0;
  }

  protected nextInput(): boolean {
    const item = this.reader.next();
    if (item === null) return false;
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
        break;
      case 'bytes':
        this.endImage(item.data);
        break;
    }
    return true;
  }

  protected expectImageBytes(size: number, keep: boolean): void {
    this.reader.expectBytes(size, keep);
  }

  protected override greetTimedOut(): void {
    this.greetedSilent = this.sniffing;
    this.sniffing = false;
    this.startText();
    // Bytes that might have become a request line were a slow typist's after all.
    const head = this.head;
    if (head !== null) {
      this.head = null;
      this.onData(head);
    }
  }

  /** FIN after the last line: lines that flood control is still holding back are handled first. */
  protected override drained(): void {
    if (this.ended && this.state !== 'closing') this.finish(this.reason, null);
  }

  // ---- input ----

  private onData(chunk: Buffer): void {
    if (this.state === 'closing') return;
    if (this.sniffing) {
      const head = this.sniff(chunk);
      if (head === null) return;
      chunk = head;
    }
    this.reader.push(chunk);
    if (!this.paused) this.pump();
  }

  /**
   * On a port shared with HTTP, holds the first bytes until they show what they are. Returns
   * what the line reader may take once they are chat; null while they are held back, or when
   * they were handed over to HTTP.
   */
  private sniff(chunk: Buffer): Buffer | null {
    const head = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
    this.head = null;
    switch (classifyFirstBytes(head)) {
      case 'chat':
        this.sniffing = false;
        return head;
      case 'undecided':
        this.head = head;
        return null;
      case 'http':
        this.handOver(head);
        return null;
    }
  }

  /** The socket is an HTTP client's: this connection lets go of it without a word. */
  private handOver(head: Buffer): void {
    const socket = this.socket as OwnedSocket;
    this.sniffing = false;
    this.disarm();
    this.state = 'closing';
    socket.off('data', Connection.onSocketData);
    socket.off('error', Connection.onSocketError);
    socket.off('end', Connection.onSocketEnd);
    socket.off('close', Connection.onSocketClose);
    delete socket[OWNER];
    this.hooks.http!(this, head);
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
    if (!this.paused && this.state !== 'closing') this.finish(this.reason, null);
  }

  private onLine(bytes: Buffer): void {
    const line = decodeUtf8(bytes);
    if (this.greetedSilent) {
      this.greetedSilent = false;
      // Too late for HTTP (it has had the welcome), but its request is not a chat message.
      if (isRequestLine(line)) {
        this.finish('an HTTP request after the greeting delay', null);
        return;
      }
    }
    if (this.state === 'detect') {
      if (isHelloLine(line)) {
        this.mode = 'json';
        this.reader.maxLine = this.opts.maxFrame;
        this.state = 'hello';
        this.detected();
      } else {
        this.detected();
        this.startText();
        if ((this.state as string) !== 'ready') return; // refused: over a limit
      }
    }
    let cmd: Command | null;
    try {
      cmd = this.mode === 'json' ? parseJsonLine(line) : parseTextLine(line);
    } catch (err) {
      this.reject(err);
      return;
    }
    if (cmd !== null) this.command(cmd);
  }

  private startText(): void {
    this.mode = 'text';
    if (this.refused()) return;
    this.attach();
  }
}

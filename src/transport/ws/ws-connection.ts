/**
 * One WebSocket chat connection: the same JSON events as TCP JSON mode, one per text message,
 * and images as a binary message right after an image header. It is the hub's Link for this
 * WebSocket, and owns the parts it shares with TCP connections (chat-link.ts): a send queue,
 * a flood gate, registration (with the registration deadline) and image uploads.
 *
 * After the handshake the socket is this connection's alone: frames are parsed by
 * WsReceiver, and everything sent (events, pongs, the close frame) is framed once
 * (ws-frame.ts) and queued and flushed like TCP output, so a slow reader costs only its own
 * bounded queue, and a control frame never lands inside another frame.
 */
import type { Socket } from 'node:net';
import { parseJsonLine, type Command } from '../../protocol/commands.js';
import { protocolError, RoomcastError } from '../../protocol/errors.js';
import type { EventOf } from '../../protocol/events.js';
import { Frame } from '../../protocol/frame.js';
import type { Hub } from '../../hub/hub.js';
import type { Session } from '../../hub/session.js';
import type { ChatLink, EndCode, LinkHooks } from '../chat-link.js';
import { FloodGate, type GatedInput } from '../flood-gate.js';
import { ImageUpload, type ImageSource } from '../image-upload.js';
import type { ConnectionOptions } from '../options.js';
import { Registration } from '../registration.js';
import { SendQueue, type SendQueueOwner } from '../send-queue.js';
import { closeFrame, pongFrame, wsBytes } from './ws-frame.js';
import { WsReceiver } from './ws-receiver.js';

/** Close codes (RFC 6455 7.4.1) and the short reasons that go with them. */
const CLOSE: Partial<Record<NonNullable<EndCode>, [number, string]>> = {
  QUIT: [1000, 'goodbye'],
  SHUTTING_DOWN: [1001, 'server shutting down'],
  SENDQ_EXCEEDED: [1008, 'SendQ exceeded'],
  REGISTRATION_TIMEOUT: [1008, 'registration timeout'],
  IMAGE_FAR_TOO_LARGE: [1009, 'image far too large'],
};

/** A message waiting for the flood budget: a text message as its string, a binary one as its bytes. */
type Message = string | Buffer | typeof OVERSIZED;

/** In the inbox in place of a text message over maxFrame: its text is not kept. */
const OVERSIZED = Symbol('oversized text message');

export type WsConnectionHooks = LinkHooks<WsConnection>;

export class WsConnection implements ChatLink, GatedInput, SendQueueOwner, ImageSource {
  reason = 'connection closed by the client';
  private readonly queue: SendQueue;
  private readonly gate: FloodGate;
  private readonly registration: Registration;
  /** Made at the first image header: most connections never post one. */
  private upload: ImageUpload | null = null;
  private readonly receiver: WsReceiver;
  /** Messages the receiver had already parsed from a read when flood control paused the socket. */
  private readonly inbox: Message[] = [];
  /** What the next binary message must be, after an image header. */
  private imageWanted: { size: number; keep: boolean } | null = null;
  private closing = false;
  /** The client's close frame has come, or it broke the protocol: it is answered by ending the connection. */
  private closeReceived = false;

  constructor(
    /** The socket, after the handshake: read and written here alone. */
    readonly socket: Socket,
    /** What the client sent right after its request. */
    head: Buffer,
    maxPayload: number,
    readonly peer: string,
    hub: Hub,
    private readonly opts: ConnectionOptions,
    private readonly hooks: WsConnectionHooks,
    /** The server password from the URL (`/ws?password=...`), for a hello that carries none. */
    serverPassword?: string,
  ) {
    this.queue = new SendQueue(socket, opts.maxSendQueue, this);
    this.gate = new FloodGate(opts.floodRate, opts.floodBurst, opts.clock, this, hub.intake);
    this.registration = new Registration(hub, this, opts.registerTimeout, null, serverPassword);
    // No text mode and no greeting: the first message must be a hello, within the registration time.
    this.registration.awaitHello();
    this.receiver = new WsReceiver(maxPayload, {
      text: (text, bytes) => this.onMessage(bytes > this.opts.maxFrame ? OVERSIZED : text),
      binary: (data) => this.onMessage(data),
      // Queued with the events, so a pong goes out whole, between two frames.
      ping: (data) => {
        if (!this.closing) this.queue.push(pongFrame(data));
      },
      close: (code) => this.onCloseFrame(code),
      fail: (code, reason) => this.onProtocolError(code, reason),
    });
    socket.setNoDelay(true);
    // As for TCP: a session may stay silent, and keepalive finds a peer that vanished.
    socket.setKeepAlive(true, 60_000);
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.receiver.push(chunk));
    // A client that half-closes without a close frame gets no more either.
    socket.on('end', () => socket.end());
    socket.on('error', (err: Error) => {
      if (!this.closing) this.reason = err.message;
    });
    socket.on('close', () => this.onClose());
    if (head.length > 0) this.receiver.push(head);
  }

  /** The one format: JSON events, one per text message. */
  get mode(): 'json' {
    return 'json';
  }

  get session(): Session | null {
    return this.registration.session;
  }

  // ---- output ----

  send(frame: Frame): void {
    if (!this.closing) this.queue.push(wsBytes(frame));
  }

  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void {
    if (this.closing) return;
    if (bye) this.queue.pushLast(wsBytes(new Frame({ type: 'bye', ...bye })));
    this.finish(bye?.reason ?? 'closed by the server', bye?.code ?? null);
  }

  sendqExceeded(bytes: number): void {
    const err = protocolError('SENDQ_EXCEEDED', bytes);
    this.queue.pushLast(wsBytes(new Frame({ type: 'bye', code: err.code, reason: err.message })));
    this.finish(`SendQ exceeded (${bytes} bytes queued)`, err.code);
  }

  /** Stops reading, detaches from the hub, writes what is queued, and the close frame. */
  private finish(reason: string, code: EndCode): void {
    this.closing = true;
    this.reason = reason;
    this.gate.stop();
    this.registration.end(reason);
    // Keep reading (and discarding) so the client's close frame and FIN are seen.
    this.socket.resume();
    const [status, why] = (code && CLOSE[code]) ?? [1000, code ?? 'closed by the server'];
    this.sendClose(status, why);
    this.queue.linger(this.opts.lingerMs);
  }

  /**
   * Writes the close frame after what is queued. The server closes the TCP connection once
   * both close frames have passed (RFC 6455 7.1.1); a client that never answers is cut by the
   * send queue's linger timer.
   */
  private sendClose(status: number, reason: string): void {
    if (this.queue.seal(closeFrame(status, reason)) && this.closeReceived) this.socket.end();
  }

  private onCloseFrame(code: number | undefined): void {
    this.closeReceived = true;
    if (this.closing) {
      if (this.queue.sealed) this.socket.end();
      return;
    }
    // The client's code is echoed, as ws does; 1005 (none given) is never sent in a frame.
    this.sendClose(code ?? 1000, '');
    this.finish(this.reason, null);
  }

  private onProtocolError(status: number, reason: string): void {
    this.closeReceived = true;
    if (this.closing) {
      this.socket.destroy();
      return;
    }
    this.reason = `WebSocket protocol error: ${reason}`;
    // Nothing the client sends now can be read: the close frame goes, then the connection.
    this.sendClose(status, reason);
    this.finish(this.reason, null);
  }

  /** The socket has closed: the session goes, and the owner hears of it once. */
  private onClose(): void {
    this.closing = true;
    this.gate.stop();
    this.registration.end(this.reason);
    this.hooks.closed(this, this.reason);
  }

  // ---- input (GatedInput: the flood gate pulls messages one at a time) ----

  private onMessage(message: Message): void {
    if (this.closing) return;
    this.inbox.push(message);
    this.gate.arrived();
  }

  hasInput(): boolean {
    return !this.closing && this.inbox.length > 0;
  }

  nextInput(): boolean {
    const message = this.inbox.shift();
    if (message === undefined) return false;
    if (Buffer.isBuffer(message)) {
      this.onBinary(message);
    } else {
      this.gate.take();
      this.onText(message);
    }
    return true;
  }

  pauseInput(flood: boolean): void {
    this.socket.pause();
    if (flood) this.hooks.throttled?.(this);
  }

  resumeInput(): void {
    // Also after a close frame: what follows is discarded, but the client's FIN must be seen.
    this.socket.resume();
  }

  drained(): void {}

  expectImageBytes(size: number, keep: boolean): void {
    this.imageWanted = { size, keep };
  }

  private onText(text: string | typeof OVERSIZED): void {
    if (this.imageWanted !== null) {
      this.imageWanted = null;
      this.upload?.drop(new RoomcastError('BAD_MESSAGE', 'the image bytes must come as one binary message right after the image header'));
    }
    if (text === OVERSIZED) {
      this.registration.reject(new RoomcastError('FRAME_TOO_LARGE', this.opts.maxFrame));
      return;
    }
    let cmd: Command;
    try {
      cmd = parseJsonLine(text);
    } catch (err) {
      this.registration.reject(err);
      return;
    }
    if (cmd.type === 'image') (this.upload ??= new ImageUpload(this.opts.maxImageBytes, this.registration, this)).start(cmd);
    else this.registration.handle(cmd);
  }

  private onBinary(data: Buffer): void {
    const wanted = this.imageWanted;
    this.imageWanted = null;
    if (wanted === null) {
      this.registration.reject(new RoomcastError('BAD_MESSAGE', 'a binary message must follow an image header {"type":"image","name":...,"size":...}'));
    } else if (!wanted.keep) {
      // The header was refused, and the client was told why; its bytes are dropped.
    } else if (data.length !== wanted.size) {
      this.upload?.drop(new RoomcastError('BAD_MESSAGE', `the image header announced ${wanted.size} bytes but ${data.length} came`));
    } else {
      this.upload?.end(data);
    }
  }
}

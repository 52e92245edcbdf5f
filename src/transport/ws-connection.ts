/**
 * One WebSocket chat connection: the same JSON events as TCP JSON mode, one per text message,
 * and images as a binary message right after an image header. It is the hub's Link for this
 * WebSocket; the send queue, flood control and registration are ChatLink's, shared with TCP.
 *
 * ws parses what the client sends (and answers pings and close frames itself); what the server
 * sends bypasses ws.send(): each event is framed once (ws-frame.ts) and its bytes are queued
 * and flushed to the socket like TCP output, so a slow reader costs only its own bounded queue.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { parseJsonLine, type Command } from '../protocol/commands.js';
import { RoomcastError } from '../protocol/errors.js';
import type { Frame } from '../protocol/frame.js';
import { decodeUtf8 } from '../protocol/text.js';
import type { Hub } from '../hub/hub.js';
import { ChatLink, type ConnectionOptions, type EndCode, type LinkHooks } from './chat-link.js';
import { wsBytes } from './ws-frame.js';

/** Close codes (RFC 6455 7.4.1) and the short reasons that go with them. */
const CLOSE: Partial<Record<NonNullable<EndCode>, [number, string]>> = {
  QUIT: [1000, 'goodbye'],
  SHUTTING_DOWN: [1001, 'server shutting down'],
  SENDQ_EXCEEDED: [1008, 'SendQ exceeded'],
  REGISTRATION_TIMEOUT: [1008, 'registration timeout'],
  IMAGE_FAR_TOO_LARGE: [1009, 'image far too large'],
};

/** A binary message waiting for the flood budget (text messages wait as plain Buffers). */
interface Binary {
  binary: Buffer;
}

export interface WsConnectionHooks extends LinkHooks {
  closed(c: WsConnection, reason: string): void;
  throttled?(c: WsConnection): void;
}

export class WsConnection extends ChatLink {
  readonly transport = 'websocket';
  /** Messages ws had already parsed when flood control paused the socket. */
  private readonly inbox: (Buffer | Binary)[] = [];
  /** What the next binary message must be, after an image header. */
  private imageWanted: { size: number; keep: boolean } | null = null;

  constructor(
    private readonly ws: WebSocket,
    /** The upgraded socket under `ws`: output is written to it directly. */
    socket: Socket,
    peer: string,
    hub: Hub,
    opts: ConnectionOptions,
    protected override readonly hooks: WsConnectionHooks,
  ) {
    super(socket, peer, hub, opts, hooks);
    this.mode = 'json';
    // No text mode and no greeting: the first message must be a hello, within the registration time.
    this.state = 'hello';
    this.detected();
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('error', (err: Error) => {
      if (this.state !== 'closing') this.reason = err.message;
    });
    ws.on('close', () => this.closed());
  }

  // ---- ChatLink ----

  protected encode(frame: Frame): Buffer {
    return wsBytes(frame);
  }

  protected override get writable(): boolean {
    // Once ws has sent a close frame (ours, or its answer to the client's), nothing may follow it.
    return this.ws.readyState === WebSocket.OPEN && !this.socket.destroyed;
  }

  protected endTransport(code: EndCode): void {
    const [status, reason] = (code && CLOSE[code]) ?? [1000, code ?? 'closed by the server'];
    this.ws.close(status, reason);
  }

  protected pauseInput(): void {
    this.ws.pause();
  }

  protected resumeInput(): void {
    this.ws.resume();
  }

  protected hasInput(): boolean {
    return this.inbox.length > 0;
  }

  protected nextInput(): boolean {
    const item = this.inbox.shift();
    if (item === undefined) return false;
    if (Buffer.isBuffer(item)) {
      this.bucket.take();
      this.onText(item);
    } else {
      this.onBinary(item.binary);
    }
    return true;
  }

  protected expectImageBytes(size: number, keep: boolean): void {
    this.imageWanted = { size, keep };
  }

  // ---- input ----

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closing') return;
    this.inbox.push(isBinary ? { binary: data } : data);
    if (!this.paused) this.pump();
  }

  private onText(data: Buffer): void {
    if (this.imageWanted !== null) {
      this.imageWanted = null;
      this.dropImage(new RoomcastError('BAD_MESSAGE', 'the image bytes must come as one binary message right after the image header'));
    }
    if (data.length > this.opts.maxFrame) {
      this.reject(new RoomcastError('FRAME_TOO_LARGE', this.opts.maxFrame));
      return;
    }
    let cmd: Command;
    try {
      cmd = parseJsonLine(decodeUtf8(data));
    } catch (err) {
      this.reject(err);
      return;
    }
    this.command(cmd);
  }

  private onBinary(data: Buffer): void {
    const wanted = this.imageWanted;
    this.imageWanted = null;
    if (wanted === null) {
      this.reject(new RoomcastError('BAD_MESSAGE', 'a binary message must follow an image header {"type":"image","name":...,"size":...}'));
    } else if (!wanted.keep) {
      // The header was refused, and the client was told why; its bytes are dropped.
    } else if (data.length !== wanted.size) {
      this.dropImage(new RoomcastError('BAD_MESSAGE', `the image header announced ${wanted.size} bytes but ${data.length} came`));
    } else {
      this.endImage(data);
    }
  }
}

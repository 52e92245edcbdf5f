/**
 * One WebSocket chat connection: the same JSON events as TCP JSON mode, one per text message,
 * and images as a binary message right after an image header. It is the hub's Link for this
 * WebSocket; the send queue, flood control and registration are ChatLink's, shared with TCP.
 *
 * After the handshake the socket is this connection's alone: frames are parsed by
 * WsReceiver, and everything sent (events, pongs, the close frame) is framed once
 * (ws-frame.ts) and queued and flushed like TCP output, so a slow reader costs only its own
 * bounded queue, and a control frame never lands inside another frame.
 */
import type { Socket } from 'node:net';
import { parseJsonLine, type Command } from '../../protocol/commands.js';
import { RoomcastError } from '../../protocol/errors.js';
import type { Frame } from '../../protocol/frame.js';
import type { Hub } from '../../hub/hub.js';
import { ChatLink, type ConnectionOptions, type EndCode, type LinkHooks } from '../chat-link.js';
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

/** A binary message waiting for the flood budget (text messages wait as strings). */
interface Binary {
  binary: Buffer;
}

/** In the inbox in place of a text message over maxFrame: its text is not kept. */
const OVERSIZED = Object.freeze({ oversized: true });

export interface WsConnectionHooks extends LinkHooks {
  closed(c: WsConnection, reason: string): void;
  throttled?(c: WsConnection): void;
}

export class WsConnection extends ChatLink {
  readonly transport = 'websocket';
  /** Messages the receiver had already parsed from a read when flood control paused the socket. */
  private readonly inbox: (string | Binary | typeof OVERSIZED)[] = [];
  /** What the next binary message must be, after an image header. */
  private imageWanted: { size: number; keep: boolean } | null = null;
  private readonly receiver: WsReceiver;
  /** Our close frame is written: nothing may follow it (RFC 6455 5.5.1). */
  private closeSent = false;
  /** The client's close frame has come, or it broke the protocol: it is answered by ending the connection. */
  private closeReceived = false;

  constructor(
    /** The socket, after the handshake: read and written here alone. */
    socket: Socket,
    /** What the client sent right after its request. */
    head: Buffer,
    maxPayload: number,
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
    this.receiver = new WsReceiver(maxPayload, {
      text: (text, bytes) => this.onMessage(bytes > this.opts.maxFrame ? OVERSIZED : text),
      binary: (data) => this.onMessage({ binary: data }),
      // Queued with the events, so a pong goes out whole, between two frames.
      ping: (data) => this.sendBytes(pongFrame(data)),
      close: (code) => this.onClose(code),
      fail: (code, reason) => this.onProtocolError(code, reason),
    });
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.receiver.push(chunk));
    // A client that half-closes without a close frame gets no more either.
    socket.on('end', () => socket.end());
    socket.on('error', (err: Error) => {
      if (this.state !== 'closing') this.reason = err.message;
    });
    socket.on('close', () => this.closed());
    if (head.length > 0) this.receiver.push(head);
  }

  // ---- ChatLink ----

  protected encode(frame: Frame): Buffer {
    return wsBytes(frame);
  }

  protected override get writable(): boolean {
    return !this.closeSent && !this.socket.destroyed;
  }

  protected endTransport(code: EndCode): void {
    const [status, reason] = (code && CLOSE[code]) ?? [1000, code ?? 'closed by the server'];
    this.sendClose(status, reason);
  }

  /**
   * Writes the close frame after what is queued. The server closes the TCP connection once
   * both close frames have passed (RFC 6455 7.1.1); a client that never answers is cut by the
   * linger timer of finish().
   */
  private sendClose(status: number, reason: string): void {
    if (this.closeSent || this.socket.destroyed) return;
    this.flush();
    this.closeSent = true;
    this.socket.write(closeFrame(status, reason));
    if (this.closeReceived) this.socket.end();
  }

  private onClose(code: number | undefined): void {
    this.closeReceived = true;
    if (this.state === 'closing') {
      if (this.closeSent) this.socket.end();
      return;
    }
    // The client's code is echoed, as ws does; 1005 (none given) is never sent in a frame.
    this.sendClose(code ?? 1000, '');
    this.finish(this.reason, null);
  }

  private onProtocolError(status: number, reason: string): void {
    this.closeReceived = true;
    if (this.state === 'closing') {
      this.socket.destroy();
      return;
    }
    this.reason = `WebSocket protocol error: ${reason}`;
    // Nothing the client sends now can be read: the close frame goes, then the connection.
    this.sendClose(status, reason);
    this.finish(this.reason, null);
  }

  protected pauseInput(): void {
    this.socket.pause();
  }

  protected resumeInput(): void {
    // Also after a close frame: what follows is discarded, but the client's FIN must be seen.
    this.socket.resume();
  }

  protected hasInput(): boolean {
    return this.inbox.length > 0;
  }

  protected nextInput(): boolean {
    const item = this.inbox.shift();
    if (item === undefined) return false;
    if (typeof item === 'string' || item === OVERSIZED) {
      this.bucket.take();
      this.onText(item);
    } else {
      this.onBinary((item as Binary).binary);
    }
    return true;
  }

  protected expectImageBytes(size: number, keep: boolean): void {
    this.imageWanted = { size, keep };
  }

  // ---- input ----

  private onMessage(item: string | Binary | typeof OVERSIZED): void {
    if (this.state === 'closing') return;
    this.inbox.push(item);
    if (!this.paused) this.pump();
  }

  private onText(text: string | typeof OVERSIZED): void {
    if (this.imageWanted !== null) {
      this.imageWanted = null;
      this.dropImage(new RoomcastError('BAD_MESSAGE', 'the image bytes must come as one binary message right after the image header'));
    }
    if (typeof text !== 'string') {
      this.reject(new RoomcastError('FRAME_TOO_LARGE', this.opts.maxFrame));
      return;
    }
    let cmd: Command;
    try {
      cmd = parseJsonLine(text);
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

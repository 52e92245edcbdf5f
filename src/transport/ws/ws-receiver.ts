/**
 * The parser of what a WebSocket client sends (RFC 6455 section 5): a state machine over the
 * bytes of one connection that knows nothing of sockets. It takes chunks as they are read and
 * reports whole messages, pings and the close frame; anything the RFC says must fail the
 * connection is reported once, with the close code to send, and ends the parsing.
 *
 * After the handshake (ws-handshake.ts), the frames that follow are read here rather than by
 * ws's Receiver, which cuts every header field, mask and payload off the read buffer as a
 * Buffer of its own (about eight typed arrays per frame) and passes each message through two
 * event emitters: a visible share of the server's time per message, and garbage besides (the
 * profile is in docs/performance.md). Here a text message in one frame costs its string alone,
 * decoded where it lies in the read buffer; any other frame costs one Buffer, its payload's
 * view of the read buffer; and a message is a direct call.
 *
 * This server negotiates no extension, so the RSV bits must be clear.
 */
import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';

/** RFC 6455 7.4.1 status codes this parser closes with. */
export const WS_PROTOCOL_ERROR = 1002;
export const WS_INVALID_DATA = 1007;
export const WS_TOO_BIG = 1009;

export interface WsReceiverHandlers {
  /** A whole text message, decoded; `bytes` is its length in UTF-8. */
  text(text: string, bytes: number): void;
  /** A whole binary message. `data` may be kept: it is a view of a read buffer that is never reused. */
  binary(data: Buffer): void;
  /** A ping: the server answers with a pong carrying the same payload. */
  ping(data: Buffer): void;
  /** The client's close frame: `code` undefined when it carried none (1005). Nothing is parsed after it. */
  close(code: number | undefined, reason: string): void;
  /** The client broke the protocol: close with `code`. Nothing is parsed after it. */
  fail(code: number, reason: string): void;
}

/**
 * Pieces kept at once: the reads that hold the start of one frame, and the fragments of one
 * message. Their bytes are bounded by maxPayload, but a client trickling a byte per packet, or
 * a message in one-byte fragments, would otherwise cost a Buffer object per byte. (ws's
 * defaults, for the same reason.)
 */
const MAX_PARTS = 256 * 1024;
const MAX_FRAGMENTS = 16 * 1024;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export class WsReceiver {
  /** Unparsed bytes: the start of a frame that has not wholly come yet. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** How many bytes must be buffered before parsing can go on. */
  private need = 0;
  /** The fragments of a message sent in several frames, and what kind it is. */
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentedOp = -1;
  /** Checks a fragmented text message's UTF-8 as its fragments come, so bad bytes fail it at once. */
  private fragmentUtf8: TextDecoder | null = null;
  /** A close frame was read, or the client broke the protocol. */
  private done = false;

  constructor(
    /** The largest message, in bytes; over it the connection is closed with 1009. */
    private readonly maxPayload: number,
    private readonly on: WsReceiverHandlers,
  ) {}

  push(chunk: Buffer): void {
    if (this.done) return;
    let at = 0;
    // A frame begun in an earlier read is completed with just the bytes it lacks, so a read
    // is not copied whole for the sake of the frame that straddles its start.
    while (this.partBytes > 0) {
      const missing = this.need - this.partBytes;
      if (chunk.length - at < missing) {
        this.keep(at === 0 ? chunk : chunk.subarray(at));
        return;
      }
      this.parts.push(chunk.subarray(at, at + missing));
      at += missing;
      const joined = Buffer.concat(this.parts, this.need);
      this.parts = [];
      this.partBytes = 0;
      // Either the whole frame is now here, or its header is, and says how much more to wait for.
      if (this.frames(joined) === 0 && !this.done) this.keep(joined);
      if (this.done) return;
    }
    const rest = at === 0 ? chunk : chunk.subarray(at);
    const used = this.frames(rest);
    if (used < rest.length && !this.done) this.keep(rest.subarray(used));
  }

  private keep(bytes: Buffer): void {
    if (this.parts.length >= MAX_PARTS) {
      this.fail(WS_TOO_BIG, `a frame in more than ${MAX_PARTS} pieces`);
      return;
    }
    this.parts.push(bytes);
    this.partBytes += bytes.length;
  }

  /** Parses the whole frames at the start of `buf`; returns where the first incomplete one starts. */
  private frames(buf: Buffer): number {
    const len = buf.length;
    let at = 0;
    while (!this.done) {
      if (at + 2 > len) {
        this.need = 2;
        return at;
      }
      const b0 = buf[at];
      const b1 = buf[at + 1];
      const op = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if ((b0 & 0x70) !== 0) return this.failed(WS_PROTOCOL_ERROR, 'RSV bits must be clear', len);
      if ((b1 & 0x80) === 0) return this.failed(WS_PROTOCOL_ERROR, 'client frames must be masked', len);
      const control = op >= OP_CLOSE;
      if (control ? op > OP_PONG : op > OP_BINARY) return this.failed(WS_PROTOCOL_ERROR, `invalid opcode ${op}`, len);
      let size = b1 & 0x7f;
      // Decided on the first two bytes, before a longer length is read: a control frame's size
      // must be in its 7-bit length (RFC 6455 5.2 asks for the shortest form, 5.5 for at most
      // 125 bytes), and whether a data frame may come now does not depend on its length.
      if (control) {
        if (!fin) return this.failed(WS_PROTOCOL_ERROR, 'control frames must not be fragmented', len);
        if (size > 125) return this.failed(WS_PROTOCOL_ERROR, 'control frames carry at most 125 bytes', len);
      } else if (op === OP_CONTINUATION ? this.fragmentedOp < 0 : this.fragmentedOp >= 0) {
        return this.failed(WS_PROTOCOL_ERROR, op === OP_CONTINUATION ? 'continuation of no message' : 'a new message inside a fragmented one', len);
      }
      let head = 6;
      if (size === 126) {
        if (at + 4 > len) {
          this.need = 8;
          return at;
        }
        size = buf.readUInt16BE(at + 2);
        head = 8;
      } else if (size === 127) {
        if (at + 10 > len) {
          this.need = 14;
          return at;
        }
        const high = buf.readUInt32BE(at + 2);
        if (high >= 0x80000000) return this.failed(WS_PROTOCOL_ERROR, 'the most significant bit of a 64-bit length must be 0', len);
        // Beyond 2^53 - 1 a length is not even a number; far beyond any limit anyway.
        if (high > 0x1fffff) return this.failed(WS_TOO_BIG, this.tooBig(), len);
        size = high * 2 ** 32 + buf.readUInt32BE(at + 6);
        head = 14;
      }
      // Refused on its header, before its bytes are waited for and kept.
      if (!control && this.fragmentBytes + size > this.maxPayload) return this.failed(WS_TOO_BIG, this.tooBig(), len);
      if (at + head + size > len) {
        this.need = head + size;
        return at;
      }
      const start = at + head;
      at = start + size;
      unmask(buf, start, at, start - 4);
      // The common case, a text message in one frame, is decoded straight from the read buffer.
      if (op === OP_TEXT && fin && this.fragmentedOp < 0) this.text(buf, start, at);
      else if (control) this.control(op, buf.subarray(start, at));
      else this.data(op, fin, buf.subarray(start, at));
    }
    return len;
  }

  private data(op: number, fin: boolean, data: Buffer): void {
    if (fin && this.fragmentedOp < 0) {
      this.on.binary(data);
      return;
    }
    if (op !== OP_CONTINUATION) this.fragmentedOp = op;
    if (this.fragments.length >= MAX_FRAGMENTS) {
      this.fail(WS_TOO_BIG, `a message in more than ${MAX_FRAGMENTS} fragments`);
      return;
    }
    if (this.fragmentedOp === OP_TEXT && !this.validFragment(data, fin)) return;
    if (data.length > 0) this.fragments.push(data);
    this.fragmentBytes += data.length;
    if (!fin) return;
    const whole = Buffer.concat(this.fragments, this.fragmentBytes);
    const binary = this.fragmentedOp === OP_BINARY;
    this.fragments = [];
    this.fragmentBytes = 0;
    this.fragmentedOp = -1;
    if (binary) this.on.binary(whole);
    else this.text(whole, 0, whole.length);
  }

  private text(buf: Buffer, start: number, end: number): void {
    const text = buf.toString('utf8', start, end);
    // Decoding puts U+FFFD for what is not UTF-8, so only text with one is checked (isUtf8 on
    // every message, and the view it needs, cost more than the decoding).
    if (text.includes('\ufffd') && !isUtf8(buf.subarray(start, end))) {
      this.fail(WS_INVALID_DATA, 'text messages must be UTF-8');
      return;
    }
    this.on.text(text, end - start);
  }

  /**
   * Whether a text fragment continues valid UTF-8 (a character may straddle two fragments).
   * RFC 6455 8.1 would have the connection failed as soon as the bytes are known bad, not when
   * the last fragment comes; messages in one frame, the common case, are checked in text().
   */
  private validFragment(data: Buffer, fin: boolean): boolean {
    this.fragmentUtf8 ??= new TextDecoder('utf-8', { fatal: true });
    try {
      this.fragmentUtf8.decode(data, { stream: !fin });
      return true;
    } catch {
      this.fail(WS_INVALID_DATA, 'text messages must be UTF-8');
      return false;
    }
  }

  private control(op: number, data: Buffer): void {
    if (op === OP_PING) this.on.ping(data);
    else if (op === OP_CLOSE) {
      if (data.length === 0) {
        this.done = true;
        this.on.close(undefined, '');
      } else if (data.length === 1 || !validCloseCode(data.readUInt16BE(0))) {
        this.fail(WS_PROTOCOL_ERROR, 'invalid close code');
      } else if (!isUtf8(data.subarray(2))) {
        this.fail(WS_INVALID_DATA, 'close reasons must be UTF-8');
      } else {
        this.done = true;
        this.on.close(data.readUInt16BE(0), data.toString('utf8', 2));
      }
    }
    // A pong needs nothing: this server sends no pings of its own.
  }

  private tooBig(): string {
    return `message over the ${this.maxPayload}-byte limit`;
  }

  private fail(code: number, reason: string): void {
    this.done = true;
    this.fragments = [];
    this.parts = [];
    this.partBytes = 0;
    this.on.fail(code, reason);
  }

  private failed(code: number, reason: string, len: number): number {
    this.fail(code, reason);
    return len;
  }
}

/** Unmasks buf[start..end) in place with the 4-byte key at `buf[keyAt]` (RFC 6455 5.3). */
function unmask(buf: Buffer, start: number, end: number, keyAt: number): void {
  const k0 = buf[keyAt];
  const k1 = buf[keyAt + 1];
  const k2 = buf[keyAt + 2];
  const k3 = buf[keyAt + 3];
  // A zero key is valid and leaves the payload as it is.
  if ((k0 | k1 | k2 | k3) === 0) return;
  const whole = start + ((end - start) & ~3);
  let i = start;
  for (; i < whole; i += 4) {
    buf[i] ^= k0;
    buf[i + 1] ^= k1;
    buf[i + 2] ^= k2;
    buf[i + 3] ^= k3;
  }
  if (i < end) buf[i++] ^= k0;
  if (i < end) buf[i++] ^= k1;
  if (i < end) buf[i] ^= k2;
}

/** Close codes a client may send (RFC 6455 7.4.1 and 7.4.2; 1004-1006 and 1015 are never sent). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

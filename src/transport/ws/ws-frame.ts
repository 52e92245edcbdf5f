/**
 * WebSocket framing of what the server sends: events, done once per event for every WebSocket
 * recipient, and the pong and close control frames.
 *
 * ws's own send() frames (and, with permessage-deflate, compresses) the data for each socket
 * it is called on; a broadcast to a hundred members would frame it a hundred times. Instead
 * each event is framed once and the same bytes are queued to every recipient's socket, like
 * the TCP formats. permessage-deflate is therefore never negotiated, and after the handshake
 * nothing but WsConnection writes to the socket, so no frame lands inside another.
 *
 * The frame is written here rather than by ws's Sender.frame(), which takes the payload as a
 * Buffer and returns the header and the payload apart: the JSON text, its Buffer, the header
 * and their concatenation were four allocations and two copies per event, where encoding the
 * text straight behind its header is one of each. A test holds the bytes against
 * Sender.frame()'s.
 */
import type { Frame } from '../../protocol/frame.js';
import { eventJsonMost, writeEventJson } from '../../protocol/json.js';
import { Slab } from '../../protocol/slab.js';

/** The kind under which a Frame keeps its WebSocket encoding (Frame.encoded). */
export const WS_FRAME = 'ws';

const FIN_TEXT = 0x81;
const FIN_CLOSE = 0x88;
const FIN_PONG = 0x8a;

// Small frames are cut from a shared slab: the payload is written 4 bytes into free space and
// its header goes right in front of it once the length is known, which saves measuring the
// text first (byteLength + allocUnsafe + write).
const slab = new Slab();

/** One unfragmented, unmasked (server to client, RFC 6455 5.1) text frame carrying `text`. */
export function textFrame(text: string): Buffer {
  // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4).
  const most = 4 + text.length * 3;
  if (most > Slab.MOST) return measuredTextFrame(text);
  const buf = slab.room(most);
  const from = slab.free + 4;
  return framed(buf, from, from + buf.write(text, from, 'utf8'));
}

/** An event as a text frame: written as bytes when json.ts can, else from its JSON text. */
function eventFrame(frame: Frame): Buffer {
  const most = 4 + eventJsonMost(frame.event);
  if (most < 4 || most > Slab.MOST) return textFrame(frame.jsonText);
  const buf = slab.room(most);
  const from = slab.free + 4;
  return framed(buf, from, writeEventJson(frame.event, buf, from));
}

/** Puts the header in front of the payload at from..end of the slab, and keeps the frame. */
function framed(buf: Buffer, from: number, end: number): Buffer {
  const start = from - headerBytes(end - from);
  writeHeader(buf, start, FIN_TEXT, end - from);
  return slab.take(start, end);
}

function measuredTextFrame(text: string): Buffer {
  const size = Buffer.byteLength(text);
  const head = headerBytes(size);
  const out = Buffer.allocUnsafe(head + size);
  writeHeader(out, 0, FIN_TEXT, size);
  out.write(text, head, 'utf8');
  return out;
}

/** The close frame: a status code (RFC 6455 7.4) and a reason, cut to fit a control frame. */
export function closeFrame(status: number, reason: string): Buffer {
  let why = Buffer.from(reason);
  // A control frame carries at most 125 bytes, 2 of them the code; the cut falls between characters.
  if (why.length > 123) {
    let end = 123;
    while ((why[end] & 0xc0) === 0x80) end--;
    why = why.subarray(0, end);
  }
  const out = Buffer.allocUnsafe(4 + why.length);
  writeHeader(out, 0, FIN_CLOSE, 2 + why.length);
  out.writeUInt16BE(status, 2);
  why.copy(out, 4);
  return out;
}

/** The answer to a ping: a pong with the same payload (RFC 6455 5.5.3). */
export function pongFrame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + payload.length);
  writeHeader(out, 0, FIN_PONG, payload.length);
  payload.copy(out, 2);
  return out;
}

/** The length of the header of a frame carrying `size` bytes: 7-bit, 16-bit or 64-bit length. */
function headerBytes(size: number): number {
  return size < 126 ? 2 : size < 65536 ? 4 : 10;
}

function writeHeader(out: Buffer, at: number, first: number, size: number): void {
  out[at] = first;
  if (size < 126) out[at + 1] = size;
  else if (size < 65536) {
    out[at + 1] = 126;
    out.writeUInt16BE(size, at + 2);
  } else {
    out[at + 1] = 127;
    out.writeUInt32BE(Math.floor(size / 2 ** 32), at + 2);
    out.writeUInt32BE(size >>> 0, at + 6);
  }
}

/** A frame's event as a WebSocket text message, made once per frame. */
export function wsBytes(frame: Frame): Buffer {
  return frame.encoded(WS_FRAME, eventFrame);
}

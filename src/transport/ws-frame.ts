/**
 * WebSocket framing of server events, done once per event for every WebSocket recipient.
 *
 * ws's own send() frames (and, with permessage-deflate, compresses) the data for each socket
 * it is called on; a broadcast to a hundred members would frame it a hundred times. Instead
 * each event is framed once and the same bytes are queued to every recipient's socket, like
 * the TCP formats. That is only safe because the server never uses ws.send() and turns
 * permessage-deflate off: ws then writes nothing of its own but whole control frames (pong,
 * close), never between our frames' bytes.
 *
 * The frame is written here rather than by ws's Sender.frame(), which takes the payload as a
 * Buffer and returns the header and the payload apart: the JSON text, its Buffer, the header
 * and their concatenation were four allocations and two copies per event, where encoding the
 * text straight behind its header is one of each. A test holds the bytes against
 * Sender.frame()'s.
 */
import type { Frame } from '../protocol/frame.js';

/** The kind under which a Frame keeps its WebSocket encoding (Frame.encoded). */
export const WS_FRAME = 'ws';

const FIN_TEXT = 0x81;

/** One unfragmented, unmasked (server to client, RFC 6455 5.1) text frame carrying `text`. */
export function textFrame(text: string): Buffer {
  const size = Buffer.byteLength(text);
  const head = size < 126 ? 2 : size < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + size);
  out[0] = FIN_TEXT;
  if (head === 2) out[1] = size;
  else if (head === 4) {
    out[1] = 126;
    out.writeUInt16BE(size, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(size / 2 ** 32), 2);
    out.writeUInt32BE(size >>> 0, 6);
  }
  out.write(text, head, 'utf8');
  return out;
}

/** A frame's event as a WebSocket text message, made once per frame. */
export function wsBytes(frame: Frame): Buffer {
  return frame.encoded(WS_FRAME, wsTextFrame);
}

function wsTextFrame(frame: Frame): Buffer {
  return textFrame(frame.jsonText);
}

/**
 * WebSocket framing of server events, done once per event for every WebSocket recipient.
 *
 * ws's own send() frames (and, with permessage-deflate, compresses) the data for each socket
 * it is called on; a broadcast to a hundred members would frame it a hundred times. Instead
 * the frame is built once with ws's Sender.frame() (the same function ws.send() uses) and the
 * same bytes are queued to every recipient's socket, like the TCP formats. That is only safe
 * because the server never uses ws.send() and turns permessage-deflate off: ws then writes
 * nothing of its own but whole control frames (pong, close), never between our frames' bytes.
 */
import * as wsModule from 'ws';

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}

// @types/ws does not declare Sender; ws 8 exports it (lib/sender.js).
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

/** Server frames are never masked; readOnly: the payload is shared and must not be touched. */
const TEXT: FrameOptions = { fin: true, opcode: 0x1, mask: false, readOnly: true, rsv1: false };

/** The key under which a Frame keeps its WebSocket encoding (Frame.extra). */
export const WS_FRAME = 'ws';

/** One unfragmented text frame carrying `payload`, as a single Buffer. */
export function textFrame(payload: Buffer): Buffer {
  const parts = Sender.frame(payload, TEXT);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

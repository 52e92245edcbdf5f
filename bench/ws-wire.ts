/**
 * The WebSocket wire for benchmark clients, by hand: the upgrade request, client frames, and a
 * reader that finds each server frame's payload where it lies in the read buffer.
 *
 * A library client (ws) allocates a Buffer and emits an event per message; a fan-out run
 * delivers millions, and the generator (one thread for every client) would become what is
 * measured. Server frames are never masked and this server sends no fragments, so reading is
 * a header and a length. Client frames must be masked (RFC 6455 5.3); a key of zero is a valid
 * key that leaves the payload as it is, so sending costs a header per message.
 */
import { randomBytes } from 'node:crypto';
import { WS_PATH } from '../src/transport/ws/ws-handshake.js';

export function upgradeRequest(host: string, port: number): string {
  return (
    `GET ${WS_PATH} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  );
}

/** Text frames for `messages`, masked with the zero key, in one Buffer (one write). */
export function clientTextFrames(messages: string[]): Buffer {
  const payloads = messages.map((m) => Buffer.from(m));
  let total = 0;
  for (const p of payloads) total += p.length + (p.length < 126 ? 6 : p.length < 65536 ? 8 : 14);
  const out = Buffer.alloc(total); // zeroed: the mask keys are already in place
  let at = 0;
  for (const p of payloads) {
    out[at++] = 0x81; // FIN + text
    if (p.length < 126) out[at++] = 0x80 | p.length;
    else if (p.length < 65536) {
      out[at++] = 0x80 | 126;
      out.writeUInt16BE(p.length, at);
      at += 2;
    } else {
      out[at++] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(p.length), at);
      at += 8;
    }
    at += 4; // mask key 0
    p.copy(out, at);
    at += p.length;
  }
  return out;
}

/**
 * Reads the server's side of one connection: the handshake response, then frames. Text
 * payloads are reported as (buffer, start, end) spans that are only valid during the call.
 */
export class WsReader {
  private handshaken = false;
  private partial: Buffer | null = null;

  constructor(
    private readonly onOpen: () => void,
    private readonly onText: (buf: Buffer, start: number, end: number) => void,
    private readonly onFail: (why: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let at = 0;
    if (!this.handshaken) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.partial = Buffer.from(buf);
        return;
      }
      const status = buf.toString('latin1', 0, buf.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 101 ')) {
        this.onFail(`WebSocket handshake refused: ${status}`);
        return;
      }
      this.handshaken = true;
      at = end + 4;
      this.onOpen();
    }
    const len = buf.length;
    while (at + 2 <= len) {
      const opcode = buf[at] & 0x0f;
      let size = buf[at + 1] & 0x7f;
      let head = 2;
      if (size === 126) {
        if (at + 4 > len) break;
        size = buf.readUInt16BE(at + 2);
        head = 4;
      } else if (size === 127) {
        if (at + 10 > len) break;
        size = Number(buf.readBigUInt64BE(at + 2));
        head = 10;
      }
      if (at + head + size > len) break;
      const start = at + head;
      if (opcode === 0x1) this.onText(buf, start, start + size);
      else if (opcode === 0x8) this.onFail(`closed by the server: ${size >= 2 ? buf.readUInt16BE(start) : ''} ${buf.toString('utf8', start + 2, start + size)}`);
      at = start + size;
    }
    // Copy the unfinished frame: the read buffer is overwritten by the next read of any client.
    if (at < len) this.partial = Buffer.from(buf.subarray(at));
  }
}

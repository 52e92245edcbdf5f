/**
 * Image posts from a chat client: a JSON image header announces `size` raw bytes, which follow
 * it (on TCP, after the header's line; over WebSocket, as the next binary message). The bytes
 * are read, or, when the header is refused, skipped without being kept, before the next
 * command, so the stream stays in step either way. Only a header far over the limit closes the
 * connection: skipping that many bytes would take longer than telling the client why.
 */
import type { Command } from '../protocol/commands.js';
import { protocolError, RoomcastError } from '../protocol/errors.js';
import type { Link } from '../hub/session.js';
import type { Registration } from './registration.js';

export type ImageCommand = Extract<Command, { type: 'image' }>;

/** The link an upload reads from. */
export interface ImageSource extends Pick<Link, 'close'> {
  /** The next `size` bytes of input are the image's (keep) or are to be skipped (not keep). */
  expectImageBytes(size: number, keep: boolean): void;
}

export class ImageUpload {
  /** The header whose bytes are being read. */
  private pending: ImageCommand | null = null;

  constructor(
    private readonly maxBytes: number,
    private readonly registration: Registration,
    private readonly source: ImageSource,
  ) {}

  /** An image header. */
  start(cmd: ImageCommand): void {
    const max = this.maxBytes;
    if (cmd.size < 0) {
      this.registration.reject(new RoomcastError('BAD_MESSAGE', '"size" must be the number of bytes that follow'), cmd.id);
      return;
    }
    const detail = `${cmd.size} bytes; the limit is ${max} bytes`;
    if (cmd.size > max * 4) {
      this.registration.reject(new RoomcastError('IMAGE_TOO_LARGE', detail), cmd.id);
      const err = protocolError('IMAGE_FAR_TOO_LARGE', `${cmd.size} bytes`);
      this.source.close({ code: err.code, reason: err.message });
      return;
    }
    const registered = this.registration.session !== null;
    if (cmd.size > max || !registered) {
      this.registration.reject(new RoomcastError(registered ? 'IMAGE_TOO_LARGE' : 'NOT_REGISTERED', detail), cmd.id);
      this.source.expectImageBytes(cmd.size, false);
      return;
    }
    this.pending = cmd;
    if (cmd.size === 0) this.end(Buffer.alloc(0));
    else this.source.expectImageBytes(cmd.size, true);
  }

  /** The bytes announced by the header have come. */
  end(data: Buffer): void {
    const cmd = this.pending;
    this.pending = null;
    if (cmd !== null) this.registration.handle({ ...cmd, data });
  }

  /** The header's bytes never came as announced; the client hears why. */
  drop(err: RoomcastError): void {
    const cmd = this.pending;
    this.pending = null;
    if (cmd !== null) this.registration.reject(err, cmd.id);
  }
}

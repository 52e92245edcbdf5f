/**
 * A link's output: the bytes queued for its socket in this event-loop turn, written once per
 * turn (flush.ts), and bounded. The bound counts what is queued here and what the socket still
 * holds; a reader that falls that far behind will never catch up, so the queue is dropped and
 * its owner told, to say goodbye and close ("SendQ exceeded"), instead of the broadcast
 * waiting or memory growing. (ergo's sendq, ws's Sender queue.)
 */
import { joinBatch, noteQueued, scheduleFlush, type Flushable } from './flush.js';

/** What the queue uses of its socket (a net.Socket). */
export interface QueueSocket {
  readonly writableLength: number;
  readonly destroyed: boolean;
  write(bytes: Buffer): boolean;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export interface SendQueueOwner {
  /** The bound was passed by `bytes` queued: what was queued is dropped, and nothing more will be taken. */
  sendqExceeded(bytes: number): void;
}

export class SendQueue implements Flushable {
  /**
   * Output of this turn: null when nothing is queued (an idle link holds no array), one Buffer
   * for the common single frame (no array per delivery), else the frames in order.
   */
  private out: Buffer | Buffer[] | null = null;
  private bytes = 0;
  /** The transport's last frame is written (a WebSocket close frame): nothing may follow it. */
  private isSealed = false;

  constructor(
    private readonly socket: QueueSocket,
    /** The bound, in bytes, on this queue and the socket's buffer together. */
    private readonly max: number,
    private readonly owner: SendQueueOwner,
  ) {}

  /** Queues bytes for the end of this turn, or tells the owner the bound is passed. */
  push(bytes: Buffer): void {
    const queued = this.bytes + bytes.length;
    if (queued > this.max || queued + this.socket.writableLength > this.max) {
      // What is queued will never be read in time.
      this.out = null;
      this.bytes = 0;
      this.owner.sendqExceeded(queued + this.socket.writableLength);
      return;
    }
    if (this.out === null) scheduleFlush(this);
    this.append(bytes);
    noteQueued(bytes.length);
  }

  /** A goodbye: queued past the bound, for the flush that ends the link. */
  pushLast(bytes: Buffer): void {
    this.append(bytes);
  }

  private append(bytes: Buffer): void {
    const out = this.out;
    if (out === null) this.out = bytes;
    else if (Array.isArray(out)) out.push(bytes);
    else this.out = [out, bytes];
    this.bytes += bytes.length;
  }

  flush(): void {
    const out = this.out;
    if (out === null || this.isSealed || this.socket.destroyed) return;
    const bytes = this.bytes;
    this.out = null;
    this.bytes = 0;
    // One write per turn; several frames are joined (one copy, shared with other recipients of
    // the same frames). cork() + a write per frame (writev) was slower: a stream request object
    // per frame costs more than copying a hundred bytes (docs/performance.md).
    this.socket.write(Array.isArray(out) ? joinBatch(out, bytes) : out);
  }

  get sealed(): boolean {
    return this.isSealed;
  }

  /**
   * Writes what is queued, then the transport's last frame, and nothing after it. False when
   * that was done already or the socket is gone.
   */
  seal(last: Buffer): boolean {
    if (this.isSealed || this.socket.destroyed) return false;
    this.flush();
    this.isSealed = true;
    this.socket.write(last);
    return true;
  }

  /** A peer that does not read cannot take even the goodbye: it is cut after `ms`. */
  linger(ms: number): void {
    const socket = this.socket;
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    // A closed link is not kept alive by its timer.
    socket.once('close', () => clearTimeout(timer));
  }
}

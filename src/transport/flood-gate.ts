/**
 * Flood control of a link's input: buffered input is handled while the token bucket
 * (hub/flood.ts) lasts; past it, reading is paused and resumes once a token is due. The
 * excess is not dropped: it waits in the client's own TCP buffers and comes in later at the
 * allowed rate (ergo's fakelag). The bucket's clock is injectable, so tests step time.
 */
import { TokenBucket, type Clock } from '../hub/flood.js';

/** The input a gate lets through: the link's buffered lines or messages, and its socket. */
export interface GatedInput {
  /** Input is waiting to be handled (never while the link is closing). */
  hasInput(): boolean;
  /** Handles one item of input (taking a token if it costs one); false if none is complete. */
  nextInput(): boolean;
  /** Flood control stops reading: the link pauses its socket (and may count the client as throttled). */
  pauseInput(): void;
  resumeInput(): void;
  /** All buffered input has been handled. */
  drained(): void;
}

export class FloodGate {
  private readonly bucket: TokenBucket;
  /** Reading is paused by flood control. */
  private isPaused = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    rate: number,
    burst: number,
    clock: Clock | undefined,
    private readonly input: GatedInput,
  ) {
    this.bucket = new TokenBucket(rate, burst, clock);
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** An item of input costs a token (image bytes do not). */
  take(): void {
    this.bucket.take();
  }

  /** Input has come: it is handled now, unless flood control is holding input back. */
  arrived(): void {
    if (!this.isPaused) this.pump();
  }

  /** Handles buffered input while the budget lasts, then pauses reading until a token is due. */
  pump(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    while (this.input.hasInput()) {
      const wait = this.bucket.wait();
      if (wait > 0) {
        this.throttle(wait);
        return;
      }
      if (!this.input.nextInput()) break;
    }
    if (this.isPaused) {
      this.isPaused = false;
      this.input.resumeInput();
    }
    this.input.drained();
  }

  private throttle(wait: number): void {
    if (!this.isPaused) {
      this.isPaused = true;
      this.input.pauseInput();
    }
    this.timer = setTimeout(() => this.pump(), wait);
  }

  /** The link is closing: no more pumping, and reading is the link's to resume. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.isPaused = false;
  }
}

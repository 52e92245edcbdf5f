/**
 * Flood control of a link's input: buffered input is handled while the token bucket
 * (hub/flood.ts) lasts; past it, reading is paused and resumes once a token is due. The
 * excess is not dropped: it waits in the client's own TCP buffers and comes in later at the
 * allowed rate (ergo's fakelag). The bucket's clock is injectable, so tests step time.
 *
 * The hub's intake pauses reading the same way while the hub takes no input (a cluster's
 * backlog to Redis is full), for every link at once, without counting anyone as flooding.
 */
import { TokenBucket, type Clock } from '../hub/flood.js';
import type { Intake } from '../hub/intake.js';

/** The input a gate lets through: the link's buffered lines or messages, and its socket. */
export interface GatedInput {
  /** Input is waiting to be handled (never while the link is closing). */
  hasInput(): boolean;
  /** Handles one item of input (taking a token if it costs one); false if none is complete. */
  nextInput(): boolean;
  /**
   * Reading stops: the link pauses its socket. `flood`: because of the client's own rate (the
   * link may count it as throttled), not because the hub is busy.
   */
  pauseInput(flood: boolean): void;
  resumeInput(): void;
  /** All buffered input has been handled. */
  drained(): void;
}

export class FloodGate {
  private readonly bucket: TokenBucket;
  /** Reading is paused by flood control. */
  private isPaused = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly wake = (): void => this.pump();

  constructor(
    rate: number,
    burst: number,
    clock: Clock | undefined,
    private readonly input: GatedInput,
    private readonly intake?: Intake,
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
      if (this.intake && !this.intake.open) {
        this.pause(false);
        this.intake.whenOpen(this.wake);
        return;
      }
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
    this.pause(true);
    this.timer = setTimeout(this.wake, wait);
  }

  private pause(flood: boolean): void {
    if (this.isPaused) return;
    this.isPaused = true;
    this.input.pauseInput(flood);
  }

  /** The link is closing: no more pumping, and reading is the link's to resume. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.intake?.cancel(this.wake);
    this.isPaused = false;
  }
}

/**
 * Flood control: a token bucket per connection. Each line costs one token; tokens come back at
 * `rate` per second up to `burst`. The clock is injected so tests step time instead of sleeping
 * (as ergo's fakelag does).
 */
export type Clock = () => number; // milliseconds, monotonic

export const monotonic: Clock = () => performance.now();

export class TokenBucket {
  private tokens: number;
  private last: number;

  /** rate <= 0 turns flood control off. */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly clock: Clock = monotonic,
  ) {
    this.tokens = burst;
    this.last = clock();
  }

  get unlimited(): boolean {
    return this.rate <= 0;
  }

  /** Takes one token if there is one. */
  take(): boolean {
    if (this.rate <= 0) return true;
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until the next token is available (0 if one is now). */
  wait(): number {
    if (this.rate <= 0) return 0;
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }

  private refill(): void {
    const now = this.clock();
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
  }
}

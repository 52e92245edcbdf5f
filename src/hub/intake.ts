/**
 * Whether the hub takes more input now. On a single server the hub handles a line as it comes,
 * so a busy hub simply reads less and the excess waits in the clients' TCP buffers. In a
 * cluster a message waits for Redis to number it, and a hub that read on regardless would pile
 * up what waits (and its garbage) in its own heap: past a bound, readers pause until the
 * backlog is down to half of it.
 */
export class Intake {
  private readonly waiters = new Set<() => void>();
  private waiting = 0;
  private closed = false;

  constructor(private readonly most: number) {}

  /** The hub takes input now. */
  get open(): boolean {
    return !this.closed;
  }

  /** Events handed on and not yet answered for. */
  get backlog(): number {
    return this.waiting;
  }

  /** Calls `wake` once, when the hub takes input again. */
  whenOpen(wake: () => void): void {
    this.waiters.add(wake);
  }

  cancel(wake: () => void): void {
    this.waiters.delete(wake);
  }

  /** An event went on its way (to the cluster); settled() when it has been answered for. */
  started(): void {
    if (++this.waiting >= this.most) this.closed = true;
  }

  settled(): void {
    this.waiting--;
    if (!this.closed || this.waiting > this.most / 2) return;
    this.closed = false;
    const wake = [...this.waiters];
    this.waiters.clear();
    for (const w of wake) {
      if (this.closed) this.waiters.add(w);
      else w();
    }
  }
}

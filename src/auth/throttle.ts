/**
 * Wrong passwords, counted per key (a remote address, or an account): a few are free, then
 * each one more locks the key out for twice as long as the last, up to a ceiling. A locked-out
 * key is refused before any password is looked at, so guessing costs the guesser time and the
 * server nothing. The clock is injectable, so tests step time instead of sleeping.
 */
export interface ThrottleOptions {
  /** Wrong tries allowed before the first lockout. */
  free: number;
  firstLockMs: number;
  maxLockMs: number;
  /** Keys remembered at most; past it the longest-quiet go first (a flood of addresses must not grow memory without end). */
  maxKeys: number;
  now?: () => number;
}

export const THROTTLE_DEFAULTS: ThrottleOptions = { free: 5, firstLockMs: 1000, maxLockMs: 5 * 60_000, maxKeys: 10_000 };

interface Record {
  failures: number;
  lockedUntil: number;
}

export class FailureThrottle {
  private readonly o: ThrottleOptions;
  private readonly now: () => number;
  /** In the order last touched: the first is the one to forget. */
  private readonly keys = new Map<string, Record>();

  constructor(opts: Partial<ThrottleOptions> = {}) {
    this.o = { ...THROTTLE_DEFAULTS, ...opts };
    this.now = opts.now ?? Date.now;
  }

  /** Milliseconds the key must still wait before it may try again (0: it may). */
  wait(key: string): number {
    const r = this.keys.get(key);
    return r ? Math.max(0, r.lockedUntil - this.now()) : 0;
  }

  /** A wrong password for the key; returns how long it is locked out now (0: not yet). */
  failed(key: string): number {
    const r = this.keys.get(key) ?? { failures: 0, lockedUntil: 0 };
    this.keys.delete(key);
    r.failures++;
    const over = r.failures - this.o.free;
    const lock = over <= 0 ? 0 : Math.min(this.o.maxLockMs, this.o.firstLockMs * 2 ** Math.min(over - 1, 30));
    r.lockedUntil = this.now() + lock;
    this.keys.set(key, r);
    if (this.keys.size > this.o.maxKeys) this.keys.delete(this.keys.keys().next().value!);
    return lock;
  }

  /** A right password: the key starts afresh. */
  succeeded(key: string): void {
    this.keys.delete(key);
  }
}

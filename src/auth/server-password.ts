/**
 * The server password (--password-file): one secret everyone who connects must give, over any
 * transport. The comparison takes the same time whatever is given (both sides hashed, then
 * compared in constant time), and wrong guesses are throttled per remote address.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { RoomcastError } from '../protocol/errors.js';
import { FailureThrottle, type ThrottleOptions } from './throttle.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export class ServerPassword {
  private readonly expected: Buffer;
  private readonly throttle: FailureThrottle;

  constructor(secret: string, throttle: Partial<ThrottleOptions> = {}) {
    this.expected = digest(secret);
    this.throttle = new FailureThrottle(throttle);
  }

  /** Whole seconds a client from `address` must wait before its next try (0: none). */
  retryAfter(address: string): number {
    return Math.ceil(this.throttle.wait(address) / 1000);
  }

  /** Whether `given` is the password, counting nothing (a guess is counted by check()). */
  matches(given: string): boolean {
    return timingSafeEqual(digest(given), this.expected);
  }

  /**
   * Checks what a client from `address` gave; throws PASSWORD_REQUIRED (nothing given),
   * LOCKED_OUT (too many wrong ones lately, with the wait) or PASSWORD_WRONG.
   */
  check(address: string, given: string | undefined): void {
    const wait = this.throttle.wait(address);
    if (wait > 0) throw new RoomcastError('LOCKED_OUT', Math.ceil(wait / 1000));
    if (given === undefined) throw new RoomcastError('PASSWORD_REQUIRED');
    if (timingSafeEqual(digest(given), this.expected)) {
      this.throttle.succeeded(address);
      return;
    }
    const lock = this.throttle.failed(address);
    if (lock > 0) throw new RoomcastError('LOCKED_OUT', Math.ceil(lock / 1000));
    throw new RoomcastError('PASSWORD_WRONG');
  }
}

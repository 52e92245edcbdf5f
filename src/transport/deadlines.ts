/**
 * Timeouts of one fixed length for many connections, on one timer.
 *
 * Every new connection has a greeting deadline, and one that must say hello (JSON, WebSocket)
 * then a registration deadline. A setTimeout for each is a Timeout object plus a closure and
 * its context per connection, held until the connection is a session (up to two minutes for
 * the registration deadline), and a connection storm creates ten thousand of them at once. With one fixed delay, deadlines
 * expire in the order they were set, so a FIFO with a single timer for its head does the same
 * job: an entry is two array slots, and cancelling one only empties its slot.
 */
export interface Expiring {
  /** The deadline has passed. */
  expire(): void;
}

export type Ticket = number;

/** A ticket that is never armed: cancelling it does nothing. */
export const NO_TICKET: Ticket = -1;

const now = (): number => performance.now();

export class DeadlineQueue {
  private items: (Expiring | null)[] = [];
  private times: number[] = [];
  private head = 0;
  /** Ticket of items[0]: tickets keep counting when consumed entries are dropped. */
  private offset = 0;
  private live = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly onTimer = (): void => this.run();

  constructor(readonly delay: number) {}

  /** Arms a deadline `delay` ms from now. */
  add(item: Expiring): Ticket {
    const ticket = this.offset + this.items.length;
    this.items.push(item);
    this.times.push(now() + this.delay);
    this.live++;
    if (this.timer === null && !this.running) this.arm();
    return ticket;
  }

  /** Disarms a deadline; one that has expired or was cancelled already is ignored. */
  cancel(ticket: Ticket): void {
    const i = ticket - this.offset;
    if (i < this.head || i >= this.items.length || this.items[i] === null) return;
    this.items[i] = null;
    // With nothing left to wait for, no timer may keep the process alive.
    if (--this.live === 0 && !this.running) this.clear();
  }

  private arm(): void {
    while (this.head < this.items.length && this.items[this.head] === null) this.head++;
    if (this.head >= this.items.length) {
      this.clear();
      return;
    }
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(this.times[this.head] - now())));
  }

  private run(): void {
    this.timer = null;
    this.running = true;
    try {
      // Timers run on the event loop's millisecond clock: within a millisecond counts as due.
      const due = now() + 1;
      while (this.head < this.items.length && this.times[this.head] <= due) {
        const item = this.items[this.head];
        this.items[this.head++] = null;
        if (item !== null) {
          this.live--;
          item.expire(); // may add or cancel entries: both are safe while running
        }
      }
    } finally {
      this.running = false;
      if (this.live > 0) {
        this.compact();
        this.arm();
      } else this.clear();
    }
  }

  /** Drops consumed entries once they are the larger part of the arrays. */
  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.items.length) return;
    this.items = this.items.slice(this.head);
    this.times = this.times.slice(this.head);
    this.offset += this.head;
    this.head = 0;
  }

  /** Nothing is pending: no timer, no arrays. */
  private clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.offset += this.items.length;
    this.items = [];
    this.times = [];
    this.head = 0;
    this.live = 0;
  }
}

const queues = new Map<number, DeadlineQueue>();

/** The shared queue for one delay (a server has two: the greeting and the registration). */
export function deadlines(delay: number): DeadlineQueue {
  let q = queues.get(delay);
  if (!q) queues.set(delay, (q = new DeadlineQueue(delay)));
  return q;
}

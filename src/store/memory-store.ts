/**
 * The store that keeps nothing on disk: each room's newest events in a ring of fixed size, as
 * the hub has always kept them. For `--store memory` and for tests; nothing survives a restart.
 */
import { randomBytes } from 'node:crypto';
import type { MessageEvent, RoomEvent } from '../protocol/events.js';
import { StoreError } from './errors.js';
import {
  type Account,
  type RoomRules,
  checkAppend,
  type HistoryPage,
  type MessageStore,
  type PruneResult,
  type Retention,
  type SearchHit,
  type StoredRoom,
  type StoreHealth,
  type StoreObserver,
} from './store.js';
import { markMatches, parseQuery } from './text-search.js';

export interface MemoryStoreOptions {
  /** Events kept per room; the oldest go first. */
  perRoom: number;
  /** Clock for topic times and age-based pruning. */
  now?: () => number;
  observer?: StoreObserver;
}

const WHERE = '(memory)';

/** One room's newest events, oldest first, in a ring. */
class RoomHistory {
  lastSeq = 0;
  topic = '';
  topicNick?: string;
  topicTime?: number;
  private readonly ring: (RoomEvent | undefined)[];
  private start = 0; // index of the oldest event
  count = 0;

  constructor(capacity: number) {
    this.ring = new Array(Math.max(0, capacity));
  }

  push(event: RoomEvent): void {
    this.lastSeq = event.seq;
    const cap = this.ring.length;
    if (cap === 0) return;
    this.ring[(this.start + this.count) % cap] = event;
    if (this.count < cap) this.count++;
    else this.start = (this.start + 1) % cap;
  }

  /** The i-th kept event, 0 being the oldest. */
  at(i: number): RoomEvent {
    return this.ring[(this.start + i) % this.ring.length]!;
  }

  dropOldest(n: number): void {
    for (let i = 0; i < n; i++) this.ring[(this.start + i) % this.ring.length] = undefined;
    this.start = (this.start + n) % Math.max(1, this.ring.length);
    this.count -= n;
  }

  get firstSeq(): number {
    return this.count > 0 ? this.at(0).seq : this.lastSeq + 1;
  }

  /** Index of the first kept event with seq > after (count when there is none). */
  indexAfter(after: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).seq > after) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  page(from: number, to: number): HistoryPage {
    const events: RoomEvent[] = [];
    for (let i = from; i < to; i++) events.push(this.at(i));
    return { events, first: this.firstSeq, last: this.lastSeq };
  }
}

export class MemoryStore implements MessageStore {
  private readonly rooms = new Map<string, RoomHistory>();
  private readonly accounts = new Map<string, Account>();
  /** As JSON: a caller's later change to what it saved must not reach what is kept. */
  private readonly roomRules = new Map<string, string>();
  private readonly now: () => number;
  private readonly observer: StoreObserver;
  private open_ = false;
  /** Highest seq per room appended this turn, reported durable at the end of the turn. */
  private marks = new Map<string, number>();
  private marking = false;
  private readonly id = randomBytes(8).toString('hex');

  constructor(private readonly opts: MemoryStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.observer = opts.observer ?? {};
  }

  async open(): Promise<StoredRoom[]> {
    this.open_ = true;
    return [...this.rooms].map(([room, h]) => ({
      room,
      lastSeq: h.lastSeq,
      firstSeq: h.firstSeq,
      topic: h.topic,
      ...(h.topicTime !== undefined && { topicNick: h.topicNick, topicTime: h.topicTime }),
    }));
  }

  append(event: RoomEvent): void {
    this.checkOpen();
    checkAppend(event, this.rooms.get(event.room)?.lastSeq ?? 0, WHERE);
    this.room(event.room).push(event);
    // Reported at the end of the turn, as the SQLite store does, so callers see one behaviour.
    this.marks.set(event.room, event.seq);
    if (!this.marking) {
      this.marking = true;
      setImmediate(() => this.reportDurable());
    }
  }

  setTopic(room: string, topic: string, nick: string): void {
    this.checkOpen();
    const h = this.room(room);
    h.topic = topic;
    h.topicNick = nick;
    h.topicTime = this.now();
  }

  async range(room: string, after: number, limit: number): Promise<HistoryPage> {
    const h = this.rooms.get(room);
    if (!h) return { events: [], first: 1, last: 0 };
    const from = h.indexAfter(after);
    return h.page(from, Math.min(h.count, from + Math.max(0, limit)));
  }

  async latest(room: string, n: number): Promise<HistoryPage> {
    const h = this.rooms.get(room);
    if (!h) return { events: [], first: 1, last: 0 };
    return h.page(Math.max(0, h.count - Math.max(0, n)), h.count);
  }

  async search(room: string, query: string, limit: number, beforeSeq = Infinity): Promise<SearchHit[]> {
    const h = this.rooms.get(room);
    const terms = parseQuery(query);
    const hits: SearchHit[] = [];
    if (!h || terms.length === 0) return hits;
    for (let i = h.indexAfter(beforeSeq - 1) - 1; i >= 0 && hits.length < limit; i--) {
      const event = h.at(i);
      if (event.type !== 'message') continue;
      const marks = markMatches(event.text, terms);
      if (marks) hits.push({ event: event as MessageEvent, marks });
    }
    return hits;
  }

  async prune(retention: Retention): Promise<PruneResult> {
    const cutoff = retention.maxAgeMs === undefined ? -Infinity : this.now() - retention.maxAgeMs;
    let deleted = 0;
    for (const h of this.rooms.values()) {
      let n = retention.maxPerRoom === undefined ? 0 : Math.max(0, h.count - retention.maxPerRoom);
      while (n < h.count && h.at(n).time < cutoff) n++;
      h.dropOldest(n);
      deleted += n;
    }
    return { deleted };
  }

  async flush(): Promise<void> {
    this.reportDurable();
  }

  async close(): Promise<void> {
    this.reportDurable();
    this.open_ = false;
  }

  accountNow(key: string): Account | null {
    return this.accounts.get(key) ?? null;
  }

  async account(key: string): Promise<Account | null> {
    return this.accountNow(key);
  }

  async updateAccount(account: Account): Promise<void> {
    this.accounts.set(account.key, account);
  }

  rulesNow(room: string): RoomRules | null {
    const json = this.roomRules.get(room);
    return json === undefined ? null : (JSON.parse(json) as RoomRules);
  }

  async rules(room: string): Promise<RoomRules | null> {
    return this.rulesNow(room);
  }

  async saveRules(room: string, rules: RoomRules): Promise<void> {
    this.roomRules.set(room, JSON.stringify(rules));
  }

  async createAccount(account: Account): Promise<boolean> {
    if (this.accounts.has(account.key)) return false;
    this.accounts.set(account.key, account);
    return true;
  }

  historyId(): string {
    return this.id;
  }

  health(): StoreHealth {
    return { state: 'ok', failedWrites: 0, queued: 0, dropped: 0 };
  }

  private reportDurable(): void {
    this.marking = false;
    const marks = this.marks;
    if (marks.size === 0) return;
    this.marks = new Map();
    for (const [room, seq] of marks) this.observer.durable?.(room, seq);
  }

  private room(name: string): RoomHistory {
    let h = this.rooms.get(name);
    if (!h) {
      h = new RoomHistory(this.opts.perRoom);
      this.rooms.set(name, h);
    }
    return h;
  }

  private checkOpen(): void {
    if (!this.open_) throw new StoreError('STORE_CLOSED', WHERE, 'open it first');
  }
}

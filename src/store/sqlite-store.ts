/**
 * The message store in an SQLite file (better-sqlite3): synchronous calls in the hub's
 * process, WAL, and FTS5 for search.
 *
 * Writes are queued per room and written together in one transaction, after the deliveries:
 * at the end of the turn under `always` (acks wait) or in a burst, else a few milliseconds on,
 * so a light flow shares commits too. Each room's events of one write are one row, a block
 * (event-block.ts): a row and a commit per message would cost the hub more than the fan-out
 * they follow.
 *
 * The full-text index is filled when a room is searched, with what the room has said since it
 * was last searched, in steps between which chat goes on: indexing as messages arrive would
 * make every room pay for search, which most rooms never use (docs/performance.md).
 *
 * When a write fails (disk full, I/O error) the events stay queued, in memory and bounded,
 * the store reports itself degraded once, and the write is retried with a growing delay
 * until it succeeds, when the store reports that it has recovered.
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { MessageEvent, RoomEvent } from '../protocol/events.js';
import { StoreError } from './errors.js';
import { blockEvents, blockOf, blockText, BlockWriter, firstTime, FIRST_TIME_BYTES } from './event-block.js';
import { insertBlockSql, openDatabase, roomToken, storeErrorOf, type Db } from './sqlite-schema.js';
import {
  checkAppend,
  type Account,
  type RoomRules,
  MAX_SEQ,
  type FsyncPolicy,
  type HistoryPage,
  type MessageStore,
  type PruneResult,
  type Retention,
  type SearchHit,
  type StoredRoom,
  type StoreHealth,
  type StoreObserver,
} from './store.js';
import { ftsQuery, markMatches, parseQuery, type SearchTerm } from './text-search.js';

/** The file in the data directory. */
export const STORE_FILE = 'messages.sqlite';

export interface SqliteStoreOptions {
  /** The data directory; created when missing. */
  dir: string;
  fsync: FsyncPolicy;
  /** Clock for topic times and age-based pruning. */
  now?: () => number;
  observer?: StoreObserver;
  /** Events kept in memory while writes fail; past it the oldest are given up. */
  maxQueued?: number;
  /** Under `batch` and `off`, how long a few appended events may wait to share a transaction. */
  writeDelayMs?: number;
  /** Under `batch`, how often written events are synced. */
  syncIntervalMs?: number;
  /** Delay before the first retry of a failed write, doubled on each failure up to retryMaxMs. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export const SQLITE_DEFAULTS = {
  maxQueued: 100_000,
  writeDelayMs: 10,
  syncIntervalMs: 1000,
  retryMinMs: 50,
  retryMaxMs: 2000,
};

/**
 * Events written per transaction at most: a burst is written over several turns, so one
 * transaction never holds the hub for long.
 */
const MAX_BATCH = 5000;
/** Events waiting that make the next write happen at the end of the turn. */
const WRITE_SOON = 1024;
/**
 * How far ahead of the last number handed out a room's reservation is written: one small
 * write per this many events of a room.
 */
const SEQ_RESERVE = 10_000;
/** A room's first writer: enough for a few hundred messages; it grows for more. */
const PENDING_BYTES = 16 * 1024;
const PENDING_RECORDS = 128;
/**
 * Bytes of writers kept for reuse: a busy room's writer, grown to its bursts, is not grown
 * again for each, and memory is spent on rooms that wait, not on every room.
 */
const SPARE_BYTES = 4 * 1024 * 1024;
/** Blocks dropped per step of prune(), each step its own transaction and turn. */
const PRUNE_STEP = 64;
/** Events indexed per step when a room is searched, each step its own transaction and turn. */
const INDEX_STEP = 2000;
/** Blocks a search reads before it gives up looking for more hits (the client asks again). */
const SEARCH_BLOCKS = 2000;

/** What the store knows of a room without reading the file. */
interface RoomState {
  name: string;
  /** The row id in rooms; undefined until the room's first write commits. */
  id: number | undefined;
  /** The last seq appended, written or not. */
  lastSeq: number;
  /** Numbers up to here may have been handed out: the file says so (see SEQ_RESERVE). */
  reservedSeq: number;
  firstSeq: number;
  /** The last seq in the file, and the last in the full-text index. */
  writtenSeq: number;
  indexedSeq: number;
  /** Appended, not yet written, oldest first; null when none is. */
  pending: BlockWriter | null;
  /** The running catch-up of the full-text index, which concurrent searches share. */
  indexing: Promise<void> | null;
  topic: string;
  topicNick?: string;
  topicTime?: number;
}

export class SqliteStore implements MessageStore {
  readonly file: string;
  private readonly opts: Required<Omit<SqliteStoreOptions, 'observer' | 'now'>>;
  private readonly now: () => number;
  private readonly observer: StoreObserver;
  private db: Db | null = null;
  private stmt!: ReturnType<typeof prepare>;
  private readonly rooms = new Map<string, RoomState>();
  /** Rooms with events waiting, in the order they first had one. */
  private readonly waiting = new Set<RoomState>();
  /** Events waiting, in all rooms. */
  private queued = 0;
  /** Rooms whose topic must be written. */
  private readonly dirty = new Set<RoomState>();
  /**
   * A write failed: it may have committed all the same (an error reported after the commit),
   * so the next write first asks the file what it holds, and writes nothing twice.
   */
  private uncertain = false;
  private scheduled = false;
  private writeTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  /** Committed under `batch` since the last sync. */
  private unsynced = false;
  private syncing = false;
  private failures = 0; // consecutive, for the retry delay
  private failedWrites = 0;
  private dropped = 0;
  private lastError: StoreError | null = null;
  /** Writers of rooms that had events waiting, kept for the next room that has some. */
  private readonly spare: BlockWriter[] = [];
  private spareBytes = 0;
  private history = '';

  constructor(opts: SqliteStoreOptions) {
    const { observer, now, ...rest } = opts;
    this.opts = { ...SQLITE_DEFAULTS, ...rest };
    this.file = path.join(opts.dir, STORE_FILE);
    this.now = now ?? Date.now;
    this.observer = observer ?? {};
  }

  async open(): Promise<StoredRoom[]> {
    if (!this.db) {
      const db = openDatabase(this.file, this.opts.fsync);
      try {
        this.stmt = prepare(db);
        this.loadRooms();
        this.history = String(db.prepare(`SELECT value FROM store_meta WHERE key = 'history'`).pluck().get());
      } catch (err) {
        db.close();
        throw storeErrorOf(err, this.file, true);
      }
      this.db = db;
      if (this.opts.fsync === 'batch') {
        this.syncTimer = setInterval(() => this.syncInBackground(), this.opts.syncIntervalMs);
        this.syncTimer.unref();
      }
    }
    return [...this.rooms.values()].map((st) => ({
      room: st.name,
      lastSeq: st.lastSeq,
      firstSeq: st.firstSeq,
      topic: st.topic,
      ...(st.topicTime !== undefined && { topicNick: st.topicNick, topicTime: st.topicTime }),
    }));
  }

  append(event: RoomEvent): void {
    this.checkOpen();
    const st = this.rooms.get(event.room);
    checkAppend(event, st?.lastSeq ?? 0, this.file);
    const room = st ?? this.newRoom(event.room);
    // While writes fail, nothing is written anyway: the reservation waits for the recovery.
    if (event.seq > room.reservedSeq && !this.lastError) this.reserve(room, event.seq + SEQ_RESERVE);
    if (room.firstSeq > room.lastSeq) room.firstSeq = event.seq;
    room.lastSeq = event.seq;
    // Only while writes fail can the queue get this long; memory must stay bounded.
    if (this.queued >= this.opts.maxQueued) this.dropOldest();
    if (room.pending === null) {
      room.pending = this.spareWriter();
      this.waiting.add(room);
    }
    room.pending.add(event);
    this.queued++;
    this.schedule();
  }

  setTopic(room: string, topic: string, nick: string): void {
    this.checkOpen();
    const st = this.rooms.get(room) ?? this.newRoom(room);
    st.topic = topic;
    st.topicNick = nick;
    st.topicTime = this.now();
    this.dirty.add(st);
    this.schedule();
  }

  async range(room: string, after: number, limit: number): Promise<HistoryPage> {
    this.checkOpen();
    const st = this.rooms.get(room);
    if (!st) return { events: [], first: 1, last: 0 };
    const n = clampCount(limit);
    const from = Number.isFinite(after) ? Math.max(0, Math.min(MAX_SEQ, Math.floor(after))) : after > 0 ? MAX_SEQ : 0;
    const events: RoomEvent[] = [];
    if (st.id !== undefined && n > 0 && from < st.writtenSeq) {
      this.rows(() => {
        // From the block holding from + 1 on; iterating stops reading once the page is full.
        for (const body of this.stmt.blocksFrom.iterate(st.id, st.id, from + 1) as Iterable<Buffer>) {
          for (const e of blockEvents(room, body)) if (e.seq > from && events.length < n) events.push(e);
          if (events.length >= n) break;
        }
        return [];
      });
    }
    const done = events.length > 0 ? events[events.length - 1]!.seq : from;
    if (st.pending && events.length < n) {
      const i = st.pending.after(done);
      for (const e of st.pending.events(room, i)) {
        if (events.length >= n) break;
        events.push(e);
      }
    }
    return { events, first: st.firstSeq, last: st.lastSeq };
  }

  async latest(room: string, count: number): Promise<HistoryPage> {
    this.checkOpen();
    const st = this.rooms.get(room);
    if (!st) return { events: [], first: 1, last: 0 };
    const n = clampCount(count);
    const waiting = st.pending?.count ?? 0;
    const pending = st.pending ? st.pending.events(room, Math.max(0, waiting - n)) : [];
    if (pending.length >= n) return { events: pending, first: st.firstSeq, last: st.lastSeq };
    // Newest block first, until enough; then the blocks are put back in order.
    const blocks: RoomEvent[][] = [];
    let have = pending.length;
    if (st.id !== undefined) {
      this.rows(() => {
        for (const body of this.stmt.blocksNewest.iterate(st.id) as Iterable<Buffer>) {
          const events = blockEvents(room, body);
          blocks.push(have + events.length > n ? events.slice(events.length - (n - have)) : events);
          have += events.length;
          if (have >= n) break;
        }
        return [];
      });
    }
    return { events: blocks.reverse().flat().concat(pending), first: st.firstSeq, last: st.lastSeq };
  }

  async search(room: string, query: string, limit: number, beforeSeq?: number): Promise<SearchHit[]> {
    this.checkOpen();
    const terms = parseQuery(query);
    const n = clampCount(limit);
    if (terms.length === 0 || n === 0) return [];
    // What waits is written and indexed first, so that nothing appended is missed; failing to
    // write is reported like any failed write, and the search goes on over what is written.
    if (!this.retryTimer) this.writeAll();
    const st = this.rooms.get(room);
    if (!st || st.id === undefined) return [];
    await this.catchUpIndex(st);
    if (!this.db) return [];
    const before = beforeSeq === undefined ? MAX_SEQ + 1 : Math.max(0, Math.min(MAX_SEQ + 1, Math.ceil(beforeSeq)));
    try {
      return this.findInBlocks(st, terms, before, n);
    } catch (err) {
      // A word the index cuts in two (a character its Unicode tables class otherwise) makes a
      // phrase, which this index cannot search: nothing matches it.
      if ((err as { code?: string }).code === 'SQLITE_ERROR') return [];
      throw storeErrorOf(err, this.file, false);
    }
  }

  async prune(retention: Retention): Promise<PruneResult> {
    this.checkOpen();
    if (!this.retryTimer) this.writeAll();
    const cutoff = retention.maxAgeMs === undefined ? -Infinity : this.now() - retention.maxAgeMs;
    let deleted = 0;
    let rooms = 0;
    for (const st of [...this.rooms.values()]) {
      if (st.id === undefined) continue;
      // A server of many rooms checks them a hundred a turn.
      if (++rooms % 100 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.db) return { deleted };
      const keepFrom = retention.maxPerRoom === undefined ? 0 : st.lastSeq - retention.maxPerRoom + 1;
      const old = (seq: number, time: number): boolean => seq < keepFrom || time < cutoff;
      for (;;) {
        if (!this.db) return { deleted };
        const oldest = this.rows<BlockHead>(() => this.stmt.oldestBlocks.all(st.id, PRUNE_STEP));
        let k = 0; // blocks dropped whole: their last event is old
        while (k < oldest.length && old(oldest[k]!.last, oldest[k]!.time)) k++;
        const next = oldest[k];
        // The block after them may begin with old events: it is written again without them.
        const trimmed = next && (next.first < keepFrom || this.startsOld(next, cutoff)) ? this.trimmed(st, next, old) : null;
        if (k === 0 && trimmed === null) break;
        const rewrite = next && trimmed ? { head: next, events: trimmed } : null;
        this.rows(() => [this.stmt.dropBlocks(st.id!, k > 0 ? oldest[k - 1]!.first : 0, st.indexedSeq, rewrite)]);
        for (let i = 0; i < k; i++) deleted += oldest[i]!.n;
        if (next && trimmed) deleted += next.n - trimmed.length;
        st.firstSeq = trimmed ? trimmed[0]!.seq : next ? next.first : Math.max(st.firstSeq, oldest[k - 1]!.last + 1);
        if (k < oldest.length) break;
        // Yield between steps: appends and reads go on while a long history is dropped.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return { deleted };
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.writeAll() || !this.sync()) throw this.lastError!;
  }

  async close(): Promise<void> {
    if (!this.db) return;
    for (const t of [this.syncTimer, this.retryTimer, this.writeTimer]) if (t) clearTimeout(t);
    this.syncTimer = this.retryTimer = this.writeTimer = null;
    this.writeAll();
    const lost = this.queued;
    const error = this.lastError;
    try {
      // Everything handed out is written: the next start needs to skip nothing.
      if (lost === 0) this.stmt.unreserve(this.rooms.values());
    } catch {
      // Then the next start skips what was reserved: numbers are lost, never reused.
    }
    try {
      this.db.close();
    } finally {
      this.db = null;
    }
    for (const st of this.waiting) st.pending = null;
    this.waiting.clear();
    this.spare.length = 0;
    this.spareBytes = 0;
    this.queued = 0;
    this.dirty.clear();
    if (lost > 0)
      throw new StoreError('STORE_IO', this.file, `closed with ${lost} events not written, now lost: ${error?.message ?? 'unknown error'}`);
  }

  historyId(): string {
    return this.history;
  }

  accountNow(key: string): Account | null {
    this.checkOpen();
    return this.query(() => (this.stmt.account.get(key) as Account | undefined) ?? null);
  }

  async account(key: string): Promise<Account | null> {
    return this.accountNow(key);
  }

  /** Written at once, in a transaction of its own: an account is rare, and must not wait for a batch. */
  async createAccount(a: Account): Promise<boolean> {
    this.checkOpen();
    return this.query(() => this.stmt.createAccount.run(a.key, a.nick, a.hash, a.created).changes === 1);
  }

  async updateAccount(a: Account): Promise<void> {
    this.checkOpen();
    this.query(() => this.stmt.updateAccount.run(a.nick, a.hash, a.key));
  }

  rulesNow(room: string): RoomRules | null {
    this.checkOpen();
    const json = this.query(() => this.stmt.rules.get(room) as string | undefined);
    return json === undefined ? null : (JSON.parse(json) as RoomRules);
  }

  async rules(room: string): Promise<RoomRules | null> {
    return this.rulesNow(room);
  }

  /** Written at once, like an account: rare, and a ban must outlast a crash right after it. */
  async saveRules(room: string, rules: RoomRules): Promise<void> {
    this.checkOpen();
    this.query(() => this.stmt.saveRules.run(room, JSON.stringify(rules)));
  }

  health(): StoreHealth {
    const h: StoreHealth = {
      state: this.lastError ? 'degraded' : 'ok',
      failedWrites: this.failedWrites,
      queued: this.queued,
      dropped: this.dropped,
    };
    if (this.lastError) {
      h.reason = this.lastError.message;
      h.code = this.lastError.code;
    }
    return h;
  }

  // ---- writing ----

  /**
   * Writes at once, in a transaction of its own, that numbers up to `upTo` may be handed out:
   * it reaches the file before the event that needed it reaches anyone.
   */
  private reserve(st: RoomState, upTo: number): void {
    try {
      if (st.id === undefined) st.id = Number(this.stmt.insertRoom.run(st.name).lastInsertRowid);
      this.stmt.reserve.run(upTo, st.lastSeq, st.id);
      st.reservedSeq = upTo;
    } catch (err) {
      this.failed(err);
    }
  }

  /**
   * Gives up a tenth of what waits, the oldest events of the rooms with most waiting: the
   * events clients are least likely to ask for again.
   */
  private dropOldest(): void {
    let toDrop = Math.max(1, Math.floor(this.opts.maxQueued / 10));
    const rooms = [...this.waiting].sort((a, b) => b.pending!.count - a.pending!.count);
    for (const st of rooms) {
      if (toDrop === 0) break;
      const k = Math.min(toDrop, st.pending!.count);
      this.unqueue(st, k);
      this.dropped += k;
      toDrop -= k;
    }
  }

  /**
   * Sets the next write: at the end of this turn under `always` (an ack waits for it) or once
   * WRITE_SOON events wait; otherwise a few milliseconds on, so that a light steady flow makes
   * one transaction of several turns' events instead of one a turn (each commit costs the hub
   * a write to the WAL).
   */
  private schedule(): void {
    if (this.retryTimer) return;
    const soon = this.opts.fsync === 'always' || this.queued >= WRITE_SOON;
    if (this.scheduled || (this.writeTimer && !soon)) return;
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = null;
    const run = (): void => {
      this.scheduled = false;
      this.writeTimer = null;
      this.write(MAX_BATCH);
      if (this.queued > 0 && !this.retryTimer) this.schedule();
    };
    if (soon) {
      this.scheduled = true;
      setImmediate(run);
    } else {
      this.writeTimer = setTimeout(run, this.opts.writeDelayMs);
      this.writeTimer.unref();
    }
  }

  /** Writes everything queued, now; false on failure. */
  private writeAll(): boolean {
    while (this.queued > 0 || this.dirty.size > 0) if (!this.write(Infinity)) return false;
    return true;
  }

  /**
   * Writes up to `max` queued events, a block per room, and the topics that changed, in one
   * transaction; then reports the events durable. On failure nothing is written, everything
   * stays queued, and a retry is set.
   */
  private write(max: number): boolean {
    const db = this.db;
    if (!db || (this.queued === 0 && this.dirty.size === 0)) return true;
    const created: RoomState[] = [];
    /** Per room written: how many of its waiting events the write takes. */
    const taken = new Map<RoomState, number>();
    const { insertBlock, insertRoom, updateTopic, lastWritten } = this.stmt;
    const roomId = (st: RoomState): number => {
      if (st.id === undefined) {
        st.id = Number(insertRoom.run(st.name).lastInsertRowid);
        created.push(st);
      }
      return st.id;
    };
    try {
      db.exec('BEGIN');
      try {
        let budget = max;
        for (const st of this.waiting) {
          if (budget <= 0) break;
          const pending = st.pending!;
          const k = Math.min(budget, pending.count);
          budget -= k;
          taken.set(st, k);
          // After a failed write that did commit, its events are in the file already.
          const inFile = this.uncertain && st.id !== undefined ? ((lastWritten.get(st.id) as number | undefined) ?? 0) : 0;
          const from = Math.min(k, pending.after(inFile));
          if (from === k) continue;
          insertBlock.run(roomId(st), pending.seqAt(from), pending.seqAt(k - 1), k - from, pending.timeAt(k - 1), pending.slice(from, k));
        }
        for (const st of this.dirty) updateTopic.run(st.topic, st.topicNick ?? null, st.topicTime ?? null, roomId(st));
        db.exec('COMMIT');
      } finally {
        if (db.inTransaction) db.exec('ROLLBACK');
      }
    } catch (err) {
      for (const st of created) st.id = undefined;
      this.uncertain = true;
      this.failed(err);
      return false;
    }
    this.uncertain = false;
    this.dirty.clear();
    const written: [RoomState, number][] = [];
    for (const [st, k] of taken) {
      const seq = st.pending!.seqAt(k - 1);
      st.writtenSeq = seq;
      written.push([st, seq]);
      this.unqueue(st, k);
    }
    this.unsynced = true;
    this.succeeded();
    for (const [st, seq] of written) this.observer.durable?.(st.name, seq);
    return true;
  }

  /**
   * Under `batch`: forces what was committed to disk (a checkpoint syncs the WAL first).
   * False when that failed.
   */
  private sync(): boolean {
    if (!this.db || this.opts.fsync !== 'batch' || !this.unsynced) return true;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      this.failed(err);
      return false;
    }
    this.unsynced = false;
    // A failed sync may have been the only failure, which no write would then clear; while
    // writes wait, it is their success that says the store has recovered.
    if (this.queued === 0 && this.dirty.size === 0) this.succeeded();
    return true;
  }

  /**
   * Under `batch`, once a second: forces the WAL to disk from libuv's thread pool, so the hub
   * never waits on the disk for it. A WAL's committed frames are what recovery replays, so
   * once it is synced they survive a power cut; the checkpoint that sync() runs (writing them
   * into the main file, itself synced) waits for SQLite's own automatic checkpoints.
   */
  private syncInBackground(): void {
    if (!this.db || !this.unsynced || this.syncing || this.retryTimer) return;
    this.unsynced = false;
    this.syncing = true;
    void (async () => {
      let handle: FileHandle | undefined;
      try {
        handle = await open(`${this.file}-wal`, 'r');
        await handle.sync();
      } catch (err) {
        this.unsynced = true;
        if (this.db) this.failed(err);
      } finally {
        await handle?.close().catch(() => {});
        this.syncing = false;
      }
    })();
  }

  private failed(err: unknown): void {
    const error = storeErrorOf(err, this.file, false);
    this.failedWrites++;
    const first = this.lastError === null;
    this.lastError = error;
    if (!this.retryTimer) {
      const delay = Math.min(this.opts.retryMaxMs, this.opts.retryMinMs * 2 ** Math.min(this.failures, 20));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (this.writeAll() && this.sync()) this.succeeded();
      }, delay);
      this.retryTimer.unref();
    }
    this.failures++;
    if (first) this.observer.degraded?.(error);
  }

  private succeeded(): void {
    if (!this.lastError) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.lastError = null;
    this.failures = 0;
    if (this.queued === 0) this.observer.recovered?.(this.health());
    else this.schedule();
  }

  // ---- the full-text index ----

  /**
   * Indexes the room's blocks written since it was last searched, a step (INDEX_STEP events,
   * one transaction) a turn, until it has caught up with what is written.
   */
  private catchUpIndex(st: RoomState): Promise<void> {
    if (st.indexing) return st.indexing;
    const run = async (): Promise<void> => {
      try {
        while (this.db && st.id !== undefined && st.indexedSeq < st.writtenSeq) {
          this.rows(() => [this.indexStep(st)]);
          if (st.indexedSeq < st.writtenSeq) await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } finally {
        st.indexing = null;
      }
    };
    return (st.indexing = run());
  }

  private indexStep(st: RoomState): void {
    const docs: [id: number, text: string][] = [];
    let events = 0;
    let upTo = st.indexedSeq;
    for (const [id, last, body] of this.stmt.unindexed.iterate(st.id, st.indexedSeq) as Iterable<[number, number, Buffer]>) {
      const inBlock = blockEvents(st.name, body);
      const text = blockText(inBlock);
      if (text !== '') docs.push([id, `${roomToken(st.id!)} ${text}`]);
      upTo = last;
      events += inBlock.length;
      if (events >= INDEX_STEP) break;
    }
    // Nothing newer in the file (pruned, say): what is written counts as indexed.
    if (upTo === st.indexedSeq) upTo = st.writtenSeq;
    this.stmt.index(st.id!, docs, upTo);
    st.indexedSeq = upTo;
  }

  /** Up to n messages with seq < before holding every term, newest first. */
  private findInBlocks(st: RoomState, terms: SearchTerm[], before: number, n: number): SearchHit[] {
    const hits: SearchHit[] = [];
    // The newest block holding an event before `before`: where the search starts.
    const from = this.stmt.searchFrom.get(st.id, before) as number | undefined;
    if (from === undefined) return hits;
    let blocks = 0;
    const query = `"${roomToken(st.id!)}" ${ftsQuery(terms)}`;
    for (const body of this.stmt.search.iterate(query, from) as Iterable<Buffer>) {
      const events = blockEvents(st.name, body);
      for (let i = events.length - 1; i >= 0 && hits.length < n; i--) {
        const event = events[i]!;
        if (event.type !== 'message' || event.seq >= before) continue;
        const marks = markMatches(event.text, terms);
        if (marks) hits.push({ event: event as MessageEvent, marks });
      }
      if (hits.length >= n || ++blocks >= SEARCH_BLOCKS) break;
    }
    return hits;
  }

  // ---- pruning ----

  /** Whether the block's first event is older than `cutoff`, reading only its head when it can. */
  private startsOld(head: BlockHead, cutoff: number): boolean {
    if (cutoff === -Infinity) return false;
    const bytes = this.rows<Buffer>(() => [this.stmt.blockHead.get(FIRST_TIME_BYTES, head.id) as Buffer])[0]!;
    return (firstTime(bytes) ?? -Infinity) < cutoff;
  }

  /** A block's events without its leading old ones; null when none is old. */
  private trimmed(st: RoomState, head: BlockHead, old: (seq: number, time: number) => boolean): RoomEvent[] | null {
    const events = this.rows<Buffer>(() => [this.stmt.blockBody.get(head.id) as Buffer]).flatMap((b) => blockEvents(st.name, b));
    let k = 0;
    while (k < events.length && old(events[k]!.seq, events[k]!.time)) k++;
    return k === 0 || k === events.length ? null : events.slice(k);
  }

  // ---- reading ----

  /** Runs a query; a failure is a StoreError naming the file. */
  /** One statement's answer, a failure as a StoreError naming the file. */
  private query<T>(run: () => T): T {
    try {
      return run();
    } catch (err) {
      throw storeErrorOf(err, this.file, false);
    }
  }

  private rows<T>(query: () => unknown[]): T[] {
    try {
      return query() as T[];
    } catch (err) {
      throw storeErrorOf(err, this.file, false);
    }
  }

  private loadRooms(): void {
    for (const row of this.stmt.rooms.all() as RoomRow[]) {
      const written = row.written ?? 0;
      const st: RoomState = {
        name: row.name,
        id: row.id,
        // After a crash, above anything that may have been handed out.
        lastSeq: Math.max(row.last_seq, row.reserved_seq, written),
        reservedSeq: row.reserved_seq,
        firstSeq: row.first ?? Math.max(row.last_seq, written) + 1,
        writtenSeq: written,
        indexedSeq: row.indexed_seq,
        pending: null,
        indexing: null,
        topic: row.topic,
        ...(row.topic_time !== null && { topicNick: row.topic_nick ?? '', topicTime: row.topic_time }),
      };
      this.rooms.set(row.name, st);
    }
  }

  private newRoom(name: string): RoomState {
    const st: RoomState = {
      name,
      id: undefined,
      lastSeq: 0,
      reservedSeq: 0,
      firstSeq: 1,
      writtenSeq: 0,
      indexedSeq: 0,
      pending: null,
      indexing: null,
      topic: '',
    };
    this.rooms.set(name, st);
    return st;
  }

  private spareWriter(): BlockWriter {
    const writer = this.spare.pop();
    if (!writer) return new BlockWriter(PENDING_BYTES, PENDING_RECORDS);
    this.spareBytes -= writer.capacity;
    return writer;
  }

  /** Forgets the oldest k events waiting in a room; its writer is kept for another when none is left. */
  private unqueue(st: RoomState, k: number): void {
    const pending = st.pending!;
    this.queued -= Math.min(k, pending.count);
    if (k < pending.count) return pending.dropFirst(k);
    st.pending = null;
    this.waiting.delete(st);
    pending.reset();
    if (this.spareBytes + pending.capacity <= SPARE_BYTES) {
      this.spare.push(pending);
      this.spareBytes += pending.capacity;
    }
  }

  private checkOpen(): void {
    if (!this.db) throw new StoreError('STORE_CLOSED', this.file, 'open it first, and not after close()');
  }
}

/** What prune() reads of a room's oldest blocks. */
interface BlockHead {
  id: number;
  first: number;
  last: number;
  n: number;
  /** Of the last event. */
  time: number;
}

interface RoomRow {
  id: number;
  name: string;
  last_seq: number;
  reserved_seq: number;
  indexed_seq: number;
  topic: string;
  topic_nick: string | null;
  topic_time: number | null;
  first: number | null;
  written: number | null;
}

function clampCount(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0;
}

/** The statements, prepared once. */
function prepare(db: Db) {
  const insertBlock = db.prepare(insertBlockSql);
  const account = db.prepare('SELECT key, nick, hash, created FROM accounts WHERE key = ?');
  const createAccount = db.prepare('INSERT OR IGNORE INTO accounts (key, nick, hash, created) VALUES (?, ?, ?, ?)');
  const insertDocs = db.prepare(`INSERT INTO blocks_fts (rowid, text) SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?) j`);
  const setIndexed = db.prepare('UPDATE rooms SET indexed_seq = ? WHERE id = ?');
  const unindexTo = db.prepare('DELETE FROM blocks_fts WHERE rowid IN (SELECT id FROM blocks WHERE room = ? AND first <= ?)');
  const unindexOne = db.prepare('DELETE FROM blocks_fts WHERE rowid = ?');
  const deleteTo = db.prepare('DELETE FROM blocks WHERE room = ? AND first <= ?');
  const rewriteBlock = db.prepare('UPDATE blocks SET first = ?, n = ?, body = ? WHERE id = ?');
  const reserveAt = db.prepare('UPDATE rooms SET reserved_seq = ?, last_seq = max(last_seq, ?) WHERE id = ?');
  return {
    rooms: db.prepare(
      `SELECT r.id, r.name, r.last_seq, r.reserved_seq, r.indexed_seq, r.topic, r.topic_nick, r.topic_time,
         (SELECT min(b.first) FROM blocks b WHERE b.room = r.id) AS first,
         (SELECT b.last FROM blocks b WHERE b.room = r.id ORDER BY b.first DESC LIMIT 1) AS written
       FROM rooms r`,
    ),
    insertRoom: db.prepare('INSERT INTO rooms (name) VALUES (?)'),
    account,
    createAccount,
    updateAccount: db.prepare('UPDATE accounts SET nick = ?, hash = ? WHERE key = ?'),
    rules: db.prepare('SELECT rules FROM room_rules WHERE room = ?').pluck(),
    saveRules: db.prepare('INSERT INTO room_rules (room, rules) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET rules = excluded.rules'),
    reserve: reserveAt,
    /** Sets every room's reservation back to its last number, written as it closes. */
    unreserve: db.transaction((rooms: Iterable<RoomState>) => {
      for (const st of rooms) if (st.id !== undefined) reserveAt.run(st.lastSeq, st.lastSeq, st.id);
    }),
    updateTopic: db.prepare('UPDATE rooms SET topic = ?, topic_nick = ?, topic_time = ? WHERE id = ?'),
    insertBlock,
    lastWritten: db.prepare('SELECT last FROM blocks WHERE room = ? ORDER BY first DESC LIMIT 1').pluck(),
    /** Bodies of the room's blocks from the one holding seq ? on. */
    blocksFrom: db
      .prepare(
        `SELECT body FROM blocks
         WHERE room = ? AND first >= coalesce((SELECT max(first) FROM blocks WHERE room = ? AND first <= ?), 0) ORDER BY first`,
      )
      .pluck(),
    blocksNewest: db.prepare('SELECT body FROM blocks WHERE room = ? ORDER BY first DESC').pluck(),
    blockBody: db.prepare('SELECT body FROM blocks WHERE id = ?').pluck(),
    blockHead: db.prepare('SELECT substr(body, 1, ?) FROM blocks WHERE id = ?').pluck(),
    oldestBlocks: db.prepare('SELECT id, first, last, n, time FROM blocks WHERE room = ? ORDER BY first LIMIT ?'),
    unindexed: db.prepare('SELECT id, last, body FROM blocks WHERE room = ? AND first > ? ORDER BY first').raw(true),
    /** Puts blocks' text in the index: one statement, as FTS5 has a cost per statement as well as per word. */
    index: db.transaction((room: number, docs: [number, string][], upTo: number) => {
      if (docs.length > 0) insertDocs.run(JSON.stringify(docs));
      setIndexed.run(upTo, room);
    }),
    /** The room's newest block holding an event before seq ?. */
    searchFrom: db.prepare('SELECT id FROM blocks WHERE room = ? AND first < ? ORDER BY first DESC LIMIT 1').pluck(),
    /** Blocks matching, newest first, from block ? back (the room is a word of the query). */
    search: db
      .prepare(
        `SELECT b.body FROM blocks_fts f JOIN blocks b ON b.id = f.rowid
         WHERE blocks_fts MATCH ? AND f.rowid <= ? ORDER BY f.rowid DESC`,
      )
      .pluck(),
    /**
     * Drops the room's blocks whose first seq is at most `upTo` (none when 0), and writes
     * `rewrite` (a block without its oldest events) in place of its block; blocks the index
     * holds (first seq at most `indexedSeq`) leave it, and a rewritten one goes back in.
     */
    dropBlocks: db.transaction(
      (room: number, upTo: number, indexedSeq: number, rewrite: { head: BlockHead; events: RoomEvent[] } | null) => {
        if (upTo > 0) {
          unindexTo.run(room, Math.min(upTo, indexedSeq));
          deleteTo.run(room, upTo);
        }
        if (rewrite) {
          // In place, keeping its id: the index lists a room's blocks in the order of their ids.
          const { head, events } = rewrite;
          rewriteBlock.run(events[0]!.seq, events.length, blockOf(events), head.id);
          if (head.first <= indexedSeq) {
            unindexOne.run(head.id);
            const text = blockText(events);
            if (text !== '') insertDocs.run(JSON.stringify([[head.id, `${roomToken(room)} ${text}`]]));
          }
        }
      },
    ),
  };
}

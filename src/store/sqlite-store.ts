/**
 * The message store in an SQLite file (better-sqlite3): synchronous calls in the hub's
 * process, WAL, and FTS5 for search.
 *
 * Writes are queued and written together in one transaction, after the deliveries: at the
 * end of the turn under `always` (acks wait) or in a burst, else a few milliseconds on, so a
 * light flow shares commits too. A transaction per message would cost a commit (and under
 * `always` an fsync) per message. The full-text index follows the events table a little behind: a room's new
 * messages are indexed together once enough have gathered or a moment has passed, since every
 * write to the index has a large cost of its own, whatever it holds (docs/performance.md).
 * Search indexes what is left first, so it never misses a message.
 *
 * When a write fails (disk full, I/O error) the events stay queued, in memory and bounded,
 * the store reports itself degraded once, and the write is retried with a growing delay
 * until it succeeds, when the store reports that it has recovered.
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { MessageEvent, RoomEvent } from '../protocol/events.js';
import { StoreError } from './errors.js';
import { eventOf, rowValues, type EventRow } from './event-row.js';
import { openDatabase, storeErrorOf, type Db } from './sqlite-schema.js';
import {
  checkAppend,
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
import { ftsQuery, markMatches, parseQuery } from './text-search.js';

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
  /** A room's written messages are indexed once this many wait, or after indexDelayMs. */
  indexBatch?: number;
  indexDelayMs?: number;
}

export const SQLITE_DEFAULTS = {
  maxQueued: 100_000,
  writeDelayMs: 10,
  syncIntervalMs: 1000,
  retryMinMs: 50,
  retryMaxMs: 2000,
  indexBatch: 256,
  indexDelayMs: 250,
};

/**
 * Events written per transaction at most: a burst is written over several turns, so one
 * transaction never holds the hub for long.
 */
const MAX_BATCH = 5000;
/** Events waiting that make the next write happen at the end of the turn. */
const WRITE_SOON = 256;
/**
 * How far ahead of the last number handed out a room's reservation is written: one small
 * write per this many events of a room.
 */
const SEQ_RESERVE = 1000;
/** Events deleted per step of prune(), each step its own transaction and turn. */
const PRUNE_STEP = 500;

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
  /** Appended, not yet written, in the order appended. */
  private queue: RoomEvent[] = [];
  /** Rooms whose row (last seq, topic) must be written. */
  private readonly dirty = new Set<RoomState>();
  /** Rooms with written messages not yet in the full-text index. */
  private readonly lagging = new Set<RoomState>();
  private scheduled = false;
  private writeTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private indexTimer: NodeJS.Timeout | null = null;
  /** Committed under `batch` since the last sync. */
  private unsynced = false;
  private syncing = false;
  private failures = 0; // consecutive, for the retry delay
  private failedWrites = 0;
  private dropped = 0;
  private lastError: StoreError | null = null;

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
      } catch (err) {
        db.close();
        throw storeErrorOf(err, this.file, true);
      }
      this.db = db;
      // Messages a crash left out of the index (it follows the events by a moment) go in now.
      this.writeAll(true);
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
    this.dirty.add(room);
    if (this.queue.length >= this.opts.maxQueued) {
      // Only while writes fail can the queue get this long; memory must stay bounded, and the
      // oldest events are the ones clients are least likely to ask for again.
      const n = Math.max(1, Math.floor(this.opts.maxQueued / 10));
      this.queue.splice(0, n);
      this.dropped += n;
    }
    this.queue.push(event);
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
    const events = st.id === undefined || n === 0 ? [] : this.read(() => this.stmt.range.all(st.id, from, st.id, n), room);
    const done = events.length > 0 ? events[events.length - 1]!.seq : from;
    for (const e of this.queue) {
      if (events.length >= n) break;
      if (e.room === room && e.seq > done) events.push(e);
    }
    return { events, first: st.firstSeq, last: st.lastSeq };
  }

  async latest(room: string, count: number): Promise<HistoryPage> {
    this.checkOpen();
    const st = this.rooms.get(room);
    if (!st) return { events: [], first: 1, last: 0 };
    const n = clampCount(count);
    const queued = this.queue.filter((e) => e.room === room);
    if (queued.length >= n) return { events: queued.slice(queued.length - n), first: st.firstSeq, last: st.lastSeq };
    const written = st.id === undefined ? [] : this.read(() => this.stmt.latest.all(st.id, st.id, n - queued.length), room);
    return { events: written.reverse().concat(queued), first: st.firstSeq, last: st.lastSeq };
  }

  async search(room: string, query: string, limit: number, beforeSeq?: number): Promise<SearchHit[]> {
    this.checkOpen();
    const terms = parseQuery(query);
    const n = clampCount(limit);
    if (terms.length === 0 || n === 0) return [];
    // Indexes what waits, so that nothing appended is missed; failing here is reported like
    // any failed write, and the search goes on over what is indexed.
    if (!this.retryTimer) this.writeAll(true);
    const st = this.rooms.get(room);
    if (!st || st.id === undefined) return [];
    const before = beforeSeq === undefined ? MAX_SEQ + 1 : Math.max(0, Math.min(MAX_SEQ + 1, Math.ceil(beforeSeq)));
    let rows: EventRow[];
    try {
      rows = this.stmt.search.all(ftsQuery(terms), st.id, st.id, before, n) as EventRow[];
    } catch (err) {
      // A word the index cuts in two (a character its Unicode tables class otherwise) makes a
      // phrase, which this index cannot search: nothing matches it.
      if ((err as { code?: string }).code === 'SQLITE_ERROR') return [];
      throw storeErrorOf(err, this.file, false);
    }
    return rows.map((row) => {
      const event = eventOf(room, row) as MessageEvent;
      return { event, marks: markMatches(event.text, terms) ?? [] };
    });
  }

  async prune(retention: Retention): Promise<PruneResult> {
    this.checkOpen();
    if (!this.retryTimer) this.writeAll(true);
    const cutoff = retention.maxAgeMs === undefined ? -Infinity : this.now() - retention.maxAgeMs;
    let deleted = 0;
    for (const st of [...this.rooms.values()]) {
      if (st.id === undefined) continue;
      const keepFrom = retention.maxPerRoom === undefined ? 0 : st.lastSeq - retention.maxPerRoom + 1;
      for (;;) {
        if (!this.db) return { deleted };
        const oldest = this.rows<{ seq: number; time: number }>(() => this.stmt.oldest.all(st.id, st.id, PRUNE_STEP));
        let k = 0;
        while (k < oldest.length && (oldest[k]!.seq < keepFrom || oldest[k]!.time < cutoff)) k++;
        if (k === 0) break;
        const upTo = oldest[k - 1]!.seq;
        // Only indexed rows are taken out of the index: taking out one that was never put in
        // would corrupt it.
        this.rows(() => [this.stmt.deleteTo(st.id!, upTo + 1, Math.min(upTo, st.indexedSeq) + 1)]);
        deleted += k;
        st.firstSeq = Math.max(st.firstSeq, upTo + 1);
        if (k < oldest.length) break;
        // Yield between steps: appends and reads go on while a long history is dropped.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return { deleted };
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.writeAll(true) || !this.sync()) throw this.lastError!;
  }

  async close(): Promise<void> {
    if (!this.db) return;
    for (const t of [this.syncTimer, this.retryTimer, this.indexTimer, this.writeTimer]) if (t) clearTimeout(t);
    this.syncTimer = this.retryTimer = this.indexTimer = this.writeTimer = null;
    this.writeAll(true);
    const lost = this.queue.length;
    const error = this.lastError;
    try {
      // Everything handed out is written: the next start needs to skip nothing.
      if (lost === 0) this.stmt.unreserve.run();
    } catch {
      // Then the next start skips what was reserved: numbers are lost, never reused.
    }
    try {
      this.db.close();
    } finally {
      this.db = null;
    }
    this.queue = [];
    this.dirty.clear();
    this.lagging.clear();
    if (lost > 0)
      throw new StoreError('STORE_IO', this.file, `closed with ${lost} events not written, now lost: ${error?.message ?? 'unknown error'}`);
  }

  health(): StoreHealth {
    const h: StoreHealth = {
      state: this.lastError ? 'degraded' : 'ok',
      failedWrites: this.failedWrites,
      queued: this.queue.length,
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
      this.stmt.reserve.run(upTo, st.id);
      st.reservedSeq = upTo;
    } catch (err) {
      this.failed(err);
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
    const soon = this.opts.fsync === 'always' || this.queue.length >= WRITE_SOON;
    if (this.scheduled || (this.writeTimer && !soon)) return;
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = null;
    const run = (): void => {
      this.scheduled = false;
      this.writeTimer = null;
      this.write(MAX_BATCH, false);
      if (this.queue.length > 0 && !this.retryTimer) this.schedule();
    };
    if (soon) {
      this.scheduled = true;
      setImmediate(run);
    } else {
      this.writeTimer = setTimeout(run, this.opts.writeDelayMs);
      this.writeTimer.unref();
    }
  }

  /** Writes everything queued, now (and with `index`, indexes everything); false on failure. */
  private writeAll(index: boolean): boolean {
    while (this.queue.length > 0 || this.dirty.size > 0 || (index && this.lagging.size > 0))
      if (!this.write(Infinity, index)) return false;
    return true;
  }

  /**
   * Writes up to `max` queued events, the rooms' rows, and the index of the rooms whose
   * unindexed messages are enough (with `index`: of every room), in one transaction; then
   * reports the events durable. On failure nothing is written, everything stays queued, and a
   * retry is set.
   */
  private write(max: number, index: boolean): boolean {
    const db = this.db;
    if (!db || (this.queue.length === 0 && this.dirty.size === 0 && !(index && this.lagging.size > 0))) return true;
    const n = Math.min(max, this.queue.length);
    const batch = n === this.queue.length ? this.queue : this.queue.slice(0, n);
    const created: RoomState[] = [];
    const written = new Map<RoomState, number>();
    const indexed = new Map<RoomState, number>();
    const { insertEvent, insertRoom, updateRoom, indexFrom } = this.stmt;
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
        for (const event of batch) {
          const st = this.rooms.get(event.room)!;
          // OR IGNORE: an event already written (a retried batch that had in fact committed)
          // is not written twice.
          insertEvent.run(roomId(st), event.seq, ...rowValues(event));
          written.set(st, event.seq);
        }
        for (const st of index ? new Set([...written.keys(), ...this.lagging]) : written.keys()) {
          const upTo = written.get(st) ?? st.writtenSeq;
          if (upTo > st.indexedSeq && (index || upTo - st.indexedSeq >= this.opts.indexBatch)) {
            indexFrom.run(st.id, st.indexedSeq, st.id);
            indexed.set(st, upTo);
          }
        }
        for (const st of indexed.size === 0 ? this.dirty : new Set([...this.dirty, ...indexed.keys()]))
          updateRoom.run(st.lastSeq, st.topic, st.topicNick ?? null, st.topicTime ?? null, indexed.get(st) ?? st.indexedSeq, roomId(st));
        db.exec('COMMIT');
      } finally {
        if (db.inTransaction) db.exec('ROLLBACK');
      }
    } catch (err) {
      for (const st of created) st.id = undefined;
      this.failed(err);
      return false;
    }
    this.queue = n === this.queue.length ? [] : this.queue.slice(n);
    this.dirty.clear();
    for (const [st, seq] of written) st.writtenSeq = seq;
    for (const [st, seq] of indexed) st.indexedSeq = seq;
    for (const st of written.keys()) if (st.writtenSeq > st.indexedSeq) this.lagging.add(st);
    for (const st of indexed.keys()) if (st.writtenSeq <= st.indexedSeq) this.lagging.delete(st);
    this.unsynced = true;
    if (this.lagging.size > 0 && !this.indexTimer) {
      this.indexTimer = setTimeout(() => {
        this.indexTimer = null;
        if (!this.retryTimer) this.write(MAX_BATCH, true);
      }, this.opts.indexDelayMs);
      this.indexTimer.unref();
    }
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
    if (this.queue.length === 0 && this.dirty.size === 0) this.succeeded();
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
        if (this.writeAll(true) && this.sync()) this.succeeded();
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
    if (this.queue.length === 0) this.observer.recovered?.(this.health());
    else this.schedule();
  }

  // ---- reading ----

  /** Runs a query; a failure is a StoreError naming the file. */
  private rows<T>(query: () => unknown[]): T[] {
    try {
      return query() as T[];
    } catch (err) {
      throw storeErrorOf(err, this.file, false);
    }
  }

  private read(query: () => unknown[], room: string): RoomEvent[] {
    return this.rows<EventRow>(query).map((row) => eventOf(room, row));
  }

  private loadRooms(): void {
    for (const row of this.stmt.rooms.all() as RoomRow[]) {
      const st: RoomState = {
        name: row.name,
        id: row.id,
        // After a crash, above anything that may have been handed out.
        lastSeq: Math.max(row.last_seq, row.reserved_seq),
        reservedSeq: row.reserved_seq,
        firstSeq: row.first ?? row.last_seq + 1,
        writtenSeq: row.written ?? 0,
        indexedSeq: row.indexed_seq,
        topic: row.topic,
        ...(row.topic_time !== null && { topicNick: row.topic_nick ?? '', topicTime: row.topic_time }),
      };
      this.rooms.set(row.name, st);
      if (st.writtenSeq > st.indexedSeq) this.lagging.add(st);
    }
  }

  private newRoom(name: string): RoomState {
    const st: RoomState = { name, id: undefined, lastSeq: 0, reservedSeq: 0, firstSeq: 1, writtenSeq: 0, indexedSeq: 0, topic: '' };
    this.rooms.set(name, st);
    return st;
  }

  private checkOpen(): void {
    if (!this.db) throw new StoreError('STORE_CLOSED', this.file, 'open it first, and not after close()');
  }
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

/**
 * The statements, prepared once. A room's events are the ids from (room << 40) + 1 to
 * (room << 40) + MAX_SEQ. better-sqlite3 binds JavaScript numbers as floating point, so every
 * number that takes part in an id is cast to an integer first, and the ids themselves never
 * reach JavaScript (they do not fit in a double). Events are read as arrays (raw mode).
 */
function prepare(db: Db) {
  const ROOM = '(CAST(? AS INTEGER) << 40)';
  const INT = 'CAST(? AS INTEGER)';
  const IN_ROOM = (col: string): string => `${col} > (r.id << 40) AND ${col} < ((r.id + 1) << 40)`;
  const SEQ = `id & ${MAX_SEQ}`;
  const EVENT = `${SEQ}, time, kind, nick, text, extra`;
  const unindex = db.prepare(
    `INSERT INTO events_fts (events_fts, rowid, text) SELECT 'delete', id, text FROM events
     WHERE id > ${ROOM} AND id < ${ROOM} + ${INT} AND text IS NOT NULL`,
  );
  const deleteEvents = db.prepare(`DELETE FROM events WHERE id > ${ROOM} AND id < ${ROOM} + ${INT}`);
  return {
    rooms: db.prepare(
      `SELECT r.id, r.name, r.last_seq, r.reserved_seq, r.indexed_seq, r.topic, r.topic_nick, r.topic_time,
         (SELECT min(e.id) & ${MAX_SEQ} FROM events e WHERE ${IN_ROOM('e.id')}) AS first,
         (SELECT max(e.id) & ${MAX_SEQ} FROM events e WHERE ${IN_ROOM('e.id')}) AS written
       FROM rooms r`,
    ),
    insertRoom: db.prepare('INSERT INTO rooms (name) VALUES (?)'),
    reserve: db.prepare('UPDATE rooms SET reserved_seq = ? WHERE id = ?'),
    unreserve: db.prepare('UPDATE rooms SET reserved_seq = last_seq'),
    updateRoom: db.prepare(
      'UPDATE rooms SET last_seq = max(last_seq, ?), topic = ?, topic_nick = ?, topic_time = ?, indexed_seq = ? WHERE id = ?',
    ),
    insertEvent: db.prepare(
      `INSERT OR IGNORE INTO events (id, time, kind, nick, text, extra) VALUES (${ROOM} + ${INT}, ?, ?, ?, ?, ?)`,
    ),
    /** Indexes a room's messages after a seq: one statement, so FTS5 writes one segment. */
    indexFrom: db.prepare(
      `INSERT INTO events_fts (rowid, text) SELECT id, text FROM events
       WHERE id > ${ROOM} + ${INT} AND id < ${ROOM} + ${MAX_SEQ + 1} AND text IS NOT NULL`,
    ),
    range: db
      .prepare(`SELECT ${EVENT} FROM events WHERE id > ${ROOM} + ${INT} AND id < ${ROOM} + ${MAX_SEQ + 1} ORDER BY id LIMIT ?`)
      .raw(true),
    latest: db
      .prepare(`SELECT ${EVENT} FROM events WHERE id > ${ROOM} AND id < ${ROOM} + ${MAX_SEQ + 1} ORDER BY id DESC LIMIT ?`)
      .raw(true),
    search: db
      .prepare(
        `SELECT e.id & ${MAX_SEQ}, e.time, e.kind, e.nick, e.text, e.extra
         FROM events_fts f JOIN events e ON e.id = f.rowid
         WHERE events_fts MATCH ? AND f.rowid > ${ROOM} AND f.rowid < ${ROOM} + ${INT}
         ORDER BY f.rowid DESC LIMIT ?`,
      )
      .raw(true),
    oldest: db.prepare(
      `SELECT ${SEQ} AS seq, time FROM events WHERE id > ${ROOM} AND id < ${ROOM} + ${MAX_SEQ + 1} ORDER BY id LIMIT ?`,
    ),
    /**
     * Deletes a room's events below `seq`, taking those below `indexedBelow` out of the index
     * (which needs their text to do so).
     */
    deleteTo: db.transaction((room: number, seq: number, indexedBelow: number) => {
      unindex.run(room, room, indexedBelow);
      deleteEvents.run(room, room, seq);
    }),
  };
}

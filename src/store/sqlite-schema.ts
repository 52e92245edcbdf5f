/**
 * Opening the SQLite file of the message store: the lock, the journal, the schema and its
 * migrations, and what each way of failing is called. Every failure here is a StoreError that
 * names the file; a server that cannot open its store says why and stops.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { eventOf, type EventRow } from './event-row.js';
import { blockOf } from './event-block.js';
import { MAX_SEQ, type FsyncPolicy } from './store.js';

export type Db = Database.Database;

/** The schema this build writes; a file at a higher version was written by a newer roomcast. */
export const SCHEMA_VERSION = 6;

/** "RCMS" in the file header, so that a roomcast store is told from any other SQLite file. */
const APPLICATION_ID = 0x52434d53;

/** Events per block when version 2's rows are gathered into blocks. */
const MIGRATED_BLOCK = 256;

/**
 * Version 3: a room's events written together are one row (a block), and the full-text index
 * holds blocks, filled when a room is searched rather than as messages arrive: per-message rows
 * and indexing cost the hub more than the fan-out they follow (docs/performance.md). Version 2's
 * rows are gathered into blocks; the index is built again on each room's first search.
 */
function toBlocks(db: Db): void {
  db.exec(`
    -- Blocks in the order written (id), so that a write appends to the table's last pages
    -- rather than to one place per room; blocks_by_room finds a room's blocks by the sequence
    -- number of their first event. last and time are those of the last event, n how many
    -- events a block holds; body is the events, as event-block.ts lays them out.
    CREATE TABLE blocks (
      id INTEGER PRIMARY KEY,
      room INTEGER NOT NULL,
      first INTEGER NOT NULL,
      last INTEGER NOT NULL,
      n INTEGER NOT NULL,
      time INTEGER NOT NULL,
      body BLOB NOT NULL
    );
    CREATE UNIQUE INDEX blocks_by_room ON blocks (room, first);
    -- Contentless: the text is in the blocks already. A row is a block (same id), its text
    -- the room's token (roomToken) and its messages' text. detail=none keeps no positions:
    -- queries are plain words, never ranked, and the store finds and marks the messages in
    -- a block itself.
    CREATE VIRTUAL TABLE blocks_fts USING fts5(
      text,
      content = '',
      contentless_delete = 1,
      detail = none,
      tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
    );
  `);
  const rooms = db.prepare('SELECT id, name FROM rooms').all() as { id: number; name: string }[];
  const read = db
    .prepare(
      `SELECT id & ${MAX_SEQ}, time, kind, nick, text, extra FROM events
       WHERE id > (CAST(? AS INTEGER) << 40) + CAST(? AS INTEGER) AND id < (CAST(? AS INTEGER) + 1) << 40 ORDER BY id LIMIT ${MIGRATED_BLOCK}`,
    )
    .raw(true);
  const insert = db.prepare(insertBlockSql);
  for (const { id, name } of rooms) {
    for (let after = 0; ; ) {
      const rows = read.all(id, after, id) as EventRow[];
      if (rows.length === 0) break;
      const last = rows[rows.length - 1]!;
      insert.run(id, rows[0]![0], last[0], rows.length, last[1], blockOf(rows.map((row) => eventOf(name, row))));
      after = last[0];
    }
  }
  db.exec('DROP TABLE events_fts; DROP TABLE events; UPDATE rooms SET indexed_seq = 0');
}

/** Inserts a block: room id, first seq, last seq, count, time of the last, body. */
export const insertBlockSql = 'INSERT INTO blocks (room, first, last, n, time, body) VALUES (?, ?, ?, ?, ?, ?)';

/**
 * The word that stands for a room in the full-text index, so that a search asks the index
 * for the room's blocks only: a private-use character (a letter to the tokenizer, never in a
 * word anyone types) and the room's id.
 */
export function roomToken(room: number): string {
  return `\ue000${room}`;
}

/**
 * Migrations, the n-th taking the file from version n to n + 1. Each runs in the transaction
 * that records it, so a file is never left half migrated. Never edit one that has shipped:
 * add the next.
 */
const MIGRATIONS: readonly (string | ((db: Db) => void))[] = [
  `
  CREATE TABLE rooms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- The last sequence number ever given out, kept even when every event is pruned, so
    -- that numbers are never reused.
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- How far the room's messages are in the full-text index, which follows the events
    -- table by up to a fraction of a second; after a crash, open() indexes the rest.
    indexed_seq INTEGER NOT NULL DEFAULT 0,
    topic TEXT NOT NULL DEFAULT '',
    topic_nick TEXT,
    topic_time INTEGER
  );
  -- id is the room's id times 2^40 plus the event's sequence number: a room's events are
  -- one run of the primary key, so paging, the first kept event and pruning need no other
  -- index. text is a message's text (NULL for other events); extra is every other field of
  -- the event, as JSON (NULL when there is none).
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    nick TEXT NOT NULL,
    text TEXT,
    extra TEXT
  );
  -- External content: the text is stored once, in events, and the index refers to it.
  -- detail=none keeps no positions and columnsize=0 no lengths: queries are plain words,
  -- never ranked, and the matching words are marked by the store itself. The store fills
  -- the index from events itself, a room's new rows at a time, rather than from triggers:
  -- FTS5 writes a segment per statement savepoint, which a trigger turns into one per row.
  CREATE VIRTUAL TABLE events_fts USING fts5(
    text,
    content = 'events',
    content_rowid = 'id',
    detail = none,
    columnsize = 0,
    tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
  );
  `,
  `
  -- Numbers the hub may hand out before their events are written: each room's reservation is
  -- written before a number beyond it is given out. After a crash, numbering goes on above
  -- it, so a number a client saw (from an event the crash lost) is never given to another.
  -- A clean close sets it back to last_seq.
  ALTER TABLE rooms ADD COLUMN reserved_seq INTEGER NOT NULL DEFAULT 0;
  `,
  toBlocks,
  `
  -- Facts about the store itself. 'history' names this history (a random id made once), so
  -- that a client coming back after a restart can tell the history it knew from another.
  CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  INSERT INTO store_meta (key, value) VALUES ('history', lower(hex(randomblob(8))));
  `,
  // 5: accounts (issue 17): registered nicks and their password hashes.
  `
  CREATE TABLE accounts (
    key TEXT PRIMARY KEY,
    nick TEXT NOT NULL,
    hash TEXT NOT NULL,
    created INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 6: room rules (issue 17): operators, bans, mutes, modes, a room's key, as one JSON record.
  `
  CREATE TABLE room_rules (
    room TEXT PRIMARY KEY,
    rules TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
];

const SYNCHRONOUS: Record<FsyncPolicy, string> = { always: 'FULL', batch: 'NORMAL', off: 'OFF' };

const NOT_WRITABLE_ERRNO = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOENT', 'ENOSPC']);

/**
 * What a failure from SQLite or the file system means for the store. While opening, a full
 * disk or an I/O error means the store cannot be written at all; later it is a failed write,
 * retried.
 */
export function storeErrorOf(err: unknown, file: string, opening: boolean): StoreError {
  if (err instanceof StoreError) return err;
  const code = String((err as { code?: unknown }).code ?? '');
  const detail = err instanceof Error ? err.message : String(err);
  const cause = { cause: err };
  if (/^SQLITE_(BUSY|LOCKED)/.test(code)) return new StoreError('STORE_LOCKED', file, detail, cause);
  if (/^SQLITE_(NOTADB|CORRUPT)/.test(code)) return new StoreError('STORE_CORRUPT', file, detail, cause);
  if (/^SQLITE_(CANTOPEN|READONLY|PERM|AUTH)/.test(code) || NOT_WRITABLE_ERRNO.has(code))
    return new StoreError('STORE_NOT_WRITABLE', file, detail, cause);
  // While opening, nothing is queued yet: whatever else failed, the store cannot be written.
  return new StoreError(opening ? 'STORE_NOT_WRITABLE' : 'STORE_IO', file, detail, cause);
}

/**
 * Opens (creating when missing) the store's file, holding it for this process alone until
 * closed, in WAL mode, at the current schema. Throws a StoreError.
 */
export function openDatabase(file: string, fsync: FsyncPolicy): Db {
  const dir = path.dirname(file);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Checked here because SQLite would report a read-only file system as a failure to lock.
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw storeErrorOf(err, dir, true);
  }
  let db: Db;
  try {
    // No busy timeout: a store held by another process is reported at once, not retried.
    db = new Database(file, { timeout: 0 });
  } catch (err) {
    throw storeErrorOf(err, file, true);
  }
  try {
    // SQLite's own locks keep a second writer out only while a transaction is open. In
    // exclusive locking mode the lock taken below is held until the connection closes, and
    // the kernel drops it when the process dies, so no stale lock file is ever left behind.
    // Set before the first access, it also keeps the WAL index in this process's memory.
    db.pragma('locking_mode = EXCLUSIVE');
    // Before the first write only (a file keeps the size it was made with): larger pages cut
    // the system calls and page headers of a write to the WAL, mostly blocks of several KB.
    db.pragma('page_size = 16384');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${SYNCHRONOUS[fsync]}`);
    // A burst may grow the WAL; after the next checkpoint it is cut back to this.
    db.pragma('journal_size_limit = 33554432');
    db.exec('BEGIN EXCLUSIVE');
    try {
      migrate(db, file, SCHEMA_VERSION);
      db.exec('COMMIT');
    } finally {
      if (db.inTransaction) db.exec('ROLLBACK');
    }
    return db;
  } catch (err) {
    db.close();
    throw storeErrorOf(err, file, true);
  }
}

/**
 * Brings the file to version `target` (SCHEMA_VERSION; tests make older files with a lower
 * one); refuses files that are not a store, or are newer than this build.
 */
export function migrate(db: Db, file: string, target: number): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).pluck().all() as string[];
  let version = 0;
  if (appId !== 0 || tables.length > 0) {
    if (appId !== APPLICATION_ID || !tables.includes('schema_version'))
      throw new StoreError('STORE_CORRUPT', file, 'an SQLite file of some other program');
    version = (db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null) ?? 0;
  } else {
    db.exec('CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)');
    db.pragma(`application_id = ${APPLICATION_ID}`);
  }
  if (version > SCHEMA_VERSION)
    throw new StoreError('STORE_TOO_NEW', file, `store version ${version}; this roomcast reads up to version ${SCHEMA_VERSION}`);
  const record = db.prepare('INSERT INTO schema_version (version, applied) VALUES (?, ?)');
  for (let v = version; v < target; v++) {
    const step = MIGRATIONS[v]!;
    if (typeof step === 'string') db.exec(step);
    else step(db);
    record.run(v + 1, Date.now());
  }
}

/**
 * The SQLite store beyond the common contract: what survives a reopen, the lock against a
 * second server, and each way a file or directory can be refused, in real temporary
 * directories. The lock tests run the built store in a second process: run `npm run build`
 * first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { MessageEvent } from '../../src/protocol/events.js';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { migrate, SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
import { SqliteStore, STORE_FILE } from '../../src/store/sqlite-store.js';
import { CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { mountTmpfs, remountReadOnly, tmpfsUnavailable, unmount } from './tmpfs.js';

const CHILD = fileURLToPath(new URL('./store-child.mjs', import.meta.url));

let dir: string;
const open: SqliteStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-sqlite-'));
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function store(opts: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}): SqliteStore {
  const s = new SqliteStore({ dir, fsync: 'batch', ...opts });
  open.push(s);
  return s;
}

function message(room: string, seq: number, time = 1_700_000_000_000 + seq): MessageEvent {
  return { type: 'message', room, seq, nick: 'ann', text: `message ${seq}`, time };
}

async function openError(s: SqliteStore): Promise<StoreError> {
  const err = await s.open().then(
    () => new Error('open() succeeded'),
    (e: unknown) => e,
  );
  if (!(err instanceof StoreError)) throw err;
  return err;
}

function child(...args: string[]): CliChild {
  if (!existsSync(`${ROOT}dist/store/sqlite-store.js`)) throw new Error('dist/ is missing: run `npm run build` before this test');
  return new CliChild('store-child', spawn(process.execPath, [CHILD, ...args], { env: CLI_ENV }));
}

test('a reopened store has the rooms, their numbering, topics and events as they were', async () => {
  let now = 5_000;
  const first = store({ fsync: 'always', now: () => now });
  expect(await first.open()).toEqual([]);
  for (let seq = 1; seq <= 30; seq++) first.append(message('lobby', seq));
  first.append(message('other', 1));
  first.setTopic('lobby', 'the topic', 'ann');
  now = 6_000;
  first.setTopic('lobby', 'a newer topic', 'bob');
  await first.flush();
  // Searching indexes the room; pruning then cuts its one block (all 30 written together) to
  // the newest 20, in the index too.
  expect((await first.search('lobby', '5', 10)).map((h) => h.event.seq)).toEqual([5]);
  await first.prune({ maxPerRoom: 20 });
  expect(await first.search('lobby', '5', 10)).toEqual([]);
  expect((await first.search('lobby', '15', 10)).map((h) => h.event.seq)).toEqual([15]);
  const historyOfFirst = first.historyId();
  await first.close();
  // The full-text index, written and pruned by the store itself, is sound and holds the one
  // block searched (the other room's waits for its first search).
  const db = new Database(path.join(dir, STORE_FILE));
  db.exec(`INSERT INTO blocks_fts (blocks_fts, rank) VALUES ('integrity-check', 1)`);
  expect(db.prepare(`SELECT count(*) FROM blocks_fts WHERE blocks_fts MATCH 'message'`).pluck().get()).toBe(1);
  db.close();

  const again = store();
  const rooms = await again.open();
  // The same history, named the same; another store's is another.
  expect(again.historyId()).toMatch(/^[0-9a-f]{16}$/);
  expect(again.historyId()).toBe(historyOfFirst);
  expect(rooms.sort((a, b) => a.room.localeCompare(b.room))).toEqual([
    { room: 'lobby', lastSeq: 30, firstSeq: 11, topic: 'a newer topic', topicNick: 'bob', topicTime: 6_000 },
    { room: 'other', lastSeq: 1, firstSeq: 1, topic: '' },
  ]);
  const page = await again.range('lobby', 0, 100);
  expect(page).toMatchObject({ first: 11, last: 30 });
  expect(page.events).toEqual(Array.from({ length: 20 }, (_, i) => message('lobby', i + 11)));
  // Numbering goes on where it stopped, and a seq already used is refused.
  expect(() => again.append(message('lobby', 30))).toThrow(expect.objectContaining({ code: 'STORE_INVALID_EVENT' }));
  again.append(message('lobby', 31));
  await again.flush();
  expect((await again.latest('lobby', 1)).events).toEqual([message('lobby', 31)]);
});

test('a room pruned to nothing keeps its last seq across a reopen', async () => {
  const s = store();
  await s.open();
  for (let seq = 1; seq <= 5; seq++) s.append(message('lobby', seq));
  await s.prune({ maxPerRoom: 0 });
  await s.close();
  const again = store();
  expect(await again.open()).toEqual([{ room: 'lobby', lastSeq: 5, firstSeq: 6, topic: '' }]);
});

test("a turn's appends are written as one batch, reported durable once", async () => {
  const durable: [string, number][] = [];
  const s = store({ fsync: 'always', observer: { durable: (room, seq) => durable.push([room, seq]) } });
  await s.open();
  for (let seq = 1; seq <= 1000; seq++) s.append(message('lobby', seq));
  expect(s.health().queued).toBe(1000);
  await new Promise((resolve) => setImmediate(resolve));
  expect(durable).toEqual([['lobby', 1000]]);
  expect(s.health().queued).toBe(0);
});

test('prune works in steps, letting other work run between them', async () => {
  const s = store({ fsync: 'off' });
  await s.open();
  // Written seven at a time: 429 blocks, the last to go cut in two.
  for (let seq = 1; seq <= 3000; seq++) {
    s.append(message('lobby', seq));
    if (seq % 7 === 0) await s.flush();
  }
  await s.flush();
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const pruning = s.prune({ maxPerRoom: 10 });
  s.append(message('lobby', 3001)); // appended while pruning: kept
  const result = await pruning;
  ticking = false;
  expect(result).toEqual({ deleted: 2990 });
  expect(turns).toBeGreaterThan(2);
  const page = await s.range('lobby', 0, 100);
  expect(page.events.map((e) => e.seq)).toEqual([...Array.from({ length: 10 }, (_, i) => 2991 + i), 3001]);
  expect(page.first).toBe(2991);
});

describe('one server per store', () => {
  test('a second process opening a store in use fails at once with STORE_LOCKED naming the file', async () => {
    const s = store();
    await s.open();
    const c = child('try', dir);
    expect(await c.waitExit(15_000)).toBe(0);
    const result = JSON.parse(c.stdout) as { code: StoreErrorCode; message: string };
    expect(result.code).toBe('STORE_LOCKED');
    expect(result.message).toContain(path.join(dir, STORE_FILE));
    // The holder goes on writing undisturbed.
    s.append(message('lobby', 1));
    await s.flush();
    await s.close();
    const after = child('try', dir);
    expect(await after.waitExit(15_000)).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual({ ok: true });
  });

  test('and this process fails the same way while another holds it; the lock goes with the holder', async () => {
    const holder = child('hold', dir);
    try {
      await holder.waitOutput('ready', 15_000);
      const started = Date.now();
      const err = await openError(store());
      expect(err.code).toBe('STORE_LOCKED');
      expect(Date.now() - started).toBeLessThan(1000); // no busy wait: at once
      expect(err.message).toContain(path.join(dir, STORE_FILE));
      holder.proc.stdin.end();
      expect(await holder.waitExit(15_000)).toBe(0);
      expect(await store().open()).toEqual([]);
    } finally {
      holder.kill();
    }
  });
});

describe('schema versions', () => {
  // Versions 1 and 2 kept an event a row (kind 0 a message, 1 a /me message, 3 labels, other
  // fields as JSON) and indexed every message; version 3 gathers them into blocks.
  test.each([1, 2])('a version %i file is migrated in place: its events come back as they were, numbering goes on, search finds them', async (version) => {
    const file = path.join(dir, STORE_FILE);
    const db = new Database(file);
    db.exec('BEGIN');
    migrate(db, file, version);
    db.exec('COMMIT');
    db.prepare(`INSERT INTO rooms (id, name, last_seq, indexed_seq, topic) VALUES (1, 'old', 600, 600, 'kept')`).run();
    const insert = db.prepare('INSERT INTO events (id, time, kind, nick, text, extra) VALUES ((1 << 40) + ?, ?, ?, ?, ?, ?)');
    const labels = { image: 7, name: 'cat.png', labels: [{ index: 281, label: 'tabby', score: 0.9 }] };
    for (let seq = 1; seq <= 600; seq++) {
      if (seq === 300) insert.run(seq, seq, 3, 'bot', null, JSON.stringify(labels));
      else insert.run(seq, seq, seq % 10 === 0 ? 1 : 0, 'ann', `old message ${seq}`, null);
    }
    db.exec('INSERT INTO events_fts (rowid, text) SELECT id, text FROM events WHERE text IS NOT NULL');
    db.close();

    const s = store();
    expect(await s.open()).toEqual([{ room: 'old', lastSeq: 600, firstSeq: 1, topic: 'kept' }]);
    const { events } = await s.range('old', 0, 1000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(events[0]).toEqual({ type: 'message', room: 'old', seq: 1, nick: 'ann', text: 'old message 1', time: 1 });
    expect(events[9]).toEqual({ type: 'message', room: 'old', seq: 10, nick: 'ann', text: 'old message 10', time: 10, action: true });
    expect(events[299]).toEqual({ type: 'labels', room: 'old', seq: 300, nick: 'bot', time: 300, ...labels });
    expect((await s.range('old', 590, 3)).events.map((e) => e.seq)).toEqual([591, 592, 593]);
    expect((await s.search('old', '599', 5)).map((h) => h.event.seq)).toEqual([599]);
    expect((await s.search('old', 'message', 3)).map((h) => h.event.seq)).toEqual([600, 599, 598]);
    s.append(message('old', 601));
    await s.close();

    const check = new Database(file);
    expect(check.prepare('SELECT max(version) FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION);
    expect(check.prepare(`SELECT name FROM sqlite_schema WHERE name LIKE 'events%'`).pluck().all()).toEqual([]);
    check.close();
    const again = store();
    expect(await again.open()).toMatchObject([{ room: 'old', lastSeq: 601, firstSeq: 1 }]);
    expect((await again.latest('old', 2)).events.map((e) => e.seq)).toEqual([600, 601]);
  });
});

describe('files and directories it refuses', () => {
  test('a store written by a newer schema: STORE_TOO_NEW', async () => {
    await store().open();
    await open[0]!.close();
    const db = new Database(path.join(dir, STORE_FILE));
    db.prepare('INSERT INTO schema_version (version, applied) VALUES (?, 0)').run(SCHEMA_VERSION + 1);
    db.close();
    const err = await openError(store());
    expect(err.code).toBe('STORE_TOO_NEW');
    expect(err.message).toContain(path.join(dir, STORE_FILE));
    expect(err.message).toContain(`store version ${SCHEMA_VERSION + 1}; this roomcast reads up to version ${SCHEMA_VERSION}`);
  });

  test('a file that is not SQLite: STORE_CORRUPT', async () => {
    writeFileSync(path.join(dir, STORE_FILE), Buffer.alloc(8192, 'garbage! '));
    const err = await openError(store());
    expect(err.code).toBe('STORE_CORRUPT');
    expect(err.message).toContain(path.join(dir, STORE_FILE));
    expect(err.message).toMatch(/Move it aside/);
  });

  test("another program's SQLite file: STORE_CORRUPT, and it is left as it was", async () => {
    const db = new Database(path.join(dir, STORE_FILE));
    db.exec('CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES (\'mine\')');
    db.close();
    const err = await openError(store());
    expect(err.code).toBe('STORE_CORRUPT');
    expect(err.message).toMatch(/some other program/);
    const check = new Database(path.join(dir, STORE_FILE));
    expect(check.prepare('SELECT body FROM notes').pluck().all()).toEqual(['mine']);
    expect(check.prepare(`SELECT count(*) FROM sqlite_schema WHERE name = 'blocks'`).pluck().get()).toBe(0);
    check.close();
  });

  test('a data directory that cannot be made (a file is in the way): STORE_NOT_WRITABLE', async () => {
    writeFileSync(path.join(dir, 'file'), 'x');
    const err = await openError(new SqliteStore({ dir: path.join(dir, 'file', 'sub'), fsync: 'batch' }));
    expect(err.code).toBe('STORE_NOT_WRITABLE');
    expect(err.message).toContain(path.join(dir, 'file'));
    expect(err.message).toMatch(/--store memory/);
  });

  const noTmpfs = tmpfsUnavailable();
  if (noTmpfs) console.warn(`read-only store test skipped: ${noTmpfs}`);
  (noTmpfs ? test.skip : test)(`on a read-only file system, a new store or one already there: STORE_NOT_WRITABLE${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, async () => {
    const mnt = path.join(dir, 'ro');
    const why = mountTmpfs(mnt, '1M');
    if (why) throw new Error(why);
    try {
      const existing = new SqliteStore({ dir: path.join(mnt, 'existing'), fsync: 'batch' });
      await existing.open();
      existing.append(message('lobby', 1));
      await existing.close();
      mkdirSync(path.join(mnt, 'empty'));
      remountReadOnly(mnt);
      for (const sub of ['empty', 'new', 'existing']) {
        const err = await openError(new SqliteStore({ dir: path.join(mnt, sub), fsync: 'batch' }));
        expect([sub, err.code]).toEqual([sub, 'STORE_NOT_WRITABLE']);
        expect(err.message).toContain(path.join(mnt, sub));
      }
    } finally {
      unmount(mnt);
    }
  });
});

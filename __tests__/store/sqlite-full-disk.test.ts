/**
 * A disk that fills up while the server runs: the store turns degraded (once), counts its
 * failed writes, keeps the events in memory (bounded) where reads still find them, and once
 * space is freed writes them by itself. The disk is a 1 MiB tmpfs, which needs root; without
 * it these tests are reported as skipped, with the reason.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { MessageEvent } from '../../src/protocol/events.js';
import type { StoreError } from '../../src/store/errors.js';
import { SqliteStore, STORE_FILE } from '../../src/store/sqlite-store.js';
import type { StoreHealth } from '../../src/store/store.js';
import { mountTmpfs, tmpfsUnavailable, unmount } from './tmpfs.js';

const noTmpfs = tmpfsUnavailable();
if (noTmpfs) console.warn(`full-disk store tests skipped: ${noTmpfs}`);
const fullDiskTest = (title: string, fn: () => Promise<void>): void =>
  (noTmpfs ? test.skip : test)(`${title}${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, fn, 30_000);

let base: string;
let mnt: string;

beforeEach(() => {
  base = mkdtempSync(path.join(tmpdir(), 'roomcast-full-'));
  mnt = path.join(base, 'disk');
  if (noTmpfs) return;
  const why = mountTmpfs(mnt, '1M');
  if (why) throw new Error(why);
});

/** Every store a test makes, closed after it even when it fails, so the disk can be unmounted. */
const stores: SqliteStore[] = [];
function makeStore(opts: ConstructorParameters<typeof SqliteStore>[0]): SqliteStore {
  const s = new SqliteStore(opts);
  stores.push(s);
  return s;
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  unmount(mnt);
  rmSync(base, { recursive: true, force: true });
});

/** Fills the disk but for about `leave` bytes, with a file that can be deleted to free it. */
function fillDisk(leave: number): string {
  const filler = path.join(mnt, 'filler');
  let size = 1 << 20;
  // tmpfs counts whole pages, so shrink until a write fits.
  for (;;) {
    try {
      writeFileSync(filler, Buffer.alloc(size));
      break;
    } catch {
      size -= 16 * 1024;
    }
  }
  unlinkSync(filler);
  writeFileSync(filler, Buffer.alloc(Math.max(0, size - leave)));
  return filler;
}

const TEXT = 'y'.repeat(1000);
const message = (seq: number): MessageEvent => ({ type: 'message', room: 'lobby', seq, nick: 'ann', text: `${seq} ${TEXT}`, time: 1_000 + seq });

/**
 * Appends about a kilobyte a message, ten every 5 ms (so that the store's writes, a few
 * milliseconds apart, come between), from seq 1 until a write fails (the disk having been
 * filled but for a few dozen KiB); returns the last seq appended.
 */
async function appendUntilFull(store: SqliteStore): Promise<number> {
  let seq = 0;
  while (store.health().state === 'ok') {
    if (seq >= 1000) throw new Error('the disk never filled up');
    for (let i = 0; i < 10; i++) store.append(message(++seq));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return seq;
}

/** Waits for `probe`, checking each turn, failing after `ms`. */
async function until(probe: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// Under `batch` the sync every (here) 20 ms fails too, and must not make the store report
// itself degraded again and again.
describe.each(['always', 'batch'] as const)('fsync %s', (fsync) => {
  fullDiskTest('disk full: degraded once, failures counted, events kept and readable; space freed: written by itself', async () => {
    const degraded: StoreError[] = [];
    const recovered: StoreHealth[] = [];
    const durable: number[] = [];
    const dir = path.join(mnt, 'store');
    const store = makeStore({
      dir,
      fsync,
      syncIntervalMs: 20,
      retryMinMs: 5,
      retryMaxMs: 50,
      observer: { degraded: (e) => degraded.push(e), recovered: (h) => recovered.push(h), durable: (_r, seq) => durable.push(seq) },
    });
    await store.open();
    const filler = fillDisk(64 * 1024);

    let seq = await appendUntilFull(store);
    // More while degraded: queued, not written, and no new report.
    for (let i = 0; i < 20; i++) store.append(message(++seq));
    await until(() => store.health().failedWrites >= 3, 'three failed writes');
    const health = store.health();
    expect(health).toMatchObject({ state: 'degraded', code: 'STORE_IO', dropped: 0 });
    expect(health.queued).toBeGreaterThanOrEqual(20);
    expect(health.reason).toContain(path.join(dir, STORE_FILE));
    expect(health.reason).toMatch(/full/);
    expect(degraded).toHaveLength(1);
    expect(degraded[0]!.code).toBe('STORE_IO');
    expect(recovered).toEqual([]);
    const written = Math.max(...durable);
    expect(written).toBeLessThan(seq - 20);
    // Reads see what is written and what waits in memory alike.
    expect((await store.range('lobby', 0, 10_000)).events.map((e) => e.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    expect((await store.latest('lobby', 3)).events.map((e) => e.seq)).toEqual([seq - 2, seq - 1, seq]);
    await expect(store.flush()).rejects.toMatchObject({ code: 'STORE_IO' });

    unlinkSync(filler);
    await until(() => recovered.length > 0, 'the store to recover by itself');
    expect(recovered).toEqual([expect.objectContaining({ state: 'ok', queued: 0, dropped: 0 })]);
    expect(recovered[0]!.failedWrites).toBeGreaterThanOrEqual(3);
    expect(store.health()).toMatchObject({ state: 'ok', queued: 0 });
    expect(Math.max(...durable)).toBe(seq);
    await store.close();

    const again = makeStore({ dir, fsync: 'batch' });
    expect(await again.open()).toEqual([{ room: 'lobby', lastSeq: seq, firstSeq: 1, topic: '' }]);
    const { events } = await again.range('lobby', 0, 10_000);
    expect(events).toEqual(Array.from({ length: seq }, (_, i) => message(i + 1)));
    expect((await again.search('lobby', String(seq), 10)).map((h) => h.event.seq)).toEqual([seq]);
    await again.close();
    const db = new Database(path.join(dir, STORE_FILE));
    db.exec(`INSERT INTO blocks_fts (blocks_fts, rank) VALUES ('integrity-check', 1)`);
    db.close();
  });
});

fullDiskTest('the memory kept while degraded is bounded: the oldest are given up, counted, and numbers are never reused', async () => {
  const dir = path.join(mnt, 'store');
  const store = makeStore({ dir, fsync: 'always', maxQueued: 50, retryMinMs: 5, retryMaxMs: 50 });
  await store.open();
  const filler = fillDisk(64 * 1024);
  let seq = await appendUntilFull(store);
  for (let i = 0; i < 200; i++) store.append(message(++seq));
  const health = store.health();
  expect(health.queued).toBeLessThanOrEqual(50);
  expect(health.dropped).toBeGreaterThanOrEqual(150);
  unlinkSync(filler);
  await until(() => store.health().state === 'ok' && store.health().queued === 0, 'the store to recover');
  await store.close();

  const again = makeStore({ dir, fsync: 'batch' });
  const [room] = await again.open();
  // The last seq given out survives even though its neighbours were given up.
  expect(room!.lastSeq).toBe(seq);
  expect((await again.latest('lobby', 1)).events).toEqual([message(seq)]);
  await again.close();
});

fullDiskTest('closing while the disk is full says how many events are lost', async () => {
  const store = makeStore({ dir: path.join(mnt, 'store'), fsync: 'always', retryMinMs: 5, retryMaxMs: 50 });
  await store.open();
  fillDisk(64 * 1024);
  await appendUntilFull(store);
  const queued = store.health().queued;
  await expect(store.close()).rejects.toMatchObject({ code: 'STORE_IO', message: expect.stringContaining(`closed with ${queued} events not written`) });
});

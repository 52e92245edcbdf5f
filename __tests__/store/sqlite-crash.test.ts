/**
 * A server killed with SIGKILL loses nothing it reported durable: a child process appends
 * 10,000 messages through the built store (ten a turn, a millisecond apart, so that many
 * batches are written and the kill lands while they are) and is killed part way; the store reopened here must hold every message whose durability
 * the child reported, numbered without a gap or a duplicate. Run `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { MessageEvent } from '../../src/protocol/events.js';
import { SqliteStore, STORE_FILE } from '../../src/store/sqlite-store.js';
import type { FsyncPolicy } from '../../src/store/store.js';
import { CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';

const CHILD = fileURLToPath(new URL('./store-child.mjs', import.meta.url));
const COUNT = 10_000;
/** The child is killed once this many are reported durable: well before it has appended them all. */
const KILL_AT = 2_000;

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-crash-'));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function durableSeqs(stdout: string): number[] {
  return [...stdout.matchAll(/^durable (\d+)$/gm)].map((m) => Number(m[1]));
}

// `always` is the policy that promises it; `batch` reports a batch durable once committed to
// the operating system, which a killed process cannot take back either. The child never
// searches, so nothing is indexed: the reopened store indexes it all on the first search.
test.each<FsyncPolicy>(['always', 'batch'])('fsync %s: kill -9 part way, reopen: every message reported durable is there, in order, once, and found by search', async (fsync) => {
  if (!existsSync(`${ROOT}dist/store/sqlite-store.js`)) throw new Error('dist/ is missing: run `npm run build` before this test');
  const args = [CHILD, 'append', dir, fsync, String(COUNT), '10', '1'];
  const c = new CliChild('store-child', spawn(process.execPath, args, { env: CLI_ENV }));
  try {
    await c.waitFor(() => durableSeqs(c.stdout).some((s) => s >= KILL_AT), `durable ${KILL_AT}`, 30_000);
    c.kill();
    await c.waitExit(10_000);
  } finally {
    c.kill();
  }
  const reported = Math.max(...durableSeqs(c.stdout));
  expect(c.stdout).not.toContain('done'); // killed part way, not after the end

  const store = new SqliteStore({ dir, fsync: 'batch' });
  try {
    const [room] = await store.open();
    expect(room).toMatchObject({ room: 'crash', firstSeq: 1 });
    const { events } = await store.range('crash', 0, COUNT);
    const written = events.length;
    expect(written).toBeGreaterThanOrEqual(reported);
    expect(written).toBeLessThan(COUNT);
    // Numbering goes on above every number the child may have handed out (its reservation),
    // never from the last one written: a number a client saw is never given to another event.
    expect(room!.lastSeq).toBeGreaterThan(written);
    expect(room!.lastSeq).toBeLessThanOrEqual(written + 10_000 + 5000);
    events.forEach((e, i) => {
      const m = e as MessageEvent;
      // Checked one by one, but reported as one failure, not thousands.
      if (m.seq !== i + 1 || m.text !== `m${i + 1} ${'x'.repeat((i + 1) % 200)}` || m.time !== 1_000_000 + i + 1)
        throw new Error(`event ${i} is ${JSON.stringify(m)}`);
    });
    for (const seq of [1, reported, written])
      expect((await store.search('crash', `m${seq}`, 5)).map((h) => h.event.seq)).toEqual([seq]);
  } finally {
    await store.close();
  }
  const db = new Database(path.join(dir, STORE_FILE));
  db.exec(`INSERT INTO blocks_fts (blocks_fts, rank) VALUES ('integrity-check', 1)`);
  expect(db.prepare(`SELECT count(*) FROM blocks_fts WHERE blocks_fts MATCH 'x'`).pluck().get()).toBeGreaterThan(0);
  db.close();
}, 60_000);

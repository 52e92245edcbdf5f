/**
 * History across restarts, end to end: the built `roomcast serve` on a temporary data
 * directory, stopped (SIGTERM) or killed (SIGKILL) and started again on it, with real
 * clients over TCP and HTTP.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { JsonClient, until, type Ev } from '../helpers/clients.js';
import { mountTmpfs, tmpfsUnavailable, unmount } from '../store/tmpfs.js';
import { bmp } from '../helpers/image-bytes.js';

const WAIT = 15_000;
let dir: string;
const children: CliChild[] = [];
const clients: JsonClient[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-restart-'));
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  for (const c of children.splice(0)) {
    c.kill();
    await c.waitExit(WAIT).catch(() => {});
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  child: CliChild;
  port: number;
}

/** `roomcast serve` on the test's data directory (or `dataDir`); resolves once it listens. */
async function serve(args: string[] = [], dataDir = dir): Promise<Running> {
  const child = new CliChild(
    'serve',
    spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--flood-rate', '0', '--data-dir', dataDir, ...args], {
      cwd: ROOT,
      env: CLI_ENV,
    }),
    WAIT,
  );
  children.push(child);
  await child.waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(child.stdout) || child.exitCode !== null, 'roomcast listening on ...');
  if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${child.stderr}`);
  return { child, port: Number(/listening on 127\.0\.0\.1:(\d+)/.exec(child.stdout)![1]) };
}

async function stop(s: Running, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  s.child.proc.kill(signal);
  await s.child.waitExit(WAIT);
}

async function client(port: number, nick: string, rooms?: string[]): Promise<JsonClient> {
  const c = await JsonClient.registered(port, nick, rooms);
  clients.push(c);
  return c;
}

async function getJson(port: number, p: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, json: await res.json() };
}

/** Every event of a room, read forward over HTTP a page at a time. */
async function wholeHistory(port: number, room: string): Promise<Ev[]> {
  const out: Ev[] = [];
  for (let after = 0; ; ) {
    const { status, json } = await getJson(port, `/api/rooms/${room}/history?after=${after}&limit=200`);
    expect(status).toBe(200);
    out.push(...json.messages);
    if (!json.more) return out;
    after = json.messages.at(-1).seq;
  }
}

/** The acks a client has had so far. */
function acksOf(c: JsonClient): Ev[] {
  return c.ofType('ack');
}

test('SIGTERM and start again: the same seq and time, the topic, a resume after N, numbering goes on', async () => {
  const one = await serve();
  expect(one.child.stdout).toContain(`History: ${dir} (fsync batch; keeps everything)`);
  const a = await client(one.port, 'ann', ['lobby', 'side']);
  for (let i = 1; i <= 30; i++) a.sendJson({ type: 'message', room: 'lobby', text: `hello ${i}`, id: i });
  a.sendJson({ type: 'message', room: 'side', text: 'in a side room' }, { type: 'topic', room: 'lobby', topic: 'kept across restarts', id: 'topic' });
  await a.waitEvent((e) => e.type === 'topic' && e.id === 'topic', WAIT);
  const before = await wholeHistory(one.port, 'lobby');
  expect(before.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  await stop(one, 'SIGTERM');

  const two = await serve();
  const b = await client(two.port, 'bob', []);
  b.sendJson({ type: 'join', room: 'lobby', after: 10, id: 'j' });
  const joined = await b.waitEvent((e) => e.type === 'joined' && e.id === 'j', WAIT);
  expect(joined).toMatchObject({ topic: 'kept across restarts', seq: 30 });
  const h = await b.waitEvent((e) => e.type === 'history' && e.id === 'j', WAIT);
  expect(h.messages).toEqual(before.slice(10)); // same seq, nick, text and time
  expect(h).toMatchObject({ first: 1, last: 30, missed: 0 });

  // The side room has nobody in it: not listed, but its history is there, and it comes back.
  expect((await getJson(two.port, '/api/rooms')).json.rooms.map((r: Ev) => r.room)).toEqual(['lobby']);
  expect((await getJson(two.port, '/api/rooms/side/history')).json.messages).toMatchObject([{ seq: 1, text: 'in a side room' }]);
  b.sendJson({ type: 'join', room: 'side', id: 's' });
  expect(await b.waitEvent((e) => e.type === 'history' && e.id === 's', WAIT)).toMatchObject({ messages: [{ seq: 1, nick: 'ann' }] });

  // Search reads the stored history too, newest first, the words marked.
  const found = (await getJson(two.port, '/api/rooms/lobby/search?q=hello%2025')).json;
  expect(found.hits).toEqual([{ seq: 25, nick: 'ann', text: 'hello 25', time: before[24].time, marks: [[0, 5], [6, 8]] }]);
  expect((await getJson(two.port, '/api/rooms/side/search?q=side')).json.hits).toMatchObject([{ seq: 1, text: 'in a side room' }]);
  b.sendJson({ type: 'message', room: 'lobby', text: 'after the restart', id: 'm' });
  expect(await b.waitEvent((e) => e.type === 'ack' && e.id === 'm', WAIT)).toMatchObject({ seq: 31 });
  // A join beyond the memory window reads the disk: the whole room from seq 1.
  b.sendJson({ type: 'history', room: 'lobby', after: 0, limit: 100, id: 'h' });
  const all = await b.waitEvent((e) => e.type === 'history' && e.id === 'h', WAIT);
  expect(all.messages.map((e: Ev) => e.seq)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
}, 60_000);

test.each(['always', 'batch'])(
  'SIGKILL during a burst of 10,000 under --fsync %s: every acked message is kept once, in order; no seq is reused',
  async (fsync) => {
    const one = await serve(['--fsync', fsync]);
    const a = await client(one.port, 'ann');
    const COUNT = 10_000;
    const text = (i: number): string => `burst ${i}`;
    a.sendJson(...Array.from({ length: COUNT }, (_, i) => ({ type: 'message', text: text(i + 1), id: i + 1 })));
    await until(() => acksOf(a).length >= 2000, WAIT, '2,000 acks');
    await stop(one, 'SIGKILL');
    const acked = acksOf(a);
    expect(acked.length).toBeLessThan(COUNT); // killed part way
    const highest = Math.max(...acked.map((e) => e.seq));

    const two = await serve(['--fsync', fsync]);
    const kept = await wholeHistory(two.port, 'lobby');
    // One unbroken run from 1, no duplicates, each with its own text.
    kept.forEach((e, i) => {
      if (e.seq !== i + 1 || e.text !== text(i + 1)) throw new Error(`event ${i} is ${JSON.stringify(e)}`);
    });
    // Every message whose seq came back is there (under batch a kill loses nothing committed,
    // and what was acked was committed at the end of its turn at the latest).
    const keptSeqs = new Set(kept.map((e) => e.seq));
    const missing = acked.filter((e) => !keptSeqs.has(e.seq));
    if (fsync === 'always') expect(missing).toEqual([]);
    else expect(missing.length).toBeLessThanOrEqual(5000);
    const b = await client(two.port, 'bob');
    b.sendJson({ type: 'message', text: 'after the kill', id: 'm' });
    const ack = await b.waitEvent((e) => e.type === 'ack' && e.id === 'm', WAIT);
    expect(ack.seq).toBeGreaterThan(highest);
  },
  90_000,
);

/** Posts an image over HTTP; resolves with the answer (its image id and task). */
async function postImage(port: number, bytes: Buffer, name: string): Promise<any> {
  const form = new FormData();
  form.append('image', new Blob([bytes]), name);
  const res = await fetch(`http://127.0.0.1:${port}/api/rooms/lobby/images`, { method: 'POST', body: form });
  expect(res.status).toBeLessThan(300);
  return res.json();
}

test('images: the bytes, the image event and the task outlive a restart, and image ids go on', async () => {
  const one = await serve();
  const picture = bmp(16, 16, [10, 200, 30]);
  const first = await postImage(one.port, picture, 'green.bmp');
  await stop(one, 'SIGTERM');

  const two = await serve();
  const img = await fetch(`http://127.0.0.1:${two.port}/api/images/${first.image}`);
  expect(img.status).toBe(200);
  expect(img.headers.get('content-type')).toBe('image/bmp');
  expect(Buffer.from(await img.arrayBuffer()).equals(picture)).toBe(true);
  const task = await getJson(two.port, `/api/tasks/${first.image}`);
  expect(task.json).toMatchObject({ status: 'failed', error: { code: 'CLASSIFIER_OFF' }, image: first.image });
  expect((await wholeHistory(two.port, 'lobby')).find((e) => e.type === 'image')).toMatchObject({ image: first.image, name: 'green.bmp' });
  const second = await postImage(two.port, bmp(16, 16, [200, 10, 30]), 'red.bmp');
  expect(second.image).toBeGreaterThan(first.image);
}, 60_000);

test('--retain keeps only the newest messages of each room', async () => {
  const one = await serve();
  const a = await client(one.port, 'ann');
  for (let i = 1; i <= 20; i++) a.sendJson({ type: 'message', text: `m${i}`, id: i });
  await a.waitEvent((e) => e.type === 'ack' && e.id === 20, WAIT);
  await stop(one, 'SIGTERM');
  const two = await serve(['--retain', '5']);
  expect(two.child.stdout).toContain('keeps the last 5 messages a room');
  let page: Ev = {} as Ev;
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    page = (await getJson(two.port, '/api/rooms/lobby/history?after=0&limit=100')).json;
    if (page.first === 16) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(page.messages.map((e: Ev) => e.seq)).toEqual([16, 17, 18, 19, 20]);
  expect(page).toMatchObject({ first: 16, last: 20, missed: 15 });
}, 60_000);

test('a data directory that cannot be made: one line naming it and what to do, exit 1', async () => {
  const file = path.join(dir, 'a-file');
  writeFileSync(file, 'not a directory');
  expect(await refusedStart(path.join(file, 'data'))).toMatch(/^roomcast: Cannot write the history store .*a-file.* --store memory/);
});

/** Runs a serve that must refuse to start; resolves with its one line of stderr. */
async function refusedStart(dataDir: string): Promise<string> {
  const child = new CliChild('serve', spawn(process.execPath, [BIN, 'serve', '--port', '0', '--no-bot', '--data-dir', dataDir], { env: CLI_ENV }), WAIT);
  children.push(child);
  expect(await child.waitExit()).toBe(1);
  expect(child.stderr).not.toMatch(/\n\s+at /); // no stack trace
  const lines = child.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

test('a store file that is not a roomcast store: one line naming the file, exit 1', async () => {
  writeFileSync(path.join(dir, 'messages.sqlite'), Buffer.alloc(8192, 'garbage! '));
  expect(await refusedStart(dir)).toMatch(/^roomcast: .*messages\.sqlite is not a roomcast history file, or it is damaged .* Move it aside/);
});

const noTmpfs = tmpfsUnavailable();

(noTmpfs ? test.skip : test)(`a full disk at start-up: one line naming the path, exit 1${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, async () => {
  const mnt = path.join(dir, 'full');
  const why = mountTmpfs(mnt, '256k');
  if (why) throw new Error(why);
  try {
    const fd = openSync(path.join(mnt, 'filler'), 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(16 * 1024, 1));
    } catch {
      // ENOSPC: full
    } finally {
      closeSync(fd);
    }
    expect(await refusedStart(path.join(mnt, 'data'))).toMatch(/^roomcast: Cannot write the history store .*full.*(no space|ENOSPC|disk is full|SQLITE_FULL)/i);
  } finally {
    unmount(mnt);
  }
});

(noTmpfs ? test.skip : test)(
  `a disk that fills up while running: chat goes on, /readyz says degraded, writing resumes when there is room${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`,
  async () => {
    const mnt = path.join(dir, 'disk');
    const why = mountTmpfs(mnt, '3M');
    if (why) throw new Error(why);
    try {
      const one = await serve(['--fsync', 'always'], mnt);
      const a = await client(one.port, 'ann');
      const b = await client(one.port, 'bob');
      a.sendJson({ type: 'message', text: 'before', id: 0 });
      await a.waitEvent((e) => e.type === 'ack' && e.id === 0, WAIT);
      // Fill the disk to the last byte.
      const filler = path.join(mnt, 'filler');
      const fd = openSync(filler, 'w');
      try {
        const block = Buffer.alloc(64 * 1024, 1);
        for (;;) writeSync(fd, block);
      } catch {
        // ENOSPC: full
      } finally {
        closeSync(fd);
      }
      const big = 'x'.repeat(3000);
      for (let i = 1; i <= 50; i++) a.sendJson({ type: 'message', text: `${i} ${big}` });
      // Bob hears every message although none can be written.
      await until(() => b.ofType('message').length >= 50, WAIT, 'bob to hear 50 messages');
      let ready: { status: number; json: any } = { status: 0, json: {} };
      const deadline = Date.now() + WAIT;
      while (Date.now() < deadline) {
        ready = await getJson(one.port, '/readyz');
        if (ready.json.status === 'degraded') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(ready.status).toBe(200);
      expect(ready.json.status).toBe('degraded');
      expect(ready.json.degraded[0]).toMatch(/^history: Writing the history store .* failed/);
      const metrics = await (await fetch(`http://127.0.0.1:${one.port}/metrics`)).text();
      expect(Number(/^roomcast_history_failed_writes_total (\d+)/m.exec(metrics)![1])).toBeGreaterThan(0);
      // Logged once, not once per message.
      expect(one.child.stdout.concat(one.child.stderr).match(/history: Writing the history store/g)).toHaveLength(1);

      rmSync(filler);
      while (Date.now() < deadline + WAIT) {
        ready = await getJson(one.port, '/readyz');
        if (ready.json.status === 'ready') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(ready.json).toMatchObject({ status: 'ready', history: { state: 'ok', queued: 0 } });
      await stop(one, 'SIGTERM');
      const two = await serve([], mnt);
      const kept = await wholeHistory(two.port, 'lobby');
      expect(kept.map((e) => e.seq)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
      await stop(two, 'SIGTERM');
    } finally {
      for (const c of children.splice(0)) {
        c.kill();
        await c.waitExit(WAIT).catch(() => {});
      }
      unmount(mnt);
    }
  },
  90_000,
);

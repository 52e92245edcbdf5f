/**
 * The message store's costs, on this machine's disk (a temporary directory unless --dir):
 *
 *   node dist-bench/bench/store.js [--only appends,size,open,page] [--seconds S]
 *                                  [--per-turn N[,N...]] [--fsync P[,P...]] [--rooms N[,N...]]
 *                                  [--page-room N] [--size-messages N] [--runs R] [--dir DIR] [--json]
 *
 *  - appends: sustained appends per second into one room, for each fsync policy and each
 *    number of appends per event-loop turn (the store writes one transaction per turn), for S
 *    seconds (default 3, at most 5 million messages); with the CPU time per message and the
 *    longest turns (a turn is the appends and the store's write of them, plus, under `batch`,
 *    the sync once a second);
 *  - size: bytes on disk per message once closed (and searched once, which fills the
 *    full-text index), and how they split between the tables and the index;
 *  - open: time to open a store of N rooms (default 1,000 and 10,000, 10 messages each);
 *  - page: time to read a 10,000-message page, search, and prune, in a room of --page-room
 *    messages (default 200,000).
 *
 * Messages are made of words drawn from a fixed vocabulary with a skewed frequency (like
 * chat: a few words everywhere, most rare), 4 to 20 words each, from a seeded generator.
 * Every timed figure is the median of --runs runs (default 3).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import type { MessageEvent } from '../src/protocol/events.js';
import { SqliteStore, STORE_FILE } from '../src/store/sqlite-store.js';
import type { FsyncPolicy } from '../src/store/store.js';
import { formatTable } from './table.js';

const MAX_MESSAGES = 5_000_000;
const PAGE = 10_000;

// ---- messages ----

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'to', 'vi', 'de', 'po', 'an', 'el', 'is', 'or', 'um', 'ba', 'ch', 'st'];

class Chatter {
  private readonly rnd: () => number;
  private readonly words: string[] = [];
  private readonly nicks = Array.from({ length: 20 }, (_, i) => `user${i}`);
  time = 1_700_000_000_000;

  constructor(seed = 1) {
    this.rnd = random(seed);
    const seen = new Set<string>();
    while (this.words.length < 5000) {
      let w = '';
      for (let n = 1 + Math.floor(this.rnd() * 4); n > 0; n--) w += SYLLABLES[Math.floor(this.rnd() * SYLLABLES.length)];
      if (!seen.has(w)) {
        seen.add(w);
        this.words.push(w);
      }
    }
  }

  /** The n-th most frequent word. */
  word(n: number): string {
    return this.words[n]!;
  }

  message(room: string, seq: number): MessageEvent {
    const n = 4 + Math.floor(this.rnd() * 17);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(this.words[Math.floor(this.words.length * this.rnd() ** 3)]!);
    this.time += 1 + Math.floor(this.rnd() * 50);
    return { type: 'message', room, seq, nick: this.nicks[Math.floor(this.rnd() * this.nicks.length)]!, text: parts.join(' '), time: this.time };
  }
}

// ---- helpers ----

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function timed<T>(f: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await f();
  return [performance.now() - t0, r];
}

/** Writes `count` messages to `room` as fast as the store takes them, `perTurn` a turn. */
async function fill(store: SqliteStore, chatter: Chatter, room: string, count: number, perTurn = 5000): Promise<void> {
  for (let seq = 1; seq <= count; ) {
    for (let i = 0; i < perTurn && seq <= count; i++) store.append(chatter.message(room, seq++));
    await turn();
  }
  await store.flush();
}

// ---- appends ----

interface AppendRun {
  fsync: FsyncPolicy;
  perTurn: number;
  appendsPerSecond: number;
  cpuMicrosPerMessage: number;
  turnP99Ms: number;
  turnMaxMs: number;
  messages: number;
}

async function appendRun(base: string, fsync: FsyncPolicy, perTurn: number, seconds: number): Promise<AppendRun> {
  const dir = mkdtempSync(path.join(base, 'appends-'));
  let durable = 0;
  const store = new SqliteStore({ dir, fsync, observer: { durable: (_r, seq) => (durable = seq) } });
  await store.open();
  const chatter = new Chatter();
  // Made beforehand and renumbered as they are used again, so that what is timed is the store,
  // not the generator. The store lets go of an event once written, within the turn.
  const size = Math.max(4096, 2 * perTurn);
  const pool = Array.from({ length: size }, (_, i) => chatter.message('bench', i + 1));
  const gaps: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let seq = 0;
  let last = t0;
  while (seq < MAX_MESSAGES) {
    for (let i = 0; i < perTurn; i++) {
      const m = pool[seq % size]!;
      seq++;
      m.seq = seq;
      m.time = 1_700_000_000_000 + seq;
      store.append(m);
    }
    await turn();
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    if (now >= end) break;
  }
  await store.flush();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (durable !== seq) throw new Error(`${durable} of ${seq} reported durable`);
  return {
    fsync,
    perTurn,
    appendsPerSecond: seq / wall,
    cpuMicrosPerMessage: (cpu.user + cpu.system) / seq,
    turnP99Ms: percentile(gaps, 99),
    turnMaxMs: Math.max(...gaps),
    messages: seq,
  };
}

// ---- size ----

interface SizeResult {
  messages: number;
  bytesPerMessage: number;
  jsonBytesPerMessage: number;
  textBytesPerMessage: number;
  /** Bytes per message in each table and index, from SQLite's dbstat. */
  split: Record<string, number>;
}

async function sizeRun(base: string, count: number): Promise<SizeResult> {
  const dir = mkdtempSync(path.join(base, 'size-'));
  const store = new SqliteStore({ dir, fsync: 'off' });
  await store.open();
  const chatter = new Chatter(2);
  let json = 0;
  let text = 0;
  for (let seq = 1; seq <= count; ) {
    for (let i = 0; i < 5000 && seq <= count; i++) {
      const m = chatter.message('size', seq++);
      json += Buffer.byteLength(JSON.stringify(m));
      text += Buffer.byteLength(m.text);
      store.append(m);
    }
    await turn();
  }
  // Searched once, so that the full-text index is there to be measured too.
  await store.search('size', chatter.word(0), 1);
  await store.close();
  const file = path.join(dir, STORE_FILE);
  const bytes = statSync(file).size;
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as { name: string; bytes: number }[];
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const split: Record<string, number> = {};
  for (const r of rows) if (r.bytes / count >= 0.05) split[r.name] = r.bytes / count;
  return { messages: count, bytesPerMessage: bytes / count, jsonBytesPerMessage: json / count, textBytesPerMessage: text / count, split };
}

// ---- open ----

async function openRun(base: string, rooms: number, perRoom: number, runs: number): Promise<{ rooms: number; events: number; openMs: number }> {
  const dir = mkdtempSync(path.join(base, 'open-'));
  const store = new SqliteStore({ dir, fsync: 'off' });
  await store.open();
  const chatter = new Chatter(3);
  for (let r = 0; r < rooms; r++) {
    for (let seq = 1; seq <= perRoom; seq++) store.append(chatter.message(`room${r}`, seq));
    store.setTopic(`room${r}`, `topic of room ${r}`, 'user1');
    if (r % 500 === 499) await turn();
  }
  await store.close();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = new SqliteStore({ dir, fsync: 'batch' });
    const [ms, found] = await timed(() => s.open());
    if (found.length !== rooms) throw new Error(`opened ${found.length} rooms of ${rooms}`);
    times.push(ms);
    await s.close();
  }
  rmSync(dir, { recursive: true, force: true });
  return { rooms, events: rooms * perRoom, openMs: median(times) };
}

// ---- page, search, prune ----

async function pageRun(base: string, count: number, runs: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(base, 'page-'));
  const chatter = new Chatter(4);
  let store = new SqliteStore({ dir, fsync: 'off' });
  await store.open();
  await fill(store, chatter, 'big', count);
  await store.close();
  // Reopened, so that the timings are of a store as a restarted server has it.
  store = new SqliteStore({ dir, fsync: 'batch' });
  await store.open();
  const figures: Record<string, number[]> = {};
  const record = (name: string, ms: number): void => void (figures[name] ??= []).push(ms);
  const common = chatter.word(0);
  const rare = chatter.word(4000);
  // The room's first search indexes it all (the index is filled when a room is searched).
  const [firstSearchMs] = await timed(() => store.search('big', rare, 50));
  for (let i = 0; i < runs; i++) {
    const [first, page] = await timed(() => store.range('big', 0, PAGE));
    if (page.events.length !== PAGE) throw new Error('short page');
    record(`range(after 0, ${fmt(PAGE)})`, first);
    record(`range(after ${fmt(count / 2)}, ${fmt(PAGE)})`, (await timed(() => store.range('big', count / 2, PAGE)))[0]);
    record(`latest(${fmt(PAGE)})`, (await timed(() => store.latest('big', PAGE)))[0]);
    record(`search a common word, 50 hits`, (await timed(() => store.search('big', common, 50)))[0]);
    record(`search a rare word, 50 hits`, (await timed(() => store.search('big', rare, 50)))[0]);
    record(`search two words, 50 hits`, (await timed(() => store.search('big', `${common} ${chatter.word(10)}`, 50)))[0]);
  }
  // Prune half of the room, timing the whole and the longest turn it takes (each step is a turn).
  const gaps: number[] = [];
  let ticking = true;
  let last = performance.now();
  const tick = (): void => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const [pruneMs, pruned] = await timed(() => store.prune({ maxPerRoom: count / 2 }));
  ticking = false;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const out: Record<string, number> = { [`first search (indexes ${fmt(count)} messages)`]: firstSearchMs };
  for (const [k, v] of Object.entries(figures)) out[k] = median(v);
  out[`prune ${fmt(pruned.deleted)} (whole)`] = pruneMs;
  // No gap recorded: the whole prune was one turn.
  out['prune: longest turn'] = gaps.length > 0 ? Math.max(...gaps) : pruneMs;
  return out;
}

// ---- main ----

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      'per-turn': { type: 'string', default: '1,100,1000' },
      fsync: { type: 'string', default: 'off,batch,always' },
      rooms: { type: 'string', default: '1000,10000' },
      'page-room': { type: 'string', default: '200000' },
      'size-messages': { type: 'string', default: '100000' },
      runs: { type: 'string', default: '3' },
      only: { type: 'string', default: 'appends,size,open,page' },
      dir: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Math.min(60, Number(values.seconds));
  const runs = Math.max(1, Math.min(20, Number(values.runs)));
  const base = mkdtempSync(path.join(values.dir ?? tmpdir(), 'roomcast-store-bench-'));
  const out = (line: string): void => void (values.json ? process.stderr : process.stdout).write(`${line}\n`);
  const results: Record<string, unknown> = {};
  const only = new Set(values.only!.split(','));
  try {
    if (only.has('appends')) await appendsSection();
    if (only.has('size')) await sizeSection();
    if (only.has('open')) await openSection();
    if (only.has('page')) await pageSection();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));

  async function appendsSection(): Promise<void> {
    const appends: AppendRun[] = [];
    for (const fsync of values.fsync!.split(',') as FsyncPolicy[])
      for (const perTurn of values['per-turn']!.split(',').map(Number)) {
        const rs: AppendRun[] = [];
        for (let i = 0; i < runs; i++) rs.push(await appendRun(base, fsync, perTurn, seconds));
        const pick = rs.sort((a, b) => a.appendsPerSecond - b.appendsPerSecond)[Math.floor(rs.length / 2)]!;
        appends.push(pick);
      }
    results.appends = appends;
    out(`appends into one room, ${seconds} s a run, median of ${runs} (disk: ${base})`);
    out(
      formatTable(
        ['fsync', 'per turn', 'appends/s', 'CPU µs/msg', 'turn p99 ms', 'turn max ms'],
        appends.map((r) => [r.fsync, fmt(r.perTurn), fmt(r.appendsPerSecond), fmt(r.cpuMicrosPerMessage, 1), fmt(r.turnP99Ms, 2), fmt(r.turnMaxMs, 2)]),
        2,
      ),
    );
  }

  async function sizeSection(): Promise<void> {
    const size = await sizeRun(base, Number(values['size-messages']));
    results.size = size;
    out(`\nsize of ${fmt(size.messages)} messages, closed: ${fmt(size.bytesPerMessage, 1)} bytes a message`);
    out(`  (its text ${fmt(size.textBytesPerMessage, 1)} bytes; the message event as JSON ${fmt(size.jsonBytesPerMessage, 1)} bytes)`);
    out(formatTable(['table or index', 'bytes/msg'], Object.entries(size.split).map(([k, v]) => [k, fmt(v, 1)])));
  }

  async function openSection(): Promise<void> {
    const opens = [];
    for (const rooms of values.rooms!.split(',').map(Number)) opens.push(await openRun(base, rooms, 10, runs));
    results.open = opens;
    out(`\nopen(), median of ${runs}`);
    out(formatTable(['rooms', 'events', 'open ms'], opens.map((o) => [fmt(o.rooms), fmt(o.events), fmt(o.openMs, 1)])));
  }

  async function pageSection(): Promise<void> {
    const page = await pageRun(base, Number(values['page-room']), runs);
    results.page = page;
    out(`\none room of ${fmt(Number(values['page-room']))} messages, reopened; median of ${runs}`);
    out(formatTable(['operation', 'ms'], Object.entries(page).map(([k, v]) => [k, fmt(v, 2)])));
  }
}

await main();

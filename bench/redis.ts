/**
 * Rooms through Redis, on this machine: a redis-server of the benchmark's own on a free
 * loopback port (no persistence), stopped by its PID at the end.
 *
 *   node dist-bench/bench/redis.js [--messages N] [--window W] [--runs R] [--json]
 *
 * One room: N messages (default 200,000) published by one client through the atomic publish
 * script, at most W (default 1,000) unanswered at a time (node-redis writes the commands of a
 * turn together: pipelining), while a second client subscribes to the room's channel and a
 * RoomFeed delivers every event once, in order. Reports published messages per second, Redis'
 * CPU per 1,000 messages, this process's CPU per message, and whether the feed delivered
 * 1..N. Every run stops by itself (N messages, or 60 s). Median of R runs (default 3). Also
 * `npm run bench -- --scenario redis`.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from '@redis/client';
import { parseLive, RedisRooms } from '../src/cluster/redis-rooms.js';
import { roomKeys } from '../src/cluster/room-keys.js';
import { RoomFeed } from '../src/cluster/room-feed.js';
import type { MessageEvent } from '../src/protocol/events.js';
import { clockTicks, cpuSeconds, readCpu } from './proc.js';
import { RedisServer } from './redis-server.js';
import { formatTable } from './table.js';

const LIMIT_MS = 60_000;

interface Run {
  perSecond: number;
  redisCpuMsPer1000: number;
  nodeCpuMicrosPerMessage: number;
  delivered: boolean;
}

async function run(url: string, pid: number, n: number, window: number): Promise<Run> {
  const pubClient = createClient({ url });
  const readClient = createClient({ url });
  const sub = createClient({ url });
  for (const c of [pubClient, readClient, sub]) await c.connect();
  await pubClient.sendCommand(['FLUSHALL']);
  const rooms = new RedisRooms(pubClient);
  const reader = new RedisRooms(readClient);
  let delivered = 0;
  let inOrder = true;
  const feed = new RoomFeed({
    room: 'bench',
    read: (after, limit) => reader.read('bench', after, limit),
    deliver: (e) => {
      if (e.seq !== ++delivered) inOrder = false;
    },
  });
  await sub.subscribe(roomKeys('bench').channel, (m) => {
    const live = parseLive('bench', m);
    for (const one of live ?? []) feed.live(one);
  });
  const ticks = clockTicks();
  const redis0 = cpuSeconds(readCpu(pid, ticks));
  const node0 = process.cpuUsage();
  const started = performance.now();
  let sent = 0;
  let answered = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent < n && sent - answered < window && performance.now() - started < LIMIT_MS) {
        const i = ++sent;
        const m: MessageEvent = { type: 'message', room: 'bench', seq: 0, nick: 'bench', text: `message ${i} ${'x'.repeat(80)}`, time: Date.now() };
        rooms.publish(m).then(() => {
          answered++;
          if (answered === sent && (sent === n || performance.now() - started >= LIMIT_MS)) resolve();
          else if (sent - answered < window / 2) pump();
        }, reject);
      }
    };
    pump();
  });
  const wall = (performance.now() - started) / 1000;
  const deadline = Date.now() + 10_000;
  while (delivered < answered && Date.now() < deadline) {
    await feed.catchUp();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const node = process.cpuUsage(node0);
  const redisCpu = cpuSeconds(readCpu(pid, ticks)) - redis0;
  for (const c of [pubClient, readClient, sub]) await c.close();
  return {
    perSecond: answered / wall,
    redisCpuMsPer1000: (redisCpu * 1e6) / answered,
    nodeCpuMicrosPerMessage: (node.user + node.system) / answered,
    delivered: inOrder && delivered === answered,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export interface RedisFigures {
  messages: number;
  window: number;
  perSecond: number;
  redisCpuMsPer1000: number;
  nodeCpuMicrosPerMessage: number;
  allDelivered: boolean;
}

/** Why redis-server cannot run here, or null. */
export function redisMissing(): string | null {
  const probe = spawnSync('redis-server', ['--version']);
  return probe.error || probe.status !== 0 ? 'redis-server is not installed (apt-get install redis-server)' : null;
}

/** The figures, median of `runs` runs against one redis-server of its own. */
export async function runRedisFigures(n: number, window: number, runs: number): Promise<RedisFigures> {
  const redis = await RedisServer.start();
  try {
    const results: Run[] = [];
    for (let i = 0; i < runs; i++) results.push(await run(redis.url, redis.pid!, n, window));
    return {
      messages: n,
      window,
      perSecond: median(results.map((r) => r.perSecond)),
      redisCpuMsPer1000: median(results.map((r) => r.redisCpuMsPer1000)),
      nodeCpuMicrosPerMessage: median(results.map((r) => r.nodeCpuMicrosPerMessage)),
      allDelivered: results.every((r) => r.delivered),
    };
  } finally {
    await redis.stop();
  }
}

export function redisTable(f: RedisFigures): string {
  return [
    `one room through Redis: ${f.messages.toLocaleString('en-US')} messages, ${f.window} in flight, median of the runs`,
    formatTable(
      ['published/s', 'Redis CPU ms / 1,000 msgs', 'publisher+subscriber CPU µs / msg', 'feed delivered 1..N in order', 'target >= 50,000/s'],
      [
        [
          Math.round(f.perSecond).toLocaleString('en-US'),
          f.redisCpuMsPer1000.toFixed(1),
          f.nodeCpuMicrosPerMessage.toFixed(1),
          f.allDelivered ? 'yes' : 'NO',
          f.perSecond >= 50_000 ? 'met' : 'MISSED',
        ],
      ],
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '200000' },
      window: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  const figures = await runRedisFigures(Number(values.messages), Number(values.window), Number(values.runs));
  console.log(values.json ? JSON.stringify(figures) : redisTable(figures));
  if (!figures.allDelivered) process.exitCode = 1;
}

// Run as a program, not when bench/main.ts imports the figures.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();

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
 * 1..N. Every run stops by itself (N messages, or 60 s). Median of R runs (default 3).
 */
import { performance } from 'node:perf_hooks';
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
    if (live) feed.live(live);
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '200000' },
      window: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const n = Number(values.messages);
  const window = Number(values.window);
  const runs = Number(values.runs);
  const redis = await RedisServer.start();
  try {
    const results: Run[] = [];
    for (let i = 0; i < runs; i++) results.push(await run(redis.url, redis.pid!, n, window));
    const summary = {
      messages: n,
      window,
      perSecond: median(results.map((r) => r.perSecond)),
      redisCpuMsPer1000: median(results.map((r) => r.redisCpuMsPer1000)),
      nodeCpuMicrosPerMessage: median(results.map((r) => r.nodeCpuMicrosPerMessage)),
      allDelivered: results.every((r) => r.delivered),
    };
    if (values.json) console.log(JSON.stringify(summary));
    else {
      console.log(`one room through Redis: ${n.toLocaleString('en-US')} messages, ${window} in flight, median of ${runs}`);
      console.log(
        formatTable(
          ['published/s', 'Redis CPU ms / 1,000 msgs', 'publisher+subscriber CPU µs / msg', 'feed delivered 1..N in order'],
          [[Math.round(summary.perSecond).toLocaleString('en-US'), summary.redisCpuMsPer1000.toFixed(1), summary.nodeCpuMicrosPerMessage.toFixed(1), summary.allDelivered ? 'yes' : 'NO']],
        ),
      );
    }
    if (!summary.allDelivered) process.exitCode = 1;
  } finally {
    await redis.stop();
  }
}

await main();

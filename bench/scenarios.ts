/**
 * The benchmark's scenarios, and the one procedure that runs any of them:
 *
 *   start a fresh server -> connect the active rooms -> (connect the idle connections, RSS
 *   before and after) -> one warm-up round -> measured rounds (server CPU read before and
 *   after) -> check every delivery -> close everything, stop the server by PID.
 *
 * A fresh server per run keeps runs independent (no JIT or heap state carried over) and makes
 * the peak RSS (VmHWM) that run's own.
 */
import { BenchClient, connectAll, sendBurst, sendPaced, Tally, type ClientPlan, type Wire } from './load.js';
import { ServerProcess, tlsServerArgs } from './server-process.js';
import { RedisServer } from './redis-server.js';
import { LatencyHistogram } from './stats.js';
import { WS_SCENARIOS } from './ws-scenarios.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface BurstLoad {
  kind: 'burst';
  /** Messages each sender sends per round, as fast as it can. */
  perSender: number;
  /** Messages per write. */
  batch: number;
}

export interface PacedLoad {
  kind: 'paced';
  /** Messages per second per sender, each written on its own. */
  rate: number;
  /** Length of one round. */
  roundSeconds: number;
}

export interface Target<Metric extends string = 'deliveriesPerCpuSecond' | 'latencyP99Ms' | 'idleBytesPerConnection'> {
  metric: Metric;
  /** 'min': the figure must be at least `value`; 'max': at most. */
  bound: 'min' | 'max';
  value: number;
  label: string;
}

export interface Scenario {
  name: string;
  description: string;
  /** The active rooms: `count` rooms of `members` clients, `senders` of whom send. */
  rooms: { count: number; members: number; senders: number };
  /** Connections that register and then do nothing (JSON mode, no room). */
  idle: number;
  load: BurstLoad | PacedLoad;
  /** Bytes of text per message. */
  textBytes: number;
  targets: Target[];
  /** The wire format of the active clients when the scenario needs one (else --wire's). */
  wire?: Wire;
  /** Mixed rooms: member k uses wires[k % length]; 'tcp' is the run's TCP format (wire, --wire). */
  wires?: (Wire | 'tcp')[];
  /**
   * History in SQLite (a fresh data dir per run, --fsync batch), as `roomcast serve` keeps it
   * by default; otherwise --store memory.
   */
  store?: 'sqlite';
  /** A cluster: this many server processes (--processes) on a Redis of the run's own (--redis). */
  cluster?: { processes: number };
  /** The server speaks TLS (--tls, its certificate made in a fresh data dir) and every client connects with it. */
  tls?: boolean;
  /** Run only when named, not with `all` or `chat`: it would lengthen the default run more than it tells. */
  onRequest?: boolean;
}

/** The same scenario with the history store on: its twin, to hold the store's cost against. */
function stored(sc: Scenario): Scenario {
  return { ...sc, name: `${sc.name}-stored`, description: `${sc.description}; history in SQLite (--fsync batch)`, store: 'sqlite' };
}

/**
 * Other traffic to run beside a scenario's rounds (image posts, say): started once the
 * clients are connected, before the warm-up round; told when the measured rounds start (with
 * the run's tally, whose latency histogram it may swap to tell its own phases apart); and
 * stopped after them, also when the run fails. What it reports goes into the result.
 */
export interface BackgroundLoad {
  start(port: number): Promise<void>;
  measuring(tally: Tally): void;
  stop(): Promise<Record<string, number>>;
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'fanout-100',
    description: 'one room of 100, 10 senders x 1,000 messages of 100 bytes per round, unpaced',
    rooms: { count: 1, members: 100, senders: 10 },
    idle: 0,
    load: { kind: 'burst', perSender: 1000, batch: 50 },
    textBytes: 100,
    targets: [{ metric: 'deliveriesPerCpuSecond', bound: 'min', value: 3_000_000, label: '>= 3,000,000 deliveries/CPU-s' }],
  },
  {
    name: 'rooms-1000',
    description: '1,000 clients in 50 rooms of 20, 3 senders per room x 200 messages per round, unpaced',
    rooms: { count: 50, members: 20, senders: 3 },
    idle: 0,
    load: { kind: 'burst', perSender: 200, batch: 20 },
    textBytes: 100,
    targets: [{ metric: 'deliveriesPerCpuSecond', bound: 'min', value: 2_000_000, label: '>= 2,000,000 deliveries/CPU-s' }],
  },
  {
    name: 'latency-200',
    description: 'one room of 200, 5 senders at 200 messages/s each, paced, 1 s rounds',
    rooms: { count: 1, members: 200, senders: 5 },
    idle: 0,
    load: { kind: 'paced', rate: 200, roundSeconds: 1 },
    textBytes: 100,
    targets: [{ metric: 'latencyP99Ms', bound: 'max', value: 5, label: 'p99 <= 5 ms' }],
  },
  {
    name: 'idle-10k',
    description: '10,000 idle connections (JSON, no room) + one active room of 20 with 4 senders x 500 per round',
    rooms: { count: 1, members: 20, senders: 4 },
    idle: 10_000,
    load: { kind: 'burst', perSender: 500, batch: 20 },
    textBytes: 100,
    targets: [{ metric: 'idleBytesPerConnection', bound: 'max', value: 6 * 1024, label: '<= 6 KB RSS per idle connection' }],
  },
  ...WS_SCENARIOS,
];
SCENARIOS.push(...['fanout-100', 'rooms-1000', 'latency-200'].map((name) => stored(SCENARIOS.find((sc) => sc.name === name)!)));

/** The same scenario on a cluster of `n` processes through Redis: its twin, against one process without Redis. */
function clustered(sc: Scenario, n: number): Scenario {
  const description = `${sc.description}; ${n} processes sharing the port and the rooms through Redis (--processes ${n} --redis), Redis' CPU counted`;
  return { ...sc, name: `${sc.name}-cluster${n}`, description, cluster: { processes: n } };
}
SCENARIOS.push(...['fanout-100', 'rooms-1000', 'latency-200'].map((name) => clustered(SCENARIOS.find((sc) => sc.name === name)!, 2)));

/** The same scenario over TLS: its twin, to hold the encryption's cost against. */
function overTls(sc: Scenario): Scenario {
  return { ...sc, name: `${sc.name}-tls`, description: `${sc.description}; every client over TLS (serve --tls)`, tls: true };
}
// rooms-1000-tls only on request: fanout-100-tls already tells the encryption's cost per delivery.
SCENARIOS.push(overTls(SCENARIOS.find((sc) => sc.name === 'fanout-100')!), { ...overTls(SCENARIOS.find((sc) => sc.name === 'rooms-1000')!), onRequest: true });

export interface RunOptions {
  /** Measured time per run: rounds repeat until it has passed (or maxRounds). */
  seconds: number;
  maxRounds: number;
  /** A round that has not completed by then is abandoned (its missing deliveries are lost). */
  roundTimeoutMs: number;
  wire: Wire;
  serverArgs: string[];
  nodeArgs: string[];
  /** Package root of the server to run (default: this one). */
  serverRoot?: string;
  serverLog?: string;
  /** Overrides the burst scenarios' messages per write (to study batching). */
  batch?: number;
  background?: BackgroundLoad;
  log: (msg: string) => void;
}

export interface RunResult {
  rounds: number;
  /** Deliveries during the measured rounds. */
  deliveries: number;
  wallSeconds: number;
  serverCpuSeconds: number;
  /** The same split into user and kernel time: the kernel's share is the TCP work. */
  serverUserSeconds: number;
  serverSystemSeconds: number;
  /**
   * CPU of this process (all clients) in the same time. Near wallSeconds means the generator
   * was saturated, and latencies include its own queueing.
   */
  generatorCpuSeconds: number;
  deliveriesPerSecond: number;
  deliveriesPerCpuSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Over the whole run, warm-up included. */
  lost: number;
  duplicates: number;
  outOfOrder: number;
  unexpected: number;
  errors: number;
  errorSamples: string[];
  /** Server memory at the end of the run, bytes. */
  peakRss: number;
  rss: number;
  idle?: {
    connections: number;
    rssBefore: number;
    rssAfter: number;
    bytesPerConnection: number;
  };
  /** What the background load reported (see BackgroundLoad). */
  background?: Record<string, number>;
  /** Everything sent in time and everything delivered: the scenario worked. */
  complete: boolean;
}

const CONNECT_CONCURRENCY = 64;
const IDLE_CONNECT_CONCURRENCY = 256;

function planClients(sc: Scenario, wire: Wire): { active: ClientPlan[]; idle: ClientPlan[] } {
  const { count, members, senders } = sc.rooms;
  const senderCount = count * senders;
  const active: ClientPlan[] = [];
  for (let r = 0; r < count; r++) {
    const room = `bench${r}`;
    const roomSenders = Array.from({ length: senders }, (_, k) => r * senders + k);
    for (let m = 0; m < members; m++) {
      const senderIndex = m < senders ? roomSenders[m] : -1;
      const own = sc.wires?.[m % sc.wires.length] ?? wire;
      active.push({
        wire: own === 'tcp' ? wire : own,
        room,
        senderIndex,
        hears: roomSenders.filter((s) => s !== senderIndex),
        senderCount,
        textBytes: sc.textBytes,
        tls: sc.tls,
      });
    }
  }
  const idle: ClientPlan[] = Array.from({ length: sc.idle }, () => ({
    wire: 'json' as const,
    room: null,
    senderIndex: -1,
    hears: [],
    senderCount,
    textBytes: sc.textBytes,
    tls: sc.tls,
  }));
  return { active, idle };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runScenario(sc: Scenario, opts: RunOptions): Promise<RunResult> {
  // The history and --tls's certificate both live in the data dir: a fresh one per run.
  const dataDir = sc.store === 'sqlite' || sc.tls ? mkdtempSync(path.join(tmpdir(), 'roomcast-bench-')) : null;
  const redis = sc.cluster ? await RedisServer.start() : null;
  const storeArgs = redis
    ? ['--redis', redis.url, '--processes', String(sc.cluster!.processes)]
    : sc.store === 'sqlite'
      ? ['--store', 'sqlite', '--fsync', 'batch']
      : ['--store', 'memory'];
  const dataArgs = dataDir === null ? [] : sc.tls ? tlsServerArgs(dataDir) : ['--data-dir', dataDir];
  let server: ServerProcess;
  try {
    server = await ServerProcess.start({
      args: [...storeArgs, ...dataArgs, ...opts.serverArgs],
      nodeArgs: opts.nodeArgs,
      root: opts.serverRoot,
      logFile: opts.serverLog,
      countChildren: sc.cluster !== undefined,
      alsoCounted: () => (redis?.pid === undefined ? [] : [redis.pid]),
    });
  } catch (err) {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await redis?.stop();
    throw err;
  }
  const tally = new Tally();
  let clients: BenchClient[] = [];
  const background = opts.background;
  let backgroundStarted = false;
  try {
    const plans = planClients(sc, sc.wire ?? opts.wire);
    clients = await connectAll(server.port, plans.active, tally, CONNECT_CONCURRENCY, 60_000);
    const senders = clients.filter((c) => c.plan.senderIndex >= 0).sort((a, b) => a.plan.senderIndex - b.plan.senderIndex);
    // Join notices of the last clients are still in flight; let them land before anything counts.
    await sleep(300);

    // Deliveries each round brings: every sender's messages reach the rest of its room.
    const perRound = (load: Scenario['load']): number => {
      const msgs = load.kind === 'burst' ? load.perSender : Math.round(load.rate * load.roundSeconds);
      return senders.length * msgs * (sc.rooms.members - 1);
    };
    const round = async (): Promise<boolean> => {
      const deadline = Date.now() + opts.roundTimeoutMs;
      const target = tally.delivered + perRound(sc.load);
      const sentAll =
        sc.load.kind === 'burst'
          ? await sendBurst(senders, sc.load.perSender, opts.batch ?? sc.load.batch, deadline)
          : await sendPaced(senders, sc.load.rate, sc.load.roundSeconds, deadline);
      const gotAll = await tally.waitFor(target, Math.max(1, deadline - Date.now()));
      return sentAll && gotAll && tally.errors === 0;
    };

    let idle: RunResult['idle'];
    if (sc.idle > 0) {
      const rssBefore = server.memory().rss;
      const idleClients = await connectAll(server.port, plans.idle, tally, IDLE_CONNECT_CONCURRENCY, 120_000);
      clients = clients.concat(idleClients);
      await sleep(1000); // welcomes written, buffers released
      const rssAfter = server.memory().rss;
      idle = {
        connections: idleClients.length,
        rssBefore,
        rssAfter,
        bytesPerConnection: (rssAfter - rssBefore) / idleClients.length,
      };
      opts.log(`  ${idleClients.length} idle connections: RSS ${mb(rssBefore)} -> ${mb(rssAfter)} MB`);
    }

    if (background) {
      backgroundStarted = true;
      await background.start(server.port);
    }

    // Warm-up: the server's JIT compiles the hot path; not measured. (It comes after the idle
    // connections: "RSS before" is then the server with nothing but the active room joined.)
    let complete = await round();
    tally.latency = new LatencyHistogram();
    background?.measuring(tally);

    const delivered0 = tally.delivered;
    const cpu0 = server.cpu();
    const gen0 = process.cpuUsage();
    const t0 = performance.now();
    let rounds = 0;
    while (complete && rounds < opts.maxRounds && performance.now() - t0 < opts.seconds * 1000) {
      complete = await round();
      rounds++;
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu1 = server.cpu();
    const gen = process.cpuUsage(gen0);
    backgroundStarted = false;
    const backgroundReport = background ? await background.stop() : undefined;
    const serverCpuSeconds = cpu1.total - cpu0.total;
    const deliveries = tally.delivered - delivered0;
    const mem = server.memory();

    // Lost: per receiver and per sender it should hear, what was sent and never arrived.
    let lost = 0;
    for (const c of clients) for (const s of c.plan.hears) lost += c.lostFrom(s, senders[s].sent);

    const lat = tally.latency;
    return {
      rounds,
      deliveries,
      wallSeconds,
      serverCpuSeconds,
      serverUserSeconds: cpu1.user - cpu0.user,
      serverSystemSeconds: cpu1.system - cpu0.system,
      generatorCpuSeconds: (gen.user + gen.system) / 1e6,
      deliveriesPerSecond: deliveries / wallSeconds,
      deliveriesPerCpuSecond: serverCpuSeconds > 0 ? deliveries / serverCpuSeconds : NaN,
      latencyP50Ms: lat.percentile(50) / 1000,
      latencyP99Ms: lat.percentile(99) / 1000,
      latencyMaxMs: lat.max / 1000,
      lost,
      duplicates: tally.duplicates,
      outOfOrder: tally.outOfOrder,
      unexpected: tally.unexpected,
      errors: tally.errors,
      errorSamples: tally.errorSamples.concat(server.errors() ? [`server stderr: ${server.errors().slice(0, 500)}`] : []),
      peakRss: mem.peakRss,
      rss: mem.rss,
      idle,
      background: backgroundReport,
      complete: complete && lost === 0,
    };
  } finally {
    if (backgroundStarted) await background!.stop().catch(() => undefined);
    for (const c of clients) c.close();
    await server.stop();
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

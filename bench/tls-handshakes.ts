/**
 * `npm run bench -- --scenario tls-handshakes`: what a TLS connection costs the server before
 * any chat, against a clear one. Each run starts a fresh `serve --tls` (its self-signed
 * certificate made in a temporary data dir) and, in two phases, opens connections from
 * loopback, CONCURRENCY at a time, each closed as soon as it is up:
 *
 *   tls    TCP connect + full TLS handshake ('secureConnect'; no session is resumed)
 *   clear  TCP connect only, on the same port
 *
 * Reported per phase: connections per second of wall time, and server CPU (from /proc) per
 * connection and connections per server CPU-second. Each phase stops at MAX_CONNECTIONS or
 * its time, whichever comes first, after an unmeasured warm-up.
 *
 * The server runs with a per-address limit of a few times CONCURRENCY, and its /metrics is read
 * after each phase: a refused connection, or one still counted once every client has closed,
 * fails the run instead of giving a figure (a server that forgot closed connections would start
 * refusing, and its rate would be that of refusals).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { inParallel, openConnection, within } from './load.js';
import { ServerProcess, tlsServerArgs, type ServerSpec } from './server-process.js';
import { figuresOf, type Spread } from './stats.js';
import { fmtInt, formatTable } from './table.js';

/** Connections in flight: enough that no round trip leaves the server waiting (the generator, with the client's half of each handshake, is the slower side). */
const CONCURRENCY = 32;
/** Room for closes the server has not yet read; far below what a server that forgot closed connections would reach. */
const PER_ADDRESS = 4 * CONCURRENCY;
const MAX_CONNECTIONS = 20_000;
const WARM_UP = { connections: 200, seconds: 0.5 };
/** One connection may take this long (the server itself cuts a handshake at 10 s). */
const CONNECTION_TIMEOUT_MS = 5_000;
/** How long the server may take to let go of the phase's connections once the clients have closed them. */
const DRAIN_MS = 5_000;

type Transport = 'tls' | 'clear';
const TRANSPORTS: Transport[] = ['tls', 'clear'];

export interface HandshakePhase {
  connections: number;
  wallSeconds: number;
  serverCpuSeconds: number;
  generatorCpuSeconds: number;
  perSecond: number;
  serverCpuMicrosPerConnection: number;
  perServerCpuSecond: number;
}

export interface HandshakeRun {
  phases: Partial<Record<Transport, HandshakePhase>>;
  /** Why the run gave no figures (refused or lingering connections, a failed handshake). */
  error?: string;
}

export interface HandshakeFigures {
  concurrency: number;
  secondsPerPhase: number;
  runs: HandshakeRun[];
  /** Per transport and figure ("tls.perSecond"), over the runs that completed. */
  median: Record<string, number>;
  spread: Record<string, Spread>;
  /** 1-, 5- and 15-minute load averages of the machine before and after the runs. */
  loadAverage: { before: number[]; after: number[] };
  correct: boolean;
}

const FIGURES = ['perSecond', 'serverCpuMicrosPerConnection', 'perServerCpuSecond'] as const;

/** The counters of the server's /metrics that tell whether connections were let in and let go. */
async function connectionCounts(port: number): Promise<{ refused: number; open: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}: the scenario needs the server's connection counts (a --password-file or a required API token closes them)`);
  const text = await res.text();
  const read = (pattern: RegExp): number => {
    const m = pattern.exec(text);
    if (!m) throw new Error(`/metrics has no ${pattern.source}`);
    return Number(m[1]);
  };
  return { refused: read(/^roomcast_connections_refused_total (\d+)/m), open: read(/^roomcast_connections\{transport="tcp"\} (\d+)/m) };
}

/** One connection: up (handshake done, for TLS), then closed; rejects if it fails or stalls. */
async function connectOnce(port: number, transport: Transport): Promise<void> {
  const { socket, connected } = openConnection(port, transport === 'tls');
  try {
    // once() rejects on 'error'; a close before the handshake is done is a failure too.
    const closedEarly = once(socket, 'close').then(() => Promise.reject(new Error('closed by the server before it was up')));
    closedEarly.catch(() => {});
    await within(Promise.race([once(socket, connected), closedEarly]), CONNECTION_TIMEOUT_MS, `no ${connected} within ${CONNECTION_TIMEOUT_MS} ms`);
  } finally {
    socket.destroy();
  }
}

/** Opens and closes connections, CONCURRENCY at a time, until `max` or `seconds`; how many were up and the wall time. */
async function connectMany(port: number, transport: Transport, max: number, seconds: number): Promise<{ connections: number; wallSeconds: number }> {
  const t0 = performance.now();
  const connections = await inParallel(max, CONCURRENCY, () => connectOnce(port, transport), () => performance.now() - t0 > seconds * 1000);
  return { connections, wallSeconds: (performance.now() - t0) / 1000 };
}

async function phase(server: ServerProcess, transport: Transport, seconds: number): Promise<HandshakePhase> {
  const before = await connectionCounts(server.port);
  await connectMany(server.port, transport, WARM_UP.connections, WARM_UP.seconds);
  const cpu0 = server.cpu().total;
  const gen0 = process.cpuUsage();
  const { connections, wallSeconds } = await connectMany(server.port, transport, MAX_CONNECTIONS, seconds);
  const serverCpuSeconds = server.cpu().total - cpu0;
  const gen = process.cpuUsage(gen0);
  // Every client has closed: the server must count none of them, and have refused none.
  const deadline = Date.now() + DRAIN_MS;
  let after = await connectionCounts(server.port);
  while (after.open > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    after = await connectionCounts(server.port);
  }
  if (after.refused > before.refused) throw new Error(`${transport}: the server refused ${after.refused - before.refused} connections: over the per-address or total limit`);
  if (after.open > 0) throw new Error(`${transport}: the server still counts ${after.open} connections ${DRAIN_MS} ms after every client closed`);
  return {
    connections,
    wallSeconds,
    serverCpuSeconds,
    generatorCpuSeconds: (gen.user + gen.system) / 1e6,
    perSecond: connections / wallSeconds,
    serverCpuMicrosPerConnection: (serverCpuSeconds / connections) * 1e6,
    perServerCpuSecond: serverCpuSeconds > 0 ? connections / serverCpuSeconds : NaN,
  };
}

export interface HandshakeOptions {
  runs: number;
  secondsPerPhase: number;
  server: Pick<ServerSpec, 'args' | 'nodeArgs' | 'root' | 'logFile'>;
  log: (msg: string) => void;
}

export async function runTlsHandshakes(opts: HandshakeOptions): Promise<HandshakeFigures> {
  const runs: HandshakeRun[] = [];
  const before = loadavg();
  for (let i = 0; i < opts.runs; i++) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'roomcast-bench-tls-'));
    const run: HandshakeRun = { phases: {} };
    let server: ServerProcess | null = null;
    try {
      server = await ServerProcess.start({
        ...opts.server,
        // No bot: its workers' start-up would take the second core from the first phase.
        args: ['--store', 'memory', '--no-bot', ...tlsServerArgs(dataDir), '--max-per-address', String(PER_ADDRESS), '--max-connections', String(PER_ADDRESS), ...(opts.server.args ?? [])],
      });
      for (const t of TRANSPORTS) run.phases[t] = await phase(server, t, opts.secondsPerPhase);
    } catch (err) {
      run.error = (err as Error).message;
    } finally {
      await server?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    runs.push(run);
    opts.log(`  tls-handshakes run ${i + 1}/${opts.runs}: ${describeRun(run)}`);
  }
  const complete = runs.filter((r) => r.error === undefined);
  const rows = complete.map((r) => Object.fromEntries(TRANSPORTS.flatMap((t) => FIGURES.map((f) => [`${t}.${f}`, r.phases[t]![f]]))));
  const { median, spread } = figuresOf(rows, TRANSPORTS.flatMap((t) => FIGURES.map((f) => `${t}.${f}`)));
  const loadAverage = { before, after: loadavg() };
  return { concurrency: CONCURRENCY, secondsPerPhase: opts.secondsPerPhase, runs, median, spread, loadAverage, correct: complete.length === runs.length };
}

function describeRun(run: HandshakeRun): string {
  const parts = TRANSPORTS.flatMap((t) => {
    const p = run.phases[t];
    if (!p) return [];
    return [
      `${t} ${fmtInt(p.connections)} in ${p.wallSeconds.toFixed(2)} s: ${fmtInt(p.perSecond)}/s, server CPU ${p.serverCpuSeconds.toFixed(2)} s ` +
        `(${fmtInt(p.serverCpuMicrosPerConnection)} µs each, ${fmtInt(p.perServerCpuSecond)}/CPU-s; generator ${p.generatorCpuSeconds.toFixed(2)} s)`,
    ];
  });
  return parts.concat(run.error === undefined ? [] : [`FAILED: ${run.error}`]).join('; ');
}

export function handshakeTable(f: HandshakeFigures): string {
  const rows = TRANSPORTS.map((t) => {
    const m = (k: (typeof FIGURES)[number]): number => f.median[`${t}.${k}`] ?? NaN;
    const sp = f.spread[`${t}.perServerCpuSecond`];
    return [t === 'tls' ? 'TLS (connect + handshake)' : 'clear (connect)', fmtInt(m('perSecond')), fmtInt(m('serverCpuMicrosPerConnection')), fmtInt(m('perServerCpuSecond')), sp && sp.runs.length > 0 ? `${fmtInt(sp.min)}-${fmtInt(sp.max)}` : '-'];
  });
  const failed = f.runs.filter((r) => r.error !== undefined).map((r) => `  FAILED: ${r.error}`);
  return [
    `connections to serve --tls, opened and closed, ${f.concurrency} in flight, ${f.secondsPerPhase.toFixed(1)} s a phase; medians of ${f.runs.length - failed.length} runs`,
    formatTable(['connection', 'per s', 'server CPU µs each', 'per server CPU-s', '(min-max)'], rows),
    ...failed,
  ].join('\n');
}

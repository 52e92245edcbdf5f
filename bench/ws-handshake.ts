/**
 * The cost of a WebSocket opening handshake on the server, three ways, side by side:
 *
 *   own       transport/ws/ws-handshake.ts, the 101 written by hand (what the server does)
 *   ws-taken  ws's handleUpgrade() with a WebSocket subclass that takes the socket from
 *             setSocket() (what the server did: it overrode a private method of ws)
 *   ws        ws's handleUpgrade() and its own WebSocket, i.e. ws through its public API
 *
 *   node dist-bench/bench/ws-handshake.js [--count N] [--concurrency C] [--rounds R] [--variants a,b]
 *
 * Each variant is a bare HTTP server in a child process of its own (--expose-gc), on loopback;
 * this process opens `count` WebSocket connections to it, `concurrency` handshakes at a time,
 * and keeps them open. Reported per variant (the median of the rounds, the variants taking
 * turns): handshakes per second of wall time; the server's CPU time per handshake (accepting
 * the connection and parsing the request included, the same work in every variant), and the
 * CPU time in the upgrade handler alone (the handshake and its write, and ws's objects where
 * there are); and, after a full collection, the server's heap and RSS growth per connection
 * held open (with ws, its WebSocket object; otherwise the socket alone). Bounded: at most
 * 20,000 connections, and each round gives up after 60 s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { wsHandshake } from '../src/transport/ws/ws-handshake.js';
import { upgradeRequest } from './ws-wire.js';

const VARIANTS = ['own', 'ws-taken', 'ws'] as const;
type Variant = (typeof VARIANTS)[number];

const MAX_COUNT = 20_000;
const ROUND_LIMIT_MS = 60_000;

/** What the server reports when asked: its CPU time so far and its memory after a full collection. */
interface Mark {
  cpuMicros: number;
  /** CPU time spent in the upgrade handler so far: the handshake itself, without accepting and parsing. */
  handlerMicros: number;
  heapUsed: number;
  rss: number;
  external: number;
}

interface RoundResult {
  variant: Variant;
  handshakesPerSecond: number;
  cpuMicrosPerHandshake: number;
  handlerMicrosPerHandshake: number;
  heapBytesPerConnection: number;
  rssBytesPerConnection: number;
  externalBytesPerConnection: number;
}

// ---- the server side (a child process) ----

/** ws's WebSocket, kept to the handshake, as the server had it: the socket is taken from setSocket(). */
class Taken extends WebSocket {
  taken: net.Socket | null = null;

  setSocket(socket: net.Socket): void {
    this.taken = socket;
  }
}

function serve(variant: Variant): void {
  const held = new Set<unknown>();
  const hold = (socket: net.Socket): void => {
    // As the chat connection does: the socket is read, and forgotten when it closes.
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.once('close', () => held.delete(socket));
    held.add(socket);
  };
  const server = http.createServer();
  const wss =
    variant === 'own'
      ? null
      : new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, ...(variant === 'ws-taken' ? { WebSocket: Taken } : {}) });
  let handlerMicros = 0;
  const upgrade = (req: IncomingMessage, socket: net.Socket, head: Buffer): void => {
    if (wss === null) {
      const answer = wsHandshake(req);
      if ('refusal' in answer) {
        socket.destroy();
        return;
      }
      socket.write(answer.response);
      hold(socket);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const taken = (ws as Taken).taken;
      if (taken) hold(taken);
      else {
        ws.on('error', () => {});
        ws.once('close', () => held.delete(ws));
        held.add(ws);
      }
    });
  };
  // CPU time rather than wall time: on a busy machine a handler may be preempted. What reading
  // the CPU clock twice costs is taken off.
  const cpuNow = (): number => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  let clockCost = cpuNow();
  for (let i = 0; i < 10_000; i++) cpuNow();
  clockCost = (cpuNow() - clockCost) / 10_001;
  server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    const t0 = cpuNow();
    upgrade(req, socket, head);
    handlerMicros += cpuNow() - t0 - clockCost;
  });
  server.listen(0, '127.0.0.1', () => {
    process.send!({ port: (server.address() as net.AddressInfo).port });
  });
  process.on('message', () => {
    global.gc!();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const mark: Mark = { cpuMicros: cpu.user + cpu.system, handlerMicros, heapUsed: mem.heapUsed, rss: mem.rss, external: mem.external + mem.arrayBuffers };
    process.send!(mark);
  });
  process.on('disconnect', () => process.exit(0));
}

// ---- the client side (this process) ----

class Child {
  private readonly replies: ((m: unknown) => void)[] = [];

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m) => this.replies.shift()?.(m));
  }

  static async start(variant: Variant): Promise<{ child: Child; port: number }> {
    const proc = fork(fileURLToPath(import.meta.url), ['--serve', variant], { execArgv: ['--expose-gc'] });
    const child = new Child(proc);
    const { port } = (await child.next()) as { port: number };
    return { child, port };
  }

  async mark(): Promise<Mark> {
    const reply = this.next();
    this.child.send('mark');
    return (await reply) as Mark;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.pid !== undefined) this.child.kill('SIGKILL');
  }

  private next(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.replies.push(resolve);
      this.child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    });
  }
}

/** One handshake: connect, ask, wait for the 101. */
function handshake(port: number, sockets: net.Socket[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    let seen = '';
    socket.on('connect', () => socket.write(upgradeRequest('127.0.0.1', port)));
    socket.on('error', reject);
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (seen.startsWith('HTTP/1.1 101 ')) resolve();
      else reject(new Error(`refused: ${seen.slice(0, 80)}`));
    };
    socket.on('data', onData);
  });
}

async function round(variant: Variant, count: number, concurrency: number): Promise<RoundResult> {
  const { child, port } = await Child.start(variant);
  const sockets: net.Socket[] = [];
  try {
    // A few handshakes first, so that code is compiled before it is measured.
    await Promise.all(Array.from({ length: 50 }, () => handshake(port, sockets)));
    const before = await child.mark();
    const t0 = performance.now();
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < count) {
        started++;
        await handshake(port, sockets);
        if (performance.now() - t0 > ROUND_LIMIT_MS) throw new Error(`${variant}: over ${ROUND_LIMIT_MS} ms`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const after = await child.mark();
    return {
      variant,
      handshakesPerSecond: count / seconds,
      cpuMicrosPerHandshake: (after.cpuMicros - before.cpuMicros) / count,
      handlerMicrosPerHandshake: (after.handlerMicros - before.handlerMicros) / count,
      heapBytesPerConnection: (after.heapUsed - before.heapUsed) / count,
      rssBytesPerConnection: (after.rss - before.rss) / count,
      externalBytesPerConnection: (after.external - before.external) / count,
    };
  } finally {
    for (const s of sockets) s.destroy();
    child.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      count: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '3' },
      variants: { type: 'string', default: VARIANTS.join(',') },
    },
  });
  if (values.serve !== undefined) {
    serve(values.serve as Variant);
    return;
  }
  const count = Math.min(MAX_COUNT, Number(values.count));
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const variants = values.variants.split(',') as Variant[];
  for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`no variant ${v}; there are ${VARIANTS.join(', ')}`);
  const results: RoundResult[] = [];
  for (let r = 0; r < rounds; r++) for (const v of variants) results.push(await round(v, count, concurrency));
  console.log(`${count} handshakes per round, ${concurrency} at a time, ${rounds} rounds; medians (min-max):`);
  const figures = ['handshakesPerSecond', 'cpuMicrosPerHandshake', 'handlerMicrosPerHandshake', 'heapBytesPerConnection', 'rssBytesPerConnection', 'externalBytesPerConnection'] as const;
  console.log(['variant', ...figures].join('\t'));
  for (const v of variants) {
    const mine = results.filter((x) => x.variant === v);
    const cells = figures.map((f) => {
      const xs = mine.map((x) => x[f]);
      const digits = f === 'handlerMicrosPerHandshake' ? 1 : 0;
      return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
    });
    console.log([v, ...cells].join('\t'));
  }
}

await main();

/**
 * Test clients over real TCP (127.0.0.1 only) and a small harness that starts servers in-process
 * and cleans everything up. Every wait is bounded by a deadline; nothing sleeps for a fixed time
 * unless a test needs wall-clock time to pass (and then it says so).
 */
import net from 'node:net';
import { RoomcastServer, type ServerOptions } from '../../src/server.js';
import { CONNECTION_DEFAULTS, type ConnectionOptions } from '../../src/transport/options.js';
import type { Logger } from '../../src/log.js';
import { WORKER } from './classifier.js';

export const HOST = '127.0.0.1';
export const DEFAULT_WAIT = 3000;

export interface SocketOptions {
  localAddress?: string;
  allowHalfOpen?: boolean;
}

export function openSocket(port: number, opts: SocketOptions = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, localAddress: opts.localAddress, allowHalfOpen: opts.allowHalfOpen });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

type Match = string | RegExp | ((line: string) => boolean);

function matcher(m: Match): (line: string) => boolean {
  if (typeof m === 'string') return (l) => l === m;
  if (m instanceof RegExp) return (l) => m.test(l);
  return m;
}

/** A netcat-like client: raw bytes out, lines (split on \n, decoded as UTF-8) in. */
export class LineClient {
  readonly lines: string[] = [];
  /** Where waitLine starts looking; it moves past each line waitLine returns. */
  cursor = 0;
  closed = false;
  closedAt = 0;
  readonly connectedAt = Date.now();
  private rawParts: Buffer[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  private readonly lineTimes: number[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.wake();
    });
  }

  static async connect(port: number, opts: SocketOptions = {}): Promise<LineClient> {
    return new LineClient(await openSocket(port, opts));
  }

  /** Everything received so far, as bytes. */
  get raw(): Buffer {
    if (this.rawParts.length > 1) this.rawParts = [Buffer.concat(this.rawParts)];
    return this.rawParts[0] ?? Buffer.alloc(0);
  }

  /** When (Date.now()) line i arrived. */
  timeOf(i: number): number {
    return this.lineTimes[i];
  }

  /** Writes bytes as they are: no newline is added. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends each line with "\n", all in one write. */
  send(...lines: string[]): void {
    this.socket.write(lines.map((l) => l + '\n').join(''));
  }

  /**
   * Resolves with the probe's first truthy result; re-checked on every chunk received and on
   * close. Rejects after timeoutMs with what was being waited for and the last lines seen.
   */
  waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = DEFAULT_WAIT, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        let v: T | undefined | null | false;
        try {
          v = probe();
        } catch (err) {
          done();
          reject(err);
          return true;
        }
        if (v) {
          done();
          resolve(v);
          return true;
        }
        return false;
      };
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (): void => void check();
      const timer = setTimeout(() => {
        done();
        const tail = this.lines.slice(-8).map((l) => (l.length > 200 ? l.slice(0, 200) + '...' : l));
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}` +
              ` (${this.lines.length} lines, closed=${this.closed}); last lines:\n  ${tail.join('\n  ')}`,
          ),
        );
      }, timeoutMs);
      if (check()) return;
      this.waiters.add(waiter);
    });
  }

  /** The next line (from the cursor on) that matches; the cursor moves past it. */
  async waitLine(m: Match, timeoutMs = DEFAULT_WAIT): Promise<string> {
    const f = matcher(m);
    const i = await this.waitFor(
      () => {
        for (let j = this.cursor; j < this.lines.length; j++) if (f(this.lines[j])) return j + 1;
        return 0;
      },
      timeoutMs,
      `a line matching ${String(m)}`,
    );
    this.cursor = i;
    return this.lines[i - 1];
  }

  waitClosed(timeoutMs = DEFAULT_WAIT): Promise<true> {
    return this.waitFor(() => this.closed, timeoutMs, 'the connection to close');
  }

  /** True if no line from the cursor on matches. */
  hasLine(m: Match, from = 0): boolean {
    const f = matcher(m);
    return this.lines.slice(from).some(f);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  protected onLine(_line: string): void {}

  private onData(chunk: Buffer): void {
    this.rawParts.push(chunk);
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let start = 0;
    const now = Date.now();
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const line = buf.toString('utf8', start, nl);
      this.lines.push(line);
      this.lineTimes.push(now);
      this.onLine(line);
      start = nl + 1;
    }
    this.pending = Buffer.from(buf.subarray(start));
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

export type Ev = { type: string; [field: string]: any };

/** A JSON-lines client: sends a hello on connect, parses every line it gets. */
export class JsonClient extends LineClient {
  readonly events: Ev[] = [];
  /** Where waitEvent starts looking; it moves past each event waitEvent returns. */
  evCursor = 0;

  static async open(
    port: number,
    hello: { nick?: string; rooms?: string[]; serverPassword?: string; password?: string } | null = {},
    opts: { localAddress?: string } = {},
  ): Promise<JsonClient> {
    const c = new JsonClient(await openSocket(port, opts));
    if (hello) c.sendJson({ type: 'hello', ...hello });
    return c;
  }

  /** Opens, says hello, and waits for the welcome (and the history of every room joined). */
  static async registered(port: number, nick: string, rooms?: string[]): Promise<JsonClient> {
    const c = await JsonClient.open(port, rooms ? { nick, rooms } : { nick });
    const welcome = await c.waitEvent((e) => e.type === 'welcome' || e.type === 'error');
    if (welcome.type !== 'welcome') throw new Error(`hello as ${nick} refused: ${JSON.stringify(welcome)}`);
    for (const room of welcome.rooms as string[]) await c.waitEvent((e) => e.type === 'history' && e.room === room);
    return c;
  }

  sendJson(...objs: object[]): void {
    this.write(objs.map((o) => JSON.stringify(o) + '\n').join(''));
  }

  /** The next event (from evCursor on) that matches; evCursor moves past it. */
  waitEvent(pred: (e: Ev) => boolean, timeoutMs = DEFAULT_WAIT, what = 'an event'): Promise<Ev> {
    return nextEvent(this, pred, timeoutMs, what);
  }

  ofType(type: string): Ev[] {
    return this.events.filter((e) => e.type === type);
  }

  protected override onLine(line: string): void {
    this.events.push(JSON.parse(line) as Ev);
  }
}

/** A text (netcat-style) client that waits for its welcome and, if asked, takes a nick. */
export async function textClient(port: number, nick?: string, opts: { localAddress?: string } = {}): Promise<LineClient> {
  const c = await LineClient.connect(port, opts);
  await c.waitLine(/^\*\*\* You joined \[lobby\]/);
  if (nick) {
    c.send(`/nick ${nick}`);
    await c.waitLine(`*** You are now known as ${nick}`);
  }
  return c;
}

export interface CapturedLog {
  logger: Logger;
  lines: string[];
}

export function captureLogger(): CapturedLog {
  const lines: string[] = [];
  const push = (tag: string) => (m: string) => void lines.push(`${tag} ${m}`);
  return {
    lines,
    logger: { info: push('info'), debug: push('debug'), warn: push('warn'), error: push('error'), flush() {} },
  };
}

export type TestServerOptions = Partial<Omit<ServerOptions, 'connection'>> & {
  connection?: Partial<ConnectionOptions>;
};

/** Starts servers and tracks clients; cleanup() closes everything (call it in afterEach). */
export class Harness {
  private readonly servers: RoomcastServer[] = [];
  private readonly clients: LineClient[] = [];

  async server(opts: TestServerOptions = {}): Promise<RoomcastServer> {
    const c = opts.classifier;
    const server = new RoomcastServer({
      ...opts,
      // The compiled worker unless the test gives one (see helpers/classifier.ts).
      classifier: c && 'pool' in c ? { ...c, pool: { workerScript: WORKER, ...c.pool } } : c,
      hosts: [HOST],
      port: 0,
      connection: { ...CONNECTION_DEFAULTS, greetDelay: 30, ...opts.connection },
    });
    await server.start();
    this.servers.push(server);
    return server;
  }

  track<C extends LineClient>(c: C): C {
    this.clients.push(c);
    return c;
  }

  async text(server: RoomcastServer, nick?: string, opts: { localAddress?: string } = {}): Promise<LineClient> {
    return this.track(await textClient(server.port, nick, opts));
  }

  async raw(server: RoomcastServer, opts: SocketOptions = {}): Promise<LineClient> {
    return this.track(await LineClient.connect(server.port, opts));
  }

  async json(server: RoomcastServer, nick: string, rooms?: string[]): Promise<JsonClient> {
    return this.track(await JsonClient.registered(server.port, nick, rooms));
  }

  async jsonOpen(
    server: RoomcastServer,
    hello: { nick?: string; rooms?: string[] } | null = {},
    opts: { localAddress?: string } = {},
  ): Promise<JsonClient> {
    return this.track(await JsonClient.open(server.port, hello, opts));
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients.splice(0)) c.destroy();
    await Promise.all(this.servers.splice(0).map((s) => s.stop()));
  }
}

/** Polls a condition on the server side (no socket to listen to), with a deadline. */
export async function until(probe: () => boolean, timeoutMs = DEFAULT_WAIT, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Bytes a terminal would act on: C0 controls other than TAB and the "\n" line terminator, DEL,
 * and C1 controls (U+0080-U+009F, encoded C2 80-C2 9F). Returns a description of the first, or null.
 */
export function findControlBytes(buf: Buffer): string | null {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a) || b === 0x7f)
      return `byte 0x${b.toString(16)} at ${i}: ${JSON.stringify(buf.subarray(Math.max(0, i - 20), i + 20).toString('latin1'))}`;
    if (b === 0xc2 && i + 1 < buf.length && buf[i + 1] >= 0x80 && buf[i + 1] <= 0x9f)
      return `C1 U+00${buf[i + 1].toString(16)} at ${i}`;
  }
  return null;
}

/** Characters that must never reach a user: the same set, plus bidi overrides and isolates. */
export const UNSAFE_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Every string inside a parsed JSON value. */
export function stringsIn(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(stringsIn);
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [k, ...stringsIn(x)]);
  return [];
}

/** A client that collects JSON events (over TCP or WebSocket) and can wait for a condition. */
export interface EventClient {
  readonly events: Ev[];
  evCursor: number;
  waitFor<T>(probe: () => T | undefined | null | false, timeoutMs?: number, what?: string): Promise<T>;
}

/** The next event of `c` (from its evCursor on) that matches; evCursor moves past it. */
export async function nextEvent(c: EventClient, pred: (e: Ev) => boolean, timeoutMs = DEFAULT_WAIT, what = 'an event'): Promise<Ev> {
  const i = await c.waitFor(
    () => {
      for (let j = c.evCursor; j < c.events.length; j++) if (pred(c.events[j])) return j + 1;
      return 0;
    },
    timeoutMs,
    what,
  );
  c.evCursor = i;
  return c.events[i - 1];
}

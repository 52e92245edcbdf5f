/**
 * The binding experiment behind `roomcast probe`: bind a server to each address a person might
 * pass to --host, and see through which of this machine's addresses a client reaches it.
 *
 * Binding goes through resolveHosts/listenAll, so each row measures exactly what `roomcast
 * serve --host ADDRESS` would bind (localhost included). Every bind gets its own ephemeral port
 * and its own random token, which its listener sends first: a "yes" is a connection that read
 * that token, so another program on the same port number cannot pass for ours. Only this
 * machine's own addresses are dialled, a few at a time, each attempt under a time limit, and
 * every listener and socket is closed before the probe returns, whatever happened.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { listenAll, resolveHosts } from '../net/listen.js';
import type { LocalAddress } from './interfaces.js';

/**
 * What connecting gave. yes: our listener answered. refused: nothing listens there (ECONNREFUSED).
 * unreachable: no route (ENETUNREACH, EHOSTUNREACH). unavailable: this machine cannot use that
 * address (EADDRNOTAVAIL, EAFNOSUPPORT). timeout: no answer in time. other: something else
 * answered on that port. error: any other failure (its code says which).
 */
export type Outcome = 'yes' | 'refused' | 'unreachable' | 'unavailable' | 'timeout' | 'other' | 'error';

export interface Attempt {
  destination: string;
  outcome: Outcome;
  /** How the server saw the client (yes only): ::ffff:127.0.0.1 on a dual-stack socket. */
  peer: string | null;
  /** The system's error code when it was not a yes (ECONNREFUSED...), else null. */
  code: string | null;
}

export interface BindResult {
  /** What was asked for, as `roomcast serve --host` takes it. */
  bind: string;
  /** The addresses actually listened on (localhost: 127.0.0.1 and ::1, or what this machine has). */
  bound: string[];
  port: number | null;
  /** Why nothing could be bound, else null (then there are no attempts). */
  error: { code: string; message: string } | null;
  attempts: Attempt[];
}

export interface ProbeReport {
  timeoutMs: number;
  /** This machine's addresses when the probe ran. */
  addresses: LocalAddress[];
  destinations: string[];
  binds: BindResult[];
}

export interface ProbeOptions {
  /** Limit for one connection attempt, from dialling to reading the token. */
  timeoutMs: number;
  addresses: LocalAddress[];
}

/** Attempts in flight at once: enough to finish fast, few enough not to flood a small machine. */
const CONCURRENCY = 8;

/** Rows: the addresses people pass to --host, then each of this machine's own. */
export function probeBinds(addresses: LocalAddress[]): string[] {
  return unique(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', ...addresses.map((a) => a.address)]);
}

/** Columns: loopback in both families, then each of this machine's addresses. */
export function probeDestinations(addresses: LocalAddress[]): string[] {
  return unique(['127.0.0.1', '::1', ...addresses.map((a) => a.address)]);
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}

interface Listener {
  result: BindResult;
  token: string;
  servers: net.Server[];
  sockets: Set<net.Socket>;
}

export async function runProbe(opts: ProbeOptions): Promise<ProbeReport> {
  const destinations = probeDestinations(opts.addresses);
  const listeners: Listener[] = [];
  try {
    for (const bind of probeBinds(opts.addresses)) listeners.push(await open(bind));
    const jobs = listeners
      .filter((l) => l.result.port !== null)
      .flatMap((l) => destinations.map((destination) => ({ l, destination })));
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < jobs.length) {
        const { l, destination } = jobs[next++]!;
        l.result.attempts.push(await attempt(destination, l.result.port!, l.token, opts.timeoutMs));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs.length) }, lane));
  } finally {
    await Promise.all(listeners.map(close));
  }
  for (const { result } of listeners)
    result.attempts.sort((x, y) => destinations.indexOf(x.destination) - destinations.indexOf(y.destination));
  return { timeoutMs: opts.timeoutMs, addresses: opts.addresses, destinations, binds: listeners.map((l) => l.result) };
}

async function open(bind: string): Promise<Listener> {
  const token = randomBytes(16).toString('hex');
  const sockets = new Set<net.Socket>();
  const make = (): net.Server => {
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.end(`roomcast-probe ${token} ${socket.remoteAddress ?? '?'}\n`);
    });
    server.on('error', () => {});
    return server;
  };
  const result: BindResult = { bind, bound: [], port: null, error: null, attempts: [] };
  try {
    const { servers, port, bound } = await listenAll(await resolveHosts([bind]), 0, make);
    result.bound = bound.map((b) => b.address);
    result.port = port;
    return { result, token, servers, sockets };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    result.error = { code: e.code ?? 'ERROR', message: e.message };
    return { result, token, servers: [], sockets };
  }
}

function close(l: Listener): Promise<unknown> {
  for (const socket of l.sockets) socket.destroy();
  return Promise.all(l.servers.map((s) => new Promise((resolve) => s.close(resolve))));
}

function failure(code: string | undefined): Outcome {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return 'unreachable';
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return 'unavailable';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

function attempt(destination: string, port: number, token: string, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolve) => {
    let text = '';
    let connected = false;
    let settled = false;
    const socket = net.connect({ host: destination, port });
    const done = (outcome: Outcome, code: string | null, peer: string | null = null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ destination, outcome, peer, code });
    };
    // Connected but no token in time: whatever holds that port is not ours.
    const timer = setTimeout(() => (connected ? done('other', null) : done('timeout', 'ETIMEDOUT')), timeoutMs);
    const check = (): void => {
      const [magic, heard, peer] = text.split('\n')[0]!.split(' ');
      if (magic === 'roomcast-probe' && heard === token && peer) done('yes', null, peer);
      else done('other', null);
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => (connected = true));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n') || text.length > 200) check();
    });
    socket.on('end', check);
    socket.on('error', (err: NodeJS.ErrnoException) => (connected ? done('other', err.code ?? null) : done(failure(err.code), err.code ?? null)));
  });
}

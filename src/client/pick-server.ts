/**
 * `roomcast join` without an address: find the server to join. It browses the LAN for servers
 * that announce themselves (serve --lan or --announce) and, at the same time, knocks on this
 * machine's own default port over loopback, so that the quick tour (`roomcast serve`, then
 * `roomcast join` on the same machine) works without announcing anything. One found: that one.
 * Several: a person at a terminal picks from a numbered list; a script is told to say which.
 */
import net from 'node:net';
import os from 'node:os';
import readline from 'node:readline';
import { browse, DiscoveryError } from '../lan/browse.js';
import type { DiscoveredServer } from '../lan/discovery.js';
import { isOwnAddress, type InterfaceMap } from '../lan/interfaces.js';
import { chooseAddress } from '../lan/reach.js';
import { formatServerAddress, type ServerAddress } from './address.js';

/** Long enough for servers to answer a query and its repeat; short enough not to feel like a hang. */
export const DISCOVERY_TIMEOUT_MS = 1500;
/** Loopback answers at once or not at all. */
const LOCAL_PROBE_MS = 500;

export interface Candidate {
  label: string;
  address: ServerAddress;
  /** The other nodes of its cluster: where the client goes on when the first is lost. */
  alternates?: ServerAddress[];
}

/**
 * The servers one can join from here, announced ones by name (the nodes of one cluster as one
 * choice), then the unannounced one on this machine's loopback, unless it is one of the
 * announced ones (same port, one of our addresses).
 */
export function candidates(found: DiscoveredServer[], local: ServerAddress | null, ifaces: InterfaceMap): Candidate[] {
  const out: Candidate[] = [];
  const clusters = new Map<string, Candidate>();
  for (const s of found) {
    const host = chooseAddress(s.addresses, ifaces);
    if (host === null) continue;
    const address = { host, port: s.port };
    const cluster = s.cluster ? clusters.get(s.cluster) : undefined;
    if (cluster) {
      (cluster.alternates ??= []).push(address);
      cluster.label = `${cluster.label.replace(/ \(a cluster of \d+\)$/, '')} (a cluster of ${cluster.alternates.length + 1})`;
      continue;
    }
    const c: Candidate = { label: s.name, address };
    if (s.cluster) clusters.set(s.cluster, c);
    out.push(c);
  }
  const announcedHere = (a: ServerAddress): boolean => found.some((s) => s.port === a.port && s.addresses.some((x) => isOwnAddress(x, ifaces)));
  if (local && !announcedHere(local)) out.push({ label: "this machine's own server (not announced)", address: local });
  return out;
}

export function formatCandidates(list: Candidate[]): string {
  const width = Math.max(...list.map((c) => c.label.length));
  return list.map((c, i) => `  ${String(i + 1).padStart(2)}) ${c.label.padEnd(width)}  ${formatServerAddress(c.address)}\n`).join('');
}

/** Whether something listens on this machine's loopback at the port; the first of 127.0.0.1 and ::1 to accept. */
export function probeLocal(port: number, timeoutMs = LOCAL_PROBE_MS): Promise<ServerAddress | null> {
  const attempt = (host: string): Promise<ServerAddress | null> =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      const done = (ok: boolean): void => {
        socket.destroy();
        resolve(ok ? { host, port } : null);
      };
      socket.setTimeout(timeoutMs, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
  return Promise.all([attempt('127.0.0.1'), attempt('::1')]).then(([v4, v6]) => v4 ?? v6);
}

export interface PickIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  errorOutput: NodeJS.WritableStream;
  /** A person at a terminal, who can be asked. */
  interactive: boolean;
}

/** Asks for a number from 1 to count; null if the person gives up (Ctrl-D, Ctrl-C). */
function ask(io: PickIo, count: number): Promise<number | null> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: io.input, output: io.output, terminal: true });
    let answer: number | null = null;
    rl.on('SIGINT', () => rl.close());
    rl.once('close', () => resolve(answer));
    const prompt = (): void =>
      rl.question(`Join which one? [1-${count}] `, (text) => {
        const n = Number(text.trim());
        if (Number.isInteger(n) && n >= 1 && n <= count) {
          answer = n;
          rl.close();
        } else prompt();
      });
    prompt();
  });
}

/**
 * Finds the server to join: its address, or the exit status to end with (1 none found or none
 * chosen, 2 several and nobody to ask).
 */
export async function pickServer(io: PickIo, defaultPort: number, timeoutMs = DISCOVERY_TIMEOUT_MS): Promise<Candidate | number> {
  io.errorOutput.write('roomcast: no address given: looking for servers on the LAN and on this machine...\n');
  let lanProblem = '';
  const [found, local] = await Promise.all([
    browse(timeoutMs).catch((err: unknown) => {
      if (!(err instanceof DiscoveryError)) throw err;
      lanProblem = ` (could not look on the LAN: ${err.message})`;
      return [];
    }),
    probeLocal(defaultPort),
  ]);
  const list = candidates(found, local, os.networkInterfaces());
  if (list.length === 0) {
    io.errorOutput.write(
      `roomcast: no roomcast server answered on the LAN${lanProblem}, and none runs on this machine at port ${defaultPort}. ` +
        'Start one with `roomcast serve --lan` (here or on another machine), or give its address: roomcast join HOST[:PORT]\n',
    );
    return 1;
  }
  if (list.length === 1) {
    io.errorOutput.write(`roomcast: joining ${list[0].label} at ${formatServerAddress(list[0].address)}\n`);
    return list[0];
  }
  if (!io.interactive) {
    io.errorOutput.write(`roomcast: ${list.length} servers answered; say which to join: roomcast join HOST:PORT\n${formatCandidates(list)}`);
    return 2;
  }
  io.output.write(`${list.length} roomcast servers answered:\n${formatCandidates(list)}`);
  const n = await ask(io, list.length);
  if (n === null) {
    io.errorOutput.write('roomcast: no server chosen\n');
    return 1;
  }
  return list[n - 1]!;
}

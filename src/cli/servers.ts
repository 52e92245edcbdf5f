/**
 * `roomcast servers`: the roomcast servers that answer on the LAN (those started with --lan or
 * --announce), as a table for people or as JSON for scripts.
 */
import os from 'node:os';
import { browse, DiscoveryError } from '../lan/browse.js';
import type { DiscoveredServer } from '../lan/discovery.js';
import { chooseAddress } from '../lan/reach.js';
import type { InterfaceMap } from '../lan/interfaces.js';
import { hostPort } from '../net/address.js';

/** A server as `servers --json` prints it: what it announced, and the address to join it at from here. */
export interface ServerListing extends DiscoveredServer {
  /** HOST:PORT for `roomcast join`, or null when none of its addresses is usable from here. */
  join: string | null;
}

export function listings(servers: DiscoveredServer[], ifaces: InterfaceMap): ServerListing[] {
  return servers.map((s) => {
    const address = chooseAddress(s.addresses, ifaces);
    return { ...s, join: address === null ? null : hostPort(address, s.port) };
  });
}

export function formatServerTable(rows: ServerListing[]): string {
  const table = [
    ['NAME', 'PORT', 'VERSION', 'ADDRESSES'],
    ...rows.map((r) => [
      r.cluster ? `${r.name} [cluster ${r.cluster.slice(0, 8)}]` : r.name,
      r.httpPort === null ? String(r.port) : `${r.port} (web ${r.httpPort})`,
      r.version ?? '?',
      r.addresses.join(', ') || '(none given)',
    ]),
  ];
  const widths = table[0].map((_, col) => Math.max(...table.map((row) => row[col].length)));
  const lines = table.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]))).join('  '));
  const first = rows.find((r) => r.join !== null);
  if (first) lines.push('', `Join one with: roomcast join ${first.join}`);
  return lines.join('\n') + '\n';
}

export function noneAnswered(timeoutMs: number): string {
  return (
    `No roomcast server answered within ${timeoutMs / 1000} s. Check that the server was started with ` +
    '`roomcast serve --lan` (or --announce), that this machine is on the same LAN (same switch or Wi-Fi, ' +
    'not a guest network that isolates machines), and that no firewall drops UDP port 5353 (mDNS).\n'
  );
}

export async function runServers(opts: { timeoutMs: number; json: boolean }): Promise<number> {
  let found: DiscoveredServer[];
  try {
    found = await browse(opts.timeoutMs);
  } catch (err) {
    if (!(err instanceof DiscoveryError)) throw err;
    process.stderr.write(`roomcast: cannot look for servers: ${err.message}\n`);
    return 1;
  }
  const rows = listings(found, os.networkInterfaces());
  if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else if (rows.length > 0) process.stdout.write(formatServerTable(rows));
  if (rows.length === 0) (opts.json ? process.stderr : process.stdout).write(noneAnswered(opts.timeoutMs));
  return 0;
}


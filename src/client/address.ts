/**
 * Where a client connects, as people write it (HOST, HOST:PORT, [v6]:PORT, and a link-local
 * [fe80::1%eth0]:PORT with its zone). Shared by every client program.
 */
import { isIP } from 'node:net';
import { hostPort } from '../transport/address.js';

export interface ServerAddress {
  host: string;
  port: number;
}

export class AddressError extends Error {}

function parsePort(text: string, whole: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535))
    throw new AddressError(`"${whole}" has an invalid port "${text}": use a number from 1 to 65535`);
  return port;
}

/**
 * Parses HOST, HOST:PORT, [IPV6], [IPV6]:PORT, and a bare IPv6 literal (which cannot carry a
 * port: its colons are taken as the address, as `ssh` and `curl` do).
 */
export function parseServerAddress(text: string, defaultPort: number): ServerAddress {
  const s = text.trim();
  if (s === '') throw new AddressError('the server address is empty: use HOST or HOST:PORT');
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1) throw new AddressError(`"${s}" opens "[" without closing it: write IPv6 as [::1]:PORT`);
    const host = s.slice(1, close);
    if (isIP(host) !== 6) throw new AddressError(`"${host}" in brackets is not an IPv6 address`);
    const rest = s.slice(close + 1);
    if (rest === '') return { host, port: defaultPort };
    if (!rest.startsWith(':')) throw new AddressError(`"${s}" has "${rest}" after "]": expected :PORT`);
    return { host, port: parsePort(rest.slice(1), s) };
  }
  const colons = s.split(':').length - 1;
  if (colons === 0) return { host: s, port: defaultPort };
  if (colons === 1) {
    const [host, port] = s.split(':');
    if (host === '') throw new AddressError(`"${s}" has no host before the port`);
    return { host, port: parsePort(port, s) };
  }
  if (isIP(s) === 6) return { host: s, port: defaultPort };
  throw new AddressError(`"${s}" is not a valid address: write IPv6 with a port as [::1]:PORT`);
}

export function formatServerAddress(a: ServerAddress): string {
  return isIP(a.host) ? hostPort(a.host, a.port) : `${a.host}:${a.port}`;
}

// The wording of failed connections lives in connect-errors.ts; re-exported for older importers.
export { explainConnectError } from './connect-errors.js';

/**
 * Where a client connects, as people write it (HOST, HOST:PORT, [v6]:PORT, and a link-local
 * [fe80::1%eth0]:PORT with its zone), and whether it speaks TLS there (tls://, https://, wss://,
 * or --tls). Shared by every client program.
 */
import { isIP } from 'node:net';
import { hostPort } from '../net/address.js';

export interface ServerAddress {
  host: string;
  port: number;
  /** Connect with TLS and check the server's certificate (trust.ts). */
  tls?: true;
}

export class AddressError extends Error {}

function parsePort(text: string, whole: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535))
    throw new AddressError(`"${whole}" has an invalid port "${text}": use a number from 1 to 65535`);
  return port;
}

/**
 * Schemes whose URLs name a roomcast server: the port each implies when none is given (null:
 * roomcast's own), and whether it means TLS. The web page's address (the chat shares its
 * port), its WebSocket's, and roomcast's own; tls:// and roomcasts:// are roomcast over TLS.
 */
const SCHEMES: Record<string, { port: number | null; tls: boolean }> = {
  http: { port: 80, tls: false },
  ws: { port: 80, tls: false },
  roomcast: { port: null, tls: false },
  tcp: { port: null, tls: false },
  https: { port: 443, tls: true },
  wss: { port: 443, tls: true },
  tls: { port: null, tls: true },
  roomcasts: { port: null, tls: true },
};

/** How an address is to be read: `tls` (the --tls flag) makes every address TLS. */
export interface AddressOptions {
  tls?: boolean;
}

/**
 * HOST:PORT out of a URL as it is copied from a browser's address bar or a link
 * (http://chat.lan:7447/, wss://[::1]:7447/ws, tls://chat.lan): the path, query and any
 * user name are not needed to connect, and are ignored.
 */
function parseUrl(s: string, scheme: string, authority: string, defaultPort: number, opts: AddressOptions): ServerAddress {
  const lower = scheme.toLowerCase();
  const known = SCHEMES[lower];
  if (known === undefined)
    throw new AddressError(`"${s}" is a ${lower}:// URL: give HOST:PORT, or a URL such as http://HOST:PORT/ (tls://HOST:PORT for TLS)`);
  // Asked for TLS and given a clear-text URL: which one was meant cannot be guessed.
  if (opts.tls && !known.tls)
    throw new AddressError(`"${s}" is a clear-text (${lower}://) address, and --tls asks for TLS: give tls://HOST:PORT (or HOST:PORT with --tls), or leave --tls out`);
  // A zone in a URL is written %25 (RFC 6874): [fe80::1%25eth0] is [fe80::1%eth0].
  const hostPart = authority.slice(authority.lastIndexOf('@') + 1).replace(/%25/g, '%');
  if (!hostPart.startsWith('[') && hostPart.split(':').length > 2)
    throw new AddressError(`"${s}" has an IPv6 address without brackets: write it as ${lower}://[::1]:PORT/`);
  if (hostPart === '' || hostPart.startsWith(':')) throw new AddressError(`"${s}" has no host: give one, such as ${lower}://chat.lan:7447/`);
  // "http://host:/" is the scheme's own port, as in any URL.
  const bare = hostPart.endsWith(':') ? hostPart.slice(0, -1) : hostPart;
  const address = parseHostPort(bare, known.port ?? defaultPort);
  return known.tls ? { ...address, tls: true } : address;
}

/**
 * Parses HOST, HOST:PORT, [IPV6], [IPV6]:PORT, and a bare IPv6 literal (which cannot carry a
 * port: its colons are taken as the address, as `ssh` and `curl` do); and a URL
 * (http://HOST:PORT/, ws://, roomcast://; tls://, https://, wss:// for TLS), whose host and
 * port are taken. With `tls` (the --tls flag) a HOST:PORT means TLS too.
 */
export function parseServerAddress(text: string, defaultPort: number, opts: AddressOptions = {}): ServerAddress {
  const s = text.trim();
  if (s === '') throw new AddressError('the server address is empty: use HOST or HOST:PORT');
  const url = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(?:[/?#].*)?$/is.exec(s);
  if (url) return parseUrl(s, url[1]!, url[2]!, defaultPort, opts);
  const address = parseHostPort(s, defaultPort);
  return opts.tls ? { ...address, tls: true } : address;
}

/** HOST, HOST:PORT, [IPV6], [IPV6]:PORT or a bare IPv6 literal, without a scheme. */
function parseHostPort(s: string, defaultPort: number): ServerAddress {
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

/**
 * Several addresses of one service (the nodes of a cluster), comma-separated: `a:7447,b:7447`.
 * Each is read as parseServerAddress reads one.
 */
export function parseServerAddresses(text: string, defaultPort: number, opts: AddressOptions = {}): ServerAddress[] {
  const parts = text.split(',');
  if (parts.length > 1 && parts.some((p) => p.trim() === ''))
    throw new AddressError(`"${text.trim()}" has an empty address between its commas: write a:7447,b:7447`);
  return parts.map((p) => parseServerAddress(p, defaultPort, opts));
}

export function formatServerAddress(a: ServerAddress): string {
  return isIP(a.host) ? hostPort(a.host, a.port) : `${a.host}:${a.port}`;
}

// The wording of failed connections lives in connect-errors.ts; re-exported for older importers.
export { explainConnectError } from './connect-errors.js';

/**
 * What a failed connection means, in words a person can act on. Every client program (join,
 * post, the ChatClient's reconnect notices) takes its wording from here, so a refused
 * connection reads the same everywhere.
 *
 * The advice depends on where the client was aiming: "connection refused" from this machine's
 * own loopback means no server is running, but from another machine's LAN address it most
 * often means the server is running there bound to loopback only, the default.
 */
import { isIP } from 'node:net';
import { hostPort } from '../net/address.js';

export interface ConnectTarget {
  host: string;
  port: number;
  /** How long the client waited for the connection, to say so when it timed out. */
  connectTimeoutMs?: number;
}

/** The errno code of a failed connect. With autoSelectFamily, a host that resolves to several
 *  addresses fails with an AggregateError whose own code is empty: the first attempt's tells. */
export function connectErrorCode(err: unknown): string | undefined {
  const e = err as (NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] }) | null | undefined;
  return e?.code ?? e?.errors?.[0]?.code;
}

/** This machine's own loopback: nothing but a local server can answer there. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || /^::ffff:127\./.test(h);
}

/** fe80::/10 with no "%zone": the kernel cannot tell which link to use. */
export function isLinkLocalWithoutZone(host: string): boolean {
  return isIP(host) === 6 && /^fe[89ab][0-9a-f]?:/i.test(host) && !host.includes('%');
}

function where(target: ConnectTarget): string {
  return isIP(target.host) ? hostPort(target.host, target.port) : `${target.host}:${target.port}`;
}

const FIREWALLS = 'a firewall (ufw, nftables/iptables, Windows Defender Firewall)';

function seconds(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms % 1000 === 0 ? ` within ${ms / 1000} s` : ` within ${(ms / 1000).toFixed(1)} s`;
}

/** Why, and what to check next: the part after "could not connect to HOST:PORT: ". */
function advice(code: string | undefined, target: ConnectTarget, fallback: string): string {
  const { host, port } = target;
  if (isLinkLocalWithoutZone(host))
    return (
      `${host} is an IPv6 link-local address, which needs the interface it is reached through — ` +
      `add it as a zone: [${host}%eth0]:${port} (ip -brief addr lists this machine's interfaces)`
    );
  const local = isLoopbackHost(host);
  switch (code) {
    case 'ECONNREFUSED':
      if (local) return 'connection refused — is the server running? start one with: roomcast serve';
      return (
        `connection refused — nothing is listening on port ${port} there for other machines. ` +
        'If the server runs there, it may be bound to loopback only (the default): restart it with roomcast serve --host :: (or --lan), ' +
        'then check the port it prints, and that no firewall on that machine rejects the port'
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `the host name "${host}" could not be resolved — check the spelling, or use the server's IP address (roomcast serve prints it)`;
    case 'ETIMEDOUT':
      return (
        `no answer${seconds(target.connectTimeoutMs)} (timed out) — check the address, that the machine is on and awake, ` +
        `and that ${FIREWALLS} is not silently dropping connections to port ${port}`
      );
    case 'EHOSTUNREACH':
      return (
        'no route to host — no machine answered at that address on the local network: check the address, that the machine is on, ' +
        `and that both are on the same network (guest Wi-Fi often keeps machines apart); ${FIREWALLS} can also reject with this`
      );
    case 'ENETUNREACH':
      return (
        `network unreachable — this machine has no route to ${host}: is it connected to the same LAN (ip route shows its networks)?` +
        (isIP(host) === 6 ? ' If this network has no IPv6, use the server\'s IPv4 address' : '')
      );
    case 'EADDRNOTAVAIL':
      return 'that address cannot be used from this machine — check it (ip -brief addr lists this machine\'s own addresses and interfaces)';
    case 'ECONNRESET':
      return 'the connection was reset — is something other than a roomcast server listening there?';
    default:
      return fallback;
  }
}

/** One sentence for a connection that could not be made: what happened and what to check. */
export function explainConnectError(err: unknown, target: ConnectTarget): string {
  const e = err as (Error & { errors?: Error[] }) | null | undefined;
  const fallback = e?.message || e?.errors?.[0]?.message || String(err);
  return `could not connect to ${where(target)}: ${advice(connectErrorCode(err), target, fallback)}`;
}

/** The code of a connection that was made but whose TLS handshake failed or never finished. */
export const TLS_HANDSHAKE = 'TLS_HANDSHAKE';

/**
 * A TLS handshake that failed on a connection that was made: most often a server started
 * without --tls (a roomcast server hangs up; another server answers in clear text).
 */
export function explainTlsHandshake(err: unknown, target: ConnectTarget): string {
  const e = err as (NodeJS.ErrnoException & { reason?: string }) | null | undefined;
  // OpenSSL's message carries its source file and line; its reason is what a person can use.
  const why = e?.reason ?? briefConnectError(e ?? null);
  return `the server at ${where(target)} did not answer TLS (${why}): is it started with --tls? or connect without tls:// (and without --tls)`;
}

/** A few words for a repeated report ("connection lost (connection refused), reconnecting"). */
export function briefConnectError(err: NodeJS.ErrnoException | null): string {
  if (!err) return 'the server closed the connection';
  switch (connectErrorCode(err)) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return 'host name not found';
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'EADDRNOTAVAIL':
      return 'address not available';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EPIPE':
      return 'connection broken';
    case 'ETIMEDOUT':
      return 'connection timed out';
    default:
      return err.message;
  }
}

/**
 * How roomcast servers find each other's clients on a LAN: DNS-SD over multicast DNS (RFC 6763,
 * RFC 6762), the protocol printers and file shares use, so `avahi-browse -r _roomcast._tcp` and
 * `dns-sd -B _roomcast._tcp` see roomcast servers too. A server that is asked to announce itself
 * answers for one instance of _roomcast._tcp.local (announce.ts); clients ask who is there
 * (browse.ts).
 *
 * What both sides share: the names, the TXT keys, and the one way a socket for it is opened.
 */
import makeMdns from 'multicast-dns';
import type { RecordType, TxtData } from 'dns-packet';

export const SERVICE = '_roomcast._tcp.local';
/** DNS-SD's list of service types: generic browsers (avahi-browse -a) learn ours from it. */
export const SERVICE_TYPES = '_services._dns-sd._udp.local';
/** The question for every record of a name (type 255): dns-packet encodes it, its types omit it. */
export const ANY = 'ANY' as RecordType;

/** A server as a browser heard it. */
export interface DiscoveredServer {
  /** Its instance name ("roomcast on lab-pc"). */
  name: string;
  /** The host name its addresses are published under (roomcast-on-lab-pc.local). */
  host: string;
  /** The chat port (TCP). */
  port: number;
  /** IPv4 first, then IPv6; link-local IPv6 carry the zone (fe80::1%eth0) they are reachable through. */
  addresses: string[];
  /** The roomcast version it runs, when it said. */
  version: string | null;
  /** Where HTTP and WebSocket listen when they have a port of their own (--http-port). */
  httpPort: number | null;
  /** The cluster it is a node of (serve --redis): nodes that say the same are one service. */
  cluster: string | null;
}

/** What a server says about itself beyond its address (the TXT record). */
export interface ServerInfo {
  version: string;
  httpPort: number | null;
  cluster?: string | null;
}

export function encodeTxt(info: ServerInfo): string[] {
  // txtvers first, as RFC 6763 section 6.7 suggests, so the keys can change later.
  const txt = ['txtvers=1', `version=${info.version}`];
  if (info.httpPort !== null) txt.push(`http=${info.httpPort}`);
  if (info.cluster) txt.push(`cluster=${info.cluster}`);
  return txt;
}

export function decodeTxt(data: TxtData): Pick<DiscoveredServer, 'version' | 'httpPort' | 'cluster'> {
  const strings = (Array.isArray(data) ? data : [data]).map((d) => d.toString());
  const pairs = new Map<string, string>();
  for (const s of strings) {
    const eq = s.indexOf('=');
    // Keys are case-insensitive and the first of a repeated key wins (RFC 6763 section 6.4).
    const key = (eq === -1 ? s : s.slice(0, eq)).toLowerCase();
    if (!pairs.has(key)) pairs.set(key, eq === -1 ? '' : s.slice(eq + 1));
  }
  const http = Number(pairs.get('http'));
  return {
    version: pairs.get('version') || null,
    httpPort: Number.isInteger(http) && http > 0 && http < 65536 ? http : null,
    cluster: pairs.get('cluster') || null,
  };
}

/** DNS names compare without regard to ASCII case. */
export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * The UDP socket for mDNS (port 5353, group 224.0.0.251), shared with any other responder on
 * this machine (avahi-daemon holds the port too: mDNS is built for that).
 *
 * It never reaches past the local link. 224.0.0.251 lies in 224.0.0.0/24, which routers never
 * forward, and the TTL of 1 makes sure of it even through a misconfigured multicast router.
 * RFC 6762 section 11 asks for 255 only for queriers from a 2004 draft that dropped anything
 * else; Avahi and Apple's mDNSResponder accept both. Nothing is ever sent to a broadcast address.
 *
 * Only IPv4 multicast is used (the group is joined on every interface; sends leave by the route
 * for 224.0.0.0/4, normally the default one); servers publish their IPv6 addresses in it all the
 * same. Loopback is on so that a browser on the server's own machine hears it too.
 */
export function openMdns(): makeMdns.MulticastDNS {
  return makeMdns({ ttl: 1, reuseAddr: true, loopback: true });
}

/** Why the mDNS socket could not be opened, in a few words. */
export function explainOpenError(err: NodeJS.ErrnoException): string {
  if (err.code === 'EADDRINUSE') return 'another program holds UDP port 5353 without sharing it (EADDRINUSE)';
  if (err.code === 'EACCES') return 'not permitted to use UDP port 5353 here (EACCES)';
  return `could not open UDP port 5353 (${err.code ?? 'error'}: ${err.message})`;
}

/** A failed multicast send, in words that say what to check. */
export function explainSendError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'EADDRNOTAVAIL':
      return `no network route for multicast (${err.code}): is this machine connected to a network? (\`ip route\` should show a default route)`;
    case 'EPERM':
    case 'EACCES':
      return `a firewall refused the mDNS packet (${err.code}): allow UDP port 5353 to and from 224.0.0.251`;
    default:
      return `could not send on the LAN (${err.code ?? 'error'}): ${err.message}`;
  }
}

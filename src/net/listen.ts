/**
 * Binding: which addresses a --host means, and listening on all of them on one port.
 * A host name binds every address it resolves to (as a getaddrinfo loop does), so the
 * default "localhost" is 127.0.0.1 and ::1 alike.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import net from 'node:net';

export interface BindAddress {
  address: string;
  family: 4 | 6;
  /** Set when :: must not also take IPv4 (0.0.0.0 is bound beside it). */
  ipv6Only?: boolean;
  /** Implied rather than asked for: if this machine does not have it, go on without it. */
  optional?: boolean;
}

export async function resolveHosts(hosts: string[]): Promise<BindAddress[]> {
  const out: BindAddress[] = [];
  for (const host of hosts) {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    const fam = isIP(bare);
    if (fam) out.push({ address: bare, family: fam as 4 | 6 });
    else {
      const found = await lookup(bare, { all: true, verbatim: true });
      for (const a of found) out.push({ address: a.address, family: a.family as 4 | 6 });
      // "localhost" is loopback in both families (RFC 6761) even where /etc/hosts lists only
      // one; the one this machine lacks (no IPv6, say) is skipped rather than fatal.
      if (bare.toLowerCase() === 'localhost')
        for (const [address, family] of [['127.0.0.1', 4], ['::1', 6]] as const)
          out.push({ address, family, optional: true });
    }
  }
  const seen = new Set<string>();
  const unique = out.filter((a) => !seen.has(a.address) && seen.add(a.address));
  // On Linux, :: also takes IPv4, so binding 0.0.0.0 next to it would fail with EADDRINUSE.
  const both = unique.some((a) => a.address === '::') && unique.some((a) => a.address === '0.0.0.0');
  return both ? unique.map((a) => (a.address === '::' ? { ...a, ipv6Only: true } : a)) : unique;
}

export function listenOne(server: net.Server, bind: BindAddress, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host: bind.address, port, ipv6Only: bind.ipv6Only ?? false, backlog: 4096 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Listens on every address with one port. With port 0 the first bind picks the port and the
 * others follow it; if that port is taken on another address, the whole set is tried again.
 */
export async function listenAll(
  binds: BindAddress[],
  port: number,
  make: () => net.Server,
): Promise<{ servers: net.Server[]; port: number; bound: BindAddress[] }> {
  for (let attempt = 0; ; attempt++) {
    const servers: net.Server[] = [];
    let chosen = port;
    try {
      const bound: BindAddress[] = [];
      for (const bind of binds) {
        const server = make();
        try {
          await listenOne(server, bind, chosen);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (bind.optional && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
          throw err;
        }
        servers.push(server);
        bound.push(bind);
        chosen = (server.address() as net.AddressInfo).port;
      }
      return { servers, port: chosen, bound };
    } catch (err) {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      const code = (err as NodeJS.ErrnoException).code;
      if (port !== 0 || code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

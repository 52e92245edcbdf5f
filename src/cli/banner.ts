/**
 * What `roomcast serve` tells a person at start-up: where to connect (from this machine and
 * from the LAN), and what a failure to bind means. Pure: this machine's interfaces are passed
 * in (os.networkInterfaces() in production, a made-up machine in tests).
 */
import { isIP } from 'node:net';
import type { Listening } from '../server.js';
import { hostPort } from '../net/address.js';
import { WS_PATH } from '../transport/ws/ws-handshake.js';
import { addressesServedBy, isOwnAddress, isWildcard, localAddresses, type InterfaceMap, type LocalAddress } from '../lan/interfaces.js';

const LOOPBACK = /^(127\.|::1$)/;

export function describeListening(
  listening: Listening[],
  port: number,
  httpListening: Listening[],
  httpPort: number,
  ifaces: InterfaceMap,
  /** The server speaks TLS (only: and no clear text): the commands shown use it. */
  tls: { only: boolean } | null = null,
): string {
  const where = listening.map((l) => hostPort(l.address, port)).join(', ');
  const lines = [`roomcast listening on ${where}`];
  if (httpListening.length > 0)
    lines.push(`HTTP and WebSocket on ${httpListening.map((l) => hostPort(l.address, httpPort)).join(', ')}`);
  const first = listening[0];
  const reachable = (l: Listening | undefined, p: number): string =>
    l ? hostPort(isWildcard(l.address) ? '127.0.0.1' : l.address, p) : '';
  const join = reachable(first, port);
  const ncHost = join.startsWith('[') ? join.slice(1, join.lastIndexOf(']')) : join.slice(0, join.lastIndexOf(':'));
  if (tls === null) lines.push(`Connect:  nc ${ncHost} ${port}   or   roomcast join ${join}`);
  else {
    lines.push(`Connect:  roomcast join tls://${join}   or   openssl s_client -quiet -connect ${join}`);
    if (!tls.only) lines.push(`          (clear text too: nc ${ncHost} ${port}   or   roomcast join ${join})`);
  }
  const web = httpListening.length > 0 ? reachable(httpListening[0], httpPort) : join;
  const [h, w] = tls === null ? ['http', 'ws'] : ['https', 'wss'];
  if (web) lines.push(`Web:      ${h}://${web}/   (WebSocket: ${w}://${web}${WS_PATH}, API: ${h}://${web}/api/rooms)`);
  if (listening.every((l) => LOOPBACK.test(l.address)))
    lines.push('Loopback only: other machines cannot connect. To open it to the LAN: roomcast serve --lan (every interface, announced), or --host ::');
  else lines.push(...describeLan(listening, port, httpListening.length > 0 ? httpPort : port, ifaces, tls !== null));
  for (const l of listening.filter((x) => !isWildcard(x.address) && !isOwnAddress(x.address, ifaces)))
    lines.push(
      `Warning: ${l.address} is not one of this machine's addresses (ip addr lists them). The system let roomcast listen on it anyway, but nobody can connect through it until this machine has it.`,
    );
  return lines.join('\n') + '\n';
}

/** The LAN addresses people can type, one line each, with the commands ready to copy. */
function describeLan(listening: Listening[], port: number, webPort: number, ifaces: InterfaceMap, tls: boolean): string[] {
  const here = localAddresses(ifaces);
  const served = new Map<string, LocalAddress>();
  for (const l of listening) {
    const lan = isWildcard(l.address) ? addressesServedBy(l.address, here) : here.filter((a) => a.address === l.address && !a.loopback);
    for (const a of lan) served.set(a.address, a);
  }
  const lines: string[] = [];
  if (served.size === 0) {
    if (listening.some((l) => isWildcard(l.address)))
      lines.push('No LAN address on this machine right now (only loopback): other machines can connect once it joins a network.');
  } else {
    const rows = [...served.values()].map((a) => {
      const at = hostPort(a.address, port);
      return tls ? [a.interface, `roomcast join tls://${at}`, `openssl s_client -quiet -connect ${at}`] : [a.interface, `roomcast join ${at}`, `nc ${a.address} ${port}`];
    });
    const w0 = Math.max(...rows.map((r) => r[0]!.length));
    const w1 = Math.max(...rows.map((r) => r[1]!.length));
    lines.push('From other machines on the LAN:');
    lines.push(...rows.map(([name, joinCmd, nc]) => `  ${name!.padEnd(w0)}  ${joinCmd!.padEnd(w1)}  ${nc}`));
    const page = [...served.values()].find((a) => !a.linkLocal) ?? served.values().next().value!;
    lines.push(`  web page: ${tls ? 'https' : 'http'}://${hostPort(page.address, webPort)}/`);
    if ([...served.values()].some((a) => a.linkLocal && a.family === 6))
      lines.push("  (fe80:: is link-local: same link only, and after % goes the interface's name on the connecting machine)");
  }
  const v6Left = here.filter((a) => !a.loopback && a.family === 6 && !served.has(a.address));
  if (listening.some((l) => l.address === '0.0.0.0') && !listening.some((l) => l.address === '::') && v6Left.length > 0)
    lines.push(`0.0.0.0 is IPv4 only, so IPv6 clients cannot connect through ${v6Left.map((a) => a.address).join(', ')}; --host :: serves both.`);
  return lines;
}

/** This machine's addresses, for an error that says "use one of these". */
function ownAddresses(ifaces: InterfaceMap): string {
  const all = localAddresses(ifaces).map((a) => a.address);
  return all.length > 0 ? ` This machine's addresses: ${all.join(', ')} (--host :: listens on all of them).` : '';
}

/**
 * One sentence on why listening failed and what to do. `hosts` are the --host values as given:
 * an address that is not among them came from a host name.
 */
export function explainListenError(err: NodeJS.ErrnoException, port: number, hosts: string[], ifaces: InterfaceMap): string {
  const at = (err as { address?: string }).address ?? '';
  const asked = hosts.map((h) => (h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h));
  const names = asked.filter((h) => !isIP(h));
  const fromName = at !== '' && !asked.includes(at) && names.length > 0;
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} is already in use on ${at.includes(':') ? `[${at}]` : at || 'that address'}: another server is running there. Stop it, or pick another port with --port (0 picks a free one).`;
    case 'EACCES':
      return `no permission to listen on port ${port}: ports below 1024 need root. Pick a port above 1023 with --port.`;
    case 'EADDRNOTAVAIL':
      if (fromName)
        return (
          `${names.length > 1 ? `one of the host names ${names.join(', ')}` : `the host name ${names[0]}`} resolves to ${at}, which does not belong to this machine, so nothing can listen on it ` +
          `(a host name binds every address it resolves to). Pass this machine's own addresses to --host instead.${ownAddresses(ifaces)}`
        );
      return `the address ${at} does not belong to this machine, so nothing can listen on it. Check --host (ip addr lists this machine's addresses).${ownAddresses(ifaces)}`;
    case 'EINVAL':
      if (/^fe[89ab][0-9a-f]:/i.test(at) && !at.includes('%')) {
        const zoned = localAddresses(ifaces).find((a) => a.address.split('%')[0] === at.toLowerCase())?.address ?? `${at}%INTERFACE`;
        return `${at} is a link-local address, which exists once per interface: say which one, as in --host ${zoned}`;
      }
      return err.message;
    case 'EAFNOSUPPORT':
      return `${at || 'that address'} is IPv6, and IPv6 is turned off on this machine. Use IPv4 addresses (--host 0.0.0.0 instead of ::).`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name ${(err as { hostname?: string }).hostname ?? ''} could not be resolved. Check --host.`;
    default:
      return err.message;
  }
}

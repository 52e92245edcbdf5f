/**
 * This machine's own addresses, as a socket takes them and a person types them: loopback and
 * LAN, IPv4 and IPv6, link-local IPv6 with its zone (fe80::1%eth0). Every function takes the
 * interfaces map as a parameter (os.networkInterfaces() by default), so tests can describe a
 * made-up machine.
 */
import os from 'node:os';
import { isIP } from 'node:net';

export type InterfaceMap = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

export interface LocalAddress {
  /** The interface's name: eth0, wlan0, lo. */
  interface: string;
  /** Link-local IPv6 carries its zone (fe80::1%eth0): without it the address is ambiguous. */
  address: string;
  family: 4 | 6;
  loopback: boolean;
  /** fe80::/10 or 169.254/16: usable only on its own link, never routed. */
  linkLocal: boolean;
}

const LINK_LOCAL_V6 = /^fe[89ab][0-9a-f]:/i;
const LINK_LOCAL_V4 = /^169\.254\./;

/** Every address of every interface that is up, in the system's interface order; IPv4 first, link-local last. */
export function localAddresses(ifaces: InterfaceMap = os.networkInterfaces()): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const [name, infos] of Object.entries(ifaces)) {
    const mine = (infos ?? []).map((info): LocalAddress => {
      const family = info.family === 'IPv4' ? 4 : 6;
      const linkLocal = family === 6 ? LINK_LOCAL_V6.test(info.address) : LINK_LOCAL_V4.test(info.address);
      const zoned = family === 6 && linkLocal && !info.address.includes('%');
      return { interface: name, address: zoned ? `${info.address}%${name}` : info.address, family, loopback: info.internal, linkLocal };
    });
    const rank = (a: LocalAddress): number => (a.family === 4 ? 0 : 1) + (a.linkLocal ? 2 : 0);
    out.push(...mine.sort((x, y) => rank(x) - rank(y)));
  }
  return out;
}

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** The LAN addresses a wildcard bind serves: IPv4 for 0.0.0.0, both families for :: (dual stack). */
export function addressesServedBy(wildcard: string, here: LocalAddress[]): LocalAddress[] {
  const lan = here.filter((a) => !a.loopback);
  return wildcard === '0.0.0.0' ? lan.filter((a) => a.family === 4) : lan;
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/**
 * Whether a bind address (not a wildcard) belongs to this machine. Linux answers for the whole
 * loopback network (127.0.0.2 works though only 127.0.0.1/8 is listed), so loopback counts by
 * network; a zone, when given, must name the interface that has the address.
 */
export function isOwnAddress(address: string, ifaces: InterfaceMap = os.networkInterfaces()): boolean {
  const bare = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const [ip, zone] = bare.toLowerCase().split('%') as [string, string | undefined];
  for (const [name, infos] of Object.entries(ifaces)) {
    for (const info of infos ?? []) {
      if (info.address.toLowerCase() === ip) {
        if (zone === undefined || zone === name.toLowerCase() || zone === String(info.scopeid)) return true;
      } else if (info.internal && info.family === 'IPv4' && isIP(ip) === 4) {
        const bits = Number(info.cidr?.split('/')[1] ?? 32);
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        if (((ipv4Number(ip) & mask) >>> 0) === ((ipv4Number(info.address) & mask) >>> 0)) return true;
      }
    }
  }
  return false;
}

/**
 * Which of a discovered server's addresses this machine should dial. A server publishes every
 * address it listens on, some of which only make sense from its own side (a second network
 * card, a container bridge), so the pick goes by what this machine can reach directly.
 */
import { BlockList, isIP } from 'node:net';
import os from 'node:os';
import type { InterfaceMap } from './interfaces.js';

const LINK_LOCAL_V6 = /^fe[89ab][0-9a-f]:/i;

/** fe80::/10: usable only on its own link, and only with a zone saying which. */
export function isLinkLocalV6(address: string): boolean {
  return LINK_LOCAL_V6.test(address);
}

function subnets(ifaces: InterfaceMap, family: 'IPv4' | 'IPv6'): { name: string; list: BlockList }[] {
  const out: { name: string; list: BlockList }[] = [];
  for (const [name, infos] of Object.entries(ifaces)) {
    for (const info of infos ?? []) {
      if (info.internal || info.family !== family || !info.cidr) continue;
      if (family === 'IPv6' && isLinkLocalV6(info.address)) continue;
      const [network, bits] = info.cidr.split('/');
      const list = new BlockList();
      list.addSubnet(network, Number(bits), family === 'IPv4' ? 'ipv4' : 'ipv6');
      out.push({ name, list });
    }
  }
  return out;
}

/**
 * The interface on whose IPv4 subnet an address lies: for the source of an mDNS answer, the
 * link it came over, and so the zone of the link-local addresses it carried.
 */
export function interfaceFor(address: string, ifaces: InterfaceMap = os.networkInterfaces()): string | null {
  if (isIP(address) !== 4) return null;
  return subnets(ifaces, 'IPv4').find((s) => s.list.check(address, 'ipv4'))?.name ?? null;
}

/**
 * The address to connect to, or null when none is usable from here. In order: IPv4 on one of
 * this machine's subnets; IPv6 on one of its prefixes; any other global or unique-local IPv6;
 * link-local IPv6 with its zone (the zone says which link, and it is always this one); then any
 * other IPv4, which is only reachable through a router. Loopback addresses and link-local ones
 * without a zone cannot be dialled from another machine and are never chosen.
 */
export function chooseAddress(addresses: string[], ifaces: InterfaceMap = os.networkInterfaces()): string | null {
  const v4 = subnets(ifaces, 'IPv4');
  const v6 = subnets(ifaces, 'IPv6');
  const rank = (address: string): number => {
    const [ip, zone] = address.split('%');
    const family = isIP(ip);
    if (family === 4) {
      if (ip.startsWith('127.')) return Infinity;
      return v4.some((s) => s.list.check(ip, 'ipv4')) ? 0 : 4;
    }
    if (family !== 6 || ip === '::1') return Infinity;
    if (isLinkLocalV6(ip)) return zone && ifaces[zone] ? 3 : Infinity;
    return v6.some((s) => s.list.check(ip, 'ipv6')) ? 1 : 2;
  };
  let best: string | null = null;
  let bestRank = Infinity;
  for (const address of addresses) {
    const r = rank(address);
    if (r < bestRank) [best, bestRank] = [address, r];
  }
  return best;
}

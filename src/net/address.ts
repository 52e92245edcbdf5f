/** How addresses are shown to people: IPv4-mapped IPv6 as plain IPv4, IPv6 in brackets. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '?';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** The address part of a hostPort() ("[::1]:5000" is ::1): what per-address limits count. */
export function addressOfPeer(peer: string): string {
  const colon = peer.lastIndexOf(':');
  const host = colon === -1 ? peer : peer.slice(0, colon);
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function hostPort(address: string, port: number): string {
  const a = plainAddress(address);
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

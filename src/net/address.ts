/** How addresses are shown to people: IPv4-mapped IPv6 as plain IPv4, IPv6 in brackets. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '?';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function hostPort(address: string, port: number): string {
  const a = plainAddress(address);
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

/**
 * What `roomcast serve` tells a person at start-up: where to connect, and what a failure to
 * bind means.
 */
import type { Listening } from '../server.js';
import { hostPort } from '../transport/address.js';

const LOOPBACK = /^(127\.|::1$)/;

export function describeListening(listening: Listening[], port: number, httpListening: Listening[] = [], httpPort = 0): string {
  const where = listening.map((l) => hostPort(l.address, port)).join(', ');
  const lines = [`roomcast listening on ${where}`];
  if (httpListening.length > 0)
    lines.push(`HTTP and WebSocket on ${httpListening.map((l) => hostPort(l.address, httpPort)).join(', ')}`);
  const first = listening[0];
  const reachable = (l: Listening | undefined, p: number): string =>
    l ? hostPort(l.address === '::' || l.address === '0.0.0.0' ? '127.0.0.1' : l.address, p) : '';
  const join = reachable(first, port);
  const ncHost = join.startsWith('[') ? join.slice(1, join.lastIndexOf(']')) : join.slice(0, join.lastIndexOf(':'));
  lines.push(`Connect:  nc ${ncHost} ${port}   or   roomcast join ${join}`);
  const web = httpListening.length > 0 ? reachable(httpListening[0], httpPort) : join;
  if (web) lines.push(`Web:      http://${web}/   (WebSocket: ws://${web}/ws, API: http://${web}/api/rooms)`);
  if (listening.every((l) => LOOPBACK.test(l.address)))
    lines.push('Loopback only: other machines cannot connect. To open it to the LAN: roomcast serve --host ::');
  return lines.join('\n') + '\n';
}

export function explainListenError(err: NodeJS.ErrnoException, port: number): string {
  const at = (err as { address?: string }).address ?? '';
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} is already in use on ${at || 'that address'}: another server is running there. Stop it, or pick another port with --port (0 picks a free one).`;
    case 'EACCES':
      return `no permission to listen on port ${port}: ports below 1024 need root. Pick a port above 1023 with --port.`;
    case 'EADDRNOTAVAIL':
      return `the address ${at} does not belong to this machine, so nothing can listen on it. Check --host (ip addr lists this machine's addresses).`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name ${(err as { hostname?: string }).hostname ?? ''} could not be resolved. Check --host.`;
    default:
      return err.message;
  }
}

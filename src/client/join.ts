/**
 * `roomcast join`: the chat client for people. Wiring only: the address (given, or found on the
 * LAN by pickServer), a ChatClient for the protocol, and a Terminal for the person (or the pipe)
 * on the other side.
 */
import { DEFAULT_PORT } from '../protocol/port.js';
import { AddressError, parseServerAddresses, type ServerAddress } from './address.js';
import { ChatClient, ConnectError } from './chat-client.js';
import { colorLevel, createStyle } from './render.js';
import { Terminal } from './terminal.js';
import { checkFingerprintUse, trustOptions, type TlsFlags } from './tls-options.js';

export interface JoinOptions extends TlsFlags {
  /** HOST[:PORT] (tls://HOST:PORT for TLS), or several (the nodes of a cluster) comma-separated; absent: find a server on the LAN or on this machine. */
  address?: string;
  nick?: string;
  rooms: string[];
  reconnect: boolean;
  /** The server password (--password-file). */
  serverPassword?: string;
}

/** Runs the client to the end; resolves with the process exit status. */
export async function runJoin(opts: JoinOptions): Promise<number> {
  const { stdin, stdout, stderr } = process;
  const interactive = Boolean(stdin.isTTY && stdout.isTTY);
  let addresses: ServerAddress[] | undefined;
  if (opts.address === undefined) {
    // Only a join without an address looks on the LAN, so only it loads the mDNS browser.
    const { pickServer } = await import('./pick-server.js');
    const picked = await pickServer({ input: stdin, output: stdout, errorOutput: stderr, interactive }, DEFAULT_PORT);
    if (typeof picked === 'number') return picked;
    // Discovery finds where a server is, not whether it speaks TLS: --tls says so.
    addresses = [picked.address, ...(picked.alternates ?? [])].map((a) => (opts.tls ? { ...a, tls: true as const } : a));
  }
  try {
    addresses ??= parseServerAddresses(opts.address!, DEFAULT_PORT, { tls: opts.tls });
    checkFingerprintUse(opts, addresses);
  } catch (err) {
    if (!(err instanceof AddressError)) throw err;
    process.stderr.write(`roomcast: ${err.message}\n`);
    return 2;
  }
  const [address, ...alternates] = addresses as [ServerAddress, ...ServerAddress[]];
  const trust = trustOptions(opts, { stdin, stderr });
  const client = new ChatClient({ ...address, alternates, nick: opts.nick, rooms: opts.rooms, reconnect: opts.reconnect, trust, serverPassword: opts.serverPassword });
  const terminal = new Terminal({
    client,
    input: stdin,
    output: stdout,
    errorOutput: stderr,
    interactive,
    style: createStyle(colorLevel(stdout, process.env)),
  });
  // A reader that went away (`roomcast join | head`) is the end of the session, not a crash.
  stdout.on('error', () => client.close('output closed'));
  try {
    await client.connect();
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    terminal.fail(err.message, err.final);
    return 1;
  }
  return terminal.run();
}

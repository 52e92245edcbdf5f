/**
 * What `join` and `post` make of --tls and --fingerprint: the trust options for the chat
 * client, with the first-contact question when a person is at the terminal to answer it.
 */
import { AddressError, type ServerAddress } from './address.js';
import type { TrustOptions } from './trust.js';
import { askOnTerminal } from './trust-prompt.js';

export interface TlsFlags {
  /** --tls: every HOST:PORT given is TLS. */
  tls?: boolean;
  /** --fingerprint, already in the canonical form (the option's parser brings it to it). */
  fingerprint?: string;
}

export interface TrustIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

/**
 * The chat client's trust options. Only a person at a terminal is asked; a script (stdin not a
 * terminal) is refused with the --fingerprint to pass instead.
 */
export function trustOptions(flags: TlsFlags, io: TrustIo): TrustOptions {
  return {
    ...(flags.fingerprint === undefined ? {} : { fingerprint: flags.fingerprint }),
    ...(io.stdin.isTTY ? { ask: askOnTerminal(io.stdin, io.stderr) } : {}),
  };
}

/** --fingerprint names a TLS certificate: with no TLS address to check it on, it is a mistake. */
export function checkFingerprintUse(flags: TlsFlags, addresses: ServerAddress[]): void {
  if (flags.fingerprint !== undefined && !addresses.some((a) => a.tls))
    throw new AddressError('--fingerprint checks the certificate of a TLS server: give its address as tls://HOST:PORT, or add --tls');
}

/**
 * The client's end of TLS: the socket, and what the server's certificate says of itself once
 * the handshake is done. Verification is left to trust.ts (rejectUnauthorized is off), which
 * also trusts self-signed certificates on first use, as ssh trusts host keys.
 */
import { isIP } from 'node:net';
import tls from 'node:tls';
import { fingerprintOf } from '../tls/certificate.js';
import type { ServerAddress } from './address.js';

/** Opens a TLS connection; SNI names the host unless it is an IP address (TLS forbids that). */
export function openTls({ host, port }: ServerAddress): tls.TLSSocket {
  return tls.connect({ host, port, ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: false });
}

/** What the server's certificate says of itself. */
export interface PeerCertificate {
  /** SHA256:3A:F1:... (see src/tls/fingerprint.ts). */
  fingerprint: string;
  /** It verifies against the system's authorities for the host connected to. */
  verified: boolean;
  /** Why it does not verify, in a few words ("a self-signed certificate"); empty when it does. */
  problem: string;
}

/** The certificate of a TLS socket whose handshake is done; null if it presented none. */
export function peerCertificate(socket: tls.TLSSocket, host: string): PeerCertificate | null {
  // Node 20 answers getPeerCertificate() with {} once getPeerX509Certificate() has been called,
  // so the one checkServerIdentity reads comes first.
  const details = socket.getPeerCertificate();
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) return null;
  const identity = socket.authorized ? tls.checkServerIdentity(host, details) : undefined;
  const verified = socket.authorized && identity === undefined;
  return { fingerprint: fingerprintOf(x509), verified, problem: verified ? '' : certificateProblem(socket.authorizationError, identity, host) };
}

function certificateProblem(code: unknown, identity: Error | undefined, host: string): string {
  // tls.connect checks the name itself too: a certificate from a known authority, for another name.
  if (identity !== undefined || code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `a certificate that is not for ${host}`;
  switch (String(code)) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      return 'a self-signed certificate';
    case 'CERT_HAS_EXPIRED':
      return 'an expired certificate';
    default:
      return `a certificate this machine cannot verify (${String(code)})`;
  }
}

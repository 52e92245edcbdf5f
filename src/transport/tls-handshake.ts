/**
 * TLS on the chat port: a socket whose first bytes were a TLS handshake (sniff.ts) is wrapped
 * where it is, with those bytes put back in front, and handed on once the handshake is done;
 * inside it text, JSON, HTTP and WebSocket are told apart as on a clear connection. A
 * handshake that stalls (slowloris inside TLS) or fails is cut, and only its owner hears why.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

export interface TlsHandshake {
  context: SecureContext;
  /** How long a client may take to finish its handshake. */
  timeoutMs: number;
  secured(socket: TLSSocket): void;
  failed(reason: string): void;
}

export function acceptTls(socket: Socket, head: Buffer, h: TlsHandshake): void {
  // Paused first: unshift() on a flowing socket with no reader would emit the bytes to nobody.
  // The TLS socket reads what is buffered before it reads the wire.
  socket.pause();
  socket.unshift(head);
  const secure = new TLSSocket(socket, { isServer: true, secureContext: h.context });
  const timer = setTimeout(() => fail(`no TLS handshake within ${Math.round(h.timeoutMs / 1000)} s`), h.timeoutMs);
  const fail = (reason: string): void => {
    clearTimeout(timer);
    secure.off('secure', onSecure);
    secure.off('error', onError);
    secure.off('close', onClose);
    secure.off('end', onClose);
    secure.destroy();
    socket.destroy();
    h.failed(reason);
  };
  const onError = (err: Error): void => fail(`TLS handshake failed: ${err.message}`);
  const onClose = (): void => fail('closed during the TLS handshake');
  const onSecure = (): void => {
    clearTimeout(timer);
    secure.off('error', onError);
    secure.off('close', onClose);
    secure.off('end', onClose);
    h.secured(secure);
  };
  secure.once('secure', onSecure);
  secure.once('error', onError);
  // The chat port allows half-open sockets: a client's FIN mid-handshake is an 'end', no 'close'.
  secure.once('close', onClose);
  secure.once('end', onClose);
}

/**
 * What the server sees of a chat connection, whatever carries it: a TCP socket in text or JSON
 * mode (tcp/connection.ts) or a WebSocket (ws/ws-connection.ts). Each is the hub's Link for its
 * socket and is built from the same parts, each in its own file: a send queue (send-queue.ts),
 * a flood gate (flood-gate.ts), registration (registration.ts), image uploads
 * (image-upload.ts), and a ticket on the shared deadline queues (deadlines.ts).
 *
 * Two rules keep one client from costing anyone else anything:
 * - Input over the flood budget is not dropped; the input is paused, so the excess waits in
 *   the client's own TCP buffers and comes in later at the allowed rate.
 * - Output is never waited for. It queues, bounded in bytes (queue + the socket's own buffer);
 *   past the bound the client is disconnected ("SendQ exceeded") instead of the broadcast
 *   slowing down.
 */
import type { Socket } from 'node:net';
import type { ErrorCode } from '../protocol/errors.js';
import type { Link, Session } from '../hub/session.js';

export type Transport = 'tcp' | 'websocket';

/** Why a link ended, for the transport's own goodbye (a WebSocket close code). */
export type EndCode = ErrorCode | 'QUIT' | null;

export interface ChatLink extends Link {
  readonly socket: Socket;
  /** Set once the connection is registered (a text connection at once, JSON and WebSocket at hello). */
  readonly session: Session | null;
  /** Why the link ended, or will end if it closes now. */
  readonly reason: string;
}

/** What the server hears from a link. */
export interface LinkHooks<L extends ChatLink> {
  /** Called once, when the transport has closed. */
  closed(link: L, reason: string): void;
  /** A client was slowed down by flood control. */
  throttled?(link: L): void;
}

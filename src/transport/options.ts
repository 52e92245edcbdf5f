/**
 * The limits and timings of a chat connection, over TCP or WebSocket. The CLI reads its
 * defaults from here, so this module imports nothing.
 */
import type { Clock } from '../hub/flood.js';

export interface ConnectionOptions {
  /** Longest text-mode line, in bytes. */
  maxLine: number;
  /** Longest JSON-mode line (or WebSocket text message), in bytes. */
  maxFrame: number;
  /** Largest image a JSON client may post (the raw bytes after an image header). */
  maxImageBytes: number;
  /** Bytes that may wait for a slow reader before it is disconnected. */
  maxSendQueue: number;
  /** Lines per second a client may send (0: no limit), and how many may come at once. */
  floodRate: number;
  floodBurst: number;
  /** How long a silent new connection is given to say it speaks JSON before it gets text. */
  greetDelay: number;
  /** A connection that is not a session by then (no successful hello) is closed (ms; 0: never). */
  registerTimeout: number;
  /** How long a closing connection may take to flush before it is cut (ms). */
  lingerMs: number;
  clock?: Clock;
}

export const CONNECTION_DEFAULTS: ConnectionOptions = {
  maxLine: 4096,
  maxFrame: 16384,
  maxImageBytes: 8 << 20,
  maxSendQueue: 1 << 20,
  floodRate: 20,
  floodBurst: 40,
  greetDelay: 150,
  registerTimeout: 120_000,
  lingerMs: 2000,
};

/**
 * One registered participant, whatever carries it (TCP text, TCP JSON, WebSocket, the bot).
 * The transport implements Link; the hub only ever calls send(), which must not block. The hub
 * never asks which wire format a link speaks: a link encodes each frame for its own wire, and
 * leaves out what that wire does not show (an ack, say, in text mode).
 */
import type { EventOf } from '../protocol/events.js';
import type { Frame } from '../protocol/frame.js';
import type { Room } from './room.js';

export interface Link {
  /** Human-readable peer, e.g. "192.0.2.7:51234" or "[::1]:40000". */
  readonly peer: string;
  /** Queues the frame's bytes for this link's format. Never blocks and never throws. */
  send(frame: Frame): void;
  /** Sends a last word (if any), flushes, and ends the link; the transport then detaches. */
  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void;
}

export class Session {
  readonly rooms = new Map<string, Room>();
  current: Room | null = null;
  detached = false;
  key: string;
  /** The account this session has proved (a nick key), by /register, /login or the hello; null: none. */
  account: string | null = null;

  constructor(
    readonly id: number,
    public nick: string,
    key: string,
    readonly link: Link,
  ) {
    this.key = key;
  }
}

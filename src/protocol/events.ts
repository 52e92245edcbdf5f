/**
 * What the server sends. These JSON shapes are the public protocol (docs/protocol.md): add
 * fields freely, never rename or remove one.
 */
import type { ErrorCode } from './errors.js';

export type RequestId = string | number;

export interface MessageEvent {
  type: 'message';
  room: string;
  seq: number;
  nick: string;
  text: string;
  time: number;
  action?: true;
}

export interface RoomInfo {
  room: string;
  members: number;
  topic: string;
}

export type ServerEvent =
  | {
      type: 'welcome';
      nick: string;
      server: string;
      version: string;
      rooms: string[];
      limits: Record<string, number>;
    }
  | MessageEvent
  | { type: 'ack'; id?: RequestId; room: string; seq: number; time: number }
  | { type: 'privmsg'; id?: RequestId; from: string; to: string; text: string; time: number; action?: true }
  | {
      type: 'joined';
      id?: RequestId;
      room: string;
      nick: string;
      self?: true;
      topic?: string;
      members?: string[];
      seq?: number;
    }
  | { type: 'parted'; id?: RequestId; room: string; nick: string; self?: true; reason?: string; quit?: true }
  | { type: 'nick'; id?: RequestId; old: string; nick: string; self?: true }
  | { type: 'topic'; id?: RequestId; room: string; topic: string; nick?: string }
  | { type: 'rooms'; id?: RequestId; rooms: RoomInfo[] }
  | { type: 'who'; id?: RequestId; room: string; members: string[]; topic: string }
  | {
      type: 'history';
      id?: RequestId;
      room: string;
      messages: MessageEvent[];
      /** Lowest sequence number still kept; anything below it and after `after` was missed. */
      first: number;
      last: number;
      missed: number;
    }
  | { type: 'help'; id?: RequestId; commands: { usage: string; help: string }[] }
  | { type: 'notice'; id?: RequestId; text: string }
  | { type: 'pong'; id?: RequestId; time: number }
  | { type: 'error'; id?: RequestId; code: ErrorCode; message: string }
  | { type: 'bye'; code: ErrorCode | 'QUIT'; reason: string };

export type EventType = ServerEvent['type'];
export type EventOf<T extends EventType> = Extract<ServerEvent, { type: T }>;

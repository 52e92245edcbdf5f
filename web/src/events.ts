/**
 * The server events the page uses (a browser-side copy of src/protocol/events.ts: the page is
 * built separately from the server and must not import Node code). Fields are only ever added
 * to the protocol, so a subset is safe.
 */
export interface LabelScore {
  index: number;
  label: string;
  score: number;
}

export interface MessageEvent {
  type: 'message';
  room: string;
  seq: number;
  nick: string;
  text: string;
  time: number;
  action?: true;
}

export interface ImageEvent {
  type: 'image';
  room: string;
  seq: number;
  nick: string;
  image: number;
  name: string;
  size: number;
  time: number;
}

export interface LabelsEvent {
  type: 'labels';
  room: string;
  seq: number;
  nick: string;
  image: number;
  name: string;
  time: number;
  labels?: LabelScore[];
  model?: string;
  error?: { code: string; message: string };
  preview?: { width: number; height: number; rgb: string };
}

export type RoomEvent = MessageEvent | ImageEvent | LabelsEvent;

export interface RoomInfo {
  room: string;
  members: number;
  topic: string;
}

export type RequestId = string | number;

export type ServerEvent =
  | { type: 'welcome'; nick: string; server: string; version: string; rooms: string[]; limits: Record<string, number> }
  | RoomEvent
  | { type: 'ack'; id?: RequestId; room: string; seq: number; time: number; image?: number }
  | { type: 'privmsg'; from: string; to: string; text: string; time: number; action?: true }
  | { type: 'joined'; id?: RequestId; room: string; nick: string; self?: true; topic?: string; members?: string[]; seq?: number }
  | { type: 'parted'; id?: RequestId; room: string; nick: string; self?: true; reason?: string; quit?: true }
  | { type: 'nick'; id?: RequestId; old: string; nick: string; self?: true }
  | { type: 'topic'; room: string; topic: string; nick?: string }
  | { type: 'rooms'; rooms: RoomInfo[] }
  | { type: 'who'; room: string; members: string[]; topic: string }
  | { type: 'history'; room: string; messages: RoomEvent[]; first: number; last: number; missed: number }
  | { type: 'notice'; text: string }
  | { type: 'pong'; time: number }
  | { type: 'error'; id?: RequestId; code: string; message: string }
  | { type: 'bye'; code: string; reason: string }
  /** Not shown by the page; their other fields are not needed here. */
  | { type: 'bot' | 'help' };

export function parseEvent(data: string): ServerEvent | null {
  try {
    const v = JSON.parse(data) as unknown;
    if (v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string') return v as ServerEvent;
  } catch {
    /* not JSON: ignore */
  }
  return null;
}

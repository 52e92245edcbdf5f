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
  /**
   * Said while this server could not reach its cluster (`serve --redis`, Redis away): shown
   * to the members on this server at once, with seq 0. It gets its number, and reaches the
   * other servers, once the cluster is back; it is not shown here a second time.
   */
  local?: true;
}

/**
 * What tells a message or image post shown while the cluster was away (`local`) from the same
 * one come back numbered: a message's nick, time and text, an image's id, which the numbering
 * keeps.
 */
export function localEventKey(e: MessageEvent | ImageEvent): string {
  return e.type === 'image' ? `image ${e.image}` : `${e.nick}\n${e.time}\n${e.text}`;
}

/** An image posted to a room. The bytes go to the classifier; the room sees who, what, how big. */
export interface ImageEvent {
  type: 'image';
  room: string;
  seq: number;
  nick: string;
  /** Server-wide id of the post; the bot's answer names it. */
  image: number;
  name: string;
  size: number;
  time: number;
  /** Posted while this server could not reach its cluster: as MessageEvent.local. */
  local?: true;
}

export interface LabelScore {
  index: number;
  label: string;
  score: number;
}

/** The classifier bot's answer to an image post: labels, or why there are none. */
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
  timings?: Record<string, number>;
  error?: { code: string; message: string };
  /** A tiny thumbnail (RGB, row-major, base64) for terminal previews. */
  preview?: { width: number; height: number; rgb: string };
}

/**
 * A message that matched a search. `marks` are the matching words as [start, end) offsets into
 * `text`, in UTF-16 code units (JavaScript string indices), in order and not overlapping.
 */
export interface SearchHit {
  seq: number;
  nick: string;
  text: string;
  time: number;
  action?: true;
  marks: [start: number, end: number][];
}

/** What a room's history holds: everything that has a sequence number. */
export type RoomEvent = MessageEvent | ImageEvent | LabelsEvent;

export type BotState = 'ready' | 'loading' | 'down' | 'off';

export interface BotStatus {
  nick: string;
  state: BotState;
  reason: string;
  model?: string;
  workers?: number;
  queue?: number;
  maxQueue?: number;
}

export interface RoomInfo {
  room: string;
  members: number;
  topic: string;
}

/** What an operator did (docs/protocol.md, "Operators"). */
export type ModerationAction = 'op' | 'deop' | 'ban' | 'unban' | 'mute' | 'unmute' | 'invite' | 'mode' | 'key';

/** A ban as /bans lists it: `mask` is what /unban takes. */
export interface BanInfo {
  mask: string;
  /** Who it was aimed at, when it was made from a member (/ban NICK). */
  nick?: string;
  by: string;
  time: number;
  reason?: string;
}

/** A mute as /bans lists it; `until` absent: until someone unmutes. */
export interface MuteInfo {
  nick: string;
  by: string;
  time: number;
  until?: number;
}

export type ServerEvent =
  | {
      type: 'welcome';
      nick: string;
      server: string;
      version: string;
      /** Names the server's history: a client coming back to another one starts counting afresh. */
      history: string;
      rooms: string[];
      limits: Record<string, number>;
    }
  | MessageEvent
  | ImageEvent
  | LabelsEvent
  | { type: 'ack'; id?: RequestId; room: string; seq: number; time: number; image?: number }
  | ({ type: 'bot'; id?: RequestId } & BotStatus)
  | { type: 'privmsg'; id?: RequestId; from: string; to: string; text: string; time: number; action?: true }
  | {
      type: 'joined';
      id?: RequestId;
      room: string;
      nick: string;
      self?: true;
      topic?: string;
      members?: string[];
      /** Members (on this server) logged in to their nick's account. */
      loggedIn?: string[];
      seq?: number;
      /** The room's operators (self only), and its modes ("+i", "+t", "+k", together: "+ikt"; "" for none). */
      ops?: string[];
      modes?: string;
      /**
       * Names the room's numbering (self only): a client resuming with `after` sends it back,
       * and when the room's numbers have started again since (its history lost) the server
       * says so and sends the room as it is now instead of "everything after N".
       */
      epoch?: string;
    }
  | {
      type: 'parted';
      id?: RequestId;
      room: string;
      nick: string;
      self?: true;
      reason?: string;
      quit?: true;
      /** The operator who put `nick` out of the room (/kick, /ban); reason is theirs. */
      kickedBy?: string;
    }
  | { type: 'nick'; id?: RequestId; old: string; nick: string; self?: true }
  | { type: 'topic'; id?: RequestId; room: string; topic: string; nick?: string }
  | { type: 'rooms'; id?: RequestId; rooms: RoomInfo[] }
  | { type: 'who'; id?: RequestId; room: string; members: string[]; topic: string; loggedIn?: string[]; ops?: string[] }
  | {
      /** An operator's act, told to the whole room (and the answer to the operator). */
      type: 'moderation';
      id?: RequestId;
      room: string;
      by: string;
      action: ModerationAction;
      /** Whom it is about (op, deop, mute, unmute, invite), or the mask (ban, unban). */
      target?: string;
      reason?: string;
      /** A mute's end (ms since the epoch); absent: until someone unmutes. */
      until?: number;
      /** The member a ban was made from (/ban NICK), when target is the mask it made. */
      nick?: string;
      /** The change asked for (mode: "+i", "-kt"). */
      change?: string;
      /** The room's modes after a change ("+it"; "" for none). */
      modes?: string;
    }
  | { type: 'mode'; id?: RequestId; room: string; modes: string; ops: string[] }
  | { type: 'bans'; id?: RequestId; room: string; bans: BanInfo[]; mutes: MuteInfo[] }
  | {
      type: 'history';
      id?: RequestId;
      room: string;
      messages: RoomEvent[];
      /** Lowest sequence number still kept; anything below it and after `after` was missed. */
      first: number;
      last: number;
      missed: number;
    }
  | {
      type: 'search';
      id?: RequestId;
      room: string;
      q: string;
      /** Newest first; `before` = the last hit's seq asks for the next page. */
      hits: SearchHit[];
      more: boolean;
    }
  | { type: 'help'; id?: RequestId; commands: { usage: string; help: string }[] }
  | { type: 'notice'; id?: RequestId; text: string }
  | { type: 'pong'; id?: RequestId; time: number }
  | { type: 'error'; id?: RequestId; code: ErrorCode; message: string }
  | { type: 'bye'; code: ErrorCode | 'QUIT'; reason: string };

export type EventType = ServerEvent['type'];
export type EventOf<T extends EventType> = Extract<ServerEvent, { type: T }>;

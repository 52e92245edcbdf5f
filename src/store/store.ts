/**
 * The message store: where rooms' numbered events and topics are kept, so that history
 * survives a restart. The hub numbers events; the store only keeps them.
 *
 * The interface is narrow so that it can be implemented over a network (Redis) later: reads
 * return promises, and writes never make the caller wait. append() and setTopic() queue the
 * change and return at once; the store writes what was queued later (the SQLite store: a
 * few milliseconds on, or at the end of the turn under `always` or in a burst, in one
 * transaction) and reports through StoreObserver.durable() which
 * events are written. A caller that must not answer before an event is safe (the JSON ack
 * under the `always` fsync policy) waits for that report.
 */
import type { MessageEvent, RoomEvent } from '../protocol/events.js';
import { StoreError, type StoreErrorCode } from './errors.js';

/**
 * When written events are forced to disk:
 *  - `always`: every batch is synced before it is reported durable (survives a power cut);
 *  - `batch`: batches reach the operating system at once (they survive the process being
 *    killed) and are synced at most a second later (a power cut loses at most about a second);
 *  - `off`: never synced by the store; the operating system writes when it likes.
 */
export type FsyncPolicy = 'always' | 'batch' | 'off';

/** What open() reports of each room it finds, so the hub can go on numbering after a restart. */
export interface StoredRoom {
  room: string;
  /** Sequence number of the last event ever appended to the room (0: none). The next is lastSeq + 1. */
  lastSeq: number;
  /** Lowest sequence number still kept; lastSeq + 1 when none is. */
  firstSeq: number;
  topic: string;
  /** Who set the topic, and when (milliseconds since the epoch); absent when never set. */
  topicNick?: string;
  topicTime?: number;
}

/** Some of a room's events, oldest first, with the room's bounds at the time of reading. */
export interface HistoryPage {
  events: RoomEvent[];
  /** Lowest sequence number kept (last + 1 when none is): anything below it is gone. */
  first: number;
  /** Sequence number of the room's last event (0: none). */
  last: number;
}

/**
 * A message that matched a search. `marks` are the matching words as [start, end) offsets
 * into `event.text`, in UTF-16 code units (JavaScript string indices), in order and not
 * overlapping: a client highlights text.slice(start, end). Offsets rather than markers
 * inserted into the text, because no character is safe as a marker in text people type.
 */
export interface SearchHit {
  event: MessageEvent;
  marks: [start: number, end: number][];
}

/**
 * How much history to keep. Either bound, or both; what is dropped is always the room's
 * oldest events, so what is kept stays one unbroken run of sequence numbers.
 */
export interface Retention {
  /** Events older than this are dropped. */
  maxAgeMs?: number;
  /** At most this many of each room's newest events are kept. */
  maxPerRoom?: number;
}

export interface PruneResult {
  /** Events dropped. */
  deleted: number;
}

export interface StoreHealth {
  /** `degraded`: writes are failing; events wait in memory and are retried. */
  state: 'ok' | 'degraded';
  /** Why it is degraded: the message of the last failure. */
  reason?: string;
  code?: StoreErrorCode;
  /** Write attempts that failed since the store was opened. */
  failedWrites: number;
  /** Events appended and not yet written. */
  queued: number;
  /** Events given up while writes were failing and the queue was full. */
  dropped: number;
}

/** What the store reports as it goes; the server wires it to its logger and to the acks. */
export interface StoreObserver {
  /**
   * The room's events up to `seq` are written, with the guarantee of the fsync policy. Called
   * once per room per batch written, with the batch's highest sequence number for that room.
   */
  durable?(room: string, seq: number): void;
  /** Writes started failing: called once when the store becomes degraded, not per failure. */
  degraded?(err: StoreError): void;
  /** Writes succeed again after failing; everything kept in memory has been written. */
  recovered?(health: StoreHealth): void;
}

/** A registered nick (docs/security.md): who may use it, proved by the password. */
export interface Account {
  /** The nick's key (nickKey). */
  key: string;
  /** The nick as registered. */
  nick: string;
  /** auth/passwords.ts's hash. */
  hash: string;
  created: number;
}

/**
 * Who a ban or a mute is about: it matches a person when any one of these does. `nick` is a
 * glob ("*" and "?") over nick keys; `account` a nick key; `address` an IP address or a
 * CIDR block.
 */
export interface PersonMask {
  nick?: string;
  account?: string;
  address?: string;
}

export interface StoredBan {
  /** What /bans shows and /unban takes. */
  mask: string;
  match: PersonMask;
  /** The member it was made from (/ban NICK). */
  nick?: string;
  by: string;
  time: number;
  reason?: string;
}

export interface StoredMute {
  nick: string;
  match: PersonMask;
  by: string;
  time: number;
  /** When it ends (ms since the epoch); absent: when someone unmutes. */
  until?: number;
}

/**
 * A room's rules (hub/moderation.ts): kept whole, one record a room, replaced on every
 * change; a room without any has none stored.
 */
export interface RoomRules {
  /** Accounts (nick keys) that are the room's operators whenever they are logged in. */
  ops: string[];
  bans: StoredBan[];
  mutes: StoredMute[];
  inviteOnly: boolean;
  topicLock: boolean;
  /** The room's key, salted and hashed: joining needs it. */
  key: { salt: string; hash: string } | null;
  /** Nick keys an operator invited, past +i and the key, until `until`. */
  invites: { key: string; by: string; until: number }[];
}

export interface MessageStore {
  /**
   * Opens the store and reports the rooms it holds; on an open store, reports them again.
   * Rejects with a StoreError.
   */
  open(): Promise<StoredRoom[]>;
  /**
   * Keeps an event the hub has numbered. Returns at once; the event is written later (see
   * StoreObserver.durable). Sequence numbers must grow within a room; throws
   * STORE_INVALID_EVENT otherwise, and STORE_CLOSED when the store is not open.
   */
  append(event: RoomEvent): void;
  /** Keeps a room's topic; returns at once like append(). */
  setTopic(room: string, topic: string, nick: string): void;
  /** Up to `limit` events with seq > after, oldest first: the next page after `after`. */
  range(room: string, after: number, limit: number): Promise<HistoryPage>;
  /** The room's newest `n` events, oldest first. */
  latest(room: string, n: number): Promise<HistoryPage>;
  /**
   * Messages of the room holding every word of `query` (case and accents ignored; a word
   * ending in "*" matches as a prefix), newest first, at most `limit`, only those with
   * seq < beforeSeq when it is given (the next page: the last hit's seq).
   */
  search(room: string, query: string, limit: number, beforeSeq?: number): Promise<SearchHit[]>;
  /** Drops old events, in small steps between which the caller's other work goes on. */
  prune(retention: Retention): Promise<PruneResult>;
  /** Resolves once everything appended before the call is written (and synced under `batch`). */
  flush(): Promise<void>;
  /** Writes what is queued and closes. Rejects (after closing) if events could not be written. */
  close(): Promise<void>;
  health(): StoreHealth;
  /**
   * Names this history: the same for as long as its events are kept (a memory store: the
   * process; the SQLite store: its file). A client that comes back to a server with another
   * history knows its sequence numbers mean nothing there. Valid once open() has resolved.
   */
  historyId(): string;
  /**
   * The account of a nick key, at once, where the store can tell without waiting (in memory,
   * SQLite); absent where it cannot, and account() is asked instead.
   */
  accountNow?(key: string): Account | null;
  account(key: string): Promise<Account | null>;
  /** Registers an account; false when its key has one already. */
  createAccount(account: Account): Promise<boolean>;
  /** Replaces an existing account's hash (a new password). */
  updateAccount(account: Account): Promise<void>;
  /** A room's rules, at once, where the store can tell without waiting (see accountNow). */
  rulesNow?(room: string): RoomRules | null;
  rules(room: string): Promise<RoomRules | null>;
  /** Keeps a room's rules in place of what it had; written at once. */
  saveRules(room: string, rules: RoomRules): Promise<void>;
}

/** Sequence numbers the stores accept: the SQLite store packs them into 40 bits. */
export const MAX_SEQ = 2 ** 40 - 1;

/**
 * Throws STORE_INVALID_EVENT unless `event` can follow `lastSeq` in its room. A store that
 * kept a repeated or smaller number would hand clients duplicates or history out of order.
 */
export function checkAppend(event: RoomEvent, lastSeq: number, where: string): void {
  const { seq } = event;
  if (typeof event.room !== 'string' || event.room === '')
    throw new StoreError('STORE_INVALID_EVENT', where, 'an event without a room');
  if (!Number.isSafeInteger(seq) || seq < 1 || seq > MAX_SEQ)
    throw new StoreError('STORE_INVALID_EVENT', where, `sequence number ${seq} is not an integer from 1 to ${MAX_SEQ}`);
  if (seq <= lastSeq)
    throw new StoreError('STORE_INVALID_EVENT', where, `room "${event.room}" is at ${lastSeq} already, ${seq} does not follow`);
}

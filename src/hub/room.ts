/**
 * A room: its members, its topic, and its numbered history. Sequence numbers are per room and
 * never reused, so a client that reconnects asks for "everything after N" and gets no
 * duplicates. The room's log numbers events and keeps the recent ones as encoded frames (a
 * join's replay costs no encoding); the message store behind it keeps them all.
 */
import type { Frame } from '../protocol/frame.js';
import type { RoomRules } from '../store/store.js';
import { NO_RULES } from './moderation.js';
import type { RoomLog } from './room-log.js';
import type { Session } from './session.js';

export class Room {
  readonly members = new Set<Session>();
  /**
   * Members whose replay is still being read from the store: what the room says meanwhile
   * waits here, so that it reaches them after the history it follows. Null when none is, so
   * a broadcast pays one check, not one per member.
   */
  held: Map<Session, Frame[]> | null = null;
  /**
   * A room of a cluster that is not followed yet: what waits for it (the joins that came
   * meanwhile). Null when the room is ready, as every room of a single server is.
   */
  pending: (() => void)[] | null = null;
  /** A room of a cluster: its members on the other nodes (nick key -> nick). Null on a single server. */
  remote: Map<string, string> | null = null;
  /**
   * Messages shown to this node's members while the cluster was away (MessageEvent.local),
   * by nick, time and text: when they come back numbered, they are not shown again.
   */
  shownLocally: Set<string> | null = null;
  /** When this node last heard of a topic change (ms): a topic read from the cluster that is older is not news. */
  topicTime = 0;
  /** Who set the topic while the cluster was away: it is kept and told when the cluster is back. */
  topicUnsent: Session | null = null;
  /** Operators, bans, mutes, modes, key (hub/moderation.ts); replaced whole on a change. */
  rules: RoomRules = NO_RULES;
  /** Members who are operators without an account behind it, for as long as they stay. Null: none. */
  sessionOps: Set<Session> | null = null;

  constructor(
    readonly name: string,
    readonly predefined: boolean,
    readonly log: RoomLog,
  ) {}

  get topic(): string {
    return this.log.topic;
  }

  /** Sequence number of the last event; the next one gets seq + 1. */
  get seq(): number {
    return this.log.seq;
  }
}

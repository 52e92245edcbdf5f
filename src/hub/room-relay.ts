/**
 * Where a hub's rooms are numbered when they span several servers (a cluster over Redis): the
 * hub stops numbering events itself and hands each to the relay, which numbers it where every
 * node sees the same numbers and brings it back to every node following the room, this one
 * included, through Hub.arrive(). Who is in a room on the other nodes, and which nicks they
 * hold, come through the relay too. The hub knows this interface only; src/cluster/
 * implements it, so the hub stays free of I/O.
 */
import type { EventOf, RoomEvent, RoomInfo } from '../protocol/events.js';

/** Someone on another node, as a room lists them. */
export interface RemoteMember {
  key: string;
  nick: string;
}

/** Where a followed room starts: its last seq, the lowest still kept, its topic, who is in it elsewhere. */
export interface RoomStart {
  lastSeq: number;
  firstSeq: number;
  topic: string;
  /** Names the room's numbering in the cluster; a new one when Redis lost the room. */
  epoch: string;
  /** The room's members on the other nodes. */
  members: RemoteMember[];
}

/** What one node tells the others about a room it has members in: not numbered, not kept. */
export type Announcement = EventOf<'joined'> | EventOf<'parted'> | EventOf<'topic'> | (EventOf<'nick'> & { room: string }) | EventOf<'moderation'>;

export type PrivateMessage = EventOf<'privmsg'>;

export interface RoomRelay {
  /**
   * False while the cluster cannot be reached: publish() then keeps what it is given (a
   * bounded number) and sends it, in order, when the cluster is back.
   */
  readonly reachable: boolean;
  /**
   * Numbers the event in its room (its seq is ignored) and sends it to every node that follows
   * the room. Resolves with the number it got; rejects when it could not be sent (the event
   * is then delivered nowhere).
   */
  publish(event: RoomEvent): Promise<number>;
  /**
   * This node has members in the room from now on: its events are to come through
   * Hub.arrive(), each once and in order, starting after the returned lastSeq.
   */
  follow(room: string): Promise<RoomStart>;
  /** This node has no members in the room any more. */
  unfollow(room: string): void;
  /**
   * A member of this node joined, left, changed nick or set the topic: the room's members on
   * the other nodes hear of it (through Hub.announced()), and the room's member list in the
   * cluster is kept up to date. `key`: the member's nick key.
   */
  announce(event: Announcement, key: string, oldKey?: string): void;
  /** Claims a nick for this node, cluster-wide; false when a member of another node has it. */
  claimNick(key: string): Promise<boolean>;
  releaseNick(key: string): void;
  /** Every room with members on any node: how many, and its topic. */
  listRooms(): Promise<RoomInfo[]>;
  /** Sends a private message to the node of `key`; false when no node has that nick. */
  sendPrivate(key: string, event: PrivateMessage): Promise<boolean>;
}

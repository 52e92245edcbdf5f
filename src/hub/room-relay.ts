/**
 * Where a hub's rooms are numbered when they span several servers (a cluster over Redis): the
 * hub stops numbering events itself and hands each to the relay, which numbers it where every
 * node sees the same numbers and brings it back to every node following the room, this one
 * included, through Hub.arrive(). The hub knows this interface only; src/cluster/ implements
 * it, so the hub stays free of I/O.
 */
import type { RoomEvent } from '../protocol/events.js';

/** Where a followed room starts: its last seq, the lowest still kept, and its topic. */
export interface RoomStart {
  lastSeq: number;
  firstSeq: number;
  topic: string;
}

export interface RoomRelay {
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
}

/**
 * Where a room lives in Redis. Every key of a room carries the same hash tag, {room:NAME}, so
 * that Redis Cluster keeps a room's keys on one shard (a script may only touch keys of one
 * slot) and shards rooms across the cluster. Room names are already restricted to characters
 * that need no escaping (protocol/text.ts), and a name never holds a brace.
 */
export interface RoomKeys {
  /** Hash: `epoch` (made when the hash is) and `seq` (the last number given out). */
  meta: string;
  /** Stream of the room's events, the entry ID of each `0-SEQ`. */
  stream: string;
  /** Pub/sub channel the room's events are published on as they are numbered. */
  channel: string;
  /** Hash of the room's members on every node: nick key -> "NODE NICK" (presence.ts). */
  members: string;
}

export function roomKeys(room: string, prefix = 'roomcast'): RoomKeys {
  const tag = `{room:${room}}`;
  return {
    meta: `${prefix}:${tag}:meta`,
    stream: `${prefix}:${tag}:stream`,
    channel: `${prefix}:${tag}:live`,
    members: `${prefix}:${tag}:members`,
  };
}

/** The room a channel of roomKeys() belongs to, or null for another channel. */
export function roomOfChannel(channel: string, prefix = 'roomcast'): string | null {
  const head = `${prefix}:{room:`;
  const tail = '}:live';
  if (!channel.startsWith(head) || !channel.endsWith(tail)) return null;
  return channel.slice(head.length, channel.length - tail.length);
}

/**
 * How versions 1 and 2 of the SQLite store laid out a room event: a row of the events table
 * each, the fields every event has in columns (kind 0 a message, 1 a /me message, 2 an image,
 * 3 labels), everything else in one JSON column. Read only by the migration to version 3.
 */
import type { RoomEvent } from '../protocol/events.js';

const KIND_OF = { message: 0, image: 2, labels: 3 } as const;
/** A message sent with /me: a kind of its own, so that a plain message needs no JSON. */
const KIND_ACTION = 1;
const TYPE_OF: readonly RoomEvent['type'][] = ['message', 'message', 'image', 'labels'];

/** A row as read (better-sqlite3's raw mode: an array, cheaper than an object per row). */
export type EventRow = [seq: number, time: number, kind: number, nick: string, text: string | null, extra: string | null];

/**
 * The event a row holds (equal to the one appended; the order of its fields may differ).
 * Built as literals: with object spread, decoding a long page took longer than reading it
 * (docs/performance.md).
 */
export function eventOf(room: string, row: EventRow): RoomEvent {
  const [seq, time, kind, nick, text, extra] = row;
  let event: Record<string, unknown>;
  if (kind === KIND_OF.message || kind === KIND_ACTION) {
    event = { type: 'message', room, seq, nick, text: text ?? '', time };
    if (kind === KIND_ACTION) event.action = true;
  } else {
    event = { type: TYPE_OF[kind] ?? 'message', room, seq, nick, time };
  }
  if (extra !== null) Object.assign(event, JSON.parse(extra));
  return event as unknown as RoomEvent;
}

/**
 * How a room event is laid out in a row of the SQLite store's events table. The fields every
 * event has get columns (a message's text too, for the full-text index); everything else goes
 * into one JSON column, so that fields added to the protocol later are kept without a
 * migration.
 */
import type { RoomEvent } from '../protocol/events.js';

const KIND_OF = { message: 0, image: 2, labels: 3 } as const;
/** A message sent with /me: a kind of its own, so that a plain message needs no JSON. */
const KIND_ACTION = 1;
const TYPE_OF: readonly RoomEvent['type'][] = ['message', 'message', 'image', 'labels'];

/** Fields with a column of their own, per type; the rest goes to `extra`. */
const COLUMNS: Record<RoomEvent['type'], ReadonlySet<string>> = {
  message: new Set(['type', 'room', 'seq', 'nick', 'time', 'text', 'action']),
  image: new Set(['type', 'room', 'seq', 'nick', 'time']),
  labels: new Set(['type', 'room', 'seq', 'nick', 'time']),
};

/** A row as read (better-sqlite3's raw mode: an array, cheaper than an object per row). */
export type EventRow = [seq: number, time: number, kind: number, nick: string, text: string | null, extra: string | null];

/** The values of the columns time, kind, nick, text and extra, in that order. */
export function rowValues(event: RoomEvent): [number, number, string, string | null, string | null] {
  const columns = COLUMNS[event.type];
  let rest: Record<string, unknown> | null = null;
  for (const key in event) {
    if (columns.has(key)) continue;
    const value = (event as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue;
    (rest ??= {})[key] = value;
  }
  const extra = rest === null ? null : JSON.stringify(rest);
  if (event.type === 'message') return [event.time, event.action ? KIND_ACTION : KIND_OF.message, event.nick, event.text, extra];
  return [event.time, KIND_OF[event.type], event.nick, null, extra];
}

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

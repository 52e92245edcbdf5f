/**
 * The JSON text of server events. The two sent most, a room message (encoded once per
 * broadcast) and the ack its sender gets, are written from templates; every other event goes
 * through JSON.stringify.
 *
 * Why: on Node 20 (V8 11, before V8's fast JSON serialiser) JSON.stringify took 0.7-1 µs for a
 * message event and 0.4-0.5 µs for an ack on the reference machine; in a server CPU profile of
 * the ws-fanout-100 bench it was 9% of all the server's time. The templates take about half.
 * They give the same text as JSON.stringify of an event built in the hub's key order; a test
 * holds them to it, and the key lists below stop the build when an event gains a field the
 * template would leave out.
 */
import type { MessageEvent, ServerEvent } from './events.js';

type AckEvent = Extract<ServerEvent, { type: 'ack' }>;

// Text JSON writes as it is: no quote, backslash or C0 control, and no surrogate, since
// JSON.stringify escapes lone ones (pairs are rare enough to take the slow path with them).
// Matching the whole string against what may pass is twice as fast in V8 as searching it for
// what may not (~85 against ~160 ns for 100 characters here).
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** A string as JSON. */
export function jsonString(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

// A time (ms since 1970) is past V8's small integers, so each String(time) took the slow path
// for doubles: 140 ns, twice per message (the event and its ack). Messages come many to a
// millisecond, so the last one's text is kept.
let lastTime = NaN;
let lastTimeText = '';
function timeText(time: number): string {
  if (time !== lastTime) {
    lastTime = time;
    lastTimeText = String(time);
  }
  return lastTimeText;
}

export function eventJson(e: ServerEvent): string {
  switch (e.type) {
    case 'message':
      return messageJson(e);
    case 'ack':
      return ackJson(e);
    default:
      return JSON.stringify(e);
  }
}

function messageJson(e: MessageEvent): string {
  return (
    `{"type":"message","room":${jsonString(e.room)},"seq":${e.seq},"nick":${jsonString(e.nick)},` +
    `"text":${jsonString(e.text)},"time":${timeText(e.time)}${e.action === undefined ? '' : `,"action":${e.action}`}}`
  );
}

function ackJson(e: AckEvent): string {
  return (
    `{"type":"ack","room":${jsonString(e.room)},"seq":${e.seq},"time":${timeText(e.time)}` +
    (e.image === undefined ? '' : `,"image":${e.image}`) +
    (e.id === undefined ? '' : `,"id":${typeof e.id === 'string' ? jsonString(e.id) : e.id}`) +
    '}'
  );
}

// Every field of each event, as the templates write them: a field added to MessageEvent or to
// the ack and not to its template makes `true` unassignable here.
const MESSAGE_FIELDS = ['type', 'room', 'seq', 'nick', 'text', 'time', 'action'] as const;
const ACK_FIELDS = ['type', 'room', 'seq', 'time', 'image', 'id'] as const;
type Unwritten<E, Written extends readonly string[]> = Exclude<keyof E, Written[number]>;
const covered: [Unwritten<MessageEvent, typeof MESSAGE_FIELDS>, Unwritten<AckEvent, typeof ACK_FIELDS>] extends [never, never]
  ? true
  : never = true;
void covered;

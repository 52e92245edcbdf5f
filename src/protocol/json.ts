/**
 * The JSON of server events. Every event's text is JSON.stringify's. The two sent most, a room
 * message (encoded once per broadcast and wire format) and the ack its sender gets, are also
 * written straight as UTF-8 bytes into a caller's buffer, with no string in between: that is
 * what the JSON and WebSocket wire formats send.
 *
 * Why: on Node 20 (V8 11, before V8's fast JSON serialiser) JSON.stringify and then encoding
 * the string are a visible share of the server's time per message; writing the bytes directly
 * skips the string (figures in docs/performance.md). The bytes are JSON.stringify's of an event
 * built in the hub's key order; property tests hold them to it, and the key lists below stop
 * the build when an event gains a field the writer would leave out.
 */
import type { MessageEvent, ServerEvent } from './events.js';

type AckEvent = Extract<ServerEvent, { type: 'ack' }>;

export function eventJson(e: ServerEvent): string {
  return JSON.stringify(e);
}

// Text JSON writes as it is: no quote, backslash or C0 control, and no surrogate, since
// JSON.stringify escapes lone ones (pairs are rare enough to take the slow path with them).
// Matching the whole string against what may pass is faster in V8 than searching it for what
// may not.
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const MESSAGE_HEAD = bytes('{"type":"message","room":');
const ACK_HEAD = bytes('{"type":"ack","room":');
const SEQ = bytes(',"seq":');
const NICK = bytes(',"nick":');
const TEXT = bytes(',"text":');
const TIME = bytes(',"time":');
const ACTION = bytes(',"action":');
const LOCAL = bytes(',"local":');
const IMAGE = bytes(',"image":');
const ID = bytes(',"id":');

/**
 * Most bytes a number takes in JSON: 17 digits, a sign and, between 1e-6 and 1e-5, five
 * zeros and a point ("-0.0000012345678901234567" is 25; "-1.2345678901234567e-300" only 24).
 */
const NUMBER_MOST = 25;
/** Most bytes of a string in JSON: quotes, and 6 per UTF-16 unit (\u001f; UTF-8 is at most 3). */
const stringMost = (s: string): number => 2 + 6 * s.length;

/** The bytes of each event but its values and names: every key, and the closing brace. */
const MESSAGE_KEYS = MESSAGE_HEAD.length + SEQ.length + NICK.length + TEXT.length + TIME.length + ACTION.length + 'false'.length + LOCAL.length + 'false}'.length;
const ACK_KEYS = ACK_HEAD.length + SEQ.length + TIME.length + IMAGE.length + ID.length + '}'.length;

/**
 * How many bytes writeEventJson() may write for this event, or -1 when it has no byte writer
 * (use eventJson()).
 */
export function eventJsonMost(e: ServerEvent): number {
  switch (e.type) {
    case 'message':
      return MESSAGE_KEYS + 2 * NUMBER_MOST + stringMost(e.room) + stringMost(e.nick) + stringMost(e.text);
    case 'ack':
      return ACK_KEYS + 4 * NUMBER_MOST + stringMost(e.room) + (typeof e.id === 'string' ? stringMost(e.id) : 0);
    default:
      return -1;
  }
}

/**
 * Writes a message or ack event's JSON (the bytes of JSON.stringify's text) into `buf` from
 * `at`, which must have eventJsonMost(e) bytes free; returns where it ends.
 */
export function writeEventJson(e: ServerEvent, buf: Buffer, at: number): number {
  switch (e.type) {
    case 'message':
      return writeMessage(e, buf, at);
    case 'ack':
      return writeAck(e, buf, at);
    default:
      throw new Error(`no byte writer for ${e.type} events`);
  }
}

function writeMessage(e: MessageEvent, buf: Buffer, at: number): number {
  at = putHead(MESSAGE_HEAD, e.room, e.seq, buf, at);
  at = putBytes(NICK, buf, at);
  at = putBytes(nameJson(e.nick), buf, at);
  at = putBytes(TEXT, buf, at);
  at = putString(e.text, buf, at);
  at = putBytes(TIME, buf, at);
  at = putTime(e.time, buf, at);
  if (e.action !== undefined) {
    at = putBytes(ACTION, buf, at);
    at = putLatin1(String(e.action), buf, at);
  }
  if (e.local !== undefined) {
    at = putBytes(LOCAL, buf, at);
    at = putLatin1(String(e.local), buf, at);
  }
  buf[at] = 0x7d; // }
  return at + 1;
}

function writeAck(e: AckEvent, buf: Buffer, at: number): number {
  at = putHead(ACK_HEAD, e.room, e.seq, buf, at);
  at = putBytes(TIME, buf, at);
  at = putTime(e.time, buf, at);
  if (e.image !== undefined) {
    at = putBytes(IMAGE, buf, at);
    at = putNumber(e.image, buf, at);
  }
  if (e.id !== undefined) {
    at = putBytes(ID, buf, at);
    at = typeof e.id === 'string' ? putString(e.id, buf, at) : putNumber(e.id, buf, at);
  }
  buf[at] = 0x7d;
  return at + 1;
}

/** `{"type":...,"room":...,"seq":...`, the start both events share. */
function putHead(head: Buffer, room: string, seq: number, buf: Buffer, at: number): number {
  at = putBytes(head, buf, at);
  at = putBytes(nameJson(room), buf, at);
  at = putBytes(SEQ, buf, at);
  return putNumber(seq, buf, at);
}

// A byte loop: for the few dozen bytes of a key, cheaper than a call into Buffer.copy().
function putBytes(src: Buffer, buf: Buffer, at: number): number {
  for (let i = 0; i < src.length; i++) buf[at + i] = src[i];
  return at + src.length;
}

function putLatin1(s: string, buf: Buffer, at: number): number {
  return at + buf.write(s, at, 'latin1');
}

function putString(s: string, buf: Buffer, at: number): number {
  if (!PLAIN.test(s)) return at + buf.write(JSON.stringify(s), at);
  buf[at] = 0x22; // "
  at += 1 + buf.write(s, at + 1);
  buf[at] = 0x22;
  return at + 1;
}

// Room names and nicks are few and come again and again; their JSON is kept, bounded in
// count: writing a short string into a buffer is a call into C++, dearer than a Map lookup.
const NAMES_KEPT = 4096;
const names = new Map<string, Buffer>();
function nameJson(name: string): Buffer {
  let json = names.get(name);
  if (json === undefined) {
    if (names.size >= NAMES_KEPT) names.clear();
    json = Buffer.from(JSON.stringify(name));
    names.set(name, json);
  }
  return json;
}

/** A number as JSON.stringify writes it; the digits of a counter are written here. */
function putNumber(n: number, buf: Buffer, at: number): number {
  if (!(n >= 0 && n <= 0xffffffff && Number.isInteger(n))) return putLatin1(Number.isFinite(n) ? String(n) : 'null', buf, at);
  let digits = 1;
  for (let x = n; x >= 10; x = (x / 10) >>> 0) digits++;
  for (let i = at + digits - 1, x = n; i >= at; i--) {
    const q = (x / 10) >>> 0;
    buf[i] = 0x30 + x - q * 10;
    x = q;
  }
  return at + digits;
}

// A time (ms since 1970) is past 32 bits, so String(time) takes V8's slow path for doubles.
// Messages come many to a millisecond, so the last one's digits are kept.
let lastTime = NaN;
let lastTimeBytes: Buffer = Buffer.alloc(0);
function putTime(time: number, buf: Buffer, at: number): number {
  if (time !== lastTime) {
    lastTime = time;
    lastTimeBytes = bytes(Number.isFinite(time) ? String(time) : 'null');
  }
  return putBytes(lastTimeBytes, buf, at);
}

// Every field of each event, as the writers write them: a field added to MessageEvent or to
// the ack and not to its writer makes `true` unassignable here.
const MESSAGE_FIELDS = ['type', 'room', 'seq', 'nick', 'text', 'time', 'action', 'local'] as const;
const ACK_FIELDS = ['type', 'room', 'seq', 'time', 'image', 'id'] as const;
type Unwritten<E, Written extends readonly string[]> = Exclude<keyof E, Written[number]>;
const covered: [Unwritten<MessageEvent, typeof MESSAGE_FIELDS>, Unwritten<AckEvent, typeof ACK_FIELDS>] extends [never, never]
  ? true
  : never = true;
void covered;

/**
 * Encoding of server events into wire bytes. A Frame is encoded at most once per wire format
 * and the same Buffer is written to every recipient of a broadcast (as ws's Sender.frame()
 * does): serialising per recipient is what makes fan-out slow.
 *
 * Text reaching this module has been sanitised by the hub, so it is written as it is.
 */
import { bansLines, kickLine, moderationLine, modeLines } from './moderation-text.js';
import type { EventOf, LabelsEvent, MessageEvent, RoomEvent, ServerEvent } from './events.js';
import { eventJson, eventJsonMost, writeEventJson } from './json.js';
import { Slab } from './slab.js';
import { formatBytes, labelsSummary } from '../format/units.js';

export type WireMode = 'text' | 'json';

export class Frame {
  private textBytes: Buffer | null | undefined;
  private jsonString: string | undefined;
  private jsonBytes: Buffer | undefined;
  // Other transports' encodings (WebSocket's), made on first use. One slot in fields: a Map per
  // frame was a good share of the cost of a message to a small room; a second kind, should a
  // room ever mix two of them, goes to a Map.
  private otherKey: string | undefined;
  private otherBytes: Buffer | undefined;
  private others: Map<string, Buffer> | undefined;

  constructor(readonly event: ServerEvent) {}

  /** The event as JSON text, without the newline that ends it on a TCP stream. */
  get jsonText(): string {
    return (this.jsonString ??= eventJson(this.event));
  }

  get json(): Buffer {
    return (this.jsonBytes ??= jsonLine(this));
  }

  /** null: this event has no text-mode form (an ack, say). */
  get text(): Buffer | null {
    if (this.textBytes === undefined) {
      const s = renderText(this.event);
      this.textBytes = s === null ? null : Buffer.from(s + '\n');
    }
    return this.textBytes;
  }

  /**
   * The history a join replays unasked. Where it holds nothing the text wire shows nothing, so
   * a join into a quiet room prints no "No messages" line, while an empty history asked for
   * with /history says so. JSON carries both as they are.
   */
  static replay(event: EventOf<'history'>): Frame {
    const frame = new Frame(event);
    if (event.messages.length === 0) frame.textBytes = null;
    return frame;
  }

  bytes(mode: WireMode): Buffer | null {
    return mode === 'json' ? this.json : this.text;
  }

  /** Another transport's encoding of this frame, made by `make` once and kept under `kind`. */
  encoded(kind: string, make: (frame: Frame) => Buffer): Buffer {
    if (this.otherKey === kind) return this.otherBytes!;
    if (this.otherKey === undefined) {
      this.otherKey = kind;
      return (this.otherBytes = make(this));
    }
    const others = (this.others ??= new Map());
    let bytes = others.get(kind);
    if (bytes === undefined) others.set(kind, (bytes = make(this)));
    return bytes;
  }
}

const lineSlab = new Slab();

/** The event's JSON and the newline that ends it on a TCP stream. */
function jsonLine(frame: Frame): Buffer {
  const most = eventJsonMost(frame.event) + 1;
  if (most < 1 || most > Slab.MOST) return Buffer.from(frame.jsonText + '\n');
  const buf = lineSlab.room(most);
  const from = lineSlab.free;
  const end = writeEventJson(frame.event, buf, from);
  buf[end] = 0x0a;
  return lineSlab.take(from, end + 1);
}

export function messageLine(m: MessageEvent): string {
  return m.action ? `[${m.room}] * ${m.nick} ${m.text}` : `[${m.room}] ${m.nick}: ${m.text}`;
}


/**
 * A hit's text with the matching words between asterisks: plain text has no highlighting, and
 * *word* is how people have emphasised words in plain-text chat since before IRC.
 */
export function markedText(
  text: string,
  marks: readonly (readonly [number, number])[],
  mark = (word: string) => `*${word}*`,
  plain = (part: string) => part,
): string {
  let out = '';
  let at = 0;
  for (const [start, end] of marks) {
    // Offsets that overlap, run backwards or past the end (a bad peer) are left out.
    if (!(start >= at && end > start && end <= text.length)) continue;
    out += plain(text.slice(at, start)) + mark(text.slice(start, end));
    at = end;
  }
  return out + plain(text.slice(at));
}

/** One line for anything kept in a room's history. */
export function roomEventLine(e: RoomEvent): string {
  switch (e.type) {
    case 'message':
      return messageLine(e);
    case 'image':
      return `[${e.room}] ${e.nick} posted image #${e.image} ${e.name} (${formatBytes(e.size)})`;
    case 'labels':
      return `[${e.room}] ${e.nick}: #${e.image} ${e.name} ${e.error ? '- ' : '\u2192 '}${labelsSummary(e)}`;
  }
}

// Notices start with "***" and errors with "!", so a person (or grep) tells them from the
// "[room] nick: text" of a message at a glance.
const TEXT: { [T in ServerEvent['type']]: (e: EventOf<T>) => string | null } = {
  welcome: (e) =>
    `*** Welcome to roomcast, ${e.nick}! You are in [${e.rooms.join('], [')}]. ` +
    `Type a line and press Enter to talk; /help lists commands.`,
  message: messageLine,
  image: roomEventLine,
  labels: roomEventLine,
  bot: (e) =>
    `*** ${e.nick}: ${e.state}` +
    (e.reason ? ` - ${e.reason}` : '') +
    (e.model ? ` (model ${e.model}, ${e.workers ?? 0} worker${e.workers === 1 ? '' : 's'}, queue ${e.queue ?? 0}/${e.maxQueue ?? 0})` : ''),
  ack: () => null,
  privmsg: (e) =>
    e.action ? `[pm] * ${e.from} ${e.text}` : `[pm] ${e.from} -> ${e.to}: ${e.text}`,
  joined: (e) =>
    e.self
      ? `*** You joined [${e.room}] (${e.members?.length ?? 0} here: ${(e.members ?? []).map((n) => (e.ops?.includes(n) ? `@${n}` : n)).join(', ')})` +
        (e.topic ? `. Topic: ${e.topic}` : '') +
        (e.modes ? `. Modes: ${e.modes}` : '')
      : `*** ${e.nick} joined [${e.room}]`,
  parted: (e) =>
    e.kickedBy !== undefined ? `*** ${kickLine(e)}` : `*** ${e.self ? 'You' : e.nick} left [${e.room}]` + (e.reason ? ` (${e.reason})` : ''),
  moderation: (e) => `*** ${moderationLine(e, Date.now())}`,
  mode: (e) => `*** ${modeLines(e)}`,
  bans: (e) => bansLines(e, Date.now()).map((l) => `*** ${l}`).join('\n'),
  nick: (e) => (e.self ? `*** You are now known as ${e.nick}` : `*** ${e.old} is now known as ${e.nick}`),
  topic: (e) =>
    e.nick
      ? `*** ${e.nick} set the topic of [${e.room}]: ${e.topic}`
      : `*** Topic of [${e.room}]: ${e.topic || '(none)'}`,
  rooms: (e) =>
    `*** ${e.rooms.length} room${e.rooms.length === 1 ? '' : 's'}:` +
    e.rooms
      .map((r) => `\n***   [${r.room}] ${r.members} here${r.topic ? ` - ${r.topic}` : ''}`)
      .join(''),
  who: (e) => {
    // A logged-in member's nick is proved: marked "+" as IRC marks a voice, so a look-alike
    // stands out; an operator is marked "@", as in IRC.
    const proved = new Set(e.loggedIn ?? []);
    const ops = new Set(e.ops ?? []);
    const marks = [ops.size > 0 ? '@ operator' : '', proved.size > 0 ? '+ logged in' : ''].filter(Boolean);
    return `*** In [${e.room}] (${e.members.length}): ${e.members.map((n) => `${ops.has(n) ? '@' : ''}${proved.has(n) ? '+' : ''}${n}`).join(', ')}` + (marks.length > 0 ? ` (${marks.join(', ')})` : '');
  },
  history: (e) => {
    // Empty, it was asked for (see Frame.replay): nothing said in the room yet, or nothing before what was asked.
    if (e.messages.length === 0) return `*** No ${e.last === 0 ? 'messages yet' : 'earlier messages'} in [${e.room}]`;
    const head = `*** Last ${e.messages.length} message${e.messages.length === 1 ? '' : 's'} in [${e.room}]:`;
    const missed = e.missed > 0 ? `\n*** (${e.missed} older messages are no longer kept)` : '';
    return head + missed + e.messages.map((m) => '\n' + roomEventLine(m)).join('');
  },
  search: (e) => {
    if (e.hits.length === 0) return `*** No messages in [${e.room}] match "${e.q}"`;
    const head = `*** ${e.hits.length}${e.more ? ' newest' : ''} message${e.hits.length === 1 ? '' : 's'} in [${e.room}] match "${e.q}", newest first:`;
    const lines = e.hits.map((h) => '\n' + messageLine({ type: 'message', room: e.room, seq: h.seq, nick: h.nick, time: h.time, text: markedText(h.text, h.marks), ...(h.action ? { action: true as const } : {}) }));
    return head + lines.join('') + (e.more ? `\n*** (more: /search again with "before":${e.hits[e.hits.length - 1]!.seq} in JSON, or narrow the words)` : '');
  },
  help: (e) => '*** Commands:' + e.commands.map((c) => `\n***   ${c.usage.padEnd(22)} ${c.help}`).join(''),
  notice: (e) => `*** ${e.text}`,
  pong: () => '*** pong',
  error: (e) => `! ${e.code}: ${e.message}`,
  bye: (e) => `*** Disconnected: ${e.reason}`,
};

export function renderText(event: ServerEvent): string | null {
  return (TEXT[event.type] as (e: ServerEvent) => string | null)(event);
}

/**
 * Encoding of server events into wire bytes. A Frame is encoded at most once per wire format
 * and the same Buffer is written to every recipient of a broadcast (as ws's Sender.frame()
 * does): serialising per recipient is what makes fan-out slow.
 *
 * Text reaching this module has been sanitised by the hub, so it is written as it is.
 */
import type { EventOf, MessageEvent, ServerEvent } from './events.js';

export type WireMode = 'text' | 'json';

export class Frame {
  private textBytes: Buffer | null | undefined;
  private jsonBytes: Buffer | undefined;
  /** Other transports (WebSocket) cache their own encodings here, keyed by transport. */
  readonly extra = new Map<string, unknown>();

  constructor(readonly event: ServerEvent) {}

  get json(): Buffer {
    return (this.jsonBytes ??= Buffer.from(JSON.stringify(this.event) + '\n'));
  }

  /** null: this event has no text-mode form (an ack, say). */
  get text(): Buffer | null {
    if (this.textBytes === undefined) {
      const s = renderText(this.event);
      this.textBytes = s === null ? null : Buffer.from(s + '\n');
    }
    return this.textBytes;
  }

  bytes(mode: WireMode): Buffer | null {
    return mode === 'json' ? this.json : this.text;
  }
}

export function messageLine(m: MessageEvent): string {
  return m.action ? `[${m.room}] * ${m.nick} ${m.text}` : `[${m.room}] ${m.nick}: ${m.text}`;
}

// Notices start with "***" and errors with "!", so a person (or grep) tells them from the
// "[room] nick: text" of a message at a glance.
const TEXT: { [T in ServerEvent['type']]: (e: EventOf<T>) => string | null } = {
  welcome: (e) =>
    `*** Welcome to roomcast, ${e.nick}! You are in [${e.rooms.join('], [')}]. ` +
    `Type a line and press Enter to talk; /help lists commands.`,
  message: messageLine,
  ack: () => null,
  privmsg: (e) =>
    e.action ? `[pm] * ${e.from} ${e.text}` : `[pm] ${e.from} -> ${e.to}: ${e.text}`,
  joined: (e) =>
    e.self
      ? `*** You joined [${e.room}] (${e.members?.length ?? 0} here: ${(e.members ?? []).join(', ')})` +
        (e.topic ? `. Topic: ${e.topic}` : '')
      : `*** ${e.nick} joined [${e.room}]`,
  parted: (e) =>
    `*** ${e.self ? 'You' : e.nick} left [${e.room}]` + (e.reason ? ` (${e.reason})` : ''),
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
  who: (e) => `*** In [${e.room}] (${e.members.length}): ${e.members.join(', ')}`,
  history: (e) => {
    const head =
      e.messages.length === 0
        ? `*** No earlier messages in [${e.room}]`
        : `*** Last ${e.messages.length} message${e.messages.length === 1 ? '' : 's'} in [${e.room}]:`;
    const missed = e.missed > 0 ? `\n*** (${e.missed} older messages are no longer kept)` : '';
    return head + missed + e.messages.map((m) => '\n' + messageLine(m)).join('');
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

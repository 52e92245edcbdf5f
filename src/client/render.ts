/**
 * What a person sees: server events turned into lines, coloured or plain. Pure functions with
 * no I/O, so the terminal decides where lines go and tests check them directly.
 *
 * Every string that came over the network goes through clean() before any colour is added:
 * the server sanitises too, but a client that prints what it is sent must not depend on the
 * other end for the safety of its user's terminal.
 */
import { bansLines, kickLine, moderationLine, modeLines } from '../protocol/moderation-text.js';
import { Chalk, type ChalkInstance, type ColorSupportLevel } from 'chalk';
import type { Command } from '../protocol/commands.js';
import { markedText } from '../protocol/frame.js';
import type { EventOf, ImageEvent, LabelsEvent, RoomEvent, SearchHit, ServerEvent } from '../protocol/events.js';
import { formatBytes, scorePercent } from '../format/units.js';
import { nickKey } from '../protocol/text.js';
import { shortFingerprint } from '../tls/fingerprint.js';
import type { Trusted } from './trust.js';

export type LineKind = 'chat' | 'notice' | 'error';

export interface Line {
  kind: LineKind;
  text: string;
}

/** The request an event answers, as the chat client reports it. */
export interface Answered {
  command: Command;
  sentAt: number;
}

export interface RenderContext {
  /** Wall clock (ms) for events that carry no time of their own. */
  now: number;
  answered?: Answered;
  /** The nick of the person at this terminal, for lines about their own messages. */
  ownNick?: string;
}

// C0 and C1 controls (ESC among them), DEL, the bidi overrides that reorder a line, and the
// Unicode line separators some terminals honour.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function standIn(ch: string): string {
  const c = ch.charCodeAt(0);
  if (c === 0x09) return ' ';
  if (c < 0x20) return String.fromCharCode(0x2400 + c); // control pictures: ␀ … ␛ …
  if (c === 0x7f) return '\u2421'; // ␡
  return '\ufffd';
}

/** Makes any value from the network safe to print: a string with no control characters. */
export function clean(value: unknown): string {
  const s = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
  return s.replace(UNSAFE, standIn);
}

/** clean() for a message of several lines (a refused certificate's): each line cleaned, the line ends kept. */
export function cleanLines(text: string): string {
  return text.split('\n').map((line) => clean(line)).join('\n');
}

/**
 * Chooses the colour level for a stream. A stream that is not a terminal gets none at all, even
 * with FORCE_COLOR: piped output is read by programs and files, where escapes are noise.
 * NO_COLOR (any non-empty value, per no-color.org) turns colour off on terminals too.
 */
export function colorLevel(stream: { isTTY?: boolean; getColorDepth?: (env?: object) => number }, env: NodeJS.ProcessEnv): ColorSupportLevel {
  if (!stream.isTTY) return 0;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const depth = stream.getColorDepth?.(env) ?? 4;
  return depth >= 24 ? 3 : depth >= 8 ? 2 : depth >= 4 ? 1 : 0;
}

// Red is left out: it means "error" here. The rest are readable on dark and light backgrounds.
export const NICK_PALETTE = [
  'green',
  'yellow',
  'blue',
  'magenta',
  'cyan',
  'greenBright',
  'yellowBright',
  'blueBright',
  'magentaBright',
  'cyanBright',
] as const;

/** FNV-1a over the nick's case-folded form: "Alice" and "alice" are one person, one colour. */
export function nickColorIndex(nick: string): number {
  let h = 0x811c9dc5;
  for (const ch of nickKey(nick)) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % NICK_PALETTE.length;
}

export interface Style {
  readonly level: ColorSupportLevel;
  nick(nick: string): string;
  room(room: string): string;
  time(text: string): string;
  notice(text: string): string;
  error(text: string): string;
  prompt(text: string): string;
  /** A search's matching words. */
  mark(text: string): string;
}

export function createStyle(level: ColorSupportLevel): Style {
  const c: ChalkInstance = new Chalk({ level });
  return {
    level,
    nick: (nick) => c.bold[NICK_PALETTE[nickColorIndex(nick)]](nick),
    room: (room) => c.dim(room),
    time: (text) => c.dim(text),
    notice: (text) => c.dim(text),
    error: (text) => c.red(text),
    prompt: (text) => c.bold(text),
    // Without colours, the plain text wire's *word*.
    mark: (text) => (level === 0 ? `*${text}*` : c.inverse(text)),
  };
}

export const PLAIN: Style = createStyle(0);

/** HH:MM in local time: a chat is read by the people in it, in their own time zone. */
export function clock(time: number): string {
  const d = new Date(Number.isFinite(time) ? time : 0);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

type Render<T extends ServerEvent['type']> = (e: EventOf<T>, ctx: RenderContext, s: Style) => Line[];

const chat = (text: string): Line => ({ kind: 'chat', text });

function stamp(time: number, s: Style): string {
  return s.time(clock(time));
}

export function notice(text: string, time: number, s: Style): Line {
  return { kind: 'notice', text: `${stamp(time, s)} ${s.notice(`-- ${text}`)}` };
}

export function errorLine(text: string, time: number, s: Style): Line {
  return { kind: 'error', text: `${stamp(time, s)} ${s.error(`! ${text}`)}` };
}

/** How the connection is protected, for the line that says it is made: "" in clear text. */
export function tlsNote(trusted: Trusted | null): string {
  if (trusted === null) return '';
  return trusted.how === 'verified' ? ' (TLS, verified certificate)' : ` (TLS, ${shortFingerprint(trusted.fingerprint)})`;
}

function roomTag(room: unknown, s: Style): string {
  return s.room(`[${clean(room)}]`);
}

function nickList(members: unknown): string {
  return Array.isArray(members) ? members.map(clean).join(', ') : '';
}

/** `cleaned`: the text is made safe already (a search hit with its marks). */
function messageLine(m: { room: unknown; nick: unknown; text: unknown; time: unknown; action?: unknown }, s: Style, cleaned = false): Line {
  const nick = s.nick(clean(m.nick));
  const text = cleaned ? String(m.text) : clean(m.text);
  const body = m.action ? `* ${nick} ${text}` : `${nick}: ${text}`;
  return chat(`${stamp(Number(m.time), s)} ${roomTag(m.room, s)} ${body}`);
}

function imageLine(e: ImageEvent, s: Style): Line {
  return chat(
    `${stamp(Number(e.time), s)} ${roomTag(e.room, s)} ${s.nick(clean(e.nick))} posted image #${clean(e.image)} ${clean(e.name)} (${formatBytes(Number(e.size))})`,
  );
}

/** "10:02 [lab] classifier: #42 cat.jpg → tabby 55%, tiger cat 34%": the answer names the post. */
function labelsLine(e: LabelsEvent, s: Style): Line {
  const head = `${stamp(Number(e.time), s)} ${roomTag(e.room, s)} ${s.nick(clean(e.nick))}: #${clean(e.image)} ${clean(e.name)}`;
  if (e.error && typeof e.error === 'object') return chat(`${head} - ${s.error(clean(e.error.message) || clean(e.error.code))}`);
  const labels = Array.isArray(e.labels) ? e.labels : [];
  return chat(`${head} \u2192 ${clean(labels.map((l) => `${clean(l?.label)} ${scorePercent(Number(l?.score))}`).join(', '))}`);
}

/** Largest preview drawn, whatever a server sends: 64 columns, 32 rows. */
const PREVIEW_MAX = 64;

/** Decoded preview pixels, or null when the field is missing or malformed. */
export function previewPixels(preview: unknown): { width: number; height: number; rgb: Buffer } | null {
  if (preview === null || typeof preview !== 'object') return null;
  const { width, height, rgb } = preview as Record<string, unknown>;
  if (!Number.isInteger(width) || !Number.isInteger(height) || typeof rgb !== 'string') return null;
  const w = width as number;
  const h = height as number;
  if (w < 1 || h < 1 || w > PREVIEW_MAX || h > PREVIEW_MAX) return null;
  const bytes = Buffer.from(rgb, 'base64');
  return bytes.length === w * h * 3 ? { width: w, height: h, rgb: bytes } : null;
}

/**
 * A thumbnail drawn with half blocks: each character cell is two pixels, the upper one as the
 * foreground colour of "▀" and the lower one as the background, so pixels come out about
 * square. Only with colour: plain output (a pipe, NO_COLOR) gets no preview and no escapes.
 */
export function renderPreview(preview: unknown, s: Style, indent = '      '): Line[] {
  if (s.level === 0) return [];
  const p = previewPixels(preview);
  if (!p) return [];
  const c = new Chalk({ level: s.level });
  const px = (x: number, y: number): [number, number, number] => {
    const o = (y * p.width + x) * 3;
    return [p.rgb[o]!, p.rgb[o + 1]!, p.rgb[o + 2]!];
  };
  const lines: Line[] = [];
  for (let y = 0; y < p.height; y += 2) {
    let row = '';
    for (let x = 0; x < p.width; x++) {
      const top = c.rgb(...px(x, y));
      // An odd last row has no lower pixel: the terminal's own background shows there.
      row += y + 1 < p.height ? top.bgRgb(...px(x, y + 1))('\u2580') : top('\u2580');
    }
    lines.push(chat(indent + row));
  }
  return lines;
}

/** Any event a room's history can hold. */
function roomEventLine(e: RoomEvent, s: Style): Line {
  if (e.type === 'image') return imageLine(e, s);
  if (e.type === 'labels') return labelsLine(e, s);
  return messageLine(e, s);
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const RENDER: { [T in ServerEvent['type']]: Render<T> } = {
  welcome: (e, ctx, s) => [notice(`connected to ${clean(e.server)} ${clean(e.version)} as ${clean(e.nick)}`, ctx.now, s)],

  message: (e, _ctx, s) => [messageLine(e, s)],

  image: (e, _ctx, s) => [imageLine(e, s)],

  // A live answer comes with its preview; history replays only the line, or a join would scroll
  // a dozen rows per photo past.
  labels: (e, _ctx, s) => [labelsLine(e, s), ...(e.error ? [] : renderPreview(e.preview, s))],

  // "the classifier bot is ready: 2 of 2 workers ready (mobilenetv2-12-int8.onnx); queue 0/32"
  bot: (e, ctx, s) => {
    const reason = clean(e.reason);
    const details = [
      e.model !== undefined && !reason.includes(clean(e.model)) ? `model ${clean(e.model)}` : '',
      e.queue !== undefined ? `queue ${clean(e.queue)}/${clean(e.maxQueue ?? '?')}` : '',
    ].filter(Boolean);
    const who = nickKey(clean(e.nick)) === 'classifier' ? 'the classifier bot' : `the classifier bot (${clean(e.nick)})`;
    return [notice(`${who} is ${clean(e.state)}${reason ? `: ${reason}` : ''}${details.length ? `; ${details.join(', ')}` : ''}`, ctx.now, s)];
  },

  // The server does not echo our own messages and posts; its ack says they were taken, and where.
  ack: (e, ctx, s) => {
    const cmd = ctx.answered?.command;
    const nick = ctx.ownNick ?? 'me';
    if (cmd?.type === 'image') {
      const post: ImageEvent = { type: 'image', room: e.room, seq: e.seq, nick, image: e.image as number, name: cmd.name, size: cmd.size, time: e.time };
      return [imageLine(post, s)];
    }
    if (cmd?.type !== 'message') return [];
    return [messageLine({ room: e.room, nick, text: cmd.text, time: e.time, action: cmd.action }, s)];
  },

  privmsg: (e, _ctx, s) => {
    const from = s.nick(clean(e.from));
    const body = e.action ? `* ${from} ${clean(e.text)}` : `${from} -> ${s.nick(clean(e.to))}: ${clean(e.text)}`;
    return [chat(`${stamp(e.time, s)} ${s.room('[pm]')} ${body}`)];
  },

  joined: (e, ctx, s) => {
    if (!e.self) return [notice(`${clean(e.nick)} joined [${clean(e.room)}]`, ctx.now, s)];
    const members = Array.isArray(e.members) ? e.members : [];
    const lines = [notice(`you are in [${clean(e.room)}]: ${members.length} here (${nickList(members)})`, ctx.now, s)];
    if (e.topic) lines.push(notice(`topic of [${clean(e.room)}]: ${clean(e.topic)}`, ctx.now, s));
    return lines;
  },

  parted: (e, ctx, s) => {
    if (e.kickedBy !== undefined) return [notice(kickLine(e, clean), ctx.now, s)];
    // A quit's reason is "quit" or "quit: REASON" (or what cut the connection): say it once.
    const reason = e.quit ? clean(e.reason).replace(/^quit(: )?/, '') : clean(e.reason);
    const why = reason ? ` (${reason})` : '';
    if (e.self) return [notice(`you left [${clean(e.room)}]${why}`, ctx.now, s)];
    return [notice(`${clean(e.nick)} ${e.quit ? 'quit' : 'left'} [${clean(e.room)}]${why}`, ctx.now, s)];
  },

  moderation: (e, ctx, s) => [notice(moderationLine(e, ctx.now, clean), ctx.now, s)],

  mode: (e, ctx, s) => [notice(modeLines(e, clean), ctx.now, s)],

  bans: (e, ctx, s) => bansLines(e, ctx.now, clean).map((l) => notice(l, ctx.now, s)),

  nick: (e, ctx, s) => [
    notice(e.self ? `you are now known as ${clean(e.nick)}` : `${clean(e.old)} is now known as ${clean(e.nick)}`, ctx.now, s),
  ],

  topic: (e, ctx, s) => [
    notice(
      e.nick
        ? `${clean(e.nick)} set the topic of [${clean(e.room)}]: ${clean(e.topic)}`
        : `topic of [${clean(e.room)}]: ${clean(e.topic) || '(none)'}`,
      ctx.now,
      s,
    ),
  ],

  rooms: (e, ctx, s) => {
    const rooms = Array.isArray(e.rooms) ? e.rooms : [];
    return [
      notice(`${count(rooms.length, 'room')}:`, ctx.now, s),
      ...rooms.map((r) =>
        notice(`  [${clean(r.room)}] ${clean(r.members)} here${r.topic ? ` - ${clean(r.topic)}` : ''}`, ctx.now, s),
      ),
    ];
  },

  who: (e, ctx, s) => {
    const members = Array.isArray(e.members) ? e.members : [];
    const topic = e.topic ? ` - topic: ${clean(e.topic)}` : '';
    const ops = new Set(Array.isArray(e.ops) ? e.ops : []);
    const proved = new Set(Array.isArray(e.loggedIn) ? e.loggedIn : []);
    const shown = members.map((n) => `${ops.has(n) ? '@' : ''}${proved.has(n) ? '+' : ''}${clean(n)}`).join(', ');
    return [notice(`in [${clean(e.room)}] (${members.length}): ${shown}${topic}`, ctx.now, s)];
  },

  history: (e, ctx, s) => {
    const messages = Array.isArray(e.messages) ? e.messages : [];
    const cmd = ctx.answered?.command;
    const asked = cmd?.type === 'history';
    // A join with "after" is a reconnect filling its gap: only what is new is worth a line.
    const gapFill = !asked && cmd?.type === 'join' && cmd.after !== undefined;
    const lines: Line[] = [];
    if (gapFill) {
      if (messages.length > 0) lines.push(notice(`${count(messages.length, 'new message')} in [${clean(e.room)}]:`, ctx.now, s));
      if (e.missed > 0) lines.push(notice(`${count(e.missed, 'message')} in [${clean(e.room)}] were missed: the server no longer keeps them`, ctx.now, s));
    } else if (messages.length > 0) {
      lines.push(notice(`last ${count(messages.length, 'message')} in [${clean(e.room)}]:`, ctx.now, s));
      if (asked && e.missed > 0) lines.push(notice(`(${count(e.missed, 'older message')} no longer kept)`, ctx.now, s));
    } else if (asked) {
      lines.push(notice(`no earlier messages in [${clean(e.room)}]`, ctx.now, s));
    }
    for (const m of messages) lines.push(roomEventLine(m, s));
    return lines;
  },

  search: (e, ctx, s) => {
    const hits = Array.isArray(e.hits) ? e.hits : [];
    const q = clean(e.q);
    if (hits.length === 0) return [notice(`no messages in [${clean(e.room)}] match "${q}"`, ctx.now, s)];
    const head = notice(`${count(hits.length, 'message')} in [${clean(e.room)}] match "${q}", newest first${e.more ? ' (there are more: narrow the words)' : ''}:`, ctx.now, s);
    // Marks are offsets into the text as sent: cut first, then clean each piece.
    const body = (h: SearchHit): string =>
      markedText(typeof h.text === 'string' ? h.text : '', Array.isArray(h.marks) ? h.marks : [], (w) => s.mark(clean(w)), clean);
    return [head, ...hits.map((h) => messageLine({ room: e.room, nick: h.nick, time: h.time, action: h.action, text: body(h) }, s, true))];
  },

  help: (e, ctx, s) => renderHelp(withClientCommands(Array.isArray(e.commands) ? e.commands : []), ctx.now, s),

  notice: (e, ctx, s) => [notice(clean(e.text), ctx.now, s)],

  pong: (_e, ctx, s) => {
    const rtt = ctx.answered ? ` in ${Math.max(0, Math.round(ctx.now - ctx.answered.sentAt))} ms` : '';
    return [notice(`pong${rtt}`, ctx.now, s)];
  },

  error: (e, ctx, s) => [errorLine(clean(e.message) || clean(e.code), ctx.now, s)],

  // A bye for our own quit needs no line; any other is the server saying why it hung up.
  bye: (e, ctx, s) => (e.code === 'QUIT' ? [] : [notice(`the server closed the connection: ${clean(e.reason)}`, ctx.now, s)]),
};

/** Commands the terminal client carries out itself; /help lists them with the server's. */
export const CLIENT_COMMANDS: readonly { usage: string; help: string }[] = [
  { usage: '/image PATH', help: 'post an image file; the classifier bot answers with what it sees' },
];

/** The server's commands with the client's own, before /help so that stays near the end. */
export function withClientCommands(commands: { usage: string; help: string }[]): { usage: string; help: string }[] {
  const extra = CLIENT_COMMANDS.filter((c) => !commands.some((k) => clean(k?.usage).split(' ')[0] === c.usage.split(' ')[0]));
  const at = commands.findIndex((c) => clean(c?.usage).startsWith('/help'));
  return at === -1 ? [...commands, ...extra] : [...commands.slice(0, at), ...extra, ...commands.slice(at)];
}

export function renderHelp(commands: { usage: string; help: string }[], now: number, s: Style): Line[] {
  const width = Math.max(0, ...commands.map((c) => clean(c.usage).length));
  return [
    notice('commands:', now, s),
    ...commands.map((c) => notice(`  ${clean(c.usage).padEnd(width)}  ${clean(c.help)}`, now, s)),
    notice('a line without "/" is said in the current room; "//" starts one with a slash', now, s),
    notice('Tab completes commands, nicks, rooms and the file after /image; Up/Down recall earlier lines', now, s),
  ];
}

/** The lines for one event; none for events with nothing to show (or of a type not known yet). */
export function renderEvent(event: ServerEvent, ctx: RenderContext, s: Style = PLAIN): Line[] {
  const render = RENDER[event.type] as Render<ServerEvent['type']> | undefined;
  return render ? render(event as never, ctx, s) : [];
}

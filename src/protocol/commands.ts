/**
 * The command table: every command a client can give, in both wire formats, declared once.
 * Text mode (`/join dev`) and JSON mode (`{"type":"join","room":"dev"}`) both parse into the
 * same Command, checked against the same argument list, so the hub sees one shape. Strings are
 * passed on as sent: the hub neutralises what enters a room (and what an error shows back), so
 * that no transport can skip it; only the errors made here are neutralised here.
 */
import { RoomcastError } from './errors.js';
import type { RequestId } from './events.js';
import { isValidNick, sanitize } from './text.js';

type Kind = 'word' | 'text' | 'int' | 'bool' | 'words';

interface Arg {
  name: string;
  kind: Kind;
  optional?: boolean;
  /** Sent by programs only: a text-mode line never sets it. */
  json?: true;
}

export interface CommandSpec {
  type: Command['type'];
  /** Names in text mode; the first is the one /help shows. None: JSON only. */
  words: string[];
  args: Arg[];
  /** Fields a text-mode word sets by itself (/me is a message with action). */
  fixed?: Record<string, unknown>;
  usage: string;
  help: string;
}

export type Command = { id?: RequestId } & (
  | { type: 'hello'; nick?: string; rooms?: string[]; serverPassword?: string; password?: string }
  | { type: 'register'; password: string }
  | { type: 'login'; nick: string; password: string }
  | { type: 'pass'; password: string }
  | { type: 'nick'; nick: string }
  | { type: 'join'; room: string; key?: string; after?: number; history?: number; epoch?: string }
  | { type: 'part'; room?: string; reason?: string }
  | { type: 'message'; room?: string; text: string; action?: boolean }
  | { type: 'privmsg'; to: string; text: string; action?: boolean }
  | { type: 'rooms' }
  | { type: 'who'; room?: string }
  | { type: 'topic'; room?: string; topic?: string }
  | { type: 'history'; room?: string; after?: number; limit?: number }
  | { type: 'search'; room?: string; q: string; limit?: number; before?: number }
  | { type: 'help' }
  | { type: 'ping' }
  | { type: 'quit'; reason?: string }
  | { type: 'bot' }
  | { type: 'password'; password: string }
  | { type: 'op'; nick: string; room?: string }
  | { type: 'deop'; nick: string; room?: string }
  | { type: 'kick'; nick: string; reason?: string; room?: string }
  | { type: 'ban'; mask: string; reason?: string; room?: string }
  | { type: 'unban'; mask: string; room?: string }
  | { type: 'bans'; room?: string }
  | { type: 'mute'; nick: string; minutes?: number; room?: string }
  | { type: 'unmute'; nick: string; room?: string }
  | { type: 'invite'; nick: string; room?: string }
  | { type: 'mode'; modes?: string; room?: string }
  | { type: 'key'; key: string; room?: string }
  /** JSON only: the header line; `size` raw bytes follow it, and the transport fills `data`. */
  | { type: 'image'; room?: string; name: string; size: number; data?: Buffer }
);

const opt = (name: string, kind: Kind): Arg => ({ name, kind, optional: true });
const req = (name: string, kind: Kind): Arg => ({ name, kind });
const json = (name: string, kind: Kind): Arg => ({ name, kind, optional: true, json: true });
/** The room an operator command acts on: the current one unless a program names another. */
const inRoom = json('room', 'word');

export const COMMANDS: CommandSpec[] = [
  { type: 'hello', words: [], args: [opt('nick', 'word'), opt('rooms', 'words'), opt('serverPassword', 'text'), opt('password', 'text')], usage: '', help: '' },
  { type: 'nick', words: ['nick'], args: [req('nick', 'word')], usage: '/nick NAME', help: 'change your nick' },
  {
    type: 'join',
    words: ['join', 'j'],
    args: [req('room', 'word'), opt('key', 'word'), json('after', 'int'), json('history', 'int'), json('epoch', 'word')],
    usage: '/join ROOM [KEY]',
    help: 'join a room (created if new) and make it your current room; KEY: the room\'s key, if it has one',
  },
  {
    type: 'part',
    words: ['part', 'leave'],
    args: [opt('room', 'word'), opt('reason', 'text')],
    usage: '/part [ROOM]',
    help: 'leave a room (default: the current one)',
  },
  { type: 'rooms', words: ['rooms', 'list'], args: [], usage: '/rooms', help: 'list rooms with member counts' },
  { type: 'who', words: ['who', 'names'], args: [opt('room', 'word')], usage: '/who [ROOM]', help: 'who is in a room' },
  {
    type: 'privmsg',
    words: ['msg', 'm'],
    args: [req('to', 'word'), req('text', 'text'), opt('action', 'bool')],
    usage: '/msg NICK TEXT',
    help: 'send a private message',
  },
  {
    type: 'message',
    words: ['me'],
    args: [req('text', 'text')],
    fixed: { action: true },
    usage: '/me ACTION',
    help: 'say what you are doing (* nick waves)',
  },
  {
    type: 'message',
    words: [],
    args: [opt('room', 'word'), req('text', 'text'), opt('action', 'bool')],
    usage: '',
    help: '',
  },
  {
    type: 'topic',
    words: ['topic'],
    args: [opt('topic', 'text'), opt('room', 'word')],
    usage: '/topic [TEXT]',
    help: 'show or set the topic of the current room',
  },
  {
    type: 'history',
    words: ['history'],
    args: [opt('limit', 'int'), opt('room', 'word'), opt('after', 'int')],
    usage: '/history [N]',
    help: 'show the last N messages of the current room',
  },
  {
    type: 'search',
    words: ['search'],
    args: [req('q', 'text'), opt('room', 'word'), opt('limit', 'int'), opt('before', 'int')],
    usage: '/search WORDS',
    help: 'find the messages of the current room that hold every word, newest first (word* for a prefix)',
  },
  { type: 'bot', words: ['bot'], args: [], usage: '/bot', help: 'the classifier bot: is it ready, busy or off' },
  { type: 'image', words: [], args: [opt('room', 'word'), req('name', 'word'), req('size', 'int')], usage: '', help: '' },
  { type: 'help', words: ['help', '?'], args: [], usage: '/help', help: 'this list' },
  { type: 'ping', words: ['ping'], args: [], usage: '/ping', help: 'check that the server answers' },
  { type: 'register', words: ['register'], args: [req('password', 'text')], usage: '/register PASSWORD', help: 'register your nick: nobody else can take it, and /login NICK PASSWORD proves it is you' },
  { type: 'login', words: ['login'], args: [req('nick', 'word'), req('password', 'text')], usage: '/login NICK PASSWORD', help: 'log in to a registered nick (and take it)' },
  { type: 'password', words: ['password'], args: [req('password', 'text')], usage: '/password NEW', help: "change the password of the account you are logged in to" },
  { type: 'op', words: ['op'], args: [req('nick', 'word'), inRoom], usage: '/op NICK', help: 'operators: make a member an operator of the current room' },
  { type: 'deop', words: ['deop'], args: [req('nick', 'word'), inRoom], usage: '/deop NICK', help: "operators: take a member's operator status away" },
  { type: 'kick', words: ['kick'], args: [req('nick', 'word'), opt('reason', 'text'), inRoom], usage: '/kick NICK [REASON]', help: 'operators: put a member out of the room (they may come back)' },
  { type: 'ban', words: ['ban'], args: [req('mask', 'word'), opt('reason', 'text'), inRoom], usage: '/ban NICK|MASK [REASON]', help: "operators: keep someone out (a member's address and account; or nick:GLOB, account:NAME, address:IP[/BITS])" },
  { type: 'unban', words: ['unban'], args: [req('mask', 'word'), inRoom], usage: '/unban MASK', help: 'operators: lift a ban (as /bans lists it)' },
  { type: 'bans', words: ['bans'], args: [inRoom], usage: '/bans', help: "the room's bans and mutes, with who set them" },
  { type: 'mute', words: ['mute'], args: [req('nick', 'word'), opt('minutes', 'int'), inRoom], usage: '/mute NICK [MINUTES]', help: 'operators: the member may read but not speak (until /unmute, or for MINUTES)' },
  { type: 'unmute', words: ['unmute'], args: [req('nick', 'word'), inRoom], usage: '/unmute NICK', help: 'operators: let a muted member speak again' },
  { type: 'invite', words: ['invite'], args: [req('nick', 'word'), inRoom], usage: '/invite NICK', help: 'ask someone into the room (past +i and the key)' },
  { type: 'mode', words: ['mode'], args: [opt('modes', 'word'), inRoom], usage: '/mode [+i|-i|+t|-t|-k]', help: "the room's modes: +i invite only, +t only operators set the topic, -k drop the key" },
  { type: 'key', words: ['key'], args: [req('key', 'word'), inRoom], usage: '/key SECRET', help: 'operators: joining the room needs SECRET from now on (/mode -k drops it)' },
  { type: 'quit', words: ['quit', 'exit'], args: [opt('reason', 'text')], usage: '/quit [REASON]', help: 'disconnect' },
  { type: 'pass', words: ['pass'], args: [req('password', 'text')], usage: '/pass PASSWORD', help: "give the server's password (before anything else, on a server that has one)" },
];

const BY_WORD = new Map<string, CommandSpec>();
const BY_TYPE = new Map<string, CommandSpec>();
for (const spec of COMMANDS) {
  for (const w of spec.words) BY_WORD.set(w, spec);
  // The JSON form of "message" is the full one (room, action), not /me's.
  if (!BY_TYPE.has(spec.type) || spec.words.length === 0) BY_TYPE.set(spec.type, spec);
}

export const HELP = COMMANDS.filter((c) => c.usage).map(({ usage, help }) => ({ usage, help }));

const INT_RE = /^-?\d{1,15}$/;

/**
 * The error for a nick with a space in it ("/nick a b", {"nick":"a b"}): NICK_INVALID like any
 * other bad nick, but saying what is wrong, since a space is the likeliest slip and the general
 * rule does not mention it.
 */
export function nickWithSpaces(given: string): RoomcastError {
  const nick = sanitize(given);
  const shown = nick.slice(0, 40);
  const err = new RoomcastError('NICK_INVALID', shown);
  const joined = nick.trim().replace(/\s+/gu, '_');
  const example = isValidNick(joined) ? ` such as ${joined}` : '';
  err.message = `"${shown}" is not a valid nick: nicks have no spaces. Pick one word${example}: 1-24 letters, digits, "_" or "-", starting with a letter or "_".`;
  return err;
}

// A space a person typed. Line breaks and other control characters are no spaces: the hub
// shows them as control pictures, in the general NICK_INVALID.
const SPACE_RE = /[^\S\n\v\f\r]/u;

/**
 * Parses one text-mode line. Returns null for a blank line (nc users press Enter by habit).
 * A line that does not start with "/" is a message to the current room; "//" escapes a
 * message that starts with a slash.
 */
export function parseTextLine(line: string): Command | null {
  if (line.trim() === '') return null;
  if (!line.startsWith('/') || line.startsWith('//')) {
    return { type: 'message', text: line.startsWith('//') ? line.slice(1) : line };
  }
  const m = /^\/(\S+)\s*(.*)$/s.exec(line);
  if (m === null) throw new RoomcastError('UNKNOWN_COMMAND'); // "/" alone, or "/ text"
  const word = m[1].toLowerCase();
  const spec = BY_WORD.get(word);
  if (!spec) throw new RoomcastError('UNKNOWN_COMMAND', sanitize(word).slice(0, 32));
  const out: Record<string, unknown> = { type: spec.type, ...spec.fixed };
  let rest = m[2];
  // Text mode takes the arguments up to the first "text" one, in order; JSON-only ones
  // (after, history, epoch, an operator command's room) are never read from a line.
  for (const arg of spec.args) {
    if (arg.json) continue;
    if (arg.kind === 'text') {
      if (rest.trim() !== '') out[arg.name] = rest;
      else if (!arg.optional) throw new RoomcastError('USAGE', spec.usage);
      break;
    }
    const w = /^(\S+)\s*(.*)$/s.exec(rest);
    if (!w) {
      if (!arg.optional) throw new RoomcastError('USAGE', spec.usage);
      break;
    }
    if (arg.kind === 'int') {
      if (!INT_RE.test(w[1])) throw new RoomcastError('USAGE', spec.usage);
      out[arg.name] = Number(w[1]);
    } else {
      out[arg.name] = w[1];
    }
    rest = w[2];
  }
  // A nick is one word: "/nick a b" is refused, not quietly taken as "a".
  if (spec.type === 'nick' && rest.trim() !== '') throw nickWithSpaces(`${out.nick as string} ${rest.trim()}`);
  return out as Command;
}

function checkField(arg: Arg, v: unknown): unknown {
  switch (arg.kind) {
    case 'word':
    case 'text':
      if (typeof v === 'string') return v;
      break;
    case 'int':
      if (Number.isSafeInteger(v)) return v;
      break;
    case 'bool':
      if (typeof v === 'boolean') return v;
      break;
    case 'words':
      if (Array.isArray(v) && v.length <= 64 && v.every((x) => typeof x === 'string'))
        return [...v];
      break;
  }
  const want = { word: 'a string', text: 'a string', int: 'an integer', bool: 'true or false', words: 'a list of strings' };
  throw new RoomcastError('BAD_MESSAGE', `"${arg.name}" must be ${want[arg.kind]}`);
}

// A message command as clients write it: JSON.stringify of {type, text, room?, id?} (the
// terminal client), {type, room, text, id, action?} (the web page) or {type, text} (programs),
// with strings that need no escape. Why: it is nearly every line a busy client sends, and
// JSON.parse and the table's generic checks are a visible share of the server's time per
// message (docs/performance.md). Anything else (spaces, another key order, escapes, a key
// twice) goes the general way, and a test holds the two to the same result.

// A JSON string that JSON.parse would return as it is: no escape, no raw C0 control (which
// JSON does not allow).
const SAFE_STRING = String.raw`"([^"\\\u0000-\u001f]*)"`;
const MESSAGE_LINE = new RegExp(
  String.raw`^\{"type":"message"(?:,"room":${SAFE_STRING})?,"text":${SAFE_STRING}(?:,"room":${SAFE_STRING})?` +
    String.raw`(?:,"id":(?:(-?(?:0|[1-9]\d{0,14}))|"([^"\\\u0000-\u001f]{0,64})"))?(?:,"action":(true|false))?\}$`,
);

/** The message command of a line in the common form above, or null: parse it with parseJsonLine(). */
export function plainMessage(line: string): Command | null {
  const m = MESSAGE_LINE.exec(line);
  if (m === null) return null;
  if (m[1] !== undefined && m[3] !== undefined) return null; // room twice: the last wins, as JSON.parse has it
  // Fields set in the order commandFields() sets them, so the hub sees one shape of object.
  const cmd: Record<string, unknown> = { type: 'message' };
  if (m[4] !== undefined) cmd.id = Number(m[4]);
  else if (m[5] !== undefined) cmd.id = m[5];
  const room = m[1] ?? m[3];
  if (room !== undefined) cmd.room = room;
  cmd.text = m[2];
  if (m[6] !== undefined) cmd.action = m[6] === 'true';
  return cmd as Command;
}

/** Parses one JSON-mode line into a Command, or throws a RoomcastError with a stable code. */
export function parseJsonLine(line: string): Command {
  const fast = plainMessage(line);
  if (fast !== null) return fast;
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    throw new RoomcastError('BAD_JSON');
  }
  return commandFromObject(obj);
}

export function commandFromObject(obj: unknown): Command {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new RoomcastError('BAD_JSON');
  const o = obj as Record<string, unknown>;
  if (o.id !== undefined && !((typeof o.id === 'string' && o.id.length <= 64) || Number.isSafeInteger(o.id)))
    throw new RoomcastError('BAD_MESSAGE', '"id" must be a string of at most 64 characters or an integer');
  try {
    return commandFields(o);
  } catch (err) {
    // The error a request causes carries the request's id, like any other reply.
    if (err instanceof RoomcastError && o.id !== undefined) err.id = o.id as RequestId;
    throw err;
  }
}

function commandFields(o: Record<string, unknown>): Command {
  if (typeof o.type !== 'string') throw new RoomcastError('BAD_MESSAGE', '"type" must be a string');
  const spec = BY_TYPE.get(o.type);
  if (!spec) throw new RoomcastError('UNKNOWN_TYPE', sanitize(o.type).slice(0, 32));
  const out: Record<string, unknown> = { type: spec.type };
  if (o.id !== undefined) out.id = o.id;
  for (const arg of spec.args) {
    const v = o[arg.name];
    if (v === undefined || v === null) {
      if (!arg.optional) throw new RoomcastError('BAD_MESSAGE', `"${arg.name}" is required`);
      continue;
    }
    out[arg.name] = checkField(arg, v);
  }
  if ((out.type === 'nick' || out.type === 'hello') && typeof out.nick === 'string' && SPACE_RE.test(out.nick)) throw nickWithSpaces(out.nick);
  return out as Command;
}

/** True when a line is a JSON hello: what switches a fresh connection to JSON mode. */
export function isHelloLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    const o = JSON.parse(line) as { type?: unknown };
    return o !== null && typeof o === 'object' && o.type === 'hello';
  } catch {
    return false;
  }
}

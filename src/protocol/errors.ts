/**
 * Every error a client can see, defined once. The code is the stable part that programs match
 * on (see docs/protocol.md); the message is for people and says what to do next.
 */
import { IMAGE_FORMAT_LIST } from './image-format.js';

export const ERRORS = {
  BAD_JSON: 'That line is not valid JSON. Send one JSON object per line.',
  BAD_MESSAGE: 'That message is missing a field or has one of the wrong type: {detail}.',
  UNKNOWN_TYPE: 'Unknown message type "{detail}". See docs/protocol.md for the list.',
  UNKNOWN_COMMAND: 'Unknown command "/{detail}". Type /help for the list of commands.',
  USAGE: 'Usage: {detail}',
  LINE_TOO_LONG: 'That line is longer than {detail} bytes and was dropped. Send shorter lines.',
  FRAME_TOO_LARGE: 'That frame is larger than {detail} bytes and was dropped. Send smaller frames.',
  NICK_INVALID:
    '"{detail}" is not a valid nick: use 1-24 letters, digits, "_" or "-", starting with a letter or "_".',
  NICK_TAKEN: 'The nick "{detail}" is already in use. Pick another with /nick NAME.',
  NICK_RESERVED: 'The nick "{detail}" is reserved. Pick another with /nick NAME.',
  NICK_MIXED_SCRIPTS:
    'The nick {detail}, which can make it look like someone else\'s. Use the letters of one script (or of scripts written together, such as Japanese).',
  ROOM_INVALID:
    '"{detail}" is not a valid room name: use 1-32 letters, digits, "_", "-" or ".".',
  NO_SUCH_ROOM: 'There is no room "{detail}". /rooms lists them; /join NAME creates one.',
  NOT_IN_ROOM: 'You are not in room "{detail}". Join it first with /join {detail}.',
  NO_ROOM: 'You are not in any room. Join one with /join NAME.',
  NO_SUCH_NICK: 'Nobody is called "{detail}" here. /who lists the people in a room.',
  TOO_MANY_ROOMS: 'You are in {detail} rooms already, the most allowed. /part one first.',
  EMPTY_MESSAGE: 'Empty messages are not sent.',
  TEXT_TOO_LONG: 'That text is longer than {detail} characters. Split it into shorter messages.',
  NOT_REGISTERED: 'Say hello first: the first line must be {"type":"hello","nick":"..."}.',
  ALREADY_REGISTERED: 'You are already registered; use {"type":"nick"} to change your nick.',
  TOO_MANY_CONNECTIONS: 'The server is full ({detail}). Try again later.',
  TOO_MANY_FROM_ADDRESS:
    'Too many connections from your address ({detail}). Close one and try again.',
  REGISTRATION_TIMEOUT: 'No successful hello came in {detail}; closing the connection. Connect again and send a hello first.',
  IMAGE_TOO_LARGE: 'That image is too large ({detail}). Shrink it or send a smaller one.',
  IMAGE_FAR_TOO_LARGE: 'An image of {detail} is far beyond what this server takes; closing the connection.',
  NOT_AN_IMAGE: `{detail} is not a ${IMAGE_FORMAT_LIST} image, so it was not posted. Send a picture in one of those formats.`,
  SENDQ_EXCEEDED: 'SendQ exceeded: you were not reading fast enough ({detail} bytes queued).',
  LINE_NEVER_ENDS: 'A line kept going past {detail} bytes without an end; closing the connection.',
  SHUTTING_DOWN: 'The server is shutting down. Reconnect when it is back.',
  SEARCH_EMPTY: 'Say what to look for: /search WORDS finds the messages that hold every word (word* matches words that start so).',
  SEARCH_UNAVAILABLE: 'The search could not be run ({detail}); the chat goes on. Try again later.',
  HISTORY_UNAVAILABLE: 'The history could not be read ({detail}); the chat goes on. Ask again with /history later.',
  SEARCH_OFF: 'This server has no search: {detail}. /history and the web page still show the room.',
  CLUSTER_UNAVAILABLE: 'That was not sent: the server could not reach the rest of its cluster ({detail}). It retries by itself; send it again in a moment.',
  PASSWORD_REQUIRED:
    'This server needs a password: type /pass PASSWORD (JSON: "serverPassword" in the hello; HTTP: Basic or Bearer authorization). Ask whoever runs it.',
  PASSWORD_WRONG: 'That is not the server password. Try again, or ask whoever runs the server.',
  LOCKED_OUT: 'Too many wrong passwords lately: wait {detail} s before the next try.',
  NICK_REGISTERED: 'The nick "{detail}" is registered: log in with /login {detail} PASSWORD (JSON: "password" in the hello), or pick another nick.',
  LOGIN_FAILED: 'Wrong nick or password. Try again; after a few wrong tries each one makes you wait longer.',
  PASSWORD_WEAK: 'That password is too short: use at least {detail} characters (a few words make a good one).',
  REGISTER_GUEST: 'Pick a nick of your own first (/nick NAME): a guest nick cannot be registered.',
  NOT_LOGGED_IN: 'Log in first: /login NICK PASSWORD (or /register PASSWORD to make your nick an account).',
  RULES_UNAVAILABLE: "The room's rules (its bans, its key) could not be read ({detail}), so it cannot be joined for now. Try again in a moment.",
  NOT_OPERATOR: 'Only an operator of [{detail}] can do that. /who shows its operators (marked @); ask one of them.',
  PROTECTED: '{detail} is a server operator: a room operator cannot do that to them.',
  KICK_SELF: 'You cannot kick yourself out of [{detail}]: /part leaves the room.',
  BANNED: 'You are banned from [{detail}]. Ask one of its operators if you think that is a mistake.',
  MUTED: 'You are muted in {detail}: you can read but not speak there. Ask one of its operators if you think that is a mistake.',
  INVITE_ONLY: '[{detail}] is invite-only: ask one of its operators for an /invite.',
  ROOM_KEY_REQUIRED: '[{detail}] needs a key: /join {detail} KEY (JSON: "key" in the join). Ask one of its members for it.',
  ROOM_KEY_WRONG: 'That is not the key of [{detail}]. Try again; after a few wrong tries each one makes you wait longer.',
  TOPIC_LOCKED: 'Only an operator can set the topic of [{detail}] (mode +t).',
  BAD_MASK: '"{detail}" is not a ban mask: give a member\'s nick, nick:GLOB, account:NAME or address:IP[/BITS].',
  TOO_MANY_BANS: 'The room has {detail} bans, the most it keeps: /unban some first (/bans lists them).',
  NOT_MUTED: '"{detail}" is not muted here. /bans lists the mutes.',
  NO_SUCH_BAN: 'There is no ban "{detail}" here. /bans lists them.',
  BAD_MODE: '"{detail}" is not a mode change: use +i or -i (invite only), +t or -t (topic lock), -k (drop the key).',
  INTERNAL: 'Something went wrong on the server ({detail}); the server carries on.',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface ProtocolError {
  code: ErrorCode;
  message: string;
}

export function protocolError(code: ErrorCode, detail: string | number = ''): ProtocolError {
  return { code, message: ERRORS[code].replaceAll('{detail}', String(detail)) };
}

/** Thrown inside command handling; caught at the dispatch boundary and sent to the client. */
export class RoomcastError extends Error {
  readonly code: ErrorCode;
  /** The id of the JSON request that caused it, when it had a valid one. */
  id?: string | number;
  constructor(code: ErrorCode, detail: string | number = '') {
    const { message } = protocolError(code, detail);
    super(message);
    this.code = code;
  }
}

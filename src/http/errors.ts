/**
 * Every error the HTTP API answers with, defined once: a stable code that programs match on,
 * the HTTP status, and a message for people that says what to do next. The body is always
 * {"error":{"code":"...","message":"..."}}.
 *
 * Codes the chat protocol has too (ROOM_INVALID, NICK_TAKEN, BAD_JSON, ...) keep its code, so
 * a client handles them alike over any transport; the table gives them their HTTP status, and
 * a message of its own where the chat one speaks of slash commands.
 */
import { protocolError, RoomcastError, type ErrorCode, type ProtocolError } from '../protocol/errors.js';

const HTTP_ONLY = {
  ROOM_CLOSED: [403, '[{detail}] has a key or is invite-only: over HTTP its history, search and posts need an API token (roomcast token create), the server password or an account (Basic).'],
  NOT_FOUND: [404, 'There is nothing at {detail}. The API is under /api/ (see docs/protocol.md).'],
  METHOD_NOT_ALLOWED: [405, '{detail}'],
  BAD_PATH: [400, 'That path is not allowed: {detail}.'],
  BAD_QUERY: [400, 'Bad query parameter: {detail}.'],
  BODY_TOO_LARGE: [413, 'The request body is larger than {detail} bytes, the most this path takes.'],
  UNSUPPORTED_MEDIA_TYPE: [415, '{detail}'],
  BAD_MULTIPART: [400, 'The multipart/form-data body could not be read: {detail}.'],
  NO_IMAGE: [400, 'There is no image in the request: {detail}.'],
  NO_SUCH_TASK: [404, 'There is no task "{detail}": it never existed, or it finished long enough ago to be forgotten.'],
  NO_SUCH_IMAGE: [404, 'There is no image "{detail}" here: only the most recent images are kept.'],
  FORBIDDEN_ORIGIN: [403, 'Requests from the web page at {detail} are not allowed here. Start the server with --origin {detail} to allow them.'],
  UPGRADE_REQUIRED: [426, 'This is the WebSocket endpoint: connect to it with a WebSocket client.'],
  WEBSOCKET_VERSION: [426, 'This server speaks WebSocket version 13 (RFC 6455); the client asked for version {detail}.'],
  BAD_WEBSOCKET_HANDSHAKE: [400, 'That is not a valid WebSocket handshake: {detail}. Connect with a WebSocket client.'],
  BAD_REQUEST: [400, 'That request could not be parsed as HTTP/1.1.'],
  HTTPS_REQUIRED: [308, 'This server speaks HTTPS only: go to {detail}'],
  TOKEN_REQUIRED: [401, 'This API needs a token: whoever runs the server makes one with `roomcast token create NAME`; send it as Authorization: Bearer TOKEN.'],
  TOKEN_INVALID: [401, 'That token is unknown or has been revoked: ask whoever runs the server for a new one (roomcast token create NAME).'],
  TOKEN_SCOPE: [403, 'That token is for the room "{detail}" only.'],
} as const satisfies Record<string, readonly [number, string]>;

/** HTTP statuses of the chat protocol's codes, where an HTTP request can meet them. */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  PASSWORD_REQUIRED: 401,
  BANNED: 403,
  MUTED: 403,
  NICK_REGISTERED: 409,
  LOGIN_FAILED: 401,
  PASSWORD_WRONG: 401,
  LOCKED_OUT: 429,
  BAD_JSON: 400,
  BAD_MESSAGE: 400,
  NICK_INVALID: 400,
  NICK_RESERVED: 403,
  NICK_TAKEN: 409,
  ROOM_INVALID: 400,
  NO_SUCH_ROOM: 404,
  EMPTY_MESSAGE: 400,
  TEXT_TOO_LONG: 400,
  IMAGE_TOO_LARGE: 413,
  NOT_AN_IMAGE: 415,
  TOO_MANY_CONNECTIONS: 503,
  TOO_MANY_FROM_ADDRESS: 429,
  SHUTTING_DOWN: 503,
  HISTORY_UNAVAILABLE: 503,
  SEARCH_EMPTY: 400,
  SEARCH_UNAVAILABLE: 503,
  CLUSTER_UNAVAILABLE: 503,
  SEARCH_OFF: 501,
  INTERNAL: 500,
};

/** Chat messages that speak of slash commands, said the HTTP way. */
const HTTP_MESSAGES: Partial<Record<ErrorCode, string>> = {
  BAD_JSON: 'The request body is not a JSON object.',
  HISTORY_UNAVAILABLE: 'The history could not be read ({detail}); try again in a moment.',
  SEARCH_EMPTY: 'Say what to look for: ?q=WORDS finds the messages that hold every word (word* matches words that start so).',
  NO_SUCH_ROOM: 'There is no room "{detail}". GET /api/rooms lists them; a room is listed while someone is in it, and its history is kept after.',
  NICK_TAKEN: 'The nick "{detail}" belongs to someone who is connected. Post under another nick, or from that connection.',
  NICK_RESERVED: 'The nick "{detail}" is reserved. Pick another, or leave it out to post as "web".',
};

export type HttpErrorCode = keyof typeof HTTP_ONLY | ErrorCode;

export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    readonly status: number,
    message: string,
    /** Headers the answer needs (Allow for 405). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function httpError(code: HttpErrorCode, detail: string | number = '', headers?: Record<string, string>): HttpError {
  if (code in HTTP_ONLY) {
    const [status, text] = HTTP_ONLY[code as keyof typeof HTTP_ONLY];
    return new HttpError(code, status, text.replaceAll('{detail}', String(detail)), headers);
  }
  const c = code as ErrorCode;
  const message = HTTP_MESSAGES[c]?.replaceAll('{detail}', String(detail)) ?? protocolError(c, detail).message;
  return new HttpError(c, STATUS_OF[c] ?? 400, message, headers);
}

/** Any error a handler threw, as the answer to give: chat errors keep their code. */
export function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof RoomcastError) return new HttpError(err.code, STATUS_OF[err.code] ?? 400, err.message);
  return httpError('INTERNAL', 'a bug; it has been logged');
}

/** A chat-protocol refusal (a connection limit, say) as an HTTP answer, its message unchanged. */
export function fromProtocolError(e: ProtocolError, headers?: Record<string, string>): HttpError {
  return new HttpError(e.code, STATUS_OF[e.code] ?? 400, e.message, headers);
}

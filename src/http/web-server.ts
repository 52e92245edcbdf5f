/**
 * HTTP and WebSocket: Node's HTTP server without a listener of its own. It is handed sockets,
 * either from the chat port (a Connection saw an HTTP request line and let go of its socket)
 * or from the HTTP port's listeners, after the server's connection limits have counted them.
 *
 * An upgrade request on the WebSocket path becomes a WebSocket once its Origin is allowed and
 * its handshake is valid (transport/ws/ws-handshake.ts); the server turns it into a chat
 * connection (WsConnection). Everything else is the route table (the API, health, metrics),
 * then static files. Every answer is JSON on error, with a stable code, and carries the
 * security headers.
 */
import { nickKey } from '../protocol/text.js';
import type { Account } from '../store/store.js';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ProtocolError } from '../protocol/errors.js';
import type { Logger } from '../log.js';
import { WS_PATH, wsHandshake } from '../transport/ws/ws-handshake.js';
import type { WebContext } from './context.js';
import { plainAddress } from '../net/address.js';
import { normalizeRoom } from '../protocol/text.js';
import { asHttpError, fromProtocolError, httpError, HttpError } from './errors.js';
import { healthRoutes } from './health.js';
import { FORM_OVERHEAD, imageRoutes } from './images.js';
import { sendError, setSecurityHeaders, SECURITY_HEADERS } from './respond.js';
import { roomRoutes } from './rooms.js';
import { matchRoute, splitUrl, type Route } from './router.js';
import { StaticFiles } from './static-files.js';
import { taskRoutes } from './tasks.js';

/** A socket that has completed the WebSocket handshake, for the chat connection to read and write. */
export interface Upgraded {
  socket: Socket;
  /** Bytes the client sent after its request, read with it: the start of its first frames. */
  head: Buffer;
  /** The largest message the client may send (--ws-max-payload). */
  maxPayload: number;
}

export interface WebHooks {
  websocket(upgraded: Upgraded, req: IncomingMessage): void;
}

export class WebServer {
  readonly http: http.Server;
  /** Sockets speaking HTTP (not those upgraded to WebSocket). */
  readonly sockets = new Set<Socket>();
  private readonly wsMaxPayload: number;
  private readonly routes: Route[];
  private readonly files: StaticFiles;
  /** Sockets over a connection limit: their requests are answered with why, then closed. */
  private readonly refusals = new WeakMap<Socket, ProtocolError>();

  constructor(
    private readonly ctx: WebContext,
    private readonly hooks: WebHooks,
    private readonly log: Logger,
  ) {
    const o = ctx.opts;
    this.http = http.createServer({ noDelay: true, keepAliveTimeout: 5000 });
    // Inactivity limit: without a listen() of its own, Node's request and header timers do not
    // run, so a socket that goes quiet is what gets closed.
    this.http.timeout = o.idleTimeoutMs;
    this.http.on('request', (req, res) => void this.onRequest(req, res));
    // A client that asks before sending a body (curl does, for uploads) is told "too large"
    // before it sends a byte of it; otherwise it may go on.
    this.http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const largest = ctx.connection.maxImageBytes + FORM_OVERHEAD;
      if (Number(req.headers['content-length']) > largest) {
        res.once('finish', () => ctx.metrics.httpAnswered('expect-continue', res.statusCode, 0));
        setSecurityHeaders(res);
        sendError(req, res, httpError('BODY_TOO_LARGE', ctx.connection.maxImageBytes));
        return;
      }
      res.writeContinue();
      void this.onRequest(req, res);
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    this.wsMaxPayload = o.wsMaxPayload ?? Math.max(ctx.connection.maxImageBytes, ctx.connection.maxFrame);
    this.files = new StaticFiles(o.staticDir);
    this.routes = [
      ...healthRoutes(ctx),
      { name: 'GET /metrics', methods: ['GET'], pattern: /^\/metrics$/, handle: ({ req, res }) => ctx.metrics.handle(req, res) },
      ...roomRoutes(ctx),
      ...imageRoutes(ctx),
      ...taskRoutes(ctx),
      {
        name: `GET ${WS_PATH}`,
        methods: ['GET'],
        pattern: new RegExp(`^${WS_PATH}$`),
        handle() {
          throw httpError('UPGRADE_REQUIRED', '', { Upgrade: 'websocket' });
        },
      },
    ];
  }

  /**
   * Takes a socket that speaks HTTP. `head`: bytes already read from it (the request line a
   * Connection saw), put back in front of what comes next.
   */
  accept(socket: Socket, head: Buffer | null, refusal: ProtocolError | null): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (refusal) this.refusals.set(socket, refusal);
    // What was read before goes back only once the HTTP server's listeners are on: unshift()
    // on a flowing socket emits the bytes at once, and they must reach the HTTP parser first.
    this.http.emit('connection', socket);
    if (head !== null && head.length > 0) socket.unshift(head);
  }

  /** Closes every HTTP connection (shutdown); WebSockets are the server's to close. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let route = 'static';
    setSecurityHeaders(res);
    res.once('finish', () => this.ctx.metrics.httpAnswered(route, res.statusCode, (performance.now() - started) / 1000));
    try {
      const elsewhere = this.httpsTarget(req);
      if (elsewhere !== null) {
        route = 'https';
        throw httpError('HTTPS_REQUIRED', elsewhere, { Location: elsewhere });
      }
      const refusal = this.refusals.get(req.socket as Socket);
      if (refusal) {
        route = 'refused';
        throw fromProtocolError(refusal, { Connection: 'close', 'Retry-After': '5' });
      }
      const { path, query } = splitUrl(req.url);
      const method = req.method ?? 'GET';
      const { account, credential } = path.startsWith('/api/') || path === '/api' || path === '/metrics' ? await this.authorize(req, path) : NO_CREDENTIAL;
      const match = matchRoute(this.routes, method, path);
      if (match === null) {
        if (path.startsWith('/api/') || path === '/api') throw httpError('NOT_FOUND', path.slice(0, 200));
        if (method !== 'GET' && method !== 'HEAD') throw httpError('METHOD_NOT_ALLOWED', 'Use GET or HEAD for this path.', { Allow: 'GET, HEAD' });
        await this.files.serve(req, res, path);
        return;
      }
      if ('error' in match) throw match.error;
      route = match.route.name;
      await match.route.handle({ req, res, path, query, params: match.params, account, credential });
    } catch (err) {
      const e = asHttpError(err);
      if (e.code === 'INTERNAL') this.log.error(`${req.method} ${req.url?.slice(0, 200)}: ${(err as Error)?.stack ?? err}`);
      sendError(req, res, e);
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const answer = this.upgradeAnswer(req, socket);
    if (answer instanceof HttpError) {
      refuseRaw(socket, answer);
      return;
    }
    this.sockets.delete(socket);
    // A client that has already gone (or half-closed) would get a 101 it cannot use.
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.write(answer);
    this.hooks.websocket({ socket, head, maxPayload: this.wsMaxPayload }, req);
  }

  /** The 101 answer to an upgrade request, or why it is refused. */
  private upgradeAnswer(req: IncomingMessage, socket: Socket): string | HttpError {
    const { path } = splitUrl(req.url);
    if (path !== WS_PATH) return httpError('NOT_FOUND', path.slice(0, 200));
    const elsewhere = this.httpsTarget(req);
    if (elsewhere !== null) return httpError('HTTPS_REQUIRED', elsewhere, { Location: elsewhere });
    const refusal = this.refusals.get(socket);
    if (refusal) return fromProtocolError(refusal, { 'Retry-After': '5' });
    const origin = this.ctx.origins.refused(req);
    if (origin !== null) return httpError('FORBIDDEN_ORIGIN', origin.slice(0, 200));
    const handshake = wsHandshake(req);
    if ('refusal' in handshake) return httpError(handshake.refusal.code, handshake.refusal.detail, handshake.refusal.headers);
    return handshake.response;
  }

  /**
   * The API and the metrics, on a server with a password or with --api-token-required: an API
   * token (Bearer), the server password (Basic with any user name, or Bearer), or an account's
   * own nick and password (Basic), which also lets the request post as that nick. The web page
   * itself loads without any and asks; health checks stay open to monitors.
   */
  private async authorize(req: IncomingMessage, path: string): Promise<{ account: Account | null; credential: boolean }> {
    const password = this.ctx.hub.password;
    const tokens = this.ctx.tokens;
    const auth = req.headers.authorization ?? '';
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(auth);
    let user = '';
    let given: string | undefined;
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      user = decoded.slice(0, Math.max(0, decoded.indexOf(':')));
      given = decoded.slice(decoded.indexOf(':') + 1);
    }
    const address = plainAddress(req.socket.remoteAddress);
    // An account's name and password, unless that is the server password under any name.
    if (basic && user !== '' && !(password?.matches(given!) ?? false) && (await this.ctx.hub.accounts.registered(nickKey(user)).catch(() => false))) {
      try {
        return { account: await this.ctx.hub.accounts.verify(address, user, given!), credential: true };
      } catch (err) {
        const e = asHttpError(err);
        const wait = /wait (\d+) s/.exec(e.message)?.[1];
        throw new HttpError(e.code, e.status, e.message, wait !== undefined ? { 'Retry-After': wait } : { 'WWW-Authenticate': 'Basic realm="roomcast", charset="UTF-8"' });
      }
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    if (password === null && !this.ctx.opts.apiTokenRequired) {
      // An open API: a token (of this room, when scoped) still opens a room that is closed (checkRoomOpen).
      const grant = bearer !== undefined ? (tokens?.check(bearer) ?? null) : null;
      return grant !== null && (grant.room === undefined || grant.room === roomOfPath(path)) ? GRANTED : NO_CREDENTIAL;
    }
    const grant = bearer !== undefined ? (tokens?.check(bearer) ?? null) : null;
    if (grant !== null) {
      if (grant.room !== undefined && roomOfPath(path) !== grant.room) throw httpError('TOKEN_SCOPE', grant.room);
      return GRANTED;
    }
    if (password === null) throw httpError(bearer === undefined ? 'TOKEN_REQUIRED' : 'TOKEN_INVALID', '', { 'WWW-Authenticate': 'Bearer realm="roomcast"' });
    try {
      password.check(address, basic ? given : bearer);
    } catch (err) {
      const e = asHttpError(err);
      const headers: Record<string, string> = e.code === 'LOCKED_OUT' ? { 'Retry-After': String(password.retryAfter(address)) } : { 'WWW-Authenticate': 'Basic realm="roomcast", charset="UTF-8"' };
      throw new HttpError(e.code, e.status, e.message, headers);
    }
    return GRANTED;
  }

  /** Under --tls-only, where a request that came in clear text should go instead; else null. */
  private httpsTarget(req: IncomingMessage): string | null {
    if (!this.ctx.opts.httpsOnly || (req.socket as TLSSocket).encrypted) return null;
    // The Host header is the client's own word; anything odd in it gets a plain local name.
    const host = /^[A-Za-z0-9.:[\]-]{1,255}$/.test(req.headers.host ?? '') ? req.headers.host! : 'localhost';
    const url = (req.url ?? '/').startsWith('/') ? req.url! : '/';
    return `https://${host}${url}`;
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    refuseRaw(socket, httpError('BAD_REQUEST'), err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
  }
}

const NO_CREDENTIAL = { account: null, credential: false } as const;
const GRANTED = { account: null, credential: true } as const;

/** The room an /api/rooms/{room}/... path is about (as the server keys rooms), or null. */
function roomOfPath(path: string): string | null {
  const m = /^\/api\/rooms\/([^/]+)/.exec(path);
  if (!m) return null;
  try {
    return normalizeRoom(decodeURIComponent(m[1]!));
  } catch {
    return null;
  }
}

/** An error answer written straight to a socket that has no response object, then closed. */
function refuseRaw(socket: Socket, err: HttpError, status = err.status): void {
  const body = JSON.stringify(err.body);
  const headers = {
    ...SECURITY_HEADERS,
    ...err.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  };
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  // An upgrade request's socket has no listeners of the HTTP server's left: a reset must not throw.
  socket.on('error', () => socket.destroy());
  socket.end(head + '\r\n' + body);
  setTimeout(() => socket.destroy(), 1000).unref();
}

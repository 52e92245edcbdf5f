/**
 * Rooms over HTTP: the list, a room's history page by page, and posting a message from
 * outside (a script, a cron job): GET /api/rooms, GET /api/rooms/{room}/history,
 * POST /api/rooms/{room}/messages.
 */
import { plainAddress } from '../net/address.js';
import { readJsonObject } from './body.js';
import { checkOrigin, checkRoomOpen, existingRoom, posterNick, type WebContext } from './context.js';
import { httpError } from './errors.js';
import { MAX_SEARCH, SEARCH_DEFAULT } from '../hub/hub.js';
import { sendJson } from './respond.js';
import type { Route } from './router.js';

const ROOM = '([^/]+)';

/** A whole number from the query, within bounds, or the default when absent. */
export function queryInt(query: URLSearchParams, name: string, dflt: number | null, min: number, max: number): number | null {
  const v = query.get(name);
  if (v === null || v === '') return dflt;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min || Number(v) > max)
    throw httpError('BAD_QUERY', `"${name}" must be a whole number from ${min} to ${max}`);
  return Number(v);
}

export function roomRoutes(ctx: WebContext): Route[] {
  const hub = ctx.hub;
  return [
    {
      name: 'GET /api/rooms',
      methods: ['GET'],
      pattern: /^\/api\/rooms\/?$/,
      async handle({ req, res }) {
        sendJson(req, res, 200, { rooms: await hub.roomList() });
      },
    },
    {
      name: 'GET /api/rooms/{room}/history',
      methods: ['GET'],
      pattern: new RegExp(`^/api/rooms/${ROOM}/history$`),
      async handle({ req, res, params, query, credential }) {
        const name = hub.checkRoom(params[0]!);
        await checkRoomOpen(ctx, name, credential);
        const pageMax = ctx.opts.historyPageMax;
        const limit = queryInt(query, 'limit', Math.min(50, pageMax), 1, pageMax)!;
        const after = queryInt(query, 'after', null, 0, Number.MAX_SAFE_INTEGER);
        // With "after": the oldest page after it, to read forward (next: after = last seq seen).
        // Without: the newest page. A room nobody is in keeps its history.
        let page;
        try {
          page = await hub.readHistory(name, after, limit);
        } catch (err) {
          throw httpError('HISTORY_UNAVAILABLE', (err as Error)?.message ?? String(err));
        }
        if (page === null) throw httpError('NO_SUCH_ROOM', name);
        const { events: messages, first, last } = page;
        const end = messages.length > 0 ? messages[messages.length - 1]!.seq : after ?? last;
        sendJson(req, res, 200, {
          room: name,
          messages,
          first,
          last,
          missed: after === null ? 0 : Math.max(0, first - 1 - after),
          // A full page that stops short of the last seq: ask again after it. (After a crash
          // numbering skips ahead, so seqs up to `last` need not all exist.)
          more: after !== null && messages.length === limit && end < last,
        });
      },
    },
    {
      name: 'GET /api/rooms/{room}/search',
      methods: ['GET'],
      pattern: new RegExp(`^/api/rooms/${ROOM}/search$`),
      async handle({ req, res, params, query, credential }) {
        const name = hub.checkRoom(params[0]!);
        if (!hub.knowsRoom(name)) throw httpError('NO_SUCH_ROOM', name);
        await checkRoomOpen(ctx, name, credential);
        const limit = queryInt(query, 'limit', SEARCH_DEFAULT, 1, MAX_SEARCH)!;
        const before = queryInt(query, 'before', null, 1, Number.MAX_SAFE_INTEGER) ?? undefined;
        const { q, hits, more } = await hub.searchRoom(name, query.get('q') ?? '', limit, before);
        sendJson(req, res, 200, { room: name, q, hits, more });
      },
    },
    {
      name: 'POST /api/rooms/{room}/messages',
      methods: ['POST'],
      pattern: new RegExp(`^/api/rooms/${ROOM}/messages$`),
      async handle({ req, res, params, account, credential }) {
        checkOrigin(ctx, req);
        await checkRoomOpen(ctx, existingRoom(ctx, params[0]).name, credential);
        const body = await readJsonObject(req, ctx.opts.maxJsonBody);
        if (typeof body.text !== 'string') throw httpError('BAD_MESSAGE', '"text" must be a string');
        if (body.nick !== undefined && body.nick !== null && typeof body.nick !== 'string')
          throw httpError('BAD_MESSAGE', '"nick" must be a string');
        if (body.action !== undefined && typeof body.action !== 'boolean') throw httpError('BAD_MESSAGE', '"action" must be true or false');
        const nick = posterNick(ctx, body.nick as string | undefined, account);
        // The room may have emptied (and gone) while the body was read.
        const room = existingRoom(ctx, params[0]);
        hub.moderation.checkPoster(room, nick, plainAddress(req.socket.remoteAddress), account?.key ?? null);
        const event = await hub.say(room, nick, body.text, body.action === true);
        sendJson(req, res, 200, { room: room.name, seq: event.seq, nick, time: event.time });
      },
    },
  ];
}

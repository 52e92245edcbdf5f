/**
 * Request routing: a table of routes matched on the raw path, so an encoded "/" (%2F) inside a
 * room name can never split a path segment; parameters are URL-decoded after matching.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Account } from '../store/store.js';
import { httpError, type HttpError } from './errors.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path as sent (still percent-encoded), without the query. */
  path: string;
  query: URLSearchParams;
  /** The route's parameters, decoded. */
  params: string[];
  /** The account the request proved with HTTP Basic (its nick and password); null: none. */
  account: Account | null;
  /** Whether the request proved anything: an API token, the server password or an account. */
  credential: boolean;
}

export interface Route {
  /** For metrics and logs: "GET /api/rooms/{room}/history". */
  name: string;
  /** GET also answers HEAD. */
  methods: string[];
  /** Matched against the raw path; each group is a parameter. */
  pattern: RegExp;
  handle(ctx: RequestContext): Promise<void> | void;
}

export function splitUrl(url: string | undefined): { path: string; query: URLSearchParams } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q === -1 ? { path: raw, query: new URLSearchParams() } : { path: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}

export function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw httpError('BAD_PATH', 'it is not valid percent-encoded UTF-8');
  }
}

export type Match = { route: Route; params: string[] } | { error: HttpError } | null;

/** The route for a request; an error when the path is known but not the method; null if unknown. */
export function matchRoute(routes: Route[], method: string, path: string): Match {
  const allowed = new Set<string>();
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const methods = route.methods.includes('GET') ? [...route.methods, 'HEAD'] : route.methods;
    if (methods.includes(method)) return { route, params: m.slice(1).map(decodeSegment) };
    for (const x of methods) allowed.add(x);
  }
  if (allowed.size === 0) return null;
  const allow = [...allowed].join(', ');
  return { error: httpError('METHOD_NOT_ALLOWED', `Use ${allow} for this path.`, { Allow: allow }) };
}

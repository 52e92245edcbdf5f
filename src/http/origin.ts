/**
 * Which web pages may use this server from a browser: the WebSocket handshake and every POST
 * carry the page's Origin, and a page from another site must not chat or post as its visitor
 * (cross-site WebSocket hijacking, CSRF). Clients that are not browsers send no Origin and are
 * not affected: the check protects browsers' users, it does not authenticate anyone.
 *
 * Default: the page must come from this server itself (the Origin's host is the Host the
 * request was sent to). With --origin, exactly the listed origins ("*": any).
 */
import type { IncomingMessage } from 'node:http';

export class OriginPolicy {
  private readonly allowed: Set<string>;
  private readonly any: boolean;

  constructor(origins: string[]) {
    this.any = origins.includes('*');
    this.allowed = new Set(origins.filter((o) => o !== '*').map(normalize));
  }

  /** The refused origin, or null when the request may go on. */
  refused(req: IncomingMessage): string | null {
    const origin = req.headers.origin;
    if (origin === undefined) return null;
    if (this.any) return null;
    if (this.allowed.size > 0) return this.allowed.has(normalize(origin)) ? null : origin;
    const host = req.headers.host?.toLowerCase();
    try {
      // "null" (a sandboxed or file: page) and anything unparseable are refused here.
      return host !== undefined && new URL(origin).host === host ? null : origin;
    } catch {
      return origin;
    }
  }
}

function normalize(origin: string): string {
  const trimmed = origin.trim().replace(/\/+$/, '').toLowerCase();
  try {
    return new URL(trimmed).origin;
  } catch {
    return trimmed;
  }
}

/**
 * What the HTTP handlers share: their options, the hub, the stores, and the checks every
 * route that posts to a room makes (which room, whose name).
 */
import type { Account } from '../store/store.js';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { ApiTokens } from '../auth/api-tokens.js';
import { fileURLToPath } from 'node:url';
import type { Hub, ImagePort } from '../hub/hub.js';
import type { Room } from '../hub/room.js';
import type { BotStatus } from '../protocol/events.js';
import { RoomcastError } from '../protocol/errors.js';
import { nickKey } from '../protocol/text.js';
import type { ConnectionOptions } from '../transport/options.js';
import { httpError } from './errors.js';
import type { ImageKeeper } from '../images/image-store.js';
import type { Metrics } from '../metrics/metrics.js';
import type { OriginPolicy } from './origin.js';
import type { TaskStore } from '../images/task-store.js';
import type { StoreHealth } from '../store/store.js';
import type { ClusterHealth } from '../cluster/cluster-node.js';

/** The package root: this module is in dist/http/ (or src/http/ under ts-jest). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Who posts through the HTTP API when no nick is given (a reserved nick, so nobody can take it). */
export const WEB_NICK = 'web';

export interface WebOptions {
  /** null: HTTP and WebSocket share the chat port; a number: their own port (0: any free one). */
  port: number | null;
  /** Origins allowed to use the server from a browser; empty: the server's own host only. */
  origins: string[];
  /**
   * Largest WebSocket message; a larger one closes the connection with 1009. null: room for
   * the largest image a client may post (maxImageBytes), and at least a JSON frame (maxFrame).
   */
  wsMaxPayload: number | null;
  /** Static files (the web page). */
  staticDir: string;
  /** Largest JSON request body. */
  maxJsonBody: number;
  /** Posted images kept for GET /api/images/{id}: total bytes and count. */
  imageStoreBytes: number;
  imageStoreCount: number;
  /** Most messages one history page holds. */
  historyPageMax: number;
  /** An HTTP connection with no traffic for this long is closed (ms). */
  idleTimeoutMs: number;
  /** Process metrics (CPU, memory, event loop, GC) in /metrics. */
  processMetrics: boolean;
  /** A request that did not come over TLS is sent to the same URL over https (--tls-only). */
  httpsOnly: boolean;
  /** The API answers only with a token (or the server password), password or not (--api-token-required). */
  apiTokenRequired: boolean;
}

export const WEB_DEFAULTS: WebOptions = {
  port: null,
  origins: [],
  wsMaxPayload: null,
  staticDir: path.join(PACKAGE_ROOT, 'public'),
  maxJsonBody: 64 * 1024,
  imageStoreBytes: 64 << 20,
  imageStoreCount: 256,
  historyPageMax: 200,
  idleTimeoutMs: 30_000,
  processMetrics: true,
  httpsOnly: false,
  apiTokenRequired: false,
};

export interface Readiness {
  listening: boolean;
  stopping: boolean;
  bot: BotStatus | null;
  /** The on-disk history's health; null when history is kept in memory only. */
  store: StoreHealth | null;
  /** Whether Redis can be reached, for a node of a cluster; null for a single server. */
  cluster: ClusterHealth | null;
}

export interface WebContext {
  hub: Hub;
  opts: WebOptions;
  connection: ConnectionOptions;
  tasks: TaskStore;
  /** In a cluster: the tasks of every node (GET /api/tasks/{id} of a post another node took). */
  clusterTasks?: { load(image: number): Promise<unknown> };
  images: ImageKeeper;
  /** Where an image posted over HTTP goes, as one posted over chat does. */
  posts: ImagePort;
  metrics: Metrics;
  origins: OriginPolicy;
  readiness(): Readiness;
  /** The API tokens programs may use (roomcast token create); null: none are read. */
  tokens: ApiTokens | null;
}

/** A room that exists: posting does not create rooms (nobody would be there to see it). */
export function existingRoom(ctx: WebContext, name: string): Room {
  const key = ctx.hub.checkRoom(name);
  const room = ctx.hub.rooms.get(key);
  if (!room) throw httpError('NO_SUCH_ROOM', key);
  return room;
}

/**
 * A room with a key or invite-only is closed to the open API: reading its history, searching
 * it and posting to it over HTTP need a credential (an API token, the server password or an
 * account), as joining it needs the key or an invitation. Throws ROOM_CLOSED.
 */
export async function checkRoomOpen(ctx: WebContext, name: string, credential: boolean): Promise<void> {
  if (credential) return;
  const m = ctx.hub.moderation;
  const rules = m.rulesNow(name) ?? (await m.load(name));
  if (rules.inviteOnly || rules.key !== null) throw httpError('ROOM_CLOSED', name);
}

/**
 * Whose name a post goes out under: `web` by default, or a valid nick that nobody connected
 * has (the API cannot tell who is calling, so it must not speak for someone who is here).
 */
export function posterNick(ctx: WebContext, given: string | null | undefined, account: Account | null = null): string {
  // Proved with the account's password (HTTP Basic): its own nick, even while its owner chats.
  if (account !== null && (given === undefined || given === null || given === '' || nickKey(given) === account.key)) return account.nick;
  if (given === undefined || given === null || given === '' || nickKey(given) === WEB_NICK) return WEB_NICK;
  try {
    return ctx.hub.checkNick(given);
  } catch (err) {
    if (err instanceof RoomcastError) throw httpError(err.code, given.slice(0, 40));
    throw err;
  }
}

/** Browsers' cross-site posts are refused (see OriginPolicy). */
export function checkOrigin(ctx: WebContext, req: IncomingMessage): void {
  const refused = ctx.origins.refused(req);
  if (refused !== null) throw httpError('FORBIDDEN_ORIGIN', refused.slice(0, 200));
}

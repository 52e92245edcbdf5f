/**
 * The message store of a cluster (`serve --redis`): the rooms' Streams in Redis, which the
 * publish script writes as it numbers each event (redis-rooms.ts), so append() has nothing
 * left to do. Reads come from the Streams, whichever node wrote them. What Redis cannot do
 * cheaply is said plainly: search is off (Streams have no full-text index), and retention is
 * the Streams' length bound, kept by every publish.
 */
import { randomBytes } from 'node:crypto';
import type { RoomEvent } from '../protocol/events.js';
import { StoreError } from '../store/errors.js';
import type { Account, RoomRules, HistoryPage, MessageStore, PruneResult, SearchHit, StoredRoom, StoreHealth } from '../store/store.js';
import type { RedisRooms, StreamPage } from './redis-rooms.js';
import type { CommandSender } from './redis-script.js';

export const SEARCH_OFF = 'search is off in a cluster (serve --redis): the history lives in Redis Streams, which have no full-text index';

export class RedisStore implements MessageStore {
  private history = '';
  private readonly historyKey: string;
  /** Hash of nick key -> the account's JSON: every node sees every account. */
  private readonly accountsKey: string;
  /** Hash of room -> its rules' JSON (hub/moderation.ts). */
  private readonly rulesKey: string;

  constructor(
    private readonly redis: CommandSender,
    private readonly rooms: RedisRooms,
    /** Where errors name the store: the Redis URL, without its password. */
    private readonly where: string,
    prefix = 'roomcast',
  ) {
    this.historyKey = `${prefix}:history`;
    this.accountsKey = `${prefix}:accounts`;
    this.rulesKey = `${prefix}:rules`;
  }

  async open(): Promise<StoredRoom[]> {
    await this.refreshHistory();
    return [];
  }

  /**
   * Names the cluster's history: made by the first node to ask, and made anew when Redis has
   * lost everything (restarted without persistence), so clients learn their numbers are void.
   */
  async refreshHistory(): Promise<string> {
    await this.redis.sendCommand(['SET', this.historyKey, randomBytes(8).toString('hex'), 'NX']);
    this.history = String(await this.redis.sendCommand(['GET', this.historyKey]));
    return this.history;
  }

  append(_event: RoomEvent): void {
    // The publish script kept the event in its room's Stream as it numbered it.
  }

  /** Kept in the room's meta hash, where a node that takes the room up reads it. */
  setTopic(room: string, topic: string, nick: string): void {
    this.rooms.setTopic(room, topic, nick, Date.now(), true).catch(() => {
      // Redis is away: the outage is reported once, by the cluster node; the topic stays here.
    });
  }

  async range(room: string, after: number, limit: number): Promise<HistoryPage> {
    return pageOf(await this.read(() => this.rooms.read(room, after, limit)));
  }

  async latest(room: string, n: number): Promise<HistoryPage> {
    return pageOf(await this.read(() => this.rooms.latest(room, n)));
  }

  async search(_room: string, _query: string, _limit: number): Promise<SearchHit[]> {
    throw new StoreError('STORE_NO_SEARCH', this.where, SEARCH_OFF);
  }

  async prune(): Promise<PruneResult> {
    return { deleted: 0 };
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  health(): StoreHealth {
    return { state: 'ok', failedWrites: 0, queued: 0, dropped: 0 };
  }

  async account(key: string): Promise<Account | null> {
    const json = await this.redis.sendCommand(['HGET', this.accountsKey, key]);
    return typeof json === 'string' ? (JSON.parse(json) as Account) : null;
  }

  async updateAccount(account: Account): Promise<void> {
    await this.redis.sendCommand(['HSET', this.accountsKey, account.key, JSON.stringify(account)]);
  }

  async rules(room: string): Promise<RoomRules | null> {
    const json = await this.redis.sendCommand(['HGET', this.rulesKey, room]);
    return typeof json === 'string' ? (JSON.parse(json) as RoomRules) : null;
  }

  async saveRules(room: string, rules: RoomRules): Promise<void> {
    await this.redis.sendCommand(['HSET', this.rulesKey, room, JSON.stringify(rules)]);
  }

  async createAccount(account: Account): Promise<boolean> {
    return Number(await this.redis.sendCommand(['HSETNX', this.accountsKey, account.key, JSON.stringify(account)])) === 1;
  }

  historyId(): string {
    return this.history;
  }

  private async read(run: () => Promise<StreamPage>): Promise<StreamPage> {
    try {
      return await run();
    } catch (err) {
      throw new StoreError('STORE_UNREACHABLE', this.where, (err as Error)?.message ?? String(err));
    }
  }
}

function pageOf(page: StreamPage): HistoryPage {
  return { events: page.events, first: page.first, last: page.last };
}

/**
 * Rooms in Redis: the one atomic publish that numbers a room's event, appends it to the room's
 * Stream and publishes it on the room's channel, and the read of a Stream that fills a gap or
 * a resume. Any node can number any room's events, and the Stream's order is the order every
 * node delivers in (room-feed.ts). The design follows Centrifugo's Redis broker: a script per
 * publish, a Stream per room with the seq as its entry ID, and an epoch that changes when Redis
 * has lost the room, so that no client is ever given numbers from another history.
 *
 * Commands sent in the same turn go out in one write (node-redis pipelines them).
 */
import { randomBytes } from 'node:crypto';
import type { RoomEvent } from '../protocol/events.js';
import { roomKeys } from './room-keys.js';
import { runScript, type CommandSender } from './redis-script.js';

/** What a publish gave the event: its room's epoch and the event's number. */
export interface Published {
  epoch: string;
  seq: number;
}

/** Part of a room's Stream, with the room's bounds when read. */
export interface StreamPage {
  /** The room's epoch; '' when Redis holds nothing of the room. */
  epoch: string;
  /** Events with seq > after, oldest first. */
  events: RoomEvent[];
  /** The lowest seq the Stream still holds (last + 1 when it holds none). */
  first: number;
  /** The last seq given out (0: none). */
  last: number;
  /** The room's topic ('' when none was set). */
  topic: string;
  /** Who set the topic, and when (ms; 0: never). */
  topicNick: string;
  topicTime: number;
}

/**
 * KEYS: meta, stream. ARGV: a new epoch (taken only when the room's meta is made), the
 * Stream's length bound, the channel, then the events' JSON without their seq, one or more.
 * They get consecutive numbers, each its Stream entry, and go out as one channel message:
 * "EPOCH FIRST-SEQ JSON\nJSON...". The meta hash is made with its epoch on the room's first
 * event, and after Redis has lost it: a new epoch then tells resuming clients that the old
 * numbers mean nothing here.
 */
const PUBLISH = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local n = #ARGV - 3
local first = redis.call('HINCRBY', KEYS[1], 'seq', n) - n + 1
for i = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. (first + i - 1), 'e', ARGV[3 + i])
end
redis.call('PUBLISH', ARGV[3], epoch .. ' ' .. first .. ' ' .. table.concat(ARGV, '\\n', 4))
return {epoch, first}
`;

/** Events of one room published in one script call at most. */
const MAX_BATCH = 256;

/** A room's events waiting for the next script call, and who waits for their numbers. */
interface Batch {
  bodies: string[];
  waiting: { resolve(p: Published): void; reject(err: unknown): void }[];
}

/**
 * KEYS: meta, stream. ARGV: the first seq wanted (0: the newest entries instead), how many,
 * and optionally an epoch that makes the room's meta when Redis has none. The epoch, last
 * seq, first kept entry, the entries (oldest first) and the topic in one reply, so that they
 * belong together.
 */
const READ = `
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'topic', 'topic_nick', 'topic_time')
if not meta[1] then
  if not ARGV[3] then return {'', 0, {}, {}, '', '', 0} end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[3], 'seq', 0)
  return {ARGV[3], 0, {}, {}, '', '', 0}
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local entries
if ARGV[1] == '0' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
  local n = #entries
  for i = 1, math.floor(n / 2) do entries[i], entries[n - i + 1] = entries[n - i + 1], entries[i] end
else
  entries = redis.call('XRANGE', KEYS[2], '0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return {meta[1], tonumber(meta[2]), first, entries, meta[3] or '', meta[4] or '', tonumber(meta[5] or '0')}
`;

/**
 * KEYS: meta. ARGV: topic, nick, time, and optionally an epoch that makes the room's meta when
 * Redis has none (as READ does); without it only a room that exists keeps a topic.
 */
const SET_TOPIC = `
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  if not ARGV[4] then return 0 end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[4], 'seq', 0)
end
redis.call('HSET', KEYS[1], 'topic', ARGV[1], 'topic_nick', ARGV[2], 'topic_time', ARGV[3])
return 1
`;

export interface RedisRoomsOptions {
  /** Prefix of every key (several deployments may share one Redis). */
  prefix?: string;
  /** Entries each room's Stream keeps (about: Redis trims whole nodes of the Stream). */
  maxLen?: number;
  /** Makes the epoch of a room Redis does not know; random by default. */
  newEpoch?: () => string;
}

export const REDIS_ROOMS_DEFAULTS = { prefix: 'roomcast', maxLen: 100_000 };

type Stream = [id: string, fields: string[]][];

export class RedisRooms {
  private readonly prefix: string;
  private readonly maxLen: string;
  private readonly newEpoch: () => string;
  /** Per room, events published in this turn: they go to Redis together at its end. */
  private readonly batches = new Map<string, Batch>();
  private flushScheduled = false;

  constructor(
    private readonly redis: CommandSender,
    opts: RedisRoomsOptions = {},
  ) {
    this.prefix = opts.prefix ?? REDIS_ROOMS_DEFAULTS.prefix;
    this.maxLen = String(opts.maxLen ?? REDIS_ROOMS_DEFAULTS.maxLen);
    // Random once, then counted: every publish offers an epoch, used only when it makes the
    // room, so it must be unique but need not cost a draw of random bytes each time.
    const stem = randomBytes(6).toString('hex');
    let n = 0;
    this.newEpoch = opts.newEpoch ?? (() => `${stem}.${(n++).toString(36)}`);
  }

  /**
   * Numbers the event (its seq is ignored), keeps it in the room's Stream and publishes it.
   * A room's events of one turn go in one script call, numbered in the order published: one
   * command, one reply and one channel message per node for many events, not per event.
   */
  publish(event: RoomEvent): Promise<Published> {
    let batch = this.batches.get(event.room);
    if (!batch) this.batches.set(event.room, (batch = { bodies: [], waiting: [] }));
    batch.bodies.push(bodyOf(event));
    const numbered = new Promise<Published>((resolve, reject) => batch.waiting.push({ resolve, reject }));
    if (batch.bodies.length >= MAX_BATCH) this.flushRoom(event.room);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return numbered;
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const room of [...this.batches.keys()]) this.flushRoom(room);
  }

  private flushRoom(room: string): void {
    const batch = this.batches.get(room);
    if (!batch) return;
    this.batches.delete(room);
    const keys = roomKeys(room, this.prefix);
    // Ordered: the calls run in the order made, so a room's events are numbered in the order published.
    runScript(this.redis, PUBLISH, [keys.meta, keys.stream], [this.newEpoch(), this.maxLen, keys.channel, ...batch.bodies], true).then(
      (reply) => {
        const [epoch, first] = reply as [string, number];
        batch.waiting.forEach((w, i) => w.resolve({ epoch, seq: Number(first) + i }));
      },
      (err: unknown) => {
        for (const w of batch.waiting) w.reject(err);
      },
    );
  }

  /**
   * Up to `limit` of the room's events with seq > after, from its Stream. `make`: a room Redis
   * holds nothing of gets its meta (an epoch) now, so a node following it can tell its clients
   * which numbering they are in before anyone has spoken.
   */
  read(room: string, after: number, limit: number, make = false): Promise<StreamPage> {
    return this.readFrom(room, String(Math.max(0, Math.floor(after)) + 1), limit, make);
  }

  /** The room's newest `limit` events, oldest first. */
  latest(room: string, limit: number): Promise<StreamPage> {
    return this.readFrom(room, '0', limit);
  }

  /**
   * Keeps a room's topic in its meta hash; false when Redis holds nothing of the room, unless
   * `make` (as read()'s) makes its meta first.
   */
  async setTopic(room: string, topic: string, nick: string, time: number, make = false): Promise<boolean> {
    const args = [topic, nick, String(time)];
    if (make) args.push(this.newEpoch());
    return Number(await runScript(this.redis, SET_TOPIC, [roomKeys(room, this.prefix).meta], args)) === 1;
  }

  private async readFrom(room: string, from: string, limit: number, make = false): Promise<StreamPage> {
    const keys = roomKeys(room, this.prefix);
    const args = [from, String(Math.max(1, Math.floor(limit)))];
    if (make) args.push(this.newEpoch());
    const reply = (await runScript(this.redis, READ, [keys.meta, keys.stream], args)) as [string, number, Stream, Stream, string, string, number];
    const [epoch, last, firstEntry, entries, topic, topicNick, topicTime] = reply;
    const lastSeq = Number(last);
    const events = entries.map(([id, fields]) => eventOf(room, seqOfId(id), fields[1]!));
    return { epoch, events, first: firstEntry.length > 0 ? seqOfId(firstEntry[0]![0]) : lastSeq + 1, last: lastSeq, topic: String(topic ?? ''), topicNick: String(topicNick ?? ''), topicTime: Number(topicTime ?? 0) };
  }
}

/** A message as the room's channel carries it: "EPOCH SEQ JSON". */
export interface LiveMessage {
  epoch: string;
  event: RoomEvent;
}

/** The events a channel message holds (consecutive numbers), or null when it is not one of ours. */
export function parseLive(room: string, message: string): LiveMessage[] | null {
  const a = message.indexOf(' ');
  const b = a < 0 ? -1 : message.indexOf(' ', a + 1);
  if (b < 0) return null;
  const first = Number(message.slice(a + 1, b));
  if (!Number.isSafeInteger(first) || first < 1) return null;
  const epoch = message.slice(0, a);
  try {
    // JSON never holds a raw newline: the events are a line each.
    return message
      .slice(b + 1)
      .split('\n')
      .map((body, i) => ({ epoch, event: eventOf(room, first + i, body) }));
  } catch {
    return null;
  }
}

/** The event's JSON without its seq, which the script gives it. */
function bodyOf(event: RoomEvent): string {
  const { seq: _seq, ...rest } = event;
  return JSON.stringify(rest);
}

function eventOf(room: string, seq: number, body: string): RoomEvent {
  const event = JSON.parse(body) as RoomEvent;
  event.room = room;
  event.seq = seq;
  return event;
}

function seqOfId(id: string): number {
  return Number(id.slice(id.indexOf('-') + 1));
}

/**
 * Who is where across a cluster: nodes hold leases, nicks are claimed cluster-wide, and each
 * room lists its members with the node they are on. A node that dies stops renewing its lease;
 * once it has lapsed its nicks are free and its members are not listed, and reap() (which any
 * node runs now and then) takes them out for good and says which rooms they were in, so that
 * the live nodes can tell those rooms they left.
 *
 * Keys (PREFIX = roomcast): PREFIX:nodes (set of node ids), PREFIX:node:ID (the lease, expiring),
 * PREFIX:node:ID:nicks and PREFIX:node:ID:rooms (what to clear when it dies), PREFIX:nicks
 * (hash: nick key -> node id), PREFIX:{room:NAME}:members (hash: nick key -> "NODE NICK").
 * The scripts that span rooms run on one Redis; on Redis Cluster they would go shard by shard.
 *
 * The node renews its lease by calling renew() on a timer of its own (every third of the lease,
 * say); nothing here keeps a timer, so a test makes a node "die" by no longer renewing.
 */
import { roomKeys } from './room-keys.js';
import { runScript, type CommandSender } from './redis-script.js';

export interface PresenceOptions {
  prefix?: string;
  /** How long a lease lasts without renewal; a dead node's members go within about this. */
  leaseMs?: number;
}

export const PRESENCE_DEFAULTS = { prefix: 'roomcast', leaseMs: 10_000 };

export interface Member {
  nick: string;
  node: string;
}

/** What reap() took out: a dead node's nicks, and the rooms each of its members was in. */
export interface Reaped {
  node: string;
  rooms: { room: string; nicks: string[] }[];
}

/** KEYS: nicks hash, node's nick set. ARGV: nick key, node id, lease prefix. 1 when claimed. */
const CLAIM = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. owner) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

/** KEYS: nicks hash, node's nick set. ARGV: nick key, node id. Only the owner releases. */
const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`;

/** KEYS: members hash. ARGV: lease prefix. The members whose node's lease is alive. */
const MEMBERS = `
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local live = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local node = string.match(v, '^(%S+)')
  if live[node] == nil then live[node] = redis.call('EXISTS', ARGV[1] .. node) == 1 end
  if live[node] then table.insert(alive, v) end
end
return alive
`;

/**
 * KEYS: nodes set, nicks hash. ARGV: prefix, lease prefix. Every node whose lease has lapsed:
 * its nicks released, its members taken out of their rooms; returns, per dead node, its id
 * and for each room the nicks taken out ({node, {room, nick, nick...}, ...}).
 */
const REAP = `
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. node) == 0 then
    local base = ARGV[1] .. ':node:' .. node
    for _, nick in ipairs(redis.call('SMEMBERS', base .. ':nicks')) do
      if redis.call('HGET', KEYS[2], nick) == node then redis.call('HDEL', KEYS[2], nick) end
    end
    local rooms = {}
    for _, room in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do
      local key = ARGV[1] .. ':{room:' .. room .. '}:members'
      local gone = {room}
      local all = redis.call('HGETALL', key)
      for i = 1, #all, 2 do
        local n, nick = string.match(all[i + 1], '^(%S+) (.*)$')
        if n == node then
          redis.call('HDEL', key, all[i])
          table.insert(gone, nick)
        end
      end
      if #gone > 1 then table.insert(rooms, gone) end
    end
    redis.call('DEL', base .. ':nicks', base .. ':rooms')
    redis.call('SREM', KEYS[1], node)
    table.insert(out, {node, rooms})
  end
end
return out
`;

/**
 * KEYS: nodes set. ARGV: prefix, lease prefix. Every room a live node has had members in,
 * with how many members of live nodes it has now (rooms with none left out) and its topic:
 * {room, count, topic, room, count, topic, ...}.
 */
const ROOMS = `
local seen = {}
local out = {}
local live = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. node) == 1 then live[node] = true end
end
for node, _ in pairs(live) do
  for _, room in ipairs(redis.call('SMEMBERS', ARGV[1] .. ':node:' .. node .. ':rooms')) do
    if not seen[room] then
      seen[room] = true
      local all = redis.call('HVALS', ARGV[1] .. ':{room:' .. room .. '}:members')
      local n = 0
      for _, v in ipairs(all) do
        if live[string.match(v, '^(%S+)')] then n = n + 1 end
      end
      if n > 0 then
        local topic = redis.call('HGET', ARGV[1] .. ':{room:' .. room .. '}:meta', 'topic') or ''
        table.insert(out, room)
        table.insert(out, n)
        table.insert(out, topic)
      end
    end
  end
end
return out
`;

export class Presence {
  private readonly prefix: string;
  private readonly leaseMs: number;

  constructor(
    private readonly redis: CommandSender,
    /** This node's id: unique in the cluster, without spaces. */
    readonly node: string,
    opts: PresenceOptions = {},
  ) {
    if (/\s/.test(node) || node === '') throw new Error(`a node id without spaces is needed, not "${node}"`);
    this.prefix = opts.prefix ?? PRESENCE_DEFAULTS.prefix;
    this.leaseMs = opts.leaseMs ?? PRESENCE_DEFAULTS.leaseMs;
  }

  /** Takes or renews this node's lease (and lists the node, so that its death is noticed). */
  async renew(): Promise<void> {
    await Promise.all([
      this.redis.sendCommand(['SET', this.leaseKey(this.node), '1', 'PX', String(this.leaseMs)]),
      this.redis.sendCommand(['SADD', `${this.prefix}:nodes`, this.node]),
    ]);
  }

  /** Claims `nick` (compared by `key`, e.g. case-folded) for this node; false when a live node has it. */
  async claimNick(key: string): Promise<boolean> {
    return Number(await runScript(this.redis, CLAIM, [this.nicksKey, this.nodeSet('nicks')], [key, this.node, this.leaseKey('')])) === 1;
  }

  async releaseNick(key: string): Promise<void> {
    await runScript(this.redis, RELEASE, [this.nicksKey, this.nodeSet('nicks')], [key, this.node]);
  }

  /** The node a nick is on, when its node is alive (where a /msg to it goes). */
  async nodeOf(key: string): Promise<string | null> {
    const node = (await this.redis.sendCommand(['HGET', this.nicksKey, key])) as string | null;
    if (node === null) return null;
    return Number(await this.redis.sendCommand(['EXISTS', this.leaseKey(node)])) === 1 ? node : null;
  }

  async join(room: string, key: string, nick: string): Promise<void> {
    await Promise.all([
      this.redis.sendCommand(['HSET', this.membersKey(room), key, `${this.node} ${nick}`]),
      this.redis.sendCommand(['SADD', this.nodeSet('rooms'), room]),
    ]);
  }

  async part(room: string, key: string): Promise<void> {
    await this.redis.sendCommand(['HDEL', this.membersKey(room), key]);
  }

  /** The room's members on live nodes. */
  async members(room: string): Promise<Member[]> {
    const values = (await runScript(this.redis, MEMBERS, [this.membersKey(room)], [this.leaseKey('')])) as string[];
    return values.map((v) => {
      const space = v.indexOf(' ');
      return { node: v.slice(0, space), nick: v.slice(space + 1) };
    });
  }

  /** Every room with members on a live node, how many, and its topic. */
  async rooms(): Promise<{ room: string; members: number; topic: string }[]> {
    const flat = (await runScript(this.redis, ROOMS, [`${this.prefix}:nodes`], [this.prefix, this.leaseKey('')])) as (string | number)[];
    const out: { room: string; members: number; topic: string }[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) out.push({ room: String(flat[i]), members: Number(flat[i + 1]), topic: String(flat[i + 2]) });
    return out;
  }

  /** Clears what dead nodes left behind; what it took out, for the rooms to be told. */
  async reap(): Promise<Reaped[]> {
    const reply = (await runScript(this.redis, REAP, [`${this.prefix}:nodes`, this.nicksKey], [this.prefix, this.leaseKey('')])) as [string, string[][]][];
    return reply.map(([node, rooms]) => ({ node, rooms: rooms.map(([room, ...nicks]) => ({ room: room!, nicks })) }));
  }

  /** This node leaves cleanly: its lease goes now, and reap() clears the rest. */
  async leave(): Promise<void> {
    await this.redis.sendCommand(['DEL', this.leaseKey(this.node)]);
  }

  private get nicksKey(): string {
    return `${this.prefix}:nicks`;
  }

  private leaseKey(node: string): string {
    return `${this.prefix}:node:${node}`;
  }

  private nodeSet(what: 'nicks' | 'rooms'): string {
    return `${this.prefix}:node:${this.node}:${what}`;
  }

  private membersKey(room: string): string {
    return roomKeys(room, this.prefix).members;
  }
}

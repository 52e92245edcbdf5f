/**
 * Keeping order in rooms (docs/security.md, "Operators"): who is an operator, and the rules an
 * operator sets: bans, mutes, invite-only, the topic lock, a room's key. The rules of a room
 * are one record in the store, replaced on each change, so they outlast reconnects, nick
 * changes and restarts; every act is told to the room and logged with who did it.
 *
 * Who may act: a server operator (`--admin NICK`, logged in to that account) everywhere; in a
 * room, the accounts it lists as operators while they are logged in, and the sessions made
 * operator there without an account (the first member of a new room, or /op of a guest),
 * for as long as they stay.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { FailureThrottle } from '../auth/throttle.js';
import { addressOfPeer } from '../net/address.js';
import { RoomcastError } from '../protocol/errors.js';
import type { BanInfo, EventOf, ModerationAction, MuteInfo, RequestId } from '../protocol/events.js';
import { Frame } from '../protocol/frame.js';
import { minutesLeft } from '../protocol/moderation-text.js';
import { isValidNick, nickKey, sanitize } from '../protocol/text.js';
import type { PersonMask, RoomRules, StoredBan } from '../store/store.js';
import type { Hub } from './hub.js';
import type { Room } from './room.js';
import type { Session } from './session.js';

export const NO_RULES: RoomRules = Object.freeze({ ops: [], bans: [], mutes: [], inviteOnly: false, topicLock: false, key: null, invites: [] }) as RoomRules;

/** How long an invitation lets its guest in. */
const INVITE_MS = 60 * 60_000;
/** Longest mute in minutes (a week); longer ones are a ban. */
export const MAX_MUTE_MINUTES = 7 * 24 * 60;
/** Bans a room keeps at most: each join is checked against all of them. */
const MAX_BANS = 500;

/** Who someone is, as a ban or a mute sees them. */
export interface Person {
  key: string;
  account: string | null;
  address: string;
}

export function personOf(s: Session): Person {
  return { key: s.key, account: s.account, address: addressOfPeer(s.link.peer) };
}

/**
 * "*" and "?" over code points: the greedy walk that backs up to the last star, whose time
 * grows with the lengths' product at worst, unlike a regular expression's backtracking.
 */
export function globMatch(glob: string, key: string): boolean {
  if (!glob.includes('*') && !glob.includes('?')) return glob === key;
  const g = [...glob];
  const k = [...key];
  let gi = 0;
  let ki = 0;
  let star = -1;
  let resume = 0;
  while (ki < k.length) {
    if (gi < g.length && (g[gi] === '?' || g[gi] === k[ki])) {
      gi++;
      ki++;
    } else if (gi < g.length && g[gi] === '*') {
      star = gi++;
      resume = ki;
    } else if (star >= 0) {
      gi = star + 1;
      ki = ++resume;
    } else return false;
  }
  while (gi < g.length && g[gi] === '*') gi++;
  return gi === g.length;
}

/** Blocks made once each: a muted room checks every message against its mutes. */
const blocks = new Map<string, BlockList>();
const MAX_BLOCKS = 4096;

function blockOf(block: string): BlockList {
  let list = blocks.get(block);
  if (list) return list;
  const [ip, bits] = block.split('/');
  const type = isIP(ip!) === 6 ? 'ipv6' : 'ipv4';
  list = new BlockList();
  if (bits === undefined) list.addAddress(ip!, type);
  else list.addSubnet(ip!, Number(bits), type);
  if (blocks.size >= MAX_BLOCKS) blocks.clear();
  blocks.set(block, list);
  return list;
}

function addressMatch(block: string, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && blockOf(block).check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export function maskMatches(m: PersonMask, p: Person): boolean {
  if (m.account !== undefined && p.account === m.account) return true;
  if (m.nick !== undefined && globMatch(m.nick, p.key)) return true;
  return m.address !== undefined && addressMatch(m.address, p.address);
}

/** An IP address or a CIDR block, in the form given; null when it is neither. */
function addressBlock(text: string): string | null {
  const [ip, bits, extra] = text.split('/');
  if (extra !== undefined || !ip) return null;
  const family = isIP(ip);
  if (family === 0) return null;
  if (bits === undefined) return ip;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 6 ? 128 : 32)) return null;
  return `${ip}/${Number(bits)}`;
}

/** "+ikt" for the modes set ("" for none). */
export function modeString(r: RoomRules): string {
  const m = `${r.inviteOnly ? 'i' : ''}${r.key ? 'k' : ''}${r.topicLock ? 't' : ''}`;
  return m === '' ? '' : `+${m}`;
}

function keyHash(salt: string, key: string): Buffer {
  return createHash('sha256').update(salt).update('\0').update(key).digest();
}

export class Moderation {
  /** Server operators: account keys (--admin). */
  private readonly admins: Set<string>;
  /** Wrong room keys, per address and room. */
  private readonly keyGuesses: FailureThrottle;
  /** The rules of rooms that are not alive, where the store answers later (a cluster's Redis). */
  private readonly loaded = new Map<string, RoomRules>();

  constructor(
    private readonly hub: Hub,
    admins: readonly string[],
  ) {
    this.admins = new Set(admins.map(nickKey));
    this.keyGuesses = new FailureThrottle({ now: hub.opts.now });
  }

  /** The rules of a room, when known at once; undefined: load() them first. */
  rulesNow(name: string): RoomRules | undefined {
    const room = this.hub.rooms.get(name);
    return room ? room.rules : this.storedRules(name);
  }

  /** The rules kept for a room (loaded, or in a store that answers at once); undefined: load() them. */
  storedRules(name: string): RoomRules | undefined {
    const cached = this.loaded.get(name);
    if (cached) return cached;
    let stored: RoomRules | null | undefined;
    try {
      stored = this.hub.store.rulesNow?.(name);
    } catch {
      // Not open yet (the hub's first rooms, made before the store opens) or failing: load() says.
      return undefined;
    }
    return stored === undefined ? undefined : (stored ?? NO_RULES);
  }

  /** Reads a room's rules from the store (again), into the live room when there is one. */
  async load(name: string): Promise<RoomRules> {
    const rules = (await this.hub.store.rules(name)) ?? NO_RULES;
    const room = this.hub.rooms.get(name);
    if (room) room.rules = rules;
    else this.loaded.set(name, rules);
    return rules;
  }

  /** The room came alive: it takes the rules loaded for it. */
  taken(name: string): void {
    this.loaded.delete(name);
  }

  isAdmin(s: Session): boolean {
    return s.account !== null && this.admins.has(s.account);
  }

  isOp(s: Session, room: Room): boolean {
    return this.isAdmin(s) || room.sessionOps?.has(s) === true || (s.account !== null && room.rules.ops.includes(s.account));
  }

  /** The room's operators by nick: its members here who are, and those elsewhere its rules list. */
  opsOf(room: Room): string[] {
    const ops = [...room.members].filter((m) => this.isOp(m, room)).map((m) => m.nick);
    if (room.remote) for (const [key, nick] of room.remote) if (room.rules.ops.includes(key) || this.admins.has(key)) ops.push(nick);
    return ops.sort((a, b) => a.localeCompare(b));
  }

  /**
   * Whether `s` may come into the room with these rules: throws BANNED, INVITE_ONLY,
   * ROOM_KEY_REQUIRED, ROOM_KEY_WRONG or LOCKED_OUT. Server operators and the room's
   * operator accounts pass; an invitation passes +i and the key, never a ban.
   */
  admit(s: Session, name: string, rules: RoomRules, key: string | undefined): void {
    if (rules === NO_RULES) return;
    if (this.isAdmin(s) || (s.account !== null && rules.ops.includes(s.account))) return;
    const who = personOf(s);
    if (rules.bans.some((b) => maskMatches(b.match, who))) throw new RoomcastError('BANNED', name);
    const now = this.hub.opts.now();
    if (rules.invites.some((i) => i.until > now && (i.key === s.key || i.key === s.account))) return;
    if (rules.inviteOnly) throw new RoomcastError('INVITE_ONLY', name);
    if (rules.key === null) return;
    if (key === undefined || key === '') throw new RoomcastError('ROOM_KEY_REQUIRED', name);
    const guesser = `${who.address} ${name}`;
    const wait = this.keyGuesses.wait(guesser);
    if (wait > 0) throw new RoomcastError('LOCKED_OUT', Math.ceil(wait / 1000));
    const right = Buffer.from(rules.key.hash, 'hex');
    if (timingSafeEqual(keyHash(rules.key.salt, key), right)) {
      this.keyGuesses.succeeded(guesser);
      return;
    }
    const lock = this.keyGuesses.failed(guesser);
    if (lock > 0) throw new RoomcastError('LOCKED_OUT', Math.ceil(lock / 1000));
    throw new RoomcastError('ROOM_KEY_WRONG', name);
  }

  /**
   * The first member of a new room (not one of the server's own) is its operator, as in
   * IRC: by account when logged in, so it lasts; else for as long as the session stays.
   */
  founded(s: Session, room: Room): boolean {
    if (room.predefined || room.members.size !== 1 || (room.remote?.size ?? 0) > 0 || room.rules.ops.length > 0) return false;
    if (s.account !== null && s.account === s.key) this.update(room, { ops: [s.account] });
    else (room.sessionOps ??= new Set()).add(s);
    return true;
  }

  /** Throws MUTED when `s` may not speak in the room now. */
  checkVoice(s: Session, room: Room): void {
    if (room.rules.mutes.length === 0) return;
    const now = this.hub.opts.now();
    const who = personOf(s);
    const mute = room.rules.mutes.find((m) => (m.until === undefined || m.until > now) && maskMatches(m.match, who));
    if (mute === undefined || this.isOp(s, room)) return;
    throw new RoomcastError('MUTED', `[${room.name}] ${mute.until === undefined ? 'until an operator unmutes you' : minutesLeft(mute.until, now, 'more ')}`);
  }

  /** Throws BANNED or MUTED when the HTTP API may not post as `nick` from `address` (proved `account`, if any). */
  checkPoster(room: Room, nick: string, address: string, account: string | null): void {
    const now = this.hub.opts.now();
    const who: Person = { key: nickKey(nick), account, address };
    if (room.rules.bans.some((b) => maskMatches(b.match, who))) throw new RoomcastError('BANNED', room.name);
    if (room.rules.mutes.some((m) => (m.until === undefined || m.until > now) && maskMatches(m.match, who))) throw new RoomcastError('MUTED', `[${room.name}]`);
  }

  checkTopic(s: Session, room: Room): void {
    this.checkVoice(s, room);
    if (room.rules.topicLock && !this.isOp(s, room)) throw new RoomcastError('TOPIC_LOCKED', room.name);
  }

  private requireOp(s: Session, room: Room): void {
    if (!this.isOp(s, room)) throw new RoomcastError('NOT_OPERATOR', room.name);
  }

  /** A member of the room on this server by nick, or null. */
  private memberHere(room: Room, nick: string): Session | null {
    const s = this.hub.sessions.get(nickKey(nick));
    return s && room.members.has(s) ? s : null;
  }

  /** The nick of a member of the room on another server, or null. */
  private memberElsewhere(room: Room, nick: string): string | null {
    return room.remote?.get(nickKey(nick)) ?? null;
  }

  /** A target of op, deop, kick or mute: a member here, or the nick of one elsewhere; else NO_SUCH_NICK. */
  private target(room: Room, nick: string): Session | string {
    const here = this.memberHere(room, nick);
    if (here) return here;
    const there = this.memberElsewhere(room, nick);
    if (there !== null) return there;
    throw new RoomcastError('NO_SUCH_NICK', sanitize(nick.slice(0, 40)));
  }

  private protect(by: Session, target: Session | string): void {
    const admin = typeof target === 'string' ? this.admins.has(nickKey(target)) : this.isAdmin(target);
    if (admin && !this.isAdmin(by)) throw new RoomcastError('PROTECTED', typeof target === 'string' ? target : target.nick);
  }

  /** Replaces some of a room's rules: kept in the store, the room's copy replaced. */
  private update(room: Room, change: Partial<RoomRules>): void {
    const rules: RoomRules = { ...room.rules, ...change };
    room.rules = rules;
    this.hub.store.saveRules(room.name, rules).catch((err: unknown) => this.hub.observer.storeFailed?.(err));
  }

  /** Tells the room (and its members elsewhere) what an operator did, answers the operator, and logs it. */
  private tell(by: Session, room: Room, action: ModerationAction, fields: Partial<EventOf<'moderation'>>, id?: RequestId): void {
    const event: EventOf<'moderation'> = { type: 'moderation', room: room.name, by: by.nick, action, ...fields };
    this.hub.broadcast(room, new Frame(event), by);
    this.hub.reply(by, id, event);
    this.hub.announce(event, by.key);
    this.hub.observer.moderated?.(room, event);
  }

  op(s: Session, room: Room, nick: string, id?: RequestId): void {
    this.requireOp(s, room);
    const t = this.target(room, nick);
    if (typeof t === 'string') this.update(room, { ops: [...new Set([...room.rules.ops, nickKey(t)])] });
    else if (t.account !== null && t.account === t.key) this.update(room, { ops: [...new Set([...room.rules.ops, t.account])] });
    else (room.sessionOps ??= new Set()).add(t);
    this.tell(s, room, 'op', { target: typeof t === 'string' ? t : t.nick }, id);
  }

  deop(s: Session, room: Room, nick: string, id?: RequestId): void {
    this.requireOp(s, room);
    const t = this.target(room, nick);
    this.protect(s, t);
    const keys = typeof t === 'string' ? [nickKey(t)] : [t.key, t.account];
    if (typeof t !== 'string') room.sessionOps?.delete(t);
    if (room.rules.ops.some((k) => keys.includes(k))) this.update(room, { ops: room.rules.ops.filter((k) => !keys.includes(k)) });
    this.tell(s, room, 'deop', { target: typeof t === 'string' ? t : t.nick }, id);
  }

  kick(s: Session, room: Room, nick: string, reason: string | undefined, id?: RequestId): void {
    this.requireOp(s, room);
    const t = this.target(room, nick);
    if (t === s) throw new RoomcastError('KICK_SELF', room.name);
    this.protect(s, t);
    const why = reason === undefined ? undefined : sanitize(reason).trim().slice(0, 200) || undefined;
    if (typeof t === 'string') this.hub.kickElsewhere(room, t, s, why);
    else this.hub.kick(room, t, s.nick, why, s);
    this.hub.reply(s, id, { type: 'parted', room: room.name, nick: typeof t === 'string' ? t : t.nick, kickedBy: s.nick, ...(why ? { reason: why } : {}) });
  }

  /**
   * /ban: a member's nick bans their address (and account, when logged in) and puts them
   * out; `nick:GLOB`, `account:NAME`, `address:IP[/BITS]` (or a bare address) ban what they
   * say; any other word bans that nick. Everyone here the new ban matches is put out.
   */
  ban(s: Session, room: Room, maskText: string, reason: string | undefined, id?: RequestId): void {
    this.requireOp(s, room);
    const ban = this.banFor(s, room, maskText);
    const why = reason === undefined ? undefined : sanitize(reason).trim().slice(0, 200) || undefined;
    if (why) ban.reason = why;
    const others = room.rules.bans.filter((b) => b.mask !== ban.mask);
    if (others.length >= MAX_BANS) throw new RoomcastError('TOO_MANY_BANS', MAX_BANS);
    this.update(room, { bans: [...others, ban] });
    this.tell(s, room, 'ban', { target: ban.mask, ...(ban.nick ? { nick: ban.nick } : {}), ...(why ? { reason: why } : {}) }, id);
    this.enforceBans(room, s.nick, why ? `banned: ${why}` : 'banned');
  }

  private banFor(s: Session, room: Room, text: string): StoredBan {
    const base = { by: s.nick, time: this.hub.opts.now() };
    const shown = sanitize(text.slice(0, 60));
    const colon = text.indexOf(':');
    const kind = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
    const value = colon > 0 ? text.slice(colon + 1) : text;
    if (kind === 'address' || (kind === '' && addressBlock(text) !== null)) {
      const block = addressBlock(value);
      if (block === null) throw new RoomcastError('BAD_MASK', shown);
      return { ...base, mask: `address:${block}`, match: { address: block } };
    }
    if (kind === 'account') {
      if (!isValidNick(value)) throw new RoomcastError('BAD_MASK', shown);
      return { ...base, mask: `account:${nickKey(value)}`, match: { account: nickKey(value) } };
    }
    if (kind === 'nick') {
      if (!/^[\p{L}\p{N}_\-*?]{1,24}$/u.test(value)) throw new RoomcastError('BAD_MASK', shown);
      const glob = nickKey(value);
      return { ...base, mask: `nick:${glob}`, match: { nick: glob } };
    }
    if (kind !== '' || !isValidNick(text)) throw new RoomcastError('BAD_MASK', shown);
    const member = this.memberHere(room, text);
    if (member) {
      if (member === s) throw new RoomcastError('KICK_SELF', room.name);
      this.protect(s, member);
      const { address, account } = personOf(member);
      const proved = account !== null && account === member.key;
      const match: PersonMask = proved ? { address, account } : { address };
      return { ...base, mask: `address:${address}${proved ? `,account:${account}` : ''}`, match, nick: member.nick };
    }
    // Elsewhere in the cluster, or not here: their address is not known here.
    this.protect(s, text);
    return { ...base, mask: `nick:${nickKey(text)}`, match: { nick: nickKey(text) }, nick: this.memberElsewhere(room, text) ?? text };
  }

  /** Puts out of the room every member here whom its bans now match (operators stay). */
  enforceBans(room: Room, by: string, reason: string): void {
    for (const m of [...room.members]) {
      if (this.isOp(m, room)) continue;
      const who = personOf(m);
      if (room.rules.bans.some((b) => maskMatches(b.match, who))) this.hub.kick(room, m, by, reason);
    }
  }

  unban(s: Session, room: Room, maskText: string, id?: RequestId): void {
    this.requireOp(s, room);
    const key = nickKey(maskText);
    const gone = room.rules.bans.filter((b) => b.mask === maskText || nickKey(b.mask) === key || (b.nick !== undefined && nickKey(b.nick) === key));
    if (gone.length === 0) throw new RoomcastError('NO_SUCH_BAN', sanitize(maskText.slice(0, 60)));
    this.update(room, { bans: room.rules.bans.filter((b) => !gone.includes(b)) });
    for (const b of gone) this.tell(s, room, 'unban', { target: b.mask }, id);
  }

  bans(s: Session, room: Room, id?: RequestId): void {
    const now = this.hub.opts.now();
    const bans: BanInfo[] = room.rules.bans.map((b) => ({ mask: b.mask, ...(b.nick ? { nick: b.nick } : {}), by: b.by, time: b.time, ...(b.reason ? { reason: b.reason } : {}) }));
    const mutes: MuteInfo[] = room.rules.mutes
      .filter((m) => m.until === undefined || m.until > now)
      .map((m) => ({ nick: m.nick, by: m.by, time: m.time, ...(m.until !== undefined ? { until: m.until } : {}) }));
    this.hub.reply(s, id, { type: 'bans', room: room.name, bans, mutes });
  }

  mute(s: Session, room: Room, nick: string, minutes: number | undefined, id?: RequestId): void {
    this.requireOp(s, room);
    if (minutes !== undefined && (minutes < 1 || minutes > MAX_MUTE_MINUTES)) throw new RoomcastError('USAGE', `/mute NICK [MINUTES]: MINUTES from 1 to ${MAX_MUTE_MINUTES} (a week); without it, until /unmute`);
    const t = this.target(room, nick);
    if (t === s) throw new RoomcastError('KICK_SELF', room.name);
    this.protect(s, t);
    const now = this.hub.opts.now();
    let match: PersonMask;
    if (typeof t === 'string') match = { nick: nickKey(t) };
    else {
      const { address, account } = personOf(t);
      match = account !== null && account === t.key ? { address, account, nick: t.key } : { address, nick: t.key };
    }
    const shown = typeof t === 'string' ? t : t.nick;
    const mute = { nick: shown, match, by: s.nick, time: now, ...(minutes !== undefined ? { until: now + minutes * 60_000 } : {}) };
    const kept = room.rules.mutes.filter((m) => nickKey(m.nick) !== nickKey(shown) && (m.until === undefined || m.until > now));
    this.update(room, { mutes: [...kept, mute] });
    this.tell(s, room, 'mute', { target: shown, ...(mute.until !== undefined ? { until: mute.until } : {}) }, id);
  }

  unmute(s: Session, room: Room, nick: string, id?: RequestId): void {
    this.requireOp(s, room);
    const key = nickKey(nick);
    const here = this.memberHere(room, nick);
    const who = here ? personOf(here) : null;
    const gone = room.rules.mutes.filter((m) => nickKey(m.nick) === key || (who !== null && maskMatches(m.match, who)));
    if (gone.length === 0) throw new RoomcastError('NOT_MUTED', sanitize(nick.slice(0, 40)));
    this.update(room, { mutes: room.rules.mutes.filter((m) => !gone.includes(m)) });
    this.tell(s, room, 'unmute', { target: here?.nick ?? gone[0]!.nick }, id);
  }

  /**
   * /invite: lets a nick in past +i and the key for an hour, and tells them. In an
   * invite-only room only an operator may invite; elsewhere any member may.
   */
  invite(s: Session, room: Room, nick: string, id?: RequestId): void {
    if (room.rules.inviteOnly || room.rules.key !== null) this.requireOp(s, room);
    if (!isValidNick(nick)) throw new RoomcastError('NICK_INVALID', sanitize(nick.slice(0, 40)));
    const key = nickKey(nick);
    const here = this.hub.sessions.get(key);
    const now = this.hub.opts.now();
    const note = {
      type: 'privmsg' as const,
      from: s.nick,
      to: here?.nick ?? nick,
      text: `invites you to [${room.name}]: /join ${room.name}`,
      time: now,
    };
    const record = (): void => {
      const invites = room.rules.invites.filter((i) => i.until > now && i.key !== key);
      this.update(room, { invites: [...invites, { key, by: s.nick, until: now + INVITE_MS }] });
      this.tell(s, room, 'invite', { target: here?.nick ?? nick }, id);
    };
    if (here) {
      record();
      this.hub.send(here, note);
      return;
    }
    // On another server of the cluster, or nowhere (NO_SUCH_NICK).
    this.hub.sendPrivate(s, nick, note, id, record);
  }

  /** /mode: shows the modes, or changes them (+i, -i, +t, -t, -k). */
  mode(s: Session, room: Room, change: string | undefined, id?: RequestId): void {
    if (change === undefined) {
      this.hub.reply(s, id, { type: 'mode', room: room.name, modes: modeString(room.rules), ops: this.opsOf(room) });
      return;
    }
    const m = /^(?:[+-][ikt]+)+$/.exec(change);
    if (m === null || /\+[it]*k/.test(change)) throw new RoomcastError('BAD_MODE', sanitize(change.slice(0, 20)));
    this.requireOp(s, room);
    const next: Partial<RoomRules> = {};
    let sign = '+';
    for (const c of change) {
      if (c === '+' || c === '-') sign = c;
      else if (c === 'i') next.inviteOnly = sign === '+';
      else if (c === 't') next.topicLock = sign === '+';
      else if (c === 'k') next.key = null;
    }
    this.update(room, next);
    this.tell(s, room, 'mode', { modes: modeString(room.rules), change }, id);
  }

  key(s: Session, room: Room, key: string, id?: RequestId): void {
    this.requireOp(s, room);
    if (key.length > 64) throw new RoomcastError('TEXT_TOO_LONG', 64);
    const salt = randomBytes(16).toString('hex');
    this.update(room, { key: { salt, hash: keyHash(salt, key).toString('hex') } });
    this.tell(s, room, 'key', { modes: modeString(room.rules) }, id);
  }

  /**
   * An operator's act on another server of the cluster: the rules are read again and enforced
   * here, and then (`tell`) the members here hear of it, so that what they hear is in force.
   */
  heard(room: Room, event: EventOf<'moderation'>, tell: () => void): void {
    this.load(room.name).then(
      () => {
        tell();
        if (event.action === 'ban') this.enforceBans(room, event.by, event.reason ? `banned: ${event.reason}` : 'banned');
      },
      (err: unknown) => {
        this.hub.observer.storeFailed?.(err);
        tell();
      },
    );
  }
}

/**
 * What an operator's act looks like as a line of text: one wording for the text wire, the
 * terminal client and the server's log. `show` makes a field safe to print (the terminal
 * client neutralises what a server sends; the server's own fields are clean already).
 */
import type { BanInfo, EventOf, MuteInfo } from './events.js';

type Show = (value: unknown) => string;
const plain: Show = (v) => String(v ?? '');

/** "for 10 minutes" (`more`: "for 10 more minutes"), for a mute that ends at `until` (ms), told at `now`. */
export function minutesLeft(until: number, now: number, more = ''): string {
  const min = Math.max(1, Math.ceil((until - now) / 60_000));
  return `for ${min} ${more}minute${min === 1 ? '' : 's'}`;
}

/** How long a mute lasts, as its announcement says it. */
export function muteSpan(until: number | undefined, now: number): string {
  return until === undefined ? 'until an operator unmutes them' : minutesLeft(until, now);
}

export function moderationLine(e: EventOf<'moderation'>, now: number, show: Show = plain): string {
  const by = show(e.by);
  const room = `[${show(e.room)}]`;
  const target = show(e.target);
  const why = e.reason ? ` (${show(e.reason)})` : '';
  switch (e.action) {
    case 'op':
      return `${by} made ${target} an operator of ${room}`;
    case 'deop':
      return `${by} took away ${target}'s operator status in ${room}`;
    case 'ban':
      return `${by} banned ${e.nick ? `${show(e.nick)} (${target})` : target} from ${room}${why}`;
    case 'unban':
      return `${by} lifted the ban ${target} in ${room}`;
    case 'mute':
      return `${by} muted ${target} in ${room} ${muteSpan(e.until, now)}`;
    case 'unmute':
      return `${by} unmuted ${target} in ${room}`;
    case 'invite':
      return `${by} invited ${target} to ${room}`;
    case 'mode':
      return `${by} set mode ${show(e.change)} on ${room} (modes now: ${show(e.modes) || 'none'})`;
    case 'key':
      return `${by} set a key on ${room}: joining needs it from now on`;
    default:
      return `${by} changed ${room} (${show(e.action)})`;
  }
}

/** A kick, as everyone in the room (`self`: the one kicked) reads it. */
export function kickLine(e: EventOf<'parted'>, show: Show = plain): string {
  const why = e.reason ? ` (${show(e.reason)})` : '';
  return e.self
    ? `You were put out of [${show(e.room)}] by ${show(e.kickedBy)}${why}`
    : `${show(e.kickedBy)} put ${show(e.nick)} out of [${show(e.room)}]${why}`;
}

export function modeLines(e: EventOf<'mode'>, show: Show = plain): string {
  const ops = Array.isArray(e.ops) && e.ops.length > 0 ? e.ops.map(show).join(', ') : 'none here';
  return `Modes of [${show(e.room)}]: ${show(e.modes) || 'none'}; operators: ${ops}`;
}

function since(time: number): string {
  return new Date(time).toISOString().slice(0, 16).replace('T', ' ');
}

export function bansLines(e: EventOf<'bans'>, now: number, show: Show = plain): string[] {
  const bans: BanInfo[] = Array.isArray(e.bans) ? e.bans : [];
  const mutes: MuteInfo[] = Array.isArray(e.mutes) ? e.mutes : [];
  if (bans.length === 0 && mutes.length === 0) return [`[${show(e.room)}] has no bans and no mutes`];
  return [
    `[${show(e.room)}]: ${bans.length} ban${bans.length === 1 ? '' : 's'}, ${mutes.length} mute${mutes.length === 1 ? '' : 's'}`,
    ...bans.map((b) => `  ban ${show(b.mask)}${b.nick ? ` (${show(b.nick)})` : ''} by ${show(b.by)}, ${since(b.time)}${b.reason ? `: ${show(b.reason)}` : ''}`),
    ...mutes.map((m) => `  mute ${show(m.nick)} by ${show(m.by)}, ${since(m.time)}, ${m.until === undefined ? 'until unmuted' : minutesLeft(m.until, now, 'more ')}`),
  ];
}

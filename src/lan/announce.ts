/**
 * A server telling the LAN it is there (`roomcast serve --announce`, or --lan): it answers mDNS
 * queries for _roomcast._tcp as one named instance, with its port, version and addresses.
 *
 * As RFC 6762 has it: it first probes for its name, and takes "NAME (2)" if another machine
 * already answers for it (cloned lab machines share a host name); then announces twice, a
 * second apart; answers queries; and on stop says goodbye (its records with TTL 0), so browsers
 * drop it at once instead of when the records expire. All of it is UDP and asynchronous: the
 * hub never waits for it, and a failure is a warning, never the end of the server.
 */
import os from 'node:os';
import type { RemoteInfo } from 'node:dgram';
import type { Answer, Question } from 'dns-packet';
import type makeMdns from 'multicast-dns';
import type { Logger } from '../log.js';
import { ANY, encodeTxt, explainOpenError, explainSendError, openMdns, sameName, SERVICE, SERVICE_TYPES, type ServerInfo } from './discovery.js';
import { addressesServedBy, isWildcard, localAddresses, type InterfaceMap } from './interfaces.js';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;
/** RFC 6762 section 10: host-related records live 120 s, the others 75 minutes. */
const HOST_TTL = 120;
const OTHER_TTL = 4500;
const PROBES = 3;
const PROBE_INTERVAL_MS = 250;
const ANNOUNCEMENTS = 2;
const ANNOUNCE_INTERVAL_MS = 1000;
/** A network where every name seems taken is answering for names it does not own: stop there. */
const MAX_RENAMES = 10;
/** Goodbye is one packet: if the network does not take it by then, shutdown goes on without it. */
const GOODBYE_LIMIT_MS = 1000;
/** A DNS label holds at most 63 bytes. */
const MAX_LABEL = 63;

export interface AnnounceOptions {
  /** Where the server listens (RoomcastServer.listening's addresses, wildcards included). */
  bound: string[];
  port: number;
  info: ServerInfo;
  logger: Logger;
}

/** The LAN addresses a server bound to these addresses can be reached at, IPv4 first, without zones. */
export function advertisedAddresses(bound: string[], ifaces: InterfaceMap): string[] {
  const here = localAddresses(ifaces);
  const out: string[] = [];
  for (const b of bound) {
    if (isWildcard(b)) out.push(...addressesServedBy(b, here).map((a) => a.address.split('%')[0]));
    else if (!LOOPBACK.test(b)) out.push(b.split('%')[0]);
  }
  const unique = [...new Set(out)];
  return unique.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
}

function truncateLabel(label: string): string {
  let out = label;
  while (Buffer.byteLength(out) > MAX_LABEL) out = out.slice(0, -1);
  return out;
}

/** The instance name a server takes by default: the host name's first label, since a dot would split it. */
export function defaultInstanceName(hostname = os.hostname()): string {
  return truncateLabel(`roomcast on ${hostname.split('.')[0] || 'this machine'}`);
}

/** DNS-SD's way of making a taken name unique: "NAME (2)", "NAME (3)". */
export function renamed(base: string, n: number): string {
  const suffix = ` (${n})`;
  let stem = base;
  while (Buffer.byteLength(stem + suffix) > MAX_LABEL) stem = stem.slice(0, -1);
  return stem + suffix;
}

/**
 * The host name its addresses are published under, made from the instance name so that it is
 * unique with it, and never this machine's own HOSTNAME.local, which avahi-daemon may be
 * defending with a different set of addresses.
 */
export function targetHost(instance: string): string {
  const label = instance.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, MAX_LABEL) || 'roomcast';
  return `${label}.local`;
}

type Phase = 'idle' | 'probing' | 'announced' | 'stopped';

export class Announcer {
  /** The name it answers for; "NAME (2)" after a conflict. */
  private name: string;
  private readonly base: string;
  private readonly opts: AnnounceOptions;
  private mdns: makeMdns.MulticastDNS | null = null;
  private phase: Phase = 'idle';
  private renames = 0;
  private conflict = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Send failures already reported: the first of each kind is news, the rest noise. */
  private readonly warned = new Set<string>();
  private stopping: Promise<void> | null = null;

  constructor(opts: AnnounceOptions) {
    this.opts = opts;
    this.base = defaultInstanceName();
    this.name = this.base;
  }

  private get fqdn(): string {
    return `${this.name}.${SERVICE}`;
  }

  private get target(): string {
    return targetHost(this.name);
  }

  /**
   * Starts probing and announcing in the background. A server that other machines cannot reach
   * is not announced (that would only mislead); a warning says so.
   */
  start(): void {
    const { bound, logger } = this.opts;
    if (bound.every((b) => LOOPBACK.test(b))) {
      logger.warn(
        `not announcing on the LAN: the server listens on loopback only (${bound.join(', ')}), which other machines cannot reach. Use --lan, or --host with a LAN address.`,
      );
      return;
    }
    const mdns = openMdns();
    this.mdns = mdns;
    mdns.on('error', (err: NodeJS.ErrnoException) => {
      if (this.phase === 'stopped') return;
      logger.warn(`not announcing on the LAN: ${explainOpenError(err)}. The chat works; give people its address instead.`);
      void this.stop();
    });
    mdns.on('warning', (err: Error) => logger.debug(`mDNS: ${err.message}`));
    mdns.on('query', (query, rinfo: RemoteInfo) => this.answer(query.questions, query.answers, rinfo));
    mdns.on('response', (res) => {
      // While probing, nothing of ours is out yet: a record with our name is someone else's.
      const claims = (rr: Answer): boolean => rr.type !== 'OPT' && (rr.ttl ?? 0) > 0 && this.isOurName(rr.name);
      if (this.phase === 'probing' && [...res.answers, ...res.additionals].some(claims)) this.conflict = true;
    });
    const addresses = advertisedAddresses(bound, os.networkInterfaces());
    logger.info(`announcing "${this.name}" on the LAN (mDNS ${SERVICE}, port ${this.opts.port}): ${addresses.join(', ') || 'no LAN address yet'}`);
    this.probe();
  }

  private isOurName(name: string): boolean {
    return sameName(name, this.fqdn) || sameName(name, this.target);
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private probe(): void {
    this.phase = 'probing';
    this.conflict = false;
    let sent = 0;
    const step = (): void => {
      if (this.phase !== 'probing') return;
      if (this.conflict) {
        if (++this.renames > MAX_RENAMES) {
          this.opts.logger.warn(`not announcing on the LAN: ${MAX_RENAMES} names in a row were taken; something on the network answers for every name.`);
          void this.stop();
          return;
        }
        const taken = this.name;
        this.name = renamed(this.base, this.renames + 1);
        this.opts.logger.info(`"${taken}" is taken on the LAN; announcing as "${this.name}"`);
        this.probe();
        return;
      }
      if (sent === PROBES) {
        this.announce();
        return;
      }
      sent++;
      const questions: Question[] = [
        { name: this.fqdn, type: ANY },
        { name: this.target, type: ANY },
      ];
      // The records we mean to use ride along, so two servers probing at once can tell.
      this.mdns?.query({ questions, authorities: this.records(HOST_TTL, OTHER_TTL).slice(1) }, (err) => this.sendFailed(err));
      this.later(step, PROBE_INTERVAL_MS);
    };
    // A random start, so servers started together (a lab powering on) do not probe in step.
    this.later(step, Math.random() * PROBE_INTERVAL_MS);
  }

  private announce(): void {
    this.phase = 'announced';
    let left = ANNOUNCEMENTS;
    const send = (): void => {
      if (this.phase !== 'announced') return;
      this.mdns?.respond(this.records(HOST_TTL, OTHER_TTL), (err) => this.sendFailed(err));
      if (--left > 0) this.later(send, ANNOUNCE_INTERVAL_MS);
    };
    send();
  }

  /** PTR, SRV, TXT, then A/AAAA; the records a server owns carry the cache-flush bit. */
  private records(hostTtl: number, otherTtl: number): Answer[] {
    const addresses = advertisedAddresses(this.opts.bound, os.networkInterfaces());
    return [
      { name: SERVICE, type: 'PTR', ttl: otherTtl, data: this.fqdn },
      { name: this.fqdn, type: 'SRV', ttl: hostTtl, flush: true, data: { port: this.opts.port, target: this.target, priority: 0, weight: 0 } },
      { name: this.fqdn, type: 'TXT', ttl: otherTtl, flush: true, data: encodeTxt(this.opts.info) },
      ...addresses.map((a): Answer => ({ name: this.target, type: a.includes(':') ? 'AAAA' : 'A', ttl: hostTtl, flush: true, data: a })),
    ];
  }

  private answer(questions: Question[], known: Answer[], rinfo: RemoteInfo): void {
    if (this.phase !== 'announced') return;
    const all = this.records(HOST_TTL, OTHER_TTL);
    const [ptr, srv, txt] = all;
    const addresses = all.slice(3);
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const wants = (q: Question, type: string): boolean => q.type === type || q.type === ANY;
    for (const q of questions) {
      if (sameName(q.name, SERVICE) && wants(q, 'PTR')) {
        // Known-answer suppression (RFC 6762 section 7.1): a browser that already has our PTR
        // with more than half its lifetime left lists it in its query, and needs no answer.
        const heard = known.some((k) => k.type === 'PTR' && sameName(k.name, SERVICE) && sameName(String(k.data), this.fqdn) && (k.ttl ?? 0) >= OTHER_TTL / 2);
        if (heard) continue;
        answers.push(ptr);
        additionals.push(srv, txt, ...addresses);
      } else if (sameName(q.name, SERVICE_TYPES) && wants(q, 'PTR')) {
        answers.push({ name: SERVICE_TYPES, type: 'PTR', ttl: OTHER_TTL, data: SERVICE });
      } else if (sameName(q.name, this.fqdn)) {
        if (wants(q, 'SRV')) answers.push(srv);
        if (wants(q, 'TXT')) answers.push(txt);
        additionals.push(...addresses);
      } else if (sameName(q.name, this.target)) {
        answers.push(...addresses.filter((a) => wants(q, a.type)));
      }
    }
    if (answers.length === 0) return;
    const extra = additionals.filter((a, i) => !answers.includes(a) && additionals.indexOf(a) === i);
    this.mdns?.respond({ answers, additionals: extra }, (err) => this.sendFailed(err));
    this.opts.logger.debug(`mDNS: answered ${rinfo.address} about ${questions.map((q) => `${q.name} ${q.type}`).join(', ')}`);
  }

  private sendFailed(err: Error | null | undefined): void {
    // Once stopped (the socket could not be opened, say), that has been reported already.
    if (!err || this.phase === 'stopped') return;
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    if (this.warned.has(code)) return;
    this.warned.add(code);
    this.opts.logger.warn(`could not announce on the LAN: ${explainSendError(err as NodeJS.ErrnoException)}. The chat works; other machines just will not find it by name.`);
  }

  /** Says goodbye if it had announced, and closes the socket; resolves within about a second. */
  stop(): Promise<void> {
    this.stopping ??= new Promise((resolve) => {
      const wasAnnounced = this.phase === 'announced';
      this.phase = 'stopped';
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      const mdns = this.mdns;
      if (!mdns) return resolve();
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        clearTimeout(limit);
        mdns.destroy(() => resolve());
      };
      const limit = setTimeout(close, GOODBYE_LIMIT_MS);
      if (wasAnnounced) mdns.respond(this.records(0, 0), close);
      else close();
    });
    return this.stopping;
  }
}

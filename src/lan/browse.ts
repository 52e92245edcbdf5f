/**
 * Asking the LAN which roomcast servers are there: a DNS-SD browse for _roomcast._tcp over
 * multicast DNS, for a bounded time. Answers are collected as they come (a server may answer
 * more than once, or say goodbye while we listen) and read at the end.
 */
import type { RemoteInfo } from 'node:dgram';
import os from 'node:os';
import type { Answer, Question } from 'dns-packet';
import { decodeTxt, explainOpenError, explainSendError, openMdns, sameName, SERVICE, type DiscoveredServer } from './discovery.js';
import { interfaceFor, isLinkLocalV6 } from './reach.js';

/** Browsing could not be done at all (no socket, no route): a sentence for a person. */
export class DiscoveryError extends Error {}

interface Srv {
  port: number;
  target: string;
}

/**
 * What the answers heard so far say, record by record. Names are keyed in lower case (DNS
 * names ignore case); a record with TTL 0 is a goodbye and takes back what it named.
 */
export class Sightings {
  private readonly instances = new Map<string, string>();
  private readonly srv = new Map<string, Srv>();
  private readonly txt = new Map<string, Pick<DiscoveredServer, 'version' | 'httpPort' | 'cluster'>>();
  private readonly hosts = new Map<string, Set<string>>();
  private readonly asked = new Set<string>();

  /** Takes in one response packet's records; zone: the interface it came through, if known. */
  add(records: Answer[], zone: string | null): void {
    for (const rr of records) {
      if (rr.type === 'OPT') continue;
      const key = rr.name.toLowerCase();
      const gone = rr.ttl === 0;
      switch (rr.type) {
        case 'PTR':
          if (!sameName(rr.name, SERVICE)) break;
          if (gone) this.instances.delete(rr.data.toLowerCase());
          else this.instances.set(rr.data.toLowerCase(), rr.data);
          break;
        case 'SRV':
          if (gone) this.srv.delete(key);
          else this.srv.set(key, { port: rr.data.port, target: rr.data.target });
          break;
        case 'TXT':
          if (gone) this.txt.delete(key);
          else this.txt.set(key, decodeTxt(rr.data));
          break;
        case 'A':
        case 'AAAA': {
          // An AAAA record cannot carry a zone; the link the answer came over is the one.
          const address = rr.type === 'AAAA' && isLinkLocalV6(rr.data) && zone ? `${rr.data}%${zone}` : rr.data;
          const set = this.hosts.get(key) ?? new Set<string>();
          if (gone) set.delete(address);
          else set.add(address);
          this.hosts.set(key, set);
          break;
        }
      }
    }
  }

  /** Questions for what an answer left out (a PTR without its SRV, a host without addresses), each asked once. */
  missing(): Question[] {
    const questions: Question[] = [];
    const ask = (name: string, type: Question['type']): void => {
      const key = `${type} ${name.toLowerCase()}`;
      if (this.asked.has(key)) return;
      this.asked.add(key);
      questions.push({ name, type });
    };
    for (const [key, fqdn] of this.instances) {
      if (!this.srv.has(key)) ask(fqdn, 'SRV');
      if (!this.txt.has(key)) ask(fqdn, 'TXT');
      const target = this.srv.get(key)?.target;
      if (target && !this.hosts.get(target.toLowerCase())?.size) {
        ask(target, 'A');
        ask(target, 'AAAA');
      }
    }
    return questions;
  }

  /** The PTRs already heard, sent along with a repeated query so servers need not answer again. */
  knownAnswers(): Answer[] {
    return [...this.instances.values()].map((fqdn) => ({ name: SERVICE, type: 'PTR', ttl: 4500, data: fqdn }));
  }

  /** The servers complete enough to connect to (their SRV came), by name. */
  servers(): DiscoveredServer[] {
    const out: DiscoveredServer[] = [];
    for (const [key, fqdn] of this.instances) {
      const srv = this.srv.get(key);
      if (!srv) continue;
      const txt = this.txt.get(key) ?? { version: null, httpPort: null, cluster: null };
      const addresses = [...(this.hosts.get(srv.target.toLowerCase()) ?? [])];
      addresses.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
      out.push({
        name: fqdn.slice(0, -(SERVICE.length + 1)),
        host: srv.target,
        port: srv.port,
        addresses,
        ...txt,
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** When the query is repeated (if there is time for answers), in case the first one or its answers were lost (UDP). */
const REQUERY_MS = 1000;

/**
 * Browses for timeoutMs and resolves with the servers heard, the ones that said goodbye in the
 * meantime left out. Rejects with a DiscoveryError when it cannot browse at all.
 */
export function browse(timeoutMs: number): Promise<DiscoveredServer[]> {
  return new Promise((resolve, reject) => {
    const mdns = openMdns();
    const sightings = new Sightings();
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      mdns.destroy();
      if (err) reject(err);
      else resolve(sightings.servers());
    };
    const sent = (err: Error | null): void => {
      if (err) finish(new DiscoveryError(explainSendError(err as NodeJS.ErrnoException)));
    };
    mdns.on('error', (err: NodeJS.ErrnoException) => finish(new DiscoveryError(explainOpenError(err))));
    // An interface that cannot join the multicast group is not worth a failure: others may.
    mdns.on('warning', () => {});
    mdns.on('response', (res, rinfo: RemoteInfo) => {
      sightings.add([...res.answers, ...res.additionals], interfaceFor(rinfo.address, os.networkInterfaces()));
      const questions = sightings.missing();
      if (questions.length > 0) mdns.query(questions, sent);
    });
    mdns.query([{ name: SERVICE, type: 'PTR' }], sent);
    if (timeoutMs > REQUERY_MS + 200)
      timers.push(setTimeout(() => mdns.query({ questions: [{ name: SERVICE, type: 'PTR' }], answers: sightings.knownAnswers() }, sent), REQUERY_MS));
    timers.push(setTimeout(() => finish(null), timeoutMs));
  });
}

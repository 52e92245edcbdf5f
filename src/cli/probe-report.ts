/**
 * `roomcast probe`'s results for people (a table, a legend, and sentences drawn from what was
 * actually measured) and for programs (a JSON document). Pure: a report in, a string out.
 */
import { isIP } from 'node:net';
import { Chalk, type ChalkInstance, type ColorSupportLevel } from 'chalk';
import type { Attempt, BindResult, Outcome, ProbeReport } from '../lan/probe.js';

/** Bumped only when a field changes meaning or disappears; new fields may appear without it. */
export const PROBE_JSON_FORMAT = 1;

export function probeJson(report: ProbeReport): string {
  return `${JSON.stringify({ format: PROBE_JSON_FORMAT, ...report }, null, 2)}\n`;
}

export interface RenderOptions {
  color: ColorSupportLevel;
  /** Terminal width: the table is cut into blocks of columns that fit. */
  width: number;
}

const CELL: Record<Outcome, string> = {
  yes: 'yes',
  refused: 'refused',
  unreachable: 'unreach',
  unavailable: 'no addr',
  timeout: 'timeout',
  other: 'other',
  error: 'error',
};

const CELL_WIDTH = 7;
const GAP = '  ';

export function renderProbeReport(report: ProbeReport, opts: RenderOptions): string {
  const c = new Chalk({ level: opts.color });
  const out: string[] = [
    ...wrap('roomcast probe: a server bound to each address (rows), and a client on this machine connecting to it through each address (columns). Each server had a free port of its own.', opts.width),
    '',
    'Connecting to:',
    ...destinationKey(report),
    '',
    ...table(report, c, opts.width),
    '',
    ...legend(report, c, opts.width),
    '',
    'What this shows:',
    ...explainProbe(report).flatMap((s) => wrap(s, opts.width, '- ', '  ')),
  ];
  return `${out.join('\n')}\n`;
}

function key(i: number): string {
  // A..Z, then AA, AB...: a machine with docker and VPNs can have more than 26 addresses.
  return i < 26 ? String.fromCharCode(65 + i) : key(Math.floor(i / 26) - 1) + key(i % 26);
}

function destinationKey(report: ProbeReport): string[] {
  const width = Math.max(...report.destinations.map((d) => d.length));
  return report.destinations.map((d, i) => {
    const a = report.addresses.find((x) => x.address === d);
    const where = !a ? 'not on this machine' : a.loopback ? `${a.interface} (loopback)` : a.linkLocal ? `${a.interface} (link-local)` : a.interface;
    return `  ${key(i).padEnd(2)} ${d.padEnd(width)}  ${where}`;
  });
}

function rowLabel(b: BindResult): string {
  return b.bound.length === 0 || (b.bound.length === 1 && b.bound[0] === b.bind) ? b.bind : `${b.bind} (${b.bound.join(', ')})`;
}

const isMapped = (a: Attempt): boolean => a.peer?.startsWith('::ffff:') === true;

function cell(a: Attempt | undefined): string {
  if (!a) return '';
  if (a.outcome === 'yes') return isMapped(a) ? 'yes*' : 'yes';
  return a.outcome === 'error' && a.code ? a.code : CELL[a.outcome];
}

function paint(c: ChalkInstance, text: string, a: Attempt | undefined): string {
  switch (a?.outcome) {
    case 'yes':
      return c.green(text);
    case 'refused':
    case undefined:
      return text;
    case 'other':
    case 'error':
      return c.red(text);
    default:
      return c.yellow(text);
  }
}

function table(report: ProbeReport, c: ChalkInstance, width: number): string[] {
  const head = 'Bound to';
  const labels = report.binds.map(rowLabel);
  const labelWidth = Math.max(head.length, ...labels.map((l) => l.length));
  const perBlock = Math.max(1, Math.floor((width - labelWidth) / (GAP.length + CELL_WIDTH)));
  const lines: string[] = [];
  for (let first = 0; first < report.destinations.length; first += perBlock) {
    const cols = report.destinations.slice(first, first + perBlock).map((d, i) => ({ d, k: key(first + i) }));
    if (first > 0) lines.push('');
    lines.push(`${head.padEnd(labelWidth)}${cols.map(({ k }) => GAP + k.padEnd(CELL_WIDTH)).join('')}`.trimEnd());
    report.binds.forEach((b, row) => {
      const label = labels[row]!.padEnd(labelWidth);
      if (b.error) {
        lines.push(`${label}${GAP}${c.red(`could not bind: ${b.error.code}`)}`);
        return;
      }
      const cells = cols.map(({ d }) => {
        const a = b.attempts.find((x) => x.destination === d);
        return GAP + paint(c, cell(a).padEnd(CELL_WIDTH), a);
      });
      lines.push(`${label}${cells.join('')}`.trimEnd());
    });
  }
  return lines;
}

function legend(report: ProbeReport, c: ChalkInstance, width: number): string[] {
  const seen = new Set<string>(report.binds.flatMap((b) => b.attempts.map((a) => (a.outcome === 'yes' && isMapped(a) ? 'mapped' : a.outcome))));
  const words: [string, string][] = [
    ['yes', 'yes: connected, and the server bound there answered'],
    ['mapped', 'yes*: the server saw the client as an IPv4-mapped IPv6 address (::ffff:...)'],
    ['refused', 'refused: nothing listens there (connection refused)'],
    ['unreachable', 'unreach: no route to that address'],
    ['unavailable', 'no addr: this machine cannot use that address (address not available)'],
    ['timeout', `timeout: no answer within ${report.timeoutMs} ms`],
    ['other', 'other: another program answered on that port'],
    ['error', 'a code (EINVAL...): the system refused the connection attempt with that error'],
  ];
  const text = words.filter(([k]) => seen.has(k) || (k === 'yes' && seen.has('mapped'))).map(([, w]) => `${w}.`).join(' ');
  return wrap(text, width).map((l) => c.dim(l));
}

function wrap(text: string, width: number, first = '', rest = first): string[] {
  const lines: string[] = [];
  let line = first;
  for (const word of text.split(' ')) {
    const lead = lines.length === 0 ? first : rest;
    if (line.length > lead.length && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest + word;
    } else line = line.length > lead.length ? `${line} ${word}` : line + word;
  }
  lines.push(line);
  return lines;
}

function list(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

const LOOPBACK_BINDS = ['localhost', '127.0.0.1', '::1'];
const isLoopback = (address: string): boolean => address.startsWith('127.') || address === '::1';
const isLinkLocal = (address: string): boolean => /^fe[89ab][0-9a-f]:/i.test(address);
const yesTo = (b: BindResult): string[] => b.attempts.filter((a) => a.outcome === 'yes').map((a) => a.destination);
const tried = (b: BindResult): string[] => b.attempts.filter((a) => a.outcome !== 'unavailable').map((a) => a.destination);

/** "through every address" / "only through A and B" / "through none of the addresses". */
function reach(b: BindResult): string {
  const yes = yesTo(b);
  if (yes.length === 0) return 'through none of the addresses';
  if (yes.length === tried(b).length) return 'through every address';
  return `only through ${list(yes)}`;
}

function generic(b: BindResult): string {
  return `Bound to ${rowLabel(b)}, the server was reachable ${reach(b)}.`;
}

/** The sentences under the table: what these particular results mean. */
export function explainProbe(report: ProbeReport): string[] {
  const bound = report.binds.filter((b) => !b.error);
  const find = (bind: string): BindResult | undefined => bound.find((b) => b.bind === bind);
  const out: string[] = [];

  const loop = LOOPBACK_BINDS.map(find).filter((b): b is BindResult => b !== undefined);
  const closed = loop.filter((b) => yesTo(b).length > 0 && yesTo(b).every(isLoopback));
  if (closed.length > 0)
    out.push(
      `${closed.map((b, i) => `${i === 0 ? 'Bound to' : 'bound to'} ${rowLabel(b)}, ${i === 0 ? 'the server was reachable ' : ''}only through ${list(yesTo(b))}`).join('; ')}: ` +
        'loopback never leaves this machine, so other machines cannot connect. That is what `roomcast serve` does by default (localhost); --host :: opens it to the LAN.',
    );
  out.push(...loop.filter((b) => !closed.includes(b)).map(generic));

  const any4 = find('0.0.0.0');
  if (any4) {
    const yes = yesTo(any4);
    const v4 = tried(any4).filter((d) => isIP(d) === 4);
    if (v4.length > 0 && v4.every((d) => yes.includes(d)) && yes.every((d) => isIP(d) === 4))
      out.push(`Bound to 0.0.0.0, the server was reachable through every IPv4 address (${list(v4)}) and no IPv6 one: 0.0.0.0 means every interface, IPv4 only.`);
    else out.push(generic(any4));
  }

  const any6 = find('::');
  if (any6) {
    const mapped = any6.attempts.filter((a) => a.outcome === 'yes' && isIP(a.destination) === 4 && isMapped(a));
    const v4 = tried(any6).filter((d) => isIP(d) === 4);
    const yes = yesTo(any6);
    let sentence = generic(any6);
    if (yes.length > 0 && yes.length === tried(any6).length)
      sentence = tried(any6).some((d) => isIP(d) === 6)
        ? `Bound to ::, the server was reachable through every address, IPv4 and IPv6${tried(any6).some(isLinkLocal) ? ' (link-local too)' : ''}.`
        : 'Bound to ::, the server was reachable through every address (all IPv4: this machine has no usable IPv6 address).';
    if (mapped.length > 0)
      sentence += ` IPv4 clients arrived as IPv4-mapped IPv6 addresses (${list(mapped.map((a) => a.peer!))}): one dual-stack socket takes both families, which is why --host :: opens roomcast to the whole LAN (its logs show such clients as plain IPv4).`;
    else if (v4.length > 0 && !v4.some((d) => yes.includes(d)) && yes.length > 0)
      sentence += ' IPv4 clients could not connect: this system keeps IPv6 sockets IPv6-only (net.ipv6.bindv6only=1), so listen on both: --host :: --host 0.0.0.0.';
    out.push(sentence);
  }

  const own = bound.filter((b) => !LOOPBACK_BINDS.includes(b.bind) && b.bind !== '0.0.0.0' && b.bind !== '::');
  const itself = own.filter((b) => yesTo(b).length === 1 && yesTo(b)[0] === b.bind);
  if (itself.length > 0)
    out.push(
      `Bound to one of this machine's own addresses (${list(itself.map((b) => b.bind))}), the server was reachable only through that same address, not through loopback or the other addresses: a single address serves only the clients that dial it.`,
    );
  out.push(...own.filter((b) => !itself.includes(b)).map(generic));

  const linkLocal = report.destinations.filter((d) => isLinkLocal(d) && bound.some((b) => yesTo(b).includes(d)));
  if (linkLocal.length > 0)
    out.push(
      `Link-local addresses (${list(linkLocal)}) work only on their own link, and only with the zone after %: it names the interface of the machine that connects, so from another machine write that machine's interface (wlan0, en0...).`,
    );

  out.push(...problems(report));

  out.push(
    "A firewall (nftables, iptables, ufw) does not show here: a machine's connections to itself go over loopback, which firewalls normally let through. It may still drop other machines' connections, turning their yes into a timeout; if they cannot connect, allow the port (for example: ufw allow 7447/tcp).",
  );
  return out;
}

function problems(report: ProbeReport): string[] {
  const out: string[] = [];
  for (const b of report.binds.filter((x) => x.error)) {
    const { code, message } = b.error!;
    const v6 = isIP(b.bind) === 6 || b.bind === '::';
    if (v6 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT'))
      out.push(`${b.bind} could not be bound (${code}): IPv6 looks turned off on this machine, so roomcast can only serve IPv4 here (--host 0.0.0.0).`);
    else out.push(`${b.bind} could not be bound: ${message}.`);
  }
  const all = report.binds.flatMap((b) => b.attempts.map((a) => ({ b, a })));
  const where = (outcome: Outcome): string[] => [...new Set(all.filter(({ a }) => a.outcome === outcome).map(({ a }) => a.destination))];
  // An address that could not even be bound has been explained just above.
  const unavailable = where('unavailable').filter((d) => !report.binds.some((b) => b.bind === d && b.error));
  if (unavailable.length > 0) out.push(`${list(unavailable)} could not be used at all (address not available): this machine does not have ${unavailable.length > 1 ? 'them' : 'it'} right now.`);
  const unreachable = where('unreachable');
  if (unreachable.length > 0) out.push(`${list(unreachable)}: no route (unreachable), although ${unreachable.length > 1 ? 'they are' : 'it is'} this machine's; is the interface down?`);
  const timeouts = where('timeout');
  if (timeouts.length > 0)
    out.push(`Connections to ${list(timeouts)} got no answer within ${report.timeoutMs} ms: a firewall rule on this machine drops them (try a longer --timeout if the machine is just busy).`);
  const others = all.filter(({ a }) => a.outcome === 'other');
  if (others.length > 0)
    out.push(
      `Another program answered through ${list(others.map(({ a, b }) => `${a.destination} port ${b.port}`))}: it listens on that address and port, so those cells say nothing about roomcast.`,
    );
  const errors = all.filter(({ a }) => a.outcome === 'error');
  if (errors.length > 0) out.push(`Some attempts failed with a system error (${list([...new Set(errors.map(({ a }) => a.code ?? 'unknown'))])}).`);
  return out;
}

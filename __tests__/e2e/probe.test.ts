/**
 * `roomcast probe`: the report drawn from made-up results (table, legend, the sentences), and
 * the real experiment, run by the built binary inside a network namespace host that this test
 * creates (helpers/netns.ts), so its traffic reaches only that namespace's loopback and veth.
 * The probe is never run in the machine's own network namespace here.
 *
 * The namespace part needs root and iproute2; where namespaces cannot be made it is reported as
 * skipped with the reason, never as passed. Run `npm run build` first: it tests dist/.
 */
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { LocalAddress } from '../../src/lan/interfaces.js';
import type { Attempt, BindResult, Outcome, ProbeReport } from '../../src/lan/probe.js';
import { explainProbe, probeJson, renderProbeReport } from '../../src/cli/probe-report.js';
import { describeOnLan, type Lan } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${ROOT}bin/roomcast`;
const ANSI = /\x1b\[/;

const ADDRESSES: LocalAddress[] = [
  { interface: 'lo', address: '127.0.0.1', family: 4, loopback: true, linkLocal: false },
  { interface: 'lo', address: '::1', family: 6, loopback: true, linkLocal: false },
  { interface: 'eth0', address: '192.168.1.20', family: 4, loopback: false, linkLocal: false },
  { interface: 'eth0', address: 'fe80::1%eth0', family: 6, loopback: false, linkLocal: true },
];
const DESTS = ['127.0.0.1', '::1', '192.168.1.20', 'fe80::1%eth0'];

const CODES: Partial<Record<Outcome, string>> = {
  refused: 'ECONNREFUSED',
  unavailable: 'EADDRNOTAVAIL',
  timeout: 'ETIMEDOUT',
  unreachable: 'ENETUNREACH',
};

/** One row from "yes refused ...", one outcome per destination; a yes on :: from IPv4 is mapped. */
function row(bind: string, bound: string[], outcomes: string): BindResult {
  const attempts = outcomes.split(' ').map((o, i): Attempt => {
    const destination = DESTS[i]!;
    const outcome = o as Outcome;
    const mapped = bind === '::' && isIP(destination) === 4;
    return {
      destination,
      outcome,
      peer: outcome === 'yes' ? (mapped ? `::ffff:${destination}` : destination) : null,
      code: outcome === 'yes' ? null : (CODES[outcome] ?? null),
    };
  });
  return { bind, bound, port: 40000, error: null, attempts };
}

/** What Linux gives on a machine with IPv4, IPv6 and a link-local address. */
const TYPICAL: ProbeReport = {
  timeoutMs: 1000,
  addresses: ADDRESSES,
  destinations: DESTS,
  binds: [
    row('localhost', ['127.0.0.1', '::1'], 'yes yes refused refused'),
    row('127.0.0.1', ['127.0.0.1'], 'yes refused refused refused'),
    row('::1', ['::1'], 'refused yes refused refused'),
    row('0.0.0.0', ['0.0.0.0'], 'yes refused yes refused'),
    row('::', ['::'], 'yes yes yes yes'),
    row('192.168.1.20', ['192.168.1.20'], 'refused refused yes refused'),
    row('fe80::1%eth0', ['fe80::1%eth0'], 'refused refused refused yes'),
  ],
};

const plain = (report: ProbeReport, width = 80): string => renderProbeReport(report, { color: 0, width });

describe('probe report', () => {
  test('a table of binds by destinations, keyed columns, plain without colour', () => {
    const out = plain(TYPICAL);
    expect(out).not.toMatch(ANSI);
    expect(out).toContain('  A  127.0.0.1     lo (loopback)\n');
    expect(out).toContain('  D  fe80::1%eth0  eth0 (link-local)\n');
    const lines = out.split('\n');
    const head = lines.findIndex((l) => l.startsWith('Bound to'));
    expect(lines.slice(head, head + 8).map((l) => l.split(/\s{2,}/))).toEqual([
      ['Bound to', 'A', 'B', 'C', 'D'],
      ['localhost (127.0.0.1, ::1)', 'yes', 'yes', 'refused', 'refused'],
      ['127.0.0.1', 'yes', 'refused', 'refused', 'refused'],
      ['::1', 'refused', 'yes', 'refused', 'refused'],
      ['0.0.0.0', 'yes', 'refused', 'yes', 'refused'],
      ['::', 'yes*', 'yes', 'yes*', 'yes'],
      ['192.168.1.20', 'refused', 'refused', 'yes', 'refused'],
      ['fe80::1%eth0', 'refused', 'refused', 'refused', 'yes'],
    ]);
    expect(out.replace(/\s+/g, ' ')).toContain('yes*: the server saw the client as an IPv4-mapped IPv6 address (::ffff:...).');
    expect(out).not.toContain('timeout:'); // the legend explains only what the table shows
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
  });

  test('the sentences say what these results mean', () => {
    const says = explainProbe(TYPICAL).join('\n');
    expect(says).toContain(
      'Bound to localhost (127.0.0.1, ::1), the server was reachable only through 127.0.0.1 and ::1; bound to 127.0.0.1, only through 127.0.0.1; bound to ::1, only through ::1: loopback never leaves this machine, so other machines cannot connect.',
    );
    expect(says).toContain('Bound to 0.0.0.0, the server was reachable through every IPv4 address (127.0.0.1 and 192.168.1.20) and no IPv6 one: 0.0.0.0 means every interface, IPv4 only.');
    expect(says).toContain('Bound to ::, the server was reachable through every address, IPv4 and IPv6 (link-local too).');
    expect(says).toContain('IPv4 clients arrived as IPv4-mapped IPv6 addresses (::ffff:127.0.0.1 and ::ffff:192.168.1.20): one dual-stack socket');
    expect(says).toContain("Bound to one of this machine's own addresses (192.168.1.20 and fe80::1%eth0), the server was reachable only through that same address");
    expect(says).toContain('Link-local addresses (fe80::1%eth0) work only on their own link');
    expect(says).toMatch(/A firewall \(nftables, iptables, ufw\) does not show here/);
    expect(says).not.toMatch(/could not be bound|no answer|Another program/);
  });

  test('failures: IPv6 off, a timeout, another program, IPv6-only ::', () => {
    const broken: ProbeReport = {
      timeoutMs: 250,
      addresses: ADDRESSES,
      destinations: DESTS,
      binds: [
        { bind: '::1', bound: [], port: null, error: { code: 'EADDRNOTAVAIL', message: 'listen EADDRNOTAVAIL: address not available ::1' }, attempts: [] },
        row('0.0.0.0', ['0.0.0.0'], 'yes unavailable timeout unavailable'),
        row('::', ['::'], 'refused unavailable refused yes'),
        row('192.168.1.20', ['192.168.1.20'], 'other unavailable yes unavailable'),
      ],
    };
    const out = plain(broken);
    expect(out).toMatch(/^::1 {11}could not bind: EADDRNOTAVAIL$/m);
    expect(out).toMatch(/^0\.0\.0\.0 +yes +no addr +timeout +no addr$/m);
    expect(out).toMatch(/^192\.168\.1\.20 +other +no addr +yes +no addr$/m);
    expect(out).toContain('timeout: no answer within 250 ms.');
    expect(out).toContain('no addr: this machine cannot use that address');
    const says = explainProbe(broken).join('\n');
    expect(says).toContain('::1 could not be bound (EADDRNOTAVAIL): IPv6 looks turned off on this machine');
    expect(says).toContain('fe80::1%eth0 could not be used at all (address not available): this machine does not have it right now.');
    expect(says).toContain('Connections to 192.168.1.20 got no answer within 250 ms: a firewall rule on this machine drops them');
    expect(says).toContain('Another program answered through 127.0.0.1 port 40000');
    expect(says).toContain('Bound to 0.0.0.0, the server was reachable only through 127.0.0.1.');
    expect(says).toContain('IPv4 clients could not connect: this system keeps IPv6 sockets IPv6-only (net.ipv6.bindv6only=1)');
  });

  test('a narrow terminal gets the columns in blocks that fit', () => {
    const out = plain(TYPICAL, 40);
    const heads = out.split('\n').filter((l) => l.startsWith('Bound to'));
    expect(heads.map((l) => l.split(/\s+/).slice(2))).toEqual([['A'], ['B'], ['C'], ['D']]);
    // 'localhost (127.0.0.1, ::1)' is 26 wide: one 9-wide column fits beside it in 40.
    for (const line of out.split('\n')) expect(line.length).toBeLessThanOrEqual(40);
  });

  test('colour only when asked for', () => {
    const out = renderProbeReport(TYPICAL, { color: 1, width: 80 });
    expect(out).toMatch(/\x1b\[32myes/);
  });

  test('JSON: the documented fields, format 1', () => {
    const doc = JSON.parse(probeJson(TYPICAL)) as Record<string, unknown> & ProbeReport;
    expect(Object.keys(doc)).toEqual(['format', 'timeoutMs', 'addresses', 'destinations', 'binds']);
    expect(doc.format).toBe(1);
    expect(doc.binds[4]).toEqual(expect.objectContaining({ bind: '::', bound: ['::'], port: 40000, error: null }));
    expect(doc.binds[4]!.attempts[0]).toEqual({ destination: '127.0.0.1', outcome: 'yes', peer: '::ffff:127.0.0.1', code: null });
    expect(doc.binds[1]!.attempts[1]).toEqual({ destination: '::1', outcome: 'refused', peer: null, code: 'ECONNREFUSED' });
  });
});

describeOnLan('roomcast probe inside a network namespace', (theLan) => {
  let lan: Lan;
  let report: ProbeReport & { format: number };
  let elapsed = 0;

  beforeAll(() => {
    lan = theLan();
    const started = Date.now();
    // Returns only once the process has exited, which node does only when every listener
    // and socket it opened is closed.
    report = JSON.parse(lan.exec(lan.a, process.execPath, [BIN, 'probe', '--json', '--timeout', '2000'])) as ProbeReport & { format: number };
    elapsed = Date.now() - started;
  });

  const cell = (bind: string, destination: string): Attempt => {
    const b = report.binds.find((x) => x.bind === bind);
    if (!b) throw new Error(`no row for ${bind}: ${report.binds.map((x) => x.bind).join(', ')}`);
    const a = b.attempts.find((x) => x.destination === destination);
    if (!a) throw new Error(`no ${destination} in the row for ${bind} (${b.error?.message ?? 'bound'})`);
    return a;
  };

  test('it probed the namespace\'s own addresses, nothing else, and finished quickly', () => {
    const ll = `${lan.a.linkLocal}%${lan.a.dev}`;
    expect(report.format).toBe(1);
    expect(report.destinations).toEqual(['127.0.0.1', '::1', lan.a.ipv4, lan.a.ipv6, ll]);
    expect(report.binds.map((b) => b.bind)).toEqual(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', lan.a.ipv4, lan.a.ipv6, ll]);
    expect(report.binds.every((b) => b.error === null && b.port !== null && b.port > 0)).toBe(true);
    expect(new Set(report.binds.map((b) => b.port)).size).toBe(report.binds.length);
    expect(elapsed).toBeLessThan(10_000);
  });

  test('loopback binds are reachable only through loopback', () => {
    expect(cell('127.0.0.1', '127.0.0.1')).toEqual({ destination: '127.0.0.1', outcome: 'yes', peer: '127.0.0.1', code: null });
    expect(cell('127.0.0.1', lan.a.ipv4)).toEqual(expect.objectContaining({ outcome: 'refused', code: 'ECONNREFUSED' }));
    expect(cell('::1', '127.0.0.1').outcome).toBe('refused');
    expect(cell('::1', '::1').outcome).toBe('yes');
    const localhost = report.binds.find((b) => b.bind === 'localhost')!;
    expect(localhost.bound).toEqual(['127.0.0.1', '::1']);
  });

  test('0.0.0.0 takes every IPv4 address and no IPv6 one', () => {
    expect(cell('0.0.0.0', lan.a.ipv4)).toEqual(expect.objectContaining({ outcome: 'yes', peer: lan.a.ipv4 }));
    expect(cell('0.0.0.0', '::1').outcome).toBe('refused');
    expect(cell('0.0.0.0', lan.a.ipv6).outcome).toBe('refused');
  });

  test(':: is dual stack: IPv4 arrives IPv4-mapped, IPv6 and link-local with its zone get through', () => {
    expect(cell('::', lan.a.ipv4)).toEqual(expect.objectContaining({ outcome: 'yes', peer: `::ffff:${lan.a.ipv4}` }));
    expect(cell('::', lan.a.ipv6)).toEqual(expect.objectContaining({ outcome: 'yes', peer: lan.a.ipv6 }));
    expect(cell('::', `${lan.a.linkLocal}%${lan.a.dev}`).outcome).toBe('yes');
  });

  test('a specific address takes only itself', () => {
    expect(cell(lan.a.ipv4, '127.0.0.1').outcome).toBe('refused');
    expect(cell(lan.a.ipv4, lan.a.ipv4).outcome).toBe('yes');
    expect(cell(lan.a.ipv6, lan.a.ipv4).outcome).toBe('refused');
    expect(cell(`${lan.a.linkLocal}%${lan.a.dev}`, `${lan.a.linkLocal}%${lan.a.dev}`).outcome).toBe('yes');
  });

  test('the human report renders the table and the explanation', () => {
    const out = lan.exec(lan.a, process.execPath, [BIN, 'probe']);
    expect(out).not.toMatch(ANSI);
    expect(out).toMatch(/^Bound to +A +B +C/m);
    expect(out).toMatch(/^:: +yes\* +yes +yes\*/m);
    expect(out).toContain(`  C  ${lan.a.ipv4}`);
    expect(out).toContain('What this shows:');
    expect(out).toMatch(/loopback never leaves this\s+machine/);
    expect(out).toMatch(/IPv4-mapped IPv6 addresses\s+\(::ffff:127\.0\.0\.1 and\s+::ffff:10\.77\.0\.1\)/);
  });
});

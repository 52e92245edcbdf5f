/**
 * Discovery: `serve --lan`/`--announce` announce over mDNS, `roomcast servers` and `roomcast
 * join` with no address browse for them.
 *
 * The pure parts (TXT, names, the records heard, the address to dial, the lists printed) are
 * tested without sockets. Everything that sends multicast runs only inside two network
 * namespaces made for the test (helpers/netns.ts): no test sends anything on this machine's
 * own interfaces. Where namespaces cannot be made, those tests are reported as skipped, with
 * the reason. They run the built CLI: run `npm run build` first.
 */
import { existsSync } from 'node:fs';
import type os from 'node:os';
import type { Answer } from 'dns-packet';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { describeOnLan, type Host, type Lan } from '../helpers/netns.js';
import { decodeTxt, encodeTxt, SERVICE, type DiscoveredServer } from '../../src/lan/discovery.js';
import { Sightings } from '../../src/lan/browse.js';
import { advertisedAddresses, defaultInstanceName, renamed, targetHost } from '../../src/lan/announce.js';
import { chooseAddress, interfaceFor } from '../../src/lan/reach.js';
import { candidates, formatCandidates } from '../../src/client/pick-server.js';
import { formatServerTable, listings, noneAnswered, type ServerListing } from '../../src/cli/servers.js';
import { redisUnavailable } from '../helpers/redis-server.js';

type InterfaceMap = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

function v4(address: string, cidr: string, internal = false): os.NetworkInterfaceInfo {
  return { address, netmask: '', family: 'IPv4', mac: internal ? '00:00:00:00:00:00' : '02:00:00:00:00:01', internal, cidr };
}
function v6(address: string, cidr: string, internal = false): os.NetworkInterfaceInfo {
  return { address, netmask: '', family: 'IPv6', mac: internal ? '00:00:00:00:00:00' : '02:00:00:00:00:01', internal, cidr, scopeid: 0 };
}

/** A laptop on a LAN (eth0) with a container bridge (docker0) beside it. */
const HERE: InterfaceMap = {
  lo: [v4('127.0.0.1', '127.0.0.1/8', true), v6('::1', '::1/128', true)],
  eth0: [v4('192.168.1.20', '192.168.1.20/24'), v6('fd00:1::20', 'fd00:1::20/64'), v6('fe80::20', 'fe80::20/64')],
  docker0: [v4('172.17.0.1', '172.17.0.1/16')],
};

const FQDN = `roomcast on alpha.${SERVICE}`;

function announcement(ttl = 120): Answer[] {
  return [
    { name: SERVICE, type: 'PTR', ttl: ttl && 4500, data: FQDN },
    { name: FQDN, type: 'SRV', ttl, data: { port: 7447, target: 'roomcast-on-alpha.local' } },
    { name: FQDN, type: 'TXT', ttl: ttl && 4500, data: [Buffer.from('txtvers=1'), Buffer.from('version=0.1.0')] },
    { name: 'roomcast-on-alpha.local', type: 'AAAA', ttl, data: 'fe80::1' },
    { name: 'roomcast-on-alpha.local', type: 'A', ttl, data: '192.168.1.10' },
  ];
}

function server(over: Partial<DiscoveredServer> = {}): DiscoveredServer {
  return { name: 'roomcast on alpha', host: 'roomcast-on-alpha.local', port: 7447, addresses: ['192.168.1.10'], version: '0.1.0', httpPort: null, cluster: null, ...over };
}

describe('the TXT record', () => {
  test('says the version, and the HTTP port only when it is a port of its own', () => {
    expect(encodeTxt({ version: '0.1.0', httpPort: null })).toEqual(['txtvers=1', 'version=0.1.0']);
    expect(encodeTxt({ version: '0.1.0', httpPort: 8080 })).toEqual(['txtvers=1', 'version=0.1.0', 'http=8080']);
  });

  test('reads keys in any case, the first of a repeated key, and ignores a bad port', () => {
    expect(decodeTxt([Buffer.from('Version=1.2.3'), Buffer.from('version=9'), Buffer.from('http=8080')])).toEqual({ version: '1.2.3', httpPort: 8080, cluster: null });
    expect(decodeTxt([Buffer.from('http=99999')])).toEqual({ version: null, httpPort: null, cluster: null });
  });

  test('a node of a cluster names its cluster, and it reads back', () => {
    const txt = encodeTxt({ version: '0.1.0', httpPort: null, cluster: '5f0c9a2e41d7b388' });
    expect(txt).toEqual(['txtvers=1', 'version=0.1.0', 'cluster=5f0c9a2e41d7b388']);
    expect(decodeTxt(txt.map((t) => Buffer.from(t))).cluster).toBe('5f0c9a2e41d7b388');
  });
});

describe('the names a server announces', () => {
  test('"roomcast on HOST", from the host name\'s first label, within a DNS label\'s 63 bytes', () => {
    expect(defaultInstanceName('lab-pc.example.org')).toBe('roomcast on lab-pc');
    expect(Buffer.byteLength(defaultInstanceName('é'.repeat(60)))).toBeLessThanOrEqual(63);
  });

  test('a taken name gets " (2)", still within 63 bytes', () => {
    expect(renamed('roomcast on alpha', 2)).toBe('roomcast on alpha (2)');
    const long = renamed('x'.repeat(63), 12);
    expect(long).toHaveLength(63);
    expect(long.endsWith(' (12)')).toBe(true);
  });

  test('its addresses go under a host name of its own, not the machine\'s', () => {
    expect(targetHost('roomcast on Alpha (2)')).toBe('roomcast-on-alpha-2.local');
  });
});

describe('the addresses a server announces', () => {
  test(':: means every LAN address of both families, without zones; loopback never', () => {
    expect(advertisedAddresses(['::'], HERE)).toEqual(['192.168.1.20', '172.17.0.1', 'fd00:1::20', 'fe80::20']);
  });

  test('0.0.0.0 means IPv4 only; a named address is itself; loopback-only is nothing', () => {
    expect(advertisedAddresses(['0.0.0.0'], HERE)).toEqual(['192.168.1.20', '172.17.0.1']);
    expect(advertisedAddresses(['192.168.1.20', '127.0.0.1'], HERE)).toEqual(['192.168.1.20']);
    expect(advertisedAddresses(['127.0.0.1', '::1'], HERE)).toEqual([]);
  });
});

describe('what a browser makes of the answers', () => {
  test('one announcement is one server, its link-local address with the zone it came through', () => {
    const s = new Sightings();
    s.add(announcement(), 'eth0');
    expect(s.servers()).toEqual([
      { name: 'roomcast on alpha', host: 'roomcast-on-alpha.local', port: 7447, addresses: ['192.168.1.10', 'fe80::1%eth0'], version: '0.1.0', httpPort: null, cluster: null },
    ]);
    expect(s.missing()).toEqual([]);
  });

  test('a goodbye (TTL 0) takes the server back', () => {
    const s = new Sightings();
    s.add(announcement(), 'eth0');
    s.add(announcement(0), 'eth0');
    expect(s.servers()).toEqual([]);
  });

  test('a PTR alone asks for the rest, once; a server without its SRV is not listed yet', () => {
    const s = new Sightings();
    s.add([announcement()[0]], null);
    expect(s.servers()).toEqual([]);
    expect(s.missing()).toEqual([
      { name: FQDN, type: 'SRV' },
      { name: FQDN, type: 'TXT' },
    ]);
    expect(s.missing()).toEqual([]);
    s.add([announcement()[1]], null);
    expect(s.missing()).toEqual([
      { name: 'roomcast-on-alpha.local', type: 'A' },
      { name: 'roomcast-on-alpha.local', type: 'AAAA' },
    ]);
    expect(s.servers()).toEqual([{ ...server(), addresses: [], version: null }]);
  });

  test('other services are not ours; names match without regard to case', () => {
    const s = new Sightings();
    s.add([{ name: '_http._tcp.local', type: 'PTR', ttl: 4500, data: 'printer._http._tcp.local' }], null);
    s.add(announcement().map((rr) => ({ ...rr, name: rr.name.toUpperCase() })), null);
    expect(s.servers().map((x) => x.name)).toEqual(['roomcast on alpha']);
  });
});

describe('the address to dial', () => {
  test('IPv4 on our subnet, before IPv6, before another network\'s IPv4', () => {
    expect(chooseAddress(['10.9.9.9', 'fd00:1::10', '192.168.1.10'], HERE)).toBe('192.168.1.10');
    expect(chooseAddress(['10.9.9.9', 'fd00:1::10'], HERE)).toBe('fd00:1::10');
  });

  test('IPv6 on our prefix, then other global IPv6, then link-local with a zone', () => {
    expect(chooseAddress(['fe80::1%eth0', '2001:db8::1', 'fd00:1::10'], HERE)).toBe('fd00:1::10');
    expect(chooseAddress(['fe80::1%eth0', '2001:db8::1'], HERE)).toBe('2001:db8::1');
    expect(chooseAddress(['fe80::1%eth0', '10.9.9.9'], HERE)).toBe('fe80::1%eth0');
  });

  test('never loopback, nor link-local without a zone (or with one this machine lacks)', () => {
    expect(chooseAddress(['127.0.0.1', '::1', 'fe80::1', 'fe80::2%wlan9'], HERE)).toBeNull();
  });

  test('the link an answer came over is the interface whose subnet holds its source', () => {
    expect(interfaceFor('192.168.1.10', HERE)).toBe('eth0');
    expect(interfaceFor('172.17.5.5', HERE)).toBe('docker0');
    expect(interfaceFor('10.0.0.1', HERE)).toBeNull();
  });
});

describe('the lists people see', () => {
  test('`roomcast servers`: a table, and the command to join the first', () => {
    const rows = listings([server({ addresses: ['192.168.1.10', 'fe80::1%eth0'] }), server({ name: 'roomcast on beta', port: 7448, httpPort: 8080, version: null })], HERE);
    expect(rows.map((r) => r.join)).toEqual(['192.168.1.10:7447', '192.168.1.10:7448']);
    expect(formatServerTable(rows)).toBe(
      [
        'NAME               PORT             VERSION  ADDRESSES',
        'roomcast on alpha  7447             0.1.0    192.168.1.10, fe80::1%eth0',
        'roomcast on beta   7448 (web 8080)  ?        192.168.1.10',
        '',
        'Join one with: roomcast join 192.168.1.10:7447',
        '',
      ].join('\n'),
    );
  });

  test('`roomcast servers --json` rows carry the address to join at, null when none is usable', () => {
    const [row] = listings([server({ addresses: ['fe80::1'] })], HERE) as [ServerListing];
    expect(row.join).toBeNull();
  });

  test('none answered: says what to check', () => {
    expect(noneAnswered(2000)).toMatch(/^No roomcast server answered within 2 s\. .*--lan.*UDP port 5353/);
  });

  test('`roomcast join`: announced servers by name, and this machine\'s unannounced one', () => {
    const list = candidates([server()], { host: '127.0.0.1', port: 7447 }, HERE);
    expect(list).toEqual([
      { label: 'roomcast on alpha', address: { host: '192.168.1.10', port: 7447 } },
      { label: "this machine's own server (not announced)", address: { host: '127.0.0.1', port: 7447 } },
    ]);
    expect(formatCandidates(list)).toBe(
      '   1) roomcast on alpha                          192.168.1.10:7447\n' +
        "   2) this machine's own server (not announced)  127.0.0.1:7447\n",
    );
  });

  test("`roomcast join`: the nodes of one cluster are one choice, the others its alternates", () => {
    const list = candidates(
      [
        server({ name: 'roomcast on alpha', cluster: 'c1' }),
        server({ name: 'roomcast on beta', addresses: ['192.168.1.11'], cluster: 'c1' }),
        server({ name: 'roomcast on gamma', addresses: ['192.168.1.12'], cluster: 'c1' }),
        server({ name: 'roomcast on delta', addresses: ['192.168.1.13'] }),
      ],
      null,
      HERE,
    );
    expect(list).toEqual([
      {
        label: 'roomcast on alpha (a cluster of 3)',
        address: { host: '192.168.1.10', port: 7447 },
        alternates: [
          { host: '192.168.1.11', port: 7447 },
          { host: '192.168.1.12', port: 7447 },
        ],
      },
      { label: 'roomcast on delta', address: { host: '192.168.1.13', port: 7447 } },
    ]);
  });

  test('`roomcast join`: a server on this machine that announces is listed once, by name', () => {
    const list = candidates([server({ addresses: ['192.168.1.20'] })], { host: '127.0.0.1', port: 7447 }, HERE);
    expect(list.map((c) => c.label)).toEqual(['roomcast on alpha']);
  });
});

// ---------------------------------------------------------------------------------------------
// Over a (virtual) wire: two network namespaces.

const WAIT = 10_000;

describeOnLan('discovery across a two-host LAN (network namespaces)', (theLan) => {
  let lan: Lan;

  beforeAll(() => {
    if (!existsSync(`${ROOT}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` before this test (it runs the built CLI)');
    lan = theLan();
  });

  function run(host: Host, name: string, args: string[]): CliChild {
    return new CliChild(name, lan.spawn(host, process.execPath, [BIN, ...args], { cwd: ROOT, env: CLI_ENV }), WAIT);
  }

  /** `roomcast serve` on host a; resolves once it listens, with its port. */
  async function serve(...extra: string[]): Promise<{ server: CliChild; port: number }> {
    // History in memory: two servers at once would find one data directory locked.
    const server = run(lan.a, `serve ${extra.join(' ')}`, ['serve', '--port', '0', '--no-bot', '--store', 'memory', '--greet-delay', '50', ...extra]);
    await server.waitOutput(/roomcast listening on .*?:\d+/);
    return { server, port: Number(/roomcast listening on .*?:(\d+)/.exec(server.stdout)![1]) };
  }

  async function servers(host: Host, timeoutMs = 2000): Promise<DiscoveredServer[]> {
    const finder = run(host, 'servers', ['servers', '--json', '--timeout', String(timeoutMs)]);
    expect(await finder.waitExit()).toBe(0);
    return JSON.parse(finder.stdout) as DiscoveredServer[];
  }

  test('`roomcast servers` on b finds `serve --lan` on a: its port, version and addresses', async () => {
    const { server, port } = await serve('--lan');
    try {
      await server.waitOutput(/announcing "roomcast on [^"]+" on the LAN/);
      const found = await servers(lan.b);
      expect(found).toHaveLength(1);
      const [s] = found;
      expect(s).toMatchObject({ port, version: expect.stringMatching(/^\d+\.\d+\.\d+/), httpPort: null, join: `${lan.a.ipv4}:${port}` });
      // Link-local with the zone as seen from b: its own interface towards a.
      expect(s.addresses).toEqual([lan.a.ipv4, lan.a.ipv6, `${lan.a.linkLocal}%${lan.b.dev}`]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  test('`roomcast join` with no address on b finds the server on a and talks to a client there', async () => {
    const { server, port } = await serve('--lan');
    const alice = run(lan.a, 'alice', ['join', `127.0.0.1:${port}`, '--nick', 'alice']);
    try {
      await alice.waitOutput('you are in [lobby]');
      const bob = run(lan.b, 'bob', ['join', '--nick', 'bob']);
      bob.proc.stdin.end('hello from host b\n');
      expect(await bob.waitExit()).toBe(0);
      expect(bob.stderr).toMatch(new RegExp(`^roomcast: no address given: looking for servers .*\\nroomcast: joining roomcast on \\S+ at ${lan.a.ipv4.replace(/\./g, '\\.')}:${port}\\n$`));
      expect(bob.stdout).toContain('[lobby] bob: hello from host b');
      await alice.waitOutput('[lobby] bob: hello from host b');
      alice.proc.stdin.end();
      expect(await alice.waitExit()).toBe(0);
    } finally {
      await alice.stop();
      await server.stop();
    }
  });

  test('a server that stops says goodbye: a browse that had heard it drops it at once', async () => {
    const { server } = await serve('--lan', '--verbose');
    const answered = (): number => server.stdout.split(`mDNS: answered ${lan.b.ipv4} about _roomcast`).length - 1;
    // Once found, it is done probing its name and answers every query.
    expect(await servers(lan.b)).toHaveLength(1);
    const before = answered();
    const finder = run(lan.b, 'servers', ['servers', '--json', '--timeout', '4000']);
    // It was heard: the server answered this browse's query.
    await server.waitFor(() => answered() > before, "an answer to b's query");
    expect(await server.stop()).toBe(0);
    expect(await finder.waitExit()).toBe(0);
    // Its records would live 120 s and more; only the goodbye explains its absence.
    expect(JSON.parse(finder.stdout)).toEqual([]);
    expect(finder.stderr).toContain('No roomcast server answered within 4 s');
    expect(await servers(lan.b)).toEqual([]);
  });

  test('the nodes of a cluster on a: b finds each, naming one cluster, and `join` takes them as one service', async () => {
    const why = redisUnavailable();
    if (why !== null) {
      if (process.env.ROOMCAST_REQUIRE_REDIS === '1') throw new Error(why);
      console.warn(`cluster discovery skipped: ${why}`);
      return;
    }
    // Redis on a's own loopback, where both nodes reach it; stopped by its PID.
    const redis = lan.spawn(lan.a, 'redis-server', ['--port', '6390', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    let out = '';
    redis.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const nodes: CliChild[] = [];
    try {
      const deadline = Date.now() + WAIT;
      while (!out.includes('Ready to accept connections') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (let i = 0; i < 2; i++) {
        const { server } = await serve('--lan', '--redis', 'redis://127.0.0.1:6390');
        nodes.push(server);
        await server.waitOutput(/announcing "roomcast on [^"]+" on the LAN/);
      }
      const found = await servers(lan.b);
      expect(found).toHaveLength(2);
      expect(found[0]!.cluster).toMatch(/^[0-9a-f]{16}$/);
      expect(found[1]!.cluster).toBe(found[0]!.cluster);
      const bob = run(lan.b, 'bob', ['join', '--nick', 'bob']);
      bob.proc.stdin.end('hello, cluster\n');
      expect(await bob.waitExit()).toBe(0);
      expect(bob.stderr).toMatch(/roomcast: joining roomcast on \S+ \(a cluster of 2\) at /);
    } finally {
      for (const n of nodes) await n.stop();
      redis.kill('SIGTERM');
    }
  });

  test('a server without --announce is not found, and join with no address says what to do', async () => {
    const { server } = await serve('--host', '::');
    try {
      expect(await servers(lan.b)).toEqual([]);
      const c = run(lan.b, 'nobody', ['join', '--nick', 'nobody']);
      c.proc.stdin.end('anyone?\n');
      expect(await c.waitExit()).toBe(1);
      expect(c.stdout).toBe('');
      expect(c.stderr).toContain('roomcast: no roomcast server answered on the LAN, and none runs on this machine at port 7447. Start one with `roomcast serve --lan`');
    } finally {
      await server.stop();
    }
  });

  test('two servers on one host: the second takes "NAME (2)", and a piped join asks which', async () => {
    const first = await serve('--lan');
    await first.server.waitOutput(/announcing "/);
    const second = await serve('--lan');
    try {
      await second.server.waitOutput(/announcing as "roomcast on [^"]+ \(2\)"/);
      const found = await servers(lan.b);
      expect(found.map((s) => s.port).sort()).toEqual([first.port, second.port].sort());
      expect(found.map((s) => s.name)).toEqual([expect.not.stringMatching(/\(2\)$/), expect.stringMatching(/ \(2\)$/)]);
      const c = run(lan.b, 'undecided', ['join']);
      c.proc.stdin.end('hello?\n');
      expect(await c.waitExit()).toBe(2);
      expect(c.stderr).toContain('roomcast: 2 servers answered; say which to join: roomcast join HOST:PORT');
      expect(c.stderr).toContain(`${lan.a.ipv4}:${first.port}`);
      expect(c.stderr).toContain(`${lan.a.ipv4}:${second.port}`);
    } finally {
      await Promise.all([first.server.stop(), second.server.stop()]);
    }
  });
});

/**
 * A real two-host LAN: host a and host b are Linux network namespaces joined by a veth link
 * (see helpers/netns.ts), each with its own loopback. The built `bin/roomcast` runs inside them
 * as child processes, so "bound to 127.0.0.1 on host a" really is unreachable from host b, and
 * what a person would see when trying from another machine is what this test reads.
 *
 * Needs root and iproute2; where namespaces cannot be made, the whole file is reported as
 * skipped with the reason, never as passed. Run `npm run build` first: this tests dist/.
 */
import { existsSync } from 'node:fs';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { describeOnLan, type Host, type Lan } from '../helpers/netns.js';

const WAIT = 8000;
/** A refused or unroutable connection is known at once; the client must not linger on it. */
const QUICK_EXIT = 5000;

describeOnLan('roomcast across a real two-host LAN (network namespaces)', (theLan) => {
  let lan: Lan;

  beforeAll(() => {
    if (!existsSync(`${ROOT}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` before this test (it runs the built CLI)');
    lan = theLan();
  });

  function run(host: Host, name: string, args: string[]): CliChild {
    return new CliChild(`${name} on ${host === lan.a ? 'a' : 'b'}`, lan.spawn(host, process.execPath, [BIN, ...args], { cwd: ROOT, env: CLI_ENV }), WAIT);
  }

  /** `roomcast serve` on host a, bound as given (no --host: the default); resolves with its port. */
  async function serve(hosts: string[], ...extra: string[]): Promise<{ server: CliChild; port: number }> {
    const server = run(lan.a, `serve ${hosts.join(' ') || '(default)'}`, [
      'serve',
      ...hosts.flatMap((h) => ['--host', h]),
      '--port',
      '0',
      '--no-bot',
      '--greet-delay',
      '50',
      ...extra,
    ]);
    const listening = /roomcast listening on .*?:\d+/;
    // An option it does not know, or a failed bind, ends it at once: say that, not "timed out".
    await server.waitFor(() => listening.test(server.stdout) || server.exitCode !== null, 'roomcast listening on ...');
    if (server.exitCode !== null) throw new Error(`${server.name} exited with status ${server.exitCode} before listening:\n${server.stderr}`);
    return { server, port: Number(/roomcast listening on .*?:(\d+)/.exec(server.stdout)![1]) };
  }

  function join(host: Host, address: string, nick: string, ...extra: string[]): CliChild {
    return run(host, nick, ['join', address, '--nick', nick, ...extra]);
  }

  /** A piped `roomcast join` from a host: says one line and quits. Passes only if the line was
   *  accepted by the server, i.e. the connection really went through. */
  async function expectReachable(host: Host, address: string): Promise<void> {
    const c = join(host, address, 'visitor', '--room', 'probe');
    c.proc.stdin.end(`hello via ${address}\n`);
    const code = await c.waitExit();
    expect({ address, code, stderr: c.stderr }).toEqual({ address, code: 0, stderr: '' });
    expect(c.stdout).toContain(`[probe] visitor: hello via ${address}`);
  }

  /** The same, for an address that must refuse: exits 1 at once, and says why on stderr. */
  async function expectRefused(host: Host, address: string): Promise<CliChild> {
    const c = join(host, address, 'visitor');
    c.proc.stdin.end('anyone?\n');
    const code = await c.waitExit(QUICK_EXIT);
    expect({ address, code }).toEqual({ address, code: 1 });
    expect(c.stdout).toBe('');
    expect(c.stderr).toContain(`roomcast: could not connect to ${address}: connection refused`);
    return c;
  }

  test('bound to 0.0.0.0: host b reaches it over IPv4, not over IPv6', async () => {
    const { server, port } = await serve(['0.0.0.0']);
    try {
      expect(server.stdout).not.toContain('Loopback only');
      await expectReachable(lan.b, `${lan.a.ipv4}:${port}`);
      await expectRefused(lan.b, `[${lan.a.ipv6}]:${port}`);
    } finally {
      await server.stop();
    }
  });

  test('bound to ::: host b reaches it over IPv4, IPv6 and link-local IPv6 with its zone', async () => {
    const { server, port } = await serve(['::']);
    try {
      expect(server.stdout).toContain(`roomcast listening on [::]:${port}`);
      await expectReachable(lan.b, `${lan.a.ipv4}:${port}`);
      await expectReachable(lan.b, `[${lan.a.ipv6}]:${port}`);
      await expectReachable(lan.b, `[${lan.a.linkLocal}%${lan.b.dev}]:${port}`);
      // And host a itself, through its own loopback.
      await expectReachable(lan.a, `127.0.0.1:${port}`);
    } finally {
      await server.stop();
    }
  });

  test('a link-local address without its zone is explained, not just "invalid argument"', async () => {
    const c = join(lan.b, `[${lan.a.linkLocal}]:7447`, 'visitor');
    c.proc.stdin.end();
    expect(await c.waitExit(QUICK_EXIT)).toBe(1);
    expect(c.stderr).toContain(`${lan.a.linkLocal} is an IPv6 link-local address, which needs the interface it is reached through`);
    expect(c.stderr).toContain(`[${lan.a.linkLocal}%eth0]:7447`);
  });

  test.each([
    ['127.0.0.1', ['127.0.0.1']],
    ['localhost (the default)', []],
  ])('bound to %s: host b is refused, and told the server may be bound to loopback only', async (_what, hosts) => {
    const { server, port } = await serve(hosts);
    try {
      expect(server.stdout).toContain('Loopback only: other machines cannot connect');
      const c = await expectRefused(lan.b, `${lan.a.ipv4}:${port}`);
      expect(c.stderr).toContain(`nothing is listening on port ${port} there for other machines`);
      expect(c.stderr).toContain('bound to loopback only');
      expect(c.stderr).toContain('roomcast serve --host ::');
      // Quickly, and once: no reconnect loop when the first connection fails.
      expect(c.exitedAt - c.startedAt).toBeLessThan(QUICK_EXIT);
      expect(c.stderr.trim().split('\n')).toHaveLength(1);
      if (hosts.length === 0) await expectRefused(lan.b, `[${lan.a.ipv6}]:${port}`);
      // On host a itself it works: loopback is loopback.
      await expectReachable(lan.a, `${hosts.length === 0 ? 'localhost' : '127.0.0.1'}:${port}`);
    } finally {
      await server.stop();
    }
  });

  test('an address where no machine answers, and a network this host is not on, say so', async () => {
    // Nobody owns 10.77.0.9 on the link: neighbour discovery gives up after about 3 s.
    const absent = join(lan.b, '10.77.0.9:7447', 'visitor');
    // 192.0.2.0/24 (TEST-NET-1) has no route from host b at all.
    const offNet = join(lan.b, '192.0.2.1:7447', 'visitor');
    for (const c of [absent, offNet]) c.proc.stdin.end();
    expect(await offNet.waitExit(QUICK_EXIT)).toBe(1);
    expect(offNet.stderr).toContain('could not connect to 192.0.2.1:7447: network unreachable — this machine has no route to 192.0.2.1');
    expect(await absent.waitExit(WAIT)).toBe(1);
    expect(absent.stderr).toContain('could not connect to 10.77.0.9:7447: no route to host — no machine answered at that address');
  });

  test('two clients on host b and one on host a chat in one room', async () => {
    const { server, port } = await serve(['::']);
    const clients = [
      join(lan.b, `${lan.a.ipv4}:${port}`, 'bert', '--room', 'lan'),
      join(lan.b, `[${lan.a.ipv6}]:${port}`, 'bea', '--room', 'lan'),
      join(lan.a, `127.0.0.1:${port}`, 'anna', '--room', 'lan'),
    ];
    try {
      for (const c of clients) await c.waitOutput('you are in [lan]');
      for (const c of clients) c.proc.stdin.write(`hello from ${c.name}\n`);
      for (const c of clients)
        for (const other of clients) await c.waitOutput(`[lan] ${nickOf(other)}: hello from ${other.name}`);
      for (const c of clients) c.proc.stdin.end();
      for (const c of clients) expect({ who: c.name, code: await c.waitExit(), stderr: c.stderr }).toEqual({ who: c.name, code: 0, stderr: '' });
    } finally {
      await server.stop();
    }
  });

  // Depends on `serve --lan` (bind every interface and announce), `roomcast servers --json`, and
  // `roomcast join` with no address (join the one server found).
  test('discovery: `roomcast servers` and a bare `roomcast join` on host b find a `serve --lan` on host a', async () => {
    const { server, port } = await serve([], '--lan');
    try {
      const finder = run(lan.b, 'servers', ['servers', '--json', '--timeout', '2000']);
      expect(await finder.waitExit(WAIT)).toBe(0);
      const found = JSON.parse(finder.stdout) as { port: number; addresses: string[] }[];
      expect(Array.isArray(found)).toBe(true);
      const ours = found.filter((s) => s.port === port);
      expect(ours).toHaveLength(1);
      expect(ours[0].addresses).toEqual(expect.arrayContaining([lan.a.ipv4, lan.a.ipv6]));
      // Loopback is no use to another machine.
      for (const loopback of ['127.0.0.1', '::1']) expect(ours[0].addresses).not.toContain(loopback);

      const c = run(lan.b, 'visitor', ['join', '--nick', 'visitor', '--room', 'probe']);
      c.proc.stdin.end('found by discovery\n');
      expect({ code: await c.waitExit(WAIT), stderr: c.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(`${port}`) });
      expect(c.stdout).toContain('[probe] visitor: found by discovery');
    } finally {
      await server.stop();
    }
  });
});

/** The nick a join child was started with (its name is "NICK on a|b"). */
function nickOf(c: CliChild): string {
  return c.name.split(' ')[0];
}

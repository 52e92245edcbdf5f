/**
 * A small LAN made of Linux network namespaces, for the tests that must cross a real (virtual)
 * network: binding, the probe, discovery. Traffic stays inside namespaces the test created;
 * nothing here touches the machine's own interfaces, and multicast only ever leaves through
 * the namespaces' veth links.
 *
 *   host "a" (veth rc0)  <-- veth pair -->  host "b" (veth rc0)
 *   10.77.0.1/24, fd77::1/64, fe80::...      10.77.0.2/24, fd77::2/64, fe80::...
 *
 * With three hosts (Lan.create(3)), each host's rc0 is the end of a veth pair whose other end
 * is a port of a bridge in a fourth namespace, the switch; host "c" is 10.77.0.3, fd77::3.
 *
 * Each namespace also has its own loopback (127.0.0.1, ::1), so "localhost on host a" really is
 * unreachable from host b. Names carry the test process's PID, so parallel test files and
 * leftovers of a killed run never collide; leftovers of dead PIDs are removed on creation.
 *
 * Needs root and iproute2. netnsSupport() says, in one sentence, why it cannot run when it
 * cannot, for the test to report as skipped.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process';

const PREFIX = 'rc';
let counter = 0;

export interface NetnsSupport {
  ok: boolean;
  /** Why not, when not: said by the skipping test. */
  why: string;
}

let support: NetnsSupport | null = null;

function ip(args: string[], input?: string): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input });
}

/** Whether this machine lets a test create network namespaces (checked once, by trying). */
export function netnsSupport(): NetnsSupport {
  if (support) return support;
  if (process.platform !== 'linux') return (support = { ok: false, why: `network namespaces are Linux-only (this is ${process.platform})` });
  if (process.getuid?.() !== 0) return (support = { ok: false, why: 'creating network namespaces needs root (run the tests as root)' });
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return (support = { ok: false, why: 'the `ip` command (Debian package iproute2) is not installed: apt-get install iproute2' });
  }
  const name = `${PREFIX}${process.pid}-check`;
  try {
    ip(['netns', 'add', name]);
    ip(['netns', 'del', name]);
  } catch (err) {
    const msg = String((err as { stderr?: string }).stderr ?? err).trim().split('\n')[0];
    return (support = { ok: false, why: `\`ip netns add\` failed here (${msg}); the sandbox may forbid new network namespaces` });
  }
  return (support = { ok: true, why: '' });
}

/** Removes namespaces left by test processes that no longer exist. */
function removeLeftovers(): void {
  let names: string[];
  try {
    names = ip(['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^rc(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      try {
        ip(['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    }
  }
}

export interface Host {
  /** The namespace's name, for `ip netns exec`. */
  ns: string;
  /** The LAN interface inside the namespace. */
  dev: string;
  ipv4: string;
  ipv6: string;
  /** fe80:: address of dev, without the zone. */
  linkLocal: string;
}

export class Lan {
  private readonly children = new Set<ChildProcessWithoutNullStreams>();
  private closed = false;

  private constructor(
    readonly hosts: Host[],
    /** The namespace of the switch joining three hosts or more; null for two (one veth pair). */
    private readonly switchNs: string | null,
  ) {}

  get a(): Host {
    return this.hosts[0]!;
  }

  get b(): Host {
    return this.hosts[1]!;
  }

  get c(): Host {
    const c = this.hosts[2];
    if (!c) throw new Error('this LAN has two hosts: make it with Lan.create(3) for a third');
    return c;
  }

  /** Hosts on one link, IPv4 and IPv6, addresses ready (no duplicate-address wait left). */
  static async create(count = 2): Promise<Lan> {
    removeLeftovers();
    const id = `${PREFIX}${process.pid}-${counter++}`;
    const hosts: Host[] = Array.from({ length: count }, (_, i) => ({
      ns: `${id}${String.fromCharCode(97 + i)}`,
      dev: 'rc0',
      ipv4: `10.77.0.${i + 1}`,
      ipv6: `fd77::${i + 1}`,
      linkLocal: '',
    }));
    const [a, b] = hosts as [Host, Host];
    const lan = new Lan(hosts, count > 2 ? `${id}sw` : null);
    try {
      for (const h of hosts) ip(['netns', 'add', h.ns]);
      if (lan.switchNs === null) {
        // Made in host a's namespace: the pair never exists among the machine's own interfaces.
        ip(['-n', a.ns, 'link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns]);
      } else {
        const sw = ['-n', lan.switchNs];
        ip(['netns', 'add', lan.switchNs]);
        ip([...sw, 'link', 'add', 'br0', 'type', 'bridge']);
        ip([...sw, 'link', 'set', 'br0', 'up']);
        hosts.forEach((h, i) => {
          ip([...sw, 'link', 'add', `port${i}`, 'type', 'veth', 'peer', 'name', h.dev, 'netns', h.ns]);
          ip([...sw, 'link', 'set', `port${i}`, 'master', 'br0']);
          ip([...sw, 'link', 'set', `port${i}`, 'up']);
        });
      }
      for (const h of hosts) {
        const n = ['-n', h.ns];
        // No duplicate-address detection: addresses usable at once (link-local too).
        execFileSync('ip', ['netns', 'exec', h.ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', `net.ipv6.conf.${h.dev}.accept_dad=0`]);
        ip([...n, 'link', 'set', 'lo', 'up']);
        ip([...n, 'addr', 'add', `${h.ipv4}/24`, 'dev', h.dev]);
        ip([...n, '-6', 'addr', 'add', `${h.ipv6}/64`, 'dev', h.dev, 'nodad']);
        ip([...n, 'link', 'set', h.dev, 'up']);
        // With no default route a namespace has no way out for multicast; a real LAN host does.
        ip([...n, 'route', 'add', '224.0.0.0/4', 'dev', h.dev]);
      }
      for (const h of hosts) h.linkLocal = await waitLinkLocal(h);
    } catch (err) {
      lan.destroy();
      throw err;
    }
    return lan;
  }

  /** A command inside a host's namespace; killed (by PID) when the LAN is destroyed. */
  spawn(host: Host, command: string, args: string[], opts: SpawnOptions = {}): ChildProcessWithoutNullStreams {
    const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], { ...opts, stdio: 'pipe' }) as ChildProcessWithoutNullStreams;
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a command to completion inside a host's namespace and returns its stdout. */
  exec(host: Host, command: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', host.ns, command, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Kills what it started and deletes the namespaces (which deletes the veth pairs). */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const ns of [...this.hosts.map((h) => h.ns), ...(this.switchNs === null ? [] : [this.switchNs])]) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        /* never made */
      }
    }
  }
}

async function waitLinkLocal(h: Host): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const out = ip(['-n', h.ns, '-6', '-o', 'addr', 'show', 'dev', h.dev, 'scope', 'link']);
    const m = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(out);
    if (m && !out.includes('tentative')) return m[1];
    if (Date.now() > deadline) throw new Error(`no usable link-local address on ${h.ns}/${h.dev}: ${out.trim() || 'none'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `describe` for tests that need a LAN of namespaces: where none can be made here, the block
 * is reported as skipped (never passed) after saying why. The block gets the LAN, made before
 * its tests and destroyed after them; `hosts` of them (two, or three on a switch).
 */
export function describeOnLan(title: string, body: (lan: () => Lan) => void, hosts = 2): void {
  const s = netnsSupport();
  if (!s.ok) {
    console.warn(`${title}: skipped: ${s.why}`);
    describe.skip(title, () => body(() => {
      throw new Error('no LAN here');
    }));
    return;
  }
  describe(title, () => {
    let lan: Lan | null = null;
    beforeAll(async () => {
      lan = await Lan.create(hosts);
    });
    afterAll(() => lan?.destroy());
    body(() => {
      if (!lan) throw new Error('the LAN was not created (see beforeAll)');
      return lan;
    });
  });
}

/**
 * The built binary, end to end: `roomcast serve` and `roomcast join` as child processes with
 * piped stdio (so the clients run in their non-terminal mode), on 127.0.0.1 only.
 * Run `npm run build` first: this tests dist/, as users get it.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { LineClient } from '../helpers/clients.js';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';

const children: CliChild[] = [];

function run(name: string, args: string[]): CliChild {
  const child = new CliChild(name, spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: CLI_ENV, stdio: 'pipe' }));
  children.push(child);
  return child;
}

async function startServer(port = 0, ...extra: string[]): Promise<{ server: CliChild; port: number }> {
  const server = run('serve', ['serve', '--port', String(port), '--host', '127.0.0.1', '--greet-delay', '50', ...extra]);
  await server.waitOutput(/roomcast listening on 127\.0\.0\.1:\d+/);
  return { server, port: Number(/roomcast listening on 127\.0\.0\.1:(\d+)/.exec(server.stdout)![1]) };
}

function join(name: string, port: number, ...extra: string[]): CliChild {
  return run(name, ['join', `127.0.0.1:${port}`, '--nick', name, ...extra]);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b/;

describe('roomcast join, end to end', () => {
  let port = 0;
  let server: CliChild;

  beforeAll(async () => {
    ({ server, port } = await startServer());
  });

  afterAll(async () => {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exited));
  });

  test('one piped client talks, another hears it in plain text, and a netcat client too', async () => {
    const nc = new LineClient(await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    }));
    try {
      await nc.waitLine(/^\*\*\* You joined \[lobby\]/);
      const bob = join('bob', port);
      await bob.waitOutput('you are in [lobby]');

      const alice = join('alice', port);
      alice.proc.stdin.end('hello from alice\n/me waves\n/join dev\nnow in dev\n');
      expect(await alice.waitExit()).toBe(0);
      expect(alice.stderr).toBe('');
      // Its own lines came back as acknowledged, so everything was sent before it quit.
      expect(alice.stdout).toContain('[lobby] alice: hello from alice');
      expect(alice.stdout).toContain('[dev] alice: now in dev');

      await bob.waitOutput('alice: hello from alice');
      await bob.waitOutput('* alice waves');
      await bob.waitOutput('-- alice quit [lobby]');
      expect(bob.stdout).not.toContain('now in dev'); // that went to dev, where bob is not
      expect(bob.stdout).not.toMatch(ANSI);
      expect(bob.stdout).toMatch(/^\d\d:\d\d -- connected to roomcast /);
      await nc.waitLine('[lobby] alice: hello from alice');
      await nc.waitLine('[lobby] * alice waves');

      // The netcat user answers; the terminal client shows it.
      nc.send('hi alice, bob here is nc');
      await bob.waitOutput(/\d\d:\d\d \[lobby\] guest\d+: hi alice, bob here is nc/);

      bob.proc.stdin.end();
      expect(await bob.waitExit()).toBe(0);
    } finally {
      nc.destroy();
    }
  });

  test('a piped client exits only when every line has been answered', async () => {
    const listener = join('listener', port);
    await listener.waitOutput('you are in [lobby]');
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    const sender = join('sender', port);
    sender.proc.stdin.end(lines.join('\n') + '\n/ping\n');
    expect(await sender.waitExit()).toBe(0);
    for (const l of lines) expect(sender.stdout).toContain(`sender: ${l}\n`);
    expect(sender.stdout).toMatch(/-- pong in \d+ ms/);
    await listener.waitOutput('sender: line 30');
    for (const l of lines) expect(listener.stdout).toContain(`sender: ${l}\n`);
    listener.proc.stdin.end();
    expect(await listener.waitExit()).toBe(0);
  });

  test('a line the server refuses is reported on stderr and makes the exit status 1', async () => {
    const c = join('carol', port);
    c.proc.stdin.end('/part nowhere\nstill said\n');
    expect(await c.waitExit()).toBe(1);
    expect(c.stderr).toContain('! You are not in room "nowhere"');
    expect(c.stdout).toContain('carol: still said');
  });

  test('a taken nick gets a suffix', async () => {
    const first = join('dave', port);
    await first.waitOutput('you are in [lobby]');
    const second = join('dave', port);
    second.proc.stdin.end('who am i\n');
    expect(await second.waitExit()).toBe(0);
    expect(second.stdout).toContain('the nick dave is taken, so you are dave_2');
    expect(second.stdout).toContain('dave_2: who am i');
    first.proc.stdin.end();
    await first.waitExit();
  });

  test('with nothing listening it exits non-zero and says what to do', async () => {
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const c = run('nobody', ['join', `127.0.0.1:${free}`, '--nick', 'nobody']);
    c.proc.stdin.end('anyone?\n');
    expect(await c.waitExit()).toBe(1);
    expect(c.stderr).toBe(
      `roomcast: could not connect to 127.0.0.1:${free}: connection refused — is the server running? start one with: roomcast serve\n`,
    );
    expect(c.stdout).toBe('');
  });

  test('a bad address is refused before connecting', async () => {
    const c = run('bad', ['join', '[::1:7447']);
    c.proc.stdin.end();
    expect(await c.waitExit()).toBe(2);
    expect(c.stderr).toContain('write IPv6 as [::1]:PORT');
  });

  test('when the server restarts, the client says so, reconnects, and shows what was said once', async () => {
    const erin = join('erin', port, '--room', 'keep');
    await erin.waitOutput('you are in [keep]');
    // The server goes away (SIGTERM: it says goodbye to everyone first).
    process.kill(server.proc.pid!, 'SIGTERM');
    expect(await server.waitExit()).toBe(0);
    await erin.waitOutput(/connection lost \(.*\), reconnecting in \d+\.\ds\.\.\./);

    ({ server, port } = await startServer(port));
    const frank = join('frank', port, '--room', 'keep');
    frank.proc.stdin.write('said while erin was away\n');
    await frank.waitOutput('frank: said while erin was away');

    await erin.waitOutput('-- reconnected as erin', 15_000);
    await erin.waitOutput('[keep] frank: said while erin was away');
    frank.proc.stdin.write('said after\n');
    await erin.waitOutput('[keep] frank: said after');
    expect(erin.stdout.split('frank: said while erin was away').length).toBe(2); // exactly once
    frank.proc.stdin.end();
    erin.proc.stdin.end();
    expect(await erin.waitExit()).toBe(0);
    expect(await frank.waitExit()).toBe(0);
  }, 30_000);

  test('when the server comes back without its history (--store memory), the client says so and shows the new numbering from its start', async () => {
    process.kill(server.proc.pid!, 'SIGTERM');
    expect(await server.waitExit()).toBe(0);
    ({ server, port } = await startServer(port, '--store', 'memory'));
    const gina = join('gina', port, '--room', 'mem');
    const hal = join('hal', port, '--room', 'mem');
    await gina.waitOutput('you are in [mem]');
    hal.proc.stdin.write('before the restart\n');
    await gina.waitOutput('hal: before the restart');

    process.kill(server.proc.pid!, 'SIGTERM');
    expect(await server.waitExit()).toBe(0);
    ({ server, port } = await startServer(port, '--store', 'memory'));
    // The new server's numbering passes gina's before she is back: only the history id tells.
    const ivy = join('ivy', port, '--room', 'mem');
    for (const text of ['one', 'two', 'three']) ivy.proc.stdin.write(`${text}\n`);
    await ivy.waitOutput('ivy: three');

    await gina.waitOutput("the server's history is not the one it had", 15_000);
    await gina.waitOutput('ivy: three');
    expect(gina.stdout).toContain('ivy: one');
    expect(gina.stdout).toContain('ivy: two');
    for (const c of [gina, hal, ivy]) c.proc.stdin.end();
    expect(await gina.waitExit()).toBe(0);
    expect(await ivy.waitExit()).toBe(0);
    hal.kill();
  }, 40_000);

  test('given two servers (a:PORT,b:PORT), the client goes on at the second when the first goes away', async () => {
    const first = await startServer(0, '--store', 'memory');
    const second = await startServer(0, '--store', 'memory');
    const jo = run('jo', ['join', `127.0.0.1:${first.port},127.0.0.1:${second.port}`, '--nick', 'jo', '--room', 'two']);
    await jo.waitOutput('you are in [two]');
    process.kill(first.server.proc.pid!, 'SIGTERM');
    expect(await first.server.waitExit()).toBe(0);
    await jo.waitOutput(`-- reconnected to 127.0.0.1:${second.port} as jo`, 15_000);
    // Printed with the line above, but it may reach the pipe in a chunk of its own.
    await jo.waitOutput("the server's history is not the one it had");
    const kim = join('kim', second.port, '--room', 'two');
    kim.proc.stdin.write('hello from the second\n');
    await jo.waitOutput('[two] kim: hello from the second');
    for (const c of [jo, kim]) c.proc.stdin.end();
    expect(await jo.waitExit()).toBe(0);
    expect(await kim.waitExit()).toBe(0);
    second.server.kill();
  }, 40_000);
});

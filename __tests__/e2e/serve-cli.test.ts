/**
 * `roomcast serve` as a user runs it: the built binary, real sockets, real signals.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const BIN = path.resolve('bin/roomcast');
import { CLI_ENV } from '../helpers/cli-child.js';

interface Served {
  proc: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  port: number;
  exited: Promise<number | null>;
}

const started: ChildProcessWithoutNullStreams[] = [];

async function until<T>(probe: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function serve(...args: string[]): Promise<Served> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--no-bot', '--greet-delay', '20', ...args], { env: CLI_ENV });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  proc.stderr.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const m = await until(() => /listening on .*:(\d+)\n/.exec(out), 10_000, `the banner (stderr: ${err})`);
  return { proc, out: () => out, err: () => err, port: Number(m[1]), exited };
}

function connect(host: string, port: number): Promise<{ sock: net.Socket; text: () => string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    // Half-open: the client ends its side only when a test says so (a slow client does not).
    const sock = net.connect({ host, port, allowHalfOpen: true }, () => resolve({ sock, text: () => text }));
    sock.on('data', (d) => (text += d));
    sock.on('error', reject);
  });
}

function refused(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port }, () => {
      sock.destroy();
      resolve('connected');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

afterEach(() => {
  for (const p of started.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

test('by default it listens on loopback in both families and says it is loopback only', async () => {
  const s = await serve();
  expect(s.out()).toContain(`roomcast listening on 127.0.0.1:${s.port}, [::1]:${s.port}\n`);
  expect(s.out()).toContain('Loopback only: other machines cannot connect.');
  const v6 = await connect('::1', s.port);
  await until(() => v6.text().includes('Welcome to roomcast'), 5000, 'the welcome over ::1');
  await until(() => s.out().includes(`connected from [::1]:${v6.sock.localPort}`), 5000, 'the log line');
  v6.sock.destroy();
});

test('bound to :: it is dual stack and shows IPv4 clients as plain IPv4', async () => {
  const s = await serve('--host', '::');
  const v4 = await connect('127.0.0.1', s.port);
  await until(() => v4.text().includes('Welcome'), 5000, 'the welcome over IPv4');
  await until(() => s.out().includes(`connected from 127.0.0.1:${v4.sock.localPort} (text)`), 5000, 'the log line');
  expect(s.out()).not.toContain('::ffff:');
  v4.sock.destroy();
});

test('bound to 0.0.0.0 it takes IPv4 only', async () => {
  const s = await serve('--host', '0.0.0.0');
  expect(await refused('::1', s.port)).toBe('ECONNREFUSED');
  expect(await refused('127.0.0.1', s.port)).toBe('connected');
});

test('SIGINT tells every client, then exits 0', async () => {
  const s = await serve();
  const c = await connect('127.0.0.1', s.port);
  await until(() => c.text().includes('Welcome'), 5000, 'the welcome');
  c.sock.on('end', () => c.sock.end());
  s.proc.kill('SIGINT');
  expect(await s.exited).toBe(0);
  expect(c.text()).toContain('*** Disconnected: The server is shutting down. Reconnect when it is back.\n');
  expect(s.out()).toMatch(/SIGINT: shutting down/);
});

test('a second signal exits at once, without waiting for slow clients', async () => {
  const s = await serve('--shutdown-timeout', '20000');
  const c = await connect('127.0.0.1', s.port);
  await until(() => c.text().includes('Welcome'), 5000, 'the welcome');
  // This client never closes its side, so a graceful stop would wait for it.
  s.proc.kill('SIGTERM');
  await until(() => s.out().includes('SIGTERM: shutting down'), 5000, 'the first signal to land');
  const t0 = Date.now();
  s.proc.kill('SIGTERM');
  expect(await s.exited).toBe(1);
  expect(Date.now() - t0).toBeLessThan(1500);
  expect(s.err()).toContain('second SIGTERM, exiting now');
  c.sock.destroy();
});

test('a port in use is explained, with what to do', async () => {
  const first = await serve('--host', '127.0.0.1');
  // History in memory: on the first one's data directory it would be refused as locked first.
  const second = spawn(process.execPath, [BIN, 'serve', '--no-bot', '--store', 'memory', '--host', '127.0.0.1', '--port', String(first.port)], { env: CLI_ENV });
  started.push(second);
  let err = '';
  second.stderr.on('data', (d: Buffer) => (err += d));
  const code = await new Promise((r) => second.on('exit', r));
  expect(code).toBe(1);
  expect(err).toContain(`port ${first.port} is already in use`);
  expect(err).toContain('--port');
});

test('a second server on the same data directory is refused in one line, naming the file', async () => {
  await serve('--host', '127.0.0.1');
  const second = spawn(process.execPath, [BIN, 'serve', '--no-bot', '--host', '127.0.0.1', '--port', '0'], { env: CLI_ENV });
  started.push(second);
  let err = '';
  second.stderr.on('data', (d: Buffer) => (err += d));
  const code = await new Promise((r) => second.on('exit', r));
  expect(code).toBe(1);
  expect(err.trim().split('\n')).toHaveLength(1);
  // Whichever of its two files it tries first.
  expect(err).toMatch(new RegExp(`history store ${process.env.XDG_STATE_HOME}/roomcast/(messages|images)\\.sqlite is in use by another roomcast server`));
});

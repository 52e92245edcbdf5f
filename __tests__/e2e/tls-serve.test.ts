/**
 * `roomcast serve --tls` as a user runs it: the built binary makes its certificate on first
 * start, prints the fingerprint, keeps the same one across restarts, and a netcat user reaches
 * it through `openssl s_client -quiet`; --tls-only turns clear text away; flags that do not
 * fit are one line and exit 1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { JsonClient, LineClient, until } from '../helpers/clients.js';
import { describeWithOpenssl } from '../helpers/openssl.js';

describeWithOpenssl('roomcast serve --tls', () => {
  const WAIT = 15_000;
  const children: CliChild[] = [];
  const clients: LineClient[] = [];
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-serve-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const c of children.splice(0)) await c.stop().catch(() => c.kill());
  });

  function run(name: string, command: string, args: string[]): CliChild {
    const child = new CliChild(name, spawn(command, args, { cwd: ROOT, env: CLI_ENV }), WAIT);
    children.push(child);
    return child;
  }

  async function serve(...args: string[]): Promise<{ child: CliChild; port: number; fingerprint: string }> {
    const child = run('serve', process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--greet-delay', '50', '--data-dir', dir, ...args]);
    await child.waitOutput(/TLS: .*\n {2}SHA256:\S+\n/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(child.stdout)![1]);
    return { child, port, fingerprint: /\n {2}(SHA256:\S+)\n/.exec(child.stdout)![1]! };
  }

  function peerFingerprint(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        resolve(`SHA256:${s.getPeerCertificate().fingerprint256}`);
        s.destroy();
      });
      s.once('error', reject);
    });
  }

  test('serve --tls: a certificate made on first start, its fingerprint in the banner and on the wire, the same after a restart; openssl s_client is a netcat user', async () => {
    const first = await serve('--tls');
    expect(first.child.stdout).toMatch(/TLS: on the same port, clear text too; self-signed certificate \(.*tls\/cert\.pem\); clients check this on first contact:/);
    expect(await peerFingerprint(first.port)).toBe(first.fingerprint);

    const ann = await JsonClient.registered(first.port, 'ann');
    clients.push(ann);
    const nc = run('openssl s_client', 'openssl', ['s_client', '-quiet', '-connect', `127.0.0.1:${first.port}`]);
    await nc.waitOutput(/\*\*\* You joined \[lobby\]/);
    nc.proc.stdin.write('/nick tom\nhello through openssl\n');
    expect(await ann.waitEvent((e) => e.type === 'message' && e.nick === 'tom', WAIT)).toMatchObject({ text: 'hello through openssl' });
    ann.sendJson({ type: 'message', text: 'hi tom' });
    await nc.waitOutput('[lobby] ann: hi tom');
    // -quiet ignores the end of its input: /quit ends the session, and the server the connection.
    nc.proc.stdin.write('/quit\n');
    await nc.waitExit(WAIT);
    expect(await ann.waitEvent((e) => e.type === 'parted' && e.nick === 'tom')).toMatchObject({ quit: true });

    expect(await first.child.stop()).toBe(0);
    const again = await serve('--tls');
    expect(again.fingerprint).toBe(first.fingerprint);
  });

  test('roomcast post to serve --tls: pinned with the banner\'s fingerprint and remembered; a server that comes back with another certificate is refused loudly', async () => {
    const config = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-config-'));
    const other = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-other-'));
    try {
      const env = { ...CLI_ENV, XDG_CONFIG_HOME: config };
      const post = (port: number, extra: string[]): CliChild => {
        const child = new CliChild('post', spawn(process.execPath, [BIN, 'post', `tls://127.0.0.1:${port}`, '--room', 'lobby', '--text', 'hello', ...extra], { cwd: ROOT, env }), WAIT);
        children.push(child);
        return child;
      };
      const first = await serve('--tls');
      const watcher = await JsonClient.registered(first.port, 'ann');
      clients.push(watcher);
      const pinned = post(first.port, ['--fingerprint', first.fingerprint]);
      expect(await pinned.waitExit()).toBe(0);
      expect(await watcher.waitEvent((e) => e.type === 'message', WAIT)).toMatchObject({ text: 'hello' });
      expect(readFileSync(path.join(config, 'roomcast', 'known_servers'), 'utf8')).toContain(`127.0.0.1:${first.port} ${first.fingerprint}`);
      // Remembered: no --fingerprint needed the second time.
      expect(await post(first.port, []).waitExit()).toBe(0);

      // The same address, another certificate (another data directory): someone in the middle, as far as the client can tell.
      await first.child.stop();
      const impostor = run('serve', process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', String(first.port), '--no-bot', '--data-dir', other, '--tls']);
      await impostor.waitOutput(/TLS: .*\n {2}SHA256:\S+\n/);
      const fresh = /\n {2}(SHA256:\S+)\n/.exec(impostor.stdout)![1]!;
      expect(fresh).not.toBe(first.fingerprint);
      const refused = post(first.port, []);
      expect(await refused.waitExit()).not.toBe(0);
      expect(refused.stderr).toContain(first.fingerprint);
      expect(refused.stderr).toContain(fresh);
      expect(refused.stderr).toMatch(/different certificate|changed/i);
    } finally {
      rmSync(config, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('serve --tls-only: clear text gets one line saying how to connect, plain HTTP a redirect, TLS the chat', async () => {
    const { port } = await serve('--tls', '--tls-only');
    expect(children[0]!.stdout).toMatch(/TLS: on the same port, clear text refused \(--tls-only\)/);
    const clear = await LineClient.connect(port);
    clients.push(clear);
    clear.send('/who');
    await until(() => clear.closed, WAIT, 'the clear-text client to be closed');
    expect(clear.lines.join('\n')).toMatch(/this server speaks TLS only\. Connect with: roomcast join tls:\/\/HOST:PORT, or openssl s_client -quiet -connect HOST:PORT/);
    const res = await fetch(`http://127.0.0.1:${port}/`, { redirect: 'manual' });
    expect([res.status, res.headers.get('location')]).toEqual([308, `https://127.0.0.1:${port}/`]);
    const nc = run('openssl s_client', 'openssl', ['s_client', '-quiet', '-connect', `127.0.0.1:${port}`]);
    await nc.waitOutput(/\*\*\* Welcome to roomcast/);
  });

  test('TLS flags that do not fit, or files that cannot serve: one line naming the problem and what to do, exit 1', async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-keys-'));
    try {
      const make = (name: string): string[] => {
        const [cert, key] = [path.join(other, `${name}.crt`), path.join(other, `${name}.key`)];
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
        return [cert, key];
      };
      const [certA] = make('a');
      const [, keyB] = make('b');
      const cases: [string[], RegExp][] = [
        [['--tls-cert', certA!, '--tls-key', keyB!], /^roomcast: the key .*b\.key does not belong to the certificate .*a\.crt: give the key the certificate was made for\n$/],
        [['--tls-cert', certA!], /^roomcast: --tls-cert needs --tls-key FILE \(its private key\)\n$/],
          [['--tls-cert', path.join(other, 'missing.crt'), '--tls-key', keyB!], /^roomcast: cannot read the TLS certificate .*missing\.crt: no such file\n$/],
      ];
      for (const [args, message] of cases) {
        const child = run('serve', process.execPath, [BIN, 'serve', '--port', '0', '--no-bot', '--data-dir', dir, ...args]);
        expect(await child.waitExit(WAIT)).toBe(1);
        expect(child.stderr).toMatch(message);
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

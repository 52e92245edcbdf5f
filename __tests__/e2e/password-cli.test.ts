/**
 * The classroom set-up of docs/security.md with the built binary: `serve --tls-only
 * --password-file`, and `roomcast post` with the fingerprint from the banner and the password
 * from a file; without the password it is refused with what to do, and a file that cannot be
 * read is a usage error.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { describeWithOpenssl } from '../helpers/openssl.js';

const WAIT = 15_000;

describeWithOpenssl('a classroom: serve --tls-only --password-file, and roomcast post', () => {
  const children: CliChild[] = [];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-password-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    for (const c of children.splice(0)) await c.stop().catch(() => c.kill());
  });

  function roomcast(env: NodeJS.ProcessEnv, ...args: string[]): CliChild {
    const child = new CliChild(`roomcast ${args[0]}`, spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env }), WAIT);
    children.push(child);
    return child;
  }

  test('the password from a file gets in; without it the post is refused with what to do', async () => {
    const file = path.join(dir, 'password');
    writeFileSync(file, 'chalk and cheese\n');
    chmodSync(file, 0o600);
    const env = { ...CLI_ENV, XDG_CONFIG_HOME: path.join(dir, 'config') };
    const serve = roomcast(env, 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--data-dir', path.join(dir, 'data'), '--tls-only', '--password-file', file);
    await serve.waitOutput(/TLS: .*\n {2}SHA256:\S+\n/);
    expect(serve.stderr).not.toMatch(/warning/);
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(serve.stdout)![1]!;
    const fingerprint = /\n {2}(SHA256:\S+)\n/.exec(serve.stdout)![1]!;
    const at = `tls://127.0.0.1:${port}`;

    const ok = roomcast(env, 'post', at, '--room', 'lobby', '--text', 'hello class', '--fingerprint', fingerprint, '--password-file', file);
    expect(await ok.waitExit()).toBe(0);

    const without = roomcast(env, 'post', at, '--room', 'lobby', '--text', 'let me in');
    expect(await without.waitExit()).not.toBe(0);
    expect(without.stderr).toMatch(/This server needs a password/);

    const missing = roomcast(env, 'post', at, '--room', 'lobby', '--text', 'x', '--password-file', path.join(dir, 'nope'));
    expect(await missing.waitExit()).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope: no such file/);
  });
});

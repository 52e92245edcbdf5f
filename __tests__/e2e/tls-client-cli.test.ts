/**
 * `roomcast join` and `roomcast post` over TLS as a script runs them: the built binary (run
 * `npm run build` first), stdin not a terminal, against a scripted TLS server on 127.0.0.1.
 * The refusal a script gets on first contact, --fingerprint as it is copied, the known-servers
 * file under $XDG_CONFIG_HOME, the "connected to" line, and the usage errors (exit 2).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, CLI_ENV } from '../helpers/cli-child.js';
import { describeWithOpenssl } from '../helpers/openssl.js';
import { ScriptedTlsServer } from '../helpers/scripted-tls-server.js';
import { selfSigned, type TestCert } from '../helpers/tls-certs.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describeWithOpenssl('roomcast join and post over TLS (the built CLI)', () => {
  const server = new ScriptedTlsServer();
  let dir: string;
  let cert: TestCert;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roomcast-tls-cli-'));
    cert = selfSigned(dir, 'server');
    env = { ...CLI_ENV, XDG_CONFIG_HOME: path.join(dir, 'config') };
    await server.start(cert);
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[], input = ''): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, [BIN, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(input);
    });
  }

  const at = (): string => `127.0.0.1:${server.port}`;
  const knownServers = (): string => path.join(dir, 'config', 'roomcast', 'known_servers');

  test('a script on first contact is refused with the fingerprint to pass, in whole lines; --fingerprint as copied trusts and remembers it', async () => {
    const refused = await run(['post', '--room', 'lobby', '--text', 'hi', `tls://${at()}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `roomcast: the server at ${at()} presented a self-signed certificate, not seen here before, so roomcast did not connect. Its fingerprint is\n` +
        `  ${cert.fingerprint}\n` +
        'If it is the one the server printed when it started (roomcast serve --tls shows it), connect with\n' +
        `  --fingerprint ${cert.fingerprint}\n` +
        'to trust it and remember it.\n',
    );

    // Pasted lower case, without the prefix or the colons.
    const copied = cert.fingerprint.slice('SHA256:'.length).replace(/:/g, '').toLowerCase();
    const posted = await run(['post', '--room', 'lobby', '--text', 'hi', '--tls', at(), '--fingerprint', copied]);
    expect(posted).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(knownServers(), 'utf8')).toContain(`\n${at()} ${cert.fingerprint}\n`);

    // Known now: join needs nothing more, and says the connection is encrypted.
    const joined = await run(['join', '--nick', 'ann', `tls://${at()}`], 'hello\n');
    expect(joined.stderr).toBe('');
    expect(joined.code).toBe(0);
    expect(joined.stdout).toMatch(new RegExp(`-- connected to scripted 0 as ann \\(TLS, ${cert.fingerprint.slice(0, 18)}…\\)\\n`));
  });

  test('usage errors exit 2: a fingerprint that is not one, --fingerprint without TLS, --tls with a clear-text URL', async () => {
    const bad = await run(['join', '--fingerprint', 'SHA256:12:34', `tls://${at()}`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/option '--fingerprint <SHA256:\.\.\.>' argument 'SHA256:12:34' is invalid\. Give the SHA-256 fingerprint the server printed at start-up/);

    const clear = await run(['post', '--room', 'lobby', '--text', 'hi', '--fingerprint', cert.fingerprint, at()]);
    expect(clear).toMatchObject({ code: 2, stderr: 'roomcast: --fingerprint checks the certificate of a TLS server: give its address as tls://HOST:PORT, or add --tls\n' });

    const both = await run(['join', '--tls', `http://${at()}/`]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^roomcast: "http:\/\/127\.0\.0\.1:\d+\/" is a clear-text \(http:\/\/\) address, and --tls asks for TLS/);
  });
});

/**
 * The TLS client and how it trusts a server, as ssh trusts a host: fingerprints as people copy
 * them, addresses that mean TLS, the known-servers file, the decision itself, and then the
 * chat client over real TLS sockets on 127.0.0.1 against a scripted server (and a real one):
 * first contact with --fingerprint or a question, refusals, a changed certificate (also on a
 * reconnect), a server that does not speak TLS, and a certificate that verifies.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { InvalidArgumentError } from 'commander';
import { AddressError, parseServerAddress, parseServerAddresses } from '../../src/client/address.js';
import { ChatClient, ConnectError, type ChatClientOptions } from '../../src/client/chat-client.js';
import { normalizeFingerprint, shortFingerprint } from '../../src/tls/fingerprint.js';
import { KnownServers, knownServersFile, serverKey } from '../../src/client/known-servers.js';
import { PLAIN, tlsNote } from '../../src/client/render.js';
import { Terminal } from '../../src/client/terminal.js';
import { ServerTrust, TrustError, type TrustCheck, type Trusted, type TrustQuestion } from '../../src/client/trust.js';
import { askOnTerminal, isYes } from '../../src/client/trust-prompt.js';
import { fingerprint as fingerprintOption } from '../../src/cli/numbers.js';
import { PassThrough } from 'node:stream';
import { Harness, HOST } from '../helpers/clients.js';
import { describeWithOpenssl } from '../helpers/openssl.js';
import { ScriptedTlsServer } from '../helpers/scripted-tls-server.js';
import { authority, selfSigned, type TestCert } from '../helpers/tls-certs.js';

/** A fingerprint made of one byte, repeated: SHA256:AB:AB:... */
const fp = (byte: string): string => `SHA256:${Array(32).fill(byte).join(':')}`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'roomcast-tls-client-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** A known-servers file of the test's own, not yet written. */
const freshFile = (): string => path.join(dir, `config-${++files}`, 'known_servers');

describe('fingerprints as people copy them', () => {
  const canonical = '3A:F1:00:9C:'.repeat(8).slice(0, -1);

  test.each([
    [`SHA256:${canonical}`],
    [`sha256:${canonical.toLowerCase()}`],
    [canonical],
    [canonical.replace(/:/g, '')],
    [canonical.replace(/:/g, '').toLowerCase()],
    [`  SHA256:${canonical}\n`],
    [`sha256 Fingerprint=${canonical}`],
  ])('%j is SHA256: and uppercase pairs', (text) => {
    expect(normalizeFingerprint(text)).toBe(`SHA256:${canonical}`);
    expect(fingerprintOption(text)).toBe(`SHA256:${canonical}`);
  });

  test.each([[''], ['SHA256:'], ['3A:F1'], [canonical + ':00'], [canonical.replace('3A', 'ZZ')], ['MD5:' + canonical], ['SHA1:' + canonical]])(
    '%j is not a fingerprint: a usage error that says what to give',
    (text) => {
      expect(normalizeFingerprint(text)).toBeNull();
      expect(() => fingerprintOption(text)).toThrow(InvalidArgumentError);
      expect(() => fingerprintOption(text)).toThrow(/SHA-256 fingerprint the server printed at start-up: SHA256: and 32 hex pairs/);
    },
  );

  test('the short form and the connected line', () => {
    expect(shortFingerprint(`SHA256:${canonical}`)).toBe('SHA256:3A:F1:00:9C…');
    expect(tlsNote(null)).toBe('');
    expect(tlsNote({ how: 'verified', fingerprint: fp('AB') })).toBe(' (TLS, verified certificate)');
    expect(tlsNote({ how: 'known', fingerprint: fp('AB') })).toBe(' (TLS, SHA256:AB:AB:AB:AB…)');
  });
});

// tls://, https:// and wss:// alone: with the other URLs, in __tests__/e2e/small-fixes.test.ts.
describe('addresses that mean TLS', () => {
  test('--tls makes a HOST:PORT (and every one of a list) TLS; a TLS URL stays TLS', () => {
    expect(parseServerAddress('chat.lan:9000', 7447, { tls: true })).toEqual({ host: 'chat.lan', port: 9000, tls: true });
    expect(parseServerAddress('[::1]', 7447, { tls: true })).toEqual({ host: '::1', port: 7447, tls: true });
    expect(parseServerAddress('https://chat.lan/', 7447, { tls: true })).toEqual({ host: 'chat.lan', port: 443, tls: true });
    expect(parseServerAddress('chat.lan:9000', 7447)).toEqual({ host: 'chat.lan', port: 9000 });
    expect(parseServerAddresses('a:1,b:2', 7447, { tls: true })).toEqual([
      { host: 'a', port: 1, tls: true },
      { host: 'b', port: 2, tls: true },
    ]);
  });

  test('each address of a list carries its own scheme', () => {
    expect(parseServerAddresses('tls://a:1,b:2,wss://c/', 7447)).toEqual([
      { host: 'a', port: 1, tls: true },
      { host: 'b', port: 2 },
      { host: 'c', port: 443, tls: true },
    ]);
  });

  test('--tls with a clear-text URL is a contradiction, said as one', () => {
    for (const text of ['http://chat.lan/', 'ws://chat.lan/ws', 'roomcast://chat.lan']) {
      expect(() => parseServerAddress(text, 7447, { tls: true })).toThrow(AddressError);
      expect(() => parseServerAddress(text, 7447, { tls: true })).toThrow(/is a clear-text \(\w+:\/\/\) address, and --tls asks for TLS: give tls:\/\/HOST:PORT/);
    }
    expect(() => parseServerAddress('tls://', 7447)).toThrow(/has no host: give one, such as tls:\/\/chat\.lan:7447\//);
  });
});

describe('the known-servers file', () => {
  test('lives under $XDG_CONFIG_HOME, else ~/.config; a relative one is ignored', () => {
    expect(knownServersFile({ XDG_CONFIG_HOME: '/cfg' }, '/home/t')).toBe('/cfg/roomcast/known_servers');
    expect(knownServersFile({}, '/home/t')).toBe('/home/t/.config/roomcast/known_servers');
    expect(knownServersFile({ XDG_CONFIG_HOME: 'cfg' }, '/home/t')).toBe('/home/t/.config/roomcast/known_servers');
    expect(knownServersFile({ XDG_CONFIG_HOME: '' }, '/home/t')).toBe('/home/t/.config/roomcast/known_servers');
    // The tests' own (helpers/state-home.ts), never the real one.
    expect(knownServersFile()).toBe(path.join(process.env.XDG_CONFIG_HOME!, 'roomcast', 'known_servers'));
  });

  test('servers are written as hostPort() writes them: IPv6 in brackets, names in lower case', () => {
    expect(serverKey('::1', 7447)).toBe('[::1]:7447');
    expect(serverKey('Chat.LAN', 9000)).toBe('chat.lan:9000');
    expect(serverKey('::ffff:10.0.0.1', 1)).toBe('10.0.0.1:1');
  });

  test('remember: the directory and a header made, one line a server, replaced in place; hand-written forms read', async () => {
    const file = freshFile();
    const known = new KnownServers(file);
    expect(await known.get('a:1')).toBeUndefined();
    await known.remember('a:1', fp('AA'));
    await known.remember('[::1]:2', fp('BB'));
    await known.remember('a:1', fp('CC'));
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^# roomcast known servers/);
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([`[::1]:2 ${fp('BB')}`, `a:1 ${fp('CC')}`, '']);
    // Edited by hand: lower case without colons, junk, comments. A fresh reader has no session.
    writeFileSync(file, `${text}# a comment\nnot a line\nb:3 ${fp('dd').slice(7).replace(/:/g, '')}\nc:4 SHA256:12 extra\n`);
    const reader = new KnownServers(file);
    expect(await reader.get('b:3')).toBe(fp('DD'));
    expect(await reader.get('a:1')).toBe(fp('CC'));
    expect(await reader.get('c:4')).toBeUndefined();
  });
});

describe('ServerTrust: the decision', () => {
  const peer = (fingerprint: string, verified = false) => ({ fingerprint, verified, problem: verified ? '' : 'a self-signed certificate' });
  function check(over: Partial<TrustCheck> = {}): TrustCheck & { hungUp: number; warnings: string[] } {
    const c = { host: 'chat.lan', port: 7447, peer: peer(fp('AA')), reconnecting: false, hungUp: 0, warnings: [] as string[] } as TrustCheck & {
      hungUp: number;
      warnings: string[];
    };
    c.hangUp = () => void c.hungUp++;
    c.warn = (t) => void c.warnings.push(t);
    return Object.assign(c, over);
  }
  const never = async (): Promise<boolean> => {
    throw new Error('nobody should have been asked');
  };
  async function refusal(p: Promise<Trusted>): Promise<TrustError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TrustError);
    return err as TrustError;
  }

  test('a certificate that verifies is trusted as usual: no file read, nobody asked', async () => {
    const file = path.join(dir, 'a-directory');
    mkdirSync(file); // would fail to read, were it read
    expect(await new ServerTrust({ knownServersFile: file, ask: never }).check(check({ peer: peer(fp('AA'), true) }))).toEqual({
      how: 'verified',
      fingerprint: fp('AA'),
    });
  });

  test('--fingerprint that matches a known one; one that does not, though the server is known', async () => {
    const file = freshFile();
    await new KnownServers(file).remember('chat.lan:7447', fp('AA'));
    expect(await new ServerTrust({ knownServersFile: file, fingerprint: fp('AA') }).check(check())).toEqual({ how: 'fingerprint', fingerprint: fp('AA') });
    const err = await refusal(new ServerTrust({ knownServersFile: file, fingerprint: fp('BB') }).check(check()));
    expect(err.code).toBe('TLS_FINGERPRINT_MISMATCH');
    expect(err.message).toContain(`--fingerprint: ${fp('BB')}`);
    expect(err.message).toContain(`presented:     ${fp('AA')}`);
  });

  test('on a reconnect nobody is asked: a server not trusted before is refused', async () => {
    const c = check({ reconnecting: true });
    const err = await refusal(new ServerTrust({ knownServersFile: freshFile(), ask: never }).check(c));
    expect([err.code, c.hungUp]).toEqual(['TLS_UNTRUSTED', 0]);
    expect(err.message).toMatch(/^on reconnecting, the server at chat\.lan:7447 presented a self-signed certificate, not seen here before/);
  });

  test('a server that presents no certificate is not trusted', async () => {
    const err = await refusal(new ServerTrust({ knownServersFile: freshFile(), ask: never }).check(check({ peer: null })));
    expect([err.code, err.message]).toEqual(['TLS_UNTRUSTED', 'the server at chat.lan:7447 presented no certificate, so roomcast did not connect']);
  });

  test('a known-servers file that cannot be read: refused (a change could not be noticed), saying which file', async () => {
    const file = path.join(dir, 'unreadable');
    mkdirSync(file);
    const err = await refusal(new ServerTrust({ knownServersFile: file, fingerprint: fp('AA') }).check(check()));
    expect(err.code).toBe('TLS_KNOWN_SERVERS');
    expect(err.message).toContain(`cannot read ${file}`);
  });

  test('a file that cannot be written: a warning, and the server is trusted for the session (a reconnect finds it)', async () => {
    const blocker = path.join(dir, 'a-file');
    writeFileSync(blocker, '');
    const trust = new ServerTrust({ knownServersFile: path.join(blocker, 'known_servers'), ask: async () => true });
    const first = check();
    expect(await trust.check(first)).toEqual({ how: 'asked', fingerprint: fp('AA') });
    expect(first.hungUp).toBe(1);
    expect(first.warnings).toEqual([expect.stringMatching(/^could not remember the certificate of chat\.lan:7447 in .*: it is trusted for this session only$/)]);
    expect(await trust.check(check({ reconnecting: true }))).toEqual({ how: 'known', fingerprint: fp('AA') });
  });
});

describe('the terminal client', () => {
  test('a refusal on reconnecting is printed whole, one error line per line, nothing run together', () => {
    const client = new ChatClient({ host: HOST, port: 1 });
    const errors = new PassThrough();
    let printed = '';
    errors.on('data', (d: Buffer) => (printed += d.toString()));
    new Terminal({ client, input: new PassThrough(), output: new PassThrough(), errorOutput: errors, interactive: false, style: PLAIN, now: () => 0 });
    client.emit('fatal', new ConnectError('WARNING: changed\n  before: A\n  now:    B\u001b[2J', 'TLS_FINGERPRINT_CHANGED', 'changed', true, true));
    expect(printed.split('\n').map((l) => l.replace(/^\d\d:\d\d /, ''))).toEqual(['! WARNING: changed', '!   before: A', '!   now:    B\u241b[2J', '']);
  });
});

describe('the question at a terminal', () => {
  test('only y and yes (any case) are a yes', () => {
    expect(['y', 'YES', ' yes '].map(isYes)).toEqual([true, true, true]);
    expect(['', 'n', 'yep', 'sure', 'yes please'].map(isYes)).toEqual([false, false, false, false, false]);
  });

  test('shows the text, asks "Trust it and remember it? [y/N]", reads one answer; the end of input is a no', async () => {
    const question = { server: 'a:1', fingerprint: fp('AA'), text: 'The server at a:1 ...' };
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = '';
    output.on('data', (d: Buffer) => (shown += d.toString()));
    const answer = askOnTerminal(input, output)(question);
    input.write('y\n');
    expect(await answer).toBe(true);
    expect(shown).toContain('The server at a:1 ...\n');
    expect(shown).toContain('Trust it and remember it? [y/N] ');
    const input2 = new PassThrough();
    const ended = askOnTerminal(input2, new PassThrough())(question);
    input2.end();
    expect(await ended).toBe(false);
  });
});

describeWithOpenssl('the chat client over TLS', () => {
  let certA: TestCert;
  let certB: TestCert;
  let ca: ReturnType<typeof authority>;
  const server = new ScriptedTlsServer();
  const clients: ChatClient[] = [];
  let file: string;

  beforeAll(() => {
    certA = selfSigned(dir, 'a');
    certB = selfSigned(dir, 'b');
    ca = authority(dir);
  });
  beforeEach(async () => {
    file = freshFile();
    server.received.length = 0;
    await server.start(certA);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.stop();
  });

  const here = (): string => `127.0.0.1:${server.port}`;
  const remembered = (): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')) : []);
  const sent = (): Record<string, unknown>[] => server.received.flat();

  function client(opts: Partial<ChatClientOptions> = {}): ChatClient {
    const c = new ChatClient({
      host: HOST,
      port: server.port,
      tls: true,
      nick: 'alice',
      heartbeatMs: 0,
      reconnect: false,
      ...opts,
      trust: { knownServersFile: file, ...opts.trust },
    });
    clients.push(c);
    return c;
  }

  /** Connects; the connected event's TLS report. */
  async function connected(c: ChatClient): Promise<Trusted | null> {
    let trusted: Trusted | null | undefined;
    c.once('connected', (_w, info) => (trusted = info.tls));
    await c.connect();
    return trusted!;
  }

  async function refused(c: ChatClient): Promise<ConnectError> {
    const err = await c.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect(c.phase).toBe('closed');
    return err as ConnectError;
  }

  const noQuestion = async (): Promise<boolean> => {
    throw new Error('nobody should have been asked');
  };

  test('first contact with --fingerprint: trusted, remembered as HOST:PORT SHA256:FP, and the hello goes out', async () => {
    const c = client({ trust: { fingerprint: certA.fingerprint, ask: noQuestion } });
    expect(await connected(c)).toEqual({ how: 'fingerprint', fingerprint: certA.fingerprint });
    expect(remembered()).toEqual([`${here()} ${certA.fingerprint}`]);
    expect(sent()[0]).toMatchObject({ type: 'hello', nick: 'alice' });
    expect((await c.say('over TLS')).seq).toBe(1);
  });

  test('first contact at a terminal: the connection is closed before asking (nothing sent), a yes connects again and remembers', async () => {
    const asked: TrustQuestion[] = [];
    let sentWhenAsked = -1;
    const c = client({
      serverPassword: 'sekrit',
      trust: {
        ask: async (q) => {
          asked.push(q);
          sentWhenAsked = sent().length;
          return true;
        },
      },
    });
    // The connection after the yes finds the server known.
    expect(await connected(c)).toEqual({ how: 'known', fingerprint: certA.fingerprint });
    expect(asked).toEqual([{ server: here(), fingerprint: certA.fingerprint, text: expect.stringContaining(`presented a self-signed certificate, not seen here before. Its fingerprint is\n  ${certA.fingerprint}\n`) }]);
    expect(sentWhenAsked).toBe(0);
    expect(sent().filter((l) => l.type === 'hello')).toEqual([{ type: 'hello', nick: 'alice', serverPassword: 'sekrit' }]);
    expect(remembered()).toEqual([`${here()} ${certA.fingerprint}`]);
  });

  test('first contact at a terminal, answered no: TLS_UNTRUSTED, nothing sent, nothing remembered', async () => {
    const err = await refused(client({ trust: { ask: async () => false } }));
    expect([err.code, err.final]).toEqual(['TLS_UNTRUSTED', true]);
    expect(err.message).toBe(`the certificate of ${here()} was not trusted, so roomcast did not connect`);
    expect(sent()).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });

  test('nobody to ask (stdin not a terminal): refused with the fingerprint and the exact --fingerprint to pass; not a byte sent', async () => {
    const err = await refused(client({ serverPassword: 'sekrit' }));
    expect(err.code).toBe('TLS_UNTRUSTED');
    expect(err.message).toBe(
      [
        `the server at ${here()} presented a self-signed certificate, not seen here before, so roomcast did not connect. Its fingerprint is`,
        `  ${certA.fingerprint}`,
        'If it is the one the server printed when it started (roomcast serve --tls shows it), connect with',
        `  --fingerprint ${certA.fingerprint}`,
        'to trust it and remember it.',
      ].join('\n'),
    );
    expect(sent()).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });

  test('known and the same: connected without a question', async () => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${here()} ${certA.fingerprint}\n`);
    expect(await connected(client({ trust: { ask: noQuestion } }))).toEqual({ how: 'known', fingerprint: certA.fingerprint });
  });

  test('known and different: refused loudly with the old and the new fingerprint, never asked; --fingerprint NEW puts it right', async () => {
    await new KnownServers(file).remember(here(), certB.fingerprint);
    const err = await refused(client({ serverPassword: 'sekrit', trust: { ask: noQuestion } }));
    expect([err.code, err.final]).toEqual(['TLS_FINGERPRINT_CHANGED', true]);
    expect(err.message).toBe(
      [
        `WARNING: the server at ${here()} presented a different certificate than before.`,
        `  before: ${certB.fingerprint}`,
        `  now:    ${certA.fingerprint}`,
        'Someone may be intercepting the connection (a man in the middle), so roomcast did not connect.',
        "If the server's certificate was changed on purpose (check the new fingerprint with its operator),",
        `remove the line for ${here()} from ${file}, or connect with --fingerprint ${certA.fingerprint}`,
      ].join('\n'),
    );
    expect(sent()).toEqual([]);

    expect(await connected(client({ trust: { fingerprint: certA.fingerprint } }))).toEqual({ how: 'fingerprint', fingerprint: certA.fingerprint });
    expect(remembered()).toEqual([`${here()} ${certA.fingerprint}`]);
  });

  test('--fingerprint that does not match on first contact: refused with both', async () => {
    const err = await refused(client({ trust: { fingerprint: certB.fingerprint, ask: noQuestion } }));
    expect(err.code).toBe('TLS_FINGERPRINT_MISMATCH');
    expect(err.message).toContain(`--fingerprint: ${certB.fingerprint}\n  presented:     ${certA.fingerprint}`);
    expect(sent()).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });

  test('a reconnect to a server restarted with another certificate closes the client with the loud error, without asking', async () => {
    let asked = 0;
    const ask = async (): Promise<boolean> => (asked++, true);
    const c = client({ reconnect: true, backoff: { initialMs: 20, maxMs: 20, jitter: 0 }, trust: { ask } });
    await c.connect();
    expect(asked).toBe(1);
    const fatal: ConnectError[] = [];
    c.on('fatal', (err) => fatal.push(err));
    const closed = new Promise<string>((resolve) => c.once('closed', ({ reason }) => resolve(reason)));
    const before = sent().length;
    await server.restart(certB);
    expect(await closed).toBe('the server presented a different certificate than before');
    expect(fatal.map((e) => e.code)).toEqual(['TLS_FINGERPRINT_CHANGED']);
    expect(fatal[0]!.message).toContain(`  before: ${certA.fingerprint}\n  now:    ${certB.fingerprint}\n`);
    expect(asked).toBe(1);
    expect(sent().length).toBe(before);
    expect(remembered()).toEqual([`${here()} ${certA.fingerprint}`]);
  });

  test('a server that does not speak TLS: TLS_HANDSHAKE, saying to start it with --tls or to connect without tls://', async () => {
    const h = new Harness();
    const plain = net.createServer((s) => s.end('*** Welcome to roomcast\n'));
    try {
      const roomcast = await h.server();
      await new Promise<void>((resolve) => plain.listen(0, HOST, resolve));
      for (const port of [roomcast.port, (plain.address() as net.AddressInfo).port]) {
        const err = await refused(client({ port }));
        expect(err.code).toBe('TLS_HANDSHAKE');
        expect(err.final).toBe(false);
        expect(err.message).toMatch(
          new RegExp(`^the server at 127\\.0\\.0\\.1:${port} did not answer TLS \\((connection reset|the server closed the connection|wrong version number|packet length too long)\\): is it started with --tls\\? or connect without tls:// \\(and without --tls\\)$`),
        );
      }
    } finally {
      plain.close();
      await h.cleanup();
    }
  });

  test('a certificate that verifies for the address is trusted without a question or a line in the file; one for another name is not', async () => {
    const viaCa = (address: { host: string; port: number }): tls.TLSSocket => tls.connect({ host: address.host, port: address.port, ca: ca.ca, rejectUnauthorized: false });
    await server.restart(ca.sign('good', 'IP:127.0.0.1'));
    const good = client({ openSocket: viaCa, trust: { ask: noQuestion } });
    expect((await connected(good))?.how).toBe('verified');
    expect(existsSync(file)).toBe(false);

    await server.restart(ca.sign('elsewhere', 'DNS:elsewhere.test'));
    const err = await refused(client({ openSocket: viaCa }));
    expect(err.code).toBe('TLS_UNTRUSTED');
    expect(err.message).toContain(`the server at ${here()} presented a certificate that is not for 127.0.0.1, not seen here before`);
  });

  test('a real roomcast server with TLS: registered, and a message goes round', async () => {
    const h = new Harness();
    try {
      const roomcast = await h.server({ tls: { cert: certA.cert, key: certA.key, only: false } });
      const c = client({ port: roomcast.port, trust: { fingerprint: certA.fingerprint } });
      expect(await connected(c)).toEqual({ how: 'fingerprint', fingerprint: certA.fingerprint });
      const watcher = await h.json(roomcast, 'bob');
      await c.say('hello over TLS');
      expect(await watcher.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'alice', text: 'hello over TLS' });
      await c.quit();
    } finally {
      await h.cleanup();
    }
  });
});

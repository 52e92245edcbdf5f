/**
 * TLS on the chat port, against a real server on port 0 with a certificate made by the
 * `openssl` command (as `serve --tls` makes it): inside TLS, text, JSON, HTTP and WebSocket
 * work as in clear text, beside clear-text clients; --tls-only turns clear text away with a
 * hint and redirects plain HTTP; a handshake that stalls or garbage after a TLS record header
 * is cut without costing anyone else a message.
 */
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { CertificateError, loadCertificate, selfSignedCertificate, type ServerCertificate } from '../../src/tls/certificate.js';
import { Harness, HOST, JsonClient, LineClient, until, type Ev } from '../helpers/clients.js';
import { describeWithOpenssl } from '../helpers/openssl.js';

describeWithOpenssl('TLS on the chat port', () => {
  const h = new Harness();
  let dir: string;
  let cert: ServerCertificate;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-'));
    cert = await selfSignedCertificate(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => h.cleanup());

  function secureSocket(port: number): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: HOST, port, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
  }

  async function secureJson(port: number, nick: string): Promise<JsonClient> {
    const c = h.track(new JsonClient(await secureSocket(port)));
    c.sendJson({ type: 'hello', nick });
    await c.waitEvent((e) => e.type === 'history');
    return c;
  }

  function httpsGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      https
        .get({ host: HOST, port, path: urlPath, rejectUnauthorized: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  }

  const tlsOptions = (only = false, handshakeTimeoutMs?: number) => ({ tls: { cert: cert.cert, key: cert.key, only, ...(handshakeTimeoutMs ? { handshakeTimeoutMs } : {}) } });

  test('inside TLS on the chat port, JSON, text, HTTP and WebSocket work as in clear text, beside clear-text clients; the certificate is the one made', async () => {
    const server = await h.server(tlsOptions());
    const socket = await secureSocket(server.port);
    expect(`SHA256:${socket.getPeerCertificate().fingerprint256}`).toBe(cert.fingerprint);
    socket.destroy();

    const secure = await secureJson(server.port, 'ann');
    const clear = await h.json(server, 'bob');
    secure.sendJson({ type: 'message', text: 'over TLS' });
    expect(await clear.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'ann', text: 'over TLS' });
    clear.sendJson({ type: 'message', text: 'in clear' });
    expect(await secure.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'bob', text: 'in clear' });

    // A netcat user through openssl s_client: text mode, welcomed after the greeting delay.
    const text = h.track(new LineClient(await secureSocket(server.port)));
    await text.waitLine(/^\*\*\* You joined \[lobby\]/);
    text.send('/nick cat');
    await text.waitLine('*** You are now known as cat');
    text.send('hello from text');
    expect(await secure.waitEvent((e) => e.type === 'message' && e.nick === 'cat')).toMatchObject({ text: 'hello from text' });

    const rooms = await httpsGet(server.port, '/api/rooms');
    expect(rooms.status).toBe(200);
    expect(JSON.parse(rooms.body)).toMatchObject({ rooms: [expect.objectContaining({ room: 'lobby' })] });

    const ws = new WebSocket(`wss://${HOST}:${server.port}/ws`, { rejectUnauthorized: false });
    const events: Ev[] = [];
    ws.on('message', (d: Buffer) => events.push(JSON.parse(d.toString()) as Ev));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'hello', nick: 'dan' }));
    await until(() => events.some((e) => e.type === 'history'), 3000, 'the wss welcome');
    ws.send(JSON.stringify({ type: 'message', text: 'over wss' }));
    expect(await clear.waitEvent((e) => e.type === 'message' && e.nick === 'dan')).toMatchObject({ text: 'over wss' });
    ws.close();
  });

  test('--tls-only: a clear-text chat client is told how to connect and closed, a silent one too after the greeting delay; plain HTTP is redirected to https', async () => {
    const server = await h.server(tlsOptions(true));
    const typing = await h.raw(server);
    typing.send('hello?');
    await until(() => typing.closed, 3000, 'the clear-text client to be closed');
    expect(typing.lines).toEqual([expect.stringMatching(/^roomcast: this server speaks TLS only\. Connect with: roomcast join tls:\/\/HOST:PORT, or openssl s_client/)]);
    const silent = await h.raw(server);
    await until(() => silent.closed, 3000, 'the silent clear-text client to be closed');
    expect(silent.lines[0]).toMatch(/speaks TLS only/);

    const res = await fetch(`http://${HOST}:${server.port}/api/rooms?x=1`, { redirect: 'manual' });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe(`https://${HOST}:${server.port}/api/rooms?x=1`);
    // TLS itself is served as usual.
    const secure = await secureJson(server.port, 'ann');
    expect(secure.events.find((e) => e.type === 'welcome')).toMatchObject({ nick: 'ann' });
    expect((await httpsGet(server.port, '/healthz')).status).toBe(200);
  });

  test('a TLS handshake that stalls is cut at its deadline and garbage after a TLS record header is dropped, while everyone else chats on', async () => {
    const server = await h.server({ ...tlsOptions(false, 300), maxPerAddress: 4 });
    const ann = await secureJson(server.port, 'ann');
    const bob = await h.json(server, 'bob');
    // A TLS record header, and then nothing: slowloris inside TLS.
    const stalled = await h.raw(server);
    stalled.socket.write(Buffer.from([0x16, 0x03, 0x01]));
    // A record header and then bytes that are no handshake.
    const garbage = await h.raw(server);
    garbage.socket.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), Buffer.alloc(64, 0xee)]));
    await until(() => garbage.closed, 3000, 'the garbage to be dropped');
    const started = Date.now();
    await until(() => stalled.closed, 3000, 'the stalled handshake to be cut');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(stalled.lines).toEqual([]);
    for (let i = 0; i < 20; i++) ann.sendJson({ type: 'message', text: `m${i}` });
    await bob.waitFor(() => bob.events.filter((e) => e.type === 'message').length === 20, 3000, 'every message');
    // Their places were given back: with four allowed from one address, two more connections get in.
    const more = await Promise.all([0, 1].map(() => secureJson(server.port, `c${Math.random().toString(36).slice(2, 6)}`)));
    expect(more).toHaveLength(2);
  });

  test('a TLS handshake that is still unread when the greeting delay passes (a busy server) is taken for TLS, not greeted as text', async () => {
    // A greeting delay of 1 ms: the deadline has passed by the next turn, whose timers run
    // before its poll reads the ClientHello that is already there.
    const server = await h.server({ ...tlsOptions(), connection: { greetDelay: 1 } });
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<string>((resolve) => {
          const c = tls.connect({ host: HOST, port: server.port, rejectUnauthorized: false }, () => {
            resolve('secure');
            c.destroy();
          });
          c.on('error', (err) => resolve(err.message));
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 20 }, () => 'secure'));
  });

  test('a TLS handshake to a server without TLS is closed, not taken for chat', async () => {
    const server = await h.server();
    const c = await h.raw(server);
    c.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    await until(() => c.closed, 3000, 'the TLS client to be closed');
    expect(c.lines).toEqual([]);
  });

  describe('certificates', () => {
    test('the self-signed certificate is made once and kept: the same fingerprint next time', async () => {
      const again = await selfSignedCertificate(dir);
      expect(again.fingerprint).toBe(cert.fingerprint);
      expect(again).toMatchObject({ selfSigned: true, certFile: path.join(dir, 'tls', 'cert.pem') });
      expect(cert.fingerprint).toMatch(/^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    });

    test('files that cannot serve: each a one-line error naming the file and what to do', async () => {
      const other = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-other-'));
      try {
        const second = await selfSignedCertificate(other);
        const certFile = path.join(dir, 'tls', 'cert.pem');
        const wrongKey = path.join(other, 'tls', 'key.pem');
        await expect(loadCertificate(certFile, wrongKey)).rejects.toThrow(`the key ${wrongKey} does not belong to the certificate ${certFile}`);
        await expect(loadCertificate(path.join(other, 'nope.pem'), wrongKey)).rejects.toThrow(/cannot read the TLS certificate .*nope\.pem: no such file/);
        const notPem = path.join(other, 'notes.txt');
        writeFileSync(notPem, 'hello');
        await expect(loadCertificate(notPem, wrongKey)).rejects.toThrow(CertificateError);
        await expect(loadCertificate(second.certFile, notPem)).rejects.toThrow(/is not a PEM private key/);
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    });
  });
});

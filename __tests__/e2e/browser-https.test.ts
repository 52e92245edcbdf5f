/**
 * The web page over https, in headless Chromium, with the server's self-signed certificate (the
 * one `serve --tls` makes) trusted through the browser's own flag for it
 * (--ignore-certificate-errors-spki-list: that key, and no other, is accepted). The page's
 * WebSocket follows it to wss:// on the same port, and chat flows both ways with a JSON client
 * over TLS (the server is --tls-only).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { selfSignedCertificate } from '../../src/tls/certificate.js';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness, JsonClient } from '../helpers/clients.js';
import { describeWithOpenssl } from '../helpers/openssl.js';
import { openPage, troubleOf, useBrowser } from '../helpers/web.js';

const WAIT = 30_000;
const TEST_TIMEOUT = 120_000;

describeWithOpenssl('the web page over https (Chromium trusting the self-signed certificate)', () => {
  const h = new Harness();
  let dir: string;
  let cert: { cert: Buffer; key: Buffer };
  let spki = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-https-'));
    cert = await selfSignedCertificate(dir);
    // What the flag names: the SHA-256 of the certificate's public key (its SPKI), base64.
    const key = new X509Certificate(cert.cert).publicKey.export({ type: 'spki', format: 'der' });
    spki = createHash('sha256').update(key).digest('base64');
  }, TEST_TIMEOUT);
  const { browser, contexts } = useBrowser(h, TEST_TIMEOUT, () => [`--ignore-certificate-errors-spki-list=${spki}`]);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('https page, wss WebSocket, chat both ways with a JSON client over TLS', async () => {
    const server = await h.server({ tls: { cert: cert.cert, key: cert.key, only: true }, connection: { ...CONNECTION_DEFAULTS, greetDelay: 3000 } });
    const page = await openPage(browser(), contexts, { width: 900, height: 700 });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`https://127.0.0.1:${server.port}/`);
    await page.fill('#nick-input', 'erin');
    await page.click('#login-button');
    await page.locator('#member-list .member', { hasText: 'erin' }).waitFor({ state: 'attached', timeout: WAIT });
    expect(sockets).toEqual([`wss://127.0.0.1:${server.port}/ws`]);
    // The header's lock says so, to the eye and in words.
    const lock = page.locator('#lock');
    expect(await lock.getAttribute('class')).toBe('lock secure');
    expect(await lock.getAttribute('title')).toBe('Encrypted (TLS)');
    expect(await lock.getAttribute('aria-label')).toBe('Encrypted (TLS)');
    expect(await lock.locator('.lock-closed').isVisible()).toBe(true);
    expect(await lock.locator('.lock-open').isVisible()).toBe(false);

    // Someone else over TLS (the server is --tls-only): a JSON client.
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    const ann = h.track(new JsonClient(socket));
    ann.sendJson({ type: 'hello', nick: 'ann' });
    await ann.waitEvent((e) => e.type === 'history', WAIT);
    ann.sendJson({ type: 'message', text: 'hello over wss' });
    await page.locator('.msg .text', { hasText: 'hello over wss' }).waitFor({ timeout: WAIT });
    await page.fill('#text-input', 'and back');
    await page.press('#text-input', 'Enter');
    expect(await ann.waitEvent((e) => e.type === 'message' && e.nick === 'erin', WAIT)).toMatchObject({ text: 'and back' });
    expect(troubleOf(page)).toEqual({ errors: [], console: [], failed: [] });
  }, TEST_TIMEOUT);
});

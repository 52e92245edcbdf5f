/**
 * Test clients for HTTP and WebSocket over real sockets (127.0.0.1 only): requests with the
 * path exactly as given (no client-side normalising of "../"), raw HTTP for what a polite
 * client would never send, WebSocket clients that record every event, and a parser for the
 * Prometheus text format; and the web page in headless Chromium (launch, pages that record
 * their errors, signing in). Every wait has a deadline.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import pw from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { DEFAULT_WAIT, HOST, nextEvent, type Ev, type Harness } from './clients.js';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: any;
}

export interface RequestSpec {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
}

/** One request on its own connection (no keep-alive, so nothing lingers after a test). */
export function request(port: number, spec: RequestSpec, timeoutMs = DEFAULT_WAIT): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, method: spec.method ?? 'GET', path: spec.path, headers: spec.headers, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${spec.method ?? 'GET'} ${spec.path} in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(spec.body);
  });
}

export const get = (port: number, path: string, headers?: Record<string, string>): Promise<HttpAnswer> =>
  request(port, { path, headers });

export const postJson = (port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  request(port, {
    method: 'POST',
    path,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/**
 * Writes `data` on a fresh socket and collects what comes back until the server closes, or
 * until `until` matches what has come (then the socket is closed here).
 */
export function rawExchange(
  port: number,
  data: string | Buffer,
  opts: { until?: RegExp; timeoutMs?: number; keepWriting?: Buffer } = {},
): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = net.connect({ host: HOST, port });
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => {
      done = true;
      socket.destroy();
      reject(new Error(`raw exchange timed out after ${opts.timeoutMs ?? DEFAULT_WAIT} ms; got: ${text.slice(0, 300)}`));
    }, opts.timeoutMs ?? DEFAULT_WAIT);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (opts.until?.test(text)) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** The JSON body of a raw HTTP response. */
export function rawJson(text: string): any {
  const i = text.indexOf('\r\n\r\n');
  return JSON.parse(text.slice(i + 4));
}

/** A WebSocket client that records every JSON event and how it closed. */
export class WsClient {
  readonly events: Ev[] = [];
  evCursor = 0;
  closed: { code: number; reason: string } | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.events.push(JSON.parse(data.toString('utf8')) as Ev);
      this.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => {});
  }

  static open(port: number, opts: { path?: string; origin?: string; headers?: Record<string, string> } = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${HOST}:${port}${opts.path ?? '/ws'}`, { origin: opts.origin, headers: opts.headers });
      const client = new WsClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString() })));
      });
      ws.once('error', reject);
    });
  }

  /** Opens, says hello, and waits for the welcome and the history of every room joined. */
  static async registered(port: number, nick: string, rooms?: string[]): Promise<WsClient> {
    const c = await WsClient.open(port);
    c.send({ type: 'hello', nick, ...(rooms ? { rooms } : {}) });
    const welcome = await c.waitEvent((e) => e.type === 'welcome' || e.type === 'error');
    if (welcome.type !== 'welcome') throw new Error(`hello as ${nick} refused: ${JSON.stringify(welcome)}`);
    for (const room of welcome.rooms as string[]) await c.waitEvent((e) => e.type === 'history' && e.room === room);
    return c;
  }

  send(obj: object): void {
    this.ws.send(JSON.stringify(obj));
  }

  waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = DEFAULT_WAIT, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const v = probe();
        if (v) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve(v);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const tail = this.events.slice(-6).map((e) => JSON.stringify(e).slice(0, 200));
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (closed: ${JSON.stringify(this.closed)}); last events:\n  ${tail.join('\n  ')}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  waitEvent(pred: (e: Ev) => boolean, timeoutMs = DEFAULT_WAIT, what = 'an event'): Promise<Ev> {
    return nextEvent(this, pred, timeoutMs, what);
  }

  waitClosed(timeoutMs = DEFAULT_WAIT): Promise<{ code: number; reason: string }> {
    return this.waitFor(() => this.closed, timeoutMs, 'the WebSocket to close');
  }

  close(): void {
    this.ws.terminate();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Prometheus text format: "name{labels}" -> value, every sample line; throws on a bad line. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    // As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case.
    const v = m[2].toLowerCase();
    const value = v === 'nan' ? NaN : v === '+inf' || v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(m[2]);
    if (Number.isNaN(value) && v !== 'nan') throw new Error(`bad value in: ${line}`);
    out.set(m[1], value);
  }
  return out;
}

export async function metrics(port: number): Promise<Map<string, number>> {
  const r = await get(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parseMetrics(r.text);
}

// ---- the web page in a real browser --------------------------------------------------------

/** Debian's chromium package, never a downloaded browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium for the page tests; launch() gives it a fresh temporary profile, removed on
 * close. Smooth scrolling is off so a wheel turn moves the view at once, as a test can wait for.
 */
/** `extraArgs`: more of Chromium's flags (a certificate to trust, say). */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the browser tests need Debian's chromium package. ` +
        'Install it with: apt-get update && apt-get install -y chromium (CI does this in .ci/run).',
    );
  return pw.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-smooth-scrolling',
      ...extraArgs,
    ],
  });
}

/** What went wrong on a page: uncaught errors, console errors, and answers of 400 and up. */
export interface PageTrouble {
  errors: string[];
  console: string[];
  failed: string[];
}

const trouble = new WeakMap<Page, PageTrouble>();

export function troubleOf(page: Page): PageTrouble {
  const t = trouble.get(page);
  if (!t) throw new Error('troubleOf: the page was not opened with openPage()');
  return t;
}

/** Where the browser tests put their screenshots (gitignored). */
export const ARTIFACTS = 'artifacts';

/**
 * One Chromium for a test file, a context per page (closed after each test, with the harness's
 * servers), and the screenshot folder made. Call at the top level of the file (or of a
 * describe). `extraArgs`: more Chromium flags, asked for when the browser starts (after the
 * file's own earlier beforeAll, which may make what they name).
 */
export function useBrowser(h: Harness, timeoutMs = 120_000, extraArgs: () => string[] = () => []): { browser(): Browser; contexts: BrowserContext[] } {
  let browser: Browser | null = null;
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    browser = await launchChromium(extraArgs());
  }, timeoutMs);
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await h.cleanup();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return { browser: () => browser!, contexts };
}

/** A new page in a context of its own (own storage); records its trouble (troubleOf). */
export async function openPage(
  browser: Browser,
  contexts: BrowserContext[],
  viewport: { width: number; height: number },
  mobile = false,
): Promise<Page> {
  const context = await browser.newContext({
    viewport,
    ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  contexts.push(context);
  const page = await context.newPage();
  const t: PageTrouble = { errors: [], console: [], failed: [] };
  trouble.set(page, t);
  page.on('pageerror', (err) => t.errors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') t.console.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400) t.failed.push(`${r.status()} ${r.url()}`);
  });
  return page;
}

/** Opens the page, fills in the login form and waits until it is online in the room. */
export async function signIn(page: Page, port: number, nick: string, room = 'lobby', timeoutMs = 30_000): Promise<void> {
  await page.goto(`http://${HOST}:${port}/`);
  await page.fill('#nick-input', nick);
  await page.fill('#room-input', room);
  await page.click('#login-button');
  try {
    await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: timeoutMs });
    await page.locator('#member-list .member', { hasText: nick }).waitFor({ state: 'attached', timeout: timeoutMs });
  } catch (err) {
    const status = await page.locator('#status').textContent();
    const error = await page.locator('#login-error').textContent();
    throw new Error(`${nick} did not get online: status "${status}", login error "${error}", ${JSON.stringify(troubleOf(page))}: ${String(err)}`);
  }
}

/**
 * Waits, in the page, until the JavaScript expression `expr` is true (checked every frame).
 * page.waitForFunction would evaluate it with eval(), which the page's CSP refuses.
 */
export async function untilInPage(page: Page, expr: string, timeoutMs = 30_000, what = expr): Promise<void> {
  await page.evaluate(`new Promise((resolve, reject) => {
    const ok = () => { try { return !!(${expr}); } catch { return false; } };
    const t0 = performance.now();
    const tick = () => {
      if (ok()) resolve(true);
      else if (performance.now() - t0 > ${timeoutMs}) reject(new Error('timed out after ${timeoutMs} ms waiting for ' + ${JSON.stringify(what)}));
      else requestAnimationFrame(tick);
    };
    tick();
  })`);
}

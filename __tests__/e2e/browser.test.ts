/**
 * The web page in a real browser: headless Chromium (Debian's `chromium` package, never a
 * downloaded one) driven by playwright-core, against an in-process server with the real
 * classifier. Two pages and a netcat-style TCP client chat in one room; one page posts a photo
 * with the file picker and both pages show the bot's labels under it; a page whose connection
 * drops reconnects by itself and fills the gap from history without duplicates.
 *
 * Screenshots (desktop and phone-sized) go to artifacts/ (gitignored).
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { RoomcastServer } from '../../src/server.js';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness, type LineClient } from '../helpers/clients.js';
import { KIT, LABELS, MODEL, testWithKit } from '../helpers/classifier.js';
import { BLUE, solid } from '../helpers/tiny-model.js';
import { useBrowser } from '../helpers/web.js';

const ARTIFACTS = path.resolve('artifacts');
const PELICAN = path.join(KIT, 'photos/pelican.jpeg');
const WAIT = 30_000;

const TEST_TIMEOUT = 120_000;

const h = new Harness();
/**
 * A browser may open a socket ahead of need and stay silent on it; one that stays silent past
 * the greet delay has become a text-mode chat connection (docs/protocol.md, "One port"). The
 * harness's 30 ms would make that likely; this is the margin a real server's 150 ms aims at.
 */
const connection = { ...CONNECTION_DEFAULTS, greetDelay: 3000 };
const { browser, contexts } = useBrowser(h, TEST_TIMEOUT);

async function openPage(viewport: { width: number; height: number }, mobile = false): Promise<Page> {
  const context = await browser().newContext({
    viewport,
    ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  contexts.push(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (m) => {
    // A refused inline script or style would show up here as a CSP violation.
    if (m.type() === 'error' && !/WebSocket|ERR_CONNECTION|Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  (page as Page & { problems: string[] }).problems = problems;
  return page;
}

function problemsOf(page: Page): string[] {
  return (page as Page & { problems: string[] }).problems;
}

/** A raw TCP client in text mode (what `nc HOST PORT` is): its first line makes it chat. */
async function netcat(server: RoomcastServer, nick: string): Promise<LineClient> {
  const c = await h.raw(server);
  c.send(`/nick ${nick}`);
  await c.waitLine(`*** You are now known as ${nick}`);
  return c;
}

async function signIn(page: Page, server: RoomcastServer, nick: string, room = 'lobby'): Promise<void> {
  await page.goto(`http://127.0.0.1:${server.port}/`);
  await page.fill('#nick-input', nick);
  await page.fill('#room-input', room);
  await page.click('#login-button');
  try {
    await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: WAIT });
  } catch (err) {
    const status = await page.locator('#status').textContent();
    const error = await page.locator('#login-error').textContent();
    throw new Error(`${nick} did not get online: status "${status}", login error "${error}", ${problemsOf(page).join('; ')}: ${String(err)}`);
  }
  // (attached: on a phone the member list is in the slide-out sidebar)
  await page.locator('#member-list .member', { hasText: nick }).waitFor({ state: 'attached', timeout: WAIT });
}

/** The texts of the chat messages (not notices) in the current room, in page order. */
function messageTexts(page: Page): Promise<string[]> {
  return page.$$eval('.pane:not([hidden]) .msg:not(.notice) .text', (els) => els.map((e) => e.textContent ?? ''));
}

testWithKit('two browser pages and a netcat user chat; a posted photo shows inline with the labels on both pages', async () => {
  const server = await h.server({ connection, classifier: { pool: { model: MODEL, labels: LABELS, size: 1 } } });
  const carol = await netcat(server, 'carol');

  const alice = await openPage({ width: 1100, height: 760 });
  const bob = await openPage({ width: 390, height: 844 }, true);
  await signIn(alice, server, 'alice');
  await signIn(bob, server, 'bob');

  // Members: everyone sees everyone (bob's list is in the phone's slide-out sidebar).
  await alice.locator('#member-list .member', { hasText: 'bob' }).waitFor({ timeout: WAIT });
  for (const n of ['alice', 'bob', 'carol']) await bob.locator('#member-list .member', { hasText: n }).waitFor({ state: 'attached', timeout: WAIT });

  // netcat -> both pages.
  carol.send('hello from netcat');
  for (const p of [alice, bob]) await p.locator('.msg .text', { hasText: 'hello from netcat' }).waitFor({ timeout: WAIT });

  // A page -> the other page and netcat. Markup from a user stays text.
  const tricky = 'hi from alice <b>bold</b> <img src=x onerror=alert(1)>';
  await alice.fill('#text-input', tricky);
  await alice.press('#text-input', 'Enter');
  await carol.waitLine(`[lobby] alice: ${tricky}`);
  await bob.locator('.msg .text', { hasText: 'hi from alice' }).waitFor({ timeout: WAIT });
  expect(await messageTexts(bob)).toContain(tricky);
  expect(await messageTexts(alice)).toContain(tricky); // the sender sees it too (from its ack)
  expect(await bob.locator('.messages b').count()).toBe(0);
  expect(await bob.locator('.messages img:not(.image)').count()).toBe(0);

  await bob.fill('#text-input', 'nice, send a bird');
  await bob.press('#text-input', 'Enter');
  await carol.waitLine('[lobby] bob: nice, send a bird');
  await alice.locator('.msg .text', { hasText: 'nice, send a bird' }).waitFor({ timeout: WAIT });
  await bob.locator('.msg .nick.me', { hasText: 'bob' }).waitFor({ timeout: WAIT }); // own nick shown on a phone too

  // The photo, by file picker on alice's page.
  await alice.setInputFiles('#file-input', PELICAN);
  for (const p of [alice, bob]) {
    const post = p.locator('.msg.post', { hasText: 'pelican.jpeg' });
    await post.waitFor({ timeout: WAIT });
    // The labels land under the picture they belong to, top label first.
    await post.locator('.labels .label-name').first().waitFor({ timeout: WAIT });
    expect(await post.locator('.labels .label-name').first().textContent()).toBe('pelican');
    // The model is not certain (0.999) and ranked the others above zero: no "100%", no "0.0%".
    expect(await post.locator('.labels .score').allTextContents()).toEqual(['99.9%', '<0.1%', '<0.1%']);
    // (Functions run in the page are strings here: the tests are compiled without the DOM lib.)
    const bar = (await post.locator('.label .fill').first().boundingBox())?.width ?? 0;
    expect(bar).toBeGreaterThan(0);
    // The picture itself, from GET /api/images/{id}.
    await p.waitForFunction(
      `(() => { const img = document.querySelector('.msg.post img.image'); return !!img && img.complete && img.naturalWidth > 0; })()`,
      undefined,
      { timeout: WAIT },
    );
  }
  await carol.waitLine(/pelican/);

  await alice.screenshot({ path: path.join(ARTIFACTS, 'browser-desktop.png') });
  await bob.screenshot({ path: path.join(ARTIFACTS, 'browser-phone.png') });
  await bob.click('#menu-btn');
  await bob.waitForTimeout(300); // the sidebar slides in
  await bob.screenshot({ path: path.join(ARTIFACTS, 'browser-phone-sidebar.png') });

  expect(problemsOf(alice)).toEqual([]);
  expect(problemsOf(bob)).toEqual([]);
}, TEST_TIMEOUT);

test('a page whose connection drops reconnects by itself and fills the gap from history, without duplicates', async () => {
  const server = await h.server({ connection });
  const carol = await netcat(server, 'carol');
  const page = await openPage({ width: 900, height: 700 });
  await signIn(page, server, 'dora');
  carol.send('before the blip');
  await page.locator('.msg .text', { hasText: 'before the blip' }).waitFor({ timeout: WAIT });

  // The network blips: the server's side of the page's socket is cut without a word.
  const [ws] = [...server.wsConnections];
  (ws as unknown as { socket: { destroy(): void } }).socket.destroy();
  carol.send('during the blip 1');
  carol.send('during the blip 2');

  await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: WAIT });
  await page.locator('.msg .text', { hasText: 'during the blip 2' }).waitFor({ timeout: WAIT });
  carol.send('after the blip');
  await page.locator('.msg .text', { hasText: 'after the blip' }).waitFor({ timeout: WAIT });

  expect(await messageTexts(page)).toEqual(['before the blip', 'during the blip 1', 'during the blip 2', 'after the blip']);
  expect(problemsOf(page)).toEqual([]);
}, TEST_TIMEOUT);

test('a page comes back after the server restarts (seqs start again at 1) and shows what is new', async () => {
  const first = await h.server({ connection });
  const port = first.port;
  const carol = await netcat(first, 'carol');
  const page = await openPage({ width: 900, height: 700 });
  await signIn(page, first, 'erin');
  carol.send('first life 1');
  carol.send('first life 2');
  await page.locator('.msg .text', { hasText: 'first life 2' }).waitFor({ timeout: WAIT });

  await first.stop();
  await page.locator('#status', { hasText: /offline|connecting/ }).waitFor({ timeout: WAIT });
  const second = new RoomcastServer({ hosts: ['127.0.0.1'], port, connection });
  try {
    await second.start();
    await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: WAIT });
    await page.locator('#member-list .member', { hasText: 'erin' }).waitFor({ timeout: WAIT });
    const dave = await netcat(second, 'dave');
    dave.send('second life');
    await page.locator('.msg .text', { hasText: 'second life' }).waitFor({ timeout: WAIT });
    expect(await messageTexts(page)).toEqual(['first life 1', 'first life 2', 'second life']);
    expect(await page.locator('.msg.divider').count()).toBe(1);
    // Told by the welcome's history id (a memory store's is its process's), not guessed.
    expect(await page.locator('.msg.divider').textContent()).toContain('without its history');
    expect(problemsOf(page)).toEqual([]);
  } finally {
    await contexts.splice(0).reduce((p, c) => p.then(() => c.close()), Promise.resolve());
    await second.stop();
  }
}, TEST_TIMEOUT);

test('an image can be posted by dropping it on the chat or by pasting it', async () => {
  const server = await h.server({ connection });
  const carol = await netcat(server, 'carol');
  const page = await openPage({ width: 900, height: 700 });
  await signIn(page, server, 'fern');
  const b64 = (await solid(BLUE, { format: 'jpeg' })).toString('base64');
  // Synthetic drop and paste events carrying a real File (as the browser builds them).
  const fire = (kind: 'drop' | 'paste', name: string) =>
    page.evaluate(`(() => {
      const bytes = Uint8Array.from(atob(${JSON.stringify(b64)}), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], ${JSON.stringify(name)}, { type: 'image/jpeg' }));
      if (${JSON.stringify(kind)} === 'drop') {
        const chat = document.getElementById('chat');
        chat.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
        chat.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      } else {
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }
    })()`);
  await fire('drop', 'dropped.jpeg');
  await page.locator('.msg.post', { hasText: 'dropped.jpeg' }).waitFor({ timeout: WAIT });
  await carol.waitLine(/dropped\.jpeg/);
  await fire('paste', 'pasted.jpeg');
  await page.locator('.msg.post', { hasText: 'pasted.jpeg' }).waitFor({ timeout: WAIT });
  await carol.waitLine(/pasted\.jpeg/);
  expect(await page.locator('#drop-hint').isHidden()).toBe(true);
  expect(problemsOf(page)).toEqual([]);
}, TEST_TIMEOUT);

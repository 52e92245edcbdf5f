/**
 * The web page's login form, in headless Chromium (see browser.test.ts): what it refuses is
 * said on the form, in words for a form (no chat commands), however many tries it takes; its
 * fields take as much as the server does; the page loads without a single failed request
 * (the favicon included). Screenshots go to artifacts/ (gitignored).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { NICK_MAX, ROOM_MAX } from '../../src/protocol/text.js';
import type { RoomcastServer } from '../../src/server.js';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness, JsonClient } from '../helpers/clients.js';
import { bmp } from '../helpers/image-bytes.js';
import { imageFrame } from '../helpers/images.js';
import { get, openPage, useBrowser, signIn, troubleOf } from '../helpers/web.js';

const ARTIFACTS = path.resolve('artifacts');
const WAIT = 30_000;
const TEST_TIMEOUT = 120_000;

const h = new Harness();
/** As in browser.test.ts: a browser's silent pre-opened sockets must not become chat users. */
const connection = { ...CONNECTION_DEFAULTS, greetDelay: 3000 };
const { browser, contexts } = useBrowser(h, TEST_TIMEOUT);

async function submit(page: Page, nick: string, room: string): Promise<void> {
  await page.fill('#nick-input', nick);
  await page.fill('#room-input', room);
  await page.click('#login-button');
}

/**
 * Waits for the answer to a try of the form: an error on the form that matches `re`, or an
 * error line in the chat (where it must not go), whichever shows first.
 */
async function refusal(page: Page, re: RegExp): Promise<void> {
  await page.locator('#login-error', { hasText: re }).or(page.locator('.msg.notice.error')).first().waitFor({ timeout: WAIT });
}

async function formState(page: Page): Promise<{ form: boolean; app: boolean; error: string; rooms: string[]; chatErrors: string[] }> {
  return {
    form: await page.locator('#login').isVisible(),
    app: await page.locator('#app').isVisible(),
    error: (await page.locator('#login-error').textContent()) ?? '',
    rooms: await page.locator('#room-list .room-name').allTextContents(),
    chatErrors: await page.locator('.msg.notice.error').allTextContents(),
  };
}

/** Who is in `room` now, as the server says to a client in it. */
async function membersOf(c: JsonClient, room: string): Promise<string[]> {
  const id = `who-${Date.now()}`;
  c.sendJson({ type: 'who', room, id });
  const who = await c.waitFor(() => c.events.find((e) => e.id === id), WAIT, `the answer to who ${room}`);
  return who.members as string[];
}

test('after a taken nick, a bad room is refused on the form (not in #lobby), and the next try gets in', async () => {
  const server = await h.server({ connection });
  const alice = await h.json(server, 'alice', ['lobby']);
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await page.goto(`http://127.0.0.1:${server.port}/`);

  await submit(page, 'alice', 'lobby');
  await refusal(page, /alice/);
  let s = await formState(page);
  expect(s.form).toBe(true);
  expect(s.app).toBe(false);
  // The form's own words: the server's ("Pick another with /nick NAME") are for chat users.
  expect(s.error).toBe('Someone is already called "alice" here. Pick another nick.');

  await submit(page, 'alice2', 'no room!');
  await refusal(page, /room/);
  s = await formState(page);
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-bad-room.png') });
  expect(s).toEqual({
    form: true,
    app: false,
    error: '"no room!" is not a valid room name: use 1-32 letters, digits, "_", "-" or ".".',
    rooms: [],
    chatErrors: [],
  });

  await submit(page, 'alice2', 'lab');
  await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: WAIT });
  await page.locator('#member-list .member', { hasText: 'alice2' }).waitFor({ timeout: WAIT });
  s = await formState(page);
  expect(s.form).toBe(false);
  expect(s.app).toBe(true);
  expect(s.rooms).toEqual(['#lab']); // the first try's #lobby is not joined behind the user's back
  expect(await page.locator('#room-title').textContent()).toBe('#lab');
  expect(await membersOf(alice, 'lobby')).toEqual(['alice']);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('after a refused room, a taken or reserved nick is refused on the form too', async () => {
  const server = await h.server({ connection });
  await h.json(server, 'alice', ['lobby']);
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await page.goto(`http://127.0.0.1:${server.port}/`);

  await submit(page, 'bob', 'no room!');
  await refusal(page, /room/);
  expect((await formState(page)).form).toBe(true);

  // Registered now (as bob), so the page asks for the new nick on the open connection.
  await submit(page, 'alice', 'lab');
  await refusal(page, /alice/);
  let s = await formState(page);
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-taken-nick.png') });
  expect(s.form).toBe(true);
  expect(s.app).toBe(false);
  expect(s.error).toBe('Someone is already called "alice" here. Pick another nick.');
  expect(s.chatErrors).toEqual([]);

  await submit(page, 'classifier', 'lab');
  await refusal(page, /classifier/);
  s = await formState(page);
  expect(s.form).toBe(true);
  expect(s.error).toBe('"classifier" is kept for the server\'s own use. Pick another nick.');

  await submit(page, 'bob2', 'lab');
  await page.locator('#me', { hasText: 'bob2' }).waitFor({ timeout: WAIT });
  await page.locator('#member-list .member', { hasText: 'bob2' }).waitFor({ timeout: WAIT });
  s = await formState(page);
  expect(s.form).toBe(false);
  expect(s.app).toBe(true);
  expect(s.rooms).toEqual(['#lab']);
  expect(s.chatErrors).toEqual([]);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('a room typed with a "#" and capitals is the room the server has, listed once', async () => {
  const server = await h.server({ connection });
  const carol = await h.json(server, 'carol', ['lab']);
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await signIn(page, server.port, 'erin', '#Lab');
  await page.locator('#member-list .member', { hasText: 'carol' }).waitFor({ timeout: WAIT });
  expect(await page.locator('#room-list .room-name').allTextContents()).toEqual(['#lab']);
  expect(await page.locator('#room-title').textContent()).toBe('#lab');

  // The same from the sidebar's join box: the room already there is selected, not added twice.
  await page.fill('#join-input', 'LAB');
  await page.press('#join-input', 'Enter');
  carol.sendJson({ type: 'message', room: 'lab', text: 'still one room' });
  await page.locator('.msg .text', { hasText: 'still one room' }).waitFor({ timeout: WAIT });
  expect(await page.locator('#room-list .room-name').allTextContents()).toEqual(['#lab']);
  expect(await page.locator('.pane').count()).toBe(1);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test("the form's fields take as many characters as the server allows", async () => {
  const server = await h.server({ connection });
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await page.goto(`http://127.0.0.1:${server.port}/`);
  const max = (sel: string) => page.locator(sel).getAttribute('maxlength');
  expect(await max('#nick-input')).toBe(String(NICK_MAX));
  expect(await max('#room-input')).toBe(String(ROOM_MAX));
  expect(await max('#join-input')).toBe(String(ROOM_MAX));

  // The longest names the server takes get in, whole.
  const nick = 'n'.repeat(NICK_MAX);
  const room = 'r'.repeat(ROOM_MAX);
  await page.locator('#nick-input').pressSequentially(nick + 'xyz');
  await page.locator('#room-input').fill('');
  await page.locator('#room-input').pressSequentially(room + 'xyz');
  expect(await page.locator('#nick-input').inputValue()).toBe(nick);
  expect(await page.locator('#room-input').inputValue()).toBe(room);
  await page.click('#login-button');
  await page.locator('#member-list .member', { hasText: nick }).waitFor({ timeout: WAIT });
  expect(await page.locator('#room-title').textContent()).toBe(`#${room}`);
}, TEST_TIMEOUT);

interface Answer {
  url: string;
  status: number;
  type: string;
}

/** Every request the server's web side answers (URL, status, type), and a wait for one. */
function answers(server: RoomcastServer): { seen: Answer[]; first(re: RegExp): Promise<Answer> } {
  const seen: Answer[] = [];
  const waiters = new Set<() => void>();
  server.web.http.on('request', (req: IncomingMessage, res: ServerResponse) =>
    res.once('finish', () => {
      seen.push({ url: req.url ?? '', status: res.statusCode, type: String(res.getHeader('content-type') ?? '') });
      for (const w of [...waiters]) w();
    }),
  );
  const first = (re: RegExp): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const a = seen.find((s) => re.test(s.url));
        if (!a) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(a);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no request for ${re} answered in ${WAIT} ms; answered: ${JSON.stringify(seen)}`));
      }, WAIT);
      waiters.add(check);
      check();
    });
  return { seen, first };
}

test('the page loads without a failed request: the favicon is an SVG the server serves', async () => {
  const server = await h.server({ connection });
  const web = answers(server);
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await signIn(page, server.port, 'dora');
  // The browser asks for the icon by itself, after the page: wait until it has been answered.
  const icon = await web.first(/favicon/);
  expect(icon).toEqual({ url: '/favicon.svg', status: 200, type: 'image/svg+xml' });
  expect(web.seen.filter((s) => s.status >= 400)).toEqual([]);
  const t = troubleOf(page);
  expect(t).toEqual({ errors: [], console: [], failed: [] });

  const svg = await get(server.port, '/favicon.svg');
  expect(svg.status).toBe(200);
  expect(svg.text).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
}, TEST_TIMEOUT);

test('a server with a password: the form asks for it, a wrong one is refused on the form, the right one gets in and images still show', async () => {
  const server = await h.server({ connection, hub: { serverPassword: 'open sesame' } });
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await page.goto(`http://127.0.0.1:${server.port}/`);
  expect(await page.locator('#password-input').isVisible()).toBe(false);
  await submit(page, 'erin', 'lobby');
  await refusal(page, /needs a password/);
  expect(await page.locator('#password-input').isVisible()).toBe(true);
  expect(await page.locator('#login-error').textContent()).toBe('This server needs a password: ask whoever runs it.');
  await page.fill('#password-input', 'wrong');
  await page.click('#login-button');
  await refusal(page, /not the server password/);
  expect((await formState(page)).app).toBe(false);
  await page.fill('#password-input', 'open sesame');
  await page.click('#login-button');
  await page.locator('#member-list .member', { hasText: 'erin' }).waitFor({ state: 'attached', timeout: WAIT });
  // An image someone posts: the page fetches it with the password (an <img src> could not send it).
  const ann = h.track(await JsonClient.open(server.port, { nick: 'ann', serverPassword: 'open sesame' }));
  await ann.waitEvent((e) => e.type === 'history');
  ann.write(imageFrame({ name: 'red.bmp', id: 'i' }, bmp(8, 8)));
  const img = page.locator('img.image');
  await img.waitFor({ timeout: WAIT });
  await page.waitForFunction('document.querySelector("img.image")?.naturalWidth === 8', undefined, { timeout: WAIT });
  expect(await img.getAttribute('src')).toMatch(/^blob:/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-password.png') });
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

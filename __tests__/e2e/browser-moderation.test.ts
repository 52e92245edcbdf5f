/**
 * Accounts and operators on the web page, in headless Chromium against a real server on port 0
 * (see browser-login.test.ts): the form logs in to a registered nick with its password (and
 * says why not, on the form), registers a nick, and its reconnects log in again; the first
 * member of a new room gets a menu on the other members (kick, mute, ban) that nobody else
 * sees, and what operators do shows in the room; a page put out of a room is told so and does
 * not go back by itself; a room with a key asks for it (in the join box, and on the form).
 * Over http the header shows no lock (the https one is in browser-https.test.ts).
 * Troublemakers come from 127.0.0.2, so that a ban on their address leaves the pages
 * (127.0.0.1) alone. Screenshots go to artifacts/.
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { RoomcastServer } from '../../src/server.js';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness, JsonClient, type Ev } from '../helpers/clients.js';
import { openPage, signIn, troubleOf, untilInPage, useBrowser } from '../helpers/web.js';

const ARTIFACTS = path.resolve('artifacts');
const WAIT = 30_000;
const TEST_TIMEOUT = 120_000;
const OTHER = '127.0.0.2';

const h = new Harness();
/** As in browser.test.ts: a browser's silent pre-opened sockets must not become chat users. */
const connection = { ...CONNECTION_DEFAULTS, greetDelay: 3000 };
const { browser, contexts } = useBrowser(h, TEST_TIMEOUT);

let asks = 0;

/** The answer to a request: the event that carries its id (an error included). */
function answer(c: JsonClient, id: string): Promise<Ev> {
  return c.waitFor(() => c.events.find((e) => e.id === id), WAIT, `the answer to ${id}`);
}

async function who(c: JsonClient, room: string): Promise<Ev> {
  const id = `who-${++asks}`;
  c.sendJson({ type: 'who', room, id });
  return answer(c, id);
}

/** A JSON client in `rooms`, from `localAddress`, once the server has let it in. */
async function member(server: RoomcastServer, nick: string, rooms: string[], localAddress = '127.0.0.1'): Promise<JsonClient> {
  const c = h.track(await JsonClient.open(server.port, { nick, rooms }, { localAddress }));
  const welcome = await c.waitEvent((e) => e.type === 'welcome' || e.type === 'error', WAIT);
  if (welcome.type !== 'welcome') throw new Error(`hello as ${nick} refused: ${JSON.stringify(welcome)}`);
  for (const room of rooms) await c.waitEvent((e) => e.type === 'joined' && e.self && e.room === room, WAIT);
  return c;
}

/** Registers `nick` as a program would, then goes, leaving the nick free for the page. */
async function registerAccount(server: RoomcastServer, nick: string, password: string): Promise<void> {
  const c = h.track(await JsonClient.open(server.port, null));
  c.sendJson({ type: 'hello', nick });
  await c.waitEvent((e) => e.type === 'welcome', WAIT);
  c.sendJson({ type: 'register', password, id: 'reg' });
  expect(await answer(c, 'reg')).toMatchObject({ type: 'notice' });
  c.sendJson({ type: 'quit' });
  await c.waitClosed(WAIT);
}

async function submit(page: Page, fields: { nick: string; room: string; password?: string; register?: boolean }): Promise<void> {
  await page.fill('#nick-input', fields.nick);
  await page.fill('#room-input', fields.room);
  await page.fill('#account-input', fields.password ?? '');
  await page.setChecked('#register-check', fields.register ?? false);
  await page.click('#login-button');
}

/** A refusal on the form (or, where it must not go, an error line in the chat). */
async function refusal(page: Page, re: RegExp): Promise<string> {
  await page.locator('#login-error', { hasText: re }).or(page.locator('.msg.notice.error')).first().waitFor({ timeout: WAIT });
  return (await page.locator('#login-error').textContent()) ?? '';
}

const focused = (page: Page): Promise<string> => page.evaluate('document.activeElement?.id ?? ""') as Promise<string>;

/** Cuts the server's side of the page's WebSocket without a word, as a network blip would. */
function blip(server: RoomcastServer): void {
  const [ws] = [...server.wsConnections];
  (ws as unknown as { socket: { destroy(): void } }).socket.destroy();
}

const memberItem = (page: Page, nick: string) => page.locator(`#member-list .member[data-nick="${nick}"]`);

/** Opens the operator menu on `nick` and clicks one of its actions. */
async function act(page: Page, nick: string, action: RegExp): Promise<void> {
  const item = memberItem(page, nick);
  await item.locator('.member-menu-btn').click();
  await item.locator('.member-action', { hasText: action }).click();
}

test('the form logs in to a registered nick with its password, says on the form why not, and its reconnects log in again', async () => {
  const server = await h.server({ connection });
  await registerAccount(server, 'teacher', 'correct horse');
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await page.goto(`http://127.0.0.1:${server.port}/`);

  // No password: the form says the nick is registered and puts the cursor in the password field.
  await submit(page, { nick: 'teacher', room: 'lobby' });
  expect(await refusal(page, /registered/)).toBe('"teacher" is a registered nick: type its password to log in, or pick another nick.');
  expect(await focused(page)).toBe('account-input');
  expect(await page.locator('#app').isVisible()).toBe(false);
  await page.screenshot({ path: path.join(ARTIFACTS, 'moderation-nick-registered.png') });

  await submit(page, { nick: 'teacher', room: 'lobby', password: 'wrong horse' });
  expect(await refusal(page, /Wrong/)).toBe('Wrong nick or password. Try again; after a few wrong tries, each one makes you wait longer.');
  expect(await focused(page)).toBe('account-input');
  expect(await page.locator('#app').isVisible()).toBe(false);

  await submit(page, { nick: 'teacher', room: 'lobby', password: 'correct horse' });
  await page.locator('#member-list .member.logged-in', { hasText: 'teacher' }).waitFor({ timeout: WAIT });
  expect(await page.locator('.msg.notice.error').count()).toBe(0);

  // Over http the header says the connection is not encrypted (in words, for screen readers too).
  const lock = page.locator('#lock');
  expect(await lock.getAttribute('class')).toBe('lock insecure');
  expect(await lock.getAttribute('title')).toMatch(/^Not encrypted/);
  expect(await lock.getAttribute('aria-label')).toMatch(/^Not encrypted/);
  expect(await lock.locator('.lock-open').isVisible()).toBe(true);
  expect(await lock.locator('.lock-closed').isVisible()).toBe(false);

  const pupil = await member(server, 'pupil', ['lobby']);
  expect(await who(pupil, 'lobby')).toMatchObject({ members: ['pupil', 'teacher'], loggedIn: ['teacher'] });
  await memberItem(page, 'pupil').waitFor({ timeout: WAIT });
  expect(await memberItem(page, 'pupil').getAttribute('class')).not.toMatch(/logged-in/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'moderation-logged-in.png') });

  // A blip: the page comes back on its own, logged in again with the password kept for the tab.
  pupil.evCursor = pupil.events.length;
  blip(server);
  await pupil.waitEvent((e) => e.type === 'joined' && e.nick === 'teacher', WAIT, 'teacher back in the lobby');
  expect(await who(pupil, 'lobby')).toMatchObject({ members: ['pupil', 'teacher'], loggedIn: ['teacher'] });
  await page.locator('#member-list .member.logged-in', { hasText: 'teacher' }).waitFor({ timeout: WAIT });
  expect(await page.locator('#login').isVisible()).toBe(false);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('"register" on the form: a weak password is refused on the form, a good one registers the nick, and reconnects log in to it', async () => {
  const server = await h.server({ connection });
  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await page.goto(`http://127.0.0.1:${server.port}/`);

  await submit(page, { nick: 'maker', room: 'lobby', password: 'short', register: true });
  expect(await refusal(page, /too short/)).toMatch(/^That password is too short: use at least \d+ characters/);
  expect(await focused(page)).toBe('account-input');
  expect(await page.locator('#app').isVisible()).toBe(false);

  await submit(page, { nick: 'maker', room: 'lobby', password: 'a long enough password', register: true });
  await page.locator('.msg.notice', { hasText: 'Registered maker' }).waitFor({ timeout: WAIT });
  await page.locator('#member-list .member.logged-in', { hasText: 'maker' }).waitFor({ timeout: WAIT });
  expect(await page.locator('#login').isVisible()).toBe(false);

  const other = await member(server, 'other', ['lobby']);
  expect(await who(other, 'lobby')).toMatchObject({ loggedIn: ['maker'] });
  // The nick is an account now: nobody else gets it without the password.
  const thief = h.track(await JsonClient.open(server.port, { nick: 'maker2' }));
  await thief.waitEvent((e) => e.type === 'welcome', WAIT);
  thief.sendJson({ type: 'login', nick: 'maker', password: 'not the password', id: 'l' });
  expect(await answer(thief, 'l')).toMatchObject({ type: 'error', code: 'LOGIN_FAILED' });

  other.evCursor = other.events.length;
  blip(server);
  await other.waitEvent((e) => e.type === 'joined' && e.nick === 'maker', WAIT, 'maker back in the lobby');
  expect(await who(other, 'lobby')).toMatchObject({ loggedIn: ['maker'] });
  expect(await page.locator('#login').isVisible()).toBe(false);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('the operator of a new room gets a menu on the other members (kick, mute, ban); a member who is not one sees none', async () => {
  const server = await h.server({ connection });
  const alice = await openPage(browser(), contexts, { width: 1000, height: 700 });
  await signIn(alice, server.port, 'alice', 'studio');
  // First in a new room: its operator, "@" in the list.
  await alice.locator('#member-list .member.op', { hasText: 'alice' }).waitFor({ timeout: WAIT });
  expect(await alice.locator('#member-list .member.op .member-name').first().textContent()).toMatch(/^@alice/);

  const bob = await member(server, 'bob', ['studio'], OTHER);
  const carol = await openPage(browser(), contexts, { width: 1000, height: 700 });
  await signIn(carol, server.port, 'carol', 'studio');
  await memberItem(carol, 'bob').waitFor({ timeout: WAIT });
  await memberItem(alice, 'carol').waitFor({ timeout: WAIT });

  // The operator's menu is on the others, not on herself; carol (no operator) has none at all.
  expect(await memberItem(alice, 'bob').locator('.member-menu-btn').count()).toBe(1);
  expect(await memberItem(alice, 'carol').locator('.member-menu-btn').count()).toBe(1);
  expect(await memberItem(alice, 'alice').locator('.member-menu-btn').count()).toBe(0);
  expect(await carol.locator('.member-menu-btn').count()).toBe(0);
  expect(await carol.locator('#member-list .member.op').allTextContents()).toEqual([expect.stringMatching(/^@alice/)]);
  expect(await memberItem(alice, 'bob').locator('.member-menu-btn').getAttribute('aria-label')).toBe('Operator actions for bob');

  // Mute for 10 minutes.
  await act(alice, 'bob', /^Mute/);
  const mute = await bob.waitEvent((e) => e.type === 'moderation', WAIT, 'the mute');
  expect(mute).toMatchObject({ action: 'mute', by: 'alice', target: 'bob', room: 'studio' });
  expect(mute.until - Date.now()).toBeGreaterThan(9 * 60_000);
  expect(mute.until - Date.now()).toBeLessThanOrEqual(10 * 60_000);
  await alice.locator('.msg.notice.moderation', { hasText: 'You muted bob for 10 min' }).waitFor({ timeout: WAIT });
  await carol.locator('.msg.notice.moderation', { hasText: 'alice muted bob for 10 min' }).waitFor({ timeout: WAIT });
  await alice.screenshot({ path: path.join(ARTIFACTS, 'moderation-menu.png') });

  // Kick: bob is put out, and may come back.
  await act(alice, 'bob', /^Kick$/);
  expect(await bob.waitEvent((e) => e.type === 'parted' && e.room === 'studio', WAIT, 'the kick')).toMatchObject({ nick: 'bob', kickedBy: 'alice' });
  await carol.locator('.msg.notice.kick', { hasText: 'alice kicked bob' }).waitFor({ timeout: WAIT });
  await alice.locator('.msg.notice.kick', { hasText: 'You kicked bob' }).waitFor({ timeout: WAIT });
  await memberItem(alice, 'bob').waitFor({ state: 'detached', timeout: WAIT });
  bob.sendJson({ type: 'join', room: 'studio', id: 'back' });
  expect(await answer(bob, 'back')).toMatchObject({ type: 'joined', self: true });
  await memberItem(alice, 'bob').waitFor({ timeout: WAIT });
  // (The kicker hears of a kick twice, as the room and as the answer: one line.)
  expect(await alice.locator('.msg.notice.kick').count()).toBe(1);

  // Ban: asked once more on the page, then bob is out and stays out.
  await act(alice, 'bob', /^Ban/);
  const confirmText = memberItem(alice, 'bob').locator('.confirm-text');
  expect(await confirmText.textContent()).toMatch(/^Ban bob from #studio\?/);
  await alice.screenshot({ path: path.join(ARTIFACTS, 'moderation-ban-confirm.png') });
  await memberItem(alice, 'bob').locator('.member-action', { hasText: 'Ban bob' }).click();
  expect(await bob.waitEvent((e) => e.type === 'parted' && e.room === 'studio', WAIT, 'the ban')).toMatchObject({ nick: 'bob', kickedBy: 'alice' });
  await carol.locator('.msg.notice.moderation', { hasText: /^alice banned / }).waitFor({ timeout: WAIT });
  await memberItem(carol, 'bob').waitFor({ state: 'detached', timeout: WAIT });
  bob.sendJson({ type: 'join', room: 'studio', id: 'again' });
  expect(await answer(bob, 'again')).toMatchObject({ type: 'error', code: 'BANNED' });
  // The pages, on another address than bob's, are still in.
  expect(await carol.locator('#room-list .room-name').allTextContents()).toEqual(['#studio']);
  expect(await memberItem(alice, 'carol').count()).toBe(1);
  expect(await carol.locator('.member-menu-btn').count()).toBe(0);
  expect(await carol.locator('.msg.notice.error').count()).toBe(0);
  expect(troubleOf(alice).errors).toEqual([]);
  expect(troubleOf(carol).errors).toEqual([]);
}, TEST_TIMEOUT);

test("an operator's acts show on the page (op, mode), and a page kicked out of its room is told so and does not go back", async () => {
  const server = await h.server({ connection });
  const ann = await member(server, 'ann', ['den']);
  const page = await openPage(browser(), contexts, { width: 1000, height: 700 });
  await signIn(page, server.port, 'dora', 'den');
  await page.locator('#member-list .member.op', { hasText: 'ann' }).waitFor({ timeout: WAIT });
  expect(await page.locator('.member-menu-btn').count()).toBe(0);

  ann.sendJson({ type: 'mode', modes: '+t', room: 'den' });
  await page.locator('.msg.notice.moderation', { hasText: 'ann set mode +t (only operators set the topic)' }).waitFor({ timeout: WAIT });
  expect(await page.locator('#room-modes').textContent()).toBe('+t');

  // Made an operator: the menu comes; taken away: it goes.
  ann.sendJson({ type: 'op', nick: 'dora', room: 'den' });
  await page.locator('.msg.notice.moderation', { hasText: 'ann made you an operator' }).waitFor({ timeout: WAIT });
  await memberItem(page, 'ann').locator('.member-menu-btn').waitFor({ timeout: WAIT });
  ann.sendJson({ type: 'deop', nick: 'dora', room: 'den' });
  await page.locator('.msg.notice.moderation', { hasText: 'ann took operator status from you' }).waitFor({ timeout: WAIT });
  await page.locator('.member-menu-btn').first().waitFor({ state: 'detached', timeout: WAIT });

  // What an operator may do and dora may not: the server's words, as an error line.
  await page.fill('#text-input', '/topic mine now');
  await page.press('#text-input', 'Enter');
  await page.locator('.msg.notice.error', { hasText: /Only an operator can set the topic/ }).waitFor({ timeout: WAIT });

  ann.sendJson({ type: 'kick', nick: 'dora', reason: 'too loud', room: 'den' });
  const told = page.locator('.msg.kicked', { hasText: 'You were kicked from #den by ann (too loud).' });
  await told.waitFor({ timeout: WAIT });
  expect(await told.isVisible()).toBe(true);
  expect(await page.locator('#room-list .room-name').allTextContents()).toEqual([]);
  await page.screenshot({ path: path.join(ARTIFACTS, 'moderation-kicked.png') });

  // After a blip the page is back online, in no room: it did not join #den again.
  ann.evCursor = ann.events.length;
  blip(server);
  await untilInPage(page, `document.querySelector('#status')?.textContent !== 'online'`, WAIT, 'the page to notice the blip');
  await page.locator('#status', { hasText: 'online' }).waitFor({ timeout: WAIT });
  expect(await who(ann, 'den')).toMatchObject({ members: ['ann'] });
  expect(await page.locator('#room-list .room-name').allTextContents()).toEqual([]);
  expect(await page.evaluate('localStorage.getItem("roomcast.rooms")')).toBe('[]');
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('a room with a key: the join box asks for it, a wrong one is refused, the right one gets in', async () => {
  const server = await h.server({ connection });
  const ann = await member(server, 'ann', ['vault']);
  ann.sendJson({ type: 'key', key: 'sesame', room: 'vault', id: 'key' });
  expect(await answer(ann, 'key')).toMatchObject({ type: 'moderation', action: 'key' });
  const page = await openPage(browser(), contexts, { width: 1000, height: 700 });
  await signIn(page, server.port, 'erin', 'lobby');

  await page.fill('#join-input', 'vault');
  await page.press('#join-input', 'Enter');
  await page.locator('.msg.notice.error', { hasText: '#vault needs a key' }).waitFor({ timeout: WAIT });
  expect(await page.locator('#join-key').isVisible()).toBe(true);
  expect(await focused(page)).toBe('join-key');
  expect(await page.locator('#room-list .room-name').allTextContents()).toEqual(['#lobby']);

  await page.fill('#join-key', 'nope');
  await page.press('#join-key', 'Enter');
  await page.locator('.msg.notice.error', { hasText: 'That is not the key of [vault]' }).waitFor({ timeout: WAIT });

  await page.fill('#join-key', 'sesame');
  await page.press('#join-key', 'Enter');
  await memberItem(page, 'ann').waitFor({ timeout: WAIT });
  expect(await page.locator('#room-title').textContent()).toBe('#vault');
  expect(await page.locator('#join-key').isVisible()).toBe(false);
  expect(await who(ann, 'vault')).toMatchObject({ members: ['ann', 'erin'] });
  expect(troubleOf(page).errors).toEqual([]);

  // The room typed on the login form: the form asks for the key.
  const fay = await openPage(browser(), contexts, { width: 1000, height: 700 });
  await fay.goto(`http://127.0.0.1:${server.port}/`);
  expect(await fay.locator('#room-key-input').isVisible()).toBe(false);
  await submit(fay, { nick: 'fay', room: 'vault' });
  expect(await refusal(fay, /key/)).toBe('#vault needs a key: ask one of its members for it.');
  expect(await focused(fay)).toBe('room-key-input');
  await fay.fill('#room-key-input', 'sesame');
  await fay.click('#login-button');
  await memberItem(fay, 'ann').waitFor({ timeout: WAIT });
  expect(await fay.locator('#room-title').textContent()).toBe('#vault');
  expect(troubleOf(fay).errors).toEqual([]);
}, TEST_TIMEOUT);

/**
 * The web page's message view follows the conversation, in headless Chromium (see
 * browser.test.ts): while the reader is at the bottom it stays there, also when a picture
 * loads or the bot's labels arrive after the post was placed (both make the page taller later);
 * once the reader has scrolled up it is left alone, and a "New messages" button takes them down.
 *
 * The pictures are drawn here (sharp), large enough that each one adds a few hundred pixels
 * once it has loaded. Screenshots go to artifacts/ (gitignored).
 */
import path from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import type { RoomcastServer } from '../../src/server.js';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness, type JsonClient } from '../helpers/clients.js';
import { labelsFor, post } from '../helpers/images.js';
import { useTinyModel } from '../helpers/tiny-model.js';
import { openPage, useBrowser, signIn, troubleOf, untilInPage } from '../helpers/web.js';

const ARTIFACTS = path.resolve('artifacts');
const WAIT = 30_000;
const TEST_TIMEOUT = 120_000;
/** How far from the bottom still counts as "at the bottom" (sub-pixel rounding). */
const SLACK = 2;

const h = new Harness();
/** The bot's labels come from the tests' own tiny model: the page only needs some to show. */
const tiny = useTinyModel();
/** As in browser.test.ts: a browser's silent pre-opened sockets must not become chat users. */
const connection = { ...CONNECTION_DEFAULTS, greetDelay: 3000, floodRate: 0 };
const { browser, contexts } = useBrowser(h, TEST_TIMEOUT);

/** A 480x360 JPEG: a coloured ground with a few shapes, different for each seed. */
async function picture(seed: number): Promise<Buffer> {
  const hue = (seed * 67) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360">
    <rect width="480" height="360" fill="hsl(${hue},60%,55%)"/>
    <circle cx="${120 + seed * 30}" cy="170" r="90" fill="hsl(${(hue + 180) % 360},70%,45%)"/>
    <rect x="280" y="60" width="140" height="220" rx="20" fill="hsl(${(hue + 90) % 360},50%,35%)"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toBuffer();
}

async function startServer(): Promise<RoomcastServer> {
  return h.server({ connection, classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1 } } });
}

/** Posts a drawn picture from a JSON client and waits for its ack and the bot's labels. */
async function postPicture(c: JsonClient, seed: number, room = 'lobby'): Promise<number> {
  const ack = await post(c, await picture(seed), { room, name: `drawing-${seed}.jpg` }, WAIT);
  if (ack.type !== 'ack') throw new Error(`the picture was refused: ${JSON.stringify(ack)}`);
  await labelsFor(c, ack.image as number, WAIT);
  return ack.image as number;
}

async function say(c: JsonClient, room: string, texts: string[]): Promise<void> {
  for (const text of texts) c.sendJson({ type: 'message', room, text, id: `t-${text}` });
  const last = `t-${texts[texts.length - 1]}`;
  await c.waitFor(() => c.events.find((e) => e.id === last), WAIT, `the ack of "${last}"`);
}

const lines = (from: number, n: number, who: string): string[] => Array.from({ length: n }, (_, i) => `${who} line ${from + i}`);

interface View {
  top: number;
  /** Pixels between the bottom of the view and the end of the messages. */
  below: number;
  scrollable: number;
}

/**
 * Where the view is once the page has settled: every picture on it decoded (so laid out at
 * its real size) and two frames drawn after that, so the page has had its chance to react to
 * the new height. (Functions run in the page are strings: the tests compile without the DOM lib.)
 */
async function settledView(page: Page): Promise<View> {
  return page.evaluate(`(async () => {
    const imgs = [...document.querySelectorAll('.pane:not([hidden]) img.image')];
    await Promise.all(imgs.map((i) => i.decode().catch(() => undefined)));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const m = document.getElementById('messages');
    return { top: m.scrollTop, below: m.scrollHeight - m.scrollTop - m.clientHeight, scrollable: m.scrollHeight - m.clientHeight };
  })()`) as Promise<View>;
}

/** Waits until the page shows the post of `name` with its picture loaded and its labels. */
async function postShown(page: Page, name: string): Promise<void> {
  const p = page.locator('.pane:not([hidden]) .msg.post', { hasText: name });
  await p.locator('.labels .label-name').first().waitFor({ timeout: WAIT });
  await untilInPage(
    page,
    `[...document.querySelectorAll('.pane:not([hidden]) .msg.post')].some((p) => p.textContent.includes(${JSON.stringify(name)}) && p.querySelector('img.image')?.complete)`,
    WAIT,
    `the picture of ${name}`,
  );
}

const SCROLLED_UP = `(() => { const m = document.getElementById('messages'); return m.scrollHeight - m.scrollTop - m.clientHeight > 300; })()`;

const jumpButton = (page: Page) => page.getByRole('button', { name: /new messages/i });

test('joining a room whose history has pictures ends at the bottom once they have loaded', async () => {
  const server = await startServer();
  const carol = await h.json(server, 'carol', ['lobby']);
  await say(carol, 'lobby', lines(1, 6, 'carol'));
  for (const seed of [1, 2, 3]) {
    await postPicture(carol, seed);
    await say(carol, 'lobby', lines(seed * 10, 2, 'carol'));
  }
  await postPicture(carol, 4); // the last thing in the room is a picture and its labels

  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await signIn(page, server.port, 'alice');
  await postShown(page, 'drawing-4.jpg');
  const view = await settledView(page);
  await page.screenshot({ path: path.join(ARTIFACTS, 'scroll-join.png') });
  expect(view.scrollable).toBeGreaterThan(600); // the history is well over a screenful
  expect(view.below).toBeLessThanOrEqual(SLACK);
  expect(await jumpButton(page).isVisible()).toBe(false);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

/** A page signed in to #lobby, at the bottom of a screenful and more of carol's lines. */
async function busyRoom(lineCount = 30, phone = false): Promise<{ page: Page; carol: JsonClient }> {
  const server = await startServer();
  const carol = await h.json(server, 'carol', ['lobby']);
  const page = phone ? await openPage(browser(), contexts, { width: 390, height: 844 }, true) : await openPage(browser(), contexts, { width: 900, height: 700 });
  await signIn(page, server.port, 'alice');
  await say(carol, 'lobby', lines(1, lineCount, 'carol'));
  await page.locator('.msg .text', { hasText: `carol line ${lineCount}` }).waitFor({ timeout: WAIT });
  const view = await settledView(page);
  expect(view.scrollable).toBeGreaterThan(100); // more than a screenful
  expect(view.below).toBeLessThanOrEqual(SLACK);
  return { page, carol };
}

test('at the bottom, the view follows a picture someone else posts, as it loads and as its labels come', async () => {
  const { page, carol } = await busyRoom();
  // Placed at once, taller when the picture has loaded, taller again with the labels.
  await postPicture(carol, 5);
  await postShown(page, 'drawing-5.jpg');
  expect((await settledView(page)).below).toBeLessThanOrEqual(SLACK);
  await postPicture(carol, 6);
  await postShown(page, 'drawing-6.jpg');
  expect((await settledView(page)).below).toBeLessThanOrEqual(SLACK);
  expect(await jumpButton(page).isVisible()).toBe(false);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test("at the bottom, the view follows the reader's own picture and text", async () => {
  const { page } = await busyRoom();
  const before = await settledView(page);
  await page.setInputFiles('#file-input', { name: 'mine.jpg', mimeType: 'image/jpeg', buffer: await picture(6) });
  await postShown(page, 'mine.jpg');
  const afterPicture = await settledView(page);
  await page.screenshot({ path: path.join(ARTIFACTS, 'scroll-follow.png') });
  expect(afterPicture.top).toBeGreaterThan(before.top);
  expect(afterPicture.below).toBeLessThanOrEqual(SLACK);

  await page.fill('#text-input', 'and a word from me');
  await page.press('#text-input', 'Enter');
  await page.locator('.msg .text', { hasText: 'and a word from me' }).waitFor({ timeout: WAIT });
  expect((await settledView(page)).below).toBeLessThanOrEqual(SLACK);
  expect(await jumpButton(page).isVisible()).toBe(false);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('scrolled up, the view stays put as posts arrive; "New messages" takes the reader down and goes away', async () => {
  const { page, carol } = await busyRoom(40);
  expect(await jumpButton(page).isVisible()).toBe(false);

  // The reader turns the mouse wheel over the messages to read back.
  const box = await page.locator('#messages').boundingBox();
  await page.mouse.move(box!.x + box!.width / 2, box!.y + box!.height / 2);
  await page.mouse.wheel(0, -500);
  await untilInPage(page, SCROLLED_UP, WAIT, 'the view to move up');
  const before = await settledView(page);
  expect(await jumpButton(page).isVisible()).toBe(false); // nothing new yet

  await say(carol, 'lobby', ['while you were reading']);
  await postPicture(carol, 7);
  await postShown(page, 'drawing-7.jpg');
  const after = await settledView(page);
  expect(Math.abs(after.top - before.top)).toBeLessThanOrEqual(1);
  expect(after.below).toBeGreaterThan(before.below); // what came is below, out of view
  await jumpButton(page).waitFor({ timeout: WAIT });
  await page.screenshot({ path: path.join(ARTIFACTS, 'scroll-new-messages.png') });

  await jumpButton(page).click();
  await jumpButton(page).waitFor({ state: 'hidden', timeout: WAIT });
  expect((await settledView(page)).below).toBeLessThanOrEqual(SLACK);

  // Back at the bottom, it follows again.
  await postPicture(carol, 8);
  await postShown(page, 'drawing-8.jpg');
  expect((await settledView(page)).below).toBeLessThanOrEqual(SLACK);
  expect(await jumpButton(page).isVisible()).toBe(false);
  await page.screenshot({ path: path.join(ARTIFACTS, 'scroll-back-down.png') });
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

test('on a phone, scrolling back down by hand hides "New messages" and the view follows again', async () => {
  const { page, carol } = await busyRoom(40, true);

  const box = await page.locator('#messages').boundingBox();
  await page.mouse.move(box!.x + box!.width / 2, box!.y + box!.height / 2);
  await page.mouse.wheel(0, -500);
  await untilInPage(page, SCROLLED_UP, WAIT, 'the view to move up');
  await settledView(page);
  await say(carol, 'lobby', ['something new']);
  await jumpButton(page).waitFor({ timeout: WAIT });
  await page.screenshot({ path: path.join(ARTIFACTS, 'scroll-new-messages-phone.png') });

  await page.mouse.wheel(0, 5000);
  await jumpButton(page).waitFor({ state: 'hidden', timeout: WAIT });
  await postPicture(carol, 9);
  await postShown(page, 'drawing-9.jpg');
  expect((await settledView(page)).below).toBeLessThanOrEqual(SLACK);
  expect(troubleOf(page).errors).toEqual([]);
}, TEST_TIMEOUT);

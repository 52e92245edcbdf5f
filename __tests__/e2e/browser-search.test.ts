/**
 * The web page's search box, in headless Chromium: the current room's matching messages,
 * newest first, the words in <mark>, people's text as text (never HTML), and a close button.
 */
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { CONNECTION_DEFAULTS } from '../../src/transport/options.js';
import { Harness } from '../helpers/clients.js';
import { ARTIFACTS, openPage, signIn, troubleOf, useBrowser } from '../helpers/web.js';

const h = new Harness();
const { browser, contexts } = useBrowser(h);
const WAIT = 30_000;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-web-search-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('searching the room: hits newest first with the words marked; markup stays text; closing hides them', async () => {
  const server = await h.server({
    store: { engine: 'sqlite', dir, fsync: 'batch' },
    // As in browser.test.ts: a browser's silent pre-opened sockets must not become chat users.
    connection: { ...CONNECTION_DEFAULTS, greetDelay: 3000, floodRate: 0 },
  });
  const ann = await h.json(server, 'ann');
  const texts = ['the red kite', 'blue sky', '<b>red</b> alert <img src=x onerror=alert(1)>', 'Red sun'];
  texts.forEach((text, i) => ann.sendJson({ type: 'message', text, id: i + 1 }));
  await ann.waitEvent((e) => e.type === 'ack' && e.id === texts.length);

  const page = await openPage(browser(), contexts, { width: 900, height: 700 });
  await signIn(page, server.port, 'alice');
  await page.fill('#search-input', 'red');
  await page.press('#search-input', 'Enter');
  const results = page.locator('#search-results');
  await results.locator('.search-head', { hasText: '3 messages in lobby match' }).waitFor({ timeout: WAIT });
  const hits = await results.locator('.msg.hit').allTextContents();
  expect(hits.map((t) => t.replace(/^\d\d:\d\d/, ''))).toEqual(['annRed sun', 'ann<b>red</b> alert <img src=x onerror=alert(1)>', 'annthe red kite']);
  expect(await results.locator('mark').allTextContents()).toEqual(['Red', 'red', 'red']);
  expect(await results.locator('img, b').count()).toBe(0); // the markup was shown, not run
  await page.screenshot({ path: path.join(ARTIFACTS, 'search.png') });

  await page.fill('#search-input', 'zebra');
  await page.press('#search-input', 'Enter');
  await results.locator('.search-head', { hasText: 'No messages in lobby match' }).waitFor({ timeout: WAIT });
  await page.click('.search-close');
  expect(await results.isHidden()).toBe(true);
  expect(troubleOf(page)).toEqual({ errors: [], console: [], failed: [] });
}, 120_000);

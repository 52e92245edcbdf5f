/**
 * The terminal client and images: how posts, the bot's answers and previews are rendered (pure
 * functions), completion for /image, and /image carried out by a Terminal against a real server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ChatClient } from '../../src/client/chat-client.js';
import {
  CLIENT_COMMANDS,
  createStyle,
  PLAIN,
  previewPixels,
  renderEvent,
  renderPreview,
  withClientCommands,
  type RenderContext,
} from '../../src/client/render.js';
import { complete, completePath, expandPath, Terminal } from '../../src/client/terminal.js';
import { HELP } from '../../src/protocol/commands.js';
import type { ImageEvent, LabelsEvent, ServerEvent } from '../../src/protocol/events.js';
import { Harness, HOST } from '../helpers/clients.js';
import { noisyJpeg, RED, solid, useTinyModel } from '../helpers/tiny-model.js';

const NOW = new Date(2026, 0, 5, 9, 7).getTime(); // local 09:07
const ctx: RenderContext = { now: NOW };
const TRUECOLOR = createStyle(3);
// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/g;

function texts(event: ServerEvent, c: RenderContext = ctx, style = PLAIN): string[] {
  return renderEvent(event, c, style).map((l) => l.text);
}

/** A 2x3 preview: red, green / blue, white / black, grey. */
const PIXELS = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 128, 128, 128];
const preview = { width: 2, height: 3, rgb: Buffer.from(PIXELS).toString('base64') };

function labels(over: Partial<LabelsEvent> = {}): LabelsEvent {
  return {
    type: 'labels',
    room: 'lab',
    seq: 43,
    nick: 'classifier',
    image: 42,
    name: 'cat.jpg',
    time: NOW,
    labels: [
      { index: 281, label: 'tabby', score: 0.554 },
      { index: 282, label: 'tiger cat', score: 0.341 },
    ],
    model: 'mobilenetv2-12-int8',
    preview,
    ...over,
  };
}

const image: ImageEvent = { type: 'image', room: 'lab', seq: 42, nick: 'bob', image: 42, name: 'cat.jpg', size: 12_345, time: NOW };

describe('render: posts and answers', () => {
  test('a post, and the answer tied to it by number and name', () => {
    expect(texts(image)).toEqual(['09:07 [lab] bob posted image #42 cat.jpg (12.1 KiB)']);
    expect(texts(labels())).toEqual(['09:07 [lab] classifier: #42 cat.jpg \u2192 tabby 55%, tiger cat 34%']);
  });

  test('an error answer says what went wrong, in red when coloured', () => {
    const busy = labels({ labels: undefined, preview: undefined, error: { code: 'CLASSIFIER_BUSY', message: 'the classifier is busy, try again in a moment' } });
    expect(texts(busy)).toEqual(['09:07 [lab] classifier: #42 cat.jpg - the classifier is busy, try again in a moment']);
    expect(texts(busy, ctx, TRUECOLOR).join('\n')).toContain('\u001b[31mthe classifier is busy');
  });

  test('our own post is shown from its ack, with the name and size we sent', () => {
    const answered = { command: { type: 'image' as const, name: 'me.png', size: 2048, room: 'lab' }, sentAt: NOW };
    const ack: ServerEvent = { type: 'ack', id: 3, room: 'lab', seq: 9, time: NOW, image: 5 };
    expect(texts(ack, { now: NOW, answered, ownNick: 'alice' })).toEqual(['09:07 [lab] alice posted image #5 me.png (2.0 KiB)']);
  });

  test('history replays posts and answers as lines, without previews', () => {
    const history: ServerEvent = { type: 'history', room: 'lab', messages: [image, labels()], first: 1, last: 43, missed: 0 };
    const lines = texts(history, ctx, TRUECOLOR).map((l) => l.replace(SGR, ''));
    expect(lines.slice(1)).toEqual(['09:07 [lab] bob posted image #42 cat.jpg (12.1 KiB)', '09:07 [lab] classifier: #42 cat.jpg \u2192 tabby 55%, tiger cat 34%']);
  });

  test('the bot state', () => {
    const bot: ServerEvent = {
      type: 'bot',
      nick: 'classifier',
      state: 'ready',
      reason: '2 of 2 workers ready (mobilenetv2-12-int8.onnx)',
      model: 'mobilenetv2-12-int8',
      workers: 2,
      queue: 1,
      maxQueue: 32,
    };
    expect(texts(bot)).toEqual(['09:07 -- the classifier bot is ready: 2 of 2 workers ready (mobilenetv2-12-int8.onnx); queue 1/32']);
    expect(texts({ type: 'bot', nick: 'classifier', state: 'off', reason: 'no model installed' })).toEqual([
      '09:07 -- the classifier bot is off: no model installed',
    ]);
  });

  test('every field of posts, answers and bot states from the network is cleaned', () => {
    const nasty = 'a\u001b[2Jb\u0007\u009b31m\u202ec';
    const events: ServerEvent[] = [
      { ...image, room: nasty, nick: nasty, name: nasty },
      labels({ room: nasty, nick: nasty, name: nasty, labels: [{ index: 1, label: nasty, score: 0.5 }] }),
      labels({ name: nasty, error: { code: nasty, message: nasty } }),
      { type: 'bot', nick: nasty, state: nasty as 'off', reason: nasty, model: nasty },
      labels({ preview: { width: 1, height: 1, rgb: nasty } }),
    ];
    for (const e of events) {
      for (const line of texts(e)) expect(line).not.toMatch(ANY_CONTROL);
      for (const line of texts(e, ctx, TRUECOLOR)) expect(line.replace(SGR, '')).not.toMatch(ANY_CONTROL);
    }
  });
});

describe('render: previews', () => {
  test('half blocks: the upper pixel is the foreground, the lower one the background', () => {
    const lines = renderPreview(preview, TRUECOLOR, '').map((l) => l.text);
    expect(lines).toHaveLength(2); // three rows of pixels, two rows of characters
    // Row 0: red over blue, green over white.
    expect(lines[0]).toBe(
      '\u001b[38;2;255;0;0m\u001b[48;2;0;0;255m\u2580\u001b[49m\u001b[39m' + '\u001b[38;2;0;255;0m\u001b[48;2;255;255;255m\u2580\u001b[49m\u001b[39m',
    );
    // Row 1: the last pixel row alone, over the terminal's own background.
    expect(lines[1]).toBe('\u001b[38;2;0;0;0m\u2580\u001b[39m' + '\u001b[38;2;128;128;128m\u2580\u001b[39m');
  });

  test('a live answer in colour comes with its preview under the line', () => {
    const lines = texts(labels(), ctx, TRUECOLOR);
    expect(lines).toHaveLength(3);
    expect(lines[1]!.startsWith('      \u001b[38;2;255;0;0m')).toBe(true);
    expect(lines[1]!.replace(SGR, '')).toBe('      \u2580\u2580');
  });

  test('a terminal with fewer colours gets the nearest ones', () => {
    const lines = renderPreview(preview, createStyle(2), '');
    expect(lines[0]!.text).toContain('\u001b[38;5;196m'); // red in the 256-colour cube
  });

  test('plain output (a pipe, NO_COLOR): no preview and no escape at all', () => {
    expect(renderPreview(preview, PLAIN)).toEqual([]);
    for (const line of texts(labels())) expect(line).not.toContain('\u001b');
  });

  test('a malformed preview from the server is skipped, never thrown on', () => {
    const bad: unknown[] = [
      null,
      'x',
      { width: 2, height: 3, rgb: 'AAAA' }, // too few bytes
      { width: 2.5, height: 3, rgb: preview.rgb },
      { width: 0, height: 3, rgb: '' },
      { width: 1000, height: 1000, rgb: Buffer.alloc(3_000_000).toString('base64') }, // more than a preview
      { width: 2, height: 3, rgb: 42 },
    ];
    for (const p of bad) {
      expect(previewPixels(p)).toBeNull();
      expect(renderPreview(p, TRUECOLOR)).toEqual([]);
      expect(texts(labels({ preview: p as LabelsEvent['preview'] }), ctx, TRUECOLOR)).toHaveLength(1);
    }
  });
});

describe('/image in help and completion', () => {
  test('/help lists /image next to the server commands, before /help', () => {
    const all = withClientCommands(HELP);
    const usages = all.map((c) => c.usage);
    expect(usages).toContain('/image PATH');
    expect(usages.indexOf('/image PATH')).toBe(usages.indexOf('/help') - 1);
    expect(usages).toContain('/bot');
    // A server that one day lists /image itself is not doubled.
    expect(withClientCommands(all).length).toBe(all.length);
    const lines = texts({ type: 'help', commands: HELP });
    expect(lines.some((l) => l.includes('/image PATH') && l.includes(CLIENT_COMMANDS[0]!.help))).toBe(true);
  });

  test('Tab completes /image and /bot, then paths after /image', () => {
    const known = { nicks: [], rooms: [] };
    expect(complete('/im', known)).toEqual([['/image '], '/im']);
    expect(complete('/bo', known)).toEqual([['/bot '], '/bo']);
    const entries = [
      { name: 'cat.jpg', dir: false },
      { name: 'cats', dir: true },
      { name: 'dog.png', dir: false },
      { name: '.hidden.jpg', dir: false },
    ];
    expect(completePath('photos/ca', entries)).toEqual([['photos/cat.jpg', 'photos/cats/'], 'photos/ca']);
    expect(completePath('', entries)[0]).toEqual(['cat.jpg', 'cats/', 'dog.png']);
    expect(completePath('.h', entries)[0]).toEqual(['.hidden.jpg']);
  });

  test('paths: ~ is the home directory, quotes are dropped', () => {
    expect(expandPath('~/Pictures/cat.jpg', '/home/ada')).toBe('/home/ada/Pictures/cat.jpg');
    expect(expandPath('"my cat.jpg"', '/home/ada')).toBe('my cat.jpg');
    expect(expandPath('  ./cat.jpg ', '/home/ada')).toBe('./cat.jpg');
  });
});

describe('/image in the terminal, against a real server', () => {
  const tiny = useTinyModel();
  const h = new Harness();
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-image-'));
  });
  afterAll(async () => {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs a piped Terminal with the given input lines; resolves with its output and status. */
  async function session(port: number, lines: string[], style = PLAIN, until?: (out: string) => boolean) {
    const client = new ChatClient({ host: HOST, port, nick: 'alice', rooms: ['lab'], reconnect: false, heartbeatMs: 0 });
    const input = new PassThrough();
    const output = new PassThrough();
    const errors = new PassThrough();
    let out = '';
    let err = '';
    output.on('data', (d: Buffer) => (out += d.toString()));
    errors.on('data', (d: Buffer) => (err += d.toString()));
    const terminal = new Terminal({ client, input, output, errorOutput: errors, interactive: false, style });
    await client.connect();
    const done = terminal.run();
    for (const l of lines) input.write(l + '\n');
    if (until) {
      const deadline = Date.now() + 15_000;
      while (!until(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    input.end();
    const status = await done;
    return { out, err, status };
  }

  test('posts the file, shows the post and, in colour, the answer with its preview', async () => {
    const server = await h.server({ classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1 } } });
    await server.pool!.ready();
    const file = path.join(dir, 'red.png');
    const bytes = await solid(RED);
    await writeFile(file, bytes);
    const { out, err, status } = await session(server.port, [`/image ${file}`], TRUECOLOR, (o) => o.includes('classifier'));
    expect(err).toBe('');
    expect(status).toBe(0);
    const coloured = out.split('\n');
    const lines = coloured.map((l) => l.replace(SGR, ''));
    const size = `${(bytes.length / 1024).toFixed(1)} KiB`;
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\d\\d:\\d\\d \\[lab\\] alice posted image #1 red\\.png \\(${size.replace('.', '\\.')}\\)$`)));
    const answer = lines.findIndex((l) => /\[lab\] classifier: #1 red\.png \u2192 red 99\.\d%, blue <1%, green <1%$/.test(l));
    expect(answer).toBeGreaterThan(-1);
    // 32x24 pixels: 12 rows of 32 half blocks, each red above red.
    expect(lines.slice(answer + 1, answer + 13)).toEqual(Array(12).fill('      ' + '\u2580'.repeat(32)));
    for (const row of coloured.slice(answer + 1, answer + 13)) {
      expect(row.match(/\u001b\[38;2;(\d+;\d+;\d+)m/g)?.map((c) => c.slice(7, -1))).toEqual(Array(32).fill('255;0;0'));
    }
  });

  test('lines after an /image wait for its file: the room gets them in the order they were written', async () => {
    const server = await h.server({ classifier: { off: 'not needed' } });
    const watcher = await h.json(server, 'watcher', ['lab']);
    const file = path.join(dir, 'kitten.jpg');
    await writeFile(file, await noisyJpeg(480, 360, [255, 160, 80]));
    const { status } = await session(server.port, [`/image ${file}`, 'look at this', `/image ${file}`, '/join other', 'and this']);
    expect(status).toBe(0);
    const seen = await watcher.waitFor(() => {
      const got = watcher.events.filter((e) => e.type === 'image' || e.type === 'message');
      return got.length === 3 && got;
    }, 5000, 'the posts');
    expect(seen.map((e) => (e.type === 'image' ? `image ${e.name}` : e.text))).toEqual(['image kitten.jpg', 'look at this', 'image kitten.jpg']);
    // The second image went to the room it was typed in, not the one joined while it was read.
    expect(seen.every((e) => e.room === 'lab')).toBe(true);
  });

  test('a missing file, a directory, an empty file and one over the limit are refused before sending', async () => {
    const server = await h.server({ classifier: { off: 'not needed' }, connection: { maxImageBytes: 1000 } });
    const big = path.join(dir, 'big.jpg');
    const empty = path.join(dir, 'empty.jpg');
    await writeFile(big, Buffer.alloc(5000, 1));
    await writeFile(empty, '');
    const { err, status } = await session(server.port, [`/image ${dir}/nope.jpg`, `/image ${dir}`, `/image ${empty}`, `/image ${big}`, '/image']);
    expect(status).toBe(1);
    // The files are looked at concurrently: the errors may come in any order.
    const lines = err.trimEnd().split('\n').map((l) => l.replace(/^\d\d:\d\d /, ''));
    expect(lines.sort()).toEqual(
      [
        `! no such file: ${dir}/nope.jpg`,
        `! ${dir} is a directory, not an image file`,
        `! ${empty} is empty (0 bytes): nothing to post`,
        `! ${big} is 4.9 KiB; this server takes images up to 1000 B`,
        '! Usage: /image PATH (a JPEG, PNG, GIF, WebP, BMP or AVIF file)',
      ].sort(),
    );
    expect(server.hub.stats.images).toBe(0);
  });
});

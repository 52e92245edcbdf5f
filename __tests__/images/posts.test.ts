/**
 * Image posts through a running server: a real RoomcastServer on 127.0.0.1 with the classifier
 * bot (one worker process), JSON clients posting over TCP, and other members (JSON and
 * netcat-style) receiving the posts and the bot's answers. The bot runs the tiny model the
 * tests make, on pictures drawn here whose labels are known (helpers/tiny-model.ts); the real
 * model's labels for the kit's photos are checked when the kit is there.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RoomcastServer } from '../../src/server.js';
import { describeWithKit, expectations, HANG, HANG_WORKER, LABELS, MODEL, waitFor } from '../helpers/classifier.js';
import { Harness, type Ev } from '../helpers/clients.js';
import { imageFrame, labelsFor, lineLike, post } from '../helpers/images.js';
import { BLUE, GREEN, greenOverRed, noisyJpeg, RED, solid, TINY_MODEL_NAME, tinyLabels, useTinyModel, type Rgb } from '../helpers/tiny-model.js';

const tiny = useTinyModel();
const h = new Harness();
let server: RoomcastServer;

beforeAll(async () => {
  server = await h.server({ classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1 } } });
  await server.pool!.ready();
});

afterAll(async () => {
  await h.cleanup();
});

function top3(e: Ev): number[] {
  return (e.labels as { index: number }[]).map((l) => l.index);
}

function labelNames(e: Ev): string[] {
  return (e.labels as { label: string }[]).map((l) => l.label);
}

test('drawn pictures of several formats, posted at once over TCP: another member gets the labels of each colour', async () => {
  const pictures: { name: string; colour: Rgb; bytes: Buffer }[] = [
    { name: 'red.png', colour: RED, bytes: await solid(RED) },
    { name: 'green.jpeg', colour: GREEN, bytes: await solid(GREEN, { format: 'jpeg' }) },
    { name: 'blue.webp', colour: BLUE, bytes: await solid(BLUE, { format: 'webp', width: 360, height: 480 }) },
    { name: 'rust.png', colour: [190, 80, 30], bytes: await solid([190, 80, 30], { width: 1000, height: 250 }) },
    { name: 'sea.png', colour: [20, 110, 170], bytes: await solid([20, 110, 170], { width: 64, height: 64 }) },
  ];
  const alice = await h.json(server, 'alice', ['pictures']);
  const bob = await h.json(server, 'bob', ['pictures']);

  // All posts in one write: the server must keep header and bytes in step for each of them.
  alice.write(Buffer.concat(pictures.map((p, i) => imageFrame({ name: p.name, id: i }, p.bytes))));
  const acks = await alice.waitFor(
    () => {
      const a = alice.events.filter((e) => e.type === 'ack');
      return a.length === pictures.length && a;
    },
    10_000,
    'every ack',
  );
  for (const [i, p] of pictures.entries()) {
    const ack = acks.find((a) => a.id === i)!;
    expect(ack).toMatchObject({ room: 'pictures', image: expect.any(Number), seq: expect.any(Number) });
    const posted = await bob.waitFor(() => bob.events.find((e) => e.type === 'image' && e.image === ack.image), 5000, `the post of ${p.name}`);
    expect(posted).toMatchObject({ room: 'pictures', nick: 'alice', name: p.name, size: p.bytes.length, seq: ack.seq });

    const labels = await labelsFor(bob, ack.image);
    expect(labels).toMatchObject({ room: 'pictures', nick: 'classifier', name: p.name, model: TINY_MODEL_NAME });
    expect(labels.error).toBeUndefined();
    expect(labels.seq).toBeGreaterThan(ack.seq);
    const want = tinyLabels(p.colour);
    expect(labelNames(labels)).toEqual(want.map((l) => l.label));
    // Lossless formats: the scores are the ones computed from the colour.
    if (!p.name.endsWith('.jpeg')) (labels.labels as { score: number }[]).forEach((l, k) => expect(l.score).toBeCloseTo(want[k]!.score, 4));

    // The thumbnail: fitted inside 32x32, aspect kept, the picture's own colour in RGB bytes.
    const pv = labels.preview as { width: number; height: number; rgb: string };
    expect(Math.max(pv.width, pv.height)).toBe(32);
    const rgb = Buffer.from(pv.rgb, 'base64');
    expect(rgb.length).toBe(pv.width * pv.height * 3);
    if (!p.name.endsWith('.jpeg')) expect([...rgb.subarray(0, 3)]).toEqual([...p.colour]);

    // The poster gets the answer too.
    expect(await labelsFor(alice, ack.image)).toEqual(labels);
  }
  // Nobody is sent an image event for their own post.
  expect(alice.ofType('image')).toEqual([]);
});

describeWithKit('the real model', () => {
  let real: RoomcastServer;
  const hk = new Harness();
  beforeAll(async () => {
    real = await hk.server({ classifier: { pool: { model: MODEL, labels: LABELS, size: 1 } } });
    await real.pool!.ready();
  });
  afterAll(() => hk.cleanup());

  test('every photo of the kit, posted at once over TCP: another member gets the right labels for each', async () => {
    const files = await expectations();
    const alice = await hk.json(real, 'alice', ['photos']);
    const bob = await hk.json(real, 'bob', ['photos']);

    // All posts in one write: the server must keep header and bytes in step for each of them.
    const bytes = await Promise.all(files.map(([file]) => readFile(file)));
    alice.write(Buffer.concat(files.map(([file], i) => imageFrame({ name: path.basename(file), id: i }, bytes[i]!))));

    const acks = await alice.waitFor(
      () => {
        const a = alice.events.filter((e) => e.type === 'ack');
        return a.length === files.length && a;
      },
      10_000,
      'every ack',
    );
    for (const [i, [file, want]] of files.entries()) {
      const ack = acks.find((a) => a.id === i)!;
      expect(ack).toMatchObject({ room: 'photos', image: expect.any(Number), seq: expect.any(Number) });
      const name = path.basename(file);

      const posted = await bob.waitFor(() => bob.events.find((e) => e.type === 'image' && e.image === ack.image), 5000, `the post of ${name}`);
      expect(posted).toMatchObject({ room: 'photos', nick: 'alice', name, size: bytes[i]!.length, seq: ack.seq });

      const labels = await labelsFor(bob, ack.image);
      expect(labels).toMatchObject({ room: 'photos', nick: 'classifier', name, model: 'mobilenetv2-12-int8' });
      expect(labels.error).toBeUndefined();
      expect(labels.seq).toBeGreaterThan(ack.seq);
      expect(labels.labels).toHaveLength(3);
      expect(want.top1_any_of).toContain(top3(labels)[0]);
      expect(top3(labels)).toContain(want.top3_has);

      // The thumbnail: fitted inside 32x32, aspect kept, RGB bytes in base64.
      const p = labels.preview as { width: number; height: number; rgb: string };
      expect(Math.max(p.width, p.height)).toBe(32);
      expect(Buffer.from(p.rgb, 'base64').length).toBe(p.width * p.height * 3);

      // The poster gets the answer too.
      expect(await labelsFor(alice, ack.image)).toEqual(labels);
    }
    // Nobody is sent an image event for their own post.
    expect(alice.ofType('image')).toEqual([]);
  });
});

test('the preview keeps the aspect of the picture and looks like it', async () => {
  const alice = await h.json(server, 'ada', ['thumbs']);
  const ack = await post(alice, await greenOverRed(), { name: 'field.jpg' }); // 480x360
  const { preview } = await labelsFor(alice, ack.image);
  expect([preview.width, preview.height]).toEqual([32, 24]);
  // A green band above a red field: the top left is green, the centre red.
  const rgb = Buffer.from(preview.rgb, 'base64');
  const at = (x: number, y: number): number[] => [...rgb.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)];
  const [r0, g0, b0] = at(1, 1);
  expect(g0).toBeGreaterThan(r0!);
  expect(g0).toBeGreaterThan(b0!);
  const [r1, , b1] = at(16, 12);
  expect(r1).toBeGreaterThan(b1!);
});

test('text-mode members see posts and answers as lines', async () => {
  const alice = await h.json(server, 'amy', ['lobby']);
  const nc = await h.text(server, 'nora');
  const bytes = await solid(BLUE, { format: 'jpeg' });
  const ack = await post(alice, bytes, { name: 'blue.jpeg' });
  expect(await lineLike(nc, /posted image/)).toBe(`[lobby] amy posted image #${ack.image} blue.jpeg (${(bytes.length / 1024).toFixed(1)} KiB)`);
  expect(await lineLike(nc, /^\[lobby\] classifier:/)).toMatch(new RegExp(`^\\[lobby\\] classifier: #${ack.image} blue\\.jpeg \u2192 blue 99\\.\\d%, green <1%, red <1%$`));
  // No JSON and no preview bytes reach a netcat user.
  expect(nc.lines.some((l) => l.includes('{') || l.includes('\u2580'))).toBe(false);
});

test('two rooms posting at once: each answer goes to its own room, for the right image', async () => {
  const alice = await h.json(server, 'north1', ['north']);
  const bob = await h.json(server, 'north2', ['north']);
  const carol = await h.json(server, 'south1', ['south']);
  const dave = await h.json(server, 'south2', ['south']);
  const [green, blue] = await Promise.all([solid(GREEN, { format: 'jpeg' }), solid(BLUE)]);

  alice.write(Buffer.concat([imageFrame({ name: 'green.jpg', id: 'h' }, green), imageFrame({ name: 'blue.png', id: 'p' }, blue)]));
  carol.write(Buffer.concat([imageFrame({ name: 'blue.png', id: 'p' }, blue), imageFrame({ name: 'green.jpg', id: 'h' }, green)]));
  const ackOf = (c: typeof alice, id: string): Promise<Ev> => c.waitFor(() => c.events.find((e) => e.type === 'ack' && e.id === id), 5000, `ack ${id}`);
  const [nh, np, sp, sh] = await Promise.all([ackOf(alice, 'h'), ackOf(alice, 'p'), ackOf(carol, 'p'), ackOf(carol, 'h')]);
  expect(new Set([nh.image, np.image, sp.image, sh.image]).size).toBe(4);

  const north = await Promise.all([labelsFor(bob, nh.image), labelsFor(bob, np.image)]);
  const south = await Promise.all([labelsFor(dave, sp.image), labelsFor(dave, sh.image)]);
  expect(north.map((e) => [e.room, e.name])).toEqual([['north', 'green.jpg'], ['north', 'blue.png']]);
  expect(south.map((e) => [e.room, e.name])).toEqual([['south', 'blue.png'], ['south', 'green.jpg']]);
  for (const e of [north[0]!, south[1]!]) expect(labelNames(e)[0]).toBe('green');
  for (const e of [north[1]!, south[0]!]) expect(labelNames(e)[0]).toBe('blue');

  // Nothing crossed over.
  const rooms = (c: typeof alice): Set<unknown> => new Set(c.events.filter((e) => e.type === 'image' || e.type === 'labels').map((e) => e.room));
  expect(rooms(bob)).toEqual(new Set(['north']));
  expect(rooms(dave)).toEqual(new Set(['south']));
});

test('a poster who disconnects before the answer: the room still gets it, and the server carries on', async () => {
  const bob = await h.json(server, 'stays', ['gone']);
  const poster = await h.json(server, 'leaves', ['gone']);
  // Big and noisy, so decoding it keeps the worker busy for a while after the poster leaves.
  const ack = await post(poster, await noisyJpeg(2400, 1800, [255, 40, 40]), { name: 'red.jpg' });
  poster.destroy(); // at once: the worker has barely started on it
  await bob.waitEvent((e) => e.type === 'parted' && e.nick === 'leaves', 5000, 'the poster to leave');

  const labels = await labelsFor(bob, ack.image);
  expect(labels).toMatchObject({ room: 'gone', name: 'red.jpg' });
  // It really was answered after the poster had gone.
  expect(bob.events.indexOf(labels)).toBeGreaterThan(bob.events.findIndex((e) => e.type === 'parted' && e.nick === 'leaves'));
  expect(labelNames(labels)[0]).toBe('red');
  expect(server.hub.sessions.has('leaves')).toBe(false);

  // Business as usual afterwards.
  const carol = await h.json(server, 'newcomer', ['gone']);
  carol.sendJson({ type: 'message', text: 'still here?', id: 1 });
  await carol.waitEvent((e) => e.type === 'ack' && e.id === 1);
  await bob.waitEvent((e) => e.type === 'message' && e.text === 'still here?');
});

test('{"type":"bot"} and /bot report the bot as ready, with its model and queue', async () => {
  const c = await h.json(server, 'asker', ['lobby']);
  c.sendJson({ type: 'bot', id: 'b' });
  const bot = await c.waitEvent((e) => e.type === 'bot');
  expect(bot).toEqual({
    type: 'bot',
    id: 'b',
    nick: 'classifier',
    state: 'ready',
    reason: `1 of 1 workers ready (${TINY_MODEL_NAME}.onnx)`,
    model: TINY_MODEL_NAME,
    workers: 1,
    queue: 0,
    maxQueue: 32,
  });
  const nc = await h.text(server, 'nbot');
  nc.send('/bot');
  expect(await nc.waitLine(/^\*\*\* classifier:/)).toBe(
    `*** classifier: ready - 1 of 1 workers ready (${TINY_MODEL_NAME}.onnx) (model ${TINY_MODEL_NAME}, 1 worker, queue 0/32)`,
  );
});

describe('while every worker is busy', () => {
  const hs = new Harness();
  afterAll(() => hs.cleanup());

  test('chat between other people still arrives, complete and in order; the stuck image gets CLASSIFIER_TIMEOUT', async () => {
    const busy = await hs.server({
      classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1, timeoutMs: 2000, restartDelayMs: 50, workerScript: HANG_WORKER } },
    });
    await busy.pool!.ready();
    const hungPids = busy.pool!.pids();
    const poster = await hs.json(busy, 'poster', ['lab']);
    const alice = await hs.json(busy, 'alice', ['lab']);
    const bob = await hs.json(busy, 'bob', ['lab']);

    const ack = await post(poster, Buffer.from(`GIF89a${HANG} a decoder stuck for good`), { name: 'stuck.jpg' });
    await waitFor(() => busy.pool!.stats().workers[0]?.state === 'busy', 'the only worker to be busy');

    for (let i = 0; i < 30; i++) alice.sendJson({ type: 'message', text: `a${i}` });
    for (let i = 0; i < 30; i++) bob.sendJson({ type: 'message', text: `b${i}` });
    const texts = (c: typeof alice, prefix: string) => (): false | string[] => {
      const t = c.ofType('message').map((e) => e.text as string).filter((x) => x.startsWith(prefix));
      return t.length === 30 && t;
    };
    expect(await bob.waitFor(texts(bob, 'a'), 5000, "alice's messages")).toEqual(Array.from({ length: 30 }, (_, i) => `a${i}`));
    expect(await alice.waitFor(texts(alice, 'b'), 5000, "bob's messages")).toEqual(Array.from({ length: 30 }, (_, i) => `b${i}`));
    // The image is still waiting: the chat did not wait for it.
    expect(poster.events.some((e) => e.type === 'labels')).toBe(false);

    const answer = await labelsFor(poster, ack.image, 10_000);
    expect(answer.error).toEqual({ code: 'CLASSIFIER_TIMEOUT', message: 'classifying stuck.jpg took longer than 2 s' });
    expect(answer.labels).toBeUndefined();

    // The hung worker is replaced (waited for here, so a slow start on a busy machine does not
    // eat into the next picture's 2 s), and the next picture is labelled.
    const [hung] = hungPids;
    await waitFor(() => busy.pool!.state === 'ready' && busy.pool!.pids().length === 1 && busy.pool!.pids()[0] !== hung, 'a replacement worker', 15_000);
    const next = await post(poster, await solid(BLUE), { name: 'blue.png' });
    const labelled = await labelsFor(alice, next.image, 15_000);
    expect(labelled.error).toBeUndefined();
    expect(labelNames(labelled)[0]).toBe('blue');
  });
});

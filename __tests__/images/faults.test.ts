/**
 * Image posts that go wrong, through a running server: bad files, oversized uploads, a full
 * queue, and a bot that is off, loading or down. Each is answered (in the room, or to the
 * poster) with its stable code, and the server and the connection carry on. The bot runs the
 * tiny model the tests make, on pictures drawn here (helpers/tiny-model.ts).
 */
import { HANG, HANG_WORKER, pngBomb, waitFor } from '../helpers/classifier.js';
import { Harness, type Ev } from '../helpers/clients.js';
import { imageFrame, labelsFor, post } from '../helpers/images.js';
import { BLUE, noisyJpeg, RED, solid, TINY_MODEL_NAME, truncatedJpeg, useTinyModel } from '../helpers/tiny-model.js';

const tiny = useTinyModel();
const h = new Harness();
afterEach(() => h.cleanup());

const LIMIT = 200_000;

describe('bad images', () => {
  test('each is answered in the room with its code; the connection and the server carry on', async () => {
    const server = await h.server({
      connection: { maxImageBytes: LIMIT },
      classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1, preprocess: { maxBytes: LIMIT } } },
    });
    await server.pool!.ready();
    const alice = await h.json(server, 'alice', ['lab']);
    const bob = await h.json(server, 'bob', ['lab']);

    const cases: [string, Buffer, string, RegExp][] = [
      ['notes.jpg', Buffer.from(`\xff\xd8\xff${'these are my notes, not a photo\n'.repeat(20)}`, 'latin1'), 'IMAGE_INVALID', /^notes\.jpg could not be decoded as JPEG: the file is damaged or cut off$/],
      ['half.jpg', await truncatedJpeg(), 'IMAGE_INVALID', /^half\.jpg could not be decoded as JPEG: the file is damaged or cut off/],
      ['bomb.png', pngBomb(30000, 30000), 'IMAGE_TOO_MANY_PIXELS', /^bomb\.png is 30000x30000 pixels \(900 MP\)/],
    ];
    for (const [name, bytes, code, message] of cases) {
      const ack = await post(alice, bytes, { name });
      expect(ack).toMatchObject({ type: 'ack', room: 'lab', image: expect.any(Number) });
      const answer = await labelsFor(bob, ack.image);
      expect(answer).toMatchObject({ room: 'lab', nick: 'classifier', name, error: { code, message: expect.stringMatching(message) } });
      expect(answer.labels).toBeUndefined();
      expect(answer.preview).toBeUndefined();
    }

    // A good picture after all that, on the same connection.
    const ok = await post(alice, await solid(BLUE, { format: 'jpeg' }), { name: 'blue.jpeg' });
    expect((await labelsFor(bob, ok.image)).labels[0]).toMatchObject({ index: 2, label: 'blue' });
    expect(server.pool!.stats().crashes).toBe(0);
  });

  test('over --max-image-bytes: IMAGE_TOO_LARGE to the poster alone, the bytes are skipped, the next line works', async () => {
    const server = await h.server({ connection: { maxImageBytes: LIMIT }, classifier: { off: 'not needed here' } });
    const alice = await h.json(server, 'alice', ['lab']);
    const bob = await h.json(server, 'bob', ['lab']);
    // The bytes look like JSON lines: were any of them read as commands, the room would see them.
    const trap = Buffer.from(`${JSON.stringify({ type: 'message', text: 'smuggled' })}\n`.repeat(Math.ceil((LIMIT + 5000) / 34))).subarray(0, LIMIT + 5000);
    alice.write(imageFrame({ name: 'big.jpg', id: 'big' }, trap));
    alice.sendJson({ type: 'message', text: 'after the big one', id: 'next' });

    const refused = await alice.waitEvent((e) => e.id === 'big');
    expect(refused).toEqual({
      type: 'error',
      id: 'big',
      code: 'IMAGE_TOO_LARGE',
      message: `That image is too large (${LIMIT + 5000} bytes; the limit is ${LIMIT} bytes). Shrink it or send a smaller one.`,
    });
    await alice.waitEvent((e) => e.type === 'ack' && e.id === 'next');
    const msg = await bob.waitEvent((e) => e.type === 'message');
    expect(msg.text).toBe('after the big one');
    expect(bob.events.some((e) => e.type === 'image' || e.type === 'labels' || e.text === 'smuggled')).toBe(false);
    expect(server.hub.stats.images).toBe(0);
  });

  test('a header declaring more than 4x the limit: the connection is closed with IMAGE_FAR_TOO_LARGE', async () => {
    const server = await h.server({ connection: { maxImageBytes: LIMIT }, classifier: { off: 'not needed here' } });
    const alice = await h.json(server, 'alice', ['lab']);
    const bob = await h.json(server, 'bob', ['lab']);
    alice.sendJson({ type: 'image', name: 'huge.tif', size: 4 * LIMIT + 1, id: 'huge' });
    expect(await alice.waitEvent((e) => e.type === 'error')).toMatchObject({ id: 'huge', code: 'IMAGE_TOO_LARGE' });
    expect(await alice.waitEvent((e) => e.type === 'bye')).toEqual({
      type: 'bye',
      code: 'IMAGE_FAR_TOO_LARGE',
      reason: `An image of ${4 * LIMIT + 1} bytes is far beyond what this server takes; closing the connection.`,
    });
    await alice.waitClosed();
    await bob.waitEvent((e) => e.type === 'parted' && e.nick === 'alice');
    // The server is fine.
    const carol = await h.json(server, 'carol', ['lab']);
    carol.sendJson({ type: 'message', text: 'hello', id: 1 });
    await carol.waitEvent((e) => e.type === 'ack');
  });
});

test('a full queue: the overflow is answered CLASSIFIER_BUSY at once, not left in silence', async () => {
  const server = await h.server({
    classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1, maxQueue: 1, timeoutMs: 20_000, workerScript: HANG_WORKER } },
  });
  await server.pool!.ready();
  const alice = await h.json(server, 'alice', ['lab']);
  const bob = await h.json(server, 'bob', ['lab']);
  // The only worker is stuck, so the queue holds what comes next and nothing leaves it.
  await post(alice, Buffer.from(`GIF89a${HANG} stuck`), { name: 'stuck.jpg' });
  await waitFor(() => server.pool!.stats().workers[0]?.state === 'busy', 'the worker to be busy');

  const red = await solid(RED, { format: 'jpeg' });
  const started = Date.now();
  alice.write(Buffer.concat(Array.from({ length: 5 }, (_, i) => imageFrame({ name: `p${i}.jpeg`, id: i }, red))));
  const acks: Ev[] = await alice.waitFor(() => {
    const a = alice.ofType('ack').filter((e) => typeof e.id === 'number');
    return a.length === 5 && a;
  }, 5000, 'five acks');
  // The first waits in the queue; the other four are turned away, in the room, right away.
  const busy = await Promise.all(acks.slice(1).map((a) => labelsFor(bob, a.image, 2000)));
  expect(Date.now() - started).toBeLessThan(2000);
  for (const b of busy) expect(b.error).toEqual({ code: 'CLASSIFIER_BUSY', message: 'the classifier is busy, try again in a moment' });
  expect(bob.events.some((e) => e.type === 'labels' && e.image === acks[0]!.image)).toBe(false);
  expect(server.pool!.stats().busyRejections).toBe(4);
});

describe('the bot off, loading, down', () => {
  test('off: image posts are answered with the advice; /bot and {"type":"bot"} say so', async () => {
    const advice = 'no image model is installed. Turn the bot on with: roomcast models pull (then restart the server)';
    const server = await h.server({ classifier: { off: advice } });
    const alice = await h.json(server, 'alice', ['lobby']);
    const nc = await h.text(server, 'nora');
    const ack = await post(alice, await noisyJpeg(480, 360, [255, 160, 80]), { name: 'kitten.jpg' });
    expect((await labelsFor(alice, ack.image)).error).toEqual({ code: 'CLASSIFIER_OFF', message: `the classifier bot is off: ${advice}` });
    expect(await nc.waitLine(/^\[lobby\] classifier:/)).toBe(`[lobby] classifier: #${ack.image} kitten.jpg - the classifier bot is off: ${advice}`);

    alice.sendJson({ type: 'bot', id: 1 });
    expect(await alice.waitEvent((e) => e.type === 'bot')).toEqual({ type: 'bot', id: 1, nick: 'classifier', state: 'off', reason: advice });
    nc.send('/bot');
    expect(await nc.waitLine(/^\*\*\* classifier:/)).toBe(`*** classifier: off - ${advice}`);
  });

  test('no bot at all: {"type":"bot"} says off', async () => {
    const server = await h.server();
    const c = await h.json(server, 'alice');
    c.sendJson({ type: 'bot' });
    expect(await c.waitEvent((e) => e.type === 'bot')).toMatchObject({ state: 'off', reason: 'this server runs no classifier bot' });
  });

  test('loading, then ready', async () => {
    const server = await h.server({ classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1 } } });
    const c = await h.json(server, 'alice');
    c.sendJson({ type: 'bot', id: 1 });
    // A worker process needs far longer to start and load the model than a hello takes.
    expect(await c.waitEvent((e) => e.type === 'bot')).toMatchObject({ id: 1, state: 'loading', reason: `starting 1 worker with ${TINY_MODEL_NAME}.onnx` });
    // A picture posted meanwhile waits for the model instead of failing.
    const ack = await post(c, await solid(BLUE), { name: 'blue.png' });
    expect((await labelsFor(c, ack.image)).labels[0]).toMatchObject({ index: 2, label: 'blue' });
    expect(server.pool!.stats().jobsDone).toBe(1);
    c.sendJson({ type: 'bot', id: 2 });
    expect(await c.waitEvent((e) => e.type === 'bot')).toMatchObject({ id: 2, state: 'ready', workers: 1 });
  });

  test('down: the reason is reported, and posts are answered CLASSIFIER_DOWN', async () => {
    const server = await h.server({ classifier: { pool: { model: '/nonexistent/model.onnx', labels: tiny.labels, size: 1 } } });
    await waitFor(() => server.pool!.state === 'down', 'the pool to give up');
    const c = await h.json(server, 'alice');
    c.sendJson({ type: 'bot' });
    expect(await c.waitEvent((e) => e.type === 'bot')).toMatchObject({ state: 'down', reason: 'model file not found: /nonexistent/model.onnx' });
    const ack = await post(c, await solid(BLUE), { name: 'blue.png' });
    expect((await labelsFor(c, ack.image)).error).toEqual({
      code: 'CLASSIFIER_DOWN',
      message: 'the classifier is not available: model file not found: /nonexistent/model.onnx',
    });
  });
});

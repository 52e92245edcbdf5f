/**
 * ClassifierPool with real worker processes: batching, bad inputs, back-pressure and states on
 * the tiny model the tests make (helpers/tiny-model.ts), with pictures drawn so that their
 * labels are known; accuracy on the real model kit when it is there. Faults (crashes, hangs)
 * are in classifier-faults.test.ts.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ClassifierError } from '../../src/classifier/errors.js';
import { ClassifierPool, defaultPoolSize, type PoolOptions, type PoolState } from '../../src/classifier/pool.js';
import { MIB } from '../../src/classifier/preprocess.js';
import { codeOf, expectations, LABELS, MODEL, pngBomb, testWithKit, WORKER } from '../helpers/classifier.js';
import { BLUE, GREEN, noisyJpeg, RED, solid, tinyLabels, truncatedJpeg, useTinyModel } from '../helpers/tiny-model.js';

const tiny = useTinyModel();
const pools: ClassifierPool[] = [];
/** A pool on the tiny model unless `opts` names another. */
function makePool(opts: Partial<PoolOptions> = {}): ClassifierPool {
  const pool = new ClassifierPool({ model: tiny.model, labels: tiny.labels, workerScript: WORKER, ...opts });
  pools.push(pool);
  return pool;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

test('default size leaves the hub a core and stays small', () => {
  expect(defaultPoolSize(1)).toBe(1);
  expect(defaultPoolSize(2)).toBe(1);
  expect(defaultPoolSize(3)).toBe(2);
  expect(defaultPoolSize(16)).toBe(2);
});

testWithKit('every photo gets an acceptable top-1 and its expected class in the top 3', async () => {
  const pool = makePool({ model: MODEL, labels: LABELS, size: 2, top: 3 });
  const states: PoolState[] = [];
  pool.on('state', (s: PoolState) => states.push(s));
  await pool.ready();
  expect(pool.modelInfo).toMatchObject({ inputName: 'input', dynamicBatch: true, inputSize: 224, classes: 1000 });
  const cases = await expectations();
  const results = await Promise.all(cases.map(async ([file]) => pool.classify(await readFile(file), { name: path.basename(file) })));
  results.forEach((r, i) => {
    const [file, want] = cases[i]!;
    expect(r.name).toBe(path.basename(file));
    expect(r.labels).toHaveLength(3);
    expect(want.top1_any_of).toContain(r.labels[0]!.index);
    expect(r.labels.map((l) => l.index)).toContain(want.top3_has);
    expect(r.labels[0]!.score).toBeGreaterThan(r.labels[2]!.score);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.decodeMs);
  });
  const byName = Object.fromEntries(results.map((r) => [r.name, r.labels[0]!.label]));
  expect(byName['pelican.jpeg']).toBe('pelican');
  expect(byName['espresso.jpg']).toBe('espresso');
  expect(states[states.length - 1]).toBe('ready');
  expect(pool.stats()).toMatchObject({ jobsDone: cases.length, jobsFailed: 0, queueDepth: 0, inFlight: 0 });
});

test('drawn pictures get the labels of their colours', async () => {
  const pool = makePool({ size: 1, top: 3 });
  await pool.ready();
  expect(pool.modelInfo).toMatchObject({ inputName: 'input', dynamicBatch: true, inputSize: 224, classes: 3 });
  const cases = [
    { name: 'red.png', colour: RED, bytes: await solid(RED) },
    { name: 'green.jpeg', colour: GREEN, bytes: await solid(GREEN, { format: 'jpeg' }) },
    { name: 'blue.webp', colour: BLUE, bytes: await solid(BLUE, { format: 'webp', width: 200, height: 600 }) },
  ];
  const results = await Promise.all(cases.map((c) => pool.classify(c.bytes, { name: c.name })));
  expect(results.map((r) => r.labels.map((l) => l.label))).toEqual(cases.map((c) => tinyLabels(c.colour).map((l) => l.label)));
  expect(results.map((r) => [r.name, r.width, r.height])).toEqual([['red.png', 480, 360], ['green.jpeg', 480, 360], ['blue.webp', 200, 600]]);
  // PNG and WebP here are lossless: the scores are the ones computed from the colour.
  for (const i of [0, 2]) results[i]!.labels.forEach((l, k) => expect(l.score).toBeCloseTo(tinyLabels(cases[i]!.colour)[k]!.score, 4));
  expect(pool.stats()).toMatchObject({ jobsDone: 3, jobsFailed: 0, queueDepth: 0, inFlight: 0 });
});

test('images queued together go as one batch', async () => {
  const pool = makePool({ size: 1, maxBatch: 8 });
  await pool.ready();
  const bytes = await Promise.all([RED, GREEN, BLUE, RED, GREEN].map((c, i) => solid(c, { width: 300 + 20 * i })));
  // Submitted in one event-loop turn (an album in one message): one batch, no timed wait.
  const results = await Promise.all(bytes.map((b, i) => pool.classify(b, { name: `p${i}` })));
  expect(results.map((r) => r.batchSize)).toEqual([5, 5, 5, 5, 5]);
  expect(results.map((r) => r.labels[0]!.label)).toEqual(['red', 'green', 'blue', 'red', 'green']);
  expect(new Set(results.map((r) => r.timings.inferenceMs)).size).toBe(1); // one run()
  expect(pool.stats()).toMatchObject({ batches: 1, lastBatchSize: 5, batchSizes: { 5: 1 } });

  // maxBatch caps a burst: 10 images -> 8 + 2.
  const ten = await Promise.all([...bytes, ...bytes].map((b) => pool.classify(b)));
  expect(ten.map((r) => r.batchSize).sort()).toEqual([2, 2, 8, 8, 8, 8, 8, 8, 8, 8]);
});

test('a multi-megabyte image crosses the image pipe in many chunks, between small ones, each to its own job', async () => {
  const pool = makePool({ size: 1, maxBatch: 8 });
  await pool.ready();
  // Noise, barely compressed: megabytes, so the pipe delivers it in dozens of reads.
  const big = await noisyJpeg(1600, 1200, [255, 40, 40], 100);
  expect(big.length).toBeGreaterThan(1 << 20);
  const small = [await solid(GREEN, { format: 'jpeg' }), await solid(BLUE)];
  const alone = [];
  for (const b of [small[0]!, big, small[1]!]) alone.push(await pool.classify(b));
  expect(alone.map((r) => r.batchSize)).toEqual([1, 1, 1]);
  const together = await Promise.all([small[0]!, big, small[1]!].map((b) => pool.classify(b)));
  expect(together.map((r) => r.batchSize)).toEqual([3, 3, 3]);
  expect(together.map((r) => r.labels[0]!.label)).toEqual(alone.map((r) => r.labels[0]!.label));
  expect(together.map((r) => r.labels[0]!.label)).toEqual(['green', 'red', 'blue']);
  expect(together.map((r) => [r.width, r.height])).toEqual([[480, 360], [1600, 1200], [480, 360]]);
});

test('maxQueueDelayMs: images arriving apart wait for company, a full batch does not wait', async () => {
  const pool = makePool({ size: 1, maxBatch: 4, maxQueueDelayMs: 150 });
  await pool.ready();
  const img = await solid(GREEN, { format: 'jpeg' });
  const pending = [];
  for (let i = 0; i < 3; i++) {
    pending.push(pool.classify(img));
    await new Promise((r) => setTimeout(r, 20)); // separate turns of the event loop
  }
  const three = await Promise.all(pending);
  expect(three.map((r) => r.batchSize)).toEqual([3, 3, 3]);
  expect(three[0]!.timings.queueMs).toBeGreaterThanOrEqual(140);
  expect(three[2]!.timings.queueMs).toBeLessThan(three[0]!.timings.queueMs);

  const full = await Promise.all([img, img, img, img].map((b) => pool.classify(b)));
  expect(full.map((r) => r.batchSize)).toEqual([4, 4, 4, 4]);
  expect(Math.max(...full.map((r) => r.timings.queueMs))).toBeLessThan(100);
});

test('bad inputs get their own codes and the pool stays healthy', async () => {
  const pool = makePool({ size: 1, maxQueueDelayMs: 20, preprocess: { maxBytes: 1 * MIB } });
  await pool.ready();
  const good = await solid(GREEN, { format: 'jpeg' });
  const bomb = pngBomb();
  const half = await truncatedJpeg();
  const started = performance.now();
  // All in one batch with good photos on both sides: failures are per image.
  const outcomes = await Promise.allSettled([
    pool.classify(good, { name: 'green.jpg' }),
    pool.classify(Buffer.alloc(0), { name: 'empty.jpg' }),
    pool.classify(Buffer.from('just some text\n'), { name: 'notes.txt' }),
    pool.classify(half, { name: 'half.jpg' }),
    pool.classify(bomb, { name: 'bomb.png' }),
    pool.classify(Buffer.alloc(2 * MIB, 0xff), { name: 'huge.jpg' }),
    pool.classify(good, { name: 'green again' }),
  ]);
  const summary = outcomes.map((o) => (o.status === 'fulfilled' ? `ok ${o.value.labels[0]!.label}` : (o.reason as ClassifierError).code));
  expect(summary).toEqual([
    'ok green',
    'IMAGE_EMPTY',
    'IMAGE_INVALID',
    'IMAGE_INVALID',
    'IMAGE_TOO_MANY_PIXELS',
    'IMAGE_TOO_LARGE',
    'ok green',
  ]);
  expect(performance.now() - started).toBeLessThan(3000); // the bomb was not decoded
  const messages = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : ''));
  expect(messages[1]).toBe('empty.jpg is empty (0 bytes)');
  expect(messages[2]).toBe('notes.txt is not an image the classifier can read (JPEG, PNG, WebP, GIF, AVIF, TIFF)');
  expect(messages[3]).toMatch(/^half\.jpg could not be decoded as JPEG: the file is damaged or cut off/);
  expect(messages[4]).toContain('bomb.png is 30000x30000 pixels');
  expect(messages[5]).toBe('huge.jpg is 2.0 MiB; images up to 1.0 MiB are accepted');
  expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<{ batchSize: number }>).value.batchSize)).toEqual([2, 2]);

  expect(pool.state).toBe('ready');
  expect(pool.stats()).toMatchObject({ crashes: 0, jobsDone: 2, jobsFailed: 5 });
  const after = await pool.classify(await solid(BLUE));
  expect(after.labels[0]!.label).toBe('blue');
});

test('a full queue refuses at once with CLASSIFIER_BUSY', async () => {
  const pool = makePool({ size: 1, maxQueue: 2, maxBatch: 1, maxQueueDelayMs: 0 });
  await pool.ready();
  const img = await noisyJpeg(480, 360, [255, 160, 80]);
  const sent = new Promise((resolve) => pool.once('batch', resolve));
  const first = pool.classify(img);
  // Resumes right after the dispatch, before the worker's answer can be read.
  await sent;
  expect(pool.stats().inFlight).toBe(1);
  const queued = [pool.classify(img), pool.classify(img)]; // fill the queue
  const started = performance.now();
  const refused = pool.classify(img);
  const err = await refused.catch((e: ClassifierError) => e);
  expect(performance.now() - started).toBeLessThan(50);
  expect(err).toBeInstanceOf(ClassifierError);
  expect((err as ClassifierError).code).toBe('CLASSIFIER_BUSY');
  expect((err as ClassifierError).message).toBe('the classifier is busy, try again in a moment');
  const done = await Promise.all([first, ...queued]);
  expect(done).toHaveLength(3);
  expect(pool.stats()).toMatchObject({ busyRejections: 1, jobsDone: 3 });
  // Room again once the queue drained.
  await expect(pool.classify(img)).resolves.toMatchObject({ batchSize: 1 });
});

test('a missing model puts the pool down with the reason', async () => {
  const pool = makePool({ model: path.join(tiny.dir, 'no-such-model.onnx'), size: 2 });
  const events: [PoolState, string][] = [];
  pool.on('state', (s: PoolState, reason: string) => events.push([s, reason]));
  await expect(pool.ready()).rejects.toMatchObject({ code: 'CLASSIFIER_DOWN' });
  expect(pool.state).toBe('down');
  expect(pool.reason).toMatch(/model file not found: .*no-such-model\.onnx/);
  expect(events[0]).toEqual(['down', pool.reason]);
  const err = await pool.classify(await solid(GREEN)).catch((e: ClassifierError) => e);
  expect((err as ClassifierError).code).toBe('CLASSIFIER_DOWN');
  expect((err as ClassifierError).message).toContain('no-such-model.onnx');
  expect(pool.stats().restarts).toBe(0); // no point restarting on a missing file
});

test('an idle worker leaves the CPU alone (no spinning threads)', async () => {
  const pool = makePool({ size: 1 });
  await pool.ready();
  await pool.classify(await solid(GREEN));
  const pid = pool.pids()[0]!;
  const cpuTicks = async (): Promise<number> => {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  };
  let before: number;
  try {
    before = await cpuTicks();
  } catch {
    return; // no /proc here: nothing to measure
  }
  await new Promise((r) => setTimeout(r, 1000));
  // Clock ticks are 10 ms: a spinning thread would burn ~100 here.
  expect((await cpuTicks()) - before).toBeLessThanOrEqual(5);
});

test('workers run under SCHED_IDLE where chrt exists, so a waking hub preempts them at once', async () => {
  const chrt = ['/usr/bin/chrt', '/bin/chrt'].some((p) => existsSync(p));
  const pool = makePool({ size: 1 });
  await pool.ready();
  let policy: number;
  try {
    // Field 41 of /proc/PID/stat is the scheduling policy: 0 SCHED_OTHER, 5 SCHED_IDLE.
    policy = Number((await readFile(`/proc/${pool.pids()[0]}/stat`, 'utf8')).split(') ')[1]!.split(' ')[38]);
  } catch {
    return; // no /proc here: nothing to check
  }
  expect(policy).toBe(chrt ? 5 : 0);
  // The worker really is node (chrt exec'd it), answering over the IPC channel it inherited.
  expect((await pool.classify(await solid(GREEN))).labels[0]!.label).toBe('green');
});

test('closing answers pending work and ends the workers', async () => {
  const pool = makePool({ size: 1, maxQueueDelayMs: 1000 });
  await pool.ready();
  const pids = pool.pids();
  const img = await solid(GREEN);
  const pending = codeOf(pool.classify(img));
  await pool.close();
  expect(await pending).toBe('CLASSIFIER_CLOSED');
  expect(await codeOf(pool.classify(img))).toBe('CLASSIFIER_CLOSED');
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
});

/**
 * ClassifierPool when workers die or hang: real processes, killed by PID with SIGKILL, and a
 * real hung process (the worker's hangForTesting hook blocks its thread for good).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClassifierError } from '../src/classifier/errors.js';
import { ClassifierPool, type PoolOptions, type PoolState, type WorkerEvent } from '../src/classifier/pool.js';
import { codeOf, LABELS, MODEL, photo, waitFor } from './helpers/classifier.js';

const HANG = 'HANG-FOR-TESTING';
const hangImage = Buffer.from(`${HANG} these bytes make the worker block`);

const pools: ClassifierPool[] = [];
function makePool(opts: Partial<PoolOptions> = {}): ClassifierPool {
  const pool = new ClassifierPool({ model: MODEL, labels: LABELS, hangForTesting: HANG, ...opts });
  pools.push(pool);
  return pool;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function workerEvents(pool: ClassifierPool): WorkerEvent[] {
  const events: WorkerEvent[] = [];
  pool.on('worker', (e: WorkerEvent) => events.push(e));
  return events;
}

/** Waits until the pool's only worker holds `jobs` unanswered images and has had time to receive them. */
async function busyWorker(pool: ClassifierPool, jobs: number): Promise<number> {
  await waitFor(() => pool.stats().inFlight === jobs && pool.stats().workers[0]?.state === 'busy', `${jobs} images at the worker`);
  await new Promise((r) => setTimeout(r, 150));
  return pool.stats().workers[0]!.pid!;
}

test('a worker SIGKILLed mid-batch: its jobs are retried once, alone; it is replaced', async () => {
  const pool = makePool({ size: 1, maxBatch: 8, maxQueueDelayMs: 50, timeoutMs: 20_000, restartDelayMs: 100 });
  const events = workerEvents(pool);
  await pool.ready();
  const [firstPid] = pool.pids();
  const husky = await photo('husky.jpg');
  const pelican = await photo('pelican.jpeg');

  // One batch of three: two good photos and one that blocks the worker.
  const good1 = pool.classify(husky, { name: 'husky.jpg' });
  const good2 = pool.classify(pelican, { name: 'pelican.jpeg' });
  const bad = codeOf(pool.classify(hangImage, { name: 'poison.jpg' }));
  expect(await busyWorker(pool, 3)).toBe(firstPid);
  expect(pool.stats().lastBatchSize).toBe(3);

  process.kill(firstPid!, 'SIGKILL');

  // The replacement takes the retried jobs one per batch: the good photos come through.
  const [r1, r2] = await Promise.all([good1, good2]);
  expect(r1.labels[0]!.label).toBe('Eskimo dog');
  expect(r2.labels[0]!.label).toBe('pelican');
  expect([r1.batchSize, r2.batchSize]).toEqual([1, 1]);
  const secondPid = r1.worker;
  expect(secondPid).not.toBe(firstPid);
  expect(pool.pids()).toEqual([secondPid]);
  expect(events).toEqual(
    expect.arrayContaining([
      { pid: firstPid, event: 'exit', detail: 'killed by SIGKILL' },
      { pid: firstPid, event: 'restarting', detail: 'replacing it in 100 ms' },
      { pid: secondPid, event: 'ready', detail: expect.stringMatching(/^loaded in \d+ ms$/) },
    ]),
  );

  // The poison image blocks the second worker too: after its one retry it is answered.
  expect(await busyWorker(pool, 1)).toBe(secondPid);
  process.kill(secondPid, 'SIGKILL');
  expect(await bad).toBe('CLASSIFIER_CRASHED');
  expect(pool.stats()).toMatchObject({ jobsDone: 2, jobsRetried: 3, crashes: 2 });

  // And a third worker carries on.
  await waitFor(() => pool.state === 'ready' && pool.pids().length === 1 && pool.pids()[0] !== secondPid, 'a third worker');
  await expect(pool.classify(husky)).resolves.toMatchObject({ batchSize: 1 });
});

test('a hung batch: CLASSIFIER_TIMEOUT, the worker is killed and replaced', async () => {
  const pool = makePool({ size: 1, timeoutMs: 1500, restartDelayMs: 100 });
  const events = workerEvents(pool);
  await pool.ready();
  const [hungPid] = pool.pids();

  const started = performance.now();
  const err = await pool.classify(hangImage, { name: 'stuck.png' }).catch((e: ClassifierError) => e);
  const waited = performance.now() - started;
  expect((err as ClassifierError).code).toBe('CLASSIFIER_TIMEOUT');
  expect((err as ClassifierError).message).toBe('classifying stuck.png took longer than 1.5 s');
  expect(waited).toBeGreaterThanOrEqual(1400);
  expect(waited).toBeLessThan(3000);

  await waitFor(() => pool.pids().length === 1 && pool.pids()[0] !== hungPid && pool.state === 'ready', 'a replacement worker');
  expect(() => process.kill(hungPid!, 0)).toThrow(); // really gone
  expect(events.find((e) => e.event === 'killed')).toEqual({
    pid: hungPid,
    event: 'killed',
    detail: 'hung: no answer to a batch of 1 within 1500 ms',
  });
  expect(pool.stats()).toMatchObject({ timeouts: 1, crashes: 1, restarts: 1 });
  const ok = await pool.classify(await photo('pelican.jpeg'));
  expect(ok.labels[0]!.label).toBe('pelican');
});

test('workers that keep crashing: exponential backoff, then down with the reason', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-crash-'));
  try {
    const script = path.join(dir, 'crashing-worker.mjs');
    await writeFile(script, 'process.exit(3);\n');
    const pool = makePool({ size: 1, workerScript: script, restartDelayMs: 50, maxCrashes: 4 });
    const events = workerEvents(pool);
    const states: [PoolState, string][] = [];
    pool.on('state', (s: PoolState, r: string) => states.push([s, r]));
    const job = codeOf(pool.classify(await photo('husky.jpg')));
    await expect(pool.ready()).rejects.toMatchObject({ code: 'CLASSIFIER_DOWN' });
    expect(pool.reason).toBe('workers keep crashing (4 in a row; last: exited with code 3)');
    expect(states[states.length - 1]).toEqual(['down', pool.reason]);
    expect(events.filter((e) => e.event === 'restarting').map((e) => e.detail)).toEqual([
      'replacing it in 50 ms',
      'replacing it in 100 ms',
      'replacing it in 200 ms',
    ]);
    expect(await job).toBe('CLASSIFIER_DOWN');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * ClassifierPool when workers die or hang: real processes, killed by PID with SIGKILL, and a
 * real hung process (helpers/hang-worker.mjs, whose thread blocks for good on a marked
 * image). The workers load the tiny model the tests make (helpers/tiny-model.ts); what they do
 * when one dies does not depend on the model.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClassifierError } from '../../src/classifier/errors.js';
import { ClassifierPool, type PoolOptions, type PoolState, type WorkerEvent } from '../../src/classifier/pool.js';
import { codeOf, HANG, HANG_WORKER, waitFor } from '../helpers/classifier.js';
import { BLUE, GREEN, solid, useTinyModel } from '../helpers/tiny-model.js';

const hangImage = Buffer.from(`${HANG} these bytes make the worker block`);

const tiny = useTinyModel();
const pools: ClassifierPool[] = [];
function makePool(opts: Partial<PoolOptions> = {}): ClassifierPool {
  const pool = new ClassifierPool({ model: tiny.model, labels: tiny.labels, workerScript: HANG_WORKER, ...opts });
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
  const green = await solid(GREEN, { format: 'jpeg' });
  const blue = await solid(BLUE);

  // One batch of three: two good pictures and one that blocks the worker.
  const good1 = pool.classify(green, { name: 'green.jpg' });
  const good2 = pool.classify(blue, { name: 'blue.png' });
  const bad = codeOf(pool.classify(hangImage, { name: 'poison.jpg' }));
  expect(await busyWorker(pool, 3)).toBe(firstPid);
  expect(pool.stats().lastBatchSize).toBe(3);

  process.kill(firstPid!, 'SIGKILL');

  // The replacement takes the retried jobs one per batch: the good pictures come through.
  const [r1, r2] = await Promise.all([good1, good2]);
  expect(r1.labels[0]!.label).toBe('green');
  expect(r2.labels[0]!.label).toBe('blue');
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
  await expect(pool.classify(green)).resolves.toMatchObject({ batchSize: 1 });
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
  const ok = await pool.classify(await solid(BLUE));
  expect(ok.labels[0]!.label).toBe('blue');
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
    const job = codeOf(pool.classify(await solid(GREEN)));
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

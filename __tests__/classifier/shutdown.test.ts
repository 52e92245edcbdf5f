/**
 * Stopping with the classifier on: Ctrl-C in the terminal that runs `roomcast serve` reaches
 * every process of its group, the workers included; shutting down must not look like a crash
 * to the pool, and must never start a worker.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CliChild, BIN, CLI_ENV } from '../helpers/cli-child.js';
import { WORKER } from '../helpers/classifier.js';
import { Harness, LineClient } from '../helpers/clients.js';
import { solid, RED, useTinyModel } from '../helpers/tiny-model.js';
import { ClassifierPool, type WorkerEvent } from '../../src/classifier/pool.js';

const tiny = useTinyModel();
const h = new Harness();
const pools: ClassifierPool[] = [];
const groups: ChildProcessWithoutNullStreams[] = [];

/** A netcat user who never closes its side: stop() waits for it until the shutdown timeout. */
async function lingering(port: number): Promise<LineClient> {
  const c = await LineClient.connect(port, { allowHalfOpen: true });
  await c.waitLine(/^\*\*\* You joined \[lobby\]/);
  return c;
}

afterEach(async () => {
  await h.cleanup();
  await Promise.all(pools.splice(0).map((p) => p.close()));
  // A serve started in its own process group, with its worker, if a test left it running.
  for (const p of groups.splice(0)) {
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) process.kill(-p.pid, 'SIGKILL');
  }
});

function workerEvents(pool: ClassifierPool): WorkerEvent[] {
  const events: WorkerEvent[] = [];
  pool.on('worker', (e: WorkerEvent) => events.push(e));
  return events;
}

test("a worker ignores the terminal's SIGINT: it stays and answers, nothing is restarted", async () => {
  const pool = new ClassifierPool({ model: tiny.model, labels: tiny.labels, size: 1, restartDelayMs: 10, workerScript: WORKER });
  pools.push(pool);
  const events = workerEvents(pool);
  await pool.ready();
  const [pid] = pool.pids();
  process.kill(pid!, 'SIGINT');
  // A worker that died of it would be replaced, and this image answered by the new one.
  const r = await pool.classify(await solid(RED), { name: 'red.png' });
  expect(r.labels[0]!.label).toBe('red');
  expect(r.worker).toBe(pid);
  expect(pool.pids()).toEqual([pid]);
  expect(pool.stats()).toMatchObject({ crashes: 0, restarts: 0 });
  expect(events.map((e) => e.event)).toEqual(['ready']);
});

test('once the server is stopping, a worker that dies is not replaced (shutdown never spawns)', async () => {
  const server = await h.server({
    shutdownTimeout: 1000,
    classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1, restartDelayMs: 10 } },
  });
  const pool = server.pool!;
  const events = workerEvents(pool);
  await pool.ready();
  // The lingering client keeps stop() waiting for the shutdown timeout: the time in which a
  // replacement worker would be started.
  h.track(await lingering(server.port));
  const stopped = server.stop();
  const [pid] = pool.pids();
  process.kill(pid!, 'SIGKILL'); // as a signal to the whole process group would
  await stopped;
  expect(events.map((e) => e.event)).not.toContain('restarting');
  expect(events.filter((e) => e.event === 'ready')).toHaveLength(1);
  expect(pool.stats().restarts).toBe(0);
  expect(pool.pids()).toEqual([]);
});

test('Ctrl-C on `roomcast serve` with a model: no restart, one "ready", then "stopped"', async () => {
  // Its own process group, as a shell gives a foreground job: the signal goes to the group.
  const proc = spawn(
    process.execPath,
    [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--model', tiny.model, '--labels', tiny.labels, '--workers', '1', '--shutdown-timeout', '3000'],
    { env: CLI_ENV, detached: true },
  );
  groups.push(proc);
  const serve = new CliChild('serve', proc, 15_000);
  await serve.waitFor(() => /classifier bot ready/.test(serve.stdout), 'the bot to be ready');
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(serve.stdout)![1]);
  // The shutdown lasts (up to --shutdown-timeout) while it waits for this client, as it may
  // with a real audience: long enough for a worker to be replaced, if one were.
  h.track(await lingering(port));
  process.kill(-proc.pid!, 'SIGINT');
  expect(await serve.exited).toBe(0);
  const log = serve.stdout;
  expect(log).toMatch(/ stopped\n/);
  expect(log).not.toMatch(/restarting|killed by SIGINT/);
  expect(log.match(/classifier bot ready/g)).toHaveLength(1);
});

/**
 * The shared job queue in a real Redis: each job to one worker, `busy` past the bound, a job
 * whose worker stopped claimed again once and then failed, and exactly one result per job
 * whoever finishes it, readable from any client.
 */
import { JobQueue, type Job } from '../../src/cluster/job-queue.js';
import { describeWithRedis, useRedis } from '../helpers/redis-server.js';

type Payload = { image: number };

describeWithRedis('the job queue in a real Redis', () => {
  const redis = useRedis();

  async function queue(consumer: string, opts: ConstructorParameters<typeof JobQueue>[2] = {}) {
    const q = new JobQueue<Payload, string[]>(await redis.connect(), consumer, opts);
    await q.init();
    return q;
  }

  test('two workers share the jobs, each job once; results from any client; the queue empties', async () => {
    const node = await queue('node');
    const [a, b] = [await queue('worker-a'), await queue('worker-b')];
    for (let i = 1; i <= 10; i++) expect(await node.enqueue(`t${i}`, { image: i })).toBe('queued');
    const seen: string[] = [];
    const work = async (q: JobQueue<Payload, string[]>): Promise<void> => {
      for (;;) {
        const jobs = await q.take(3, 50);
        if (jobs.length === 0) return;
        for (const job of jobs) {
          seen.push(job.id);
          expect(job.delivery).toBe(1);
          expect(await q.complete(job, { id: job.id, ok: true, value: [`label of ${job.payload.image}`] })).toBe(true);
        }
      }
    };
    await Promise.all([work(a), work(b)]);
    expect(seen.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `t${i + 1}`).sort());
    expect(await node.result('t7')).toEqual({ id: 't7', ok: true, value: ['label of 7'] });
    expect(await node.result('nope')).toBeNull();
    expect(await node.length()).toBe(0);
  });

  test('busy once maxQueued jobs are outstanding; room again when one is done', async () => {
    const q = await queue('w', { maxQueued: 3 });
    for (let i = 1; i <= 3; i++) expect(await q.enqueue(`t${i}`, { image: i })).toBe('queued');
    expect(await q.enqueue('t4', { image: 4 })).toBe('busy');
    const [job] = await q.take(1, 10);
    expect(await q.enqueue('t4', { image: 4 })).toBe('busy'); // taken is still outstanding
    await q.complete(job!, { id: job!.id, ok: true, value: [] });
    expect(await q.enqueue('t4', { image: 4 })).toBe('queued');
  });

  test('a worker that stops mid-job: the job is claimed again once, one result only; a second stop fails it', async () => {
    // Long enough that a loaded machine does not make "not yet" a claim, short enough to wait out.
    const opts = { claimAfterMs: 500 };
    const node = await queue('node', opts);
    await node.enqueue('t1', { image: 1 });
    await node.enqueue('t2', { image: 2 });
    const dead = await queue('dead', opts);
    const held = await dead.take(2, 10); // and never finishes them
    expect(held.map((j) => j.id)).toEqual(['t1', 't2']);

    const second = await queue('second', opts);
    expect(await second.take(2, 10)).toEqual([]); // not yet: the dead worker might still finish
    await new Promise((resolve) => setTimeout(resolve, 600));
    const claimed = await second.take(2, 10);
    expect(claimed.map((j) => [j.id, j.delivery])).toEqual([
      ['t1', 2],
      ['t2', 2],
    ]);
    expect(await second.complete(claimed[0]!, { id: 't1', ok: true, value: ['second'] })).toBe(true);
    // The first worker comes back to life and finishes late: its result is not taken.
    expect(await dead.complete(held[0]!, { id: 't1', ok: true, value: ['late'] })).toBe(false);
    expect(await node.result('t1')).toEqual({ id: 't1', ok: true, value: ['second'] });

    // t2's second worker stops too: the next claim fails it instead of handing it out again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const third = await queue('third', opts);
    expect(await third.take(2, 10)).toEqual([]);
    expect(await node.result('t2')).toMatchObject({ id: 't2', ok: false, code: 'INTERRUPTED' });
    expect(await node.length()).toBe(0);
  });

  test('results are announced on the channel, once per job', async () => {
    const q = await queue('w');
    const sub = await redis.connect();
    const heard: string[] = [];
    await sub.subscribe(q.channel, (m) => heard.push(m));
    await q.enqueue('t1', { image: 1 });
    const [job] = (await q.take(1, 10)) as Job<Payload>[];
    await q.complete(job!, { id: 't1', ok: true, value: ['a'] });
    await q.complete(job!, { id: 't1', ok: true, value: ['again'] });
    const deadline = Date.now() + 2000;
    while (heard.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(heard.map((m) => JSON.parse(m) as unknown)).toEqual([{ id: 't1', ok: true, value: ['a'] }]);
  });
});

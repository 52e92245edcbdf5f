/**
 * A queue of jobs shared by every node and worker of a cluster: a Redis Stream read through a
 * consumer group, so that each job goes to one worker, a job whose worker died is claimed
 * again (XAUTOCLAIM) once, and each job has exactly one result, whoever finishes it. It is
 * what the classifier's image jobs go through when inference runs on other machines; the
 * jobs themselves are opaque JSON here.
 *
 * A job leaves the Stream when it is done (XACK and XDEL in one script), so the Stream's length
 * is the work outstanding and bounds the queue: enqueue() says `busy` past it, as the local
 * classifier's queue does. Results are kept for a while under the job's id, where any node can
 * read them (a task's status), and announced on a channel.
 */
import { runScript, withDefaults, type CommandSender } from './redis-script.js';

export interface JobQueueOptions {
  /** Key prefix; the Stream is PREFIX:jobs, results PREFIX:result:ID, the channel PREFIX:results. */
  prefix?: string;
  /** Jobs outstanding (queued or being worked on) beyond which enqueue() says busy. */
  maxQueued?: number;
  /** How long a result is kept, in seconds. */
  resultTtlSeconds?: number;
  /** A job given to a worker this long ago and not finished is claimed again. */
  claimAfterMs?: number;
  /** Deliveries of a job before it is failed rather than claimed again (2: claimed again once). */
  maxDeliveries?: number;
}

export const JOB_QUEUE_DEFAULTS = { prefix: 'roomcast', maxQueued: 64, resultTtlSeconds: 3600, claimAfterMs: 30_000, maxDeliveries: 2 };

const GROUP = 'workers';

export interface Job<T> {
  /** The Stream entry: what complete() is told. */
  entry: string;
  id: string;
  payload: T;
  /** 1 the first time a worker gets it, 2 when claimed again. */
  delivery: number;
}

/** A job's result: what the worker made of it, or why there is none. */
export type JobResult<R> = { id: string; ok: true; value: R } | { id: string; ok: false; code: string; message: string };

/** KEYS: stream. ARGV: max outstanding, job id, payload. False when full. */
const ENQUEUE = `
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', 'id', ARGV[2], 'p', ARGV[3])
`;

/**
 * KEYS: stream, result key. ARGV: group, entry, result JSON, ttl, channel. The first result of
 * a job wins; a worker that finishes after another was given its job learns that it lost (0).
 */
const COMPLETE = `
local won = redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if won then
  redis.call('PUBLISH', ARGV[5], ARGV[3])
  return 1
end
return 0
`;

type Entry = [id: string, fields: string[]];

export class JobQueue<T, R> {
  private readonly o: Required<JobQueueOptions>;
  private readonly stream: string;
  readonly channel: string;

  constructor(
    private readonly redis: CommandSender,
    /** This worker's name in the consumer group (unique per process). */
    readonly consumer: string,
    opts: JobQueueOptions = {},
  ) {
    this.o = withDefaults(JOB_QUEUE_DEFAULTS, opts);
    this.stream = `${this.o.prefix}:jobs`;
    this.channel = `${this.o.prefix}:results`;
  }

  /** Makes the Stream and the group when missing. */
  async init(): Promise<void> {
    try {
      await this.redis.sendCommand(['XGROUP', 'CREATE', this.stream, GROUP, '0', 'MKSTREAM']);
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('BUSYGROUP')) throw err;
    }
  }

  /** Queues a job; `busy` when the queue holds maxQueued already. */
  async enqueue(id: string, payload: T): Promise<'queued' | 'busy'> {
    const entry = await runScript(this.redis, ENQUEUE, [this.stream], [String(this.o.maxQueued), id, JSON.stringify(payload)]);
    return entry === null ? 'busy' : 'queued';
  }

  /**
   * Up to `count` jobs for this worker: first those whose worker has held them longer than
   * claimAfterMs (failing those delivered maxDeliveries times already), then new ones, waiting
   * up to blockMs for one when there is none.
   */
  async take(count: number, blockMs: number): Promise<Job<T>[]> {
    const jobs = await this.reclaim(count);
    if (jobs.length > 0) return jobs;
    const reply = (await this.redis.sendCommand(['XREADGROUP', 'GROUP', GROUP, this.consumer, 'COUNT', String(count), 'BLOCK', String(blockMs), 'STREAMS', this.stream, '>'])) as
      | [string, Entry[]][]
      | Record<string, Entry[]>
      | null;
    if (reply === null) return [];
    const entries = Array.isArray(reply) ? (reply[0]?.[1] ?? []) : (Object.values(reply)[0] ?? []);
    return entries.map((e) => jobOf<T>(e, 1));
  }

  /** Records the job's result; false when another worker's result was recorded first. */
  async complete(job: Job<T>, result: JobResult<R>): Promise<boolean> {
    const won = await runScript(this.redis, COMPLETE, [this.stream, this.resultKey(job.id)], [GROUP, job.entry, JSON.stringify(result), String(this.o.resultTtlSeconds), this.channel]);
    return Number(won) === 1;
  }

  /** A job's result, from any node; null while it has none (queued, working, or unknown). */
  async result(id: string): Promise<JobResult<R> | null> {
    const json = (await this.redis.sendCommand(['GET', this.resultKey(id)])) as string | null;
    return json === null ? null : (JSON.parse(json) as JobResult<R>);
  }

  /** Jobs outstanding: queued or being worked on. */
  async length(): Promise<number> {
    return Number(await this.redis.sendCommand(['XLEN', this.stream]));
  }

  private async reclaim(count: number): Promise<Job<T>[]> {
    const reply = (await this.redis.sendCommand(['XAUTOCLAIM', this.stream, GROUP, this.consumer, String(this.o.claimAfterMs), '0-0', 'COUNT', String(count)])) as [string, Entry[], string[]?];
    const claimed = (reply[1] ?? []).filter((e): e is Entry => Array.isArray(e) && Array.isArray(e[1]));
    const jobs: Job<T>[] = [];
    for (const e of claimed) {
      const pending = (await this.redis.sendCommand(['XPENDING', this.stream, GROUP, e[0], e[0], '1'])) as [string, string, number, number][];
      const delivery = Number(pending[0]?.[3] ?? 1);
      const job = jobOf<T>(e, delivery);
      if (delivery > this.o.maxDeliveries) {
        // It has taken a worker down with it before: fail it rather than take another.
        await this.complete(job, { id: job.id, ok: false, code: 'INTERRUPTED', message: `its worker stopped ${delivery - 1} times before finishing it` });
      } else jobs.push(job);
    }
    return jobs;
  }

  private resultKey(id: string): string {
    return `${this.o.prefix}:result:${id}`;
  }
}

function jobOf<T>([entry, fields]: Entry, delivery: number): Job<T> {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  return { entry, id: f.get('id') ?? '', payload: JSON.parse(f.get('p') ?? 'null') as T, delivery };
}

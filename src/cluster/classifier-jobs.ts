/**
 * The classifier as a pool of workers anywhere in a cluster: a node puts an image post on the
 * shared job queue (job-queue.ts) and waits for its one result; a worker (`roomcast
 * classifier --redis URL`, or a node with a model of its own) takes jobs, runs them through
 * its local ClassifierPool and records the result. The image's bytes travel through Redis
 * under the image's own key (cluster-images.ts), not in the job, so the queue stays small.
 *
 * Workers say they are alive in a sorted set (member: worker id and model, score: when its
 * lease ends), so a node knows whether anyone will answer before it queues a job.
 */
import type { LabelScore } from '../protocol/events.js';
import { ClassifierError } from '../classifier/errors.js';
import type { ClassifyResult } from '../classifier/pool.js';
import type { BotStatus } from '../protocol/events.js';
import { JobQueue, type Job, type JobResult } from './job-queue.js';
import { withDefaults, type CommandSender } from './redis-script.js';
import { imageBytesKey } from './cluster-images.js';

export interface ImageJob {
  image: number;
  name: string;
  top: number;
  /** Where the bytes are, base64. */
  key: string;
}

/** What a worker sends back: what the bot posts. */
export interface ImageAnswer {
  labels: LabelScore[];
  model?: string;
  timings: ClassifyResult['timings'];
  preview?: ClassifyResult['preview'];
}

export interface ClassifierJobsOptions {
  prefix?: string;
  /** Jobs outstanding in the cluster beyond which a post is answered busy. */
  maxQueued?: number;
  /** A job a worker took this long ago and did not finish is given to another (once). */
  claimAfterMs?: number;
  /** How long a node waits for a job's answer. */
  timeoutMs?: number;
  /** How long a worker's word that it is alive lasts. */
  leaseMs?: number;
}

export const CLASSIFIER_JOBS_DEFAULTS = { prefix: 'roomcast', maxQueued: 64, claimAfterMs: 30_000, timeoutMs: 60_000, leaseMs: 10_000 };


function queueOf(redis: CommandSender, consumer: string, o: typeof CLASSIFIER_JOBS_DEFAULTS): JobQueue<ImageJob, ImageAnswer> {
  return new JobQueue<ImageJob, ImageAnswer>(redis, consumer, { prefix: `${o.prefix}:classifier`, maxQueued: o.maxQueued, claimAfterMs: o.claimAfterMs });
}

const workersKey = (prefix: string): string => `${prefix}:classifier:workers`;

/** The node's side: queue a post's image and wait for its answer. */
export class RemoteClassifier {
  private readonly o: typeof CLASSIFIER_JOBS_DEFAULTS;
  readonly queue: JobQueue<ImageJob, ImageAnswer>;
  private readonly waiting = new Map<string, { resolve(r: ImageAnswer): void; reject(err: unknown): void; timer: NodeJS.Timeout }>();
  private poller: NodeJS.Timeout | null = null;
  private workers: { id: string; model: string }[] = [];
  private nextJob = 0;

  constructor(
    private readonly redis: CommandSender,
    /** This node's id: job ids start with it. */
    private readonly node: string,
    opts: ClassifierJobsOptions = {},
  ) {
    this.o = withDefaults(CLASSIFIER_JOBS_DEFAULTS, opts);
    this.queue = queueOf(redis, node, this.o);
  }

  /** Makes the queue; then, now and then, learns which workers are alive and asks for answers a lost channel message did not bring. */
  async start(): Promise<void> {
    await this.queue.init();
    await this.refresh();
    this.poller = setInterval(() => void this.refresh().catch(() => {}), 1000);
    this.poller.unref();
  }

  close(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    for (const [, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new ClassifierError('CLASSIFIER_CLOSED', 'the server is shutting down'));
    }
    this.waiting.clear();
  }

  /** A message on the queue's results channel (the cluster node subscribes to it). */
  resultArrived(message: string): void {
    try {
      this.settle(JSON.parse(message) as JobResult<ImageAnswer>);
    } catch {
      // not one of ours
    }
  }

  get channel(): string {
    return this.queue.channel;
  }

  status(nick: string): BotStatus {
    if (this.workers.length === 0)
      return { nick, state: 'off', reason: 'no classifier worker is running in the cluster: start one with roomcast classifier --redis URL' };
    const models = [...new Set(this.workers.map((w) => w.model))];
    return { nick, state: 'ready', reason: '', model: models.join(', '), workers: this.workers.length, queue: this.waiting.size, maxQueue: this.o.maxQueued };
  }

  /** `_bytes` are in Redis already: the node's image keeper put them there (cluster-images.ts). */
  async classify(_bytes: Uint8Array, opts: { name: string; top: number; image: number }): Promise<ImageAnswer> {
    if (this.workers.length === 0) throw new ClassifierError('CLASSIFIER_DOWN', 'no classifier worker is running in the cluster: start one with roomcast classifier --redis URL');
    const id = `${this.node}.${(this.nextJob++).toString(36)}`;
    const key = imageBytesKey(this.o.prefix, opts.image);
    const answered = new Promise<ImageAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new ClassifierError('CLASSIFIER_TIMEOUT', `no classifier worker answered within ${Math.round(this.o.timeoutMs / 1000)} s`));
      }, this.o.timeoutMs);
      timer.unref();
      this.waiting.set(id, { resolve, reject, timer });
    });
    let queued: Awaited<ReturnType<typeof this.queue.enqueue>>;
    try {
      queued = await this.queue.enqueue(id, { image: opts.image, name: opts.name, top: opts.top, key });
    } catch (err) {
      const why = (err as Error)?.message ?? String(err);
      this.settle({ id, ok: false, code: 'CLASSIFIER_DOWN', message: `the cluster's Redis does not answer (${why}): nothing is classified until it is back; post the image again then` });
      return answered;
    }
    if (queued === 'busy') this.settle({ id, ok: false, code: 'CLASSIFIER_BUSY', message: 'the classifier is busy, try again in a moment' });
    return answered;
  }

  private settle(result: JobResult<ImageAnswer>): void {
    const w = this.waiting.get(result.id);
    if (!w) return;
    this.waiting.delete(result.id);
    clearTimeout(w.timer);
    if (result.ok) w.resolve(result.value);
    else w.reject(new ClassifierError(result.code as ConstructorParameters<typeof ClassifierError>[0], result.message));
  }

  private async refresh(): Promise<void> {
    const now = Date.now();
    const live = (await this.redis.sendCommand(['ZRANGEBYSCORE', workersKey(this.o.prefix), String(now), '+inf'])) as string[];
    this.workers = live.map((m) => {
      const space = m.indexOf(' ');
      return { id: m.slice(0, space), model: m.slice(space + 1) };
    });
    // An answer whose channel message was lost (a subscriber reconnecting) is read instead.
    for (const id of [...this.waiting.keys()]) {
      const r = await this.queue.result(id);
      if (r) this.settle(r);
    }
  }
}

/** What a worker runs each image through: a ClassifierPool's classify(). */
export type Classify = (bytes: Uint8Array, opts: { name: string; top: number }) => Promise<ClassifyResult>;

/** The worker's side: take jobs, classify, record the answers. */
export class ClassifierWorker {
  private readonly o: typeof CLASSIFIER_JOBS_DEFAULTS;
  private readonly queue: JobQueue<ImageJob, ImageAnswer>;
  /** The same queue on the blocking connection, for take(). */
  private readonly takeQueue: JobQueue<ImageJob, ImageAnswer>;
  private running = false;
  private inFlight = 0;
  private loop: Promise<void> | null = null;
  private lease: NodeJS.Timeout | null = null;
  readonly stats = { done: 0, failed: 0, lost: 0 };

  constructor(
    /** For everything but the blocking read. */
    private readonly redis: CommandSender,
    /** A connection of its own: XREADGROUP ... BLOCK holds it while it waits. */
    blocking: CommandSender,
    readonly id: string,
    private readonly classify: Classify,
    private readonly model: string,
    /** Jobs worked on at once (the pool's workers times its batch, say). */
    private readonly concurrency: number,
    opts: ClassifierJobsOptions = {},
    private readonly failed: (err: unknown) => void = () => {},
  ) {
    this.o = withDefaults(CLASSIFIER_JOBS_DEFAULTS, opts);
    this.queue = queueOf(redis, id, this.o);
    this.takeQueue = queueOf(blocking, id, this.o);
  }

  async start(): Promise<void> {
    await this.queue.init();
    await this.renew();
    this.lease = setInterval(() => void this.renew().catch((err: unknown) => this.failed(err)), Math.max(100, Math.floor(this.o.leaseMs / 3)));
    this.lease.unref();
    this.running = true;
    this.loop = this.run();
  }

  /** Stops taking jobs, finishes those it has, and says it is gone. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.lease) clearInterval(this.lease);
    this.lease = null;
    await this.loop;
    await this.redis.sendCommand(['ZREM', workersKey(this.o.prefix), this.member]).catch(() => {});
  }

  private get member(): string {
    return `${this.id} ${this.model}`;
  }

  private async renew(): Promise<void> {
    const key = workersKey(this.o.prefix);
    await this.redis.sendCommand(['ZADD', key, String(Date.now() + this.o.leaseMs), this.member]);
    await this.redis.sendCommand(['ZREMRANGEBYSCORE', key, '-inf', String(Date.now())]);
  }

  private async run(): Promise<void> {
    while (this.running) {
      const room = this.concurrency - this.inFlight;
      if (room <= 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      let jobs: Job<ImageJob>[];
      try {
        jobs = await this.takeQueue.take(room, 1000);
      } catch (err) {
        this.failed(err);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const job of jobs) void this.work(job);
    }
    while (this.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private async work(job: Job<ImageJob>): Promise<void> {
    this.inFlight++;
    let result: JobResult<ImageAnswer>;
    try {
      const b64 = (await this.redis.sendCommand(['GET', job.payload.key])) as string | null;
      if (b64 === null) throw new ClassifierError('CLASSIFIER_DOWN', 'the image expired before a worker got to it');
      const r = await this.classify(Buffer.from(b64, 'base64'), { name: job.payload.name, top: job.payload.top });
      result = { id: job.id, ok: true, value: { labels: r.labels, model: this.model, timings: r.timings, ...(r.preview ? { preview: r.preview } : {}) } };
      this.stats.done++;
    } catch (err) {
      const e = err instanceof ClassifierError ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: 'the classifier failed unexpectedly' };
      result = { id: job.id, ok: false, ...e };
      this.stats.failed++;
    }
    try {
      // The bytes stay for GET /api/images/{id} until they expire.
      if (!(await this.queue.complete(job, result))) this.stats.lost++; // another worker answered first (this one was slow, and it was claimed again)
    } catch (err) {
      this.failed(err);
    } finally {
      this.inFlight--;
    }
  }
}

/**
 * ClassifierPool: a few worker processes, each with its own onnxruntime session, fed from one
 * bounded queue by a dynamic batcher.
 *
 * It lives in the hub's process, so it must never block that event loop: it reads no files per
 * job, decodes nothing, and only moves bytes to workers. Everything that can hang or
 * crash (decoders, the model) runs in the workers, and the pool replaces a worker that does.
 *
 * Batching works like Triton's dynamic batcher: a batch leaves for an idle worker as soon as it
 * is full (maxBatch) or its oldest image has waited maxQueueDelayMs. Under load, images pile up
 * while every worker is busy, so batches fill by themselves and the delay never applies; and
 * images submitted in the same event-loop turn always leave together.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { accessSync, constants as fsConstants } from 'node:fs';
import { EventEmitter } from 'node:events';
import { cpus, setPriority } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassifierError, fromWire } from './errors.js';
import { IMAGE_FD, type FromWorker, type JobReply, type ToWorker, type WorkerOptions } from './ipc.js';
import type { ImagePreview, LabelScore, ModelInfo, ThreadOptions } from './image-classifier.js';
import { checkBytes, PREPROCESS_DEFAULTS, type PreprocessOptions } from './preprocess.js';

export type PoolState = 'loading' | 'ready' | 'down';

export interface PoolOptions {
  model: string;
  labels: string;
  /** Worker processes. Default: defaultPoolSize(). */
  size?: number;
  /** Images waiting for a worker; beyond it classify() fails at once with CLASSIFIER_BUSY. */
  maxQueue?: number;
  /** Images per batch (one run() of the model). */
  maxBatch?: number;
  /** How long the oldest waiting image may wait for a batch to fill. 0: dispatch at once. */
  maxQueueDelayMs?: number;
  /**
   * A job's deadline from classify(); also how long one batch may run before its worker is
   * taken for hung, killed and replaced.
   */
  timeoutMs?: number;
  /** Labels per image unless classify() says otherwise. */
  top?: number;
  /** Image limits, checked in the workers (the byte limit also here, before any IPC). */
  preprocess?: Partial<PreprocessOptions>;
  threads?: ThreadOptions;
  /** First delay before replacing a crashed worker; doubles with each crash in a row. */
  restartDelayMs?: number;
  restartDelayMaxMs?: number;
  /** Crashes in a row (no batch finished in between) after which the pool gives up: 'down'. */
  maxCrashes?: number;
  /** How long a worker may take to start and load the model. */
  loadTimeoutMs?: number;
  /**
   * Scheduling niceness of the workers (0-19; 0: the hub's own priority). See POOL_DEFAULTS.
   */
  niceness?: number;
  /**
   * Run the workers under the SCHED_IDLE policy (Linux, through util-linux's chrt) when this
   * machine has chrt; niceness applies where it has not. See POOL_DEFAULTS.
   */
  schedIdle?: boolean;
  /** The worker entry point; by default the compiled worker.js beside this module. */
  workerScript?: string;
}

export interface ClassifyOptions {
  /** How errors name the image (a file name, "alice's photo"). */
  name?: string;
  top?: number;
}

export interface ClassifyResult {
  name: string;
  labels: LabelScore[];
  /** How many images were decoded and run together with this one. */
  batchSize: number;
  width: number;
  height: number;
  /** A thumbnail fitted inside preprocess.previewSize (default 32x32), when the worker made one. */
  preview?: ImagePreview;
  /** PID of the worker that answered. */
  worker: number;
  timings: {
    /** classify() until a worker got the image. */
    queueMs: number;
    decodeMs: number;
    inferenceMs: number;
    /** classify() until the answer. */
    totalMs: number;
  };
}

export interface PoolStats {
  state: PoolState;
  reason: string;
  size: number;
  workers: { pid: number | undefined; state: WorkerState; batches: number }[];
  queueDepth: number;
  inFlight: number;
  jobsDone: number;
  jobsFailed: number;
  jobsRetried: number;
  timeouts: number;
  busyRejections: number;
  crashes: number;
  restarts: number;
  batches: number;
  /** Batch size -> how many batches of that size were sent. */
  batchSizes: Record<number, number>;
  lastBatchSize: number;
}

export interface WorkerEvent {
  pid: number | undefined;
  event: 'ready' | 'exit' | 'killed' | 'restarting';
  detail: string;
}

/** A batch sent to a worker. */
export interface BatchEvent {
  pid: number | undefined;
  size: number;
  /** Holds a job retried after a crash. */
  retry: boolean;
}

type WorkerState = 'starting' | 'idle' | 'busy' | 'dead';

interface Job {
  id: number;
  bytes: Uint8Array;
  name: string;
  top: number;
  enqueuedAt: number;
  dispatchedAt: number;
  /** Times this job was sent to a worker. */
  attempts: number;
  settled: boolean;
  deadline: NodeJS.Timeout;
  resolve: (r: ClassifyResult) => void;
  reject: (e: ClassifierError) => void;
}

interface Worker {
  child: ChildProcess;
  /** The worker's image pipe (its fd 4): each job's raw bytes, in the order of the batches. */
  images: Writable;
  pid: number | undefined;
  state: WorkerState;
  batches: number;
  batch?: { id: number; jobs: Map<number, Job>; timer: NodeJS.Timeout };
  loadTimer?: NodeJS.Timeout;
  /** Why we killed it, if we did; reported instead of the bare signal. */
  killedBecause?: string;
  info?: ModelInfo;
}

/**
 * One worker per core left after the hub's, and at most two. The hub is single-threaded and
 * must stay responsive, so it keeps a core: on the usual 2-core box that leaves one worker.
 * Beyond two, a chat bot gains nothing: photos in a chat come a few at a time, and each worker
 * holds its own model and decode buffers (about 50-100 MB).
 */
export function defaultPoolSize(cores = cpus().length): number {
  return Math.max(1, Math.min(2, cores - 1));
}

export const POOL_DEFAULTS = Object.freeze({
  // 32 images of up to 8 MiB is the worst case the hub holds for the queue: 256 MiB.
  maxQueue: 32,
  // A batch saves little per image in run(), but it is one IPC round trip instead of one per image, and bursts (someone posts an album)
  // drain in a few batches. Larger batches only raise the latency of the first image in them.
  maxBatch: 8,
  // No timed wait by default. Images that arrive in the same event-loop turn leave together
  // anyway (scheduleSoon), and under load batches fill while every worker is busy. A timed
  // wait only delays the lone photo, which is the common case in a chat, for no throughput
  // gain, since decoding, not run(), dominates. Raise it for a model where batching pays.
  maxQueueDelayMs: 0,
  timeoutMs: 10_000,
  top: 5,
  restartDelayMs: 250,
  restartDelayMaxMs: 10_000,
  maxCrashes: 5,
  loadTimeoutMs: 30_000,
  // Workers are batch work, the hub is interactive: when both want the CPU (on 2 cores, a
  // saturated worker plus anything else), the kernel should run the hub first; a worker still
  // gets every cycle nobody else wants.
  niceness: 10,
  // Niceness lowers a worker's share, but a hub that wakes for one chat line may still wait for
  // the kernel's wake-up granularity behind it. A SCHED_IDLE task is preempted at once by any
  // normal one, and it is not starved any more than at niceness 19 (its weight is 3 against
  // 15). The figures behind these defaults are in docs/performance.md.
  schedIdle: true,
});

/** util-linux's chrt, if this machine has it (Linux only): looked up once. */
let chrtPath: string | null | undefined;
function findChrt(): string | null {
  if (chrtPath !== undefined) return chrtPath;
  chrtPath = null;
  if (process.platform !== 'linux') return chrtPath;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat('/usr/bin', '/bin')) {
    const candidate = path.join(dir || '.', 'chrt');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return (chrtPath = candidate);
    } catch {
      // not here
    }
  }
  return chrtPath;
}

function defaultWorkerScript(): string {
  return fileURLToPath(new URL('./worker.js', import.meta.url));
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

/**
 * Events: 'state' (state: PoolState, reason: string) when the state or its reason changes;
 * 'worker' (WorkerEvent) when a worker is ready, killed, exits or is being replaced;
 * 'batch' (BatchEvent) when a batch is sent to a worker.
 */
export class ClassifierPool extends EventEmitter {
  readonly options: Required<Omit<PoolOptions, 'preprocess' | 'threads' | 'workerScript'>> &
    Pick<PoolOptions, 'preprocess' | 'threads'> & { workerScript: string };

  private readonly maxBytes: number;
  private readonly workers: Worker[] = [];
  private readonly queue: Job[] = [];
  private nextJob = 1;
  private nextBatch = 1;
  private delayTimer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private crashesInARow = 0;
  private closed = false;
  private _state: PoolState = 'loading';
  private _reason = '';
  private _info: ModelInfo | undefined;
  private readonly counters = {
    jobsDone: 0,
    jobsFailed: 0,
    jobsRetried: 0,
    timeouts: 0,
    busyRejections: 0,
    crashes: 0,
    restarts: 0,
    batches: 0,
    lastBatchSize: 0,
  };
  private readonly batchSizes: Record<number, number> = {};

  constructor(options: PoolOptions) {
    super();
    this.options = {
      ...POOL_DEFAULTS,
      size: defaultPoolSize(),
      ...stripUndefined(options),
      workerScript: options.workerScript ?? defaultWorkerScript(),
    };
    const o = this.options;
    for (const key of ['size', 'maxQueue', 'maxBatch', 'timeoutMs', 'maxCrashes', 'top'] as const) {
      if (!Number.isInteger(o[key]) || o[key] < 1) throw new RangeError(`${key} must be a whole number >= 1, got ${o[key]}`);
    }
    for (const key of ['maxQueueDelayMs', 'restartDelayMs', 'restartDelayMaxMs', 'loadTimeoutMs'] as const) {
      if (!(o[key] >= 0)) throw new RangeError(`${key} must be a number >= 0, got ${o[key]}`);
    }
    if (!Number.isInteger(o.niceness) || o.niceness < 0 || o.niceness > 19) throw new RangeError(`niceness must be a whole number from 0 to 19, got ${o.niceness}`);
    this.maxBytes = options.preprocess?.maxBytes ?? PREPROCESS_DEFAULTS.maxBytes;
    this._reason = `starting ${o.size} worker${o.size === 1 ? '' : 's'} with ${path.basename(o.model)}`;
    for (let i = 0; i < o.size; i++) this.spawn();
  }

  get state(): PoolState {
    return this._state;
  }

  get reason(): string {
    return this._reason;
  }

  /** The model file the workers load. */
  get modelPath(): string {
    return this.options.model;
  }

  /** Images that may wait before classify() answers CLASSIFIER_BUSY. */
  get maxQueue(): number {
    return this.options.maxQueue;
  }

  /** Input name, shape, classes... of the model, once a worker has loaded it. */
  get modelInfo(): ModelInfo | undefined {
    return this._info;
  }

  /** Resolves when a worker is ready; rejects with the reason when the pool is down. */
  ready(): Promise<void> {
    if (this._state === 'ready') return Promise.resolve();
    if (this._state === 'down') return Promise.reject(new ClassifierError('CLASSIFIER_DOWN', this._reason));
    return new Promise((resolve, reject) => {
      const onState = (state: PoolState, reason: string): void => {
        if (state === 'loading') return;
        this.off('state', onState);
        if (state === 'ready') resolve();
        else reject(new ClassifierError('CLASSIFIER_DOWN', reason));
      };
      this.on('state', onState);
    });
  }

  classify(bytes: Uint8Array, opts: ClassifyOptions = {}): Promise<ClassifyResult> {
    const name = opts.name ?? 'the file';
    if (this.closed) return Promise.reject(new ClassifierError('CLASSIFIER_CLOSED', 'the classifier has been shut down'));
    if (this._state === 'down') return Promise.reject(new ClassifierError('CLASSIFIER_DOWN', `the classifier is not available: ${this._reason}`));
    try {
      // Only the length: cheap, and it saves shipping a huge upload to a worker to refuse it.
      checkBytes(bytes, name, this.maxBytes);
    } catch (err) {
      this.counters.jobsFailed++;
      return Promise.reject(err);
    }
    if (this.queue.length >= this.options.maxQueue) {
      this.counters.busyRejections++;
      return Promise.reject(new ClassifierError('CLASSIFIER_BUSY', 'the classifier is busy, try again in a moment'));
    }
    return new Promise<ClassifyResult>((resolve, reject) => {
      const job: Job = {
        id: this.nextJob++,
        bytes,
        name,
        top: opts.top ?? this.options.top,
        enqueuedAt: performance.now(),
        dispatchedAt: 0,
        attempts: 0,
        settled: false,
        deadline: setTimeout(() => this.expire(job), this.options.timeoutMs),
        resolve,
        reject,
      };
      this.queue.push(job);
      this.scheduleSoon();
    });
  }

  stats(): PoolStats {
    let inFlight = 0;
    for (const w of this.workers) for (const j of w.batch?.jobs.values() ?? []) if (!j.settled) inFlight++;
    return {
      state: this._state,
      reason: this._reason,
      size: this.options.size,
      workers: this.workers.map((w) => ({ pid: w.pid, state: w.state, batches: w.batches })),
      queueDepth: this.queue.length,
      inFlight,
      ...this.counters,
      batchSizes: { ...this.batchSizes },
    };
  }

  /** PIDs of the live worker processes (for operators, and for tests that kill one). */
  pids(): number[] {
    return this.workers.filter((w) => w.state !== 'dead' && w.pid !== undefined).map((w) => w.pid!);
  }

  /** Answers everything still pending with CLASSIFIER_CLOSED and ends the workers by PID. */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.delayTimer);
    if (this.soon) clearImmediate(this.soon);
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    const closedError = new ClassifierError('CLASSIFIER_CLOSED', 'the classifier has been shut down');
    for (const job of this.queue.splice(0)) this.fail(job, closedError);
    for (const w of this.workers) for (const job of w.batch?.jobs.values() ?? []) this.fail(job, closedError);
    await Promise.all(this.workers.map((w) => this.stopWorker(w, graceMs)));
    this.workers.length = 0;
  }

  // ---- workers -------------------------------------------------------------------------

  private spawn(): void {
    const o = this.options;
    // chrt sets the policy and then execs node, so every thread the worker starts inherits it;
    // the IPC channel's descriptor passes through the exec untouched.
    const chrt = o.schedIdle ? findChrt() : null;
    const child = fork(o.workerScript, [], {
      serialization: 'advanced',
      // fd 4 carries image bytes as they are: through the IPC channel each image would be
      // copied into a serializer buffer that grows by doubling, a megabyte of short-lived
      // memory per batch in the hub, and scavenges that delay chat (see ipc.ts).
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      // Not the parent's flags (an --inspect port would clash); NODE_OPTIONS still applies.
      execArgv: chrt ? ['--idle', '0', process.execPath] : [],
      ...(chrt ? { execPath: chrt } : {}),
    });
    // Set on the main thread before the worker starts its thread pools, which inherit it.
    if (!chrt && o.niceness > 0 && child.pid !== undefined) {
      try {
        setPriority(child.pid, o.niceness);
      } catch {
        // not permitted here: the worker runs at the hub's priority
      }
    }
    const images = child.stdio[IMAGE_FD] as Writable;
    // A worker that dies leaves a broken pipe: its 'exit' does the cleaning up.
    images.on('error', () => {});
    const worker: Worker = { child, images, pid: child.pid, state: 'starting', batches: 0 };
    this.workers.push(worker);
    child.on('message', (msg: FromWorker) => this.onMessage(worker, msg));
    child.on('exit', (code, signal) => this.onExit(worker, describeExit(code, signal)));
    // A failed spawn emits 'error' and, when there was no process, no 'exit'.
    child.on('error', (err) => {
      if (child.pid === undefined) this.onExit(worker, `could not start: ${err.message}`);
    });
    worker.loadTimer = setTimeout(() => this.kill(worker, `did not load the model within ${o.loadTimeoutMs} ms`), o.loadTimeoutMs);
    const options: WorkerOptions = {
      threads: o.threads,
      preprocess: o.preprocess,
      top: o.top,
    };
    this.send(worker, { type: 'load', model: o.model, labels: o.labels, options });
  }

  private send(worker: Worker, msg: ToWorker): void {
    if (!worker.child.connected) return; // 'exit' is on its way and will clean up
    worker.child.send(msg, (err) => {
      if (err) this.kill(worker, `IPC failed: ${err.message}`);
    });
  }

  private onMessage(worker: Worker, msg: FromWorker): void {
    if (worker.state === 'dead' || this.closed) return;
    switch (msg.type) {
      case 'ready':
        clearTimeout(worker.loadTimer);
        worker.state = 'idle';
        worker.info = msg.info;
        this._info ??= msg.info;
        this.emit('worker', { pid: worker.pid, event: 'ready', detail: `loaded in ${Math.round(msg.info.loadMs)} ms` } satisfies WorkerEvent);
        this.updateState();
        this.schedule();
        return;
      case 'fatal':
        // The model or labels are missing or broken: every worker would fail the same way,
        // so restarting is pointless.
        clearTimeout(worker.loadTimer);
        this.goDown(msg.message);
        return;
      case 'result':
        this.onResult(worker, msg);
        return;
      case 'done': {
        const batch = worker.batch;
        if (!batch || batch.id !== msg.batch) return;
        clearTimeout(batch.timer);
        worker.batch = undefined;
        worker.state = 'idle';
        worker.batches++;
        this.crashesInARow = 0;
        for (const job of batch.jobs.values()) {
          this.fail(job, new ClassifierError('INTERNAL', `the worker did not answer for ${job.name}`));
        }
        this.updateState();
        this.schedule();
        return;
      }
    }
  }

  private onResult(worker: Worker, msg: JobReply): void {
    const job = worker.batch?.jobs.get(msg.id);
    if (!job || worker.batch!.id !== msg.batch) return;
    worker.batch!.jobs.delete(msg.id);
    if (job.settled) return; // timed out meanwhile; the answer is no longer wanted
    if (!msg.ok) {
      this.fail(job, fromWire(msg.code, msg.message));
      return;
    }
    job.settled = true;
    clearTimeout(job.deadline);
    this.counters.jobsDone++;
    const now = performance.now();
    job.resolve({
      name: job.name,
      labels: msg.labels,
      batchSize: msg.batchSize,
      width: msg.width,
      height: msg.height,
      ...(msg.preview ? { preview: msg.preview } : {}),
      worker: worker.pid ?? 0,
      timings: {
        queueMs: job.dispatchedAt - job.enqueuedAt,
        decodeMs: msg.timings.decodeMs,
        inferenceMs: msg.timings.inferenceMs,
        totalMs: now - job.enqueuedAt,
      },
    });
  }

  private onExit(worker: Worker, how: string): void {
    if (worker.state === 'dead') return;
    worker.state = 'dead';
    clearTimeout(worker.loadTimer);
    const index = this.workers.indexOf(worker);
    if (index >= 0) this.workers.splice(index, 1);
    const batch = worker.batch;
    worker.batch = undefined;
    if (batch) clearTimeout(batch.timer);
    if (this.closed || this._state === 'down') return;

    const detail = worker.killedBecause ? `${worker.killedBecause} (${how})` : how;
    this.counters.crashes++;
    this.crashesInARow++;
    this.emit('worker', { pid: worker.pid, event: 'exit', detail } satisfies WorkerEvent);

    // Its unanswered jobs get one more try, each alone in its batch so that an image that
    // kills workers takes down no neighbours the second time. After that: CLASSIFIER_CRASHED.
    const retry: Job[] = [];
    for (const job of batch?.jobs.values() ?? []) {
      if (job.settled) continue;
      if (job.attempts < 2) retry.push(job);
      else this.fail(job, new ClassifierError('CLASSIFIER_CRASHED', `the classifier crashed twice while working on ${job.name}; giving up on it`));
    }
    this.counters.jobsRetried += retry.length;
    this.queue.unshift(...retry);

    if (this.crashesInARow >= this.options.maxCrashes) {
      this.goDown(`workers keep crashing (${this.crashesInARow} in a row; last: ${detail})`);
      return;
    }
    const delay = Math.min(this.options.restartDelayMaxMs, this.options.restartDelayMs * 2 ** (this.crashesInARow - 1));
    this.emit('worker', { pid: worker.pid, event: 'restarting', detail: `replacing it in ${delay} ms` } satisfies WorkerEvent);
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (this.closed || this._state === 'down') return;
      this.counters.restarts++;
      this.spawn();
    }, delay);
    this.restartTimers.add(timer);
    this.updateState(`restarting: a worker ${detail}`);
    this.schedule();
  }

  /** Ends a worker by PID; 'exit' then does the bookkeeping (retries, replacement). */
  private kill(worker: Worker, because: string): void {
    if (worker.state === 'dead') return;
    worker.killedBecause ??= because;
    this.emit('worker', { pid: worker.pid, event: 'killed', detail: because } satisfies WorkerEvent);
    if (worker.pid !== undefined) {
      try {
        process.kill(worker.pid, 'SIGKILL');
      } catch {
        // already gone; 'exit' follows
      }
    }
  }

  private stopWorker(worker: Worker, graceMs: number): Promise<void> {
    const child = worker.child;
    if (child.exitCode !== null || child.signalCode !== null || worker.pid === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(force);
        resolve();
      };
      child.once('exit', done);
      const force = setTimeout(() => {
        try {
          process.kill(worker.pid!, 'SIGKILL');
        } catch {
          resolve();
        }
      }, graceMs);
      try {
        process.kill(worker.pid!, 'SIGTERM');
      } catch {
        done();
      }
    });
  }

  // ---- jobs and batches ----------------------------------------------------------------

  /**
   * Batching at no cost in latency: images submitted in the same turn of the event loop (an
   * album posted in one message, several messages read from one socket read) are dispatched
   * together, at the end of that turn, before any timer.
   */
  private scheduleSoon(): void {
    if (this.soon) return;
    this.soon = setImmediate(() => {
      this.soon = undefined;
      this.schedule();
    });
  }

  private schedule(): void {
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    if (this.closed || this._state === 'down') return;
    while (this.queue.length > 0) {
      const idle = this.workers.filter((w) => w.state === 'idle');
      if (idle.length === 0) return; // the next 'done' or 'ready' calls schedule() again
      const oldest = this.queue[0]!;
      const waited = performance.now() - oldest.enqueuedAt;
      const full = this.queue.length >= this.options.maxBatch;
      if (!full && oldest.attempts === 0 && waited < this.options.maxQueueDelayMs) {
        this.delayTimer = setTimeout(() => this.schedule(), this.options.maxQueueDelayMs - waited);
        return;
      }
      this.dispatch(idle[0]!, this.takeBatch(idle.length));
    }
  }

  /**
   * The next batch: up to maxBatch images, but spread over the idle workers when there are
   * fewer images than that, since two workers decode two half batches in half the time.
   * A retried job always travels alone.
   */
  private takeBatch(idleWorkers: number): Job[] {
    if (this.queue[0]!.attempts > 0) return [this.queue.shift()!];
    const fresh = this.queue.findIndex((j) => j.attempts > 0);
    const available = fresh === -1 ? this.queue.length : fresh;
    const n = Math.min(this.options.maxBatch, Math.max(1, Math.ceil(available / idleWorkers)));
    return this.queue.splice(0, n);
  }

  private dispatch(worker: Worker, jobs: Job[]): void {
    const id = this.nextBatch++;
    const now = performance.now();
    const map = new Map<number, Job>();
    for (const job of jobs) {
      job.attempts++;
      job.dispatchedAt = now;
      map.set(job.id, job);
    }
    worker.state = 'busy';
    worker.batch = {
      id,
      jobs: map,
      timer: setTimeout(() => this.kill(worker, `hung: no answer to a batch of ${jobs.length} within ${this.options.timeoutMs} ms`), this.options.timeoutMs),
    };
    this.counters.batches++;
    this.counters.lastBatchSize = jobs.length;
    this.batchSizes[jobs.length] = (this.batchSizes[jobs.length] ?? 0) + 1;
    this.emit('batch', { pid: worker.pid, size: jobs.length, retry: jobs.some((j) => j.attempts > 1) } satisfies BatchEvent);
    this.send(worker, {
      type: 'batch',
      batch: id,
      jobs: jobs.map((j) => ({ id: j.id, size: j.bytes.byteLength, name: j.name, top: j.top })),
    });
    // No copy: the pipe writes from the image's own memory, as much as fits now, the rest later.
    if (worker.child.connected) for (const job of jobs) worker.images.write(job.bytes);
  }

  private expire(job: Job): void {
    if (job.settled) return;
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    this.counters.timeouts++;
    this.fail(job, new ClassifierError('CLASSIFIER_TIMEOUT', `classifying ${job.name} took longer than ${this.options.timeoutMs / 1000} s`));
  }

  private fail(job: Job, err: ClassifierError): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.deadline);
    this.counters.jobsFailed++;
    job.reject(err);
  }

  // ---- state ---------------------------------------------------------------------------

  private updateState(reason?: string): void {
    if (this._state === 'down') return;
    const live = this.workers.some((w) => w.state === 'idle' || w.state === 'busy');
    const info = this._info;
    this.setState(
      live ? 'ready' : 'loading',
      live ? `${this.workers.filter((w) => w.state === 'idle' || w.state === 'busy').length} of ${this.options.size} workers ready${info ? ` (${path.basename(info.model)})` : ''}` : (reason ?? this._reason),
    );
  }

  private goDown(reason: string): void {
    if (this._state === 'down') return;
    this.setState('down', reason);
    clearTimeout(this.delayTimer);
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    const err = new ClassifierError('CLASSIFIER_DOWN', `the classifier is not available: ${reason}`);
    for (const job of this.queue.splice(0)) this.fail(job, err);
    for (const w of this.workers) {
      for (const job of w.batch?.jobs.values() ?? []) this.fail(job, err);
      void this.stopWorker(w, 1000);
    }
  }

  private setState(state: PoolState, reason: string): void {
    const changed = state !== this._state || reason !== this._reason;
    this._state = state;
    this._reason = reason;
    if (changed) this.emit('state', state, reason);
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}


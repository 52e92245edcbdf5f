/**
 * Image posters on a thread of their own (worker_threads), for the scenarios that measure chat
 * while images are posted: the chat clients then have this process's event loop to themselves,
 * so what their latencies show is the server, not the generator parsing image answers and
 * writing image bytes.
 *
 * The posters keep `concurrency` images in flight while posting is on; pause() stops them and
 * resolves once the images in flight are answered (the queue has drained). Counters are shared
 * memory, readable at any time.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ImagePosters } from './images.js';

interface ThreadData {
  kind: 'roomcast-bench-posters';
  port: number;
  room: string;
  posters: number;
  concurrency: number;
  images: Uint8Array[];
  counters: SharedArrayBuffer;
  maxPosts: number;
}

type ToThread = { type: 'post' } | { type: 'pause' };
type FromThread = { type: 'ready' } | { type: 'paused' } | { type: 'failed'; message: string };

const POSTED = 0;
const ANSWERED = 1;
/** Answered with an error (CLASSIFIER_BUSY and the like). */
const REFUSED = 2;
/** Timed out or lost their connection. */
const FAILED = 3;

export interface PosterCounts {
  posted: number;
  answered: number;
  refused: number;
  failed: number;
}

/** The main thread's side. */
export class PosterThread {
  private readonly counters: Int32Array;
  private onPaused: (() => void) | null = null;
  private failure: string | null = null;

  private constructor(
    private readonly worker: Worker,
    buffer: SharedArrayBuffer,
  ) {
    this.counters = new Int32Array(buffer);
  }

  /** Starts the thread and connects its posters (and their observer) to `room`. */
  static async start(opts: { port: number; room: string; posters: number; concurrency: number; images: Uint8Array[]; maxPosts?: number }): Promise<PosterThread> {
    const counters = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
    const data: ThreadData = { kind: 'roomcast-bench-posters', ...opts, counters, maxPosts: opts.maxPosts ?? 1_000_000 };
    const worker = new Worker(new URL(import.meta.url), { workerData: data });
    const t = new PosterThread(worker, counters);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the poster thread was not ready within 15 s')), 15_000);
        worker.on('message', (m: FromThread) => {
          if (m.type === 'ready') {
            clearTimeout(timer);
            resolve();
          } else if (m.type === 'paused') t.onPaused?.();
          else if (m.type === 'failed') {
            t.failure ??= m.message;
            clearTimeout(timer);
            reject(new Error(m.message));
            t.onPaused?.();
          }
        });
        worker.on('error', (err) => {
          t.failure ??= err.message;
          clearTimeout(timer);
          reject(err);
          t.onPaused?.();
        });
      });
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return t;
  }

  counts(): PosterCounts {
    const c = this.counters;
    return { posted: Atomics.load(c, POSTED), answered: Atomics.load(c, ANSWERED), refused: Atomics.load(c, REFUSED), failed: Atomics.load(c, FAILED) };
  }

  /** Why the posters stopped on their own, if they did. */
  get failed(): string | null {
    return this.failure;
  }

  post(): void {
    this.worker.postMessage({ type: 'post' } satisfies ToThread);
  }

  /** Stops posting; resolves when the images in flight are answered (or after `timeoutMs`). */
  pause(timeoutMs = 35_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.onPaused = null;
        resolve();
      }
      this.onPaused = done;
      this.worker.postMessage({ type: 'pause' } satisfies ToThread);
    });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}

/** The thread's side. */
async function runThread(data: ThreadData, port: NonNullable<typeof parentPort>): Promise<void> {
  const counters = new Int32Array(data.counters);
  const posters = await ImagePosters.connect(data.port, { room: data.room, posters: data.posters });
  let posting = false;
  let lanes: Promise<void> = Promise.resolve();
  const lane = async (): Promise<void> => {
    while (posting && Atomics.load(counters, POSTED) < data.maxPosts) {
      const i = Atomics.add(counters, POSTED, 1);
      try {
        const o = await posters.post(data.images[i % data.images.length]!, 'photo.jpg');
        Atomics.add(counters, o.ok ? ANSWERED : REFUSED, 1);
        if (!o.ok) await new Promise((r) => setTimeout(r, 5)); // the queue was full: keep going, gently
      } catch (err) {
        Atomics.add(counters, FAILED, 1);
        posting = false;
        port.postMessage({ type: 'failed', message: (err as Error).message } satisfies FromThread);
        return;
      }
    }
  };
  port.on('message', (m: ToThread) => {
    if (m.type === 'post' && !posting) {
      posting = true;
      lanes = Promise.all(Array.from({ length: data.concurrency }, lane)).then(() => undefined);
    } else if (m.type === 'pause') {
      posting = false;
      void lanes.then(() => port.postMessage({ type: 'paused' } satisfies FromThread));
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromThread);
}

if (!isMainThread && parentPort && (workerData as ThreadData | undefined)?.kind === 'roomcast-bench-posters') {
  const port = parentPort;
  runThread(workerData as ThreadData, port).catch((err) => port.postMessage({ type: 'failed', message: String((err as Error)?.message ?? err) } satisfies FromThread));
}

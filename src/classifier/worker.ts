/**
 * A classifier worker: a child process started by the pool with child_process.fork. Decoding
 * untrusted images and running the model happen here, never in the hub's process, so a slow
 * or crashing decoder cannot stall or take down the chat.
 *
 * Protocol (see ipc.ts): 'load' once, answered by 'ready' or 'fatal'; then 'batch' messages,
 * one at a time, each answered by one 'result' per job and a closing 'done'. The images' bytes
 * come on the image pipe (fd 4), in the order of the jobs.
 */
import net from 'node:net';
import { ClassifierError, errorCode, errorMessage } from './errors.js';
import { IMAGE_FD, type FromWorker, type ToWorker, type WorkerOptions } from './ipc.js';
import { ImageClassifier } from './image-classifier.js';
import { tuneSharpForWorker } from './preprocess.js';

if (!process.send) {
  console.error('roomcast classifier worker: start me with child_process.fork (I need an IPC channel)');
  process.exit(2);
}

const send = (msg: FromWorker): void => {
  process.send!(msg);
};

tuneSharpForWorker(1);

let classifier: ImageClassifier | undefined;
let options: WorkerOptions = {};
// Messages are handled in order: a batch must not start before 'load' has finished.
let queue: Promise<void> = Promise.resolve();

/** The image pipe: bytes arrive as the pool writes them and are taken image by image. */
class ImageBytes {
  private chunks: Buffer[] = [];
  private have = 0;
  private wanted: { size: number; resolve: (b: Buffer) => void } | null = null;

  constructor(pipe: net.Socket) {
    pipe.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.have += chunk.length;
      this.serve();
    });
  }

  /** The next `size` bytes; one taker at a time (batches are handled in order). */
  take(size: number): Promise<Buffer> {
    return new Promise((resolve) => {
      this.wanted = { size, resolve };
      this.serve();
    });
  }

  private serve(): void {
    const w = this.wanted;
    if (w === null || this.have < w.size) return;
    this.wanted = null;
    // Only this image's chunks are joined: the next images' bytes stay where they are.
    const parts: Buffer[] = [];
    let need = w.size;
    while (need > 0) {
      const chunk = this.chunks[0]!;
      if (chunk.length <= need) {
        parts.push(chunk);
        this.chunks.shift();
        need -= chunk.length;
      } else {
        parts.push(chunk.subarray(0, need));
        this.chunks[0] = chunk.subarray(need);
        need = 0;
      }
    }
    this.have -= w.size;
    w.resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, w.size));
  }
}

const images = new ImageBytes(new net.Socket({ fd: IMAGE_FD, readable: true, writable: false }));

async function load(msg: Extract<ToWorker, { type: 'load' }>): Promise<void> {
  options = msg.options ?? {};
  try {
    classifier = await ImageClassifier.load({
      model: msg.model,
      labels: msg.labels,
      threads: options.threads,
      preprocess: options.preprocess,
    });
    send({ type: 'ready', info: classifier.info });
  } catch (err) {
    send({ type: 'fatal', code: errorCode(err), message: errorMessage(err) });
  }
}

async function runBatch(msg: Extract<ToWorker, { type: 'batch' }>): Promise<void> {
  const { batch, jobs } = msg;
  // Taken first, even for a batch that cannot run, so the pipe stays in step with the jobs.
  const bytes: Buffer[] = [];
  for (const j of jobs) bytes.push(await images.take(j.size));
  if (!classifier) {
    const err = new ClassifierError('INTERNAL', 'batch before the model was loaded');
    for (const j of jobs) send({ type: 'result', batch, id: j.id, ok: false, code: err.code, message: err.message });
    send({ type: 'done', batch });
    return;
  }
  const outcomes = await classifier.classify(
    jobs.map((j, i) => ({ bytes: bytes[i]!, name: j.name, top: j.top ?? options.top })),
    options.top,
  );
  outcomes.forEach((o, i) => send({ type: 'result', batch, id: jobs[i]!.id, ...o }));
  send({ type: 'done', batch });
}

process.on('message', (msg: ToWorker) => {
  queue = queue.then(() => (msg.type === 'load' ? load(msg) : msg.type === 'batch' ? runBatch(msg) : undefined)).catch((err) => {
    // A bug, not a bad image (those are answered per job): let the pool see a crash and retry.
    console.error('roomcast classifier worker:', err);
    process.exit(1);
  });
});

// The pool went away (closed or crashed): nothing left to answer to.
process.on('disconnect', () => process.exit(0));

// Ctrl-C in a terminal signals the whole foreground process group, this worker included. The
// hub decides when its workers stop (it closes the pool as it shuts down, or this worker sees
// the disconnect if the hub is gone); dying here would look like a crash and be replaced.
process.on('SIGINT', () => {});

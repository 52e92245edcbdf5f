/**
 * A classifier worker: a child process started by the pool with child_process.fork. Decoding
 * untrusted images and running the model happen here, never in the hub's process, so a slow
 * or crashing decoder cannot stall or take down the chat.
 *
 * Protocol (see ipc.ts): 'load' once, answered by 'ready' or 'fatal'; then 'batch' messages,
 * one at a time, each answered by one 'result' per job and a closing 'done'.
 */
import { ClassifierError, errorCode, errorMessage } from './errors.js';
import type { FromWorker, JobMessage, ToWorker, WorkerOptions } from './ipc.js';
import { ImageClassifier } from './model.js';
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

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hangIfAsked(jobs: JobMessage[]): void {
  const marker = options.hangForTesting;
  if (!marker) return;
  const prefix = Buffer.from(marker, 'ascii');
  if (jobs.some((j) => asBuffer(j.bytes).subarray(0, prefix.length).equals(prefix))) {
    // Blocks this thread without burning a core, and without ever answering IPC.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
}

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
  if (!classifier) {
    const err = new ClassifierError('INTERNAL', 'batch before the model was loaded');
    for (const j of jobs) send({ type: 'result', batch, id: j.id, ok: false, code: err.code, message: err.message });
    send({ type: 'done', batch });
    return;
  }
  hangIfAsked(jobs);
  const outcomes = await classifier.classify(
    jobs.map((j) => ({ bytes: asBuffer(j.bytes), name: j.name, top: j.top ?? options.top })),
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

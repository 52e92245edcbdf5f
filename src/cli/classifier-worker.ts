/**
 * `roomcast classifier --redis URL`: a classifier worker for a cluster, on any machine (the
 * one with the GPU, or just a spare PC): it loads the model into a local pool of worker
 * processes and answers the image posts of every node through Redis' job queue. It serves no
 * chat. Stops on SIGINT/SIGTERM after finishing the jobs it holds.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import { createClient } from '@redis/client';
import { ClassifierPool } from '../classifier/pool.js';
import { ClassifierError } from '../classifier/errors.js';
import { findModel } from '../classifier/model-catalog.js';
import { ClassifierWorker } from '../cluster/classifier-jobs.js';
import { clusterSocket, redactedUrl, unreachable } from '../cluster/cluster-node.js';

export interface ClassifierWorkerFlags {
  redis: string;
  redisPrefix?: string;
  model?: string;
  labels?: string;
  dir?: string;
  workers?: number;
  claimAfter?: number;
}

export async function runClassifierWorker(flags: ClassifierWorkerFlags): Promise<number | undefined> {
  let found;
  try {
    found = await findModel({ model: flags.model, labels: flags.labels, dir: flags.dir });
  } catch (err) {
    if (err instanceof ClassifierError) {
      console.error(`roomcast: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const url = flags.redis;
  let started = false;
  const commands = createClient({ url, socket: clusterSocket(() => started) });
  const blocking = commands.duplicate();
  let outage = false;
  for (const c of [commands, blocking]) {
    c.on('error', (err: Error) => {
      if (started && !outage) console.error(`roomcast classifier: lost Redis at ${redactedUrl(url)} (${err.message}); retrying`);
      outage = true;
    });
    c.on('ready', () => {
      if (outage && commands.isReady && blocking.isReady) console.log(`roomcast classifier: Redis at ${redactedUrl(url)} is back`);
      if (commands.isReady && blocking.isReady) outage = false;
    });
  }
  try {
    await Promise.all([commands.connect(), blocking.connect()]);
  } catch (err) {
    for (const c of [commands, blocking]) if (c.isOpen) c.destroy();
    console.error(`roomcast: ${unreachable(url, err).message}`);
    return 1;
  }
  started = true;
  const pool = new ClassifierPool({ model: found.model, labels: found.labels, size: flags.workers, preprocess: found.preprocess });
  const model = path.basename(found.model).replace(/\.onnx$/, '');
  const id = `${hostname().replace(/\s+/g, '-')}.${process.pid}`;
  const worker = new ClassifierWorker(commands, blocking, id, (bytes, o) => pool.classify(bytes, o), model, Math.max(2, pool.stats().size * 2), {
    prefix: flags.redisPrefix,
    ...(flags.claimAfter !== undefined ? { claimAfterMs: flags.claimAfter } : {}),
  });
  pool.on('state', (state: string, reason: string) => console.log(`roomcast classifier: model ${model} ${state}${reason ? `: ${reason}` : ''}`));
  await worker.start();
  process.stdout.write(
    `roomcast classifier worker ${id}: model ${model}, ${pool.stats().size} processes, taking image jobs from ${redactedUrl(url)}\n`,
  );
  let signals = 0;
  const stop = (sig: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(1);
    console.log(`roomcast classifier: ${sig}: finishing the jobs in hand`);
    void (async () => {
      await worker.stop();
      await pool.close();
      for (const c of [blocking, commands]) await c.close().catch(() => c.destroy());
      console.log(`roomcast classifier: stopped (${worker.stats.done} answered, ${worker.stats.failed} failed)`);
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return undefined;
}

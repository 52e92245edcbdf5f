/**
 * Image-classifier benchmark: images per second and latency of the classify pipeline, run
 *   - in-process (sharp + onnxruntime in this process, no pool), one image per run() or 8,
 *   - through a ClassifierPool of 1 worker and of the default size, with batching off
 *     (maxBatch 1) and on (maxBatch 8),
 * on the photos of the model kit, cycled.
 *
 * Each scenario is measured twice: under load (a closed loop keeping `concurrency` images in
 * flight: throughput, and latency including queueing), and alone (one image at a time: the
 * latency someone posting a single photo sees). For the pool it also reports what the hub
 * would pay: CPU time of this (the parent) process per image, and the p99 delay of this
 * event loop while the pool works.
 *
 * Exported for `npm run bench`; runnable alone:
 *   node dist/bench/classifier.js [--model F --labels F] [--photos DIR] [--images N]
 *                                 [--concurrency C] [--json]
 */
import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ImageClassifier } from '../classifier/model.js';
import { findModel } from '../classifier/models.js';
import { ClassifierPool, defaultPoolSize, POOL_DEFAULTS } from '../classifier/pool.js';
import { tuneSharpForWorker } from '../classifier/preprocess.js';

export interface ClassifierBenchOptions {
  model: string;
  labels: string;
  /** Encoded images to cycle through. */
  images: Buffer[];
  /** Images per loaded run. */
  count?: number;
  /** Images in flight during the loaded run. */
  concurrency?: number;
  /** Images for the one-at-a-time latency run. */
  aloneCount?: number;
  /** Run only scenarios whose name contains one of these. */
  only?: string[];
}

export interface ClassifierBenchResult {
  scenario: string;
  workers: number;
  maxBatch: number;
  images: number;
  imagesPerSecond: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  aloneP50Ms: number;
  aloneP95Ms: number;
  /** Pool only: CPU ms this (parent) process spent per image under load. */
  parentCpuMsPerImage?: number;
  /** Pool only: p99 event-loop delay of this process under load. */
  loopDelayP99Ms?: number;
  /** Pool only: batch size -> batches, under load. */
  batchSizes?: Record<number, number>;
}

interface Runner {
  name: string;
  workers: number;
  maxBatch: number;
  start(): Promise<void>;
  /** Classifies the images of one call; resolves with each image's latency in ms. */
  classify(images: Buffer[]): Promise<number[]>;
  stop(): Promise<void>;
  batchSizes?(): Record<number, number>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function inProcess(opts: ClassifierBenchOptions, maxBatch: number): Runner {
  let classifier: ImageClassifier | undefined;
  // Calls from the load loop are serialised: one process, one pipeline, as in a worker.
  let chain: Promise<unknown> = Promise.resolve();
  return {
    name: `in-process, batch ${maxBatch}`,
    workers: 0,
    maxBatch,
    async start() {
      tuneSharpForWorker(1);
      classifier = await ImageClassifier.load({ model: opts.model, labels: opts.labels });
    },
    classify(images) {
      const run = chain.then(async () => {
        const started = performance.now();
        const out = await classifier!.classify(images.map((bytes) => ({ bytes })), 5);
        const ms = performance.now() - started;
        if (out.some((o) => !o.ok)) throw new Error('an image failed in the benchmark');
        return images.map(() => ms);
      });
      chain = run.catch(() => undefined);
      return run;
    },
    async stop() {
      await classifier?.close();
    },
  };
}

function pooled(opts: ClassifierBenchOptions, size: number, maxBatch: number, delayMs: number, label: string): Runner {
  let pool: ClassifierPool | undefined;
  return {
    name: `pool ${label} (${size} worker${size === 1 ? '' : 's'}), maxBatch ${maxBatch}${maxBatch > 1 ? `, delay ${delayMs} ms` : ''}`,
    workers: size,
    maxBatch,
    async start() {
      pool = new ClassifierPool({ model: opts.model, labels: opts.labels, size, maxBatch, maxQueue: 1024, maxQueueDelayMs: delayMs });
      await pool.ready();
    },
    async classify(images) {
      return Promise.all(images.map(async (b) => (await pool!.classify(b)).timings.totalMs));
    },
    async stop() {
      await pool?.close();
    },
    batchSizes: () => pool!.stats().batchSizes,
  };
}

async function measure(runner: Runner, opts: Required<Pick<ClassifierBenchOptions, 'count' | 'concurrency' | 'aloneCount'>> & { images: Buffer[] }): Promise<ClassifierBenchResult> {
  const { images, count, concurrency, aloneCount } = opts;
  await runner.start();
  try {
    const pick = (i: number): Buffer => images[i % images.length]!;
    // Warm-up: first decodes, the first run() at each batch size, JIT.
    for (let i = 0; i < 2; i++) await runner.classify(images.slice(0, Math.min(images.length, runner.maxBatch)));
    for (const img of images) await runner.classify([img]);

    // One at a time.
    const alone: number[] = [];
    for (let i = 0; i < aloneCount; i++) alone.push(...(await runner.classify([pick(i)])));
    const before = runner.batchSizes?.() ?? {};

    // Closed loop. In-process, a "request" is a batch of maxBatch images (there is no queue to
    // form batches); through the pool each request is one image and the pool batches.
    const latencies: number[] = [];
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const cpuBefore = process.cpuUsage();
    let next = 0;
    const perRequest = runner.workers === 0 ? runner.maxBatch : 1;
    loop.enable();
    const started = performance.now();
    const lane = async (): Promise<void> => {
      while (next < count) {
        const first = next;
        next += perRequest;
        const batch = Array.from({ length: Math.min(perRequest, count - first) }, (_, k) => pick(first + k));
        latencies.push(...(await runner.classify(batch)));
      }
    };
    const lanes = runner.workers === 0 ? 1 : concurrency;
    await Promise.all(Array.from({ length: lanes }, lane));
    const wall = (performance.now() - started) / 1000;
    loop.disable();
    const cpu = process.cpuUsage(cpuBefore);

    latencies.sort((a, b) => a - b);
    alone.sort((a, b) => a - b);
    const result: ClassifierBenchResult = {
      scenario: runner.name,
      workers: runner.workers,
      maxBatch: runner.maxBatch,
      images: latencies.length,
      imagesPerSecond: latencies.length / wall,
      latencyP50Ms: percentile(latencies, 50),
      latencyP95Ms: percentile(latencies, 95),
      aloneP50Ms: percentile(alone, 50),
      aloneP95Ms: percentile(alone, 95),
    };
    if (runner.workers > 0) {
      result.parentCpuMsPerImage = (cpu.user + cpu.system) / 1000 / latencies.length;
      result.loopDelayP99Ms = loop.percentile(99) / 1e6;
      const after = runner.batchSizes!();
      result.batchSizes = Object.fromEntries(
        Object.entries(after)
          .map(([size, n]) => [size, n - (before[Number(size)] ?? 0)] as const)
          .filter(([, n]) => n > 0),
      );
    }
    return result;
  } finally {
    await runner.stop();
  }
}

export async function runClassifierBench(opts: ClassifierBenchOptions): Promise<ClassifierBenchResult[]> {
  const settings = {
    images: opts.images,
    count: opts.count ?? 240,
    concurrency: opts.concurrency ?? 16,
    aloneCount: opts.aloneCount ?? 40,
  };
  const size = defaultPoolSize();
  const runners: Runner[] = [
    inProcess(opts, 1),
    inProcess(opts, 8),
    pooled(opts, 1, 1, 0, 'of 1'),
    pooled(opts, 1, 8, 0, 'of 1'),
    pooled(opts, 1, 8, 5, 'of 1'),
    pooled(opts, size, 1, 0, 'default'),
    pooled(opts, size, POOL_DEFAULTS.maxBatch, POOL_DEFAULTS.maxQueueDelayMs, 'default'),
  ];
  if (size !== 2) runners.push(pooled(opts, 2, POOL_DEFAULTS.maxBatch, POOL_DEFAULTS.maxQueueDelayMs, 'of 2'));
  const results: ClassifierBenchResult[] = [];
  for (const r of runners) {
    if (opts.only && !opts.only.some((o) => r.name.includes(o))) continue;
    results.push(await measure(r, settings));
  }
  return results;
}

export function formatClassifierBench(results: ClassifierBenchResult[]): string {
  const f = (n: number | undefined, d = 1): string => (n === undefined ? '-' : n.toFixed(d));
  const head = ['scenario', 'img/s', 'p50 ms', 'p95 ms', 'alone p50', 'alone p95', 'parent CPU ms/img', 'loop p99 ms', 'batches'];
  const rows = results.map((r) => [
    r.scenario,
    f(r.imagesPerSecond),
    f(r.latencyP50Ms),
    f(r.latencyP95Ms),
    f(r.aloneP50Ms),
    f(r.aloneP95Ms),
    f(r.parentCpuMsPerImage, 2),
    f(r.loopDelayP99Ms),
    r.batchSizes ? Object.entries(r.batchSizes).map(([s, n]) => `${n}x${s}`).join(' ') : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|avif|tiff?)$/i;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      labels: { type: 'string' },
      photos: { type: 'string' },
      images: { type: 'string' },
      concurrency: { type: 'string' },
      only: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
  });
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const kit = path.resolve(root, '../shared/models');
  let model = values.model;
  let labels = values.labels;
  if (!model || !labels) {
    try {
      ({ model, labels } = await findModel({ model, labels }));
    } catch {
      // No installed model: fall back to the shared model kit next to the project, if any.
      model = path.join(kit, 'mobilenetv2-12-int8.onnx');
      labels = path.join(kit, 'synset.txt');
    }
  }
  const photosDir = values.photos ?? path.join(kit, 'photos');
  const files = (await readdir(photosDir)).filter((f) => IMAGE_EXT.test(f)).sort();
  if (files.length === 0) throw new Error(`no images in ${photosDir} (pass --photos DIR)`);
  const images = await Promise.all(files.map((f) => readFile(path.join(photosDir, f))));
  const results = await runClassifierBench({
    model,
    labels,
    images,
    count: values.images ? Number(values.images) : undefined,
    concurrency: values.concurrency ? Number(values.concurrency) : undefined,
    only: values.only,
  });
  const header = `classifier benchmark: ${path.basename(model)}, ${images.length} photos from ${photosDir}, ${cpus().length} cores, node ${process.version}\n`;
  if (values.json) {
    process.stderr.write(header + formatClassifierBench(results));
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    process.stdout.write(header + formatClassifierBench(results));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

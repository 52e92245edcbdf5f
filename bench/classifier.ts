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
 * The same measurement also runs through a whole roomcast server (`served`: a child process,
 * images posted by JSON clients, latency until another member has the bot's answer); the
 * classifier scenarios of `npm run bench` (classifier-scenarios.ts) compare that with the
 * in-process pipeline.
 *
 * Exported for `npm run bench`; runnable alone:
 *   node dist-bench/bench/classifier.js [--model F --labels F] [--photos DIR] [--images N]
 *                                 [--concurrency C] [--json]
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ImageClassifier } from '../src/classifier/image-classifier.js';
import { findModel } from '../src/classifier/model-catalog.js';
import { ClassifierPool, defaultPoolSize, POOL_DEFAULTS } from '../src/classifier/pool.js';
import { tuneSharpForWorker } from '../src/classifier/preprocess.js';
import { ImagePosters, waitForBot } from './images.js';
import { ServerProcess } from './server-process.js';
import { median } from './stats.js';
import { formatTable } from './table.js';

export interface ClassifierBenchOptions {
  model: string;
  labels: string;
  /** Encoded images to cycle through. */
  images: Buffer[];
  /** Images per loaded run, at most. */
  count?: number;
  /** Images in flight during the loaded run. */
  concurrency?: number;
  /** Images for the one-at-a-time latency run, at most (0: skip it). */
  aloneCount?: number;
  /** Time limits of the loaded and of the one-at-a-time runs (each stops at its count or its time). */
  seconds?: number;
  aloneSeconds?: number;
  /** Run only scenarios whose name contains one of these. */
  only?: string[];
}

export interface ClassifierBenchResult {
  scenario: string;
  kind: Runner['kind'];
  workers: number;
  maxBatch: number;
  images: number;
  imagesPerSecond: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  aloneImages: number;
  aloneP50Ms: number;
  aloneP95Ms: number;
  aloneP99Ms: number;
  /**
   * Medians over the one-at-a-time images of the pool's own timings (queueMs, decodeMs,
   * inferenceMs, totalMs: classify() to answer, in the hub's process), when the runner has them.
   */
  aloneTimings?: Record<string, number>;
  /** Pool and server: CPU ms the hub's process (this one, or the server) spent per image under load. */
  parentCpuMsPerImage?: number;
  /** Pool only: p99 event-loop delay of this process under load. */
  loopDelayP99Ms?: number;
  /** Pool only: batch size -> batches, under load. */
  batchSizes?: Record<number, number>;
}

/** One image's latency, and the pool's timings for it when known. */
export interface Sample {
  ms: number;
  timings?: Record<string, number>;
}

export interface Runner {
  name: string;
  /** The pipeline in this process; a ClassifierPool in this process; or a roomcast server. */
  kind: 'in-process' | 'pool' | 'server';
  workers: number;
  maxBatch: number;
  start(): Promise<void>;
  /** Classifies the images of one call; resolves with each image's latency. */
  classify(images: Buffer[]): Promise<Sample[]>;
  stop(): Promise<void>;
  batchSizes?(): Record<number, number>;
  /** CPU seconds used so far by the process the pool lives in (this one, or the server's). */
  hubCpuSeconds?(): number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function inProcess(opts: Pick<ClassifierBenchOptions, 'model' | 'labels'>, maxBatch: number): Runner {
  let classifier: ImageClassifier | undefined;
  // Calls from the load loop are serialised: one process, one pipeline, as in a worker.
  let chain: Promise<unknown> = Promise.resolve();
  return {
    name: `in-process, batch ${maxBatch}`,
    kind: 'in-process',
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
        return out.map((o) => {
          if (!o.ok) throw new Error(`an image failed in the benchmark: ${o.code}`);
          return { ms, timings: { decodeMs: o.timings.decodeMs, inferenceMs: o.timings.inferenceMs, totalMs: ms } };
        });
      });
      chain = run.catch(() => undefined);
      return run;
    },
    async stop() {
      await classifier?.close();
    },
  };
}

function workersLabel(size: number): string {
  return `${size} worker${size === 1 ? '' : 's'}`;
}

export function pooled(opts: Pick<ClassifierBenchOptions, 'model' | 'labels'>, size: number, maxBatch: number, delayMs: number, label: string): Runner {
  let pool: ClassifierPool | undefined;
  return {
    name: `pool ${label} (${workersLabel(size)}), maxBatch ${maxBatch}${maxBatch > 1 ? `, delay ${delayMs} ms` : ''}`,
    kind: 'pool',
    workers: size,
    maxBatch,
    async start() {
      pool = new ClassifierPool({ model: opts.model, labels: opts.labels, size, maxBatch, maxQueue: 1024, maxQueueDelayMs: delayMs });
      await pool.ready();
    },
    async classify(images) {
      return Promise.all(
        images.map(async (b) => {
          const r = await pool!.classify(b);
          return { ms: r.timings.totalMs, timings: r.timings };
        }),
      );
    },
    async stop() {
      await pool?.close();
    },
    batchSizes: () => pool!.stats().batchSizes,
    hubCpuSeconds: () => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1e6;
    },
  };
}

/** How to run the server of a served() runner. */
export interface ServerSettings {
  root?: string;
  nodeArgs?: string[];
  /** Extra `roomcast serve` options. */
  args?: string[];
  logFile?: string;
  /** Poster connections the images are spread over (default 4). */
  posters?: number;
}

/** The `serve` options that give the bot this model and pool. */
export function classifierServerArgs(opts: Pick<ClassifierBenchOptions, 'model' | 'labels'>, size: number, maxBatch: number, delayMs: number): string[] {
  return ['--model', opts.model, '--labels', opts.labels, '--workers', String(size), '--classifier-batch', String(maxBatch), '--classifier-delay', String(delayMs)];
}

/**
 * The whole path: a roomcast server (a child process, stopped by PID) whose bot runs a pool of
 * `size` workers; each image is posted by a JSON client, and its latency is until another
 * member of the room has read the bot's answer.
 */
export function served(
  opts: Pick<ClassifierBenchOptions, 'model' | 'labels'>,
  size: number,
  maxBatch: number,
  delayMs: number,
  label: string,
  settings: ServerSettings = {},
): Runner {
  let server: ServerProcess | undefined;
  let posters: ImagePosters | undefined;
  return {
    name: `server ${label} (${workersLabel(size)}), batch ${maxBatch}${delayMs > 0 ? `, delay ${delayMs} ms` : ''}`,
    kind: 'server',
    workers: size,
    maxBatch,
    async start() {
      server = await ServerProcess.start({
        args: [...classifierServerArgs(opts, size, maxBatch, delayMs), ...(settings.args ?? [])],
        nodeArgs: settings.nodeArgs,
        root: settings.root,
        logFile: settings.logFile,
      });
      await waitForBot(server.port);
      posters = await ImagePosters.connect(server.port, { room: 'pics', posters: settings.posters ?? 4 });
    },
    async classify(images) {
      return Promise.all(
        images.map(async (b) => {
          const o = await posters!.post(b, 'photo.jpg');
          if (!o.ok) throw new Error(`the bot answered an error: ${o.code}`);
          return { ms: o.latencyMs, timings: { ...o.timings, ackMs: o.ackMs } };
        }),
      );
    },
    async stop() {
      posters?.close();
      await server?.stop();
    },
    hubCpuSeconds: () => server!.cpu().total,
  };
}

export type MeasureSettings = Required<Pick<ClassifierBenchOptions, 'count' | 'concurrency' | 'aloneCount' | 'seconds' | 'aloneSeconds'>> & {
  images: Buffer[];
};

export async function measure(runner: Runner, opts: MeasureSettings): Promise<ClassifierBenchResult> {
  return (await measureTogether([runner], opts))[0]!;
}

/**
 * Measures several runners side by side: all are started and warmed up, then the one-at-a-time
 * images go to each in turn (image i to every runner before image i+1, the order rotating), so
 * their latencies are paired under the same conditions (what else the machine is doing changes
 * by the second); then each runner's saturated run, one runner after the other.
 */
export async function measureTogether(runners: Runner[], opts: MeasureSettings): Promise<ClassifierBenchResult[]> {
  const { images, aloneCount } = opts;
  const pick = (i: number): Buffer => images[i % images.length]!;
  try {
    for (const runner of runners) await runner.start();
    for (const runner of runners) {
      // Warm-up: first decodes, the first run() at each batch size, JIT.
      for (let i = 0; i < 2; i++) await runner.classify(images.slice(0, Math.min(images.length, runner.maxBatch)));
      for (const img of images) await runner.classify([img]);
    }

    // One at a time.
    const alone: Sample[][] = runners.map(() => []);
    const aloneUntil = performance.now() + opts.aloneSeconds * 1000;
    for (let i = 0; i < aloneCount && performance.now() < aloneUntil; i++) {
      for (let k = 0; k < runners.length; k++) {
        const r = (i + k) % runners.length;
        alone[r]!.push(...(await runners[r]!.classify([pick(i)])));
      }
    }

    const results: ClassifierBenchResult[] = [];
    for (let r = 0; r < runners.length; r++) results.push(await saturate(runners[r]!, alone[r]!, opts));
    return results;
  } finally {
    for (const runner of runners) await runner.stop();
  }
}

/**
 * Closed loop. In-process, a "request" is a batch of maxBatch images (there is no queue to form
 * batches); through a pool each request is one image and the pool batches.
 */
async function saturate(runner: Runner, alone: Sample[], opts: MeasureSettings): Promise<ClassifierBenchResult> {
  const { images, count, concurrency } = opts;
  const pick = (i: number): Buffer => images[i % images.length]!;
  const before = runner.batchSizes?.() ?? {};
  const latencies: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const cpuBefore = runner.hubCpuSeconds?.() ?? 0;
  let next = 0;
  const perRequest = runner.kind === 'in-process' ? runner.maxBatch : 1;
  loop.enable();
  const started = performance.now();
  const until = started + opts.seconds * 1000;
  const lane = async (): Promise<void> => {
    while (next < count && performance.now() < until) {
      const first = next;
      next += perRequest;
      const batch = Array.from({ length: Math.min(perRequest, count - first) }, (_, k) => pick(first + k));
      for (const s of await runner.classify(batch)) latencies.push(s.ms);
    }
  };
  const lanes = runner.kind === 'in-process' ? 1 : concurrency;
  await Promise.all(Array.from({ length: lanes }, lane));
  const wall = (performance.now() - started) / 1000;
  loop.disable();
  const cpu = (runner.hubCpuSeconds?.() ?? 0) - cpuBefore;

  latencies.sort((a, b) => a - b);
  const aloneMs = alone.map((s) => s.ms).sort((a, b) => a - b);
  const result: ClassifierBenchResult = {
    scenario: runner.name,
    kind: runner.kind,
    workers: runner.workers,
    maxBatch: runner.maxBatch,
    images: latencies.length,
    imagesPerSecond: latencies.length / wall,
    latencyP50Ms: percentile(latencies, 50),
    latencyP95Ms: percentile(latencies, 95),
    latencyP99Ms: percentile(latencies, 99),
    aloneImages: alone.length,
    aloneP50Ms: percentile(aloneMs, 50),
    aloneP95Ms: percentile(aloneMs, 95),
    aloneP99Ms: percentile(aloneMs, 99),
  };
  if (alone.length > 0 && alone[0]!.timings) {
    const keys = Object.keys(alone[0]!.timings);
    result.aloneTimings = Object.fromEntries(keys.map((k) => [k, median(alone.map((s) => s.timings?.[k] ?? NaN))]));
  }
  if (runner.hubCpuSeconds && latencies.length > 0) result.parentCpuMsPerImage = (cpu * 1000) / latencies.length;
  if (runner.kind === 'pool') result.loopDelayP99Ms = loop.percentile(99) / 1e6;
  if (runner.batchSizes) {
    const after = runner.batchSizes();
    result.batchSizes = Object.fromEntries(
      Object.entries(after)
        .map(([size, n]) => [size, n - (before[Number(size)] ?? 0)] as const)
        .filter(([, n]) => n > 0),
    );
  }
  return result;
}

export async function runClassifierBench(opts: ClassifierBenchOptions): Promise<ClassifierBenchResult[]> {
  const settings = {
    images: opts.images,
    count: opts.count ?? 240,
    concurrency: opts.concurrency ?? 16,
    aloneCount: opts.aloneCount ?? 40,
    seconds: opts.seconds ?? 60,
    aloneSeconds: opts.aloneSeconds ?? 30,
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
  return formatTable(head, rows) + '\n';
}

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|avif|tiff?)$/i;

/**
 * A model kit (model, labels and photos/) named by the environment, as the tests find theirs:
 * a benchmark should not guess at paths of one machine.
 */
const KIT_DIR = process.env.ROOMCAST_TEST_MODELS;

export interface Kit {
  model: string;
  labels: string;
  photosDir: string;
  images: Buffer[];
}

/**
 * The model, labels and photos to benchmark with: the ones given, else the installed default
 * model, else the kit of $ROOMCAST_TEST_MODELS; the photos of `photos` (default: the kit's).
 */
export async function loadKit(opts: { model?: string; labels?: string; photos?: string } = {}): Promise<Kit> {
  let { model, labels } = opts;
  if (!model || !labels) {
    try {
      ({ model, labels } = await findModel({ model, labels }));
    } catch {
      if (!KIT_DIR) throw new Error('no model is installed: run `roomcast models pull`, or pass --model and --labels');
      model = path.join(KIT_DIR, 'mobilenetv2-12-int8.onnx');
      labels = path.join(KIT_DIR, 'synset.txt');
    }
  }
  for (const [what, file] of [['model', model], ['labels', labels]] as const) {
    const ok = await stat(file).then((st) => st.isFile(), () => false);
    if (!ok) throw new Error(`no ${what} file at ${file} (install one with \`roomcast models pull\`, or pass --model and --labels)`);
  }
  if (!opts.photos && !KIT_DIR) throw new Error('no photos to post: pass --photos DIR (or set ROOMCAST_TEST_MODELS to a model kit)');
  const photosDir = opts.photos ?? path.join(KIT_DIR!, 'photos');
  const files = (await readdir(photosDir)).filter((f) => IMAGE_EXT.test(f)).sort();
  if (files.length === 0) throw new Error(`no images in ${photosDir} (pass --photos DIR)`);
  const images = await Promise.all(files.map((f) => readFile(path.join(photosDir, f))));
  return { model, labels, photosDir, images };
}

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
  const { model, labels, photosDir, images } = await loadKit(values);
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

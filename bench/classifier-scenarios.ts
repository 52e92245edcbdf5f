/**
 * The classifier scenarios of `npm run bench`: the image path through a real server (a child
 * process with its bot and worker pool), against the same sharp + onnxruntime pipeline run in
 * this process with no hub.
 *
 *   classifier-latency     one image at a time (latency, not queueing): post -> labels read by
 *                          another member of the room, p50/p99, against the pipeline in-process;
 *                          then saturated (images/s). Target: hub + IPC + queueing add at most
 *                          25 % at p50.
 *   classifier-throughput  images/s through the server with 1 worker and the default pool, with
 *                          batching off (--classifier-batch 1) and on (8).
 *   classifier-chat        chat p99 between two other clients of the room (paced, 2 x 50
 *                          messages/s) while posters keep the classifier saturated, against the
 *                          same chat with the classifier idle. Target: at most 2x.
 *
 * Every loop is bounded in count and in time; servers are stopped by PID (see server-process.ts).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { defaultPoolSize, POOL_DEFAULTS } from '../src/classifier/pool.js';
import {
  classifierServerArgs,
  inProcess,
  measure,
  measureTogether,
  served,
  type ClassifierBenchResult,
  type Kit,
  type MeasureSettings,
  type Runner,
  type ServerSettings,
} from './classifier.js';
import { waitForBot } from './images.js';
import { PosterThread } from './poster-thread.js';
import type { Tally } from './load.js';
import { runScenario, type BackgroundLoad, type Scenario, type Target } from './scenarios.js';
import { LatencyHistogram } from './stats.js';
import { RedisServer } from './redis-server.js';
import { PROJECT_ROOT } from './server-process.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface ClassifierContext {
  kit: Kit;
  /** Measured time of each loaded phase. */
  seconds: number;
  server: Omit<ServerSettings, 'posters'>;
  log: (msg: string) => void;
}

export interface Figure {
  key: string;
  label: string;
  digits: number;
}

export interface ClassifierRun {
  figures: Record<string, number>;
  /** The underlying measurements, for the JSON output. */
  details: unknown;
}

export interface ClassifierScenario {
  name: string;
  description: string;
  figures: Figure[];
  targets: Target<string>[];
  run(ctx: ClassifierContext): Promise<ClassifierRun>;
}

/** Images in flight in the saturated runs: enough to keep two workers' batches of 8 full, and under the default queue bound (32). */
const CONCURRENCY = 16;
/** Images per saturated run at most (the run stops at --seconds first at any usual speed). */
const LOADED_COUNT = 5000;
/** One-at-a-time images per run at most (stopped at --seconds too). */
const ALONE_COUNT = 200;

function settings(ctx: ClassifierContext, loaded: boolean, alone: boolean): MeasureSettings {
  return {
    images: ctx.kit.images,
    count: loaded ? LOADED_COUNT : 0,
    concurrency: CONCURRENCY,
    aloneCount: alone ? ALONE_COUNT : 0,
    seconds: ctx.seconds,
    aloneSeconds: ctx.seconds,
  };
}

async function measureLogged(ctx: ClassifierContext, runner: Runner, loaded: boolean, alone: boolean): Promise<ClassifierBenchResult> {
  const r = await measure(runner, settings(ctx, loaded, alone));
  logResult(ctx, r, loaded, alone);
  return r;
}

function logResult(ctx: ClassifierContext, r: ClassifierBenchResult, loaded: boolean, alone: boolean): void {
  const parts: string[] = [];
  if (alone) parts.push(`one at a time p50 ${r.aloneP50Ms.toFixed(1)} p99 ${r.aloneP99Ms.toFixed(1)} ms (${r.aloneImages} images)`);
  if (loaded) parts.push(`saturated ${r.imagesPerSecond.toFixed(1)} img/s, p50 ${r.latencyP50Ms.toFixed(0)} p99 ${r.latencyP99Ms.toFixed(0)} ms`);
  if (r.aloneTimings) parts.push(`median timings ${Object.entries(r.aloneTimings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(' ')}`);
  ctx.log(`    ${r.scenario}: ${parts.join('; ')}`);
}

const defaultBatch = POOL_DEFAULTS.maxBatch;
const defaultDelay = POOL_DEFAULTS.maxQueueDelayMs;

const latency: ClassifierScenario = {
  name: 'classifier-latency',
  description: `image post -> labels at the other member of a room of 2, one at a time (alternating with the pipeline in-process) and saturated (batch ${defaultBatch}, default pool)`,
  figures: [
    { key: 'inProcessP50Ms', label: 'in-process p50 ms, one at a time', digits: 2 },
    { key: 'inProcessP99Ms', label: 'in-process p99 ms, one at a time', digits: 2 },
    { key: 'serverP50Ms', label: 'through the server p50 ms, one at a time', digits: 2 },
    { key: 'serverP99Ms', label: 'through the server p99 ms, one at a time', digits: 2 },
    { key: 'overheadP50Pct', label: 'hub + IPC + queueing overhead at p50, %', digits: 1 },
    { key: 'inProcessDecodeMs', label: '  in-process decode ms (median)', digits: 2 },
    { key: 'inProcessInferenceMs', label: '  in-process run() ms (median)', digits: 2 },
    { key: 'poolDecodeMs', label: '  worker decode ms (median)', digits: 2 },
    { key: 'poolInferenceMs', label: '  worker run() ms (median)', digits: 2 },
    { key: 'poolQueueMs', label: '  pool queue ms (median)', digits: 2 },
    { key: 'poolIpcMs', label: '  IPC + worker overhead ms (pool total - queue - decode - run)', digits: 2 },
    { key: 'hubNetworkMs', label: '  hub + TCP + clients ms (end to end - pool total)', digits: 2 },
    { key: 'postAckMs', label: '  (post -> ack at the poster ms: upload, hub, way back)', digits: 2 },
    { key: 'inProcessImagesPerSecond', label: 'in-process images/s, saturated', digits: 1 },
    { key: 'serverImagesPerSecond', label: 'through the server images/s, saturated', digits: 1 },
    { key: 'serverLoadedP50Ms', label: 'through the server p50 ms, saturated', digits: 1 },
    { key: 'serverLoadedP99Ms', label: 'through the server p99 ms, saturated', digits: 1 },
    { key: 'serverCpuMsPerImage', label: 'hub CPU ms per image, saturated', digits: 2 },
  ],
  targets: [{ metric: 'overheadP50Pct', bound: 'max', value: 25, label: 'overhead at p50 <= +25 %' }],
  async run(ctx) {
    // Side by side: the one-at-a-time images alternate between the two, so both p50s are taken
    // under the same load of the machine.
    // The room: the poster and the member who reads the answer.
    const runners = [
      inProcess(ctx.kit, defaultBatch),
      served(ctx.kit, defaultPoolSize(), defaultBatch, defaultDelay, 'default', { ...ctx.server, posters: 1 }),
    ];
    const [local, remote] = (await measureTogether(runners, settings(ctx, true, true))) as [ClassifierBenchResult, ClassifierBenchResult];
    for (const r of [local, remote]) logResult(ctx, r, true, true);
    const t = remote.aloneTimings ?? {};
    const l = local.aloneTimings ?? {};
    return {
      figures: {
        inProcessP50Ms: local.aloneP50Ms,
        inProcessP99Ms: local.aloneP99Ms,
        serverP50Ms: remote.aloneP50Ms,
        serverP99Ms: remote.aloneP99Ms,
        overheadP50Pct: (remote.aloneP50Ms / local.aloneP50Ms - 1) * 100,
        inProcessDecodeMs: l.decodeMs ?? NaN,
        inProcessInferenceMs: l.inferenceMs ?? NaN,
        poolQueueMs: t.queueMs ?? NaN,
        poolDecodeMs: t.decodeMs ?? NaN,
        poolInferenceMs: t.inferenceMs ?? NaN,
        poolIpcMs: (t.totalMs ?? NaN) - (t.queueMs ?? NaN) - (t.decodeMs ?? NaN) - (t.inferenceMs ?? NaN),
        hubNetworkMs: remote.aloneP50Ms - (t.totalMs ?? NaN),
        postAckMs: t.ackMs ?? NaN,
        inProcessImagesPerSecond: local.imagesPerSecond,
        serverImagesPerSecond: remote.imagesPerSecond,
        serverLoadedP50Ms: remote.latencyP50Ms,
        serverLoadedP99Ms: remote.latencyP99Ms,
        serverCpuMsPerImage: remote.parentCpuMsPerImage ?? NaN,
      },
      details: { inProcess: local, server: remote },
    };
  },
};

/** The pool sizes to compare: 1 and the default; when the default is 1 (2 cores), 2 as well. */
function poolSizes(): { size: number; key: string; label: string }[] {
  const d = defaultPoolSize();
  const sizes = [{ size: 1, key: 'w1', label: '1 worker' }];
  if (d !== 1) sizes.push({ size: d, key: 'wDefault', label: `default pool (${d} workers)` });
  else sizes.push({ size: 2, key: 'w2', label: '2 workers (the default is 1 here)' });
  return sizes;
}

const BATCHES = [1, defaultBatch];

const throughput: ClassifierScenario = {
  name: 'classifier-throughput',
  description: `images/s through the server, saturated (${CONCURRENCY} in flight): workers x --classifier-batch 1 / ${defaultBatch} (default pool: ${defaultPoolSize()} worker${defaultPoolSize() === 1 ? '' : 's'} on this machine)`,
  figures: poolSizes().flatMap((p) =>
    BATCHES.flatMap((b) => [
      { key: `${p.key}b${b}ImagesPerSecond`, label: `${p.label}, batch ${b}: images/s`, digits: 1 },
      { key: `${p.key}b${b}P99Ms`, label: `${p.label}, batch ${b}: p99 ms`, digits: 0 },
    ]),
  ),
  targets: [],
  async run(ctx) {
    const figures: Record<string, number> = {};
    const details: ClassifierBenchResult[] = [];
    for (const p of poolSizes()) {
      for (const b of BATCHES) {
        const label = p.size === defaultPoolSize() ? 'default' : `of ${p.size}`;
        const r = await measureLogged(ctx, served(ctx.kit, p.size, b, defaultDelay, label, ctx.server), true, false);
        figures[`${p.key}b${b}ImagesPerSecond`] = r.imagesPerSecond;
        figures[`${p.key}b${b}P99Ms`] = r.latencyP99Ms;
        details.push(r);
      }
    }
    return { figures, details };
  },
};

/** The chat of classifier-chat: two clients of the image room talking to each other, paced. */
const CHAT: Scenario = {
  name: 'classifier-chat',
  description: 'two clients chatting at 50 messages/s each',
  rooms: { count: 1, members: 2, senders: 2 },
  idle: 0,
  load: { kind: 'paced', rate: 50, roundSeconds: 1 },
  textBytes: 100,
  targets: [],
  // Text mode would show the bot's answers as chat lines; JSON keeps them apart.
  wire: 'json',
};
const CHAT_ROOM = 'bench0';
/**
 * Saturated and idle windows alternate on one server while the chat runs, so both are measured
 * under the same conditions (on a shared machine, what else runs changes within seconds). The
 * transitions between them (posting starts and the queue fills; posting stops and the queue
 * drains) are not counted.
 */
const WINDOW_MS = 2000;
const RAMP_MS = 500;
const SETTLE_MS = 300;
/**
 * Chat time per run at least: about 12 windows of each kind, some 2,400 chat deliveries each.
 * A p99 is the 1%-worst: over 1,200 deliveries that was a dozen of them, and the idle figure
 * (the ratio's denominator) moved between 0.8 and 1.6 ms from run to run.
 */
const CHAT_MIN_SECONDS = 60;

interface AlternatingLoad extends BackgroundLoad {
  /** The chat latencies and event-loop delays of each kind of window (after stop()). */
  readonly busy: { latency: LatencyHistogram; loop: IntervalHistogram };
  readonly idle: { latency: LatencyHistogram; loop: IntervalHistogram };
}

/**
 * Image posts into the chat room (from a thread of their own, see poster-thread.ts),
 * CONCURRENCY in flight, in every other window; each window's chat latencies go to its own
 * histogram (the tally's histogram is swapped). Bounded by MAX_WINDOWS and MAX_MS, each post by
 * the post timeout.
 */
function alternatingImageLoad(kit: Kit): AlternatingLoad {
  const MAX_WINDOWS = 1000;
  const MAX_MS = 10 * 60_000;
  const busy = { latency: new LatencyHistogram(), loop: monitorEventLoopDelay({ resolution: 1 }) };
  const idle = { latency: new LatencyHistogram(), loop: monitorEventLoopDelay({ resolution: 1 }) };
  const discard = new LatencyHistogram();
  let posters: PosterThread | null = null;
  let stopping = false;
  let wake: () => void = () => {};
  const stopSignal = new Promise<void>((resolve) => (wake = resolve));
  let cycle: Promise<void> = Promise.resolve();
  let windows = 0;
  let busyImages = 0;
  let busySeconds = 0;
  let stopped: Promise<Record<string, number>> | null = null;

  const pause = (ms: number): Promise<void> => Promise.race([new Promise<void>((r) => setTimeout(r, ms)), stopSignal]);
  const run = async (tally: Tally, p: PosterThread): Promise<void> => {
    const until = performance.now() + MAX_MS;
    while (!stopping && !p.failed && windows < MAX_WINDOWS && performance.now() < until) {
      // Saturated: start posting, let the queue fill, then measure.
      p.post();
      await pause(RAMP_MS);
      if (stopping) break;
      const a0 = p.counts().answered;
      const t0 = performance.now();
      tally.latency = busy.latency;
      busy.loop.enable();
      await pause(WINDOW_MS);
      busy.loop.disable();
      tally.latency = discard;
      busyImages += p.counts().answered - a0;
      busySeconds += (performance.now() - t0) / 1000;
      // Idle: stop posting, let the queue drain, then measure.
      await p.pause();
      await pause(SETTLE_MS);
      if (stopping) break;
      tally.latency = idle.latency;
      idle.loop.enable();
      await pause(WINDOW_MS);
      idle.loop.disable();
      tally.latency = discard;
      windows++;
    }
  };

  return {
    busy,
    idle,
    async start(port) {
      // Both kinds of window measure a server whose workers have loaded the model.
      await waitForBot(port);
      posters = await PosterThread.start({ port, room: CHAT_ROOM, posters: 4, concurrency: CONCURRENCY, images: kit.images });
    },
    measuring(tally) {
      tally.latency = discard;
      cycle = run(tally, posters!);
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        wake();
        busy.loop.disable();
        idle.loop.disable();
        await cycle;
        const counts = posters?.counts();
        const failure = posters?.failed;
        // The images in flight are answered (bounded by the post timeout), then the thread goes.
        if (!failure) await posters?.pause();
        await posters?.stop();
        if (failure) throw new Error(`image posting failed: ${failure}`);
        return { windows, imagesPerSecond: busySeconds > 0 ? busyImages / busySeconds : NaN, refused: counts?.refused ?? NaN, failed: counts?.failed ?? NaN };
      })();
      return stopped;
    },
  };
}

/**
 * Where classifier-chat's classifier runs: in the server's own pool, or (remote) in a
 * `roomcast classifier` worker process that takes the jobs through Redis, the server being a
 * node of a cluster with no model of its own.
 */
interface ChatSetup {
  serverArgs: string[];
  stop(): Promise<void>;
}

async function localClassifier(ctx: ClassifierContext): Promise<ChatSetup> {
  return { serverArgs: classifierServerArgs(ctx.kit, defaultPoolSize(), defaultBatch, defaultDelay), stop: async () => {} };
}

async function remoteClassifier(ctx: ClassifierContext): Promise<ChatSetup> {
  const redis = await RedisServer.start();
  const noModels = mkdtempSync(path.join(tmpdir(), 'roomcast-bench-no-models-'));
  const worker = spawn(
    process.execPath,
    [path.join(ctx.server.root ?? PROJECT_ROOT, 'bin', 'roomcast'), 'classifier', '--redis', redis.url, '--model', ctx.kit.model, '--labels', ctx.kit.labels, '--workers', String(defaultPoolSize())],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
  worker.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async (): Promise<void> => {
    if (worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGTERM');
      const timer = setTimeout(() => worker.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await redis.stop();
    rmSync(noModels, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (!out.includes('taking image jobs')) {
    if (worker.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the classifier worker did not start: ${out.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { serverArgs: ['--redis', redis.url, '--models-dir', noModels], stop };
}

function chatScenario(name: string, where: string, setup: (ctx: ClassifierContext) => Promise<ChatSetup>): ClassifierScenario {
  return {
  name,
  description:
    `chat p99 between two clients (2 x 50 msgs/s, >= ${CHAT_MIN_SECONDS} s) in ${WINDOW_MS / 1000} s windows, ` +
    `the classifier ${where} saturated (${CONCURRENCY} images in flight) and idle in turn`,
  figures: [
    { key: 'idleP50Ms', label: 'chat p50 ms, classifier idle', digits: 2 },
    { key: 'idleP99Ms', label: 'chat p99 ms, classifier idle', digits: 2 },
    { key: 'busyP50Ms', label: 'chat p50 ms, classifier saturated', digits: 2 },
    { key: 'busyP99Ms', label: 'chat p99 ms, classifier saturated', digits: 2 },
    { key: 'p99Ratio', label: 'chat p99 saturated / idle', digits: 2 },
    { key: 'busyMaxMs', label: 'chat max ms, classifier saturated', digits: 1 },
    { key: 'idleMaxMs', label: 'chat max ms, classifier idle', digits: 1 },
    { key: 'busyImagesPerSecond', label: 'images/s in the saturated windows', digits: 1 },
    { key: 'busyRefused', label: 'image posts refused (busy)', digits: 0 },
    { key: 'windows', label: 'windows of each kind', digits: 0 },
    // The clients (chat and posters) share this process: its own delays show up as latency.
    { key: 'busyGeneratorLoopP99Ms', label: 'bench event-loop delay p99 ms, saturated', digits: 2 },
    { key: 'idleGeneratorLoopP99Ms', label: 'bench event-loop delay p99 ms, idle', digits: 2 },
    { key: 'serverCpuSeconds', label: 'hub CPU s, whole run', digits: 2 },
  ],
  targets: [{ metric: 'p99Ratio', bound: 'max', value: 2, label: 'chat p99 saturated <= 2x idle' }],
  async run(ctx) {
    const load = alternatingImageLoad(ctx.kit);
    const where = await setup(ctx);
    let r: Awaited<ReturnType<typeof runScenario>>;
    try {
      r = await runScenario(CHAT, {
        seconds: Math.max(ctx.seconds * 6, CHAT_MIN_SECONDS),
        maxRounds: 1000,
        roundTimeoutMs: 30_000,
        wire: 'json',
        serverArgs: [...where.serverArgs, ...(ctx.server.args ?? [])],
        nodeArgs: ctx.server.nodeArgs ?? [],
        serverRoot: ctx.server.root,
        serverLog: ctx.server.logFile,
        background: load,
        log: ctx.log,
      });
    } finally {
      await where.stop();
    }
    const bg = r.background ?? {};
    const ms = (h: LatencyHistogram, p: number): number => h.percentile(p) / 1000;
    const figures = {
      idleP50Ms: ms(load.idle.latency, 50),
      idleP99Ms: ms(load.idle.latency, 99),
      busyP50Ms: ms(load.busy.latency, 50),
      busyP99Ms: ms(load.busy.latency, 99),
      p99Ratio: ms(load.busy.latency, 99) / ms(load.idle.latency, 99),
      busyMaxMs: load.busy.latency.max / 1000,
      idleMaxMs: load.idle.latency.max / 1000,
      busyImagesPerSecond: bg.imagesPerSecond ?? NaN,
      busyRefused: bg.refused ?? NaN,
      windows: bg.windows ?? NaN,
      busyGeneratorLoopP99Ms: load.busy.loop.percentile(99) / 1e6,
      idleGeneratorLoopP99Ms: load.idle.loop.percentile(99) / 1e6,
      serverCpuSeconds: r.serverCpuSeconds,
    };
    ctx.log(
      `    ${figures.windows} windows each: chat idle p50 ${figures.idleP50Ms.toFixed(2)} p99 ${figures.idleP99Ms.toFixed(2)} ms ` +
        `(${load.idle.latency.count} deliveries), saturated p50 ${figures.busyP50Ms.toFixed(2)} p99 ${figures.busyP99Ms.toFixed(2)} ms ` +
        `(${load.busy.latency.count}; ${figures.busyImagesPerSecond.toFixed(1)} images/s, ${bg.refused ?? 0} refused, ${bg.failed ?? 0} failed), lost ${r.lost}` +
        `${r.complete ? '' : ' INCOMPLETE'}`,
    );
    for (const e of r.errorSamples) ctx.log(`    ! ${e}`);
    if (!r.complete || r.errors > 0 || (bg.failed ?? 0) > 0 || !(load.idle.latency.count > 0 && load.busy.latency.count > 0)) {
      throw new Error('the classifier-chat run failed (see above)');
    }
    // The run's own latency figures mix the windows (the tally's histogram was swapped): leave them out.
    const { latencyP50Ms: _p50, latencyP99Ms: _p99, latencyMaxMs: _max, ...run } = r;
    return { figures, details: { ...run, idleDeliveries: load.idle.latency.count, busyDeliveries: load.busy.latency.count } };
  },
  };
}

const chat = chatScenario('classifier-chat', 'in the server', localClassifier);
/** The same with inference off the chat server: a worker process through Redis (here on the same 2 cores). */
const chatRemote = chatScenario('classifier-chat-remote', 'in a `roomcast classifier` worker through Redis,', remoteClassifier);

export const CLASSIFIER_SCENARIOS: ClassifierScenario[] = [latency, throughput, chat, chatRemote];

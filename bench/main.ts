/**
 * `npm run bench`: the roomcast load benchmark. Not a test: it measures.
 *
 *   node dist-bench/bench/main.js [--scenario NAME[,NAME]] [--runs N] [--seconds S] [--json]
 *                           [--out FILE] [--wire text|json] [--server-arg ARG]... [--node-arg ARG]...
 *
 * Each scenario is run N times (default 3), each time against a fresh server, the chat scenarios
 * taking turns; the table shows the median of the runs and the spread (min-max) of the key
 * figure. The full per-run results go to bench-results.json (or to stdout with --json, the
 * table then going to stderr).
 *
 * The figure that matters for fan-out is deliveries per server CPU-second: wall-clock rates
 * depend on what else the machine is doing (the generator itself needs a core), CPU time per
 * delivery much less so.
 *
 * Scenarios come in two groups: `chat` (scenarios.ts) and `classifier` (classifier-scenarios.ts:
 * the image path through the server's bot, against the pipeline in-process; they need the model
 * kit). Each group prints its own table; the JSON has one summary per scenario either way.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadKit, type Kit } from './classifier.js';
import { CLASSIFIER_SCENARIOS, type ClassifierContext, type ClassifierRun, type ClassifierScenario } from './classifier-scenarios.js';
import { SCENARIOS, runScenario, type RunResult, type Scenario, type Target } from './scenarios.js';
import { compareTransports } from './ws-scenarios.js';
import { runHistoryFigures, type HistoryFigures } from './history.js';
import { redisMissing, redisTable, runRedisFigures, type RedisFigures } from './redis.js';
import { handshakeTable, runTlsHandshakes, type HandshakeFigures } from './tls-handshakes.js';
import { PROJECT_ROOT } from './server-process.js';
import { figuresOf, type Spread } from './stats.js';
import { fmtInt, formatTable } from './table.js';

interface Summary<R = RunResult> {
  scenario: string;
  group: 'chat' | 'classifier';
  description: string;
  /** 1-, 5- and 15-minute load averages of the machine before and after the scenario's runs. */
  loadAverage: { before: number[]; after: number[] };
  runs: R[];
  median: Record<string, number>;
  spread: Record<string, Spread>;
  targets: { label: string; value: number; met: boolean }[];
  /** Every run delivered everything, exactly once and in order. */
  correct: boolean;
}

type ChatEntry = { group: 'chat'; sc: Scenario };
type Entry = ChatEntry | { group: 'classifier'; sc: ClassifierScenario };

const ENTRIES: Entry[] = [
  ...SCENARIOS.map((sc): Entry => ({ group: 'chat', sc })),
  ...CLASSIFIER_SCENARIOS.map((sc): Entry => ({ group: 'classifier', sc })),
];

const FIGURES = [
  'deliveriesPerSecond',
  'deliveriesPerCpuSecond',
  'latencyP50Ms',
  'latencyP99Ms',
  'latencyMaxMs',
  'serverCpuSeconds',
  'serverUserSeconds',
  'serverSystemSeconds',
  'generatorCpuSeconds',
  'wallSeconds',
  'deliveries',
  'rounds',
  'lost',
  'duplicates',
  'outOfOrder',
  'peakRss',
  'rss',
] as const;

function usage(): string {
  return [
    'usage: node dist-bench/bench/main.js [options]',
    '  --scenario NAME   a scenario or a group (repeatable, or comma-separated); default: all',
    `                    chat:       ${SCENARIOS.filter((s) => !s.onRequest).map((s) => s.name).join(', ')}`,
    `                    chat, only when named: ${SCENARIOS.filter((s) => s.onRequest).map((s) => s.name).join(', ')}`,
    `                    classifier: ${CLASSIFIER_SCENARIOS.map((s) => s.name).join(', ')}`,
    '                    history:    the history store through the server: stored messages/s by --fsync, bytes on disk, resume time',
    '                    redis:      one room through Redis: published messages/s, Redis CPU per message (skipped, with a notice, without redis-server)',
    '                    tls-handshakes: connections to serve --tls opened and closed, TLS against clear: per second, server CPU each',
    '                    all:        every group (the classifier group is skipped, with a notice, when the model kit is missing)',
    '  --runs N          runs per scenario, each against a fresh server (default 3); the chat',
    '                    scenarios take turns: run 1 of each, then run 2 of each, ...',
    '  --seconds S       measured time per run (default 5); the classifier scenarios stop each',
    '                    phase at S seconds or its image count; classifier-chat runs max(6 S, 60) s',
    '                    of chat, in 2 s windows with the classifier saturated and idle in turn',
    '  --model FILE      classifier scenarios: the ONNX model (with --labels; default: the installed',
    '                    model, else the kit in $ROOMCAST_TEST_MODELS)',
    '  --labels FILE     classifier scenarios: its labels (default: beside the model)',
    '  --photos DIR      classifier scenarios: the images to post (default: $ROOMCAST_TEST_MODELS/photos)',
    '  --max-rounds N    rounds per run at most (default 1000)',
    '  --wire text|json  wire format of the active clients (default text)',
    '  --batch N         messages per write in the unpaced scenarios (default: the scenario\'s)',
    '  --json            print the results as JSON on stdout (the table goes to stderr)',
    '  --out FILE        where to write the JSON results (default bench-results.json)',
    '  --server-arg ARG  extra option for `roomcast serve` (repeatable)',
    '  --server-root DIR run the server of another build (a copy with bin/ and dist/), to compare',
    '  --server-log FILE append the server\'s output to FILE',
    '  --node-arg ARG    extra option for the server\'s node, e.g. --node-arg=--cpu-prof (repeatable)',
  ].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      runs: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      'max-rounds': { type: 'string', default: '1000' },
      wire: { type: 'string', default: 'text' },
      batch: { type: 'string' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      'server-arg': { type: 'string', multiple: true },
      'node-arg': { type: 'string', multiple: true },
      'server-root': { type: 'string' },
      'server-log': { type: 'string' },
      model: { type: 'string' },
      labels: { type: 'string' },
      photos: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(usage());
    return 0;
  }
  const runs = positiveInt(values.runs!, 'runs', 100);
  const seconds = Number(values.seconds);
  const maxRounds = positiveInt(values['max-rounds']!, 'max-rounds', 100_000);
  if (!(seconds > 0 && seconds <= 600)) throw new Error('--seconds must be between 0 and 600');
  if (values.wire !== 'text' && values.wire !== 'json') throw new Error('--wire must be text or json');
  const wanted = (values.scenario ?? ['all']).flatMap((s) => s.split(',')).map((s) => s.trim());
  const all = wanted.includes('all');
  // The history figures are a run of their own, not a scenario of rounds.
  const history = all || wanted.includes('history');
  const redis = all || wanted.includes('redis');
  const handshakes = all || wanted.includes('tls-handshakes');
  let entries = [...new Set(wanted.filter((w) => w !== 'history' && w !== 'redis' && w !== 'tls-handshakes').flatMap(findEntries))];

  // With --json, stdout carries only the JSON document.
  const say = values.json ? (m: string) => console.error(m) : (m: string) => console.log(m);
  const serverRoot = values['server-root'] === undefined ? undefined : path.resolve(values['server-root']);
  const serverArgs = values['server-arg'] ?? [];
  const nodeArgs = values['node-arg'] ?? [];

  let kit: Kit | undefined;
  if (entries.some((e) => e.group === 'classifier')) {
    try {
      kit = await loadKit({ model: values.model, labels: values.labels, photos: values.photos });
    } catch (err) {
      if (!all || wanted.some((w) => w !== 'all')) throw err;
      say(`classifier scenarios skipped: ${(err as Error).message}`);
      entries = entries.filter((e) => e.group !== 'classifier');
    }
  }

  // The cluster twins need a redis-server to start; without one they are skipped, saying why.
  const needsRedis = (e: (typeof entries)[number]): boolean => (e.group === 'chat' && e.sc.cluster !== undefined) || (e.group === 'classifier' && e.sc.name.endsWith('-remote'));
  const noRedisForClusters = entries.some(needsRedis) ? redisMissing() : null;
  if (noRedisForClusters) {
    say(`cluster scenarios skipped: ${noRedisForClusters}`);
    entries = entries.filter((e) => !needsRedis(e));
  }

  const summaries: Summary<unknown>[] = [];
  const chat = entries.filter((e): e is ChatEntry => e.group === 'chat');
  if (chat.length > 0) {
    // The chat scenarios take turns, run 1 of each, then run 2 of each, and so on, rather than
    // one scenario's runs back to back: this VM's speed drifts over minutes (one build's
    // ws-fanout-100 gave 6.5 M and 8.3 M deliveries/CPU-s in invocations minutes apart, each
    // with its 3 runs within 10% of one another). Taking turns spreads the drift over every
    // scenario alike, and the comparisons pair runs that ran side by side.
    const before = loadavg();
    for (const { sc } of chat) say(`${sc.name}: ${sc.description}`);
    say(`(load average ${fmtLoad(before)})`);
    const results = chat.map((): RunResult[] => []);
    for (let i = 0; i < runs; i++) {
      for (const [k, { sc }] of chat.entries()) {
        const r = await runScenario(sc, {
          seconds,
          maxRounds,
          roundTimeoutMs: 30_000,
          wire: values.wire,
          serverArgs,
          nodeArgs,
          serverRoot,
          serverLog: values['server-log'],
          batch: values.batch === undefined ? undefined : positiveInt(values.batch, 'batch', 10_000),
          log: say,
        });
        results[k].push(r);
        say(`  ${sc.name} run ${i + 1}/${runs}: ${describeRun(r)}`);
        for (const e of r.errorSamples) say(`    ! ${e}`);
      }
    }
    const after = loadavg();
    chat.forEach(({ sc }, k) => summaries.push({ ...summarize(sc, results[k]), loadAverage: { before, after } }));
  }
  for (const entry of entries) {
    if (entry.group !== 'classifier') continue;
    const before = loadavg();
    say(`${entry.sc.name}: ${entry.sc.description} (load average ${fmtLoad(before)})`);
    const ctx: ClassifierContext = {
      kit: kit!,
      seconds,
      server: { root: serverRoot, nodeArgs, args: serverArgs, logFile: values['server-log'] },
      log: say,
    };
    const results: ClassifierRun[] = [];
    for (let i = 0; i < runs; i++) {
      say(`  run ${i + 1}/${runs} (load average ${fmtLoad(loadavg())}):`);
      const r = await entry.sc.run(ctx);
      results.push(r);
      say(`  run ${i + 1}/${runs}: ${entry.sc.figures.map((f) => `${f.key} ${fmtFigure(r.figures[f.key], f.digits)}`).join(', ')}`);
    }
    summaries.push({ ...summarizeClassifier(entry.sc, results), loadAverage: { before, after: loadavg() } });
  }

  let handshakeFigures: HandshakeFigures | undefined;
  if (handshakes) {
    say(`tls-handshakes: connections to serve --tls opened and closed, TLS handshake against clear connect (load average ${fmtLoad(loadavg())})`);
    // A handshake rate settles within a second: a fifth of --seconds a phase keeps the two
    // phases of each run, server start included, within the time of one chat scenario's run.
    handshakeFigures = await runTlsHandshakes({
      runs,
      secondsPerPhase: seconds / 5,
      server: { args: serverArgs, nodeArgs, root: serverRoot, logFile: values['server-log'] },
      log: say,
    });
  }

  let historyFigures: HistoryFigures | undefined;
  if (history) {
    say('history: stored messages per second in one room (--fsync batch and always), size on disk, resume after a restart');
    historyFigures = await runHistoryFigures(say, seconds);
  }

  let redisFigures: RedisFigures | undefined;
  const noRedis = redis ? redisMissing() : null;
  if (noRedis) say(`redis: skipped: ${noRedis}`);
  else if (redis) {
    say('redis: one room through Redis (the atomic publish, a subscriber feed)');
    redisFigures = await runRedisFigures(200_000, 1000, runs);
  }

  const chatSummaries = summaries.filter((s): s is Summary => s.group === 'chat');
  for (const line of compareTransports(chatSummaries)) say(line);
  const classifierSummaries = summaries.filter((s): s is Summary<ClassifierRun> => s.group === 'classifier');
  say('');
  if (chatSummaries.length > 0) say(table(chatSummaries));
  if (handshakeFigures) say(handshakeTable(handshakeFigures));
  if (historyFigures) say(historyTable(historyFigures));
  if (redisFigures) say(redisTable(redisFigures));
  if (classifierSummaries.length > 0) {
    if (chatSummaries.length > 0) say('');
    say(classifierTable(classifierSummaries));
  }
  const doc = {
    date: new Date().toISOString(),
    node: process.version,
    runs,
    seconds,
    wire: values.wire,
    serverRoot: values['server-root'] ?? PROJECT_ROOT,
    ...(kit ? { kit: { model: kit.model, labels: kit.labels, photos: kit.photosDir, images: kit.images.length } } : {}),
    scenarios: summaries,
    ...(handshakeFigures ? { tlsHandshakes: handshakeFigures } : {}),
    ...(historyFigures ? { history: historyFigures } : {}),
    ...(redisFigures ? { redis: redisFigures } : {}),
  };
  if (values.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  else {
    const out = path.resolve(values.out ?? path.join(PROJECT_ROOT, 'bench-results.json'));
    writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
    say(`results: ${out}`);
  }
  const ok = summaries.every((s) => s.correct) && redisFigures?.allDelivered !== false && handshakeFigures?.correct !== false;
  if (!ok) say('SOME DELIVERIES WERE LOST, DUPLICATED OR OUT OF ORDER, OR A RUN FAILED (see above)');
  return ok ? 0 : 1;
}

/** A scenario by name, or the scenarios of a group (chat, classifier, all), but those run only when named. */
function findEntries(name: string): Entry[] {
  const grouped = ENTRIES.filter((e) => !(e.group === 'chat' && e.sc.onRequest));
  if (name === 'all') return grouped;
  if (name === 'chat' || name === 'classifier') return grouped.filter((e) => e.group === name);
  const entry = ENTRIES.find((e) => e.sc.name === name);
  if (!entry) throw new Error(`unknown scenario "${name}"; known: ${ENTRIES.map((e) => e.sc.name).join(', ')}, or chat, classifier, history, redis, tls-handshakes, all`);
  return [entry];
}

function historyTable(h: HistoryFigures): string {
  const rate = (k: string): string => `${fmtInt(h.storedPerSecond[k] ?? NaN)}/s (${(h.cpuMicrosPerMessage[k] ?? NaN).toFixed(1)} µs CPU a message)`;
  const batch = h.storedPerSecond.batch ?? 0;
  return [
    'history store through the server (one room, one JSON client, acked messages):',
    `  --fsync batch   ${rate('batch')}   target >= 50,000/s: ${batch >= 50_000 ? 'met' : 'MISSED'}`,
    `  --fsync always  ${rate('always')}`,
    `  on disk         ${h.bytesPerMessage.toFixed(1)} bytes a message (${fmtInt(h.messages)} messages)`,
    `  restart         listening after ${h.listenMs.toFixed(0)} ms, 10,000 messages of history read after ${h.read10kMs.toFixed(0)} ms`,
  ].join('\n');
}

function positiveInt(v: string, name: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be a whole number from 1 to ${max}`);
  return n;
}


function checkTargets(targets: Target<string>[], median: Record<string, number>): Summary['targets'] {
  return targets.map((t) => {
    const value = median[t.metric];
    return { label: t.label, value, met: t.bound === 'min' ? value >= t.value : value <= t.value };
  });
}

function summarize(sc: Scenario, runs: RunResult[]): Omit<Summary, 'loadAverage'> {
  const rows = runs.map((r) => ({
    ...Object.fromEntries(FIGURES.map((f) => [f, r[f]])),
    ...(r.idle ? { idleBytesPerConnection: r.idle.bytesPerConnection } : {}),
  }));
  const keys: string[] = runs.some((r) => r.idle) ? [...FIGURES, 'idleBytesPerConnection'] : [...FIGURES];
  const { median, spread: spreads } = figuresOf(rows, keys);
  const correct = runs.every(
    (r) => r.complete && r.lost === 0 && r.duplicates === 0 && r.outOfOrder === 0 && r.unexpected === 0 && r.errors === 0,
  );
  return { scenario: sc.name, group: 'chat', description: sc.description, runs, median, spread: spreads, targets: checkTargets(sc.targets, median), correct };
}

function summarizeClassifier(sc: ClassifierScenario, runs: ClassifierRun[]): Omit<Summary<ClassifierRun>, 'loadAverage'> {
  const { median, spread: spreads } = figuresOf(runs.map((r) => r.figures), sc.figures.map((f) => f.key));
  // A failed image or chat phase throws; every run that is here completed.
  return { scenario: sc.name, group: 'classifier', description: sc.description, runs, median, spread: spreads, targets: checkTargets(sc.targets, median), correct: true };
}

function describeRun(r: RunResult): string {
  const idle = r.idle ? `, ${(r.idle.bytesPerConnection / 1024).toFixed(2)} KB/idle conn` : '';
  return (
    `${r.rounds} rounds, ${fmtInt(r.deliveries)} deliveries in ${r.wallSeconds.toFixed(2)} s, ` +
    `server CPU ${r.serverCpuSeconds.toFixed(2)} s (${r.serverUserSeconds.toFixed(2)} user; generator ${r.generatorCpuSeconds.toFixed(2)}) -> ${fmtInt(r.deliveriesPerCpuSecond)}/CPU-s, ` +
    `${fmtInt(r.deliveriesPerSecond)}/s, p50 ${r.latencyP50Ms.toFixed(2)} p99 ${r.latencyP99Ms.toFixed(2)} ` +
    `max ${r.latencyMaxMs.toFixed(1)} ms, lost/dup/ooo ${r.lost}/${r.duplicates}/${r.outOfOrder}, ` +
    `peak RSS ${(r.peakRss / 1048576).toFixed(1)} MB${idle}${r.complete ? '' : ' INCOMPLETE'}`
  );
}

function table(summaries: Omit<Summary, 'loadAverage'>[]): string {
  const head = [
    'scenario', 'deliv/s', 'deliv/CPU-s', '(min-max)', 'p50 ms', 'p99 ms', 'max ms',
    'lost/dup/ooo', 'CPU s', 'peak RSS MB', 'idle B/conn', 'targets',
  ];
  const rows = summaries.map((s) => {
    const m = s.median;
    const sp = s.spread.deliveriesPerCpuSecond;
    const worst = (k: 'lost' | 'duplicates' | 'outOfOrder'): number => s.spread[k].max;
    return [
      s.scenario,
      fmtInt(m.deliveriesPerSecond),
      fmtInt(m.deliveriesPerCpuSecond),
      `${fmtInt(sp.min)}-${fmtInt(sp.max)}`,
      m.latencyP50Ms.toFixed(2),
      m.latencyP99Ms.toFixed(2),
      m.latencyMaxMs.toFixed(1),
      `${worst('lost')}/${worst('duplicates')}/${worst('outOfOrder')}`,
      m.serverCpuSeconds.toFixed(2),
      (m.peakRss / 1048576).toFixed(1),
      m.idleBytesPerConnection === undefined ? '-' : fmtInt(m.idleBytesPerConnection),
      s.targets.map((t) => `${t.met ? 'MET' : 'NOT MET'} ${t.label}`).join('; ') + (s.correct ? '' : ' [INCORRECT]'),
    ];
  });
  return ['medians of each scenario\'s runs (lost/dup/ooo: the worst run)', formatTable(head, rows)].join('\n');
}

/** One row per figure: the median of the runs, their spread, and the target it is held to. */
function classifierTable(summaries: Summary<ClassifierRun>[]): string {
  const rows: string[][] = [];
  for (const s of summaries) {
    const sc = CLASSIFIER_SCENARIOS.find((c) => c.name === s.scenario)!;
    sc.figures.forEach((f, i) => {
      const sp = s.spread[f.key]!;
      const target = s.targets.find((t, k) => sc.targets[k]!.metric === f.key);
      rows.push([
        i === 0 ? s.scenario : '',
        f.label,
        fmtFigure(s.median[f.key], f.digits),
        `${fmtFigure(sp.min, f.digits)} .. ${fmtFigure(sp.max, f.digits)}`,
        target ? `${target.met ? 'MET' : 'NOT MET'} ${target.label}` : '',
      ]);
    });
  }
  return ['classifier scenarios: medians of the runs, (min .. max) over the runs', formatTable(['scenario', 'figure', 'median', '(min .. max)', 'target'], rows, 2)].join('\n');
}

function fmtFigure(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

function fmtLoad(l: number[]): string {
  return l.map((x) => x.toFixed(2)).join(' ');
}

// Ctrl-C: exit through process.exit so the exit hook kills the server child.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${(err as Error)?.stack ?? err}`);
    process.exit(1);
  },
);

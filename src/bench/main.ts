/**
 * `npm run bench`: the roomcast load benchmark. Not a test: it measures.
 *
 *   node dist/bench/main.js [--scenario NAME[,NAME]] [--runs N] [--seconds S] [--json]
 *                           [--out FILE] [--wire text|json] [--server-arg ARG]... [--node-arg ARG]...
 *
 * Each scenario is run N times (default 3), each time against a fresh server; the table shows
 * the median of the runs and the spread (min-max) of the key figure. The full per-run results go
 * to bench-results.json (or to stdout with --json, the table then going to stderr).
 *
 * The figure that matters for fan-out is deliveries per server CPU-second: wall-clock rates
 * depend on what else the machine is doing (the generator itself needs a core), CPU time per
 * delivery much less so.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SCENARIOS, runScenario, type RunResult, type Scenario, type Target } from './scenarios.js';
import { PROJECT_ROOT } from './server-process.js';
import { spread, type Spread } from './stats.js';

interface Summary {
  scenario: string;
  description: string;
  runs: RunResult[];
  median: Record<string, number>;
  spread: Record<string, Spread>;
  targets: { label: string; value: number; met: boolean }[];
  /** Every run delivered everything, exactly once and in order. */
  correct: boolean;
}

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
    'usage: node dist/bench/main.js [options]',
    `  --scenario NAME   ${SCENARIOS.map((s) => s.name).join(', ')} or all (default; repeatable, or comma-separated)`,
    '  --runs N          runs per scenario, each against a fresh server (default 3)',
    '  --seconds S       measured time per run (default 5)',
    '  --max-rounds N    rounds per run at most (default 1000)',
    '  --wire text|json  wire format of the active clients (default text)',
    '  --batch N         messages per write in the unpaced scenarios (default: the scenario\'s)',
    '  --json            print the results as JSON on stdout (the table goes to stderr)',
    '  --out FILE        where to write the JSON results (default bench-results.json)',
    '  --server-arg ARG  extra option for `roomcast serve` (repeatable)',
    '  --server-root DIR run the server of another build (a copy with bin/ and dist/), to compare',
    '  --server-log FILE append the server\'s output to FILE',
    '  --node-arg ARG    extra option for the server\'s node, e.g. --cpu-prof (repeatable)',
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
  const scenarios = wanted.includes('all') ? SCENARIOS : wanted.map(findScenario);

  // With --json, stdout carries only the JSON document.
  const say = values.json ? (m: string) => console.error(m) : (m: string) => console.log(m);
  const summaries: Summary[] = [];
  for (const sc of scenarios) {
    say(`${sc.name}: ${sc.description}`);
    const results: RunResult[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runScenario(sc, {
        seconds,
        maxRounds,
        roundTimeoutMs: 30_000,
        wire: values.wire,
        serverArgs: values['server-arg'] ?? [],
        nodeArgs: values['node-arg'] ?? [],
        serverRoot: values['server-root'] === undefined ? undefined : path.resolve(values['server-root']),
        serverLog: values['server-log'],
        batch: values.batch === undefined ? undefined : positiveInt(values.batch, 'batch', 10_000),
        log: say,
      });
      results.push(r);
      say(`  run ${i + 1}/${runs}: ${describeRun(r)}`);
      for (const e of r.errorSamples) say(`    ! ${e}`);
    }
    summaries.push(summarize(sc, results));
  }

  say('');
  say(table(summaries));
  const doc = {
    date: new Date().toISOString(),
    node: process.version,
    runs,
    seconds,
    wire: values.wire,
    serverRoot: values['server-root'] ?? PROJECT_ROOT,
    scenarios: summaries,
  };
  if (values.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  else {
    const out = path.resolve(values.out ?? path.join(PROJECT_ROOT, 'bench-results.json'));
    writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
    say(`results: ${out}`);
  }
  const ok = summaries.every((s) => s.correct);
  if (!ok) say('SOME DELIVERIES WERE LOST, DUPLICATED OR OUT OF ORDER, OR A RUN FAILED (see above)');
  return ok ? 0 : 1;
}

function findScenario(name: string): Scenario {
  const sc = SCENARIOS.find((s) => s.name === name);
  if (!sc) throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return sc;
}

function positiveInt(v: string, name: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be a whole number from 1 to ${max}`);
  return n;
}

function summarize(sc: Scenario, runs: RunResult[]): Summary {
  const median: Record<string, number> = {};
  const spreads: Record<string, Spread> = {};
  const add = (key: string, values: number[]): void => {
    spreads[key] = spread(values);
    median[key] = spreads[key].median;
  };
  for (const f of FIGURES) add(f, runs.map((r) => r[f]));
  if (runs.some((r) => r.idle)) add('idleBytesPerConnection', runs.map((r) => r.idle?.bytesPerConnection ?? NaN));
  const targets = sc.targets.map((t: Target) => {
    const value = median[t.metric];
    return { label: t.label, value, met: t.bound === 'min' ? value >= t.value : value <= t.value };
  });
  const correct = runs.every(
    (r) => r.complete && r.lost === 0 && r.duplicates === 0 && r.outOfOrder === 0 && r.unexpected === 0 && r.errors === 0,
  );
  return { scenario: sc.name, description: sc.description, runs, median, spread: spreads, targets, correct };
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

function table(summaries: Summary[]): string {
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
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padStart(i === 0 ? 0 : widths[i]).padEnd(i === 0 ? widths[i] : 0))).join('  ');
  return [
    'medians of each scenario\'s runs (lost/dup/ooo: the worst run)',
    line(head),
    ...rows.map(line),
  ].join('\n');
}

function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
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

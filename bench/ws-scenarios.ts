/**
 * WebSocket scenarios: the fan-out and latency scenarios again, with WebSocket clients only
 * and with rooms of TCP and WebSocket clients mixed, so each figure has a TCP twin to be
 * compared with (same rooms, senders, messages and sizes; only the transport differs).
 *
 * WebSocket carries the JSON events (one per message), TCP the scenario's --wire format (text
 * lines by default, a third smaller than the JSON); there is also TCP with the same
 * JSON bytes (json-fanout-100), to tell the transport's cost from the format's.
 */
import type { Scenario, Target } from './scenarios.js';
import { spread } from './stats.js';

const FANOUT = {
  rooms: { count: 1, members: 100, senders: 10 },
  idle: 0,
  load: { kind: 'burst', perSender: 1000, batch: 50 },
  textBytes: 100,
} as const;

const LATENCY = {
  rooms: { count: 1, members: 200, senders: 5 },
  idle: 0,
  load: { kind: 'paced', rate: 200, roundSeconds: 1 },
  textBytes: 100,
} as const;

export const WS_SCENARIOS: Scenario[] = [
  {
    name: 'ws-fanout-100',
    description: 'fanout-100 with WebSocket clients only: one room of 100, 10 senders x 1,000 messages per round, unpaced',
    ...FANOUT,
    load: { ...FANOUT.load },
    rooms: { ...FANOUT.rooms },
    wire: 'ws',
    targets: [],
  },
  {
    name: 'mixed-fanout-100',
    description: 'fanout-100 with every other client on WebSocket (the rest TCP, --wire), senders of both kinds',
    ...FANOUT,
    load: { ...FANOUT.load },
    rooms: { ...FANOUT.rooms },
    wires: ['ws', 'tcp'],
    targets: [],
  },
  {
    name: 'json-fanout-100',
    description: 'fanout-100 over TCP in JSON mode: the same bytes as WebSocket carries, without the WebSocket framing',
    ...FANOUT,
    load: { ...FANOUT.load },
    rooms: { ...FANOUT.rooms },
    wire: 'json',
    targets: [],
  },
  {
    name: 'ws-latency-200',
    description: 'latency-200 with WebSocket clients only: one room of 200, 5 senders at 200 messages/s each, paced',
    ...LATENCY,
    load: { ...LATENCY.load },
    rooms: { ...LATENCY.rooms },
    wire: 'ws',
    targets: [{ metric: 'latencyP99Ms', bound: 'max', value: 5, label: 'p99 <= 5 ms' }],
  },
  {
    name: 'mixed-latency-200',
    description: 'latency-200 with every other client on WebSocket',
    ...LATENCY,
    load: { ...LATENCY.load },
    rooms: { ...LATENCY.rooms },
    wires: ['ws', 'tcp'],
    targets: [{ metric: 'latencyP99Ms', bound: 'max', value: 5, label: 'p99 <= 5 ms' }],
  },
];

/** A figure of one scenario held against the same figure of its twin (TCP, memory-only history, clear text). */
interface Comparison {
  scenario: string;
  baseline: string;
  metric: Extract<Target['metric'], 'deliveriesPerCpuSecond' | 'latencyP99Ms'> | 'deliveriesPerSecond';
  /**
   * The scenario's figure must be at least (a rate), or at most (a latency), this share of the
   * baseline's; neither: the share is reported without a target.
   */
  atLeast?: number;
  atMost?: number;
}

const COMPARISONS: Comparison[] = [
  { scenario: 'ws-fanout-100', baseline: 'fanout-100', metric: 'deliveriesPerCpuSecond', atLeast: 0.7 },
  { scenario: 'ws-fanout-100', baseline: 'json-fanout-100', metric: 'deliveriesPerCpuSecond', atLeast: 0.7 },
  { scenario: 'mixed-fanout-100', baseline: 'fanout-100', metric: 'deliveriesPerCpuSecond', atLeast: 0.7 },
  { scenario: 'fanout-100-stored', baseline: 'fanout-100', metric: 'deliveriesPerCpuSecond', atLeast: 0.9 },
  { scenario: 'rooms-1000-stored', baseline: 'rooms-1000', metric: 'deliveriesPerCpuSecond', atLeast: 0.9 },
  { scenario: 'latency-200-stored', baseline: 'latency-200', metric: 'latencyP99Ms', atMost: 1.2 },
  { scenario: 'rooms-1000-cluster2', baseline: 'rooms-1000', metric: 'deliveriesPerSecond', atLeast: 1.6 },
  { scenario: 'rooms-1000-cluster2', baseline: 'rooms-1000', metric: 'deliveriesPerCpuSecond' },
  { scenario: 'fanout-100-cluster2', baseline: 'fanout-100', metric: 'deliveriesPerSecond' },
  { scenario: 'fanout-100-cluster2', baseline: 'fanout-100', metric: 'deliveriesPerCpuSecond' },
  // Issue 17: each recipient's bytes are encrypted once per connection, so TLS may cost up to as much again.
  { scenario: 'fanout-100-tls', baseline: 'fanout-100', metric: 'deliveriesPerCpuSecond', atLeast: 0.5 },
  { scenario: 'rooms-1000-tls', baseline: 'rooms-1000', metric: 'deliveriesPerCpuSecond' },
];

interface SummaryLike {
  scenario: string;
  runs: { deliveriesPerCpuSecond: number; deliveriesPerSecond: number; latencyP99Ms: number }[];
  median: Record<string, number>;
  targets: { label: string; value: number; met: boolean }[];
}

/**
 * Adds the targets of a scenario against its twin (WebSocket against TCP, the history store
 * against memory only) to the summaries of scenarios that ran together with their baseline (so they show in the table and the JSON), and says how each compares. The
 * share is the median of the ratios of runs that ran side by side (main.ts runs the chat
 * scenarios in turns), so a drift in the machine's speed between runs cancels out; with
 * unequal run counts it is the ratio of the medians.
 */
export function compareTransports(summaries: SummaryLike[]): string[] {
  const lines: string[] = [];
  for (const c of COMPARISONS) {
    const s = summaries.find((x) => x.scenario === c.scenario);
    const base = summaries.find((x) => x.scenario === c.baseline);
    if (!s || !base) continue;
    const paired = s.runs.length === base.runs.length && s.runs.length > 0;
    const ratios = paired ? s.runs.map((r, i) => r[c.metric] / base.runs[i][c.metric]) : [];
    const ratio = paired ? spread(ratios).median : s.median[c.metric] / base.median[c.metric];
    const pairs = paired ? ` (median of the runs side by side: ${ratios.map(pct).join(', ')})` : ' (ratio of the medians)';
    if (c.atLeast === undefined && c.atMost === undefined) {
      // A figure to report side by side, without a target.
      lines.push(`${c.scenario}: ${c.metric} ${pct(ratio)} of ${c.baseline}'s${pairs}`);
      continue;
    }
    const label = c.atMost === undefined ? `>= ${Math.round(c.atLeast! * 100)}% of ${c.baseline}` : `<= ${Math.round(c.atMost * 100)}% of ${c.baseline}`;
    s.targets.push({ label, value: ratio, met: c.atMost === undefined ? ratio >= c.atLeast! : ratio <= c.atMost });
    lines.push(`${c.scenario}: ${c.metric} ${pct(ratio)} of ${c.baseline}'s${pairs}; target ${label}`);
  }
  return lines;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

/**
 * `roomcast probe`: the binding experiment (src/lan/probe.ts) on this machine's addresses,
 * printed as a table or as JSON.
 */
import { colorLevel } from '../client/render.js';
import { localAddresses } from '../lan/interfaces.js';
import { runProbe } from '../lan/probe.js';
import { probeJson, renderProbeReport } from './probe-report.js';

/** Runs the experiment and prints its report: a table for people, or JSON. */
export async function runProbeCommand(opts: { timeoutMs: number; json: boolean }): Promise<void> {
  const report = await runProbe({ timeoutMs: opts.timeoutMs, addresses: localAddresses() });
  const out = process.stdout;
  out.write(opts.json ? probeJson(report) : renderProbeReport(report, { color: colorLevel(out, process.env), width: Math.min(out.columns || 80, 100) }));
}

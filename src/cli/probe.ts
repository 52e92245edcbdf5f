/**
 * `roomcast probe`: the binding experiment (src/lan/probe.ts) on this machine's addresses,
 * printed as a table or as JSON. Registered from main.ts.
 */
import { Command } from 'commander';
import { milliseconds } from './numbers.js';
import { colorLevel } from '../client/render.js';
import { localAddresses } from '../lan/interfaces.js';
import { runProbe } from '../lan/probe.js';
import { probeJson, renderProbeReport } from '../lan/probe-report.js';

export const PROBE_DEFAULT_TIMEOUT_MS = 1000;


export function registerProbeCommand(program: Command): void {
  program
    .command('probe')
    .description('test which addresses reach a server bound to localhost, 0.0.0.0, :: and each of this machine\'s addresses')
    .option('--json', 'print the results as JSON (described below)')
    .option('--timeout <ms>', 'time limit for each connection attempt', milliseconds(1), PROBE_DEFAULT_TIMEOUT_MS)
    .addHelpText(
      'after',
      `
For each bind address it listens on a free port of its own, connects from this machine
through each of this machine's addresses, and prints who got through and why not. It only
uses this machine's own addresses, and closes everything it opened before it exits.

--json prints one object (format 1):
  format        1
  timeoutMs     the --timeout used
  addresses     this machine's addresses: {interface, address, family (4|6), loopback,
                linkLocal}; link-local IPv6 has its zone (fe80::1%eth0)
  destinations  the addresses connected to, in column order
  binds         one per row: {bind (as --host takes it), bound (addresses listened on),
                port (null if nothing could be bound), error (null, or {code, message}),
                attempts: [{destination, outcome, peer, code}]}
  outcome is yes | refused | unreachable | unavailable | timeout | other | error; peer (yes
  only) is the client's address as the server saw it (::ffff:a.b.c.d: IPv4 on a dual-stack
  socket); code is the system's error code (ECONNREFUSED...) or null.`,
    )
    .action(async (opts: { json?: boolean; timeout: number }) => {
      const report = await runProbe({ timeoutMs: opts.timeout, addresses: localAddresses() });
      const out = process.stdout;
      out.write(opts.json ? probeJson(report) : renderProbeReport(report, { color: colorLevel(out, process.env), width: Math.min(out.columns || 80, 100) }));
    });
}

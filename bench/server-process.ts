/**
 * The server under test, as a child process: the generator and the server must not share an
 * event loop (or a CPU count), or neither figure would mean anything.
 *
 * It is started through the real executable with the real CLI, on a port the kernel picks, and
 * always stopped by its PID: politely first (SIGTERM, so a --cpu-prof profile gets written),
 * then SIGKILL. A process exit hook kills it too, whatever path the benchmark leaves by.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, clockTicks, cpuSeconds, readCpu, readMemory, type MemoryStatus } from './proc.js';

/** The package root: dist-bench/bench/ is two levels below it. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const HZ = clockTicks();
const live = new Set<ChildProcess>();

// Last resort: never leave a server behind, even when the benchmark throws or is interrupted.
process.on('exit', () => {
  for (const child of live) if (child.pid !== undefined && child.exitCode === null) safeKill(child.pid, 'SIGKILL');
});

function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** serve --tls with its certificate made in the run's own data directory. */
export function tlsServerArgs(dataDir: string): string[] {
  return ['--tls', '--data-dir', dataDir];
}

export interface ServerSpec {
  /** Extra `serve` options, after the fixed ones. */
  args?: string[];
  /** Options for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  startTimeoutMs?: number;
  /** Another build's package root (with bin/ and dist/), to compare two versions. */
  root?: string;
  /** Append the server's stdout and stderr to this file (for --trace-gc and the like). */
  logFile?: string;
  /**
   * Processes whose CPU counts as the server's too: the server's own children when
   * countChildren (its --processes workers; not the classifier's pool, which the classifier
   * figures keep apart), and these (the Redis a cluster runs on).
   */
  countChildren?: boolean;
  alsoCounted?: () => number[];
}

export class ServerProcess {
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    readonly port: number,
    private readonly stderr: () => string,
    private readonly alsoCounted?: () => number[],
    private readonly countChildren = false,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  static async start(spec: ServerSpec = {}): Promise<ServerProcess> {
    const args = [
      ...(spec.nodeArgs ?? []),
      path.join(spec.root ?? PROJECT_ROOT, 'bin', 'roomcast'),
      'serve',
      '--host', '127.0.0.1',
      '--port', '0',
      '--quiet',
      '--flood-rate', '0',
      '--max-per-address', '20000',
      '--max-connections', '20000',
      // An unpaced round queues over a megabyte per receiver (the default SendQ) while the
      // generator, one thread for all clients, catches up: a benchmark client is slow by
      // design, not a reader to be cut off. Memory stays bounded by the round size.
      '--max-sendq', String(64 << 20),
      ...(spec.args ?? []),
    ];
    const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error('could not start the server');
    live.add(child);
    child.once('exit', () => live.delete(child));
    const pid = child.pid;
    if (spec.logFile) {
      const log = createWriteStream(spec.logFile, { flags: 'a' });
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
    }
    // The server runs --quiet: whatever it writes to stderr is worth showing.
    let errText = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (errText.length < 64 * 1024) errText += d.toString();
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(
          () => reject(new Error(`server did not report its port within ${spec.startTimeoutMs ?? 10_000} ms`)),
          spec.startTimeoutMs ?? 10_000,
        );
        child.stdout!.on('data', (d: Buffer) => {
          if (out.length > 16384) return; // it keeps writing: keep draining, stop looking
          out += d.toString();
          const m = /roomcast listening on 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code, sig) => {
          clearTimeout(timer);
          reject(new Error(`server exited (${code ?? sig}) before listening: ${errText.trim()}`));
        });
      });
      return new ServerProcess(child, pid, port, () => errText, spec.alsoCounted, spec.countChildren);
    } catch (err) {
      safeKill(pid, 'SIGKILL');
      throw err;
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Seconds of CPU the server has used so far (with its worker processes and whatever else
   * the spec counts): user, system, and their sum.
   */
  cpu(): { user: number; system: number; total: number } {
    const t = { user: 0, system: 0 };
    for (const pid of [this.pid, ...(this.countChildren ? childPids(this.pid) : []), ...(this.alsoCounted?.() ?? [])]) {
      try {
        const c = readCpu(pid, HZ);
        t.user += c.user;
        t.system += c.system;
      } catch {
        // a worker that has just ended
      }
    }
    return { ...t, total: cpuSeconds(t) };
  }

  memory(): MemoryStatus {
    return readMemory(this.pid);
  }

  errors(): string {
    return this.stderr().trim();
  }

  /** SIGTERM, then SIGKILL if it has not gone within `graceMs`; resolves once it has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    safeKill(this.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!gone) {
      safeKill(this.pid, 'SIGKILL');
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    }
  }
}

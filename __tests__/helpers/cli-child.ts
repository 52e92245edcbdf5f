/**
 * The built CLI as a child process, for the tests that run it end to end (e2e-cli, lan,
 * discovery): piped stdio (so it runs in its non-terminal mode), its output collected, and
 * bounded waits on it that fail showing what it printed.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The package root, with a trailing slash. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${ROOT}bin/roomcast`;

/** The environment for a CLI child. Colour must be decided by the pipe, not inherited from
 *  whoever runs the tests; and the children are plain CLI runs, without jest's NODE_OPTIONS. */
export const CLI_ENV: NodeJS.ProcessEnv = { ...process.env };
delete CLI_ENV.FORCE_COLOR;
delete CLI_ENV.NO_COLOR;
delete CLI_ENV.NODE_OPTIONS;

/** One CLI process, with its output collected and bounded waits on it. */
export class CliChild {
  stdout = '';
  stderr = '';
  /** Its exit status once it has exited: 128 when a signal ended it (-1 if neither is known). */
  exitCode: number | null = null;
  readonly startedAt = Date.now();
  exitedAt = 0;
  /** Resolves with the exit status when it exits. */
  readonly exited: Promise<number>;
  private readonly waiters = new Set<() => void>();

  /** `waitMs` is how long a wait may take when the call does not say. */
  constructor(
    readonly name: string,
    readonly proc: ChildProcessWithoutNullStreams,
    readonly waitMs = 8000,
  ) {
    proc.stdout.setEncoding('utf8').on('data', (d: string) => this.got(() => (this.stdout += d)));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => this.got(() => (this.stderr += d)));
    proc.stdin.on('error', () => {}); // writing to one that has exited is the test's problem, not a crash
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        this.got(() => {
          this.exitCode = code ?? (signal ? 128 : -1);
          this.exitedAt = Date.now();
        });
        resolve(this.exitCode!);
      }),
    );
  }

  private got(update: () => void): void {
    update();
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when the probe holds; fails after a deadline showing what the child printed. */
  waitFor(probe: () => boolean, what: string, timeoutMs = this.waitMs): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!probe()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  waitOutput(text: string | RegExp, timeoutMs = this.waitMs): Promise<void> {
    const has = (): boolean => (typeof text === 'string' ? this.stdout.includes(text) : text.test(this.stdout));
    return this.waitFor(has, `stdout to show ${String(text)}`, timeoutMs);
  }

  async waitExit(timeoutMs = this.waitMs): Promise<number> {
    await this.waitFor(() => this.exitCode !== null, 'exit', timeoutMs);
    return this.exitCode!;
  }

  /** Asks it to stop with SIGTERM, as a person's Ctrl-C or a service manager would (a server
   *  says goodbye to its clients first), and resolves with its exit status. If it has not gone
   *  within the wait, SIGKILL, and the status is then 128. The caller's teardown (Lan.destroy,
   *  kill()) remains the backstop. */
  async stop(timeoutMs = this.waitMs): Promise<number> {
    if (this.exitCode === null) this.proc.kill('SIGTERM');
    try {
      return await this.waitExit(timeoutMs);
    } catch {
      this.kill();
      return this.waitExit(timeoutMs);
    }
  }

  /** SIGKILL by PID, if it is still running. */
  kill(): void {
    if (this.exitCode === null && this.proc.pid !== undefined) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

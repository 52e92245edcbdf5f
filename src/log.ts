/**
 * Server log lines. Writes are batched per event-loop turn: on Linux a pipe on stdout is
 * written synchronously, and a join storm must not turn into a syscall per line on the hub's
 * thread.
 */
export type LogLevel = 'quiet' | 'normal' | 'verbose';

const RANK: Record<LogLevel, number> = { quiet: 0, normal: 1, verbose: 2 };

export interface Logger {
  info(msg: string): void;
  debug(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  flush(): void;
}

export function createLogger(level: LogLevel, out: NodeJS.WritableStream = process.stdout): Logger {
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    out.write(text);
  };
  const line = (tag: string, msg: string): void => {
    pending.push(`${new Date().toISOString()} ${tag} ${msg}\n`);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const rank = RANK[level];
  return {
    info: (m) => rank >= 1 && line('info ', m),
    debug: (m) => rank >= 2 && line('debug', m),
    warn: (m) => line('warn ', m),
    error: (m) => line('error', m),
    flush,
  };
}

export const silentLogger: Logger = { info() {}, debug() {}, warn() {}, error() {}, flush() {} };

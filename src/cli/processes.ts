/**
 * `serve --redis URL --processes N`: N server processes sharing one port through Node's
 * cluster module (the primary accepts and hands connections out in turn), each a node of the
 * Redis cluster, so a client need not care which one it lands on. The primary serves nobody
 * itself: it starts the processes, prints one banner, replaces a process that dies, and on
 * SIGINT/SIGTERM stops them all.
 */
import cluster, { type Worker } from 'node:cluster';

/** What a worker tells the primary once it listens. */
interface Listening {
  type: 'listening';
  banner: string;
}

/** Replacements allowed within a minute before the primary gives up (a crash loop). */
const MAX_RESTARTS_PER_MINUTE = 10;

export const isServeWorker = (): boolean => cluster.isWorker;

/** Whether this process speaks for the others (announces them on the LAN): the first worker, or a lone server. */
export const firstProcess = (): boolean => !cluster.isWorker || cluster.worker?.id === 1;

/** In a worker: the banner goes to the primary, which prints it once for all. */
export function reportListening(banner: string): void {
  process.send?.({ type: 'listening', banner } satisfies Listening);
}

/**
 * Starts `n` copies of this command line as workers. Resolves with 1 when one could not start
 * (it has said why on stderr), or once all listen (the primary then runs until a signal).
 */
export function runProcesses(n: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    let stopping = false;
    let started = false;
    const restarts: number[] = [];
    const listening = new Set<Worker>();
    const fork = (): void => {
      const worker = cluster.fork();
      worker.on('message', (m: Listening) => {
        if (m?.type !== 'listening') return;
        listening.add(worker);
        if (!started && listening.size === n) {
          started = true;
          const pids = [...listening].map((w) => w.process.pid).join(', ');
          process.stdout.write(`${m.banner}Processes: ${n} (pids ${pids}), one port, rooms shared through Redis\n`);
          resolve(undefined);
        }
      });
      worker.on('exit', (code, signal) => {
        listening.delete(worker);
        if (stopping) return;
        if (!started) {
          // It said why on stderr (Redis unreachable, port taken): the others stop too.
          stopping = true;
          for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
          resolve(1);
          return;
        }
        const now = Date.now();
        restarts.push(now);
        while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
        if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
          console.error(`roomcast: server processes keep dying (${restarts.length} in a minute); stopping`);
          stop(1);
          return;
        }
        console.error(`roomcast: server process ${worker.process.pid} ended (${signal ?? `exit ${code}`}); starting another`);
        fork();
      });
    };
    const stop = (code: number): void => {
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      let left = workers.length;
      if (left === 0) process.exit(code);
      for (const w of workers) {
        w.once('exit', () => {
          if (--left === 0) process.exit(code);
        });
        w.process.kill('SIGTERM');
      }
    };
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (++signals > 1) {
        console.error(`roomcast: second ${sig}, exiting now`);
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
        process.exit(1);
      }
      stop(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let i = 0; i < n; i++) fork();
  });
}

/**
 * The history store through the real server (`npm run bench -- --scenario history`):
 *  - stored messages per second in one room: one JSON client sends as fast as the server acks
 *    (a window of unacked messages), under --fsync batch and always;
 *  - the store's size on disk per message, once the server has stopped;
 *  - resume across a restart: from spawning the server on that data dir to listening, and to
 *    having read 10,000 messages of history over HTTP, 200 a page.
 * Every loop is bounded in count and in time.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ServerProcess } from './server-process.js';

export interface HistoryFigures {
  /** Acked (and so stored) messages per second, by fsync policy. */
  storedPerSecond: Record<string, number>;
  /** Server CPU microseconds per stored message, by fsync policy. */
  cpuMicrosPerMessage: Record<string, number>;
  bytesPerMessage: number;
  messages: number;
  listenMs: number;
  read10kMs: number;
}

const WINDOW = 2000;
const TEXT = 'the quick brown fox jumps over the lazy dog while the room keeps on talking about it';

/** Sends up to `max` messages for at most `seconds`, keeping WINDOW unacked; resolves with the count acked and the time. */
async function flood(port: number, max: number, seconds: number): Promise<{ acked: number; wall: number }> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  let buf = '';
  let acked = 0;
  let sent = 0;
  let welcomed = false;
  let t0 = 0;
  const deadline = (): boolean => t0 > 0 && performance.now() - t0 > seconds * 1000;
  return new Promise((resolve, reject) => {
    const finish = (): void => {
      sock.destroy();
      resolve({ acked, wall: (performance.now() - t0) / 1000 });
    };
    const pump = (): void => {
      let out = '';
      while (sent < max && sent - acked < WINDOW && !deadline()) out += JSON.stringify({ type: 'message', text: `${TEXT} ${++sent}`, id: sent }) + '\n';
      if (out) sock.write(out);
    };
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!welcomed && line.includes('"type":"history"')) {
          welcomed = true;
          t0 = performance.now();
          pump();
        } else if (line.startsWith('{"type":"ack"')) acked++;
        else if (line.includes('"type":"error"')) return reject(new Error(line));
      }
      if ((acked >= sent && (sent >= max || deadline())) ) return finish();
      pump();
    });
    sock.write(JSON.stringify({ type: 'hello', nick: 'bench' }) + '\n');
  });
}

async function readHistory(port: number, count: number): Promise<number> {
  let read = 0;
  for (let after = 0, pages = 0; read < count && pages < 1000; pages++) {
    const res = await fetch(`http://127.0.0.1:${port}/api/rooms/lobby/history?after=${after}&limit=200`);
    const page = (await res.json()) as { messages: { seq: number }[] };
    if (page.messages.length === 0) break;
    read += page.messages.length;
    after = page.messages[page.messages.length - 1]!.seq;
  }
  return read;
}

function bytesOnDisk(dir: string): number {
  let total = 0;
  for (const f of ['messages.sqlite', 'messages.sqlite-wal']) {
    try {
      total += statSync(path.join(dir, f)).size;
    } catch {
      // no such file: nothing to count
    }
  }
  return total;
}

export async function runHistoryFigures(say: (m: string) => void, seconds = 5): Promise<HistoryFigures> {
  const storedPerSecond: Record<string, number> = {};
  const cpuMicrosPerMessage: Record<string, number> = {};
  let figures: Pick<HistoryFigures, 'bytesPerMessage' | 'messages' | 'listenMs' | 'read10kMs'> | null = null;
  for (const fsync of ['batch', 'always']) {
    const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-bench-history-'));
    const args = ['--store', 'sqlite', '--data-dir', dir, '--fsync', fsync, '--no-bot'];
    try {
      const server = await ServerProcess.start({ args });
      const cpu0 = server.cpu().total;
      const { acked, wall } = await flood(server.port, fsync === 'batch' ? 1_000_000 : 200_000, seconds);
      const cpu = server.cpu().total - cpu0;
      await server.stop();
      storedPerSecond[fsync] = acked / wall;
      cpuMicrosPerMessage[fsync] = (cpu / acked) * 1e6;
      say(`  history, --fsync ${fsync}: ${acked} messages stored in ${wall.toFixed(2)} s: ${Math.round(acked / wall)}/s, server CPU ${((cpu / acked) * 1e6).toFixed(1)} µs a message`);
      if (fsync === 'batch') {
        const bytes = bytesOnDisk(dir);
        const t0 = performance.now();
        const again = await ServerProcess.start({ args, startTimeoutMs: 60_000 });
        const listenMs = performance.now() - t0;
        const read = await readHistory(again.port, 10_000);
        const read10kMs = performance.now() - t0;
        await again.stop();
        if (read < 10_000) throw new Error(`only ${read} messages of history came back after the restart`);
        figures = { bytesPerMessage: bytes / acked, messages: acked, listenMs, read10kMs };
        say(`  history on disk: ${(bytes / acked).toFixed(1)} bytes a message; restart: listening after ${listenMs.toFixed(0)} ms, 10,000 messages read after ${read10kMs.toFixed(0)} ms`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { storedPerSecond, cpuMicrosPerMessage, ...figures! };
}

/**
 * What the kernel knows about the server process: CPU time and memory, read from /proc.
 *
 * The key figure of the benchmark is deliveries per server CPU-second, so the server's CPU is
 * read from the outside (utime + stime of /proc/PID/stat) rather than trusted from the server:
 * it covers every thread of the process (libuv, V8's GC helpers) and the kernel time spent in
 * its syscalls, which for a TCP relay is a large share.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ; 100 on every common Linux). */
export function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

export interface CpuTimes {
  /** Seconds of user and system time since the process started. */
  user: number;
  system: number;
}

export function readCpu(pid: number, ticksPerSecond: number): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces or ")": split after
  // the last ")". The rest starts at field 3, so field N is at index N - 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return { user: utime / ticksPerSecond, system: stime / ticksPerSecond };
}

/** The processes whose parent is `pid` (a server's --processes workers), from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4 - 3]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function cpuSeconds(t: CpuTimes): number {
  return t.user + t.system;
}

export interface MemoryStatus {
  /** Resident set size now, in bytes. */
  rss: number;
  /** Peak resident set size ("high water mark") since the process started, in bytes. */
  peakRss: number;
}

export function readMemory(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: kbField(status, 'VmRSS') * 1024, peakRss: kbField(status, 'VmHWM') * 1024 };
}

function kbField(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) : NaN;
}

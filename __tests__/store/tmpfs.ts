/**
 * Small tmpfs mounts for the store's tests: a disk that fills up, a file system that is read
 * only. Mounting needs root (or CAP_SYS_ADMIN); without it the tests that need one are
 * reported as skipped, with the reason.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Mounts a tmpfs of `size` (mount's syntax: "1M") on `dir`; returns why not when it cannot. */
export function mountTmpfs(dir: string, size: string): string | null {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs (needs root): ${stderr || (err as Error).message}`;
  }
}

export function remountReadOnly(dir: string): void {
  execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' });
}

/** Unmounts `dir`; lazily if something (a test that failed with a store open) still holds it. */
export function unmount(dir: string): void {
  for (const args of [[dir], ['-l', dir]]) {
    try {
      execFileSync('umount', args, { stdio: 'pipe' });
      return;
    } catch {
      // not mounted, or busy: try the lazy way once
    }
  }
}

/**
 * Why tmpfs mounts cannot be made here, or null when they can: tried once, on a directory of
 * its own, when a test file is loaded, so that tests needing one are skipped with the reason.
 */
export function tmpfsUnavailable(): string | null {
  const probe = mkdtempSync(path.join(tmpdir(), 'roomcast-tmpfs-probe-'));
  try {
    const why = mountTmpfs(probe, '64k');
    if (!why) unmount(probe);
    return why;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

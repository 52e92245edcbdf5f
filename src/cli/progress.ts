/**
 * Download progress on stderr: a redrawn bar on a terminal; on a pipe or a log file, where
 * carriage returns would pile up as garbage, one line per file instead.
 */
import type { PullProgress } from '../classifier/models.js';

export interface ProgressReporter {
  update(p: PullProgress): void;
  finish(): void;
}

function size(n: number, unitOf = n): string {
  return unitOf >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

export function progressReporter(out: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = out.isTTY === true;
  let current = '';
  let lastDraw = 0;
  let drawn = false;

  const draw = (p: PullProgress, force: boolean): void => {
    const now = Date.now();
    // Redrawing on every chunk would flood a slow terminal; ten times a second reads smoothly.
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 50));
    const frac = p.total > 0 ? Math.min(1, p.received / p.total) : 0;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    out.write(`\r${p.file} [${bar}] ${String(Math.floor(frac * 100)).padStart(3)}% ${size(p.received, p.total)}/${size(p.total)}\x1b[K`);
    drawn = true;
  };

  return {
    update(p) {
      if (p.file !== current) {
        if (drawn) out.write('\n');
        drawn = false;
        current = p.file;
        if (!tty) out.write(`downloading ${p.file} (${size(p.total)})\n`);
      }
      if (tty) draw(p, p.received === 0 || p.received === p.total);
    },
    finish() {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}

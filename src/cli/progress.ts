/**
 * Download progress on stderr: a redrawn bar on a terminal; on a pipe or a log file, where
 * carriage returns would pile up as garbage, one line per file instead.
 */
import type { PullProgress } from '../classifier/model-catalog.js';
import { formatBytes } from '../format/units.js';

export interface ProgressReporter {
  update(p: PullProgress): void;
  finish(): void;
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
    out.write(`\r${p.file} [${bar}] ${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(p.received, p.total)}/${formatBytes(p.total)}\x1b[K`);
    drawn = true;
  };

  return {
    update(p) {
      if (p.file !== current) {
        if (drawn) out.write('\n');
        drawn = false;
        current = p.file;
        if (!tty) out.write(`downloading ${p.file} (${formatBytes(p.total)})\n`);
      }
      if (tty) draw(p, p.received === 0 || p.received === p.total);
    },
    finish() {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}

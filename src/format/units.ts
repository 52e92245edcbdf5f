/**
 * Numbers as people read them, the same way wherever they are shown: text-mode lines, the
 * terminal client, `roomcast post`, the CLI's tables and progress, and the classifier's refusals.
 * Pure functions; the web page keeps a copy of its own (web/src/dom.ts), held to these by a test.
 */
import type { LabelsEvent } from '../protocol/events.js';

const KIB = 1024;
const MIB = 1024 * 1024;

/**
 * "21 B", "12.1 KiB", "3.5 MiB", in binary units. `unitOf` picks the unit from another number,
 * so that "1.2 MiB/3.5 MiB" reads alike rather than "900.0 KiB/3.5 MiB".
 */
export function formatBytes(n: number, unitOf = n): string {
  if (unitOf < KIB) return `${n} B`;
  if (unitOf < MIB) return `${(n / KIB).toFixed(1)} KiB`;
  return `${(n / MIB).toFixed(1)} MiB`;
}

/**
 * A label's score as people read it: "95%" (or "95.2%" with `decimals` 1). Rounding alone would
 * print "0%" for a label the model still ranked in its top few and "100%" for one it is not
 * quite sure of, so the ends read "<1%" and "99.9%"; only a score of 1 is "100%".
 */
export function scorePercent(score: number, decimals = 0): string {
  if (!Number.isFinite(score)) return '?%';
  if (score >= 1) return '100%';
  if (score <= 0) return '0%';
  const step = 10 ** -decimals;
  const pct = score * 100;
  if (pct < step / 2) return `<${step}%`;
  if (pct >= 100 - step / 2) {
    const finer = step / 10;
    return `${Math.min(100 - finer, Math.round(pct / finer) * finer).toFixed(decimals + 1)}%`;
  }
  return `${pct.toFixed(decimals)}%`;
}

/** "coyote 95%, timber wolf 4%": what people read of the bot's answer. */
export function labelsSummary(e: LabelsEvent): string {
  if (e.error) return e.error.message;
  return (e.labels ?? []).map((l) => `${l.label} ${scorePercent(l.score)}`).join(', ');
}

/** A whole number with thousands separators, or "-" when there is none. */
export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

/**
 * Plain-text tables for the benchmark reports: the first `left` columns (names) left-aligned,
 * the others (figures) right-aligned, the last one (free text) as it is.
 */
export function formatTable(head: string[], rows: string[][], left = 1): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i < left ? c.padEnd(widths[i]!) : i === r.length - 1 ? c : c.padStart(widths[i]!))).join('  ').trimEnd();
  return all.map(line).join('\n');
}

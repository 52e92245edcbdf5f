/** Numbers as the page shows them; no DOM here, so the tests can hold it to the server's. */

/** The server's formatBytes (src/format/units.ts), which the page cannot import; a test holds them alike. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

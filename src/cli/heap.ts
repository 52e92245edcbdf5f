/**
 * V8 heap tuning for the server process. The hub's live heap is small while its young
 * generation grows large under image traffic; V8 then starts a full mark-compact whenever the
 * room left below the old generation's limit (by default about twice the live size) is no
 * larger than the young generation, which in a busy hub is every few seconds, and each one
 * pauses the chat. Letting the old generation grow to four times the live size before a full
 * collection keeps the room above that, at the cost of some garbage kept a little longer
 * (figures in docs/performance.md).
 *
 * heap_growing_percent is read each time V8 sets a new limit, so setting it at run time (before
 * the server starts) takes effect; unlike heap size flags, it needs no node command-line option.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

export function tuneHeapForLatency(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

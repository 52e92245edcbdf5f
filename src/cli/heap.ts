/**
 * V8 heap tuning for the server process. The hub's heap is small (about 10 MB live) while its
 * young generation grows to 16 MB under image traffic; V8 then starts a full mark-compact
 * whenever the room left below the old generation's limit (by default about twice the live
 * size) is no larger than the young generation, which in a busy hub was every 2-3 s, each
 * pausing the event loop for 3-7 ms: the chat's worst delays while the classifier was busy.
 * Letting the old generation grow to four times the live size before a full collection keeps
 * the room above that, at the cost of some tens of megabytes of garbage kept a little longer.
 *
 * Measured with `npm run bench -- --scenario classifier-chat` (5 runs, same hour): 12-14 full
 * collections per run became 5-6, and chat p99 with the classifier saturated 3.2-3.6 ms became
 * 2.5 ms; idle-10k's memory per connection and latency-200 did not change.
 *
 * heap_growing_percent is read each time V8 sets a new limit, so setting it at run time (before
 * the server starts) takes effect; unlike heap size flags, it needs no node command-line option.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

export function tuneHeapForLatency(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

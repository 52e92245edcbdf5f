/**
 * Coalesces output per event-loop turn. A broadcast only appends bytes to each recipient's
 * queue; once every socket that had data this turn has been read, one write per recipient
 * carries everything queued for it. Per-message writes are what caps fan-out: one syscall and
 * one libuv request per delivery instead of per recipient per turn.
 *
 * A turn is cut short when it grows large: once the input handled so far in this turn has
 * queued EARLY_FLUSH_BYTES, everything is written as soon as the current read callback
 * returns (a microtask) instead of after the last socket of the turn. In a burst, ten senders'
 * 64 KB reads fanned out to a hundred members queue tens of megabytes per turn, and every
 * queued frame, Buffer and queue array is still alive at each young-generation GC in between,
 * which copies all of it: GC time per message grew with the size of the turn (figures in
 * docs/performance.md). Flushing in the middle of a read callback (after each message) was
 * slower again: a write per recipient per message.
 */
export interface Flushable {
  flush(): void;
}

let dirty: Flushable[] = [];
let spare: Flushable[] = [];
/** A setImmediate(flushAll) is pending. */
let scheduled = false;
/** A microtask flush is pending (noteQueued()). */
let early = false;
/** Bytes queued since the last flush. */
let turnBytes = 0;

export const EARLY_FLUSH_BYTES = 1024 * 1024;
/**
 * The batches joined last in this flush pass, and the Buffers each was joined from (joinBatch).
 * Several, because a room's members may take different encodings of the same frames (text,
 * JSON, WebSocket) and come in the flush list interleaved.
 */
const RECENT = 4;
const recentParts: (Buffer[] | null)[] = new Array<Buffer[] | null>(RECENT).fill(null);
const recentJoined: (Buffer | null)[] = new Array<Buffer | null>(RECENT).fill(null);
let newest = 0;

function flushAll(): void {
  turnBytes = 0;
  const list = dirty;
  dirty = spare;
  for (let i = 0; i < list.length; i++) list[i].flush();
  list.length = 0;
  spare = list;
  // Do not keep the last batches alive until the next turn.
  recentParts.fill(null);
  recentJoined.fill(null);
}

/**
 * The bytes of a batch, as one Buffer. The members of a room get the same frames in the same
 * order, and they come one after another in the flush list (queued in the order the broadcast
 * reached them): when a batch is made of exactly the same Buffers as a recent one, that copy
 * is written again instead of copying the same bytes once per recipient. A broadcast to a
 * hundred then costs one copy per encoding, not a hundred, and holds one copy in memory while
 * slow readers catch up. Buffers are never changed once queued, so sharing is safe.
 */
export function joinBatch(parts: Buffer[], bytes: number): Buffer {
  if (parts.length === 1) return parts[0];
  // Newest first: in a room of one encoding the previous batch is the match.
  for (let k = 0, at = newest; k < RECENT; k++, at = (at + RECENT - 1) % RECENT) {
    const prev = recentParts[at];
    if (prev === null || prev.length !== parts.length || recentJoined[at]!.length !== bytes) continue;
    let same = true;
    for (let i = 0; i < parts.length; i++)
      if (parts[i] !== prev[i]) {
        same = false;
        break;
      }
    if (same) return recentJoined[at]!;
  }
  const joined = Buffer.concat(parts, bytes);
  newest = (newest + 1) % RECENT;
  recentParts[newest] = parts;
  recentJoined[newest] = joined;
  return joined;
}

function flushAtEndOfTurn(): void {
  scheduled = false;
  flushAll();
}

function flushEarly(): void {
  early = false;
  flushAll();
}

/** Call once when a queue goes from empty to non-empty. */
export function scheduleFlush(item: Flushable): void {
  dirty.push(item);
  if (!scheduled) {
    scheduled = true;
    // setImmediate runs after the poll phase: all readable sockets of this turn are handled first.
    setImmediate(flushAtEndOfTurn);
  }
}

/** Call for every frame queued: a turn that has queued enough is flushed early. */
export function noteQueued(bytes: number): void {
  turnBytes += bytes;
  if (turnBytes >= EARLY_FLUSH_BYTES && !early) {
    early = true;
    queueMicrotask(flushEarly);
  }
}

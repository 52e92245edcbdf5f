/**
 * Coalesces output per event-loop turn. A broadcast only appends bytes to each recipient's
 * queue; once every socket that had data this turn has been read, one write per recipient
 * carries everything queued for it. Per-message writes are what caps fan-out: one syscall and
 * one libuv request per delivery instead of per recipient per turn.
 */
export interface Flushable {
  flush(): void;
}

let dirty: Flushable[] = [];
let spare: Flushable[] = [];
let scheduled = false;
// The batch joined last in this flush pass, and the Buffers it was joined from (joinBatch).
let lastParts: Buffer[] | null = null;
let lastJoined: Buffer | null = null;

function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = spare;
  for (let i = 0; i < list.length; i++) list[i].flush();
  list.length = 0;
  spare = list;
  // Do not keep the last batch alive until the next turn.
  lastParts = null;
  lastJoined = null;
}

/**
 * The bytes of a batch, as one Buffer. The members of a room get the same frames in the same
 * order, and they come one after another in the flush list (queued in the order the broadcast
 * reached them): when a batch is made of exactly the same Buffers as the previous one, the
 * previous copy is written again instead of copying the same bytes once per recipient. A
 * broadcast to a hundred then costs one copy, not a hundred, and holds one copy in memory
 * while slow readers catch up. Buffers are never changed once queued, so sharing is safe.
 */
export function joinBatch(parts: Buffer[], bytes: number): Buffer {
  if (parts.length === 1) return parts[0];
  const prev = lastParts;
  if (prev !== null && prev.length === parts.length && lastJoined!.length === bytes) {
    let same = true;
    for (let i = 0; i < parts.length; i++)
      if (parts[i] !== prev[i]) {
        same = false;
        break;
      }
    if (same) return lastJoined!;
  }
  const joined = Buffer.concat(parts, bytes);
  lastParts = parts;
  lastJoined = joined;
  return joined;
}

/** Call once when a queue goes from empty to non-empty. */
export function scheduleFlush(item: Flushable): void {
  dirty.push(item);
  if (!scheduled) {
    scheduled = true;
    // setImmediate runs after the poll phase: all readable sockets of this turn are handled first.
    setImmediate(flushAll);
  }
}

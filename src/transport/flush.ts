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

function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = spare;
  for (let i = 0; i < list.length; i++) list[i].flush();
  list.length = 0;
  spare = list;
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

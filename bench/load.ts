/**
 * The client side of the benchmark: real TCP connections to the server, senders that stamp
 * every message, and receivers that check every delivery.
 *
 * Every message's text starts with "SENDER SEQ MICROS " (the sender's index, its own sequence
 * number from 0, and the send time on this process's monotonic clock), padded to the message
 * size. Senders and receivers live in this one process, so they share the clock and latency
 * is exact. A receiver keeps, per sender, the next sequence number it expects: a delivery
 * equal to it is the normal case and costs one comparison; anything else is classified as a
 * gap (later counted as lost unless it turns up), a late (out-of-order) delivery or a
 * duplicate.
 *
 * Receiving is the generator's hot loop (a fan-out run delivers millions of lines), so lines
 * are parsed from the bytes where they lie: no string per line, no JSON.parse, one clock read
 * per socket read.
 */
import net from 'node:net';
import tls from 'node:tls';
import { LatencyHistogram } from './stats.js';
import { clientTextFrames, upgradeRequest, WsReader } from './ws-wire.js';

/** ws: the JSON events of json, one per WebSocket message, over the server's /ws. */
export type Wire = 'text' | 'json' | 'ws';

/** Microseconds on the generator's monotonic clock; senders and receivers share it. */
export function nowMicros(): number {
  return Math.round(performance.now() * 1000);
}

const NL = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const LBRACE = 0x7b;
const STAR = 0x2a;
const BANG = 0x21;
const ZERO = 0x30;

const TEXT_FIELD = Buffer.from('"text":"');
const QUOTE = 0x22;
const COMMA = 0x2c;
const LOWER_M = 0x6d;
const LOWER_R = 0x72;
const LOWER_T = 0x74;
const JSON_MESSAGE = Buffer.from('{"type":"message"');
const JSON_WELCOME = Buffer.from('{"type":"welcome"');
const JSON_JOINED = Buffer.from('{"type":"joined"');
const JSON_ERROR = Buffer.from('{"type":"error"');
const JSON_BYE = Buffer.from('{"type":"bye"');
const LEFT_LOBBY = Buffer.from('*** You left [lobby]');
const DISCONNECTED = Buffer.from('*** Disconnected');

/** Everything the receivers of one run found, shared by all its clients. */
export class Tally {
  latency = new LatencyHistogram();
  /** Deliveries of a message a receiver had not had before (in order or late). */
  delivered = 0;
  duplicates = 0;
  outOfOrder = 0;
  /** Lines that should not have come: unknown senders, unparseable payloads. */
  unexpected = 0;
  /** Error or goodbye lines from the server, and connections that closed on their own. */
  errors = 0;
  readonly errorSamples: string[] = [];
  private waiter: { target: number; resolve: (ok: boolean) => void } | null = null;

  noteError(what: string): void {
    this.errors++;
    if (this.errorSamples.length < 5) this.errorSamples.push(what.slice(0, 200));
    // A dropped client will never receive its share: fail the round now, not at its deadline.
    this.waiter?.resolve(false);
  }

  /** Resolves true once `delivered` reaches `target`; false at the deadline or on an error. */
  waitFor(target: number, timeoutMs: number): Promise<boolean> {
    if (this.delivered >= target) return Promise.resolve(true);
    if (this.errors > 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(false);
      }, timeoutMs);
      this.waiter = {
        target,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          this.waiter = null;
          resolve(ok);
        },
      };
    });
  }

  /** Called once per socket read, not per line: the check is off the per-delivery path. */
  check(): void {
    if (this.waiter !== null && this.delivered >= this.waiter.target) this.waiter.resolve(true);
  }
}

export interface ClientPlan {
  wire: Wire;
  /** The room to talk in; null: an idle client that joins no room (JSON mode only). */
  room: string | null;
  /** This client's index among all senders of the run, or -1 if it only listens. */
  senderIndex: number;
  /** Sender indices this client should hear from (its room's senders but itself). */
  hears: number[];
  /** How many senders the run has in all (sizes the per-sender tables). */
  senderCount: number;
  textBytes: number;
  /** Over TLS (the server's --tls port), the same protocol inside. */
  tls?: boolean;
}

/**
 * A connection to the server on loopback, clear or TLS, and the event after which it carries
 * the protocol: for TLS, the end of the handshake. The server's certificate is self-signed and
 * not checked: what the benchmark measures is the cost of the encryption, not of trust.
 */
export function openConnection(port: number, secure: boolean, onread?: net.OnReadOpts): { socket: net.Socket; connected: 'connect' | 'secureConnect' } {
  const options = { host: '127.0.0.1', port, noDelay: true, ...(onread ? { onread } : {}) };
  if (!secure) return { socket: net.connect(options), connected: 'connect' };
  // tls.connect leaves noDelay out of the TCP socket it makes; senders' small writes must not wait for acks.
  const socket = tls.connect({ ...options, rejectUnauthorized: false }).setNoDelay(true);
  return { socket, connected: 'secureConnect' };
}

const PAD = 'x'.repeat(16384);
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

export class BenchClient {
  readonly socket: net.Socket;
  /** Resolves when the client is registered and in its room. */
  readonly ready: Promise<void>;
  /** Next sequence number this client sends, i.e. how many it has sent. */
  sent = 0;
  /** Set when the socket's buffer is over its high-water mark: wait for 'drain'. */
  blocked = false;
  onDrain: (() => void) | null = null;
  private partial: Buffer | null = null;
  /** Per sender index: the sequence number expected next. */
  private readonly next: Int32Array;
  /** Per sender index: sequence numbers skipped over and not (yet) received. Rarely used. */
  private missing: Map<number, Set<number>> | null = null;
  private isReady = false;
  private markReady!: () => void;
  private failReady!: (err: Error) => void;
  private closing = false;
  /** The WebSocket side of a ws client; null for TCP clients. */
  private readonly wsIn: WsReader | null = null;
  /** When the current read came in (the WebSocket reader reports payloads by callback). */
  private readAt = 0;

  constructor(
    port: number,
    readonly plan: ClientPlan,
    private readonly tally: Tally,
  ) {
    this.next = new Int32Array(plan.hears.length > 0 ? plan.senderCount : 0);
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    this.ready.catch(() => {}); // whoever awaits it sees the error; no unhandled rejection
    if (plan.wire === 'ws')
      this.wsIn = new WsReader(
        () => this.write(clientTextFrames([this.hello()])),
        (buf, s, e) => this.onJsonLine(buf, s, e, this.readAt),
        (why) => (this.isReady ? this.tally.noteError(why) : this.failReady(new Error(why))),
      );
    // onread: the kernel's bytes land in one buffer shared by all clients and are parsed on the
    // spot. A 'data' event would allocate a fresh 64 KB buffer per read and go through the
    // stream machinery: at two hundred thousand reads a second, that is generator time which
    // would show up as server latency.
    const { socket, connected } = openConnection(port, plan.tls === true, { buffer: READ_BUFFER, callback: (n: number) => this.onRead(n) });
    this.socket = socket;
    socket.on(connected, () => socket.write(this.greeting()));
    socket.on('drain', () => {
      this.blocked = false;
      this.onDrain?.();
    });
    socket.on('error', (err) => {
      if (!this.isReady) this.failReady(err);
      else if (!this.closing) this.tally.noteError(`socket error: ${err.message}`);
    });
    socket.on('close', () => {
      if (!this.isReady) this.failReady(new Error('closed before it was ready'));
      else if (!this.closing) this.tally.noteError('connection closed by the server');
    });
  }

  /**
   * What a client says first. Text mode has no way to register without joining the lobby, so
   * a text client moves to its room and leaves the lobby in the same packet as its first line:
   * it is in the lobby only while the server handles that one read, and a thousand clients
   * connecting do not send each other a million join notices.
   */
  private greeting(): string {
    const { wire, room } = this.plan;
    if (wire === 'json') return this.hello() + '\n';
    if (wire === 'ws') return upgradeRequest('127.0.0.1', this.socket.remotePort ?? 0);
    return `/join ${room}\n/part lobby\n`;
  }

  private hello(): string {
    return JSON.stringify({ type: 'hello', rooms: this.plan.room === null ? [] : [this.plan.room] });
  }

  /** Writes `n` stamped messages in one write (a burst), or one write each if `separate`. */
  sendMessages(n: number, separate = false): void {
    const me = this.plan.senderIndex;
    const now = nowMicros();
    const ws = this.plan.wire === 'ws';
    const frames: string[] = [];
    let out = '';
    for (let i = 0; i < n; i++) {
      const head = `${me} ${this.sent++} ${now} `;
      const text = head + PAD.slice(0, Math.max(0, this.plan.textBytes - head.length));
      if (ws) {
        const message = `{"type":"message","text":"${text}"}`;
        if (separate) this.write(clientTextFrames([message]));
        else frames.push(message);
        continue;
      }
      const line = this.plan.wire === 'json' ? `{"type":"message","text":"${text}"}\n` : text + '\n';
      if (separate) this.write(line);
      else out += line;
    }
    if (frames.length > 0) this.write(clientTextFrames(frames));
    if (!separate && out.length > 0) this.write(out);
  }

  private write(data: string | Buffer): void {
    if (!this.socket.write(data)) this.blocked = true;
  }

  /**
   * Messages from `sender` that never arrived, given that it sent `sent`: the tail not yet
   * seen plus the gaps that were never filled.
   */
  lostFrom(sender: number, sent: number): number {
    const gaps = this.missing?.get(sender)?.size ?? 0;
    return Math.max(0, sent - this.next[sender]) + gaps;
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  // ---- receiving ----

  private onRead(n: number): boolean {
    const now = nowMicros();
    if (this.wsIn !== null) {
      this.readAt = now;
      this.wsIn.push(READ_BUFFER.subarray(0, n));
      this.tally.check();
      return true;
    }
    let buf = READ_BUFFER.subarray(0, n);
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, buf]);
      this.partial = null;
    }
    let start = 0;
    const len = buf.length;
    for (;;) {
      const nl = buf.indexOf(NL, start);
      if (nl < 0) break;
      this.onLine(buf, start, nl, now);
      start = nl + 1;
    }
    // Copy the unfinished line: the read buffer is overwritten by the next read of any client.
    if (start < len) this.partial = Buffer.from(buf.subarray(start));
    this.tally.check();
    return true;
  }

  private onLine(buf: Buffer, s: number, e: number, now: number): void {
    const c = buf[s];
    if (c === LBRACKET) {
      // "[room] nick: TEXT": neither a room nor a nick may contain ":".
      let i = s + 1;
      while (i < e && buf[i] !== COLON) i++;
      this.onPayload(buf, i + 2, e, now);
    } else if (c === LBRACE) {
      this.onJsonLine(buf, s, e, now);
    } else if (c === STAR) {
      if (!this.isReady && startsWith(buf, s, e, LEFT_LOBBY)) this.becomeReady();
      else if (startsWith(buf, s, e, DISCONNECTED)) this.tally.noteError(buf.toString('utf8', s, e));
    } else if (c === BANG) {
      this.tally.noteError(buf.toString('utf8', s, e));
    }
  }

  private onJsonLine(buf: Buffer, s: number, e: number, now: number): void {
    const text = messageText(buf, s, e);
    if (text >= 0) {
      this.onPayload(buf, text, e, now);
    } else if (startsWith(buf, s, e, JSON_MESSAGE)) {
      this.tally.unexpected++;
    } else if (!this.isReady && startsWith(buf, s, e, JSON_WELCOME)) {
      if (this.plan.room === null) this.becomeReady();
    } else if (!this.isReady && startsWith(buf, s, e, JSON_JOINED)) {
      if (buf.toString('utf8', s, e).includes('"self":true')) this.becomeReady();
    } else if (startsWith(buf, s, e, JSON_ERROR) || startsWith(buf, s, e, JSON_BYE)) {
      this.tally.noteError(buf.toString('utf8', s, e));
    }
  }

  /** "SENDER SEQ MICROS padding": three decimal numbers, parsed in place. */
  private onPayload(buf: Buffer, s: number, e: number, now: number): void {
    let i = s;
    let sender = 0;
    let seq = 0;
    let sent = 0;
    let ok = i < e && buf[i] !== SPACE;
    for (; i < e && buf[i] !== SPACE; i++) sender = sender * 10 + (buf[i] - ZERO);
    ok &&= ++i < e && buf[i] !== SPACE;
    for (; i < e && buf[i] !== SPACE; i++) seq = seq * 10 + (buf[i] - ZERO);
    ok &&= ++i < e && buf[i] !== SPACE;
    for (; i < e && buf[i] !== SPACE; i++) sent = sent * 10 + (buf[i] - ZERO);
    if (!ok || i >= e || sender >= this.next.length) {
      this.tally.unexpected++;
      return;
    }
    const t = this.tally;
    const expected = this.next[sender];
    if (seq === expected) {
      this.next[sender] = seq + 1;
      t.delivered++;
      t.latency.record(now - sent);
    } else {
      this.unusual(sender, seq, expected, now - sent);
    }
  }

  /** A gap, a late arrival or a duplicate: none should happen over one TCP connection. */
  private unusual(sender: number, seq: number, expected: number, latency: number): void {
    const t = this.tally;
    this.missing ??= new Map();
    let gaps = this.missing.get(sender);
    if (seq > expected) {
      // Skipped expected..seq-1: remember them (bounded: a runaway gap just counts as lost).
      if (!gaps) this.missing.set(sender, (gaps = new Set()));
      for (let k = expected; k < seq && gaps.size < 1_000_000; k++) gaps.add(k);
      this.next[sender] = seq + 1;
      t.delivered++;
      t.latency.record(latency);
    } else if (gaps?.delete(seq)) {
      t.outOfOrder++;
      t.delivered++;
      t.latency.record(latency);
    } else {
      t.duplicates++;
    }
  }

  private becomeReady(): void {
    this.isReady = true;
    this.markReady();
  }
}

function startsWith(buf: Buffer, s: number, e: number, prefix: Buffer): boolean {
  if (e - s < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[s + i] !== prefix[i]) return false;
  return true;
}

/**
 * Runs task(0), task(1), ... with at most `concurrency` of them running at once, until
 * `count` have started or `enough()` says so; resolves with how many completed. The first
 * failure stops the others from starting more and is what the promise rejects with.
 */
export async function inParallel(count: number, concurrency: number, task: (i: number) => Promise<void>, enough: () => boolean = () => false): Promise<number> {
  let nextIndex = 0;
  let completed = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (nextIndex < count && !failed && !enough()) {
      await task(nextIndex++);
      completed++;
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, () =>
      worker().catch((err) => {
        failed = true; // the other workers stop at their next task
        throw err;
      }),
    ),
  );
  return completed;
}

/** `promise`, or a rejection with `message` once `ms` have passed. */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), Math.max(1, ms))))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens `plans.length` clients, at most `concurrency` connecting at once (a burst of ten
 * thousand SYNs would overflow the listen backlog), and resolves when all are ready. Rejects
 * on the first failure or when `timeoutMs` has passed.
 */
export async function connectAll(
  port: number,
  plans: ClientPlan[],
  tally: Tally,
  concurrency: number,
  timeoutMs: number,
): Promise<BenchClient[]> {
  const clients: BenchClient[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    await inParallel(plans.length, concurrency, async (i) => {
      if (Date.now() > deadline) throw new Error(`connecting ${plans.length} clients took over ${timeoutMs} ms`);
      const c = new BenchClient(port, plans[i], tally);
      clients.push(c);
      await within(c.ready, deadline - Date.now(), 'a client was not ready in time');
    });
  } catch (err) {
    for (const c of clients) c.close();
    throw err;
  }
  return clients;
}

/**
 * One burst round: every sender writes `perSender` messages as fast as it may, `batch` per
 * write and one write per sender per event-loop turn, so receiving goes on in between (the
 * generator is one thread). A sender whose socket buffer is full waits for 'drain'. Resolves
 * when everything is sent, or false at the deadline.
 */
export function sendBurst(senders: BenchClient[], perSender: number, batch: number, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const left = senders.map(() => perSender);
    let scheduled = false;
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      for (const s of senders) s.onDrain = null;
      resolve(ok);
    };
    const step = (): void => {
      scheduled = false;
      if (done) return;
      if (Date.now() > deadline) return finish(false);
      let remaining = 0;
      let runnable = 0;
      for (let i = 0; i < senders.length; i++) {
        const s = senders[i];
        if (left[i] > 0 && !s.blocked) {
          const n = Math.min(batch, left[i]);
          s.sendMessages(n);
          left[i] -= n;
        }
        remaining += left[i];
        if (left[i] > 0 && !s.blocked) runnable++;
      }
      if (remaining === 0) return finish(true);
      // All the rest are blocked: their 'drain' restarts the loop. Otherwise next turn.
      if (runnable > 0) schedule();
    };
    const schedule = (): void => {
      if (!scheduled && !done) {
        scheduled = true;
        setImmediate(step);
      }
    };
    for (const s of senders) s.onDrain = schedule;
    // A safety net: a missed 'drain' can never hang the round past its deadline.
    const guard = setInterval(() => {
      if (done) clearInterval(guard);
      else schedule();
    }, 50);
    schedule();
  });
}

/**
 * One paced round: each sender sends `rate` messages per second for `seconds`, each in its own
 * write, as a chatting client would. Senders are spread evenly over the period. Timestamps are
 * taken when the message is written, so timer jitter in the generator is not counted as
 * server latency.
 */
export function sendPaced(senders: BenchClient[], rate: number, seconds: number, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const perSender = Math.round(rate * seconds);
    const sentHere = senders.map(() => 0);
    const n = senders.length;
    const start = performance.now();
    const tick = (): void => {
      if (Date.now() > deadline) return resolve(false);
      const elapsed = (performance.now() - start) / 1000;
      let remaining = 0;
      for (let k = 0; k < n; k++) {
        // Sender k's first message is due k/(n*rate) seconds in, then one every 1/rate.
        const due = Math.min(perSender, Math.max(0, Math.floor((elapsed - k / (n * rate)) * rate) + 1));
        const owe = due - sentHere[k];
        if (owe > 0) {
          senders[k].sendMessages(owe, true);
          sentHere[k] = due;
        }
        remaining += perSender - sentHere[k];
      }
      if (remaining === 0) resolve(true);
      else setTimeout(tick, 1);
    };
    tick();
  });
}

/**
 * Where the text of a JSON message event starts in buf[s, e), or -1 when it is no message.
 *
 * The server writes a message's fields in one order, {"type":"message","room":R,"seq":N,
 * "nick":X,"text":..., and room names and nicks never need escapes, so the text is reached by
 * stepping over each value, and the names between them are only spot-checked (a shape that
 * does not match falls back to a search). Matching whole field names byte by byte cost the
 * generator ~100 ns per delivery, three times its other work, and in JSON and WebSocket runs
 * its pace then decided how much input the server got per read.
 */
function messageText(buf: Buffer, s: number, e: number): number {
  if (e - s < 30 || buf[s + 9] !== LOWER_M || buf[s + 19] !== LOWER_R) return -1; // "message", "room"
  let i = s + 26; // the room's first character
  while (i < e && buf[i] !== QUOTE) i++;
  i += 8; // ","seq":
  while (i < e && buf[i] !== COMMA) i++;
  i += 9; // ,"nick":"
  while (i < e && buf[i] !== QUOTE) i++;
  i += 10; // ","text":"
  if (i < e && buf[i - 1] === QUOTE && buf[i - 4] === LOWER_T && buf[i - 7] === LOWER_T && buf[i - 8] === QUOTE) return i;
  const at = findIn(buf, s, e, TEXT_FIELD);
  return at < 0 || !startsWith(buf, s, e, JSON_MESSAGE) ? -1 : at + TEXT_FIELD.length;
}

/** Where `field` starts in buf[s, e), or -1. */
function findIn(buf: Buffer, s: number, e: number, field: Buffer): number {
  const first = field[0];
  const n = field.length;
  outer: for (let i = s; i + n <= e; i++) {
    if (buf[i] !== first) continue;
    for (let k = 1; k < n; k++) if (buf[i + k] !== field[k]) continue outer;
    return i;
  }
  return -1;
}

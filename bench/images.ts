/**
 * The image side of the benchmark: JSON clients that post images to a room and a member of the
 * same room that watches for the classifier's answers.
 *
 * End-to-end latency is measured as a user sees it: from the moment the poster writes the
 * image header and bytes to the moment ANOTHER member of the room (the observer) has read the
 * bot's `labels` event. Poster and observer live in this process, so they share the clock.
 *
 * Matching: each post carries a request id; the poster's `ack` maps it to the server's image
 * id, which the `labels` event names. A `labels` read before its `ack` (different sockets, so
 * possible in principle) is kept until the ack comes.
 *
 * Image traffic is a few hundred events a second at most, so lines are simply JSON.parsed.
 */
import net from 'node:net';

export interface JsonEvent {
  type: string;
  [key: string]: unknown;
}

/** A minimal JSON-mode client: hello with a nick and one room, then events to a callback. */
export class JsonClient {
  readonly socket: net.Socket;
  /** Resolves once the client is registered and in its room. */
  readonly ready: Promise<void>;
  private partial = '';
  private closing = false;

  constructor(
    port: number,
    readonly nick: string,
    readonly room: string,
    private readonly onEvent: (e: JsonEvent, at: number) => void,
    onFailure: (why: string) => void,
  ) {
    let markReady!: () => void;
    let failReady!: (err: Error) => void;
    let isReady = false;
    this.ready = new Promise((resolve, reject) => {
      markReady = () => {
        isReady = true;
        resolve();
      };
      failReady = reject;
    });
    this.ready.catch(() => {});
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ type: 'hello', nick, rooms: [room] }) + '\n'));
    socket.on('data', (chunk: string) => {
      const at = performance.now();
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) {
        if (line.length === 0) continue;
        let e: JsonEvent;
        try {
          e = JSON.parse(line) as JsonEvent;
        } catch {
          lost(`not a JSON line from the server: ${line.slice(0, 200)}`);
          continue;
        }
        if (!isReady) {
          if (e.type === 'joined' && e.self === true) markReady();
          else if (e.type === 'error' || e.type === 'bye') failReady(new Error(`${nick}: ${line}`));
          continue;
        }
        this.onEvent(e, at);
      }
    });
    const lost = (why: string): void => {
      if (!isReady) failReady(new Error(`${nick}: ${why}`));
      else if (!this.closing) onFailure(`${nick}: ${why}`);
    };
    socket.on('error', (err) => lost(`socket error: ${err.message}`));
    socket.on('close', () => lost('connection closed by the server'));
  }

  /** One JSON line, then raw bytes if any: one writev, and the bytes are not copied. */
  send(msg: object, bytes?: Uint8Array): void {
    const line = JSON.stringify(msg) + '\n';
    if (!bytes) {
      this.socket.write(line);
      return;
    }
    this.socket.cork();
    this.socket.write(line);
    this.socket.write(bytes);
    this.socket.uncork();
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }
}

/** What one post came to, as seen by the observer. */
export interface PostOutcome {
  /** Post written -> `labels` read by the observer. */
  latencyMs: number;
  /** Post written -> the poster read its `ack` (upload, the hub, and the way back). */
  ackMs: number;
  /** The bot's answer carried labels (false: an error such as CLASSIFIER_BUSY). */
  ok: boolean;
  code?: string;
  /** The pool's timings as the `labels` event reports them (queueMs, decodeMs, inferenceMs, totalMs). */
  timings?: Record<string, number>;
}

interface Pending {
  sentAt: number;
  ackAt: number;
  resolve: (o: PostOutcome) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * `posters` clients that post images into `room` (round robin) and one observer in the same
 * room. post() resolves when the observer has the answer, or rejects after `timeoutMs`.
 */
export class ImagePosters {
  private readonly posters: JsonClient[] = [];
  private observer: JsonClient | null = null;
  private nextId = 1;
  private turn = 0;
  private readonly byId = new Map<number, Pending>();
  private readonly byImage = new Map<number, Pending>();
  /** `labels` events read before their ack: image id -> event and read time. */
  private readonly early = new Map<number, { e: JsonEvent; at: number }>();
  /** A connection dropped: every pending and future post fails with this. */
  private failure: string | null = null;

  private constructor(
    private readonly room: string,
    private readonly timeoutMs: number,
  ) {}

  static async connect(port: number, opts: { room: string; posters: number; nickPrefix?: string; timeoutMs?: number }): Promise<ImagePosters> {
    const p = new ImagePosters(opts.room, opts.timeoutMs ?? 30_000);
    const prefix = opts.nickPrefix ?? 'poster';
    const fail = (why: string): void => p.fail(why);
    for (let i = 0; i < opts.posters; i++) {
      p.posters.push(new JsonClient(port, `${prefix}${i}`, opts.room, (e, at) => p.onPosterEvent(e, at), fail));
    }
    p.observer = new JsonClient(port, `${prefix}watch`, opts.room, (e, at) => p.onObserverEvent(e, at), fail);
    const all = [...p.posters, p.observer];
    try {
      await withTimeout(Promise.all(all.map((c) => c.ready)), 10_000, 'image clients were not ready within 10 s');
    } catch (err) {
      p.close();
      throw err;
    }
    return p;
  }

  /** Posts one image; resolves with what the observer saw. */
  post(bytes: Uint8Array, name: string): Promise<PostOutcome> {
    if (this.failure) return Promise.reject(new Error(this.failure));
    const id = this.nextId++;
    const poster = this.posters[this.turn++ % this.posters.length]!;
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        sentAt: performance.now(),
        ackAt: NaN,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.byId.delete(id);
          for (const [image, p] of this.byImage) if (p === pending) this.byImage.delete(image);
          reject(new Error(`no answer to image post ${id} (${name}) within ${this.timeoutMs} ms`));
        }, this.timeoutMs),
      };
      this.byId.set(id, pending);
      poster.send({ type: 'image', id, room: this.room, name, size: bytes.length }, bytes);
    });
  }

  get inFlight(): number {
    return this.byId.size + this.byImage.size;
  }

  close(): void {
    for (const c of this.posters) c.close();
    this.observer?.close();
    for (const p of [...this.byId.values(), ...this.byImage.values()]) clearTimeout(p.timer);
    this.byId.clear();
    this.byImage.clear();
  }

  private onPosterEvent(e: JsonEvent, at: number): void {
    if (e.type !== 'ack' && e.type !== 'error') return;
    const id = Number(e.id);
    const pending = this.byId.get(id);
    if (!pending) return;
    this.byId.delete(id);
    if (e.type === 'error') {
      clearTimeout(pending.timer);
      pending.reject(new Error(`image post refused: ${String(e.code)}: ${String(e.message)}`));
      return;
    }
    pending.ackAt = at;
    const image = Number(e.image);
    const early = this.early.get(image);
    if (early) {
      this.early.delete(image);
      this.settle(pending, early.e, early.at);
    } else {
      this.byImage.set(image, pending);
    }
  }

  private onObserverEvent(e: JsonEvent, at: number): void {
    if (e.type !== 'labels') return;
    const image = Number(e.image);
    const pending = this.byImage.get(image);
    if (!pending) {
      if (this.early.size < 10_000) this.early.set(image, { e, at });
      return;
    }
    this.byImage.delete(image);
    this.settle(pending, e, at);
  }

  private settle(pending: Pending, e: JsonEvent, at: number): void {
    clearTimeout(pending.timer);
    const error = e.error as { code?: string } | undefined;
    pending.resolve({
      latencyMs: at - pending.sentAt,
      ackMs: pending.ackAt - pending.sentAt,
      ok: error === undefined,
      code: error?.code,
      timings: e.timings as Record<string, number> | undefined,
    });
  }

  private fail(why: string): void {
    if (this.failure) return;
    this.failure = why;
    for (const p of [...this.byId.values(), ...this.byImage.values()]) {
      clearTimeout(p.timer);
      p.reject(new Error(why));
    }
    this.byId.clear();
    this.byImage.clear();
  }
}

/**
 * Asks the server's bot for its state until it is 'ready' (the workers load the model after the
 * server listens). Rejects if it is 'down' or 'off', or after `timeoutMs`.
 */
export async function waitForBot(port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let answer: ((e: JsonEvent) => void) | null = null;
  let failed = '';
  const client = new JsonClient(port, 'botcheck', 'botcheck', (e) => answer?.(e), (why) => (failed = why));
  try {
    await withTimeout(client.ready, 10_000, 'the bot check client was not ready within 10 s');
    while (Date.now() < deadline && !failed) {
      const e = await withTimeout(
        new Promise<JsonEvent>((resolve) => {
          answer = (ev) => {
            if (ev.type === 'bot') resolve(ev);
          };
          client.send({ type: 'bot' });
        }),
        5000,
        'the server did not answer a bot status request within 5 s',
      );
      last = `${String(e.state)}: ${String(e.reason ?? '')}`;
      if (e.state === 'ready') return;
      if (e.state === 'down' || e.state === 'off') throw new Error(`the classifier bot is ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(failed || `the classifier bot was not ready within ${timeoutMs} ms (${last})`);
  } finally {
    client.close();
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

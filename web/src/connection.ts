/**
 * One WebSocket to the server that comes back by itself: after a close that was not our own
 * quit, it reconnects with exponential backoff (with jitter), and says so through onStatus.
 */
import { parseEvent, type ServerEvent } from './events.js';

export type Status =
  | { state: 'connecting'; attempt: number }
  | { state: 'open' }
  | { state: 'waiting'; inMs: number; reason: string }
  | { state: 'stopped'; reason: string };

export interface ConnectionHandlers {
  /** The socket is open: send the hello (and joins) now. */
  onOpen(conn: Connection): void;
  onEvent(ev: ServerEvent): void;
  onStatus(s: Status): void;
}

const MIN_DELAY = 500;
const MAX_DELAY = 15_000;

export class Connection {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: number | null = null;
  private stopped = false;
  private lastReason = '';

  constructor(
    private readonly url: string,
    private readonly h: ConnectionHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    if (this.ws || this.timer !== null) this.now();
    else this.open();
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(obj: unknown): boolean {
    if (!this.isOpen) return false;
    this.ws!.send(JSON.stringify(obj));
    return true;
  }

  sendBinary(data: ArrayBuffer): boolean {
    if (!this.isOpen) return false;
    this.ws!.send(data);
    return true;
  }

  /** The server registered us: the next failure starts the backoff afresh. */
  registered(): void {
    this.attempt = 0;
  }

  /** Give up for good (our own quit, or a refusal that retrying cannot fix). */
  stop(reason: string): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.ws?.close(1000);
    this.ws = null;
    this.h.onStatus({ state: 'stopped', reason });
  }

  /** Drop the socket and try again (after the usual backoff). */
  recycle(reason: string): void {
    this.lastReason = reason;
    this.ws?.close(1000);
  }

  /** Skip the wait: reconnect at once (the browser came back online, the user clicked). */
  now(): void {
    if (this.stopped || this.ws) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.open();
  }

  private open(): void {
    this.attempt++;
    this.h.onStatus({ state: 'connecting', attempt: this.attempt });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.schedule(String(err));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.h.onStatus({ state: 'open' });
      this.h.onOpen(this);
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      const ev = parseEvent(m.data);
      if (!ev) return;
      if (ev.type === 'bye') this.lastReason = ev.reason;
      this.h.onEvent(ev);
    };
    ws.onclose = (c) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.schedule(this.lastReason || c.reason || 'connection lost');
      this.lastReason = '';
    };
  }

  private schedule(reason: string): void {
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** Math.max(0, this.attempt - 1));
    const inMs = Math.round(base / 2 + Math.random() * (base / 2));
    this.h.onStatus({ state: 'waiting', inMs, reason });
    this.timer = window.setTimeout(() => {
      this.timer = null;
      this.open();
    }, inMs);
  }
}

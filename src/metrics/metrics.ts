/**
 * GET /metrics: Prometheus text format, with prom-client.
 *
 * Nothing here is on the chat's hot path. Connection, room and message figures are the
 * counters the server and hub keep anyway, read when Prometheus scrapes (collect callbacks);
 * only classifier jobs and HTTP requests are observed as they happen, a fraction of a
 * microsecond each.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Hub } from '../hub/hub.js';
import type { PoolStats } from '../classifier/pool.js';
import type { BotStatus, LabelsEvent } from '../protocol/events.js';
import type { Transport } from '../transport/chat-link.js';
import type { Task, TaskStore } from '../images/task-store.js';
import type { ImageKeeper } from '../images/image-store.js';
import type { StoreHealth } from '../store/store.js';

export type Carrier = Transport | 'http';

/** What the server lets the metrics read. */
export interface MetricsSource {
  hub: Hub;
  connections(): Record<Carrier, number>;
  /** Read at each scrape: the live object, not a copy. */
  stats: {
    accepted: number;
    refused: number;
    sendq: Record<Transport, number>;
    throttledBy: Record<Transport, number>;
  };
  bot(): BotStatus | null;
  pool(): PoolStats | null;
  tasks: TaskStore;
  images: ImageKeeper;
  /** The on-disk history's health; null when history is kept in memory only. */
  store(): StoreHealth | null;
}

const TRANSPORTS: Transport[] = ['tcp', 'websocket'];
const STATES = ['ready', 'loading', 'down', 'off'] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly classifierJob: Histogram<'result'>;
  private readonly classifierInference: Histogram;
  private readonly httpRequests: Counter<'route' | 'status'>;
  private readonly httpSeconds: Histogram<'route'>;

  constructor(src: MetricsSource, opts: { processMetrics: boolean }) {
    const registers = [this.registry];
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });

    // Counters kept elsewhere, published as they are at scrape time.
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    const perTransport = (name: string, help: string, read: (t: Transport) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['transport'],
        registers,
        collect() {
          this.reset();
          for (const t of TRANSPORTS) this.inc({ transport: t }, read(t));
        },
      });
    };
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };

    const hub = src.hub;
    new Gauge({
      name: 'roomcast_connections',
      help: 'Open connections by transport (tcp: chat over TCP, websocket, http: HTTP keep-alive and in-flight)',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const [t, n] of Object.entries(src.connections())) this.set({ transport: t }, n);
      },
    });
    counter('roomcast_connections_accepted_total', 'Connections admitted (every transport)', () => src.stats.accepted);
    counter('roomcast_connections_refused_total', 'Connections refused by the connection limits', () => src.stats.refused);
    gauge('roomcast_sessions', 'Registered chat users', () => hub.sessions.size);
    gauge('roomcast_rooms', 'Rooms that exist', () => hub.rooms.size);
    gauge('roomcast_room_members', 'Room memberships (a user in two rooms counts twice)', () => {
      let n = 0;
      for (const room of hub.rooms.values()) n += room.members.size;
      return n;
    });
    counter('roomcast_messages_received_total', 'Room messages accepted from users', () => hub.stats.messages);
    counter('roomcast_deliveries_total', 'Room messages delivered to members (one per recipient)', () => hub.stats.deliveries);
    counter('roomcast_private_messages_total', 'Private messages relayed', () => hub.stats.privmsgs);
    counter('roomcast_images_posted_total', 'Images posted to rooms', () => hub.stats.images);
    perTransport('roomcast_sendq_disconnects_total', 'Clients disconnected for not reading (SendQ exceeded)', (t) => src.stats.sendq[t]);
    perTransport('roomcast_rate_limited_total', 'Times a client was slowed down by flood control', (t) => src.stats.throttledBy[t]);

    gauge('roomcast_classifier_queue_depth', 'Images waiting for a classifier worker', () => src.pool()?.queueDepth ?? 0);
    gauge('roomcast_classifier_in_flight', 'Images being classified', () => src.pool()?.inFlight ?? 0);
    new Counter({
      name: 'roomcast_classifier_jobs_total',
      help: 'Classifier jobs finished, by result',
      labelNames: ['result'],
      registers,
      collect() {
        const st = src.pool();
        this.reset();
        this.inc({ result: 'done' }, st?.jobsDone ?? 0);
        this.inc({ result: 'failed' }, st?.jobsFailed ?? 0);
      },
    });
    new Gauge({
      name: 'roomcast_classifier_state',
      help: 'The classifier bot state (1 for the current one)',
      labelNames: ['state'],
      registers,
      collect() {
        const state = src.bot()?.state ?? 'off';
        for (const s of STATES) this.set({ state: s }, s === state ? 1 : 0);
      },
    });
    gauge('roomcast_classifier_tasks_pending', 'Image posts waiting for the bot\'s answer', () => src.tasks.pending);
    gauge('roomcast_image_store_bytes', 'Bytes of posted images kept for GET /api/images', () => src.images.bytes);
    counter('roomcast_history_failed_writes_total', 'Writes of the history store that failed (disk full, I/O error)', () => src.store()?.failedWrites ?? 0);
    counter('roomcast_history_dropped_events_total', 'Events given up while history writes failed for long', () => src.store()?.dropped ?? 0);
    gauge('roomcast_history_queued_events', 'Events appended to the history and not yet written', () => src.store()?.queued ?? 0);
    gauge('roomcast_history_degraded', '1 while history writes are failing (chat goes on from memory)', () => (src.store()?.state === 'degraded' ? 1 : 0));

    this.classifierJob = new Histogram({
      name: 'roomcast_classifier_job_seconds',
      help: 'From an image post to the bot\'s answer in the room, by result',
      labelNames: ['result'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    for (const result of ['done', 'failed']) this.classifierJob.zero({ result });
    this.classifierInference = new Histogram({
      name: 'roomcast_classifier_inference_seconds',
      help: 'Model run time of the batch that held the image, as the worker measured it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'roomcast_http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['route', 'status'],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'roomcast_http_request_seconds',
      help: 'Time to answer an HTTP request, by route',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
  }

  /** A classification task finished (TaskStore.onFinished). */
  taskFinished(task: Task, answer: LabelsEvent | null): void {
    this.classifierJob.observe({ result: task.status }, Math.max(0, (task.finished ?? task.created) - task.created) / 1000);
    const inference = answer?.timings?.inferenceMs;
    if (typeof inference === 'number') this.classifierInference.observe(inference / 1000);
  }

  httpAnswered(route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ route, status: String(status) });
    this.httpSeconds.observe({ route }, seconds);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.registry.metrics();
    res.writeHead(200, { 'Content-Type': this.registry.contentType, 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

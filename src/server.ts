/**
 * The chat server: a hub plus TCP listeners on every bound address, connection limits, logs,
 * and an orderly shutdown. The CLI and the tests both start it through here.
 *
 * One port serves chat over TCP (text and JSON), HTTP and WebSocket: a connection whose first
 * bytes are an HTTP request line is handed to the web server, anything else is chat. With
 * web.port set, HTTP and WebSocket have their own port instead. The connection limits count
 * every socket, whatever it turns out to speak.
 */
import { splitUrl } from './http/router.js';
import { nickKey } from './protocol/text.js';
import { kickLine, moderationLine } from './protocol/moderation-text.js';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { Hub, type HubOptions } from './hub/hub.js';
import type { Link } from './hub/session.js';
import { protocolError } from './protocol/errors.js';
import { DEFAULT_PORT } from './protocol/port.js';
import { Admission } from './net/admission.js';
import { hostPort, plainAddress } from './net/address.js';
import { CONNECTION_DEFAULTS, type ConnectionOptions } from './transport/options.js';
import { Connection, type ConnectionHooks } from './transport/tcp/connection.js';
import { acceptTls } from './transport/tls-handshake.js';
import { ApiTokens } from './auth/api-tokens.js';
import { classifyFirstBytes } from './transport/sniff.js';
import { listenAll, resolveHosts, type BindAddress } from './net/listen.js';
import { silentLogger, type Logger } from './log.js';
import { ClassifierBot, BOT_DEFAULTS } from './images/classifier-bot.js';
import { ClassifierPool, type PoolOptions } from './classifier/pool.js';
import type { ProtocolError } from './protocol/errors.js';
import type { Transport } from './transport/chat-link.js';
import { WsConnection } from './transport/ws/ws-connection.js';
import { WEB_DEFAULTS, type WebOptions } from './http/context.js';
import { ImageStore, type ImageKeeper } from './images/image-store.js';
import { ImageArchive } from './images/image-archive.js';
import { Metrics } from './metrics/metrics.js';
import { OriginPolicy } from './http/origin.js';
import { TaskStore } from './images/task-store.js';
import { ImagePosts } from './images/image-posts.js';
import { WebServer, type Upgraded } from './http/web-server.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { FsyncPolicy, MessageStore, Retention } from './store/store.js';
import { StoreError } from './store/errors.js';
import { ClusterNode, redactedUrl, type ClusterHealth, type ClusterOptions } from './cluster/cluster-node.js';

export interface ServerOptions {
  /**
   * Rooms shared with every other server on the same Redis (`serve --redis`): Redis numbers
   * and keeps every room's events, and `store` is not used.
   */
  cluster?: ClusterOptions;
  hosts: string[];
  port: number;
  hub: Partial<HubOptions>;
  connection: ConnectionOptions;
  maxConnections: number;
  maxPerAddress: number;
  /** How long shutdown waits for clients to take their last bytes (ms). */
  shutdownTimeout: number;
  logger: Logger;
  /**
   * The classifier bot: pool options to run it, or why it is off (it then answers image posts
   * with that advice). Absent: no bot at all.
   */
  classifier?: { pool: PoolOptions; top?: number } | { off: string };
  /** HTTP API, web page and WebSocket. */
  web: WebOptions;
  /**
   * Where rooms' history is kept: in memory (nothing survives a restart), or in an SQLite
   * file in `dir`. `retain` bounds it; old events are dropped every pruneIntervalMs.
   */
  store:
    | { engine: 'memory' }
    | {
        engine: 'sqlite';
        dir: string;
        fsync: FsyncPolicy;
        retain?: Retention;
        pruneIntervalMs?: number;
        /** Bytes of posted images kept as files in `dir` (default IMAGE_ARCHIVE_BYTES). */
        maxImageBytes?: number;
      };
  /**
   * TLS on the same port(s): a connection that starts with a TLS handshake is TLS. `only`:
   * clear-text chat clients are told how to connect and closed, plain HTTP is redirected.
   */
  tls?: { cert: Buffer; key: Buffer; only: boolean; handshakeTimeoutMs?: number };
  /** Where the API tokens are (roomcast token create writes it; it is read again when it changes). */
  apiTokens?: { file: string };
}

export const SERVER_DEFAULTS: ServerOptions = {
  hosts: ['localhost'],
  port: DEFAULT_PORT,
  hub: {},
  connection: CONNECTION_DEFAULTS,
  maxConnections: 4096,
  maxPerAddress: 64,
  shutdownTimeout: 5000,
  logger: silentLogger,
  web: WEB_DEFAULTS,
  store: { engine: 'memory' },
};

const PRUNE_INTERVAL_MS = 60_000;
/** How long a client may take over its TLS handshake. */
const TLS_HANDSHAKE_MS = 10_000;
/** What a clear-text chat client is told by a --tls-only server. */
const TLS_ONLY_LINE =
  'roomcast: this server speaks TLS only. Connect with: roomcast join tls://HOST:PORT, or openssl s_client -quiet -connect HOST:PORT (ncat --ssl HOST PORT); in a browser, use https://';
export const IMAGE_ARCHIVE_BYTES = 1 << 30;

/** What a link speaks, for the log: the hub never asks. */
function wireOf(link: Link): string {
  if (link instanceof Connection) return link.mode;
  return link instanceof WsConnection ? 'websocket' : 'in-process';
}

export interface Listening {
  address: string;
  family: 4 | 6;
  port: number;
}

export class RoomcastServer {
  readonly opts: ServerOptions;
  readonly hub: Hub;
  /** Chat connections over TCP (and sockets not yet known to be HTTP). */
  readonly connections = new Set<Connection>();
  readonly wsConnections = new Set<WsConnection>();
  readonly stats = {
    accepted: 0,
    refused: 0,
    sendqDisconnects: 0,
    throttled: 0,
    sendq: { tcp: 0, websocket: 0 } as Record<Transport, number>,
    throttledBy: { tcp: 0, websocket: 0 } as Record<Transport, number>,
  };
  readonly web: WebServer;
  readonly tasks: TaskStore;
  readonly images: ImageKeeper;
  /** Posted images and tasks on disk, with the SQLite store. */
  private readonly archive: ImageArchive | null = null;
  readonly imagePosts: ImagePosts;
  readonly metrics: Metrics;
  listening: Listening[] = [];
  /** Where HTTP and WebSocket listen when they have their own port (web.port). */
  httpListening: Listening[] = [];
  httpPort = 0;
  bot: ClassifierBot | null = null;
  pool: ClassifierPool | null = null;
  port = 0;
  private servers: net.Server[] = [];
  private httpServers: net.Server[] = [];
  private readonly admission: Admission;
  private stopping: Promise<void> | null = null;
  /** The on-disk store, when there is one (in memory the hub keeps its own). */
  readonly store: MessageStore | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  /** This server as a node of a cluster, when started with one. */
  readonly cluster: ClusterNode | null = null;
  /** The certificate and key, when the server speaks TLS. */
  private readonly tlsContext: tls.SecureContext | null = null;
  private readonly tokens: ApiTokens | null = null;

  constructor(opts: Partial<ServerOptions> = {}) {
    this.opts = {
      ...SERVER_DEFAULTS,
      ...opts,
      connection: { ...CONNECTION_DEFAULTS, ...opts.connection },
      // Under --tls-only the web server sends clear-text requests to https.
      web: { ...WEB_DEFAULTS, ...opts.web, httpsOnly: opts.web?.httpsOnly === true || opts.tls?.only === true },
    };
    const log = this.opts.logger;
    const c = this.opts.connection;
    this.admission = new Admission(this.opts.maxConnections, this.opts.maxPerAddress);
    const st = this.opts.store;
    if (this.opts.cluster) {
      const where = redactedUrl(this.opts.cluster.url);
      this.cluster = new ClusterNode(this.opts.cluster, {
        arrive: (room, event) => this.hub.arrive(room, event),
        restarted: (room, start) => this.hub.restartRoom(room, start),
        topicRead: (room, topic) => this.hub.topicRead(room, topic),
        skipped: (room, from, to) => this.hub.skippedEvents(room, from, to),
        announced: (room, event) => this.hub.announced(room, event),
        privateMessage: (key, event) => this.hub.privateFromElsewhere(key, event),
        down: (reason) => {
          log.error(`cluster: lost Redis at ${where} (${reason}); local members stay connected, retrying`);
          this.hub.noticeAll('the server lost its cluster (Redis): what you say reaches the people on this server now, and everyone else when it is back');
        },
        up: (h) => {
          log.info(`cluster: Redis at ${where} is back (outage ${h.outages}); rooms are read up from their Streams`);
          this.hub.noticeAll('the cluster is back: messages go out again');
          this.hub.reannounce();
        },
      });
      this.store = this.cluster.store;
    } else if (st.engine === 'sqlite') {
      this.store = new SqliteStore({
        dir: st.dir,
        fsync: st.fsync,
        observer: {
          durable: (room, seq) => this.hub.durable(room, seq),
          // Once per outage, not per message: the store keeps the events and retries.
          degraded: (err) => log.error(`history: ${err.message}`),
          recovered: (h) => log.info(`history: writing again (${h.failedWrites} writes had failed; ${h.dropped} events were given up)`),
        },
      });
    }
    this.hub = new Hub(
      {
        maxTextLength: c.maxLine,
        ...(this.store ? { store: this.store, ackWhenDurable: st.engine === 'sqlite' && st.fsync === 'always' } : {}),
        ...this.opts.hub,
        // maxImageBytes lets a client refuse an oversized image before uploading it.
        limits: {
          maxLine: c.maxLine,
          maxFrame: c.maxFrame,
          floodRate: c.floodRate,
          floodBurst: c.floodBurst,
          maxImageBytes: c.maxImageBytes,
        },
      },
      {
        registered: (s) => log.info(`${s.nick} connected from ${s.link.peer} (${wireOf(s.link)})`),
        left: (s, reason) => log.info(`${s.nick} disconnected (${s.link.peer}): ${reason}`),
        joined: (s, room) => log.info(`${s.nick} joined [${room.name}]`),
        parted: (s, room) => log.info(`${s.nick} left [${room.name}]`),
        // Every operator's act, with who did it: the log is where a dispute is settled.
        moderated: (_room, e) => log.info(`moderation: ${e.type === 'parted' ? kickLine(e) : moderationLine(e, Date.now())}`),
        renamed: (s, old) => log.info(`${old} is now ${s.nick}`),
        failed: (s, err) => log.error(`command from ${s.nick} failed: ${(err as Error)?.stack ?? err}`),
        storeFailed: (err) => {
          // A closed store at shutdown is expected; anything else is a bug worth a line.
          if (!(err instanceof StoreError && err.code === 'STORE_CLOSED' && this.stopping)) log.error(`history: ${(err as Error)?.message ?? err}`);
        },
      },
    );
    if (this.opts.apiTokens) this.tokens = new ApiTokens(this.opts.apiTokens.file, (err) => log.error(`API tokens: ${err.message}`));
    if (this.opts.tls) this.tlsContext = tls.createSecureContext({ cert: this.opts.tls.cert, key: this.opts.tls.key, minVersion: 'TLSv1.2' });
    const w = this.opts.web;
    if (st.engine === 'sqlite' && !this.cluster) {
      // Opened here, not in start(): the image posts and the tasks are built on it. A
      // StoreError (locked, not writable) reaches whoever constructs the server.
      this.archive = ImageArchive.open({
        dir: st.dir,
        maxBytes: st.maxImageBytes ?? IMAGE_ARCHIVE_BYTES,
        degraded: (err) => log.error(`images: ${err.message}`),
        recovered: () => log.info('images: writing again'),
      });
      this.hub.continueImagesAfter(this.archive.lastImageId());
    }
    const kept = this.archive ?? new ImageStore(w.imageStoreBytes, w.imageStoreCount);
    this.images = this.cluster ? this.cluster.images(kept) : kept;
    this.tasks = new TaskStore({
      onFinished: (task, answer) => this.metrics.taskFinished(task, answer),
      ...(this.archive ? { archive: this.archive } : this.cluster ? { archive: this.cluster.tasks } : {}),
    });
    this.imagePosts = new ImagePosts(this.hub, this.images, this.tasks);
    this.metrics = new Metrics(
      {
        hub: this.hub,
        connections: () => ({ tcp: this.connections.size, websocket: this.wsConnections.size, http: this.web.sockets.size }),
        stats: this.stats,
        bot: () => this.bot?.status() ?? null,
        pool: () => this.pool?.stats() ?? null,
        tasks: this.tasks,
        images: this.images,
        store: () => this.store?.health() ?? null,
      },
      { processMetrics: w.processMetrics },
    );
    this.web = new WebServer(
      {
        hub: this.hub,
        opts: w,
        connection: c,
        posts: this.imagePosts,
        tasks: this.tasks,
        ...(this.cluster ? { clusterTasks: this.cluster.tasks } : {}),
        images: this.images,
        metrics: this.metrics,
        origins: new OriginPolicy(w.origins),
        tokens: this.tokens,
        readiness: () => ({
          listening: this.listening.length > 0,
          stopping: this.stopping !== null,
          bot: this.bot?.status() ?? null,
          store: this.store?.health() ?? null,
          cluster: this.cluster?.health() ?? null,
        }),
      },
      { websocket: (upgraded, req) => this.acceptWebSocket(upgraded, req) },
      log,
    );
  }

  /**
   * Opens the history (rejects with a StoreError naming the file and what to do), then
   * listens. Rooms take up their numbering from the store before anyone can say a word.
   */
  async start(): Promise<Listening[]> {
    if (this.cluster) {
      await this.cluster.connect();
      // Image ids are shown and fetched by number: each node takes its own block of them.
      this.hub.continueImagesAfter(await this.cluster.imageIdBlock());
      this.hub.useRelay(this.cluster.relay);
    }
    if (this.store) {
      this.hub.restore(await this.store.open());
      this.schedulePrune();
    }
    await this.tokens?.start();
    await this.checkAdmins();
    let binds: BindAddress[];
    try {
      binds = await resolveHosts(this.opts.hosts);
    } catch (err) {
      await this.closeStore();
      throw err;
    }
    return this.listen(binds).catch(async (err: unknown) => {
      await this.closeStore();
      throw err;
    });
  }

  /**
   * An --admin whose account does not exist yet is whoever registers that nick first: said
   * at start, with what to do, so that it is not a student who does.
   */
  private async checkAdmins(): Promise<void> {
    for (const nick of this.hub.opts.admins) {
      const account = await this.hub.store.account(nickKey(nick)).catch(() => null);
      if (account === null)
        this.opts.logger.warn(`--admin ${nick}: there is no account ${nick} yet, so the first to take that nick and /register it becomes a server operator. Connect as ${nick} now and /register PASSWORD.`);
    }
  }

  private async listen(binds: BindAddress[]): Promise<Listening[]> {
    const { servers, port, bound } = await listenAll(binds, this.opts.port, () =>
      net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket)),
    );
    // Only once listening: a failure to bind is the caller's to explain, not a log line too.
    for (const server of servers) server.on('error', (err) => this.opts.logger.error(`listener: ${err.message}`));
    this.servers = servers;
    this.port = port;
    this.listening = bound.map((b) => ({ address: b.address, family: b.family, port }));
    if (this.opts.web.port !== null) {
      try {
        const http = await listenAll(binds, this.opts.web.port, () =>
          net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.acceptHttp(socket)),
        );
        for (const server of http.servers) server.on('error', (err) => this.opts.logger.error(`HTTP listener: ${err.message}`));
        this.httpServers = http.servers;
        this.httpPort = http.port;
        this.httpListening = http.bound.map((b) => ({ address: b.address, family: b.family, port: http.port }));
      } catch (err) {
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
        this.listening = [];
        throw err;
      }
    }
    const cls = this.opts.classifier;
    if (cls) {
      // Workers start loading the model now, in their own processes; the hub does not wait.
      if ('pool' in cls) this.pool = new ClassifierPool(cls.pool);
      // In a cluster every post goes on the shared queue, which this node's model serves too.
      this.bot = new ClassifierBot(
        this.imagePosts,
        this.pool,
        {
          logger: this.opts.logger,
          top: 'pool' in cls ? (cls.top ?? BOT_DEFAULTS.top) : BOT_DEFAULTS.top,
          ...('off' in cls ? { offReason: cls.off } : {}),
        },
        this.cluster?.classifier ?? null,
      );
      const pool = this.pool;
      if (this.cluster && pool) {
        const model = path.basename(pool.modelPath).replace(/\.onnx$/, '');
        await this.cluster.serveClassifier((bytes, o) => pool.classify(bytes, o), model, Math.max(2, pool.stats().size * 2));
      }
    }
    return this.listening;
  }

  /** Counts a new socket in (or says why it may not come in), whatever it will speak. */
  private admit(socket: net.Socket): { address: string; peer: string; refusal: ProtocolError | null } {
    const address = plainAddress(socket.remoteAddress);
    const peer = hostPort(address, socket.remotePort ?? 0);
    const refusal = this.admission.admit(address);
    if (refusal === null) this.stats.accepted++;
    else {
      this.stats.refused++;
      this.opts.logger.info(`refused ${peer}: ${refusal.code}`);
    }
    return { address, peer, refusal };
  }

  /** A socket on the HTTP port (web.port). */
  private acceptHttp(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const { address, peer, refusal } = this.admit(socket);
    if (refusal === null) socket.once('close', () => this.admission.release(address));
    const context = this.tlsContext;
    if (context === null) {
      this.web.accept(socket, null, refusal);
      return;
    }
    // HTTPS on the HTTP port too: the first bytes say which, as on the chat port.
    socket.once('data', (head: Buffer) => {
      if (classifyFirstBytes(head) !== 'tls') {
        socket.pause();
        this.web.accept(socket, head, refusal);
        socket.resume();
        return;
      }
      acceptTls(socket, head, {
        context,
        timeoutMs: this.opts.tls?.handshakeTimeoutMs ?? TLS_HANDSHAKE_MS,
        secured: (tlsSocket) => this.web.accept(tlsSocket, null, refusal),
        failed: (reason) => this.opts.logger.debug(`${peer}: ${reason}`),
      });
    });
  }

  private acceptWebSocket({ socket, head, maxPayload }: Upgraded, req: IncomingMessage): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const peer = hostPort(plainAddress(socket.remoteAddress), socket.remotePort ?? 0);
    const conn = new WsConnection(socket, head, maxPayload, peer, this.hub, this.opts.connection, {
      closed: (c, reason) => {
        this.wsConnections.delete(c);
        if (reason.startsWith('SendQ exceeded')) {
          this.stats.sendqDisconnects++;
          this.stats.sendq.websocket++;
        }
        if (!c.session) this.opts.logger.debug(`${peer} (WebSocket) closed before registering: ${reason}`);
      },
      throttled: () => {
        this.stats.throttled++;
        this.stats.throttledBy.websocket++;
      },
    }, splitUrl(req.url).query.get('password') ?? undefined);
    this.wsConnections.add(conn);
    this.opts.logger.debug(`${peer} WebSocket from ${req.headers.origin ?? 'no origin'}`);
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const { address, peer, refusal } = this.admit(socket);
    const counted = refusal === null;
    // The address is counted once, for the socket, whatever it turns out to speak.
    let released = !counted;
    const release = (): void => {
      if (released) return;
      released = true;
      this.admission.release(address);
    };
    this.connect(socket, peer, refusal, release, false);
  }

  /**
   * A chat connection on a socket (clear, or a TLS socket whose handshake is done): it tells
   * text, JSON, HTTP and (on a clear socket of a TLS server) TLS apart by the first bytes.
   */
  private connect(socket: net.Socket, peer: string, refusal: ProtocolError | null, release: () => void, secure: boolean): void {
    const hooks: ConnectionHooks = {
      closed: (c, reason) => {
        this.connections.delete(c);
        release();
        if (reason.startsWith('SendQ exceeded')) {
          this.stats.sendqDisconnects++;
          this.stats.sendq.tcp++;
        }
        if (!c.session) this.opts.logger.debug(`${peer} closed before registering: ${reason}`);
      },
      throttled: () => {
        this.stats.throttled++;
        this.stats.throttledBy.tcp++;
      },
    };
    if (this.opts.web.port === null)
      hooks.http = (c, head) => {
        this.connections.delete(c);
        socket.once('close', release);
        this.web.accept(socket, head, refusal);
      };
    const context = this.tlsContext;
    if (context !== null && !secure) {
      hooks.tls = (c, head) => {
        this.connections.delete(c);
        acceptTls(socket, head, {
          context,
          timeoutMs: this.opts.tls?.handshakeTimeoutMs ?? TLS_HANDSHAKE_MS,
          secured: (tlsSocket) => this.connect(tlsSocket, peer, refusal, release, true),
          failed: (reason) => {
            release();
            this.opts.logger.debug(`${peer}: ${reason}`);
          },
        });
      };
      if (this.opts.tls?.only) hooks.clearTextRefused = TLS_ONLY_LINE;
    }
    this.connections.add(new Connection(socket, peer, this.hub, this.opts.connection, hooks, refusal));
  }

  /**
   * Stops accepting, tells every client why, lets queued output drain, and resolves when every
   * connection has closed or the shutdown timeout has cut the rest.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.tokens?.stop();
    const listeners = [...this.servers, ...this.httpServers];
    const closed = Promise.all(listeners.map((s) => new Promise((r) => s.close(r))));
    const bye = protocolError('SHUTTING_DOWN');
    for (const conn of this.connections) conn.close({ code: bye.code, reason: bye.message });
    for (const conn of this.wsConnections) conn.close({ code: bye.code, reason: bye.message });
    this.web.destroyAll();
    // No answer can reach a client now, and a worker that dies during the drain (a signal to
    // the process group) must not be replaced: the pool closes at once.
    const poolClosed = this.pool?.close();
    const open = (): number => this.connections.size + this.wsConnections.size;
    const deadline = Date.now() + this.opts.shutdownTimeout;
    while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Wait for the 'close' of what is cut, so no connection or session outlives stop().
    const links = [...this.connections, ...this.wsConnections];
    const cut = links.map((c) => new Promise((r) => c.socket.once('close', r)));
    for (const conn of links) conn.socket.destroy();
    await Promise.all([closed, ...cut, poolClosed]);
    await this.closeStore();
    this.opts.logger.flush();
  }

  /** Old history is dropped in the background, in small steps between which chat goes on. */
  private schedulePrune(): void {
    const st = this.opts.store;
    if (st.engine !== 'sqlite' || !st.retain || !this.store) return;
    const { retain } = st;
    const store = this.store;
    let running = false;
    const prune = (): void => {
      if (running || this.stopping) return;
      running = true;
      store
        .prune(retain)
        .then(
          (r) => r.deleted > 0 && this.opts.logger.debug(`history: dropped ${r.deleted} events past the retention`),
          (err: unknown) => this.opts.logger.error(`history: pruning failed: ${(err as Error)?.message ?? err}`),
        )
        .finally(() => (running = false));
    };
    this.pruneTimer = setInterval(prune, st.pruneIntervalMs ?? PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    setImmediate(prune);
  }

  private async closeStore(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.pruneTimer = null;
    await this.archive?.close();
    try {
      await this.store?.close();
    } catch (err) {
      this.opts.logger.error(`history: ${(err as Error)?.message ?? err}`);
    }
    await this.cluster?.close();
  }
}

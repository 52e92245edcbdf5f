/**
 * The chat server: a hub plus TCP listeners on every bound address, connection limits, logs,
 * and an orderly shutdown. The CLI and the tests both start it through here.
 */
import net from 'node:net';
import { Hub, type HubOptions } from './hub/hub.js';
import { protocolError } from './protocol/errors.js';
import { Admission } from './transport/admission.js';
import { hostPort, plainAddress } from './transport/address.js';
import { Connection, CONNECTION_DEFAULTS, type ConnectionOptions } from './transport/connection.js';
import { listenAll, resolveHosts, type BindAddress } from './transport/listen.js';
import { silentLogger, type Logger } from './log.js';
import { ClassifierBot, BOT_DEFAULTS } from './bot/classifier-bot.js';
import { ClassifierPool, type PoolOptions } from './classifier/pool.js';

export const DEFAULT_PORT = 7447;

export interface ServerOptions {
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
};

export interface Listening {
  address: string;
  family: 4 | 6;
  port: number;
}

export class RoomcastServer {
  readonly opts: ServerOptions;
  readonly hub: Hub;
  readonly connections = new Set<Connection>();
  readonly stats = { accepted: 0, refused: 0, sendqDisconnects: 0, throttled: 0 };
  listening: Listening[] = [];
  bot: ClassifierBot | null = null;
  pool: ClassifierPool | null = null;
  port = 0;
  private servers: net.Server[] = [];
  private readonly admission: Admission;
  private stopping: Promise<void> | null = null;

  constructor(opts: Partial<ServerOptions> = {}) {
    this.opts = { ...SERVER_DEFAULTS, ...opts, connection: { ...CONNECTION_DEFAULTS, ...opts.connection } };
    const log = this.opts.logger;
    const c = this.opts.connection;
    this.admission = new Admission(this.opts.maxConnections, this.opts.maxPerAddress);
    this.hub = new Hub(
      {
        maxTextLength: c.maxLine,
        ...this.opts.hub,
        limits: { maxLine: c.maxLine, maxFrame: c.maxFrame, floodRate: c.floodRate, floodBurst: c.floodBurst },
      },
      {
        registered: (s) => log.info(`${s.nick} connected from ${s.link.peer} (${s.link.mode})`),
        left: (s, reason) => log.info(`${s.nick} disconnected (${s.link.peer}): ${reason}`),
        joined: (s, room) => log.info(`${s.nick} joined [${room.name}]`),
        parted: (s, room) => log.info(`${s.nick} left [${room.name}]`),
        renamed: (s, old) => log.info(`${old} is now ${s.nick}`),
        failed: (s, err) => log.error(`command from ${s.nick} failed: ${(err as Error)?.stack ?? err}`),
      },
    );
  }

  async start(): Promise<Listening[]> {
    const binds: BindAddress[] = await resolveHosts(this.opts.hosts);
    const { servers, port, bound } = await listenAll(binds, this.opts.port, () => {
      const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
      server.on('error', (err) => this.opts.logger.error(`listener: ${err.message}`));
      return server;
    });
    this.servers = servers;
    this.port = port;
    this.listening = bound.map((b) => ({ address: b.address, family: b.family, port }));
    const cls = this.opts.classifier;
    if (cls) {
      // Workers start loading the model now, in their own processes; the hub does not wait.
      if ('pool' in cls) this.pool = new ClassifierPool(cls.pool);
      this.bot = new ClassifierBot(this.hub, this.pool, {
        logger: this.opts.logger,
        top: 'pool' in cls ? (cls.top ?? BOT_DEFAULTS.top) : BOT_DEFAULTS.top,
        ...('off' in cls ? { offReason: cls.off } : {}),
      });
    }
    return this.listening;
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const address = plainAddress(socket.remoteAddress);
    const peer = hostPort(address, socket.remotePort ?? 0);
    const refusal = this.admission.admit(address);
    const counted = refusal === null;
    if (counted) this.stats.accepted++;
    else {
      this.stats.refused++;
      this.opts.logger.info(`refused ${peer}: ${refusal.code}`);
    }
    const conn = new Connection(
      socket,
      peer,
      this.hub,
      this.opts.connection,
      {
        closed: (c, reason) => {
          this.connections.delete(c);
          if (counted) this.admission.release(address);
          if (reason.startsWith('SendQ exceeded')) this.stats.sendqDisconnects++;
          if (!c.session) this.opts.logger.debug(`${peer} closed before registering: ${reason}`);
        },
        throttled: () => {
          this.stats.throttled++;
        },
      },
      refusal,
    );
    this.connections.add(conn);
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
    const closed = Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    const bye = protocolError('SHUTTING_DOWN');
    for (const conn of this.connections) conn.close({ code: bye.code, reason: bye.message });
    const deadline = Date.now() + this.opts.shutdownTimeout;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Wait for the 'close' of what is cut, so no connection or session outlives stop().
    const cut = [...this.connections].map((c) => new Promise((r) => c.socket.once('close', r)));
    for (const conn of this.connections) conn.socket.destroy();
    await Promise.all([closed, ...cut, this.pool?.close()]);
    this.opts.logger.flush();
  }
}

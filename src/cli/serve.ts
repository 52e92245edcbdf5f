/**
 * `roomcast serve`: the options main.ts parsed, turned into a RoomcastServer (with its
 * classifier bot and LAN announcer), started, and stopped on SIGINT or SIGTERM.
 */
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism, homedir, networkInterfaces } from 'node:os';
import { createLogger, type LogLevel } from '../log.js';
import { HUB_DEFAULTS } from '../hub/hub.js';
import { IMAGE_ARCHIVE_BYTES, RoomcastServer, SERVER_DEFAULTS, type ServerOptions } from '../server.js';
import { findModel } from '../classifier/model-catalog.js';
import { ClassifierError } from '../classifier/errors.js';
import { POOL_DEFAULTS } from '../classifier/pool.js';
import { Announcer } from '../lan/announce.js';
import { VERSION } from '../version.js';
import { describeListening, explainListenError } from './banner.js';
import { tuneHeapForLatency } from './heap.js';
import { defaultDataDir } from '../store/data-dir.js';
import { StoreError } from '../store/errors.js';
import { firstProcess, isServeWorker, reportListening, runProcesses } from './processes.js';
import { ClusterUnreachable, redactedUrl } from '../cluster/cluster-node.js';
import type { FsyncPolicy, Retention } from '../store/store.js';
import { tokenFile } from '../auth/api-tokens.js';
import { CertificateError, loadCertificate, selfSignedCertificate, type ServerCertificate } from '../tls/certificate.js';

export interface ServeFlags {
  host?: string[];
  announce?: boolean;
  lan?: boolean;
  port: number;
  room?: string[];
  store: 'sqlite' | 'memory';
  redis?: string;
  redisPrefix?: string;
  lease?: number;
  /** Server processes sharing the port (--redis only); true: one per core. */
  processes?: number | true;
  /** Absent: the per-user state directory (the option's help says which). */
  dataDir?: string;
  fsync: FsyncPolicy;
  retain?: Retention;
  maxImageStore: number;
  history: number;
  replay: number;
  maxLine: number;
  maxFrame: number;
  maxSendq: number;
  floodRate: number;
  floodBurst: number;
  maxConnections: number;
  maxPerAddress: number;
  maxRooms: number;
  registerTimeout: number;
  greetDelay: number;
  shutdownTimeout: number;
  quiet?: boolean;
  verbose?: boolean;
  model?: string;
  labels?: string;
  modelsDir?: string;
  bot: boolean;
  workers?: number;
  maxImageBytes: number;
  classifierQueue: number;
  classifierBatch: number;
  classifierDelay: number;
  classifierTimeout: number;
  httpPort?: number;
  origin?: string[];
  wsMaxPayload?: number;
  webDir: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsOnly?: boolean;
  passwordFile?: string;
  apiTokenRequired?: boolean;
  admin?: string[];
}

const c = SERVER_DEFAULTS.connection;

/**
 * The defaults of serve's options, keyed as commander names them, taken from the modules they
 * configure. main.ts attaches them to the options only when serve runs or its help is shown,
 * since reading them loads the whole server.
 */
export const SERVE_DEFAULTS = {
  store: 'sqlite',
  fsync: 'batch',
  maxImageStore: IMAGE_ARCHIVE_BYTES,
  history: HUB_DEFAULTS.historySize,
  replay: HUB_DEFAULTS.replay,
  maxLine: c.maxLine,
  maxFrame: c.maxFrame,
  maxSendq: c.maxSendQueue,
  floodRate: c.floodRate,
  floodBurst: c.floodBurst,
  maxConnections: SERVER_DEFAULTS.maxConnections,
  maxPerAddress: SERVER_DEFAULTS.maxPerAddress,
  maxRooms: HUB_DEFAULTS.maxRoomsPerSession,
  registerTimeout: c.registerTimeout / 1000,
  greetDelay: c.greetDelay,
  shutdownTimeout: SERVER_DEFAULTS.shutdownTimeout,
  maxImageBytes: c.maxImageBytes,
  classifierQueue: POOL_DEFAULTS.maxQueue,
  classifierBatch: POOL_DEFAULTS.maxBatch,
  classifierDelay: POOL_DEFAULTS.maxQueueDelayMs,
  classifierTimeout: POOL_DEFAULTS.timeoutMs,
  webDir: SERVER_DEFAULTS.web.staticDir,
} satisfies Partial<ServeFlags>;

/** The bot's pool options, or why it is off: a missing model is advice, not a failure. */
async function classifierFor(flags: ServeFlags): Promise<ServerOptions['classifier']> {
  if (!flags.bot) return undefined;
  try {
    const found = await findModel({ model: flags.model, labels: flags.labels, dir: flags.modelsDir });
    return {
      pool: {
        model: found.model,
        labels: found.labels,
        size: flags.workers,
        maxQueue: flags.classifierQueue,
        maxBatch: flags.classifierBatch,
        maxQueueDelayMs: flags.classifierDelay,
        timeoutMs: flags.classifierTimeout,
        preprocess: { ...found.preprocess, maxBytes: flags.maxImageBytes },
      },
    };
  } catch (err) {
    if (err instanceof ClassifierError) return { off: err.message };
    throw err;
  }
}

/** 30 days, 12 hours, 90 minutes: the largest unit that states the age exactly. */
function age(ms: number): string {
  const units: [string, number][] = [['week', 604_800_000], ['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000]];
  const [unit, size] = units.find(([, n]) => ms % n === 0) ?? ['second', 1000];
  const n = ms / size;
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** Where history goes and what survives, for the banner. */
function describeHistory(flags: ServeFlags, dataDir: string): string {
  if (flags.redis) return `Cluster: rooms shared through Redis at ${redactedUrl(flags.redis)}; history kept there (search is off)\n`;
  if (flags.store === 'memory') return 'History: in memory only (--store memory): rooms start empty after a restart\n';
  const r = flags.retain;
  const count = r?.maxPerRoom === undefined ? null : `${r.maxPerRoom} messages a room`;
  const kept = !r ? 'everything' : r.maxAgeMs === undefined ? `the last ${count}` : count ? `${age(r.maxAgeMs)}, at most ${count}` : age(r.maxAgeMs);
  return `History: ${dataDir} (fsync ${flags.fsync}; keeps ${kept})\n`;
}

/**
 * The certificate the flags ask for, null for none; a CertificateError (one line) when the
 * flags do not fit together or the files cannot be used.
 */
async function certificateFor(flags: ServeFlags, dataDir: string): Promise<ServerCertificate | null> {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new CertificateError(flags.tlsCert === undefined ? '--tls-key needs --tls-cert FILE (the certificate it belongs to)' : '--tls-cert needs --tls-key FILE (its private key)');
  if (flags.tlsCert !== undefined) return loadCertificate(flags.tlsCert, flags.tlsKey!);
  // --tls-only alone means TLS with the self-signed certificate, as --tls does.
  if (flags.tls || flags.tlsOnly) return selfSignedCertificate(dataDir);
  return null;
}

/** A password file that cannot be used: one line, naming it. */
class PasswordFileError extends Error {}

/**
 * The server password: the first line of the file. A file others may read is used, with a
 * warning, since the password is only as secret as the file.
 */
async function serverPassword(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PasswordFileError(`cannot read the password file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const password = text.split(/\r?\n/, 1)[0]!.trim();
  if (password === '') throw new PasswordFileError(`the password file ${file} is empty: put the password on its first line`);
  if (((await stat(file)).mode & 0o077) !== 0) console.error(`roomcast: warning: others may read ${file}: chmod 600 ${file}`);
  return password;
}

/** What the banner says of TLS. */
function describeTls(cert: ServerCertificate | null, only: boolean): string {
  if (cert === null) return '';
  const what = cert.selfSigned ? `self-signed certificate (${cert.certFile}); clients check this on first contact` : `certificate ${cert.certFile}, valid until ${cert.validTo.toISOString().slice(0, 10)}`;
  const clear = only ? 'clear text refused (--tls-only)' : 'clear text too';
  return `TLS: on the same port, ${clear}; ${what}:\n  ${cert.fingerprint}\n`;
}

/** Starts the server; resolves with 1 if it could not listen, or once it runs (it stops on a signal). */
export async function serve(flags: ServeFlags): Promise<number | undefined> {
  const dataDir = flags.dataDir ?? defaultDataDir(process.env, homedir());
  // Before any process is started: they all read the one certificate this makes.
  let certificate: ServerCertificate | null;
  try {
    certificate = await certificateFor(flags, dataDir);
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err;
    console.error(`roomcast: ${err.message}`);
    return 1;
  }
  let password: string | undefined;
  try {
    if (flags.passwordFile !== undefined) password = await serverPassword(flags.passwordFile);
  } catch (err) {
    if (!(err instanceof PasswordFileError)) throw err;
    console.error(`roomcast: ${err.message}`);
    return 1;
  }
  if (flags.processes !== undefined && !isServeWorker()) {
    if (!flags.redis) {
      console.error('roomcast: --processes needs --redis URL: the processes share their rooms through Redis');
      return 1;
    }
    const n = flags.processes === true ? availableParallelism() : flags.processes;
    if (n > 1) return runProcesses(n);
  }
  tuneHeapForLatency();
  // A closed log pipe (`roomcast serve | head`) must not take the chat down with it.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const level: LogLevel = flags.quiet ? 'quiet' : flags.verbose ? 'verbose' : 'normal';
  const logger = createLogger(level);
  const classifier = await classifierFor(flags);
  const options: Partial<ServerOptions> = {
    classifier,
    hosts: flags.host ?? (flags.lan ? ['::'] : ['localhost']),
    port: flags.port,
    maxConnections: flags.maxConnections,
    maxPerAddress: flags.maxPerAddress,
    shutdownTimeout: flags.shutdownTimeout,
    logger,
    ...(flags.redis ? { cluster: { url: flags.redis, prefix: flags.redisPrefix, leaseMs: flags.lease } } : {}),
    ...(certificate ? { tls: { cert: certificate.cert, key: certificate.key, only: flags.tlsOnly === true } } : {}),
    apiTokens: { file: tokenFile.path(dataDir) },
    store:
      flags.store === 'memory'
        ? { engine: 'memory' }
        : { engine: 'sqlite', dir: dataDir, fsync: flags.fsync, retain: flags.retain, maxImageBytes: flags.maxImageStore },
    hub: {
      rooms: flags.room ?? [],
      historySize: flags.history,
      replay: flags.replay,
      maxRoomsPerSession: flags.maxRooms,
      version: VERSION,
      ...(password === undefined ? {} : { serverPassword: password }),
      admins: flags.admin ?? [],
    },
    web: {
      ...SERVER_DEFAULTS.web,
      port: flags.httpPort ?? null,
      origins: flags.origin ?? [],
      wsMaxPayload: flags.wsMaxPayload ?? null,
      staticDir: flags.webDir,
      apiTokenRequired: flags.apiTokenRequired === true,
    },
    connection: {
      ...c,
      maxLine: flags.maxLine,
      maxFrame: flags.maxFrame,
      maxImageBytes: flags.maxImageBytes,
      maxSendQueue: flags.maxSendq,
      floodRate: flags.floodRate,
      floodBurst: flags.floodBurst,
      registerTimeout: flags.registerTimeout * 1000,
      greetDelay: flags.greetDelay,
    },
  };
  let server: RoomcastServer;
  try {
    server = new RoomcastServer(options);
  } catch (err) {
    if (err instanceof StoreError) {
      console.error(`roomcast: ${err.message}`);
      return 1;
    }
    throw err;
  }
  try {
    await server.start();
  } catch (err) {
    if (err instanceof StoreError || err instanceof ClusterUnreachable) {
      console.error(`roomcast: ${err.message}`);
      return 1;
    }
    console.error(`roomcast: ${explainListenError(err as NodeJS.ErrnoException, (err as { port?: number }).port ?? flags.port, server.opts.hosts, networkInterfaces())}`);
    return 1;
  }
  // One write, so whoever waits for the banner reads it whole.
  if (isServeWorker()) reportListening(describeListening(server.listening, server.port, server.httpListening, server.httpPort, networkInterfaces(), certificate && { only: flags.tlsOnly === true }) + describeHistory(flags, dataDir) + describeTls(certificate, flags.tlsOnly === true));
  else process.stdout.write(describeListening(server.listening, server.port, server.httpListening, server.httpPort, networkInterfaces(), certificate && { only: flags.tlsOnly === true }) + describeHistory(flags, dataDir) + describeTls(certificate, flags.tlsOnly === true));
  const announcer =
    (flags.announce || flags.lan) && firstProcess()
      ? new Announcer({
          bound: server.listening.map((l) => l.address),
          port: server.port,
          // A cluster's nodes say which cluster they are, so a client takes them as one service.
          info: { version: VERSION, httpPort: server.httpListening.length > 0 ? server.httpPort : null, cluster: server.cluster ? server.store!.historyId() : null },
          logger,
        })
      : null;
  announcer?.start();

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      console.error(`roomcast: second ${sig}, exiting now`);
      process.exit(1);
    }
    logger.info(`${sig}: shutting down (send ${sig} again to exit at once)`);
    // The goodbye goes out while clients are told, so browsers drop this server at once.
    void Promise.all([server.stop(), announcer?.stop()]).then(() => {
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return undefined;
}

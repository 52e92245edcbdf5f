/**
 * The roomcast command line: wiring only. Each subcommand turns options into the options of
 * a module that does the work.
 */
import { networkInterfaces } from 'node:os';
import { Command } from 'commander';
import { createLogger, type LogLevel } from '../log.js';
import { CONNECTION_DEFAULTS } from '../transport/tcp/connection.js';
import { HUB_DEFAULTS } from '../hub/hub.js';
import { DEFAULT_PORT, RoomcastServer, SERVER_DEFAULTS, type ServerOptions } from '../server.js';
import { WEB_DEFAULTS } from '../http/context.js';
import { findModel } from '../classifier/models.js';
import { ClassifierError } from '../classifier/errors.js';
import { POOL_DEFAULTS } from '../classifier/pool.js';
import { describeListening, explainListenError } from './banner.js';
import { tuneHeapForLatency } from './heap.js';
import { runJoin } from '../client/join.js';
import { POST_DEFAULT_TIMEOUT_MS, runPost } from '../client/post.js';
import { IMAGE_FORMAT_LIST } from '../protocol/image-format.js';
import { registerClassifierCommands } from './classifier-commands.js';
import { registerProbeCommand } from './probe.js';
import { registerServersCommand } from './servers.js';
import { bytes, count, milliseconds, port, rate, seconds } from './numbers.js';
import { Announcer } from '../lan/announce.js';
import { VERSION } from '../version.js';

/**
 * A repeatable option's values. It has no default of its own: commander would print
 * "(default: [])" after the description, which says what the default means instead.
 */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function buildProgram(): Command {
  const program = new Command('roomcast')
    .description('Multi-room chat for local networks: netcat, terminal client, and programs')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // A usage error (unknown option, bad value) exits 2, as post's and join's own argument
    // errors do, so a script can tell "called wrongly" from "tried and failed" (1).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

  const c = CONNECTION_DEFAULTS;
  program
    .command('serve')
    .description('start a chat server')
    .option('--host <address>', 'address or host name to bind; repeat for several (default: localhost, i.e. 127.0.0.1 and ::1)', collect)
    .option('--announce', 'announce the server on the LAN (mDNS/DNS-SD), so `roomcast join` and `roomcast servers` find it')
    .option('--lan', 'open it to the LAN: bind every interface, IPv4 and IPv6 (--host ::), and --announce; with --host, bind those instead')
    .option('-p, --port <port>', 'TCP port; 0 picks a free one and prints it', port(), DEFAULT_PORT)
    .option('--room <name>', 'a room that always exists; repeat for several', collect)
    .option('--history <n>', 'messages each room keeps in memory', count(0), HUB_DEFAULTS.historySize)
    .option('--replay <n>', 'messages replayed to someone who joins', count(0), HUB_DEFAULTS.replay)
    .option('--max-line <bytes>', 'longest text-mode line', bytes(64), c.maxLine)
    .option('--max-frame <bytes>', 'longest JSON-mode line', bytes(256), c.maxFrame)
    .option('--max-sendq <bytes>', 'output queued for a slow reader before it is disconnected', bytes(1024), c.maxSendQueue)
    .option('--flood-rate <lines>', 'lines per second each client may send (0: no limit)', rate('a number of lines per second', 1_000_000, ' (0: no limit)'), c.floodRate)
    .option('--flood-burst <lines>', 'lines a client may send at once before the rate applies', count(1), c.floodBurst)
    .option('--max-connections <n>', 'connections in total', count(1), SERVER_DEFAULTS.maxConnections)
    .option('--max-per-address <n>', 'connections from one remote address', count(1), SERVER_DEFAULTS.maxPerAddress)
    .option('--max-rooms <n>', 'rooms one connection may be in', count(1), HUB_DEFAULTS.maxRoomsPerSession)
    .option('--register-timeout <seconds>', 'close a JSON or WebSocket connection that has not said hello in this long (0: never); text users and registered ones may stay silent', seconds(0, ' (0: never)'), c.registerTimeout / 1000)
    .option('--greet-delay <ms>', 'how long a silent new connection may take to say it speaks JSON', milliseconds(0), c.greetDelay)
    .option('--shutdown-timeout <ms>', 'how long shutdown waits for clients to take their last bytes', milliseconds(0), SERVER_DEFAULTS.shutdownTimeout)
    .option('--model <file>', 'ONNX image classifier for the bot (default: the installed default model)')
    .option('--labels <file>', 'labels for --model (synset.txt format, or one per line)')
    .option('--models-dir <dir>', 'where `roomcast models pull` installed models')
    .option('--no-bot', 'run without the classifier bot')
    .option('--workers <n>', 'classifier worker processes (default: one per spare core, at most 2)', count(1))
    .option('--max-image-bytes <bytes>', 'largest image a client may post', bytes(1), c.maxImageBytes)
    .option('--classifier-queue <n>', 'images that may wait for a worker before posters hear "busy"', count(1), POOL_DEFAULTS.maxQueue)
    .option('--classifier-batch <n>', 'images per model run when several wait', count(1), POOL_DEFAULTS.maxBatch)
    .option('--classifier-delay <ms>', 'how long an image may wait for a batch to fill', milliseconds(0), POOL_DEFAULTS.maxQueueDelayMs)
    .option('--classifier-timeout <ms>', 'time limit for one image', milliseconds(100), POOL_DEFAULTS.timeoutMs)
    .option('--http-port <port>', 'serve HTTP and WebSocket on this port of their own (default: the chat port serves them too; 0 picks a free one)', port())
    .option('--origin <origin>', 'a web page origin allowed to use the WebSocket and post (e.g. http://chat.lan:7447); repeat for several; "*" for any (default: the server\'s own pages only)', collect)
    .option('--ws-max-payload <bytes>', 'largest WebSocket message; larger closes the connection (default: room for the largest image)', bytes(1024))
    .option('--web-dir <dir>', 'directory of the web page\'s static files', WEB_DEFAULTS.staticDir)
    .option('-q, --quiet', 'log only warnings and errors')
    .option('-v, --verbose', 'log more detail')
    .action(serve);

  program
    .command('join')
    .description('chat in a terminal (JSON mode); HOST[:PORT], IPv6 as [::1]:PORT')
    .argument('[address]', `server to join (default: the one found on the LAN or on this machine's port ${DEFAULT_PORT}; several: pick one)`)
    .option('-n, --nick <nick>', 'your nick (default: one the server picks)')
    .option('-r, --room <room>', 'room to join; repeat for several', collect)
    .option('--no-reconnect', 'exit when the connection drops instead of reconnecting')
    .addHelpText(
      'after',
      `
Type a line to talk in the current room (shown in the prompt); /help lists commands.
With stdin from a pipe, each line is sent in order; at the end of input the client waits
until the server has answered every line, then quits. Exit status: 0 if every line was
accepted, 1 if one was refused or the server could not be reached (or none was found), 2 for a
bad address or, with no address, several servers found and no terminal to ask which.
Colour is used only on a terminal; NO_COLOR=1 turns it off there too.`,
    )
    .action(async (address: string | undefined, opts: { nick?: string; room?: string[]; reconnect: boolean }) => {
      process.exitCode = await runJoin({ address, nick: opts.nick, rooms: opts.room ?? [], reconnect: opts.reconnect });
    });

  program
    .command('post')
    .description('post a text and/or an image to a room, print the classifier bot\'s answer, exit (for scripts)')
    .usage('--room ROOM [options] <address>')
    .argument('<address>', 'server: HOST[:PORT] (IPv6 as [::1]:PORT), or a URL such as http://HOST:PORT/')
    .requiredOption('-r, --room <room>', 'room to post to (required)')
    .option('--image <file>', `image to post (${IMAGE_FORMAT_LIST})`)
    .option('--text <text>', 'a message to post (before the image)')
    .option('-n, --nick <nick>', 'nick to post as (default: one the server picks)')
    .option('--timeout <ms>', 'give up after this long, in all', milliseconds(1), POST_DEFAULT_TIMEOUT_MS)
    .option('--json', 'print the bot\'s answer as its JSON labels event')
    .addHelpText(
      'after',
      `
Prints the bot's answer ("kitten.jpg: tiger cat 42%, tabby 16%, Egyptian cat 7%"). Exit status:
0 posted and labelled; 1 could not connect, refused, the bot answered with an error or is off,
or timed out; 2 bad arguments or an unreadable file.`,
    )
    .action(async (address: string, opts: { room: string; image?: string; text?: string; nick?: string; timeout: number; json?: boolean }) => {
      process.exitCode = await runPost({
        address,
        room: opts.room,
        image: opts.image,
        text: opts.text,
        nick: opts.nick,
        timeoutMs: opts.timeout,
        json: opts.json === true,
      });
    });

  registerClassifierCommands(program);
  registerProbeCommand(program);
  registerServersCommand(program);

  return program;
}

interface ServeFlags {
  host?: string[];
  announce?: boolean;
  lan?: boolean;
  port: number;
  room?: string[];
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
}

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

async function serve(flags: ServeFlags): Promise<void> {
  tuneHeapForLatency();
  // A closed log pipe (`roomcast serve | head`) must not take the chat down with it.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  const level: LogLevel = flags.quiet ? 'quiet' : flags.verbose ? 'verbose' : 'normal';
  const logger = createLogger(level);
  const classifier = await classifierFor(flags);
  const server = new RoomcastServer({
    classifier,
    hosts: flags.host ?? (flags.lan ? ['::'] : ['localhost']),
    port: flags.port,
    maxConnections: flags.maxConnections,
    maxPerAddress: flags.maxPerAddress,
    shutdownTimeout: flags.shutdownTimeout,
    logger,
    hub: {
      rooms: flags.room ?? [],
      historySize: flags.history,
      replay: flags.replay,
      maxRoomsPerSession: flags.maxRooms,
      version: VERSION,
    },
    web: {
      ...WEB_DEFAULTS,
      port: flags.httpPort ?? null,
      origins: flags.origin ?? [],
      wsMaxPayload: flags.wsMaxPayload ?? null,
      staticDir: flags.webDir,
    },
    connection: {
      ...CONNECTION_DEFAULTS,
      maxLine: flags.maxLine,
      maxFrame: flags.maxFrame,
      maxImageBytes: flags.maxImageBytes,
      maxSendQueue: flags.maxSendq,
      floodRate: flags.floodRate,
      floodBurst: flags.floodBurst,
      registerTimeout: flags.registerTimeout * 1000,
      greetDelay: flags.greetDelay,
    },
  });
  try {
    await server.start();
  } catch (err) {
    console.error(`roomcast: ${explainListenError(err as NodeJS.ErrnoException, (err as { port?: number }).port ?? flags.port, server.opts.hosts, networkInterfaces())}`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(describeListening(server.listening, server.port, server.httpListening, server.httpPort, networkInterfaces()));
  const announcer =
    flags.announce || flags.lan
      ? new Announcer({
          bound: server.listening.map((l) => l.address),
          port: server.port,
          info: { version: VERSION, httpPort: server.httpListening.length > 0 ? server.httpPort : null },
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
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

/**
 * The roomcast command line: wiring only. This file declares the commands and their options;
 * each command's module is loaded only when that command runs, so `roomcast join` loads the
 * client and not the server, and `--help` and `--version` load neither.
 */
import { Command, Option } from 'commander';
import { DEFAULT_PORT } from '../protocol/port.js';
import { IMAGE_FORMAT_LIST } from '../protocol/image-format.js';
import { VERSION } from '../version.js';
import { bytes, count, fingerprint, milliseconds, passwordFile, port, rate, redisUrl, retention, seconds } from './numbers.js';

const POST_DEFAULT_TIMEOUT_MS = 30_000;
const PROBE_DEFAULT_TIMEOUT_MS = 1000;
const SERVERS_DEFAULT_TIMEOUT_MS = 2000;
const DIR_HELP = 'models directory (default: $ROOMCAST_MODELS, else models/ in the roomcast install)';
const TLS_HELP = 'connect with TLS (as tls://HOST:PORT does): the server must run with --tls or --tls-cert';
const FINGERPRINT_HELP =
  'trust the server\'s certificate if it has this SHA-256 fingerprint (the one `roomcast serve --tls` prints), without asking; it is remembered in known_servers';

/** How join and post trust a TLS server, after their own help. */
const TRUST_HELP = `With TLS, a certificate that verifies for the host name is trusted as usual. Any other (a
self-signed one from serve --tls) is trusted on first use, as ssh trusts host keys: at a
terminal you are shown its fingerprint and asked; a script passes --fingerprint. It is then
remembered in $XDG_CONFIG_HOME/roomcast/known_servers (~/.config/roomcast/known_servers), and a
server that later presents another certificate is refused, with both fingerprints.`;

/**
 * A repeatable option's values. It has no default of its own: commander would print
 * "(default: [])" after the description, which says what the default means instead.
 */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Sets the exit status a command resolved with; a command that keeps running resolves with none. */
async function exitWith(status: Promise<number | undefined>): Promise<void> {
  const code = await status;
  if (code !== undefined) process.exitCode = code;
}

/**
 * Option defaults that are only known by loading heavy modules (serve's come from the hub, the
 * connections and the classifier pool, which load the whole server), per command. They are
 * attached when the command runs or its help is shown, not when the program is declared.
 */
type LateDefaults = Map<Command, () => Promise<Record<string, unknown>>>;

async function attachDefaults(late: LateDefaults, cmd: Command): Promise<void> {
  const load = late.get(cmd);
  if (load === undefined) return;
  late.delete(cmd);
  for (const [key, value] of Object.entries(await load())) {
    const option = cmd.options.find((o) => o.attributeName() === key);
    if (option === undefined) throw new Error(`${cmd.name()} has no option for the default "${key}"`);
    option.default(value);
    cmd.setOptionValueWithSource(key, value, 'default');
  }
}

export function buildProgram(): Command {
  const late: LateDefaults = new Map();
  const program = new Command('roomcast')
    .description('Multi-room chat for local networks: netcat, terminal client, and programs')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // A usage error (unknown option, bad value) exits 2, as post's and join's own argument
    // errors do, so a script can tell "called wrongly" from "tried and failed" (1).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    // Before a command parses its options (and so before its --help), its late defaults.
    .hook('preSubcommand', (_program, cmd) => attachDefaults(late, cmd));

  const serve = program
    .command('serve')
    .description('start a chat server')
    .option('--host <address>', 'address or host name to bind; repeat for several (default: localhost, i.e. 127.0.0.1 and ::1)', collect)
    .option('--announce', 'announce the server on the LAN (mDNS/DNS-SD), so `roomcast join` and `roomcast servers` find it')
    .option('--lan', 'open it to the LAN: bind every interface, IPv4 and IPv6 (--host ::), and --announce; with --host, bind those instead')
    .option('-p, --port <port>', 'TCP port; 0 picks a free one and prints it', port(), DEFAULT_PORT)
    .option('--room <name>', 'a room that always exists; repeat for several', collect)
    .addOption(new Option('--store <engine>', 'where history is kept: sqlite (a file in --data-dir; survives restarts) or memory (nothing survives)').choices(['sqlite', 'memory']))
    .option('--redis <url>', 'share rooms with every server on this Redis (redis://HOST:PORT): a cluster; history is then kept in Redis and search is off', redisUrl)
    .option('--processes [n]', 'with --redis: run N server processes sharing the port (no N: one per core)', count(1))
    .option('--lease <ms>', 'with --redis: how long this server\'s members stay listed in the cluster if it dies without a word (default: 10000)', milliseconds(100))
    .option('--redis-prefix <prefix>', 'prefix of this cluster\'s Redis keys, for clusters that share one Redis (default: roomcast)')
    .option('--data-dir <dir>', 'directory for the history and posted images (default: $XDG_STATE_HOME/roomcast, else ~/.local/state/roomcast)')
    .addOption(
      new Option('--fsync <when>', 'when history is forced to disk: always (before each ack; nothing acked is lost on power loss), batch (every second), off (when the system likes)').choices(['always', 'batch', 'off']),
    )
    .option('--retain <age,count>', 'history to keep per room: an age (30d, 12h), a number of messages (100000), or both (30d,100000) (default: everything)', retention)
    .option('--max-image-store <bytes>', 'bytes of posted images kept as files in --data-dir; the oldest go first', count(0))
    .option('--history <n>', 'messages each room keeps in memory', count(0))
    .option('--replay <n>', 'messages replayed to someone who joins', count(0))
    .option('--max-line <bytes>', 'longest text-mode line', bytes(64))
    .option('--max-frame <bytes>', 'longest JSON-mode line', bytes(256))
    .option('--max-sendq <bytes>', 'output queued for a slow reader before it is disconnected', bytes(1024))
    .option('--flood-rate <lines>', 'lines per second each client may send (0: no limit)', rate('a number of lines per second', 1_000_000, ' (0: no limit)'))
    .option('--flood-burst <lines>', 'lines a client may send at once before the rate applies', count(1))
    .option('--max-connections <n>', 'connections in total', count(1))
    .option('--max-per-address <n>', 'connections from one remote address', count(1))
    .option('--max-rooms <n>', 'rooms one connection may be in', count(1))
    .option('--register-timeout <seconds>', 'close a JSON or WebSocket connection that has not said hello in this long (0: never); text users and registered ones may stay silent', seconds(0, ' (0: never)'))
    .option('--greet-delay <ms>', 'how long a silent new connection may take to say it speaks JSON', milliseconds(0))
    .option('--shutdown-timeout <ms>', 'how long shutdown waits for clients to take their last bytes', milliseconds(0))
    .option('--model <file>', 'ONNX image classifier for the bot (default: the installed default model)')
    .option('--labels <file>', 'labels for --model (synset.txt format, or one per line)')
    .option('--models-dir <dir>', 'where `roomcast models pull` installed models')
    .option('--no-bot', 'run without the classifier bot')
    .option('--workers <n>', 'classifier worker processes (default: one per spare core, at most 2)', count(1))
    .option('--max-image-bytes <bytes>', 'largest image a client may post', bytes(1))
    .option('--classifier-queue <n>', 'images that may wait for a worker before posters hear "busy"', count(1))
    .option('--classifier-batch <n>', 'images per model run when several wait', count(1))
    .option('--classifier-delay <ms>', 'how long an image may wait for a batch to fill', milliseconds(0))
    .option('--classifier-timeout <ms>', 'time limit for one image', milliseconds(100))
    .option('--http-port <port>', 'serve HTTP and WebSocket on this port of their own (default: the chat port serves them too; 0 picks a free one)', port())
    .option('--origin <origin>', 'a web page origin allowed to use the WebSocket and post (e.g. http://chat.lan:7447); repeat for several; "*" for any (default: the server\'s own pages only)', collect)
    .option('--ws-max-payload <bytes>', 'largest WebSocket message; larger closes the connection (default: room for the largest image)', bytes(1024))
    .option('--web-dir <dir>', 'directory of the web page\'s static files')
    .option('--tls', 'speak TLS too, on the same port, with a self-signed certificate made on first start and kept in --data-dir (its fingerprint is printed)')
    .option('--tls-cert <file>', 'speak TLS with this certificate (PEM; a chain: the server\'s first), with --tls-key')
    .option('--tls-key <file>', 'the private key (PEM, unencrypted) of --tls-cert')
    .option('--tls-only', 'speak TLS only (with --tls-cert, or else the self-signed certificate of --tls): refuse clear-text chat with a one-line hint, redirect plain HTTP to https')
    .option('--api-token-required', 'the HTTP API answers only with an API token (roomcast token create) or the server password, even without --password-file')
    .option('--password-file <file>', 'a password every client must give first (its first line; never on the command line, where ps shows it): /pass in text mode, the hello\'s serverPassword, HTTP Basic or Bearer')
    .option('--admin <nick>', 'a server operator: whoever is logged in to this account (register it first: /register PASSWORD) operates every room; repeat for several', collect)
    .option('-q, --quiet', 'log only warnings and errors')
    .option('-v, --verbose', 'log more detail')
    .action(async (flags) => exitWith((await import('./serve.js')).serve(flags)));
  late.set(serve, async () => (await import('./serve.js')).SERVE_DEFAULTS);

  program
    .command('join')
    .description('chat in a terminal (JSON mode); HOST[:PORT], IPv6 as [::1]:PORT, tls://HOST:PORT for TLS')
    .argument(
      '[address]',
      `server to join (default: the one found on the LAN or on this machine's port ${DEFAULT_PORT}; several found: pick one); the nodes of one service as A:PORT,B:PORT, the next tried when one is lost`,
    )
    .option('-n, --nick <nick>', 'your nick (default: one the server picks)')
    .option('-r, --room <room>', 'room to join; repeat for several', collect)
    .option('--no-reconnect', 'exit when the connection drops instead of reconnecting')
    .option('--password-file <file>', 'the server password, on its first line: for a server started with --password-file', passwordFile)
    .option('--tls', TLS_HELP)
    .option('--fingerprint <SHA256:...>', FINGERPRINT_HELP, fingerprint)
    .addHelpText(
      'after',
      `
Type a line to talk in the current room (shown in the prompt); /help lists commands.
With stdin from a pipe, each line is sent in order; at the end of input the client waits
until the server has answered every line, then quits. Exit status: 0 if every line was
accepted, 1 if one was refused or the server could not be reached (or none was found), 2 for a
bad address or, with no address, several servers found and no terminal to ask which.
Colour is used only on a terminal; NO_COLOR=1 turns it off there too.

${TRUST_HELP}`,
    )
    .action(async (address: string | undefined, opts: { nick?: string; room?: string[]; reconnect: boolean; tls?: boolean; fingerprint?: string; passwordFile?: string }) => {
      const { runJoin } = await import('../client/join.js');
      await exitWith(
        runJoin({ address, nick: opts.nick, rooms: opts.room ?? [], reconnect: opts.reconnect, tls: opts.tls, fingerprint: opts.fingerprint, serverPassword: opts.passwordFile }),
      );
    });

  program
    .command('post')
    .description('post a text and/or an image to a room, print the classifier bot\'s answer, exit (for scripts)')
    .usage('--room ROOM [options] <address>')
    .argument('<address>', 'server: HOST[:PORT] (IPv6 as [::1]:PORT), or a URL such as http://HOST:PORT/ (tls://HOST:PORT or https:// for TLS)')
    .requiredOption('-r, --room <room>', 'room to post to (required)')
    .option('--image <file>', `image to post (${IMAGE_FORMAT_LIST})`)
    .option('--text <text>', 'a message to post (before the image)')
    .option('-n, --nick <nick>', 'nick to post as (default: one the server picks)')
    .option('--timeout <ms>', 'give up after this long, in all', milliseconds(1), POST_DEFAULT_TIMEOUT_MS)
    .option('--json', 'print the bot\'s answer as its JSON labels event')
    .option('--password-file <file>', 'the server password, on its first line: for a server started with --password-file', passwordFile)
    .option('--tls', TLS_HELP)
    .option('--fingerprint <SHA256:...>', FINGERPRINT_HELP, fingerprint)
    .addHelpText(
      'after',
      `
Prints the bot's answer ("kitten.jpg: tiger cat 42%, tabby 16%, Egyptian cat 7%"). Exit status:
0 posted and labelled; 1 could not connect, refused, the bot answered with an error or is off,
or timed out; 2 bad arguments or an unreadable file.

${TRUST_HELP}`,
    )
    .action(
      async (
        address: string,
        opts: { room: string; image?: string; text?: string; nick?: string; timeout: number; json?: boolean; tls?: boolean; fingerprint?: string; passwordFile?: string },
      ) => {
        const { runPost } = await import('../client/post.js');
        await exitWith(
          runPost({
            address,
            room: opts.room,
            image: opts.image,
            text: opts.text,
            nick: opts.nick,
            timeoutMs: opts.timeout,
            json: opts.json === true,
            tls: opts.tls,
            fingerprint: opts.fingerprint,
            serverPassword: opts.passwordFile,
          }),
        );
      },
    );

  program
    .command('classify')
    .description('label images with the image classifier (the chat bot\'s pipeline, run locally)')
    .argument('<files...>', 'image files (JPEG, PNG, WebP, GIF, AVIF, TIFF)')
    .option('--model <file>', 'ONNX model to use instead of the installed one (needs --labels)')
    .option('--labels <file>', 'labels for --model: synset.txt format or one label per line')
    .option('--dir <dir>', DIR_HELP)
    .option('--top <n>', 'labels to show per image', count(1), 3)
    .option('--json', 'print JSON instead of a table')
    .action(async (files: string[], opts: { model?: string; labels?: string; dir?: string; top: number; json?: boolean }) => {
      const { runClassify } = await import('./classify.js');
      await exitWith(runClassify({ files, model: opts.model, labels: opts.labels, dir: opts.dir, top: opts.top, json: opts.json === true }));
    });

  program
    .command('classifier')
    .description('run a classifier worker for a cluster: it answers the image posts of every server on the same Redis (serve --redis)')
    .requiredOption('--redis <url>', 'the cluster\'s Redis (redis://HOST:PORT)', redisUrl)
    .option('--redis-prefix <prefix>', 'prefix of the cluster\'s Redis keys (default: roomcast)')
    .option('--model <file>', 'ONNX model to use instead of the installed one (needs --labels)')
    .option('--labels <file>', 'labels for --model: synset.txt format or one label per line')
    .option('--dir <dir>', DIR_HELP)
    .option('--workers <n>', 'classifier processes (default: one less than the cores, at most 2)', count(1))
    .option('--claim-after <ms>', 'take over a job another worker took this long ago without answering (default: 30000)', milliseconds(100))
    .action(async (opts) => exitWith((await import('./classifier-worker.js')).runClassifierWorker(opts)));

  const token = program.command('token').description('API tokens for programs that use the HTTP API (kept hashed in the data directory)');
  const TOKEN_DIR = 'the server\'s data directory (default: $XDG_STATE_HOME/roomcast, else ~/.local/state/roomcast)';
  token
    .command('create')
    .description('make a token and print it (only this once); a running server takes it within a second')
    .argument('<name>', 'what the token is for, e.g. the program using it')
    .option('--room <room>', 'the one room the token may use (default: every room)')
    .option('--data-dir <dir>', TOKEN_DIR)
    .action(async (name: string, opts: { room?: string; dataDir?: string }) => exitWith((await import('./token.js')).runTokenCreate(name, opts)));
  token
    .command('revoke')
    .description('stop a token from working')
    .argument('<name>', 'the token\'s name')
    .option('--data-dir <dir>', TOKEN_DIR)
    .action(async (name: string, opts: { dataDir?: string }) => exitWith((await import('./token.js')).runTokenRevoke(name, opts)));
  token
    .command('list')
    .description('the tokens made, their rooms, and which are revoked (never the tokens themselves)')
    .option('--data-dir <dir>', TOKEN_DIR)
    .option('--json', 'print JSON')
    .action(async (opts: { dataDir?: string; json?: boolean }) => exitWith((await import('./token.js')).runTokenList(opts)));

  const models = program.command('models').description('list and install image-classifier models');
  models
    .command('list')
    .description('known models and which are installed (checks their sha256)')
    .option('--dir <dir>', DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (opts: { dir?: string; json?: boolean }) => exitWith((await import('./models.js')).runModelsList(opts)));
  models
    .command('pull')
    .description('download a model and its labels, verify their sha256, install them')
    .argument('[name]', 'model name from `roomcast models list` (default: the default model)')
    .option('--dir <dir>', DIR_HELP)
    .option('--base-url <url>', 'download from this mirror instead (base URL + the file name)')
    .action(async (name: string | undefined, opts: { dir?: string; baseUrl?: string }) => exitWith((await import('./models.js')).runModelsPull(name, opts)));

  program
    .command('probe')
    .description('test which addresses reach a server bound to localhost, 0.0.0.0, :: and each of this machine\'s addresses')
    .option('--json', 'print the results as JSON (described below)')
    .option('--timeout <ms>', 'time limit for each connection attempt', milliseconds(1), PROBE_DEFAULT_TIMEOUT_MS)
    .addHelpText(
      'after',
      `
For each bind address it listens on a free port of its own, connects from this machine
through each of this machine's addresses, and prints who got through and why not. It only
uses this machine's own addresses, and closes everything it opened before it exits.

--json prints one object (format 1):
  format        1
  timeoutMs     the --timeout used
  addresses     this machine's addresses: {interface, address, family (4|6), loopback,
                linkLocal}; link-local IPv6 has its zone (fe80::1%eth0)
  destinations  the addresses connected to, in column order
  binds         one per row: {bind (as --host takes it), bound (addresses listened on),
                port (null if nothing could be bound), error (null, or {code, message}),
                attempts: [{destination, outcome, peer, code}]}
  outcome is yes | refused | unreachable | unavailable | timeout | other | error; peer (yes
  only) is the client's address as the server saw it (::ffff:a.b.c.d: IPv4 on a dual-stack
  socket); code is the system's error code (ECONNREFUSED...) or null.`,
    )
    .action(async (opts: { json?: boolean; timeout: number }) => {
      const { runProbeCommand } = await import('./probe.js');
      await runProbeCommand({ timeoutMs: opts.timeout, json: opts.json === true });
    });

  program
    .command('servers')
    .description('list the roomcast servers that answer on the LAN (started with --lan or --announce)')
    .option('--timeout <ms>', 'how long to listen for answers', milliseconds(100), SERVERS_DEFAULT_TIMEOUT_MS)
    .option('--json', 'print a JSON array (name, host, port, addresses, version, httpPort, join)')
    .addHelpText(
      'after',
      `
Asks by multicast DNS (DNS-SD type _roomcast._tcp), on this network link only. Exit status 0,
also when none answered; 1 if it could not ask at all (no network, UDP port 5353 unusable).`,
    )
    .action(async (opts: { timeout: number; json?: boolean }) =>
      exitWith((await import('./servers.js')).runServers({ timeoutMs: opts.timeout, json: opts.json === true })),
    );

  // commander's own help command prints a command's help without running the hook above, so
  // `roomcast help serve` would show serve's options without their defaults; this one attaches
  // them first. It is declared last, where commander lists its own.
  program
    .command('help')
    .argument('[command]')
    .description('display help for command')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (name: string | undefined) => {
      // Like commander's: `help --help` (any option in the command's place) is the program's help.
      if (name === undefined || name.startsWith('-')) program.help();
      const cmd = program.commands.find((c) => c.name() === name || c.aliases().includes(name!));
      if (cmd === undefined || cmd.name() === 'help') program.help({ error: true });
      await attachDefaults(late, cmd!);
      cmd!.help();
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}

/**
 * The terminal side of `roomcast join`: reads what the person types (or what a pipe feeds),
 * turns it into requests for the chat client, and prints what comes back without garbling
 * the line being typed.
 *
 * Two ways to run:
 * - interactive (stdin and stdout are terminals): readline with a prompt showing the current
 *   room, history, and Tab completion; runs until /quit, Ctrl-D or Ctrl-C on an empty line.
 * - piped: every input line is sent in order; at the end of input the terminal waits until
 *   each one has been answered, then quits. Exit status 0 only if every line succeeded.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { COMMANDS, HELP, parseTextLine, type Command } from '../protocol/commands.js';
import { RoomcastError } from '../protocol/errors.js';
import type { ServerEvent } from '../protocol/events.js';
import { formatBytes } from '../format/units.js';
import { IMAGE_FORMAT_LIST, sniffImageFormat } from '../protocol/image-format.js';
import { nickKey, normalizeRoom } from '../protocol/text.js';
import { NotConnectedError, RequestError, type Answered, type ChatClient, type Request } from './chat-client.js';
import { clean, cleanLines, errorLine, notice, renderEvent, renderHelp, tlsNote, withClientCommands, type Line, type Style } from './render.js';
import { formatServerAddress } from './address.js';

export interface TerminalOptions {
  client: ChatClient;
  input: NodeJS.ReadableStream;
  output: NodeJS.WriteStream | NodeJS.WritableStream;
  errorOutput: NodeJS.WritableStream;
  interactive: boolean;
  style: Style;
  now?: () => number;
}

// ---- completion (pure, so it is tested without a terminal) ----

export interface Completions {
  nicks: Iterable<string>;
  rooms: Iterable<string>;
}

/** Commands the terminal carries out itself rather than sending (see CLIENT_COMMANDS). */
const CLIENT_WORDS = ['image'];
const COMMAND_WORDS = [...new Set([...COMMANDS.flatMap((c) => c.words), ...CLIENT_WORDS])].sort().map((w) => `/${w}`);
const ROOM_ARG = new Set(COMMANDS.filter((c) => c.args[0]?.name === 'room').flatMap((c) => c.words));
const NICK_ARG = new Set(COMMANDS.filter((c) => c.args[0]?.name === 'to').flatMap((c) => c.words));

/**
 * Completes the word before the cursor, in readline's completer shape [candidates, word]:
 * command names after "/", rooms after /join and /part, nicks anywhere else. A nick that
 * starts a message gets ": " after it, as people address each other in chat.
 */
export function complete(before: string, known: Completions): [string[], string] {
  const cmd = /^(\/\S*)$/.exec(before);
  if (cmd) {
    const hits = COMMAND_WORDS.filter((w) => w.startsWith(cmd[1].toLowerCase()));
    return [hits.length === 1 ? [`${hits[0]} `] : hits, cmd[1]];
  }
  const word = /(\S*)$/.exec(before)![1];
  const head = /^\/(\S+)\s+(\S*)$/.exec(before);
  const firstArgOf = head ? head[1].toLowerCase() : null;
  const prefix = word.toLowerCase();
  const match = (names: Iterable<string>): string[] =>
    [...new Set(names)].filter((n) => n.toLowerCase().startsWith(prefix)).sort((a, b) => a.localeCompare(b));

  if (firstArgOf !== null && ROOM_ARG.has(firstArgOf)) {
    const hits = match(known.rooms);
    return [hits.length === 1 ? [`${hits[0]} `] : hits, word];
  }
  if (word === '' && !(firstArgOf !== null && NICK_ARG.has(firstArgOf))) return [[], word];
  const hits = match(known.nicks);
  const startsMessage = before === word;
  const suffix = startsMessage ? ': ' : ' ';
  return [hits.length === 1 ? [`${hits[0]}${suffix}`] : hits, word];
}

export interface DirEntry {
  name: string;
  dir: boolean;
}

/**
 * Completes the path after /image from the listing of its directory (the caller reads it):
 * directories get a "/" so Tab can go on into them; dot files only when asked for.
 */
export function completePath(word: string, entries: DirEntry[]): [string[], string] {
  const slash = word.lastIndexOf('/');
  const dir = word.slice(0, slash + 1);
  const base = word.slice(slash + 1);
  const hits = entries
    .filter((e) => e.name.startsWith(base) && (base.startsWith('.') || !e.name.startsWith('.')))
    .map((e) => `${dir}${e.name}${e.dir ? '/' : ''}`)
    .sort((a, b) => a.localeCompare(b));
  return [hits, word];
}

/** "~/x" is the home directory's x, as in a shell; surrounding quotes are dropped. */
export function expandPath(text: string, home = os.homedir()): string {
  let p = text.trim();
  if (p.length >= 2 && (p[0] === '"' || p[0] === "'") && p.at(-1) === p[0]) p = p.slice(1, -1);
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

const IMAGE_LINE = /^\/image(?:\s+(.*))?$/is;

function formatDelay(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/** How a typed line is carried out. */
type Plan =
  | { kind: 'request'; command: Request }
  | { kind: 'image'; file: string }
  | { kind: 'quit'; reason?: string }
  | { kind: 'local'; lines: Line[]; failed?: boolean }
  | { kind: 'nothing' };

export class Terminal {
  private readonly client: ChatClient;
  private readonly style: Style;
  private readonly now: () => number;
  private rl: readline.Interface | null = null;
  /** Nicks seen talking, beyond the members lists the client keeps, for completion. */
  private readonly seenNicks = new Set<string>();
  private readonly seenRooms = new Set<string>();
  private failures = 0;
  private lostConnection = false;
  /** Settles once the last /image entered has been read and sent: later lines wait for it. */
  private imageTurn: Promise<void> | null = null;

  constructor(private readonly opts: TerminalOptions) {
    this.client = opts.client;
    this.style = opts.style;
    this.now = opts.now ?? Date.now;
    this.client.on('event', (event, answered) => this.onEvent(event, answered));
    this.client.on('connected', (welcome, info) => {
      const s = this.style;
      const lines = [
        notice(
          info.reconnected
            ? `reconnected${info.moved ? ` to ${formatServerAddress(info.address)}` : ''} as ${clean(welcome.nick)}`
            : `connected to ${clean(welcome.server)} ${clean(welcome.version)} as ${clean(welcome.nick)}${tlsNote(info.tls)}`,
          this.now(),
          s,
        ),
      ];
      if (info.historyLost)
        lines.push(
          notice(
            "the server's history is not the one it had: it restarted without keeping it (--store memory), or another server answered. What was said while you were away is lost; its messages are numbered afresh",
            this.now(),
            s,
          ),
        );
      if (info.wantedNick !== undefined && nickKey(info.wantedNick) !== nickKey(welcome.nick))
        lines.push(notice(`the nick ${clean(info.wantedNick)} is taken, so you are ${clean(welcome.nick)} (/nick NAME to change)`, this.now(), s));
      if (!info.reconnected && opts.interactive) lines.push(notice('type /help for commands, /quit to leave', this.now(), s));
      this.print(lines);
      this.updatePrompt();
    });
    this.client.on('disconnected', ({ reason, retryInMs }) => {
      this.lostConnection = true;
      this.print([
        retryInMs === null
          ? errorLine(`connection lost: ${clean(reason)}`, this.now(), this.style)
          : notice(`connection lost (${clean(reason)}), reconnecting in ${formatDelay(retryInMs)}...`, this.now(), this.style),
      ]);
      this.updatePrompt();
    });
    this.client.on('retrying', ({ reason, retryInMs }) => {
      this.print([notice(`could not reconnect (${clean(reason)}), trying again in ${formatDelay(retryInMs)}...`, this.now(), this.style)]);
    });
    this.client.on('warning', (text) => this.print([notice(clean(text), this.now(), this.style)]));
    // A server not to be trusted on reconnecting (its certificate changed): said in full, every line.
    this.client.on('fatal', (err) => this.print(err.message.split('\n').map((line) => errorLine(clean(line), this.now(), this.style))));
  }

  /**
   * Reports a failure to connect; the caller exits non-zero. `lines`: the message is the
   * client's own and has several (a changed certificate's old and new fingerprints).
   */
  fail(message: string, lines = false): void {
    this.opts.errorOutput.write(`roomcast: ${lines ? cleanLines(message) : clean(message)}\n`);
  }

  /** Runs until the person quits, the input ends, or the connection is gone for good. */
  run(): Promise<number> {
    return this.opts.interactive ? this.runInteractive() : this.runPiped();
  }

  // ---- output ----

  private onEvent(event: ServerEvent, answered: Answered | undefined): void {
    this.learn(event);
    this.print(renderEvent(event, { now: this.now(), answered, ownNick: this.client.nick }, this.style));
    if (event.type === 'joined' || event.type === 'parted' || event.type === 'nick') this.updatePrompt();
  }

  private learn(event: ServerEvent): void {
    switch (event.type) {
      case 'message':
      case 'image':
        this.seenNicks.add(event.nick);
        break;
      case 'privmsg':
        this.seenNicks.add(event.from);
        this.seenNicks.add(event.to);
        break;
      case 'history':
        // Not the bot's answers: nobody can be sent a message as "classifier".
        for (const m of event.messages) if (m.type !== 'labels') this.seenNicks.add(m.nick);
        break;
      case 'rooms':
        for (const r of event.rooms) this.seenRooms.add(r.room);
        break;
      case 'nick':
        if (this.seenNicks.delete(event.old)) this.seenNicks.add(event.nick);
        break;
    }
  }

  private completions(): Completions {
    const nicks = new Set(this.seenNicks);
    for (const r of this.client.rooms.values()) for (const n of r.members) nicks.add(n);
    if (this.client.nick) nicks.delete(this.client.nick);
    return { nicks, rooms: [...this.client.rooms.keys(), ...this.seenRooms] };
  }

  /**
   * Prints lines above the prompt. With a prompt showing, the prompt and the partial input
   * (however many rows it wraps to) are erased first and drawn again after, cursor in place.
   */
  private print(lines: Line[]): void {
    if (lines.length === 0) return;
    const { output, errorOutput } = this.opts;
    if (!this.opts.interactive) {
      for (const l of lines) (l.kind === 'error' ? errorOutput : output).write(l.text + '\n');
      return;
    }
    const text = lines.map((l) => l.text + '\n').join('');
    const rl = this.rl;
    if (!rl) {
      output.write(text);
      return;
    }
    const { rows } = rl.getCursorPos();
    readline.moveCursor(output, 0, -rows);
    readline.cursorTo(output, 0);
    readline.clearScreenDown(output);
    output.write(text);
    // readline redraws by first going up as many rows as the input took when it last drew it;
    // the cursor is now on a fresh row below what was printed, so it must not go up at all.
    (rl as unknown as { prevRows: number }).prevRows = 0;
    rl.prompt(true);
  }

  private promptText(): string {
    const room = this.client.currentRoom;
    const where = room === null ? '(no room)' : `[${clean(room)}]`;
    const who = clean(this.client.nick ?? '');
    const state = this.client.connected ? '' : ' (offline)';
    return this.style.prompt(`${who} ${where}${state}> `);
  }

  private updatePrompt(): void {
    const rl = this.rl;
    if (!rl) return;
    // prompt() erases what readline drew last (prompt and wrapped input) before drawing anew.
    rl.setPrompt(this.promptText());
    rl.prompt(true);
  }

  // ---- input ----

  private plan(line: string): Plan {
    const image = IMAGE_LINE.exec(line);
    if (image) {
      const file = (image[1] ?? '').trim();
      if (file === '') return { kind: 'local', lines: [errorLine(`Usage: /image PATH (a ${IMAGE_FORMAT_LIST} file)`, this.now(), this.style)], failed: true };
      return { kind: 'image', file };
    }
    let command: Command | null;
    try {
      command = parseTextLine(line);
    } catch (err) {
      const message = err instanceof RoomcastError ? err.message : String(err);
      return { kind: 'local', lines: [errorLine(message, this.now(), this.style)], failed: true };
    }
    if (command === null) return { kind: 'nothing' };
    switch (command.type) {
      case 'quit':
        return { kind: 'quit', reason: command.reason };
      case 'hello':
        return { kind: 'nothing' };
      case 'pass':
        // The client gives the server password itself, in its hello (--password-file).
        return { kind: 'local', lines: [notice('the server password is given when connecting: roomcast join --password-file FILE', this.now(), this.style)] };
      case 'help':
        // The server's list matches what it accepts; offline, the built-in one will do.
        if (!this.client.connected) return { kind: 'local', lines: renderHelp(withClientCommands(HELP), this.now(), this.style) };
        return { kind: 'request', command };
      case 'join': {
        // Switching to a room we are in needs no round trip: the current room is ours to keep.
        const key = normalizeRoom(command.room);
        if (key !== null && this.client.rooms.has(key) && this.client.currentRoom !== key) {
          this.client.switchRoom(key);
          this.updatePrompt();
          return { kind: 'local', lines: [notice(`now talking in [${clean(key)}]`, this.now(), this.style)] };
        }
        return { kind: 'request', command };
      }
      default:
        return { kind: 'request', command };
    }
  }

  /** Sends one request; resolves true when it succeeded. Server errors are already printed
   *  as events; what is left to say is when the connection failed it. */
  private async carryOut(command: Request): Promise<boolean> {
    try {
      await this.client.request(command);
      return true;
    } catch (err) {
      this.reportFailure(command.type === 'message' ? `"${clean(command.text)}"` : `/${command.type}`, err);
      return false;
    }
  }

  private reportFailure(what: string, err: unknown): void {
    // The server's refusals were shown as they came in; the client's own were not.
    if (err instanceof RequestError && !err.local) return;
    const line =
      err instanceof RequestError
        ? `${what} was not sent: ${clean(err.message)}`
        : err instanceof NotConnectedError && !err.sent
          ? `${what} was not sent: ${clean(err.message)}${this.client.phase === 'closed' ? '' : ' (reconnecting; try again soon)'}`
          : `${what} may not have been done: ${clean(err instanceof Error ? err.message : String(err))}`;
    this.print([errorLine(line, this.now(), this.style)]);
  }

  /**
   * Carries out a request or an /image in the order they were entered: the file of an /image
   * is read without blocking the prompt, and the lines after it go out only once it has (a
   * script's "/image x.jpg" then "look!" must reach the room in that order). Resolves with
   * whether it succeeded.
   */
  private carryOutInTurn(plan: Extract<Plan, { kind: 'request' | 'image' }>): Promise<boolean> {
    const before = this.imageTurn;
    if (plan.kind === 'request') return before ? before.then(() => this.carryOut(plan.command)) : this.carryOut(plan.command);
    // The room it was typed in, even if a /join switches rooms while the file is read.
    const room = this.client.currentRoom ?? undefined;
    const sent = (before ?? Promise.resolve())
      .then(() => this.readImage(plan.file))
      .then((image) => ({ result: image ? this.postImage({ ...image, room }) : Promise.resolve(false) }));
    const turn = sent.then(() => undefined);
    this.imageTurn = turn;
    void turn.then(() => {
      if (this.imageTurn === turn) this.imageTurn = null;
    });
    return sent.then((s) => s.result);
  }

  /**
   * The file of an /image, or null after saying why not. What can be known here, a missing
   * file or one over the server's limit, is said before anything is sent.
   */
  private async readImage(file: string): Promise<{ name: string; bytes: Buffer } | null> {
    const fail = (text: string): null => {
      this.print([errorLine(text, this.now(), this.style)]);
      return null;
    };
    const shown = clean(file);
    const where = expandPath(file);
    const name = path.basename(where);
    let bytes: Buffer;
    try {
      const info = await stat(where);
      if (info.isDirectory()) return fail(`${shown} is a directory, not an image file`);
      if (!info.isFile()) return fail(`${shown} is not a regular file`);
      const max = this.client.maxImageBytes;
      if (max !== undefined && info.size > max)
        return fail(`${shown} is ${formatBytes(info.size)}; this server takes images up to ${formatBytes(max)}`);
      bytes = await readFile(where);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return fail(`no such file: ${shown}`);
      if (code === 'EACCES' || code === 'EPERM') return fail(`cannot read ${shown}: permission denied`);
      return fail(`cannot read ${shown}: ${clean((err as Error).message)}`);
    }
    if (bytes.length === 0) return fail(`${shown} is empty (0 bytes): nothing to post`);
    // The server would refuse it too (NOT_AN_IMAGE); said here, it costs no upload.
    if (sniffImageFormat(bytes) === null) return fail(`${shown} is not a ${IMAGE_FORMAT_LIST} image: nothing was posted`);
    return { name, bytes };
  }

  private async postImage(image: { name: string; bytes: Buffer; room?: string }): Promise<boolean> {
    try {
      await this.client.postImage(image);
      return true;
    } catch (err) {
      this.reportFailure(`the image ${clean(image.name)}`, err);
      return false;
    }
  }

  private runPiped(): Promise<number> {
    const rl = readline.createInterface({ input: this.opts.input, terminal: false, crlfDelay: Infinity });
    // A connection gone for good ends the reading too: nothing more can be sent.
    this.client.once('closed', () => rl.close());
    const inflight: Promise<void>[] = [];
    const track = (ok: Promise<boolean>): void => {
      inflight.push(ok.then((done) => void (done || this.failures++)));
    };
    return (async () => {
      let quitReason: string | undefined;
      let unsent = 0;
      for await (const line of rl) {
        const plan = this.plan(line);
        if (plan.kind === 'nothing') continue;
        if (plan.kind === 'quit') {
          quitReason = plan.reason;
          break;
        }
        if (plan.kind === 'local') {
          this.print(plan.lines);
          if (plan.failed) this.failures++;
          continue;
        }
        // While reconnecting, later lines wait rather than fail: a script wants them delivered.
        if (!this.client.connected) {
          try {
            await this.client.whenReady();
          } catch {
            unsent++;
            break;
          }
        }
        track(this.carryOutInTurn(plan));
      }
      await Promise.all(inflight);
      if (this.client.phase === 'closed') {
        if (unsent > 0 || this.lostConnection) this.fail('the connection was lost; not every line was sent');
        return 1;
      }
      await this.client.quit(quitReason);
      return this.failures > 0 ? 1 : 0;
    })();
  }

  private runInteractive(): Promise<number> {
    const { input, output } = this.opts;
    const rl = readline.createInterface({
      input,
      output,
      terminal: true,
      historySize: 1000,
      removeHistoryDuplicates: true,
      completer: (before: string, callback: (err: null, result: [string[], string]) => void) => {
        const image = /^\/image\s+(.*)$/is.exec(before);
        if (!image) return callback(null, complete(before, this.completions()));
        const word = image[1]!;
        const dir = word.slice(0, word.lastIndexOf('/') + 1);
        readdir(expandPath(dir || '.'), { withFileTypes: true }).then(
          (entries) => callback(null, completePath(word, entries.map((e) => ({ name: e.name, dir: e.isDirectory() })))),
          () => callback(null, [[], word]),
        );
      },
      prompt: this.promptText(),
    });
    this.rl = rl;
    let done = false;
    let quitting = false;
    const quit = (reason?: string): void => {
      if (quitting) return;
      quitting = true;
      void this.client.quit(reason);
    };

    rl.on('line', (line) => {
      const plan = this.plan(line);
      if (plan.kind === 'request' && plan.command.type === 'message') this.eraseEcho(line);
      switch (plan.kind) {
        case 'quit':
          quit(plan.reason);
          return;
        case 'local':
          this.print(plan.lines);
          break;
        case 'request':
        case 'image':
          void this.carryOutInTurn(plan);
          break;
      }
      if (!done) rl.prompt();
    });
    // Ctrl-C clears a half-typed line, as in a shell; on an empty line it leaves.
    rl.on('SIGINT', () => {
      if (rl.line.length > 0) {
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
      } else {
        output.write('\n');
        quit();
      }
    });
    rl.on('close', () => {
      done = true;
      this.rl = null;
      quit();
    });

    return new Promise<number>((resolve) => {
      const finish = (): void => {
        done = true;
        if (this.rl) {
          this.rl = null;
          rl.close();
        }
        resolve(quitting ? 0 : 1);
      };
      if (this.client.phase === 'closed') finish();
      else {
        this.client.once('closed', finish);
        rl.prompt();
      }
    });
  }

  /**
   * Takes the line just entered off the screen: a message reappears as the server accepted
   * it (time, room, nick), so the raw input would only show it twice.
   */
  private eraseEcho(line: string): void {
    const rl = this.rl as (readline.Interface & { _getDisplayPos?: (s: string) => { rows: number } }) | null;
    if (!rl) return;
    const shown = rl.getPrompt() + line;
    const rows = rl._getDisplayPos
      ? rl._getDisplayPos(shown).rows + 1
      : Math.floor([...shown].length / Math.max(1, (this.opts.output as NodeJS.WriteStream).columns ?? 80)) + 1;
    readline.moveCursor(this.opts.output, 0, -rows);
    readline.cursorTo(this.opts.output, 0);
    readline.clearScreenDown(this.opts.output);
  }
}

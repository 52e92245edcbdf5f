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
import readline from 'node:readline';
import { COMMANDS, HELP, parseTextLine, type Command } from '../protocol/commands.js';
import { RoomcastError } from '../protocol/errors.js';
import type { ServerEvent } from '../protocol/events.js';
import { nickKey, normalizeRoom } from '../protocol/text.js';
import { NotConnectedError, RequestError, type Answered, type ChatClient, type Request } from './chat-client.js';
import { clean, errorLine, notice, renderEvent, renderHelp, type Line, type Style } from './render.js';

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

const COMMAND_WORDS = [...new Set(COMMANDS.flatMap((c) => c.words))].sort().map((w) => `/${w}`);
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

function formatDelay(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/** How a typed line is carried out. */
type Plan =
  | { kind: 'request'; command: Request }
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
            ? `reconnected as ${clean(welcome.nick)}`
            : `connected to ${clean(welcome.server)} ${clean(welcome.version)} as ${clean(welcome.nick)}`,
          this.now(),
          s,
        ),
      ];
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
  }

  /** Reports a failure to connect; the caller exits non-zero. */
  fail(message: string): void {
    this.opts.errorOutput.write(`roomcast: ${clean(message)}\n`);
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
        this.seenNicks.add(event.nick);
        break;
      case 'privmsg':
        this.seenNicks.add(event.from);
        this.seenNicks.add(event.to);
        break;
      case 'history':
        for (const m of event.messages) this.seenNicks.add(m.nick);
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
      case 'help':
        // The server's list matches what it accepts; offline, the built-in one will do.
        if (!this.client.connected) return { kind: 'local', lines: renderHelp(HELP, this.now(), this.style) };
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
      if (err instanceof RequestError) return false;
      const what = command.type === 'message' ? `"${clean(command.text)}"` : `/${command.type}`;
      const line =
        err instanceof NotConnectedError && !err.sent
          ? `${what} was not sent: ${clean(err.message)}${this.client.phase === 'closed' ? '' : ' (reconnecting; try again soon)'}`
          : `${what} may not have been done: ${clean(err instanceof Error ? err.message : String(err))}`;
      this.print([errorLine(line, this.now(), this.style)]);
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
        track(this.carryOut(plan.command));
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
      completer: (before: string) => complete(before, this.completions()),
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
          void this.carryOut(plan.command);
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

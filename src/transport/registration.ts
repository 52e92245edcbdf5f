/**
 * How a connection becomes a session. A text connection is one from its welcome; a JSON or
 * WebSocket one must first say hello, within the registration deadline, and anything else it
 * sends before that is refused with NOT_REGISTERED. A connection over a limit (admission.ts)
 * is told why, in the format it speaks, and closed instead.
 *
 * The registration deadline is for connections that never get this far: a session's silence
 * is a reader's, and dead peers are found by TCP keepalive and the send queue.
 *
 * On a server with a password, a text connection is told so instead of welcomed, and becomes a
 * session once it gives the password (/pass); a JSON one gives it in its hello.
 */
import type { Command } from '../protocol/commands.js';
import { protocolError, RoomcastError, type ProtocolError } from '../protocol/errors.js';
import { Frame } from '../protocol/frame.js';
import type { Hello, Hub } from '../hub/hub.js';
import type { Link, Session } from '../hub/session.js';
import { deadlines, NO_TICKET, type Expiring, type Ticket } from './deadlines.js';
import type { RequestId } from '../protocol/events.js';

/** Commands kept while a hello is checked; a client that sends more before its welcome is refused. */
const MAX_WAITING = 64;

export class Registration implements Expiring {
  private current: Session | null = null;
  private deadline: Ticket = NO_TICKET;
  /**
   * Commands that came while a hello was being checked with the cluster (a nick claimed in
   * Redis): they run, in order, once it is settled. Null when no check is under way.
   */
  private waiting: Command[] | null = null;
  /** Why the link ended, once it has. */
  private ended: string | null = null;

  constructor(
    private readonly hub: Hub,
    private readonly link: Link,
    /** ms; 0: never. */
    private readonly timeout: number,
    /** Set when the connection is over a limit. */
    private readonly rejection: ProtocolError | null,
    /** The server password the connection gave before its hello (a WebSocket URL's ?password=). */
    private readonly givenPassword?: string,
  ) {}

  get session(): Session | null {
    return this.current;
  }

  /** The connection speaks JSON: it must say hello before the registration deadline. */
  awaitHello(): void {
    if (this.timeout > 0 && this.rejection === null) this.deadline = deadlines(this.timeout).add(this);
  }

  /**
   * A text connection is a session at once (or, on a server with a password, once it gives
   * it); false when it was refused instead (over a limit).
   */
  attachNow(): boolean {
    if (this.refused()) return false;
    if (this.hub.password !== null) {
      this.link.send(new Frame({ type: 'notice', text: 'This server needs a password: type /pass PASSWORD' }));
      return true;
    }
    this.attach();
    return true;
  }

  /** A command other than an image's: the session's, or the hello it must be before that. */
  handle(cmd: Command): void {
    if (this.waiting !== null) {
      if (this.waiting.length < MAX_WAITING) this.waiting.push(cmd);
      else this.reject(new RoomcastError('NOT_REGISTERED'), cmd.id);
      return;
    }
    if (this.current !== null) this.hub.handle(this.current, cmd);
    else this.hello(cmd);
  }

  private hello(cmd: Command): void {
    if (cmd.type !== 'hello' && cmd.type !== 'pass') {
      this.reject(new RoomcastError(this.hub.password !== null ? 'PASSWORD_REQUIRED' : 'NOT_REGISTERED'), cmd.id);
      return;
    }
    if (this.refused()) return;
    try {
      this.attach(cmd.type === 'pass' ? { serverPassword: cmd.password } : { nick: cmd.nick, rooms: cmd.rooms, serverPassword: cmd.serverPassword ?? this.givenPassword, password: cmd.password }, cmd.id);
    } catch (err) {
      this.reject(err, cmd.id);
    }
  }

  private attach(hello?: Hello, id?: RequestId): void {
    const attached = this.hub.admit(this.link, hello);
    if (!(attached instanceof Promise)) {
      this.current = attached;
      this.disarm();
      return;
    }
    this.waiting = [];
    attached
      .then(
        (session) => {
          // The connection ended while the nick was claimed: the session leaves at once.
          if (this.ended !== null) return this.hub.detach(session, this.ended);
          this.current = session;
          this.disarm();
        },
        (err: unknown) => this.reject(err, id),
      )
      .finally(() => {
        const waiting = this.waiting ?? [];
        this.waiting = null;
        for (const cmd of waiting) this.handle(cmd);
      });
  }

  private disarm(): void {
    if (this.deadline === NO_TICKET) return;
    deadlines(this.timeout).cancel(this.deadline);
    this.deadline = NO_TICKET;
  }

  /** An over-limit connection learns why, in the format it speaks, and is closed. */
  private refused(): boolean {
    const err = this.rejection;
    if (err === null) return false;
    // The error line ("! CODE: ..." in text mode) carries the code; the bye then closes.
    this.link.send(new Frame({ type: 'error', code: err.code, message: err.message }));
    this.link.close({ code: err.code, reason: err.message });
    return true;
  }

  /** Tells the client a command failed: through the hub once it is a session. */
  reject(err: unknown, id?: Command['id']): void {
    if (this.current !== null) {
      this.hub.fail(this.current, err, id);
      return;
    }
    const e = err instanceof RoomcastError ? err : new RoomcastError('INTERNAL', String(err));
    this.link.send(new Frame({ type: 'error', id: id ?? e.id, code: e.code, message: e.message }));
  }

  /** The link is ending: no deadline is left armed, and the session (if any) leaves the hub. Safe to call twice. */
  end(reason: string): void {
    this.ended ??= reason;
    this.disarm();
    if (this.current !== null) this.hub.detach(this.current, reason);
  }

  /** The registration deadline has passed without a hello (called by the DeadlineQueue). */
  expire(): void {
    this.deadline = NO_TICKET;
    if (this.current !== null) return;
    const ms = this.timeout;
    const err = protocolError('REGISTRATION_TIMEOUT', ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);
    this.link.close({ code: err.code, reason: err.message });
  }
}

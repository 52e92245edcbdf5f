/**
 * Errors of the message store, defined once. The code is the stable part that the server and
 * its tests match on; the message is for whoever reads the log: it names the file and says
 * what to do.
 */

const MESSAGES = {
  /** Another process (a second server on the same data directory) holds the store. */
  STORE_LOCKED:
    'The history store {path} is in use by another roomcast server. Stop that server first, or give this one a data directory of its own.',
  /** The directory or the file cannot be created or written. */
  STORE_NOT_WRITABLE:
    'Cannot write the history store {path} ({detail}). Make its directory writable, choose another data directory, or run with --store memory.',
  /** Not an SQLite file, not a roomcast store, or damaged. */
  STORE_CORRUPT:
    '{path} is not a roomcast history file, or it is damaged ({detail}). Move it aside to start with an empty history, or restore it from a backup.',
  /** Written by a newer roomcast whose schema this one does not know. */
  STORE_TOO_NEW:
    '{path} was written by a newer roomcast ({detail}). Run that version, or give this one another data directory.',
  /** A write failed while running (disk full, I/O error); events are kept in memory and retried. */
  STORE_IO:
    'Writing the history store {path} failed ({detail}). Recent messages are kept in memory and written again once the disk recovers: free some space or check the disk.',
  /** A store over the network (Redis) did not answer a read. */
  STORE_UNREACHABLE: 'The history store at {path} could not be reached ({detail}). The chat goes on; ask again in a moment.',
  /** The store has no full-text search (Redis): the detail says why. */
  STORE_NO_SEARCH: 'The history store at {path} cannot search: {detail}.',
  /** Used before open() or after close(). */
  STORE_CLOSED: 'The history store {path} is not open ({detail}).',
  /** An event the store cannot keep: a bug in the caller, never the user's input. */
  STORE_INVALID_EVENT: 'The history store {path} was given an event it cannot keep: {detail}.',
} as const;

export type StoreErrorCode = keyof typeof MESSAGES;

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** The file (or directory) the error is about. */
  readonly path: string;
  /** What the message says of this case in particular. */
  readonly detail: string;

  constructor(code: StoreErrorCode, path: string, detail = '', options?: { cause?: unknown }) {
    super(MESSAGES[code].replaceAll('{path}', path).replaceAll('{detail}', detail), options);
    this.name = 'StoreError';
    this.code = code;
    this.path = path;
    this.detail = detail;
  }
}

/**
 * Errors of the classifier engine. Every failure a caller can act on carries a stable `code`:
 * the chat bot maps codes to replies and the CLI to exit statuses, so the codes are API and the
 * messages are for people (they name the file and say what to do).
 */

export type ClassifierErrorCode =
  // The image itself (one job fails, the rest of its batch goes on).
  | 'IMAGE_EMPTY'
  | 'IMAGE_TOO_LARGE'
  | 'IMAGE_TOO_MANY_PIXELS'
  | 'IMAGE_INVALID'
  /** The CLI could not read a file it was given. */
  | 'FILE_UNREADABLE'
  // The pool.
  | 'CLASSIFIER_BUSY'
  | 'CLASSIFIER_TIMEOUT'
  | 'CLASSIFIER_CRASHED'
  | 'CLASSIFIER_DOWN'
  | 'CLASSIFIER_CLOSED'
  // The model and its files.
  | 'MODEL_NOT_FOUND'
  | 'MODEL_INVALID'
  | 'MODEL_NOT_INSTALLED'
  | 'MODEL_UNKNOWN'
  | 'LABELS_INVALID'
  // Downloads.
  | 'PULL_FAILED'
  | 'PULL_CHECKSUM'
  | 'PULL_INTERRUPTED'
  /** The host's name could not be looked up: offline, or no such host. */
  | 'PULL_OFFLINE'
  /** The host was found but could not be connected to: nothing listening, no route, no answer. */
  | 'PULL_UNREACHABLE'
  /** A URL no download can use: not a URL, not http(s), or a port fetching refuses. */
  | 'PULL_BAD_URL'
  // A bug or an environment problem nobody planned for.
  | 'INTERNAL';

export class ClassifierError extends Error {
  readonly code: ClassifierErrorCode;

  constructor(code: ClassifierErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClassifierError';
    this.code = code;
  }
}

/** The code of any thrown value: errors from sharp or onnxruntime that we did not wrap are INTERNAL. */
export function errorCode(err: unknown): ClassifierErrorCode {
  return err instanceof ClassifierError ? err.code : 'INTERNAL';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Errors cross the IPC channel as plain data; this rebuilds the class on the other side. */
export function fromWire(code: string, message: string): ClassifierError {
  return new ClassifierError(code as ClassifierErrorCode, message);
}

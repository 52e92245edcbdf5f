import { readFileSync } from 'node:fs';
/**
 * Numeric command-line options, checked one way for every subcommand. A bad value is refused
 * while the arguments are parsed, so the user reads which option, which value and which range
 * ("option '-p, --port <port>' argument '99999' is invalid. Give a port from 0 to 65535 ...")
 * rather than an error from deep inside the program once it has started.
 */
import { constants as bufferConstants } from 'node:buffer';
import { InvalidArgumentError } from 'commander';
import { normalizeFingerprint } from '../tls/fingerprint.js';

/** Timers hold at most this many milliseconds; a longer delay would fire at once instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Digits only: "1e3", "0x10", " 5" or "" are not what anyone types for a number of things. */
const WHOLE = /^[0-9]+$/;
const DECIMAL = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

type Parse = (value: string) => number;

/**
 * A whole number from min to max. `what` names the number ("a number of bytes"); `note` says
 * what a special value means, after the range.
 */
export function wholeNumber(min: number, max: number = Number.MAX_SAFE_INTEGER, what = 'a whole number', note = ''): Parse {
  const range = max === Number.MAX_SAFE_INTEGER ? `, ${min} or more` : ` from ${min} to ${max}`;
  const advice = `Give ${what}${range}${note}.`;
  return (value) => {
    const n = Number(value);
    if (!WHOLE.test(value) || n < min || n > max) throw new InvalidArgumentError(advice);
    return n;
  };
}

/** A TCP port; 0 asks the system for a free one. */
export const port = (): Parse => wholeNumber(0, 65535, 'a port', ' (0 picks a free one)');

/** How many of something. */
export const count = (min: number, note = ''): Parse => wholeNumber(min, Number.MAX_SAFE_INTEGER, 'a whole number', note);

/** A size in bytes, no larger than one buffer may be. */
export const bytes = (min: number): Parse => wholeNumber(min, bufferConstants.MAX_LENGTH, 'a number of bytes');

/** A duration in milliseconds that a timer can wait. */
export const milliseconds = (min: number, note = ''): Parse => wholeNumber(min, MAX_TIMER_MS, 'a number of milliseconds', note);

/** A duration in whole seconds that a timer can wait. */
export const seconds = (min: number, note = ''): Parse =>
  wholeNumber(min, Math.floor(MAX_TIMER_MS / 1000), 'a number of seconds', note);

/** A rate, which may have a fraction (0.5: one every two seconds), up to max. */
export function rate(what: string, max: number, note = ''): Parse {
  const advice = `Give ${what} from 0 to ${max}${note}.`;
  return (value) => {
    const n = Number(value);
    if (!DECIMAL.test(value) || n > max) throw new InvalidArgumentError(advice);
    return n;
  };
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * How much history to keep: an age (`30d`, `12h`, `90m`; s, m, h, d or w), a number of
 * messages per room (`100000`), or both joined by a comma (`30d,100000`).
 */
export function retention(value: string): { maxAgeMs?: number; maxPerRoom?: number } {
  const advice = 'Give an age such as 30d, 12h or 90m, a number of messages per room such as 100000, or both: 30d,100000.';
  const out: { maxAgeMs?: number; maxPerRoom?: number } = {};
  for (const part of value.split(',')) {
    const age = /^([0-9]+)([smhdw])$/.exec(part.trim());
    if (age && out.maxAgeMs === undefined && Number(age[1]) > 0) out.maxAgeMs = Number(age[1]) * UNIT_MS[age[2]!]!;
    else if (WHOLE.test(part.trim()) && out.maxPerRoom === undefined && Number(part) > 0) out.maxPerRoom = Number(part);
    else throw new InvalidArgumentError(advice);
  }
  return out;
}

/**
 * A Redis URL (redis:// or rediss://, with a host), checked while the arguments are parsed:
 * node-redis would otherwise throw deep inside the server's start.
 */
export function redisUrl(value: string): string {
  let u: URL | null = null;
  try {
    u = new URL(value);
  } catch {
    // reported below
  }
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '')
    throw new InvalidArgumentError('Give a Redis URL such as redis://HOST:6379 (rediss:// for TLS; redis://:PASSWORD@HOST:6379 with a password).');
  return value;
}

/**
 * A TLS certificate's SHA-256 fingerprint (--fingerprint), brought to the form the server's
 * banner prints, whichever way it was copied (case, the SHA256: prefix, the colons).
 */
export function fingerprint(value: string): string {
  const fp = normalizeFingerprint(value);
  if (fp === null)
    throw new InvalidArgumentError(
      'Give the SHA-256 fingerprint the server printed at start-up: SHA256: and 32 hex pairs, such as SHA256:3A:F1:...:9C (case, the prefix and the colons do not matter).',
    );
  return fp;
}

/**
 * --password-file FILE for the clients: the server password, the file's first line (a file,
 * never the command line, where ps shows it to everyone on the machine).
 */
export function passwordFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}.`);
  }
  const password = text.split(/\r?\n/, 1)[0]!.trim();
  if (password === '') throw new InvalidArgumentError(`${file} is empty: put the server password on its first line.`);
  return password;
}

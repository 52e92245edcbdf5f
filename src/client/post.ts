/**
 * `roomcast post`: a one-shot client for scripts. Connects, posts a text and/or an image to one
 * room, waits for the classifier bot's answer to the image, prints it, and exits with a status
 * a script can test:
 *
 *   0  posted (and, for an image, the bot labelled it)
 *   1  could not connect, the post was refused, the bot answered with an error (or is off),
 *      or no answer came within the timeout
 *   2  bad arguments: the address, a file that cannot be read or is not an image, nothing to post
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { LabelsEvent } from '../protocol/events.js';
import { formatBytes, scorePercent } from '../format/units.js';
import { nickKey } from '../protocol/text.js';
import { IMAGE_FORMAT_LIST, sniffImageFormat } from '../protocol/image-format.js';
import { DEFAULT_PORT } from '../protocol/port.js';
import { AddressError, parseServerAddress } from './address.js';
import { ChatClient, ConnectError, NotConnectedError, RequestError, TimeoutError } from './chat-client.js';
import { clean, cleanLines } from './render.js';
import { checkFingerprintUse, trustOptions, type TlsFlags, type TrustIo } from './tls-options.js';

export interface PostOptions extends TlsFlags {
  address: string;
  room: string;
  image?: string;
  text?: string;
  nick?: string;
  /** Bound on the whole run: connecting, posting and waiting for the bot (ms). */
  timeoutMs: number;
  json: boolean;
  /** The server password (--password-file). */
  serverPassword?: string;
}

export const POST_DEFAULT_TIMEOUT_MS = 30_000;

export interface PostIo extends TrustIo {
  stdout: NodeJS.WritableStream;
}

/** "kitten.jpg: tiger cat 42%, tabby 16%, Egyptian cat 7%" */
export function formatLabels(e: LabelsEvent): string {
  const labels = (Array.isArray(e.labels) ? e.labels : []).map((l) => `${clean(l.label)} ${scorePercent(Number(l.score))}`);
  return `${clean(e.name)}: ${labels.join(', ')}`;
}

class Failure extends Error {
  constructor(
    message: string,
    readonly status: 1 | 2,
    /** The client's own words, in several lines (a refused certificate's); other text is kept to one. */
    readonly lines = false,
  ) {
    super(message);
  }
}

async function readImage(file: string): Promise<Buffer> {
  try {
    const info = await stat(file);
    if (info.isDirectory()) throw new Failure(`${file} is a directory, not an image file`, 2);
    if (info.size === 0) throw new Failure(`${file} is empty (0 bytes): nothing to post`, 2);
    const bytes = await readFile(file);
    // The server would refuse it too (NOT_AN_IMAGE); said here, it costs no connection.
    if (sniffImageFormat(bytes) === null) throw new Failure(`${file} is not a ${IMAGE_FORMAT_LIST} image: nothing was posted`, 2);
    return bytes;
  } catch (err) {
    if (err instanceof Failure) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new Failure(code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${(err as Error).message}`, 2);
  }
}

/** Runs one post to the end; resolves with the exit status. */
export async function runPost(opts: PostOptions, io: PostIo = process): Promise<number> {
  const say = (text: string, lines = false): void => void io.stderr.write(`roomcast: ${lines ? cleanLines(text) : clean(text)}\n`);
  let client: ChatClient | undefined;
  let phase = 'connecting';
  let timedOut = false;
  // One bound on everything, whatever step hangs: a server that takes the connection but never
  // registers us is as stuck as a bot that never answers.
  const watchdog = setTimeout(() => {
    timedOut = true;
    client?.close('timed out');
  }, opts.timeoutMs);
  try {
    if (opts.image === undefined && opts.text === undefined) throw new Failure('nothing to post: give --image FILE, --text TEXT, or both', 2);
    if (opts.text !== undefined && opts.text.trim() === '') throw new Failure('--text is empty', 2);
    let address;
    try {
      address = parseServerAddress(opts.address, DEFAULT_PORT, { tls: opts.tls });
      checkFingerprintUse(opts, [address]);
    } catch (err) {
      if (err instanceof AddressError) throw new Failure(err.message, 2);
      throw err;
    }
    // Read first: a wrong path should not cost a connection.
    const bytes = opts.image === undefined ? undefined : await readImage(opts.image);
    client = new ChatClient({
      ...address,
      nick: opts.nick,
      rooms: [opts.room],
      reconnect: false,
      heartbeatMs: 0,
      connectTimeoutMs: Math.min(opts.timeoutMs, 10_000),
      trust: trustOptions(opts, io),
      serverPassword: opts.serverPassword,
    });
    client.on('warning', (text) => say(text));
    try {
      await client.connect();
    } catch (err) {
      if (err instanceof ConnectError) throw new Failure(err.message, 1, err.final);
      throw err;
    }
    // Someone online has the nick: the client took the next free one (bob_2), as join does, and
    // says so as join does, or a script would post under a name it did not ask for unawares.
    if (opts.nick !== undefined && client.nick !== undefined && nickKey(opts.nick) !== nickKey(client.nick))
      say(`the nick ${opts.nick} is taken, so this posts as ${client.nick} (--nick to pick another)`);
    const room = client.currentRoom ?? opts.room;
    const name = opts.image === undefined ? '' : path.basename(opts.image);
    const max = client.maxImageBytes;
    // Before the text too: a post should not go out half done.
    if (bytes !== undefined && max !== undefined && bytes.length > max)
      throw new Failure(`${name} is ${formatBytes(bytes.length)}; this server takes images up to ${formatBytes(max)}`, 1);

    phase = 'posting';
    if (opts.text !== undefined) {
      const ack = await client.say(opts.text, room);
      if (bytes === undefined && opts.json) io.stdout.write(JSON.stringify(ack) + '\n');
    }
    if (bytes !== undefined) {
      // Asked first so that a server without a working bot is reported at once, not after the timeout.
      // (A server that does not know the question is simply not asked again.)
      const bot = await client.request({ type: 'bot' }).catch((err: unknown) => {
        if (err instanceof RequestError) return null;
        throw err;
      });
      const ack = await client.postImage({ room, name, bytes });
      if (bot?.state === 'off') throw new Failure(`${name} was posted as #${ack.image}, but the classifier bot is off: ${bot.reason}`, 1);
      phase = `waiting for the classifier bot's answer about ${name} (#${ack.image})`;
      const labels = await client.waitForLabels(Number(ack.image), opts.timeoutMs);
      // With --json the answer is printed whatever it is: a script may want the error's code.
      if (opts.json) io.stdout.write(JSON.stringify(labels) + '\n');
      else if (!labels.error) io.stdout.write(formatLabels(labels) + '\n');
      if (labels.error) throw new Failure(`the classifier bot could not label ${name}: ${labels.error.message} (${labels.error.code})`, 1);
    }
    await client.quit();
    return 0;
  } catch (err) {
    if (err instanceof Failure && !timedOut) say(err.message, err.lines);
    else if (timedOut || err instanceof TimeoutError) say(`timed out after ${formatMs(opts.timeoutMs)} ${phase} (--timeout to wait longer)`);
    else if (err instanceof RequestError) say(`refused by the server: ${err.message} (${err.code})`);
    else if (err instanceof NotConnectedError) say(`the connection was lost while ${phase}: ${err.message}`);
    else throw err;
    client?.close('done');
    return err instanceof Failure && !timedOut ? err.status : 1;
  } finally {
    clearTimeout(watchdog);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

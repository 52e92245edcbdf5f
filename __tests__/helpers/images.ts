/**
 * Posting images the way the protocol says (a JSON header line, then exactly `size` raw bytes)
 * from the test clients, and waiting for the bot's answers without moving any cursor: answers
 * to several posts may come in any order.
 */
import { DEFAULT_WAIT, type Ev, type JsonClient, type LineClient } from './clients.js';

export interface ImageHeader {
  room?: string;
  name: string;
  /** Defaults to the length of the bytes; a test may declare something else. */
  size?: number;
  id?: string | number;
}

/** The header line and the bytes, as one buffer. */
export function imageFrame(header: ImageHeader, bytes: Buffer): Buffer {
  const line = JSON.stringify({ type: 'image', ...header, size: header.size ?? bytes.length }) + '\n';
  return Buffer.concat([Buffer.from(line), bytes]);
}

let nextId = 1;

/** Posts an image and resolves with its ack (or the error that refused it). */
export async function post(c: JsonClient, bytes: Buffer, header: Omit<ImageHeader, 'id'>, timeoutMs = DEFAULT_WAIT): Promise<Ev> {
  const id = `img-${nextId++}`;
  c.write(imageFrame({ ...header, id }, bytes));
  return c.waitFor(() => c.events.find((e) => e.id === id && (e.type === 'ack' || e.type === 'error')), timeoutMs, `the ack of ${header.name}`);
}

/** The bot's answer to image `image`, whenever it came. */
export function labelsFor(c: JsonClient, image: number, timeoutMs = 15_000): Promise<Ev> {
  return c.waitFor(() => c.events.find((e) => e.type === 'labels' && e.image === image), timeoutMs, `the labels of image #${image}`);
}

/** The first line from a text client that matches, wherever it is (the cursor is left alone). */
export function lineLike(c: LineClient, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return c.waitFor(() => c.lines.find((l) => re.test(l)), timeoutMs, `a line matching ${re}`);
}

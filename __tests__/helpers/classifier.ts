/**
 * Fixtures for the classifier tests: the shared model kit (read-only, never copied into the
 * project), crafted bad images, and bounded waits.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

export const KIT = path.resolve(process.cwd(), '../shared/models');
export const MODEL = path.join(KIT, 'mobilenetv2-12-int8.onnx');
export const LABELS = path.join(KIT, 'synset.txt');

export interface Expectation {
  top1_any_of: number[];
  top3_has: number;
}

export async function expectations(): Promise<[string, Expectation][]> {
  const json = JSON.parse(await readFile(path.join(KIT, 'expected.json'), 'utf8')) as { photos: Record<string, Expectation> };
  return Object.entries(json.photos).map(([rel, e]) => [path.join(KIT, rel), e]);
}

export function photo(name: string): Promise<Buffer> {
  return readFile(path.join(KIT, 'photos', name));
}

/** The first half of a real JPEG: a header that promises more data than there is. */
export async function truncatedJpeg(): Promise<Buffer> {
  const full = await photo('kitten.jpg');
  return full.subarray(0, Math.floor(full.length / 2));
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A decompression bomb's header: a PNG that declares width x height RGB pixels (30000x30000 is
 * 2.7 GB decoded) with valid CRCs, followed by a few rows of zeros. Building a real one would
 * take seconds of deflate; the point is that the header alone must get it refused.
 */
export function pngBomb(width = 30000, height = 30000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const rows = zlib.deflateSync(Buffer.alloc((1 + 3 * width) * 4));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A rejection's code, or 'resolved' so a test that expected a failure says what it got. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

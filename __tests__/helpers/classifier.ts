/**
 * Fixtures for the classifier tests: the real model kit (read-only, never copied into the
 * project), crafted bad images, and bounded waits.
 *
 * The kit (MobileNet v2, its labels, real photos and the labels expected for them) is not part
 * of the repository. It is looked for in one place: $ROOMCAST_TEST_MODELS, else ../shared/models
 * (from the project root). Tests that need it are declared with describeWithKit/testWithKit:
 * without the kit they are reported as skipped, with the reason and how to enable them. The
 * rest of the pipeline is tested on a tiny model the tests make themselves (tiny-model.ts).
 *
 * CI sets ROOMCAST_REQUIRE_MODEL_KIT=1 when it has the kit: a missing or incomplete kit then
 * fails those tests instead of skipping them, so a real-model test can never quietly not run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

/**
 * The compiled worker, for every pool the tests make: under ts-jest the pool is its TypeScript
 * source, whose worker.js beside it does not exist, and a child process runs JavaScript.
 */
export const WORKER = fileURLToPath(new URL('../../dist/classifier/worker.js', import.meta.url));
/** A worker that hangs for good on an image holding HANG within its first bytes (hang-worker.mjs). */
export const HANG_WORKER = fileURLToPath(new URL('./hang-worker.mjs', import.meta.url));
export const HANG = 'HANG-FOR-TESTING';

export const KIT_ENV = 'ROOMCAST_TEST_MODELS';
export const REQUIRE_KIT_ENV = 'ROOMCAST_REQUIRE_MODEL_KIT';
export const KIT = path.resolve(process.cwd(), process.env[KIT_ENV] || '../shared/models');
export const MODEL = path.join(KIT, 'mobilenetv2-12-int8.onnx');
export const LABELS = path.join(KIT, 'synset.txt');
/**
 * In the title of every test that needs the kit, run or skipped: .ci/run counts the tests
 * carrying it, and fails when the kit is there but any of them was skipped or none passed.
 */
export const KIT_TAG = '[model kit]';

export interface KitStatus {
  ok: boolean;
  /** Why not, when not: in the skipped tests' titles. */
  why: string;
}

let status: KitStatus | undefined;

/** Whether the whole kit is there: model, labels, expected.json and every photo it lists. */
export function kitStatus(): KitStatus {
  if (status) return status;
  const missing = (file: string): KitStatus => ({
    ok: false,
    why: `needs the real model kit: set ${KIT_ENV}=DIR (not found: ${file})`,
  });
  const expected = path.join(KIT, 'expected.json');
  for (const file of [MODEL, LABELS, expected]) if (!existsSync(file)) return (status = missing(file));
  let photos: string[];
  try {
    photos = Object.keys((JSON.parse(readFileSync(expected, 'utf8')) as { photos: Record<string, unknown> }).photos);
  } catch (err) {
    return (status = { ok: false, why: `needs the real model kit: ${expected} is unreadable (${(err as Error).message})` });
  }
  for (const rel of photos) if (!existsSync(path.join(KIT, rel))) return (status = missing(path.join(KIT, rel)));
  return (status = { ok: true, why: '' });
}

function kitRequired(): boolean {
  return process.env[REQUIRE_KIT_ENV] === '1';
}

let warned = false;
function warnOnce(why: string): void {
  if (warned) return;
  warned = true;
  console.warn(`real-model tests skipped: ${why}`);
}

/**
 * `describe` for tests that need the real model kit. Without the kit the block is reported as
 * skipped, its title saying why; with ROOMCAST_REQUIRE_MODEL_KIT=1 it fails instead.
 */
export function describeWithKit(title: string, body: () => void): void {
  const s = kitStatus();
  const tagged = `${KIT_TAG} ${title}`;
  if (s.ok) {
    describe(tagged, body);
  } else if (kitRequired()) {
    describe(tagged, () => {
      test('the real model kit is present', () => {
        throw new Error(`${REQUIRE_KIT_ENV}=1 but this test ${s.why}`);
      });
    });
  } else {
    warnOnce(s.why);
    describe.skip(`${tagged} (skipped: ${s.why})`, body);
  }
}

/** `test` for one test that needs the real model kit; see describeWithKit. */
export function testWithKit(title: string, fn: () => Promise<unknown>, timeout?: number): void {
  const s = kitStatus();
  const tagged = `${KIT_TAG} ${title}`;
  if (s.ok) {
    test(tagged, fn, timeout);
  } else if (kitRequired()) {
    test(tagged, () => {
      throw new Error(`${REQUIRE_KIT_ENV}=1 but this test ${s.why}`);
    });
  } else {
    warnOnce(s.why);
    test.skip(`${tagged} (skipped: ${s.why})`, fn, timeout);
  }
}

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

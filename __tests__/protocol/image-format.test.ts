/**
 * sniffImageFormat, the one check of what an image post may be: real files of each accepted
 * format (drawn with sharp, BMP written by hand since sharp cannot), each cut one byte short
 * of its signature, near-misses that share a signature's start (a WAVE sound is RIFF too, an
 * MP4 video is an ISO media file like AVIF), and random bytes after a signature.
 */
import fc from 'fast-check';
import sharp from 'sharp';
import { IMAGE_FORMATS, sniffImageFormat, type ImageFormat } from '../../src/protocol/image-format.js';
import { bmp, drawn } from '../helpers/image-bytes.js';

const samples = new Map<ImageFormat, Buffer>();
beforeAll(async () => {
  for (const f of ['jpeg', 'png', 'gif', 'webp', 'avif'] as const) samples.set(f, await drawn(f));
  samples.set('bmp', bmp(3, 2));
});

/** How many bytes each check needs before it can say yes. */
const NEEDS: Record<ImageFormat, number> = { jpeg: 3, png: 8, gif: 6, webp: 16, bmp: 26, avif: 16 };

test('every accepted format, from a real file of it', () => {
  for (const [format, bytes] of samples) expect([format, sniffImageFormat(bytes)]).toEqual([format, format]);
  // The list the messages give and the table agree.
  expect(Object.keys(IMAGE_FORMATS).sort()).toEqual([...samples.keys()].sort());
});

test('sharp reads back what the sniffer calls each format (BMP aside: the classifier cannot read it)', async () => {
  for (const [format, bytes] of samples) {
    if (format === 'bmp') continue;
    const meta = await sharp(bytes).metadata();
    expect([format, meta.format]).toEqual([format, format === 'avif' ? 'heif' : format]);
  }
});

test('too short: nothing, and each signature one byte short, is no image', () => {
  expect(sniffImageFormat(Buffer.alloc(0))).toBeNull();
  expect(sniffImageFormat(new Uint8Array([0xff]))).toBeNull();
  for (const [format, bytes] of samples) {
    const n = NEEDS[format];
    expect([format, sniffImageFormat(bytes.subarray(0, n - 1))]).toEqual([format, null]);
    expect([format, sniffImageFormat(bytes.subarray(0, n))]).toEqual([format, format]);
  }
});

test('near-misses are not images', () => {
  const near: [string, Buffer][] = [
    ['text', Buffer.from('these are my notes, not a photo\n')],
    ['a WAVE sound (RIFF, like WebP)', Buffer.from('RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00', 'latin1')],
    ['an AVI video (RIFF)', Buffer.from('RIFF\x24\x08\x00\x00AVI LIST\x10\x00\x00\x00', 'latin1')],
    ['WEBP with no image chunk', Buffer.from('RIFF\x24\x08\x00\x00WEBPJUNK\x10\x00\x00\x00', 'latin1')],
    ['GIF88a', Buffer.from('GIF88a\x01\x00\x01\x00\x00\x00\x00', 'latin1')],
    ['"BM" starting a line of text', Buffer.from('BMW service notes: oil changed, tyres rotated\n')],
    ['a PNG whose CR LF became LF', Buffer.from('\x89PNG\n\x1a\n\x00\x00\x00\x0dIHDR', 'latin1')],
    ['FF D8 without the marker byte', Buffer.from([0xff, 0xd8, 0x00, 0x10, 0x4a, 0x46])],
    ['an MP4 video (ISO media, like AVIF)', Buffer.from('\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom', 'latin1')],
    ['a HEIC photo (ISO media, a brand the server does not take)', Buffer.from('\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic', 'latin1')],
    ['a TIFF (the classifier reads it, browsers do not show it)', Buffer.from('II*\x00\x08\x00\x00\x00\x00\x00\x00\x00', 'latin1')],
    ['a PDF', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')],
    ['an SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>')],
    ['a JSON line', Buffer.from('{"type":"message","text":"hi"}\n')],
  ];
  for (const [what, bytes] of near) expect([what, sniffImageFormat(bytes)]).toEqual([what, null]);
});

test('an AVIF is known by a compatible brand too (major brand mif1)', () => {
  const mif1 = Buffer.from('\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf', 'latin1');
  expect(sniffImageFormat(mif1)).toBe('avif');
  // A brand past the end of the ftyp box is not one of its brands.
  const outside = Buffer.from('\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1avifmiaf', 'latin1');
  expect(sniffImageFormat(outside)).toBeNull();
});

test('whatever follows a signature does not change the answer, and no input throws', () => {
  const formats = [...samples.keys()];
  fc.assert(
    fc.property(fc.constantFrom(...formats), fc.uint8Array({ maxLength: 64 }), (format, tail) => {
      const head = samples.get(format)!.subarray(0, NEEDS[format]);
      return sniffImageFormat(Buffer.concat([head, tail])) === format;
    }),
    { seed: 0x1a6e, numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
      const f = sniffImageFormat(bytes);
      return f === null || f in IMAGE_FORMATS;
    }),
    { seed: 0x1a6f, numRuns: 2000 },
  );
});

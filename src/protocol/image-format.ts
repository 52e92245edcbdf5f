/**
 * Which image formats a post may be, told from the bytes alone (what the poster names or
 * claims is not trusted). The server refuses anything else before the room hears of it, the
 * image store serves the bytes with the type found here, the clients check their files with it
 * before uploading, and the classifier words its refusals by it.
 *
 * It lives in the protocol module because the accepted formats are part of the contract every
 * transport and client shares, and it is pure (bytes in, a name out), so the hub, the HTTP
 * API, the terminal client and the classifier worker can all import it without pulling in
 * sockets or a decoder.
 *
 * The accepted formats are those a browser shows, so every member of the room can see a post:
 * the web page draws it inline. TIFF, which the classifier could read, is left out because most
 * browsers cannot show it.
 */

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'bmp' | 'avif';

export const IMAGE_FORMATS: Readonly<Record<ImageFormat, { name: string; mime: string }>> = {
  jpeg: { name: 'JPEG', mime: 'image/jpeg' },
  png: { name: 'PNG', mime: 'image/png' },
  gif: { name: 'GIF', mime: 'image/gif' },
  webp: { name: 'WebP', mime: 'image/webp' },
  bmp: { name: 'BMP', mime: 'image/bmp' },
  avif: { name: 'AVIF', mime: 'image/avif' },
};

/** "JPEG, PNG, GIF, WebP, BMP or AVIF", for messages that tell people what to send. */
export const IMAGE_FORMAT_LIST = 'JPEG, PNG, GIF, WebP, BMP or AVIF';

/** Sizes of the BMP info header versions (core, v1, v2, v3, OS/2 v2, v4, v5). */
const BMP_HEADER_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);

function ascii(b: Uint8Array, offset: number, text: string): boolean {
  if (b.length < offset + text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

function bytesAt(b: Uint8Array, offset: number, sig: readonly number[]): boolean {
  if (b.length < offset + sig.length) return false;
  return sig.every((x, i) => b[offset + i] === x);
}

function uint32le(b: Uint8Array, offset: number): number {
  return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16)) + b[offset + 3]! * 0x1000000;
}

function uint32be(b: Uint8Array, offset: number): number {
  return b[offset]! * 0x1000000 + ((b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!);
}

/**
 * The format of `bytes` by its signature, or null when it is none of the accepted ones (an
 * empty or too-short buffer included). It looks at the first few dozen bytes only; a file with
 * a right signature may still be damaged further on, which the classifier reports.
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  const b = bytes;
  if (bytesAt(b, 0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (bytesAt(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'gif';
  // RIFF is a container for sounds and videos too: the form type and the first chunk say WebP.
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBPVP8') && (b[15] === 0x20 || b[15] === 0x4c || b[15] === 0x58)) return 'webp';
  // "BM" alone starts plenty of text; the info header's size must also be one BMP defines.
  if (ascii(b, 0, 'BM') && b.length >= 26) {
    const infoSize = uint32le(b, 14);
    if (BMP_HEADER_SIZES.has(infoSize) && uint32le(b, 10) >= 14 + infoSize) return 'bmp';
  }
  if (isAvif(b)) return 'avif';
  return null;
}

/** An ISO media file (its first box is "ftyp") whose major or a compatible brand is AVIF's. */
function isAvif(b: Uint8Array): boolean {
  if (!ascii(b, 4, 'ftyp') || b.length < 16) return false;
  const boxEnd = Math.min(uint32be(b, 0), b.length);
  const avif = (at: number): boolean => ascii(b, at, 'avif') || ascii(b, at, 'avis');
  if (avif(8)) return true;
  // Brands after the major brand and its version.
  for (let at = 16; at + 4 <= boxEnd; at += 4) if (avif(at)) return true;
  return false;
}

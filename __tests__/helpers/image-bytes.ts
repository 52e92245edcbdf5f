/**
 * Small valid image files made on the spot, so tests of what may be posted need no model kit:
 * drawn with sharp in each format it writes, and BMP (which sharp cannot write) by hand.
 */
import sharp from 'sharp';

export type DrawnFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'avif';

/** A 16x12 picture (a red square on blue) in `format`. */
export async function drawn(format: DrawnFormat): Promise<Buffer> {
  const square = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#d22' } }).png().toBuffer();
  return sharp({ create: { width: 16, height: 12, channels: 3, background: '#24c' } })
    .composite([{ input: square, left: 4, top: 3 }])
    .toFormat(format)
    .toBuffer();
}

/** An uncompressed 24-bit BMP (BITMAPINFOHEADER), rows bottom-up and padded to 4 bytes. */
export function bmp(width: number, height: number, rgb: [number, number, number] = [200, 40, 40]): Buffer {
  const row = Math.ceil((width * 3) / 4) * 4;
  const b = Buffer.alloc(54 + row * height);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10); // where the pixels start
  b.writeUInt32LE(40, 14); // BITMAPINFOHEADER
  b.writeInt32LE(width, 18);
  b.writeInt32LE(height, 22);
  b.writeUInt16LE(1, 26); // planes
  b.writeUInt16LE(24, 28); // bits per pixel
  b.writeUInt32LE(row * height, 34);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const at = 54 + y * row + x * 3;
      b[at] = rgb[2];
      b[at + 1] = rgb[1];
      b[at + 2] = rgb[0];
    }
  return b;
}

/** A text file's bytes: what a user posts by mistake. */
export const NOTES = Buffer.from('these are my notes\n');

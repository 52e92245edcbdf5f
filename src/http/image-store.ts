/**
 * The bytes of recently posted images (over any transport), so the web page can show them
 * inline: GET /api/images/{id}. Bounded in total bytes and in count; the oldest go first. An
 * image larger than the whole budget is not kept at all.
 */
import type { ImagePost } from '../hub/hub.js';

export interface StoredImage {
  id: number;
  room: string;
  name: string;
  /** Content type from the file's signature, or null when it is not a format a browser shows. */
  type: string | null;
  bytes: Buffer;
}

export class ImageStore {
  /** In the order they were posted: the first entry is the oldest. */
  private readonly images = new Map<number, StoredImage>();
  private total = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxCount: number,
  ) {}

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.images.size;
  }

  put(post: ImagePost): void {
    if (post.bytes.length > this.maxBytes || this.maxCount === 0) return;
    // A view into a larger read buffer would keep all of it alive: keep a copy of just the image.
    const bytes = post.bytes.byteLength === post.bytes.buffer.byteLength ? post.bytes : Buffer.from(post.bytes);
    this.images.set(post.image, { id: post.image, room: post.room, name: post.name, type: imageType(bytes), bytes });
    this.total += bytes.length;
    for (const [id, img] of this.images) {
      if (this.total <= this.maxBytes && this.images.size <= this.maxCount) break;
      this.images.delete(id);
      this.total -= img.bytes.length;
    }
  }

  get(id: number): StoredImage | undefined {
    return this.images.get(id);
  }
}

/** The formats browsers show, told by their first bytes (what the poster claimed is not trusted). */
export function imageType(b: Buffer): string | null {
  const at = (offset: number, sig: number[]): boolean => sig.every((x, i) => b[offset + i] === x);
  if (at(0, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (at(0, [0x47, 0x49, 0x46, 0x38]) && (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61) return 'image/gif';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'image/webp';
  if (at(0, [0x42, 0x4d]) && b.length > 14) return 'image/bmp';
  return null;
}

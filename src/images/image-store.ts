/**
 * The bytes of recently posted images (over any transport), so the web page can show them
 * inline: GET /api/images/{id}. Bounded in total bytes and in count; the oldest go first. An
 * image larger than the whole budget is not kept at all.
 *
 * The images are copied into one ring of `maxBytes`, allocated on first use, rather than kept
 * as one Buffer each. A Buffer that outlives two young-generation GCs is promoted, and then its
 * backing store is freed only by a full mark-compact: with the classifier saturated, V8's
 * accounting of that external memory started full collections that stopped the hub, the chat's
 * worst delays (docs/performance.md). Now the posted Buffer dies young and keeping an image
 * costs one copy.
 */
import type { ImagePost } from '../hub/hub.js';
import { IMAGE_FORMATS, sniffImageFormat } from '../protocol/image-format.js';

export interface StoredImage {
  id: number;
  room: string;
  name: string;
  /** Content type from the file's signature, or null when it is not a format a browser shows. */
  type: string | null;
  bytes: Buffer;
}

interface Entry {
  id: number;
  room: string;
  name: string;
  type: string | null;
  offset: number;
  length: number;
}

/** Where posted images are kept for GET /api/images/{id}: in memory, or on disk. */
export interface ImageKeeper {
  put(post: ImagePost): void;
  get(id: number): StoredImage | undefined | Promise<StoredImage | undefined>;
  /** Bytes and images kept. */
  readonly bytes: number;
  readonly count: number;
}

export class ImageStore implements ImageKeeper {
  private ring: Buffer | null = null;
  /** In the order they were posted: the first entry is the oldest, and the next in the ring's way. */
  private readonly entries = new Map<number, Entry>();
  /** Where the next image goes. */
  private head = 0;
  private total = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxCount: number,
  ) {}

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.entries.size;
  }

  put(post: ImagePost): void {
    const size = post.bytes.length;
    if (size > this.maxBytes || this.maxCount === 0) return;
    const ring = (this.ring ??= Buffer.allocUnsafeSlow(this.maxBytes));
    let at = this.head;
    if (at + size > this.maxBytes) {
      // Back to the start. Whatever lies between here and the end is older than everything
      // before here: it goes now, so that the oldest entry is again the next in the way.
      this.evictWhile((e) => e.offset >= at);
      at = 0;
    }
    const end = at + size;
    this.evictWhile((e) => (e.offset < end && at < e.offset + e.length) || this.entries.size >= this.maxCount);
    post.bytes.copy(ring, at);
    this.entries.set(post.image, { id: post.image, room: post.room, name: post.name, type: imageType(post.bytes), offset: at, length: size });
    this.head = end;
    this.total += size;
  }

  /** A copy: the ring's bytes may be overwritten while a slow client is still being sent them. */
  get(id: number): StoredImage | undefined {
    const e = this.entries.get(id);
    if (!e || !this.ring) return undefined;
    const { offset, length, ...meta } = e;
    return { ...meta, bytes: Buffer.from(this.ring.subarray(offset, offset + length)) };
  }

  private evictWhile(test: (oldest: Entry) => boolean): void {
    for (const e of this.entries.values()) {
      if (!test(e)) return;
      this.entries.delete(e.id);
      this.total -= e.length;
    }
  }
}

/** The content type to serve the bytes with, from their signature (what the poster claimed is not trusted). */
export function imageType(b: Buffer): string | null {
  const format = sniffImageFormat(b);
  return format === null ? null : IMAGE_FORMATS[format].mime;
}

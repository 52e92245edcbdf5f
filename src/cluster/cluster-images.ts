/**
 * Posted images where every node of a cluster finds them: kept in this node's memory as on a
 * single server, and in Redis for IMAGE_TTL_SECONDS (base64 under roomcast:image:ID, who and
 * where beside it), so GET /api/images/{id} answers on any node, and the classifier's workers
 * read the bytes from there (classifier-jobs.ts).
 */
import type { ImagePost } from '../hub/hub.js';
import { imageType, type ImageKeeper, type StoredImage } from '../images/image-store.js';
import type { CommandSender } from './redis-script.js';

export const IMAGE_TTL_SECONDS = 15 * 60;

/** Where an image's bytes are in Redis (base64): what an image job names. */
export function imageBytesKey(prefix: string, image: number): string {
  return `${prefix}:image:${image}`;
}

export class ClusterImages implements ImageKeeper {
  constructor(
    private readonly local: ImageKeeper,
    private readonly redis: CommandSender,
    private readonly prefix = 'roomcast',
  ) {}

  get bytes(): number {
    return this.local.bytes;
  }

  get count(): number {
    return this.local.count;
  }

  put(post: ImagePost): void {
    this.local.put(post);
    const key = imageBytesKey(this.prefix, post.image);
    const ttl = String(IMAGE_TTL_SECONDS);
    // Sent before the post's job is queued, on the same connection: a worker finds the bytes.
    this.redis.sendCommand(['SET', key, post.bytes.toString('base64'), 'EX', ttl]).catch(() => {});
    this.redis.sendCommand(['SET', `${key}:meta`, JSON.stringify({ room: post.room, name: post.name }), 'EX', ttl]).catch(() => {});
  }

  async get(id: number): Promise<StoredImage | undefined> {
    const here = await this.local.get(id);
    if (here || !Number.isSafeInteger(id)) return here;
    const key = imageBytesKey(this.prefix, id);
    const [b64, meta] = (await Promise.all([this.redis.sendCommand(['GET', key]), this.redis.sendCommand(['GET', `${key}:meta`])])) as [string | null, string | null];
    if (b64 === null || meta === null) return undefined;
    const { room, name } = JSON.parse(meta) as { room: string; name: string };
    const bytes = Buffer.from(b64, 'base64');
    return { id, room, name, type: imageType(bytes), bytes };
  }
}

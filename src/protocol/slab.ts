/**
 * Small encodings cut from shared slabs, as Node's Buffer.from() cuts small strings from its
 * pool: an encoder writes into free space and keeps a view of what it wrote, so a frame needs
 * neither its length measured first nor an allocation of its own. A kept frame keeps its slab
 * alive, so slabs are as small as Node's pool (8 KB), and only encodings of up to MOST bytes
 * are cut from them.
 */
const SLAB_BYTES = 8 * 1024;

export class Slab {
  static readonly MOST = 2 * 1024;
  private buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  /** The slab to write at most `most` (<= MOST) bytes into, from `free`. */
  room(most: number): Buffer {
    if (this.used + most > SLAB_BYTES) {
      this.buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    return this.buf;
  }

  /** Where free space starts in the slab room() returned. */
  get free(): number {
    return this.used;
  }

  /** Keeps bytes start..end of the slab as written; free space starts after them. */
  take(start: number, end: number): Buffer {
    this.used = (end + 7) & ~7; // aligned, as Node's pool keeps its slices
    return this.buf.subarray(start, end);
  }
}

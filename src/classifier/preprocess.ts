/**
 * Image bytes -> the float tensor an ImageNet classifier expects. Runs in a worker process: it
 * decodes untrusted images from a chat, so every limit is checked before any pixel is decoded.
 */
import sharp, { type Metadata } from 'sharp';
import { IMAGE_FORMATS, sniffImageFormat } from '../protocol/image-format.js';
import { ClassifierError } from './errors.js';
import { formatBytes } from '../format/units.js';

export interface PreprocessOptions {
  /** Refused before anything else, so a huge upload costs nothing but the length check. */
  maxBytes: number;
  /**
   * Width x height from the header. Far below sharp's default (0x3FFF^2, about 268 MP): a
   * 40 MP image already decodes to 120 MB of RGB, and a chat photo never needs more.
   */
  maxPixels: number;
  /** Square side of the model input. */
  inputSize: number;
  /** The shorter side is resized to this, then the centre inputSize square is cut out. */
  resizeShorter: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /**
   * Longest side of the thumbnail made alongside the tensor (for terminal previews in the
   * chat); 0: none.
   */
  previewSize: number;
}

export const MIB = 1024 * 1024;

/** The torchvision ImageNet recipe the MobileNet v2 zoo model was trained with. */
export const PREPROCESS_DEFAULTS: PreprocessOptions = Object.freeze({
  maxBytes: 8 * MIB,
  maxPixels: 40_000_000,
  inputSize: 224,
  resizeShorter: 256,
  mean: [0.485, 0.456, 0.406] as const,
  std: [0.229, 0.224, 0.225] as const,
  previewSize: 32,
});

/**
 * How much bigger than the model's input square the resized image may be and still be decoded
 * whole (see preprocess). Past it (very long or very thin images, which resizeShorter can blow
 * up to hundreds of megabytes), libvips computes only the crop and the preview gets its own
 * small pipeline.
 */
const WHOLE_RESIZE_MAX_AREA = 4;

/** Packed RGB pixels, row-major, 3 bytes a pixel. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export interface Preprocessed {
  /** Planar RGB, [3, inputSize, inputSize], normalised. */
  data: Float32Array;
  /** The whole image (not the crop) fitted inside previewSize, aspect kept; absent when off. */
  preview?: RgbImage;
  /** Size after EXIF orientation, before resizing. */
  width: number;
  height: number;
  format: string;
  decodeMs: number;
}

/**
 * Formats we let libvips parse. sharp can also read SVG, raw pixels and libvips' own formats;
 * none of those is a photo someone posts in a chat, and each is more attack surface.
 */
const READABLE = new Map<string, string>([
  ['jpeg', 'JPEG'],
  ['png', 'PNG'],
  ['webp', 'WebP'],
  ['gif', 'GIF'],
  ['heif', 'AVIF'],
  ['tiff', 'TIFF'],
]);
const READABLE_LIST = [...READABLE.values()].join(', ');

/**
 * 'error' rather than sharp's default 'warning': a cut-off or corrupt file must fail (a
 * truncated JPEG decoded with failOn 'none' comes out grey at the bottom and gets classified
 * as nonsense), but phone cameras often write JPEGs with harmless warnings such as extraneous
 * bytes before a marker, and those should still be classified.
 */
const FAIL_ON = 'error' as const;

function megapixels(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MP`;
}

/** Why the header could not be read, in the words of what the bytes look like. */
function notReadable(name: string, bytes: Uint8Array, cause?: unknown): ClassifierError {
  const format = sniffImageFormat(bytes);
  // The chat takes BMP (browsers show it), but the decoder here has no BMP reader.
  if (format === 'bmp')
    return new ClassifierError('IMAGE_INVALID', `${name} is a BMP image, which the classifier cannot read: convert it to JPEG or PNG to have it labelled`, { cause });
  if (format !== null)
    return new ClassifierError('IMAGE_INVALID', `${name} could not be decoded as ${IMAGE_FORMATS[format].name}: the file is damaged or cut off`, { cause });
  return new ClassifierError('IMAGE_INVALID', `${name} is not an image the classifier can read (${READABLE_LIST})`, { cause });
}

/** The cheap checks, usable before the bytes are even sent to a worker. */
export function checkBytes(bytes: Uint8Array, name: string, maxBytes: number): void {
  if (bytes.length === 0) throw new ClassifierError('IMAGE_EMPTY', `${name} is empty (0 bytes)`);
  if (bytes.length > maxBytes) {
    throw new ClassifierError(
      'IMAGE_TOO_LARGE',
      `${name} is ${formatBytes(bytes.length)}; images up to ${formatBytes(maxBytes)} are accepted`,
    );
  }
}

/** Where the resize and crop land, from the (oriented) size in the header. */
export function cropPlan(width: number, height: number, resizeShorter: number, inputSize: number) {
  const scale = resizeShorter / Math.min(width, height);
  // Rounding can leave the shorter side a pixel short of resizeShorter; never below it, so the
  // crop always fits.
  const resizedWidth = Math.max(resizeShorter, Math.round(width * scale));
  const resizedHeight = Math.max(resizeShorter, Math.round(height * scale));
  return {
    resizedWidth,
    resizedHeight,
    left: Math.floor((resizedWidth - inputSize) / 2),
    top: Math.floor((resizedHeight - inputSize) / 2),
  };
}

/**
 * Per-channel lookup tables from a byte to its normalised value: (v / 255 - mean) / std for
 * 256 values once, instead of a division per sample.
 */
function normalisationTables(mean: readonly number[], std: readonly number[]): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean[c]!) / std[c]!;
    return t;
  });
}

const tableCache = new WeakMap<PreprocessOptions, Float32Array[]>();

export async function preprocess(
  bytes: Uint8Array,
  options: PreprocessOptions = PREPROCESS_DEFAULTS,
  name = 'the file',
): Promise<Preprocessed> {
  const started = performance.now();
  checkBytes(bytes, name, options.maxBytes);
  const size = options.inputSize;
  if (options.resizeShorter < size) throw new ClassifierError('INTERNAL', `resizeShorter ${options.resizeShorter} is smaller than the input size ${size}`);

  // The header alone: metadata() does not decode pixels. The pixel limit is lifted for this
  // call only so the refusal below can say how big the image claims to be.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (err) {
    throw notReadable(name, bytes, err);
  }
  const format = READABLE.get(meta.format);
  if (format === undefined) throw notReadable(name, bytes);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw notReadable(name, bytes);
  if (width * height > options.maxPixels) {
    throw new ClassifierError(
      'IMAGE_TOO_MANY_PIXELS',
      `${name} is ${width}x${height} pixels (${megapixels(width * height)}); images up to ${megapixels(options.maxPixels)} are accepted`,
    );
  }

  const plan = cropPlan(width, height, options.resizeShorter, size);
  // Normally the whole resized image comes out (shorter side resizeShorter) and is cropped
  // here: the same pixels as cropping in libvips (checked byte for byte), and the preview is
  // then a cheap downscale of pixels already decoded instead of a second decode.
  const whole = plan.resizedWidth * plan.resizedHeight <= WHOLE_RESIZE_MAX_AREA * size * size;
  const pw = whole ? plan.resizedWidth : size;
  const ph = whole ? plan.resizedHeight : size;
  let pixels: Buffer;
  try {
    let pipeline = sharp(bytes, {
      failOn: FAIL_ON,
      // Again, in case the header lied in a way metadata() did not see (e.g. a multi-page file).
      limitInputPixels: options.maxPixels,
      autoOrient: true,
    }).resize(plan.resizedWidth, plan.resizedHeight, { fit: 'fill' });
    if (!whole) pipeline = pipeline.extract({ left: plan.left, top: plan.top, width: size, height: size });
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== pw || info.height !== ph || data.length !== 3 * pw * ph) {
      throw new ClassifierError('INTERNAL', `unexpected decoder output ${info.width}x${info.height}x${info.channels} for ${name}`);
    }
    pixels = data;
  } catch (err) {
    if (err instanceof ClassifierError) throw err;
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    if (/pixel limit/i.test(why)) {
      throw new ClassifierError('IMAGE_TOO_MANY_PIXELS', `${name} has more pixels than the ${megapixels(options.maxPixels)} accepted`, { cause: err });
    }
    throw new ClassifierError(
      'IMAGE_INVALID',
      // The decoder's own words stay in `cause` (for logs): they name its library, not the problem.
      `${name} could not be decoded as ${format}: the file is damaged or cut off`,
      { cause: err },
    );
  }

  let tables = tableCache.get(options);
  if (!tables) {
    tables = normalisationTables(options.mean, options.std);
    tableCache.set(options, tables);
  }
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  const [r, g, b] = tables as [Float32Array, Float32Array, Float32Array];
  const left = whole ? plan.left : 0;
  const top = whole ? plan.top : 0;
  for (let y = 0, i = 0; y < size; y++) {
    for (let x = 0, p = ((top + y) * pw + left) * 3; x < size; x++, i++, p += 3) {
      out[i] = r[pixels[p]!]!;
      out[plane + i] = g[pixels[p + 1]!]!;
      out[2 * plane + i] = b[pixels[p + 2]!]!;
    }
  }

  let preview: RgbImage | undefined;
  if (options.previewSize > 0) {
    const [tw, th] = previewDimensions(width, height, options.previewSize);
    preview = whole
      ? { width: tw, height: th, rgb: boxDownscale(pixels, pw, ph, tw, th) }
      : await separatePreview(bytes, options, tw, th);
  }
  return { data: out, preview, width, height, format, decodeMs: performance.now() - started };
}

/** The preview's size: the image fitted inside max x max, aspect kept, never enlarged. */
export function previewDimensions(width: number, height: number, max: number): [number, number] {
  const scale = Math.min(1, max / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/**
 * Area-average downscale of packed RGB: each target pixel is the mean of the source pixels
 * under it. For a preview this small, plain arithmetic is cheaper than a second image pipeline's
 * per-call overhead.
 */
export function boxDownscale(src: Uint8Array, sw: number, sh: number, tw: number, th: number): Uint8Array {
  const out = new Uint8Array(tw * th * 3);
  const xs = new Uint32Array(tw + 1);
  for (let x = 0; x <= tw; x++) xs[x] = Math.floor((x * sw) / tw);
  for (let ty = 0; ty < th; ty++) {
    const y0 = Math.floor((ty * sh) / th);
    const y1 = Math.max(y0 + 1, Math.floor(((ty + 1) * sh) / th));
    for (let tx = 0; tx < tw; tx++) {
      const x0 = xs[tx]!;
      const x1 = Math.max(x0 + 1, xs[tx + 1]!);
      let sr = 0;
      let sg = 0;
      let sb = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0, p = (y * sw + x0) * 3; x < x1; x++, p += 3) {
          sr += src[p]!;
          sg += src[p + 1]!;
          sb += src[p + 2]!;
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (ty * tw + tx) * 3;
      out[o] = Math.round(sr / n);
      out[o + 1] = Math.round(sg / n);
      out[o + 2] = Math.round(sb / n);
    }
  }
  return out;
}

/**
 * The preview of an image too long or thin to decode whole: a second, tiny pipeline. The image
 * has already decoded once, so a failure here is unexpected; a preview is a nicety, never a
 * reason to fail the classification.
 */
async function separatePreview(bytes: Uint8Array, options: PreprocessOptions, tw: number, th: number): Promise<RgbImage | undefined> {
  try {
    const rgb = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: options.maxPixels, autoOrient: true })
      .resize(tw, th, { fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer();
    return rgb.length === tw * th * 3 ? { width: tw, height: th, rgb } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Process-wide sharp settings for a process that does nothing but classify. No operation
 * cache: every image is new, so the cache only holds memory. One libvips thread per image: the
 * pool scales with processes, and each worker should use about one core.
 */
export function tuneSharpForWorker(threads = 1): void {
  sharp.cache(false);
  sharp.concurrency(threads);
}

/**
 * A tiny classifier the tests make for themselves, so the whole pipeline (preprocess, batch,
 * worker, labels, broadcast, faults, timeouts) is tested on a fresh clone, without the real
 * model kit; and images drawn with sharp whose labels under that model are known in advance.
 *
 * The model is a real ONNX file, encoded with onnx-proto and loaded by onnxruntime through the
 * same ImageClassifier.load the server uses: input `input` float32 [batch_size, 3, 224, 224]
 * (the batch dimension symbolic, as MobileNet's), GlobalAveragePool -> Flatten -> Gemm, output
 * `output` [batch_size, 3]: raw logits for red, green and blue, like MobileNet's logits (the
 * pipeline applies softmax itself, so a Softmax node would squash every score towards 1/3).
 * Each logit is the channel's mean normalised value minus the mean of the three, so a picture
 * of one colour is labelled with that colour.
 *
 * It is made at test time, in milliseconds, into a temporary directory: nothing binary is
 * committed, and what the tests load is always what this file says.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import sharp, { type Sharp } from 'sharp';
import { PREPROCESS_DEFAULTS } from '../../src/classifier/preprocess.js';

const { onnx } = onnxProto;

export const TINY_CLASSES = ['red', 'green', 'blue'] as const;
export type TinyClass = (typeof TINY_CLASSES)[number];
/** The file's name without .onnx: what the bot reports as its model. */
export const TINY_MODEL_NAME = 'tiny-colours';
/** Sharpness of the logits: large enough that a pure colour scores above 99%. */
const SCALE = 2;
const SIZE = 224;

/** Gemm's B, [3 channels, 3 classes]: SCALE * (I - 1/3). */
function weights(): number[] {
  const w: number[] = [];
  for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) w.push(SCALE * ((c === k ? 1 : 0) - 1 / 3));
  return w;
}

function tensorType(dims: (number | string)[]): InstanceType<typeof onnx.TypeProto> {
  return onnx.TypeProto.create({
    tensorType: {
      elemType: onnx.TensorProto.DataType.FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
    },
  });
}

/** The model's bytes: a serialised onnx.ModelProto (IR version 8, opset 13). */
export function tinyModelBytes(): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'roomcast tests (__tests__/helpers/tiny-model.ts)',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny_colours',
      input: [{ name: 'input', type: tensorType(['batch_size', 3, SIZE, SIZE]) }],
      output: [{ name: 'output', type: tensorType(['batch_size', TINY_CLASSES.length]) }],
      initializer: [
        { name: 'W', dataType: onnx.TensorProto.DataType.FLOAT, dims: [3, TINY_CLASSES.length], floatData: weights() },
        { name: 'b', dataType: onnx.TensorProto.DataType.FLOAT, dims: [TINY_CLASSES.length], floatData: TINY_CLASSES.map(() => 0) },
      ],
      node: [
        { opType: 'GlobalAveragePool', input: ['input'], output: ['pooled'], name: 'pool' },
        { opType: 'Flatten', input: ['pooled'], output: ['means'], name: 'flatten', attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
        { opType: 'Gemm', input: ['means', 'W', 'b'], output: ['output'], name: 'classes' },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface TinyModelFiles {
  dir: string;
  model: string;
  labels: string;
}

/** Writes the model and its labels (one per line) into `dir`. */
export async function writeTinyModel(dir: string): Promise<TinyModelFiles> {
  const model = path.join(dir, `${TINY_MODEL_NAME}.onnx`);
  const labels = path.join(dir, `${TINY_MODEL_NAME}.txt`);
  await writeFile(model, tinyModelBytes());
  await writeFile(labels, TINY_CLASSES.join('\n') + '\n');
  return { dir, model, labels };
}

/**
 * Jest hooks: the tiny model in a fresh temporary directory for this test file, removed after
 * it. Call it at the top of the file, before any beforeAll that starts a server with it; the
 * paths are readable from the first beforeAll on.
 */
export function useTinyModel(): TinyModelFiles {
  let files: TinyModelFiles | undefined;
  beforeAll(async () => {
    files = await writeTinyModel(await mkdtemp(path.join(os.tmpdir(), 'roomcast-tiny-model-')));
  });
  afterAll(async () => {
    if (files) await rm(files.dir, { recursive: true, force: true });
  });
  const get = (key: keyof TinyModelFiles): string => {
    if (!files) throw new Error('the tiny model is made in beforeAll: read its paths inside hooks and tests');
    return files[key];
  };
  return {
    get dir() {
      return get('dir');
    },
    get model() {
      return get('model');
    },
    get labels() {
      return get('labels');
    },
  };
}

export type Rgb = readonly [number, number, number];

export const RED: Rgb = [255, 0, 0];
export const GREEN: Rgb = [0, 255, 0];
export const BLUE: Rgb = [0, 0, 255];
export const COLOUR: Record<TinyClass, Rgb> = { red: RED, green: GREEN, blue: BLUE };

/**
 * What the tiny model answers for a picture whose mean colour is `rgb`, computed here in plain
 * arithmetic from the preprocessing recipe and the weights: the scores of red, green, blue.
 */
export function tinyScores(rgb: Rgb): number[] {
  const { mean, std } = PREPROCESS_DEFAULTS;
  const x = rgb.map((v, c) => (v / 255 - mean[c]!) / std[c]!);
  const avg = (x[0]! + x[1]! + x[2]!) / 3;
  const logits = x.map((v) => SCALE * (v - avg));
  const top = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The labels, best first, as the classifier returns them for a picture of mean colour `rgb`. */
export function tinyLabels(rgb: Rgb): { index: number; label: TinyClass; score: number }[] {
  return tinyScores(rgb)
    .map((score, index) => ({ index, label: TINY_CLASSES[index]!, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index);
}

export type DrawFormat = 'png' | 'jpeg' | 'webp';

export interface DrawOptions {
  width?: number;
  height?: number;
  format?: DrawFormat;
}

function encode(img: Sharp, format: DrawFormat): Promise<Buffer> {
  if (format === 'jpeg') return img.jpeg({ quality: 90 }).toBuffer();
  if (format === 'webp') return img.webp({ lossless: true }).toBuffer();
  return img.png().toBuffer();
}

/** A picture of one colour, 480x360 (the shape of a phone photo's thumbnail) unless told. */
export function solid(rgb: Rgb, { width = 480, height = 360, format = 'png' }: DrawOptions = {}): Promise<Buffer> {
  return encode(sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }), format);
}

/**
 * Packed RGB noise from a fixed seed (so every run draws the same picture), each channel
 * scaled by `tint`/255. Noise is what makes a JPEG big and its entropy-coded data long, like a
 * photo's.
 */
export function noise(width: number, height: number, tint: Rgb = [255, 255, 255], seed = 1): Buffer {
  const out = Buffer.alloc(width * height * 3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = Math.round(((s & 0xff) * tint[i % 3]!) / 255);
  }
  return out;
}

/** A noisy photo-like JPEG whose colours lean to `tint` (so the tiny model labels it that). */
export function noisyJpeg(width: number, height: number, tint: Rgb, quality = 90): Promise<Buffer> {
  return sharp(noise(width, height, tint), { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

/**
 * The first half of a real JPEG drawn here: a header that promises more data than there is,
 * cut in the middle of the entropy-coded scan, as an upload that broke off would be.
 */
export async function truncatedJpeg(): Promise<Buffer> {
  const full = await noisyJpeg(480, 360, [255, 160, 80]);
  return full.subarray(0, Math.floor(full.length / 2));
}

/**
 * A landscape for preview checks, 480x360: a green band across the top quarter over a red
 * field, so a thumbnail must be green at the top left and red in the centre.
 */
export function greenOverRed(): Promise<Buffer> {
  return sharp({ create: { width: 480, height: 360, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .composite([{ input: { create: { width: 480, height: 90, channels: 3, background: { r: 0, g: 255, b: 0 } } }, left: 0, top: 0 }])
    .jpeg({ quality: 90 })
    .toBuffer();
}

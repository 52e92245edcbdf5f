/**
 * One ONNX image classifier in this process: the onnxruntime session, its labels, and a batch
 * run from image bytes to the top labels of each image. The pool runs one of these per worker
 * process; the benchmark and tests also run it in-process.
 */
import { stat } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { ClassifierError, errorCode, errorMessage, type ClassifierErrorCode } from './errors.js';
import { loadLabels, type Label } from './labels.js';
import { preprocess, PREPROCESS_DEFAULTS, type PreprocessOptions } from './preprocess.js';
import { softmax, topK } from './scores.js';

export interface ThreadOptions {
  intraOpNumThreads: number;
  interOpNumThreads: number;
}

/**
 * One thread per session. The pool scales by processes (each worker runs one batch at a
 * time), and on the 2-core machines this runs on, the chat hub needs a core of its own: a
 * session that spread one run over every core would make chat lag whenever someone posts a
 * photo. Inference is also the small part of an image's time (decoding dominates), so more
 * threads would buy little.
 */
export const THREAD_DEFAULTS: ThreadOptions = Object.freeze({ intraOpNumThreads: 1, interOpNumThreads: 1 });

export function sessionOptions(threads: ThreadOptions = THREAD_DEFAULTS): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads.intraOpNumThreads,
    interOpNumThreads: threads.interOpNumThreads,
    // A classifier is a straight chain of convolutions: 'parallel' only adds an inter-op
    // thread pool that has nothing to run side by side.
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Warnings (e.g. about unused initialisers) would land on the server's stderr for every
    // worker start; errors still come through.
    logSeverityLevel: 3,
    // Session config entries. The Node binding flattens nested keys with dots and calls
    // AddConfigEntry for each, and it accepts only string values. ORT's thread pools spin-wait
    // for work by default, which keeps a core busy between batches: an idle bot must leave the
    // CPU to the hub. (With one intra-op thread there is no pool to spin; this keeps it true if
    // the thread counts are raised.)
    extra: {
      session: {
        intra_op: { allow_spinning: '0' },
        inter_op: { allow_spinning: '0' },
      },
    },
  };
}

export interface ModelInfo {
  model: string;
  labels: string;
  inputName: string;
  outputName: string;
  inputShape: (number | string)[];
  /** Whether the batch dimension is symbolic: then a whole batch goes through one run(). */
  dynamicBatch: boolean;
  /** The batch a fixed-batch model requires (runs are padded to it); undefined when dynamic. */
  fixedBatch?: number;
  inputSize: number;
  classes: number;
  loadMs: number;
}

import type { LabelScore } from '../protocol/events.js';
export type { LabelScore };

export interface ImageTimings {
  /** Reading the header, decoding, resizing and normalising this image. */
  decodeMs: number;
  /** The run() of the whole batch this image was in. */
  inferenceMs: number;
}

/** A thumbnail of the image as the chat carries it: packed RGB, row-major, base64. */
export interface ImagePreview {
  width: number;
  height: number;
  rgb: string;
}

export type ImageOutcome =
  | {
      ok: true;
      labels: LabelScore[];
      timings: ImageTimings;
      batchSize: number;
      width: number;
      height: number;
      preview?: ImagePreview;
    }
  | { ok: false; code: ClassifierErrorCode; message: string };

export interface ImageInput {
  bytes: Uint8Array;
  /** How messages refer to the image ("kitten.jpg"). */
  name?: string;
  /** How many labels to return. */
  top?: number;
}

export interface LoadOptions {
  model: string;
  labels: string;
  threads?: ThreadOptions;
  preprocess?: Partial<PreprocessOptions>;
}

function isDynamic(dim: number | string | undefined): boolean {
  return typeof dim !== 'number' || dim < 0;
}

async function checkFile(path: string, what: string): Promise<void> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new ClassifierError('MODEL_NOT_FOUND', `${what} ${path} is not a file`);
  } catch (err) {
    if (err instanceof ClassifierError) throw err;
    throw new ClassifierError('MODEL_NOT_FOUND', `${what} not found: ${path}`, { cause: err });
  }
}

export class ImageClassifier {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly labels: Label[],
    readonly info: ModelInfo,
    readonly preprocessOptions: PreprocessOptions,
  ) {}

  static async load(options: LoadOptions): Promise<ImageClassifier> {
    const started = performance.now();
    await checkFile(options.model, 'model file');
    await checkFile(options.labels, 'labels file');
    const labels = await loadLabels(options.labels);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(options.model, sessionOptions(options.threads));
    } catch (err) {
      throw new ClassifierError('MODEL_INVALID', `${options.model} could not be loaded as an ONNX image classifier (${errorMessage(err)}). Check the file, or install the default model with: roomcast models pull`, { cause: err });
    }
    try {
      const input = session.inputMetadata[0];
      const output = session.outputMetadata[0];
      if (!input?.isTensor || input.type !== 'float32' || input.shape.length !== 4 || input.shape[1] !== 3) {
        throw new ClassifierError('MODEL_INVALID', `${options.model}: expected one float32 image input [batch, 3, H, W], found ${JSON.stringify(input)}`);
      }
      if (!output?.isTensor || output.shape.length !== 2) {
        throw new ClassifierError('MODEL_INVALID', `${options.model}: expected an output [batch, classes], found ${JSON.stringify(output)}`);
      }
      const [batchDim, , h, w] = input.shape;
      const pre: PreprocessOptions = { ...PREPROCESS_DEFAULTS, ...options.preprocess };
      // A model with a fixed spatial size decides the crop; a fully dynamic one takes the default.
      if (typeof h === 'number' && h > 0) {
        if (h !== w) throw new ClassifierError('MODEL_INVALID', `${options.model}: non-square input ${h}x${w} is not supported`);
        pre.inputSize = h;
        pre.resizeShorter = Math.max(pre.resizeShorter, h);
      }
      const classDim = output.shape[1];
      const classes = typeof classDim === 'number' && classDim > 0 ? classDim : labels.length;
      if (classes !== labels.length) {
        throw new ClassifierError(
          'LABELS_INVALID',
          `${options.labels} has ${labels.length} labels but ${options.model} outputs ${classes} classes: are they from the same model?`,
        );
      }
      const dynamicBatch = isDynamic(batchDim);
      const info: ModelInfo = {
        model: options.model,
        labels: options.labels,
        inputName: input.name,
        outputName: output.name,
        inputShape: [...input.shape],
        dynamicBatch,
        fixedBatch: dynamicBatch ? undefined : (batchDim as number),
        inputSize: pre.inputSize,
        classes,
        loadMs: performance.now() - started,
      };
      const classifier = new ImageClassifier(session, labels, info, pre);
      // The first run() allocates and plans memory (about 15x a normal run here); do it now,
      // while the worker is loading, rather than on the first photo someone posts.
      await classifier.infer(new Float32Array(3 * pre.inputSize * pre.inputSize), 1);
      info.loadMs = performance.now() - started;
      return classifier;
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Logits for `count` preprocessed images laid end to end in `batch`. A dynamic-batch model
   * takes them in one run; a fixed-batch model gets runs of its size, the last padded with zeros.
   */
  async infer(batch: Float32Array, count: number): Promise<Float32Array> {
    const { inputSize: s, classes, inputName, outputName } = this.info;
    const per = 3 * s * s;
    const step = this.info.fixedBatch ?? count;
    const logits = new Float32Array(count * classes);
    for (let first = 0; first < count; first += step) {
      const n = Math.min(step, count - first);
      let data = batch.subarray(first * per, (first + n) * per);
      if (n < step) {
        const padded = new Float32Array(step * per);
        padded.set(data);
        data = padded;
      }
      const feeds = { [inputName]: new ort.Tensor('float32', data, [step, 3, s, s]) };
      const out = await this.session.run(feeds);
      const tensor = out[outputName];
      if (!tensor || !(tensor.data instanceof Float32Array)) {
        throw new ClassifierError('INTERNAL', `model output ${outputName} is not float32`);
      }
      logits.set(tensor.data.subarray(0, n * classes), first * classes);
      tensor.dispose();
    }
    return logits;
  }

  /**
   * Decode each image, run the ones that decoded as one batch, and score them. An image that
   * fails to decode gets its own error; the others go on.
   */
  async classify(images: readonly ImageInput[], defaultTop = 5): Promise<ImageOutcome[]> {
    const outcomes: (ImageOutcome | undefined)[] = new Array(images.length);
    const decoded: { slot: number; data: Float32Array; decodeMs: number; width: number; height: number; preview?: ImagePreview }[] = [];
    // One at a time on purpose: a worker is meant to use about one core (see tuneSharpForWorker).
    for (let i = 0; i < images.length; i++) {
      const image = images[i]!;
      try {
        const p = await preprocess(image.bytes, this.preprocessOptions, image.name);
        // Encoded here, in the worker: the hub's process only passes the string along.
        const preview = p.preview && {
          width: p.preview.width,
          height: p.preview.height,
          rgb: Buffer.from(p.preview.rgb.buffer, p.preview.rgb.byteOffset, p.preview.rgb.byteLength).toString('base64'),
        };
        decoded.push({ slot: i, data: p.data, decodeMs: p.decodeMs, width: p.width, height: p.height, preview });
      } catch (err) {
        outcomes[i] = { ok: false, code: errorCode(err), message: errorMessage(err) };
      }
    }
    if (decoded.length > 0) {
      const per = 3 * this.info.inputSize * this.info.inputSize;
      const batch = new Float32Array(decoded.length * per);
      decoded.forEach((d, k) => batch.set(d.data, k * per));
      const started = performance.now();
      let logits: Float32Array | undefined;
      let failure: unknown;
      try {
        logits = await this.infer(batch, decoded.length);
      } catch (err) {
        failure = err;
      }
      const inferenceMs = performance.now() - started;
      const classes = this.info.classes;
      decoded.forEach((d, k) => {
        if (!logits) {
          outcomes[d.slot] = { ok: false, code: 'INTERNAL', message: `inference failed: ${errorMessage(failure)}` };
          return;
        }
        const probs = softmax(logits.subarray(k * classes, (k + 1) * classes));
        const top = topK(probs, images[d.slot]!.top ?? defaultTop);
        outcomes[d.slot] = {
          ok: true,
          labels: top.map(({ index, score }) => ({ index, label: this.labels[index]?.name ?? `class ${index}`, score })),
          timings: { decodeMs: d.decodeMs, inferenceMs },
          batchSize: decoded.length,
          width: d.width,
          height: d.height,
          ...(d.preview ? { preview: d.preview } : {}),
        };
      });
    }
    return outcomes as ImageOutcome[];
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

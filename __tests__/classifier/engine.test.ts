/**
 * @jest-environment ./__tests__/helpers/ort-environment.cjs
 */
/**
 * The engine in-process: preprocessing and its limits, labels, scores, and the onnxruntime
 * session, on the tiny model the tests make (helpers/tiny-model.ts) and, when the real model
 * kit is there, on MobileNet and its photos. The pool tests run the same code in worker
 * processes.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ClassifierError } from '../../src/classifier/errors.js';
import { parseLabels } from '../../src/classifier/labels.js';
import { ImageClassifier, sessionOptions } from '../../src/classifier/image-classifier.js';
import { cropPlan, preprocess, PREPROCESS_DEFAULTS } from '../../src/classifier/preprocess.js';
import { softmax, topK } from '../../src/classifier/scores.js';
import { describeWithKit, expectations, LABELS, MODEL, pngBomb } from '../helpers/classifier.js';
import { BLUE, GREEN, noisyJpeg, RED, solid, TINY_CLASSES, tinyLabels, truncatedJpeg, useTinyModel, type Rgb } from '../helpers/tiny-model.js';

const tiny = useTinyModel();

async function codeOfCall(fn: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await fn();
  } catch (err) {
    return { code: (err as ClassifierError).code, message: (err as Error).message };
  }
  return { code: 'resolved', message: '' };
}

describe('preprocess', () => {
  test('turns a photo into a normalised NCHW float tensor', async () => {
    const p = await preprocess(await noisyJpeg(480, 360, [255, 255, 255]), PREPROCESS_DEFAULTS, 'noise.jpg');
    expect(p.data).toBeInstanceOf(Float32Array);
    expect(p.data.length).toBe(3 * 224 * 224);
    expect([p.width, p.height, p.format]).toEqual([480, 360, 'JPEG']);
    // (0 - mean) / std .. (1 - mean) / std over the three channels
    const min = p.data.reduce((a, b) => Math.min(a, b));
    const max = p.data.reduce((a, b) => Math.max(a, b));
    expect(min).toBeGreaterThanOrEqual(-2.12);
    expect(max).toBeLessThanOrEqual(2.65);
  });

  test('resizes the shorter side to 256 and crops the centre 224', () => {
    expect(cropPlan(480, 360, 256, 224)).toEqual({ resizedWidth: 341, resizedHeight: 256, left: 58, top: 16 });
    expect(cropPlan(100, 100, 256, 224)).toEqual({ resizedWidth: 256, resizedHeight: 256, left: 16, top: 16 });
  });

  test('honours EXIF orientation, and takes greyscale and RGBA images', async () => {
    const rotated = await sharp({ create: { width: 300, height: 200, channels: 3, background: 'red' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const r = await preprocess(rotated);
    expect([r.width, r.height]).toEqual([200, 300]);

    const grey = await sharp({ create: { width: 64, height: 48, channels: 3, background: 'white' } }).greyscale().png().toBuffer();
    const g = await preprocess(grey);
    // white in every channel: (1 - mean) / std
    expect(g.data[0]).toBeCloseTo((1 - 0.485) / 0.229, 3);
    expect(g.data[224 * 224]).toBeCloseTo((1 - 0.456) / 0.224, 3);

    const rgba = await sharp({ create: { width: 50, height: 50, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } }).png().toBuffer();
    const a = await preprocess(rgba);
    expect(a.data.length).toBe(3 * 224 * 224);
    expect(a.data[2 * 224 * 224]).toBeCloseTo((1 - 0.406) / 0.225, 3);
  });

  test('zero bytes: IMAGE_EMPTY', async () => {
    expect(await codeOfCall(() => preprocess(Buffer.alloc(0), PREPROCESS_DEFAULTS, 'empty.jpg'))).toEqual({
      code: 'IMAGE_EMPTY',
      message: 'empty.jpg is empty (0 bytes)',
    });
  });

  test('too many bytes: IMAGE_TOO_LARGE, before decoding', async () => {
    const r = await codeOfCall(() => preprocess(Buffer.alloc(2 * 1024 * 1024, 1), { ...PREPROCESS_DEFAULTS, maxBytes: 1024 * 1024 }, 'big.jpg'));
    expect(r.code).toBe('IMAGE_TOO_LARGE');
    expect(r.message).toBe('big.jpg is 2.0 MiB; images up to 1.0 MiB are accepted');
  });

  test('text: IMAGE_INVALID with a message a person understands', async () => {
    const r = await codeOfCall(() => preprocess(Buffer.from('hello, this is not a photo\n'), PREPROCESS_DEFAULTS, 'notes.txt'));
    expect(r).toEqual({ code: 'IMAGE_INVALID', message: 'notes.txt is not an image the classifier can read (JPEG, PNG, WebP, GIF, AVIF, TIFF)' });
  });

  test('formats outside the list (SVG) are refused too', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    expect((await codeOfCall(() => preprocess(svg))).code).toBe('IMAGE_INVALID');
  });

  test('a truncated JPEG: sharp really fails on it at failOn "error", so it is IMAGE_INVALID', async () => {
    const half = await truncatedJpeg();
    // Why failOn matters: with 'none' libjpeg pads the missing rows and the photo "decodes".
    await expect(sharp(half, { failOn: 'none' }).resize(64).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
    await expect(sharp(half, { failOn: 'error' }).resize(64).raw().toBuffer()).rejects.toThrow(/premature end/i);
    const r = await codeOfCall(() => preprocess(half, PREPROCESS_DEFAULTS, 'half.jpg'));
    expect(r.code).toBe('IMAGE_INVALID');
    expect(r.message).toMatch(/^half\.jpg could not be decoded as JPEG: the file is damaged or cut off/);
  });

  test('a 30000x30000 PNG bomb is refused from its header, quickly', async () => {
    const bomb = pngBomb();
    expect(bomb.length).toBeLessThan(4096);
    const started = performance.now();
    const r = await codeOfCall(() => preprocess(bomb, PREPROCESS_DEFAULTS, 'bomb.png'));
    const ms = performance.now() - started;
    expect(r).toEqual({ code: 'IMAGE_TOO_MANY_PIXELS', message: 'bomb.png is 30000x30000 pixels (900 MP); images up to 40 MP are accepted' });
    expect(ms).toBeLessThan(500);
  });

  test('the pixel limit is configurable', async () => {
    const r = await codeOfCall(() => preprocess(pngBomb(3000, 3000), { ...PREPROCESS_DEFAULTS, maxPixels: 1_000_000 }));
    expect(r.code).toBe('IMAGE_TOO_MANY_PIXELS');
  });
});

describe('labels and scores', () => {
  test('parses synset lines into names', () => {
    const labels = parseLabels('n01440764 tench, Tinca tinca\nn02123045 tabby, tabby cat\n');
    expect(labels).toEqual([
      { wnid: 'n01440764', name: 'tench', names: 'tench, Tinca tinca' },
      { wnid: 'n02123045', name: 'tabby', names: 'tabby, tabby cat' },
    ]);
  });

  test('parses one label per line, keeping blank lines as classes', () => {
    expect(parseLabels('cat\r\n\r\ndog\r\n').map((l) => l.name)).toEqual(['cat', '', 'dog']);
    expect(() => parseLabels('')).toThrow(ClassifierError);
  });

  test('softmax sums to one and survives large logits', () => {
    const p = softmax([1000, 1001, 1002]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(p[2]).toBeGreaterThan(p[1]!);
  });

  test('topK is ordered and keeps the lower index first on ties', () => {
    expect(topK([0.1, 0.4, 0.4, 0.05, 0.05], 3)).toEqual([
      { index: 1, score: 0.4 },
      { index: 2, score: 0.4 },
      { index: 0, score: 0.1 },
    ]);
    expect(topK([0.3, 0.7], 5).map((s) => s.index)).toEqual([1, 0]);
    expect(topK([0.3, 0.7], 0)).toEqual([]);
  });
});

test('session options: one thread, sequential, no spinning (config entries via extra)', () => {
  const o = sessionOptions();
  expect(o).toMatchObject({ intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  expect(o.extra).toEqual({ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
});

describe('model (the tiny one)', () => {
  let classifier: ImageClassifier;
  beforeAll(async () => {
    classifier = await ImageClassifier.load({ model: tiny.model, labels: tiny.labels });
  });
  afterAll(async () => {
    await classifier?.close();
  });

  test('reads input name, shape and the dynamic batch from the model', () => {
    expect(classifier.info).toMatchObject({
      inputName: 'input',
      outputName: 'output',
      inputShape: ['batch_size', 3, 224, 224],
      dynamicBatch: true,
      inputSize: 224,
      classes: 3,
    });
    expect(classifier.info.fixedBatch).toBeUndefined();
    expect(classifier.labels.map((l) => l.name)).toEqual([...TINY_CLASSES]);
  });

  test('a batch of drawn pictures: each gets the labels computed from its colour, in one run; a bad image fails alone', async () => {
    const colours: Rgb[] = [RED, GREEN, BLUE, [200, 120, 40], [30, 60, 220]];
    const images = await Promise.all(colours.map(async (c, i) => ({ bytes: await solid(c, { width: 300 + 40 * i, height: 200 }), name: `c${i}.png` })));
    images.splice(2, 0, { bytes: Buffer.from('not an image'), name: 'junk.bin' });
    const outcomes = await classifier.classify(images, 3);
    expect(outcomes[2]).toEqual({ ok: false, code: 'IMAGE_INVALID', message: expect.stringContaining('junk.bin is not an image') });
    const good = outcomes.filter((o) => o.ok);
    expect(good).toHaveLength(colours.length);
    good.forEach((o, i) => {
      if (!o.ok) return;
      expect(o.batchSize).toBe(colours.length);
      const want = tinyLabels(colours[i]!);
      expect(o.labels.map((l) => [l.index, l.label])).toEqual(want.map((l) => [l.index, l.label]));
      o.labels.forEach((l, k) => expect(l.score).toBeCloseTo(want[k]!.score, 4));
      expect(o.timings.inferenceMs).toBeGreaterThan(0);
      expect(o.timings.decodeMs).toBeGreaterThan(0);
    });
    expect(new Set(good.map((o) => o.ok && o.timings.inferenceMs)).size).toBe(1); // one run()
    // Same answers as one at a time.
    const alone = await classifier.classify([images[0]!], 3);
    const first = outcomes[0]!;
    if (!first.ok || !alone[0]!.ok) throw new Error('expected results');
    expect(alone[0]!.batchSize).toBe(1);
    expect(alone[0]!.labels.map((l) => l.index)).toEqual(first.labels.map((l) => l.index));
    expect(alone[0]!.labels[0]!.score).toBeCloseTo(first.labels[0]!.score, 5);
  });

  test('missing files and mismatched labels fail with clear codes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-model-'));
    try {
      const missing = await codeOfCall(() => ImageClassifier.load({ model: path.join(dir, 'nope.onnx'), labels: tiny.labels }));
      expect(missing.code).toBe('MODEL_NOT_FOUND');
      expect(missing.message).toContain('nope.onnx');

      const tenLabels = path.join(dir, 'ten.txt');
      await writeFile(tenLabels, Array.from({ length: 10 }, (_, i) => `label ${i}`).join('\n'));
      const mismatch = await codeOfCall(() => ImageClassifier.load({ model: tiny.model, labels: tenLabels }));
      expect(mismatch.code).toBe('LABELS_INVALID');
      expect(mismatch.message).toMatch(/10 labels but .* outputs 3 classes/);

      const notModel = path.join(dir, 'fake.onnx');
      await writeFile(notModel, 'this is not protobuf');
      expect((await codeOfCall(() => ImageClassifier.load({ model: notModel, labels: tiny.labels }))).code).toBe('MODEL_INVALID');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describeWithKit('model (MobileNet v2, the real kit)', () => {
  let classifier: ImageClassifier;
  beforeAll(async () => {
    classifier = await ImageClassifier.load({ model: MODEL, labels: LABELS });
  });
  afterAll(async () => {
    await classifier?.close();
  });

  test('reads input name, shape and the dynamic batch from the model', () => {
    expect(classifier.info).toMatchObject({
      inputName: 'input',
      outputName: 'output',
      inputShape: ['batch_size', 3, 224, 224],
      dynamicBatch: true,
      inputSize: 224,
      classes: 1000,
    });
    expect(classifier.info.fixedBatch).toBeUndefined();
    expect(classifier.labels).toHaveLength(1000);
  });

  test('runs a batch as one tensor; a bad image fails alone', async () => {
    const files = await expectations();
    const images = await Promise.all(files.map(async ([file]) => ({ bytes: await readFile(file), name: path.basename(file) })));
    images.splice(2, 0, { bytes: Buffer.from('not an image'), name: 'junk.bin' });
    const outcomes = await classifier.classify(images, 3);
    expect(outcomes[2]).toEqual({ ok: false, code: 'IMAGE_INVALID', message: expect.stringContaining('junk.bin is not an image') });
    const good = outcomes.filter((o) => o.ok);
    expect(good).toHaveLength(files.length);
    for (const o of good) {
      if (!o.ok) continue;
      expect(o.batchSize).toBe(files.length);
      expect(o.labels).toHaveLength(3);
      expect(o.timings.inferenceMs).toBeGreaterThan(0);
      expect(o.timings.decodeMs).toBeGreaterThan(0);
    }
    // Same answers as one at a time.
    const alone = await classifier.classify([images[0]!], 3);
    const first = outcomes[0]!;
    if (!first.ok || !alone[0]!.ok) throw new Error('expected results');
    expect(alone[0]!.labels.map((l) => l.index)).toEqual(first.labels.map((l) => l.index));
    expect(alone[0]!.labels[0]!.score).toBeCloseTo(first.labels[0]!.score, 4);
  });

  test('mismatched labels are caught against its 1000 classes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-model-'));
    try {
      const tenLabels = path.join(dir, 'ten.txt');
      await writeFile(tenLabels, Array.from({ length: 10 }, (_, i) => `label ${i}`).join('\n'));
      const mismatch = await codeOfCall(() => ImageClassifier.load({ model: MODEL, labels: tenLabels }));
      expect(mismatch.code).toBe('LABELS_INVALID');
      expect(mismatch.message).toMatch(/10 labels but .* outputs 1000 classes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

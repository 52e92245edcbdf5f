/**
 * The thumbnail made alongside the model's tensor: its size and content, the way very long
 * images are handled, and proof that producing it changed nothing the model sees.
 */
import sharp from 'sharp';
import { boxDownscale, cropPlan, preprocess, PREPROCESS_DEFAULTS, previewDimensions } from '../../src/classifier/preprocess.js';
import { expectations, testWithKit } from '../helpers/classifier.js';
import { greenOverRed, noisyJpeg } from '../helpers/tiny-model.js';
import { readFile } from 'node:fs/promises';

test('fits inside 32x32, keeps the aspect, never enlarges', () => {
  expect(previewDimensions(480, 360, 32)).toEqual([32, 24]);
  expect(previewDimensions(360, 480, 32)).toEqual([24, 32]);
  expect(previewDimensions(224, 224, 32)).toEqual([32, 32]);
  expect(previewDimensions(10, 5, 32)).toEqual([10, 5]);
  expect(previewDimensions(5000, 10, 32)).toEqual([32, 1]);
});

test('box downscale averages the pixels under each target pixel', () => {
  // 4x2: a red 2x2 block and a blue one, to 2x1.
  const src = Uint8Array.from([255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255, 255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255]);
  expect([...boxDownscale(src, 4, 2, 2, 1)]).toEqual([255, 0, 0, 0, 0, 255]);
  // Black and white to one grey.
  expect([...boxDownscale(Uint8Array.from([0, 0, 0, 255, 255, 255]), 2, 1, 1, 1)]).toEqual([128, 128, 128]);
});

test('the preview shows the whole image (not the crop), in its colours', async () => {
  // 300x100: left third red, middle green, right third blue. The model's centre crop sees
  // only green; the preview must show all three.
  const img = await sharp({ create: { width: 300, height: 100, channels: 3, background: 'black' } })
    .composite([
      { input: { create: { width: 100, height: 100, channels: 3, background: { r: 255, g: 0, b: 0 } } }, left: 0, top: 0 },
      { input: { create: { width: 100, height: 100, channels: 3, background: { r: 0, g: 255, b: 0 } } }, left: 100, top: 0 },
      { input: { create: { width: 100, height: 100, channels: 3, background: { r: 0, g: 0, b: 255 } } }, left: 200, top: 0 },
    ])
    .png()
    .toBuffer();
  const p = await preprocess(img);
  expect(p.preview).toMatchObject({ width: 32, height: 11 });
  const rgb = p.preview!.rgb;
  const at = (x: number, y: number): number[] => [...rgb.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)];
  expect(at(2, 5)).toEqual([255, 0, 0]);
  expect(at(16, 5)).toEqual([0, 255, 0]);
  expect(at(29, 5)).toEqual([0, 0, 255]);
});

/** Checks, at a spread of pixels, that preprocess's tensor is libvips' own resize and crop, normalised. */
async function expectSameAsLibvipsCrop(bytes: Buffer): Promise<void> {
  const p = await preprocess(bytes);
  const plan = cropPlan(p.width, p.height, 256, 224);
  const crop = await sharp(bytes, { failOn: 'error', autoOrient: true })
    .resize(plan.resizedWidth, plan.resizedHeight, { fit: 'fill' })
    .extract({ left: plan.left, top: plan.top, width: 224, height: 224 })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer();
  const { mean, std } = PREPROCESS_DEFAULTS;
  const plane = 224 * 224;
  for (let i = 0; i < plane; i += 97) {
    for (let c = 0; c < 3; c++) expect(p.data[c * plane + i]).toBeCloseTo((crop[i * 3 + c]! / 255 - mean[c]!) / std[c]!, 5);
  }
}

test('the tensor is exactly what cropping in libvips gives, for drawn pictures of every shape', async () => {
  const pictures = [
    await noisyJpeg(480, 360, [255, 255, 255]),
    await noisyJpeg(333, 500, [120, 255, 60]),
    await greenOverRed(),
    // Wide: the resized picture is just under the size preprocess still decodes whole.
    await noisyJpeg(900, 300, [255, 200, 100]),
    // Smaller than the crop (enlarged), with an alpha channel to drop, as PNG.
    await sharp({ create: { width: 150, height: 120, channels: 4, background: { r: 10, g: 90, b: 200, alpha: 0.5 } } }).png().toBuffer(),
  ];
  for (const bytes of pictures) await expectSameAsLibvipsCrop(bytes);
});

testWithKit('the tensor is exactly what cropping in libvips gives, for every photo of the kit', async () => {
  for (const [file] of await expectations()) await expectSameAsLibvipsCrop(await readFile(file));
});

test('a very long, thin image is not blown up whole: the crop comes from libvips, the preview from its own small pipeline', async () => {
  // 4000x2: resizing the shorter side to 256 would make 512000x256 pixels (393 MB of RGB).
  const thin = await sharp({ create: { width: 4000, height: 2, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
  const p = await preprocess(thin);
  expect(p.data.length).toBe(3 * 224 * 224);
  expect(p.preview).toMatchObject({ width: 32, height: 1 });
  expect([...p.preview!.rgb]).toEqual(Array.from({ length: 32 }, () => [10, 200, 30]).flat());
});

test('previewSize 0: no preview', async () => {
  const img = await sharp({ create: { width: 40, height: 30, channels: 3, background: 'white' } }).png().toBuffer();
  expect((await preprocess(img, { ...PREPROCESS_DEFAULTS, previewSize: 0 })).preview).toBeUndefined();
});

/**
 * Installing models: pull() against a local HTTP server (127.0.0.1, port 0) serving the real
 * model kit, whose files are the manifest's (size and sha256): those tests need the kit. No
 * other network.
 */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ClassifierError } from '../../src/classifier/errors.js';
import { defaultModelsDir, findModel, list, loadManifest, pull, sha256File, type Manifest, type PullProgress } from '../../src/classifier/model-catalog.js';
import { describeWithKit, MODEL, testWithKit } from '../helpers/classifier.js';
import { useModelServer, type ModelServer } from '../helpers/model-server.js';

let server: ModelServer;
let dir: string;

useModelServer('roomcast-models-', (s, d) => {
  server = s;
  dir = d;
});

async function failure(p: Promise<unknown>): Promise<ClassifierError> {
  try {
    await p;
  } catch (err) {
    return err as ClassifierError;
  }
  throw new Error('expected a failure');
}

test('the manifest knows the default model with its size and checksum', async () => {
  const manifest = await loadManifest();
  const entry = manifest.models.find((m) => m.name === manifest.default)!;
  expect(entry).toMatchObject({
    name: 'mobilenetv2-int8',
    url: 'https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx',
    size: 3655033,
    sha256: 'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f',
    labels: { url: 'https://github.com/onnx/models/raw/main/validated/vision/classification/synset.txt', size: 31675, format: 'synset' },
    input: { name: 'input', shape: ['batch_size', 3, 224, 224] },
    preprocessing: { resizeShorter: 256, crop: 224 },
  });
});

testWithKit("the manifest's checksum is the kit's model file", async () => {
  const manifest = await loadManifest();
  expect(await sha256File(MODEL)).toBe(manifest.models.find((m) => m.name === manifest.default)!.sha256);
});

test('models directory: $ROOMCAST_MODELS, else models/ in the project', () => {
  expect(defaultModelsDir({ ROOMCAST_MODELS: '/srv/models' })).toBe('/srv/models');
  expect(defaultModelsDir({})).toBe(path.resolve(process.cwd(), 'models'));
});

// The server has no such file (with or without the kit): nothing to download.
test('a missing file on the server, and an unknown model name, fail clearly', async () => {
  const manifest: Manifest = structuredClone(await loadManifest());
  manifest.models[0]!.url = 'https://example.invalid/models/not-there.onnx';
  const err = await failure(pull(undefined, { dir, baseUrl: `${server.url}/files/`, manifest }));
  expect(err.code).toBe('PULL_FAILED');
  expect(err.message).toContain('the server answered 404');
  expect(await readdir(dir)).toEqual([]);

  expect((await failure(pull('resnet-9000', { dir }))).code).toBe('MODEL_UNKNOWN');
});

describeWithKit('pulling the real model from a local mirror', () => {
  test('pull downloads, verifies and installs; a second pull has nothing to do', async () => {
    expect((await list({ dir }))[0]).toMatchObject({ name: 'mobilenetv2-int8', isDefault: true, installed: false, verified: false });
    await expect(findModel({ dir })).rejects.toMatchObject({ code: 'MODEL_NOT_INSTALLED', message: expect.stringContaining('`roomcast models pull`') });

    const progress: PullProgress[] = [];
    const r = await pull(undefined, { dir, baseUrl: `${server.url}/files/`, onProgress: (p) => progress.push(p) });
    expect(r).toEqual({
      name: 'mobilenetv2-int8',
      dir,
      model: path.join(dir, 'mobilenetv2-12-int8.onnx'),
      labels: path.join(dir, 'synset.txt'),
      downloaded: ['mobilenetv2-12-int8.onnx', 'synset.txt'],
    });
    expect((await readdir(dir)).sort()).toEqual(['mobilenetv2-12-int8.onnx', 'synset.txt']);
    expect(await sha256File(r.model)).toBe('cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f');
    expect(server.requests).toEqual(expect.arrayContaining(['/files/mobilenetv2-12-int8.onnx', '/files/synset.txt']));
    const modelProgress = progress.filter((p) => p.file === 'mobilenetv2-12-int8.onnx');
    expect(modelProgress[0]).toEqual({ file: 'mobilenetv2-12-int8.onnx', received: 0, total: 3655033 });
    expect(modelProgress[modelProgress.length - 1]).toEqual({ file: 'mobilenetv2-12-int8.onnx', received: 3655033, total: 3655033 });
    expect(modelProgress.length).toBeGreaterThan(2);

    expect((await list({ dir }))[0]).toMatchObject({ installed: true, verified: true, status: { model: 'ok', labels: 'ok' } });
    await expect(findModel({ dir })).resolves.toMatchObject({ model: r.model, labels: r.labels, preprocess: { inputSize: 224, resizeShorter: 256 } });

    const again = await pull('mobilenetv2-int8', { dir, baseUrl: `${server.url}/files` });
    expect(again.downloaded).toEqual([]);
  });

  test('a wrong checksum fails and leaves no file behind', async () => {
    const manifest: Manifest = structuredClone(await loadManifest());
    manifest.models[0]!.sha256 = '0'.repeat(64);
    const err = await failure(pull(undefined, { dir, baseUrl: `${server.url}/files/`, manifest }));
    expect(err.code).toBe('PULL_CHECKSUM');
    expect(err.message).toContain('mobilenetv2-12-int8.onnx');
    expect(err.message).toContain('failed its checksum');
    expect(err.message).toContain('was not installed');
    expect(await readdir(dir)).toEqual([]);
    expect((await list({ dir, manifest }))[0]!.installed).toBe(false);
  });

  test('a transfer cut off mid-body fails and leaves no file behind', async () => {
    const err = await failure(pull(undefined, { dir, baseUrl: `${server.url}/cut/` }));
    expect(err.code).toBe('PULL_INTERRUPTED');
    expect(err.message).toMatch(/^the download of mobilenetv2-12-int8\.onnx was cut off after [\d.]+ MiB of 3\.5 MiB/);
    expect(err.message).toContain('nothing was installed');
    expect(await readdir(dir)).toEqual([]);
  });

  test('a damaged install is reported, and pulled again', async () => {
    await pull(undefined, { dir, baseUrl: `${server.url}/files/` });
    // Same size, different bytes: only the checksum can tell.
    const labels = path.join(dir, 'synset.txt');
    await writeFile(labels, 'x'.repeat(31675));
    expect((await list({ dir }))[0]).toMatchObject({ installed: false, verified: false, status: { model: 'ok', labels: 'wrong-checksum' } });
    const r = await pull(undefined, { dir, baseUrl: `${server.url}/files/` });
    expect(r.downloaded).toEqual(['synset.txt']);
    expect((await list({ dir }))[0]!.verified).toBe(true);
  });

  test('a pull cleans up temporary files of pulls that were killed', async () => {
    // PID 2^22 + 1 is above Linux's pid_max, so no such process.
    const stale = path.join(dir, '.mobilenetv2-12-int8.onnx.4194305.0badf00d.part');
    const mine = path.join(dir, `.synset.txt.${process.pid}.cafe0123.part`);
    const unrelated = path.join(dir, 'notes.txt');
    await Promise.all([writeFile(stale, 'half a model'), writeFile(mine, 'in progress'), writeFile(unrelated, 'keep me')]);
    await pull(undefined, { dir, baseUrl: `${server.url}/files/` });
    expect((await readdir(dir)).sort()).toEqual([path.basename(mine), 'mobilenetv2-12-int8.onnx', 'notes.txt', 'synset.txt'].sort());
  });
});

test('--model without --labels is refused with a hint', async () => {
  await expect(findModel({ model: MODEL })).rejects.toMatchObject({ code: 'MODEL_NOT_INSTALLED', message: expect.stringContaining('--model and --labels go together') });
});

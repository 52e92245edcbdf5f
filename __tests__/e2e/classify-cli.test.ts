/**
 * The built CLI (`npm test` builds first) as a child process: `roomcast classify`,
 * `roomcast models list` and `roomcast models pull` against a local server. `classify` runs on
 * the tiny model the tests make and on pictures drawn here; the expected labels of the real
 * photos, and pulling the real model, need the model kit.
 */
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expectations, KIT, LABELS, MODEL, testWithKit } from '../helpers/classifier.js';
import { useModelServer, type ModelServer } from '../helpers/model-server.js';
import { GREEN, RED, solid, truncatedJpeg, useTinyModel } from '../helpers/tiny-model.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const ROOT = process.cwd();
const BIN = path.join(ROOT, 'bin', 'roomcast');

const tiny = useTinyModel();
let server: ModelServer;
let dir: string;

useModelServer('roomcast-cli-', (s, d) => {
  server = s;
  dir = d;
});

/** Runs a command line through sh (so globs expand as a user's shell would), in the project root. */
function sh(command: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { cwd: ROOT, env: { ...process.env, ROOMCAST_MODELS: dir, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface JsonResult {
  file: string;
  ok: boolean;
  code?: string;
  message?: string;
  labels?: { index: number; label: string; score: number }[];
  batchSize?: number;
}

testWithKit('classify --json on the photos gives the expected labels', async () => {
  const run = await sh(`node bin/roomcast classify ${KIT}/photos/*.jpg ${KIT}/photos/*.png ${KIT}/photos/*.jpeg --json --model ${MODEL} --labels ${LABELS}`);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const results = JSON.parse(run.stdout) as JsonResult[];
  const cases = await expectations();
  expect(results).toHaveLength(cases.length);
  for (const [file, want] of cases) {
    const r = results.find((x) => path.resolve(ROOT, x.file) === file);
    expect(r).toBeDefined();
    expect(r!.ok).toBe(true);
    expect(r!.labels).toHaveLength(3);
    expect(want.top1_any_of).toContain(r!.labels![0]!.index);
    expect(r!.labels!.map((l) => l.index)).toContain(want.top3_has);
  }
});

test('classify prints a table; bad files are reported per file with exit code 1', async () => {
  const red = path.join(dir, 'red.png');
  await writeFile(red, await solid(RED));
  const half = path.join(dir, 'half.jpg');
  await writeFile(half, await truncatedJpeg());
  const empty = path.join(dir, 'empty.jpg');
  await writeFile(empty, '');
  const readme = path.join(dir, 'README.md');
  await writeFile(readme, '# Not a picture\n');
  const run = await sh(
    `node ${BIN} classify ${red} ${half} ${empty} ${readme} ${dir}/missing.jpg --top 2 --model ${tiny.model} --labels ${tiny.labels}`,
  );
  expect(run.code).toBe(1);
  const lines = run.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^FILE\s+TOP 2\s+MS$/);
  // Red: 99.95%, then blue 0.03%.
  expect(lines[1]).toMatch(/red\.png\s+red 99\.\d+%, blue <0\.1%\s+\d+$/);
  expect(lines[2]).toContain('error IMAGE_INVALID: half.jpg could not be decoded as JPEG: the file is damaged or cut off');
  expect(lines[3]).toContain('error IMAGE_EMPTY: empty.jpg is empty (0 bytes)');
  expect(lines[4]).toContain('error IMAGE_INVALID: README.md is not an image the classifier can read (JPEG, PNG, WebP, GIF, AVIF, TIFF)');
  expect(lines[5]).toContain('error FILE_UNREADABLE: cannot read');
});

test('with no model installed, classify says which command installs one', async () => {
  const green = path.join(dir, 'green.jpg');
  await writeFile(green, await solid(GREEN, { format: 'jpeg' }));
  const run = await sh(`node ${BIN} classify ${green}`);
  expect(run.code).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr).toContain(`the image classifier model "mobilenetv2-int8" is not installed in ${dir}`);
  expect(run.stderr).toContain('`roomcast models pull`');
  expect(run.stderr).toContain('--model FILE.onnx --labels FILE.txt');
});

testWithKit('models pull from a mirror, then list, then classify without --model', async () => {
  const before = await sh(`node ${BIN} models list`);
  expect(before.code).toBe(0);
  expect(before.stdout).toContain(`models directory: ${dir}`);
  expect(before.stdout).toMatch(/mobilenetv2-int8 \(default\)\s+3\.5 MiB\s+not installed/);

  const pulled = await sh(`node ${BIN} models pull --base-url ${server.url}/files/`);
  expect(pulled.code).toBe(0);
  expect(pulled.stdout).toContain('mobilenetv2-int8: installed (mobilenetv2-12-int8.onnx, synset.txt downloaded, sha256 verified)');
  // Not a terminal: one line per file, no carriage-return bar.
  expect(pulled.stderr).toBe('downloading mobilenetv2-12-int8.onnx (3.5 MiB)\ndownloading synset.txt (30.9 KiB)\n');
  expect((await readdir(dir)).sort()).toEqual(['mobilenetv2-12-int8.onnx', 'synset.txt']);

  const after = await sh(`node ${BIN} models list --json`);
  expect(JSON.parse(after.stdout).models[0]).toMatchObject({ name: 'mobilenetv2-int8', installed: true, verified: true });

  const run = await sh(`node ${BIN} classify ${KIT}/photos/espresso.jpg --json --top 1`);
  expect(run.code).toBe(0);
  expect(JSON.parse(run.stdout)[0].labels[0]).toMatchObject({ index: 967, label: 'espresso' });
});

testWithKit('models pull: a cut-off transfer fails with a message and leaves nothing', async () => {
  const other = path.join(dir, 'elsewhere');
  const run = await sh(`node ${BIN} models pull mobilenetv2-int8 --dir ${other} --base-url ${server.url}/cut/`);
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/roomcast: the download of mobilenetv2-12-int8\.onnx was cut off after/);
  expect(await readdir(other)).toEqual([]);
});

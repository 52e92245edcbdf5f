/**
 * `roomcast post` as scripts run it: the built binary (run `npm run build` first) against
 * `roomcast serve` with a model (the tiny one the tests make, helpers/tiny-model.ts, on
 * pictures drawn here), and against in-process servers set up for the ways a post fails. Every
 * child is started here and killed by PID if it outlives its test.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HANG, HANG_WORKER, waitFor } from '../helpers/classifier.js';
import { Harness, textClient, type LineClient } from '../helpers/clients.js';
import { lineLike } from '../helpers/images.js';
import { formatBytes } from '../../src/format/units.js';
import { BLUE, GREEN, solid, TINY_MODEL_NAME, useTinyModel } from '../helpers/tiny-model.js';

const BIN = path.resolve('bin/roomcast');
const tiny = useTinyModel();
/** Drawn in beforeAll: a blue JPEG (480x360) and a green PNG. */
let BLUE_JPEG = '';
let GREEN_PNG = '';
let blueSize = '';
const ENV = { ...process.env };
delete ENV.FORCE_COLOR;
delete ENV.NO_COLOR;

const children: ChildProcessWithoutNullStreams[] = [];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function start(args: string[]): { proc: ChildProcessWithoutNullStreams; out: () => string; err: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [BIN, ...args], { env: ENV });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  proc.stderr.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, err: () => err, exited };
}

async function roomcast(...args: string[]): Promise<Run> {
  const started = Date.now();
  const c = start(args);
  const status = await c.exited;
  return { status, stdout: c.out(), stderr: c.err(), ms: Date.now() - started };
}

function killAll(): void {
  for (const p of children.splice(0)) {
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-post-'));
  BLUE_JPEG = path.join(dir, 'blue.jpeg');
  GREEN_PNG = path.join(dir, 'green.png');
  const blue = await solid(BLUE, { format: 'jpeg' });
  blueSize = formatBytes(blue.length);
  await writeFile(BLUE_JPEG, blue);
  await writeFile(GREEN_PNG, await solid(GREEN));
});
afterAll(async () => {
  killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('against roomcast serve with the model', () => {
  let port = 0;
  let nc: LineClient;
  let serve: ReturnType<typeof start>;

  beforeAll(async () => {
    serve = start(['serve', '--port', '0', '--host', '127.0.0.1', '--greet-delay', '20', '--model', tiny.model, '--labels', tiny.labels]);
    await waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(serve.out()), 'the banner', 15_000);
    port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(serve.out())![1]);
    nc = await textClient(port, 'watcher');
    nc.send('/join lab');
    await nc.waitLine(/^\*\*\* You joined \[lab\]/);
  });
  afterAll(async () => {
    nc?.destroy();
    // After all of that, the server still shuts down cleanly on SIGTERM.
    if (serve?.proc.pid !== undefined && serve.proc.exitCode === null) process.kill(serve.proc.pid, 'SIGTERM');
    expect(await serve.exited).toBe(0);
  });

  test('--json: exits 0 with the labels event, blue on top; a netcat user in the room sees the post and the answer', async () => {
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', BLUE_JPEG, '--json');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const event = JSON.parse(lines[0]!);
    expect(event).toMatchObject({ type: 'labels', room: 'lab', nick: 'classifier', name: 'blue.jpeg', model: TINY_MODEL_NAME });
    expect(event.labels.map((l: { label: string }) => l.label)).toEqual(['blue', 'green', 'red']);
    expect(event.labels[0]).toMatchObject({ index: 2, label: 'blue' });
    expect(event.preview).toMatchObject({ width: 32, height: 24 });

    const size = blueSize.replace('.', '\\.');
    expect(await lineLike(nc, /posted image/)).toMatch(new RegExp(`^\\[lab\\] guest\\d+ posted image #${event.image} blue\\.jpeg \\(${size}\\)$`));
    expect(await lineLike(nc, /^\[lab\] classifier:/)).toMatch(new RegExp(`^\\[lab\\] classifier: #${event.image} blue\\.jpeg \u2192 blue 99\\.\\d%, green <1%, red <1%$`));
  });

  test('plain: a text then the image, and one line with the labels', async () => {
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', GREEN_PNG, '--text', 'look at this', '--nick', 'poster');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('green.png: green 99.9%, blue <1%, red <1%\n');
    await lineLike(nc, /^\[lab\] poster: look at this$/);
    await lineLike(nc, /^\[lab\] poster posted image #\d+ green\.png/);
  });

  test("the bot's error answer: exit 1 with its message; --json still prints the event", async () => {
    const notes = path.join(dir, 'notes.jpg');
    await writeFile(notes, Buffer.from('\xff\xd8\xffnot a photo at all\n', 'latin1')); // a JPEG's signature, then no JPEG
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', notes, '--json');
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      'roomcast: the classifier bot could not label notes.jpg: notes.jpg could not be decoded as JPEG: the file is damaged or cut off (IMAGE_INVALID)\n',
    );
    expect(JSON.parse(run.stdout).error).toMatchObject({ code: 'IMAGE_INVALID' });
  });

  test('bad arguments exit 2 before connecting', async () => {
    const missing = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', path.join(dir, 'nope.jpg'));
    expect([missing.status, missing.stderr]).toEqual([2, `roomcast: no such file: ${path.join(dir, 'nope.jpg')}\n`]);
    const nothing = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab');
    expect([nothing.status, nothing.stderr]).toEqual([2, 'roomcast: nothing to post: give --image FILE, --text TEXT, or both\n']);
    const address = await roomcast('post', '127.0.0.1:99999', '--room', 'lab', '--text', 'hi');
    expect(address.status).toBe(2);
    expect(address.stderr).toMatch(/invalid port "99999"/);
  });
});

describe('failures', () => {
  const h = new Harness();
  afterEach(() => h.cleanup());

  test('nothing listening: exit 1, and says so', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', BLUE_JPEG);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`roomcast: could not connect to 127.0.0.1:${port}: connection refused — is the server running? start one with: roomcast serve\n`);
    expect(run.stdout).toBe('');
  });

  test("an image over the server's limit is refused: exit 1", async () => {
    const server = await h.server({ classifier: { off: 'unused' }, connection: { maxImageBytes: 1000 } });
    const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', BLUE_JPEG);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`roomcast: blue.jpeg is ${blueSize}; this server takes images up to 1000 B\n`);
    expect(server.hub.stats.images).toBe(0);
  });

  test('the bot is off: exit 1 with its advice', async () => {
    const server = await h.server({ classifier: { off: 'no image model is installed. Turn the bot on with: roomcast models pull' } });
    const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', BLUE_JPEG);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      'roomcast: blue.jpeg was posted as #1, but the classifier bot is off: no image model is installed. Turn the bot on with: roomcast models pull\n',
    );
  });

  test('no answer within --timeout: exit 1, promptly', async () => {
    const server = await h.server({ classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1, workerScript: HANG_WORKER } } });
    await server.pool!.ready();
    const stuck = path.join(dir, 'stuck.jpg');
    await writeFile(stuck, `GIF89a${HANG} never answered`);
    const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', stuck, '--timeout', '1500');
    expect(run.status).toBe(1);
    expect(run.stderr).toBe("roomcast: timed out after 1500 ms waiting for the classifier bot's answer about stuck.jpg (#1) (--timeout to wait longer)\n");
    expect(run.ms).toBeLessThan(6000);
  });
});

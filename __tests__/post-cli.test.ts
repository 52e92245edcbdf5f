/**
 * `roomcast post` as scripts run it: the built binary (run `npm run build` first) against
 * `roomcast serve` with the real model, and against in-process servers set up for the ways a
 * post fails. Every child is started here and killed by PID if it outlives its test.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KIT, LABELS, MODEL, waitFor } from './helpers/classifier.js';
import { Harness, textClient, type LineClient } from './helpers/clients.js';
import { lineLike } from './helpers/images.js';

const BIN = path.resolve('bin/roomcast');
const PELICAN = path.join(KIT, 'photos/pelican.jpeg');
const KITTEN = path.join(KIT, 'photos/kitten.jpg');
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
    serve = start(['serve', '--port', '0', '--host', '127.0.0.1', '--greet-delay', '20', '--model', MODEL, '--labels', LABELS]);
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

  test('--json: exits 0 with the labels event, pelican on top; a netcat user in the room sees the post and the answer', async () => {
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', PELICAN, '--json');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const event = JSON.parse(lines[0]!);
    expect(event).toMatchObject({ type: 'labels', room: 'lab', nick: 'classifier', name: 'pelican.jpeg', model: 'mobilenetv2-12-int8' });
    expect(event.labels[0]).toMatchObject({ index: 144, label: 'pelican' });
    expect(event.preview).toMatchObject({ width: 32, height: 24 });

    expect(await lineLike(nc, /posted image/)).toMatch(new RegExp(`^\\[lab\\] guest\\d+ posted image #${event.image} pelican\\.jpeg \\(34\\.2 KB\\)$`));
    expect(await lineLike(nc, /^\[lab\] classifier:/)).toMatch(new RegExp(`^\\[lab\\] classifier: #${event.image} pelican\\.jpeg \u2192 pelican 99\\.\\d%, `));
  });

  test('plain: a text then the image, and one line with the labels', async () => {
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', KITTEN, '--text', 'look at this', '--nick', 'poster');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^kitten\.jpg: (tiger cat|tabby|Egyptian cat) \d+%, [a-zA-Z ]+ \d+%, [a-zA-Z ]+ \d+%\n$/);
    await lineLike(nc, /^\[lab\] poster: look at this$/);
    await lineLike(nc, /^\[lab\] poster posted image #\d+ kitten\.jpg/);
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
    const run = await roomcast('post', `127.0.0.1:${port}`, '--room', 'lab', '--image', PELICAN);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`roomcast: could not connect to 127.0.0.1:${port}: connection refused — is the server running? start one with: roomcast serve\n`);
    expect(run.stdout).toBe('');
  });

  test("an image over the server's limit is refused: exit 1", async () => {
    const server = await h.server({ classifier: { off: 'unused' }, connection: { maxImageBytes: 1000 } });
    const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', PELICAN);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('roomcast: pelican.jpeg is 34.2 KB; this server takes images up to 1000 B\n');
    expect(server.hub.stats.images).toBe(0);
  });

  test('the bot is off: exit 1 with its advice', async () => {
    const server = await h.server({ classifier: { off: 'no image model is installed. Turn the bot on with: roomcast models pull' } });
    const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', PELICAN);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      'roomcast: pelican.jpeg was posted as #1, but the classifier bot is off: no image model is installed. Turn the bot on with: roomcast models pull\n',
    );
  });

  test('no answer within --timeout: exit 1, promptly', async () => {
    const HANG = 'HANG-FOR-TESTING';
    const server = await h.server({ classifier: { pool: { model: MODEL, labels: LABELS, size: 1, hangForTesting: HANG } } });
    await server.pool!.ready();
    const stuck = path.join(dir, 'stuck.jpg');
    await writeFile(stuck, `GIF89a${HANG} never answered`);
    const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', stuck, '--timeout', '1500');
    expect(run.status).toBe(1);
    expect(run.stderr).toBe("roomcast: timed out after 1500 ms waiting for the classifier bot's answer about stuck.jpg (#1) (--timeout to wait longer)\n");
    expect(run.ms).toBeLessThan(6000);
  });
});

/**
 * Bytes that are not an image are refused with NOT_AN_IMAGE before the room hears of them,
 * over every way in (a JSON header and raw bytes over TCP, a header and a binary message over
 * WebSocket, an HTTP body or form), while each accepted format goes through; the terminal
 * client and `roomcast post` say so before uploading; and the classifier's own refusals say
 * what is wrong with the file without naming the library that found out. Real servers on port
 * 0 with no bot, and images drawn on the spot (no model kit).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ChatClient, RequestError } from '../../src/client/chat-client.js';
import { Terminal } from '../../src/client/terminal.js';
import { ImageClassifier } from '../../src/classifier/image-classifier.js';
import { preprocess } from '../../src/classifier/preprocess.js';
import { WEB_DEFAULTS } from '../../src/http/context.js';
import { PLAIN } from '../../src/client/render.js';
import type { RoomcastServer } from '../../src/server.js';
import { CLI_ENV } from '../helpers/cli-child.js';
import { Harness, HOST, type Ev, type JsonClient, type LineClient } from '../helpers/clients.js';
import { bmp, drawn, NOTES } from '../helpers/image-bytes.js';
import { imageFrame, lineLike, post } from '../helpers/images.js';
import { get, request, WsClient, type HttpAnswer } from '../helpers/web.js';

const REFUSAL = (name: string): string =>
  `"${name}" is not a JPEG, PNG, GIF, WebP, BMP or AVIF image, so it was not posted. Send a picture in one of those formats.`;
/** Words a user-facing message must never contain: the names of the libraries underneath. */
const LIBRARY = /sharp|vips|busboy|onnx/i;

/**
 * HTTP and WebSocket on a port of their own, and a long greeting delay: on a loaded machine a
 * request or a hello can come more than the harness's usual 30 ms after connecting, and the
 * shared port would then have taken the connection for a netcat user's.
 */
const SERVER = { connection: { greetDelay: 500 }, web: { ...WEB_DEFAULTS, port: 0 } };

const h = new Harness();
const sockets: WsClient[] = [];
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-not-image-'));
});
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.close();
  await h.cleanup();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function ws(server: RoomcastServer, nick: string): Promise<WsClient> {
  const c = await WsClient.registered(server.httpPort, nick, ['lobby']);
  sockets.push(c);
  return c;
}

function multipart(file: Buffer, filename: string): { body: Buffer; type: string } {
  const boundary = `----roomcast${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="nick"\r\n\r\nformy\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\nContent-Type: image/png\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

const postRaw = (server: RoomcastServer, bytes: Buffer, name: string, type = 'image/jpeg'): Promise<HttpAnswer> =>
  request(server.httpPort, {
    method: 'POST',
    path: `/api/rooms/lobby/images?name=${encodeURIComponent(name)}&nick=webby`,
    headers: { 'Content-Type': type },
    body: bytes,
  });

const postForm = (server: RoomcastServer, bytes: Buffer, name: string): Promise<HttpAnswer> => {
  const form = multipart(bytes, name);
  return request(server.httpPort, { method: 'POST', path: '/api/rooms/lobby/images', headers: { 'Content-Type': form.type }, body: form.body });
};

/**
 * A message from alice that everyone in the room has read: anything the server had sent the
 * room before it has arrived by then, since each member gets the room's events in order.
 */
async function barrier(alice: JsonClient, others: { bob: JsonClient; carol: WsClient; nc: LineClient }, text: string): Promise<Ev> {
  alice.sendJson({ type: 'message', room: 'lobby', text, id: text });
  const ack = await alice.waitFor(() => alice.events.find((e) => e.id === text), 3000, `the ack of "${text}"`);
  const said = (c: { events: Ev[] }) => () => c.events.find((e) => e.type === 'message' && e.text === text);
  await others.bob.waitFor(said(others.bob), 3000, `bob reading "${text}"`);
  await others.carol.waitFor(said(others.carol), 3000, `carol reading "${text}"`);
  await lineLike(others.nc, new RegExp(`^\\[lobby\\] alice: ${text}$`), 3000);
  return ack;
}

describe('the server refuses what is not an image, before anyone hears of it', () => {
  test('a text file over TCP, WebSocket, an HTTP body sent as image/jpeg and a form: NOT_AN_IMAGE, and the room sees nothing', async () => {
    const server = await h.server(SERVER);
    const alice = await h.json(server, 'alice', ['lobby']);
    const bob = await h.json(server, 'bob', ['lobby']);
    const nc = await h.text(server, 'watcher');
    const carol = await ws(server, 'carol');
    const seqBefore = server.hub.rooms.get('lobby')!.seq;

    const overTcp = await post(alice, NOTES, { room: 'lobby', name: 'notes.txt' });
    expect(overTcp).toEqual({ type: 'error', id: expect.any(String), code: 'NOT_AN_IMAGE', message: REFUSAL('notes.txt') });
    const empty = await post(alice, Buffer.alloc(0), { room: 'lobby', name: 'empty.jpg' });
    expect(empty).toMatchObject({ type: 'error', code: 'NOT_AN_IMAGE', message: REFUSAL('empty.jpg').replace('"empty.jpg"', '"empty.jpg" (0 bytes)') });

    carol.send({ type: 'image', room: 'lobby', name: 'notes.txt', size: NOTES.length, id: 'w1' });
    carol.ws.send(NOTES);
    const overWs = await carol.waitEvent((e) => e.id === 'w1');
    expect(overWs).toEqual({ type: 'error', id: 'w1', code: 'NOT_AN_IMAGE', message: REFUSAL('notes.txt') });

    const raw = await postRaw(server, NOTES, 'notes.txt');
    expect([raw.status, raw.json]).toEqual([415, { error: { code: 'NOT_AN_IMAGE', message: REFUSAL('notes.txt') } }]);
    const form = await postForm(server, NOTES, 'notes.txt');
    expect([form.status, form.json]).toEqual([415, { error: { code: 'NOT_AN_IMAGE', message: REFUSAL('notes.txt') } }]);

    // The refusal takes no room sequence number and no image id, and nothing is kept to serve.
    const ack = await barrier(alice, { bob, carol, nc }, 'after-the-notes');
    expect(ack.seq).toBe(seqBefore + 1);
    expect(bob.events.filter((e) => e.type === 'image')).toEqual([]);
    expect(carol.events.filter((e) => e.type === 'image')).toEqual([]);
    expect(alice.events.filter((e) => e.type === 'image' || e.type === 'ack' && e.image !== undefined)).toEqual([]);
    expect(nc.lines.filter((l) => /posted image/.test(l))).toEqual([]);
    expect(server.hub.stats.images).toBe(0);
    expect((await get(server.httpPort, '/api/images/1')).status).toBe(404);
    expect((await get(server.httpPort, '/api/tasks/1')).status).toBe(404);
    for (const m of [overTcp, empty, overWs, raw.json.error, form.json.error]) expect(m.message).not.toMatch(LIBRARY);
  });

  test('a refused post leaves the stream in step: an image right after it in the same write goes through', async () => {
    const server = await h.server(SERVER);
    const alice = await h.json(server, 'alice', ['lobby']);
    const bob = await h.json(server, 'bob', ['lobby']);
    const png = await drawn('png');
    alice.write(Buffer.concat([imageFrame({ name: 'notes.txt', id: 'n' }, NOTES), imageFrame({ name: 'dot.png', id: 'p' }, png)]));
    const answers = await alice.waitFor(() => {
      const got = alice.events.filter((e) => e.id === 'n' || e.id === 'p');
      return got.length === 2 && got;
    }, 3000, 'both answers');
    expect(answers.map((e) => [e.id, e.type, e.code])).toEqual([['n', 'error', 'NOT_AN_IMAGE'], ['p', 'ack', undefined]]);
    // The first image id the server hands out: the refused post took none.
    expect(answers[1].image).toBe(1);
    const seen = await bob.waitEvent((e) => e.type === 'image');
    expect(seen).toMatchObject({ name: 'dot.png', size: png.length, nick: 'alice', image: 1 });
  });

  test('a path in the name is not echoed back: only the file name', async () => {
    const server = await h.server(SERVER);
    const alice = await h.json(server, 'alice', ['lobby']);
    const refused = await post(alice, NOTES, { room: 'lobby', name: '/home/alice/private/notes.txt' });
    expect(refused).toMatchObject({ code: 'NOT_AN_IMAGE', message: REFUSAL('notes.txt') });
  });
});

describe('every accepted format goes through, over every way in', () => {
  const MIME = { jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', avif: 'image/avif', bmp: 'image/bmp' } as const;

  test('JPEG, PNG, GIF, WebP, AVIF and BMP: acked, seen by the room, served back with their type', async () => {
    const server = await h.server(SERVER);
    const alice = await h.json(server, 'alice', ['lobby']);
    const bob = await h.json(server, 'bob', ['lobby']);
    const carol = await ws(server, 'carol');
    const files: [keyof typeof MIME, Buffer][] = [];
    for (const f of ['jpeg', 'png', 'gif', 'webp', 'avif'] as const) files.push([f, await drawn(f)]);
    files.push(['bmp', bmp(3, 2)]);

    for (const [format, bytes] of files) {
      const name = `picture.${format}`;
      const ids: number[] = [];
      const overTcp = await post(alice, bytes, { room: 'lobby', name });
      expect([format, overTcp.type]).toEqual([format, 'ack']);
      ids.push(overTcp.image);

      carol.send({ type: 'image', room: 'lobby', name, size: bytes.length, id: `ws-${format}` });
      carol.ws.send(bytes);
      const overWs = await carol.waitEvent((e) => e.id === `ws-${format}`);
      expect([format, overWs.type]).toEqual([format, 'ack']);
      ids.push(overWs.image);

      // Sent as image/jpeg whatever it is: the bytes decide, not the label.
      const raw = await postRaw(server, bytes, name);
      expect([format, raw.status]).toEqual([format, 202]);
      ids.push(raw.json.image);
      const form = await postForm(server, bytes, name);
      expect([format, form.status]).toEqual([format, 202]);
      ids.push(form.json.image);

      for (const id of ids) {
        await bob.waitFor(() => bob.events.find((e) => e.type === 'image' && e.image === id), 3000, `bob seeing #${id}`);
        const served = await get(server.httpPort, `/api/images/${id}`);
        expect([format, served.status, served.headers['content-type']]).toEqual([format, 200, MIME[format]]);
        expect(served.body.equals(bytes)).toBe(true);
      }
    }
    expect(server.hub.stats.images).toBe(files.length * 4);
  });
});

describe('the clients check the file before uploading it; the server stays the authority', () => {
  test('ChatClient.postImage (a library, it sends what it is given) rejects with the server\'s NOT_AN_IMAGE', async () => {
    const server = await h.server(SERVER);
    const client = new ChatClient({ host: HOST, port: server.port, nick: 'lib', rooms: ['lobby'], reconnect: false, heartbeatMs: 0 });
    try {
      await client.connect();
      const err = await client.postImage({ name: 'notes.txt', bytes: NOTES }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RequestError);
      expect(err).toMatchObject({ code: 'NOT_AN_IMAGE', local: false, message: REFUSAL('notes.txt') });
      const ack = await client.postImage({ name: 'dot.gif', bytes: await drawn('gif') });
      expect(ack.image).toBe(1);
    } finally {
      client.close('done');
    }
  });

  test('/image in the terminal: a text file is refused with a clear line, and nothing is sent', async () => {
    const server = await h.server(SERVER);
    const bob = await h.json(server, 'bob', ['lobby']);
    const notes = path.join(dir, 'notes.txt');
    const disguised = path.join(dir, 'holiday.jpg');
    const real = path.join(dir, 'real.webp');
    await writeFile(notes, NOTES);
    await writeFile(disguised, NOTES);
    await writeFile(real, await drawn('webp'));

    const client = new ChatClient({ host: HOST, port: server.port, nick: 'alice', rooms: ['lobby'], reconnect: false, heartbeatMs: 0 });
    const input = new PassThrough();
    const output = new PassThrough();
    const errors = new PassThrough();
    let out = '';
    let err = '';
    output.on('data', (d: Buffer) => (out += d.toString()));
    errors.on('data', (d: Buffer) => (err += d.toString()));
    const terminal = new Terminal({ client, input, output, errorOutput: errors, interactive: false, style: PLAIN });
    await client.connect();
    const done = terminal.run();
    input.end([`/image ${notes}`, `/image ${disguised}`, `/image ${real}`, ''].join('\n'));
    const status = await done;

    expect(status).toBe(1);
    const lines = err.trimEnd().split('\n').map((l) => l.replace(/^\d\d:\d\d /, ''));
    expect(lines).toEqual([
      `! ${notes} is not a JPEG, PNG, GIF, WebP, BMP or AVIF image: nothing was posted`,
      `! ${disguised} is not a JPEG, PNG, GIF, WebP, BMP or AVIF image: nothing was posted`,
    ]);
    expect(out).toMatch(/\[lobby\] alice posted image #1 real\.webp/);
    const seen = await bob.waitEvent((e) => e.type === 'image');
    expect(seen).toMatchObject({ name: 'real.webp', image: 1 });
    expect(server.hub.stats.images).toBe(1);
  });

  describe('roomcast post (the built binary)', () => {
    const children: ChildProcessWithoutNullStreams[] = [];
    afterEach(() => {
      for (const p of children.splice(0)) if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
    });

    function roomcast(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
      const proc = spawn(process.execPath, [path.resolve('bin/roomcast'), ...args], { env: CLI_ENV });
      children.push(proc);
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d: Buffer) => (stdout += d));
      proc.stderr.on('data', (d: Buffer) => (stderr += d));
      return new Promise((resolve) => proc.on('close', (status) => resolve({ status, stdout, stderr })));
    }

    test('--image with a text file: exit 2 before connecting, saying why', async () => {
      const server = await h.server(SERVER);
      const notes = path.join(dir, 'notes.jpg');
      await writeFile(notes, NOTES);
      const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', notes, '--timeout', '5000');
      expect([run.status, run.stderr, run.stdout]).toEqual([2, `roomcast: ${notes} is not a JPEG, PNG, GIF, WebP, BMP or AVIF image: nothing was posted\n`, '']);
      expect(server.stats.accepted).toBe(0);
    });

    test('--image with a BMP: posted (the server takes it), and the answer says the bot is off', async () => {
      const server = await h.server({ ...SERVER, classifier: { off: 'not needed here' } });
      const file = path.join(dir, 'small.bmp');
      await writeFile(file, bmp(4, 4));
      const run = await roomcast('post', `127.0.0.1:${server.port}`, '--room', 'lab', '--image', file, '--timeout', '5000');
      expect([run.status, run.stderr]).toEqual([1, 'roomcast: small.bmp was posted as #1, but the classifier bot is off: not needed here\n']);
      expect(server.hub.stats.images).toBe(1);
    });
  });
});

describe("the classifier's refusals say what is wrong, not which library found out", () => {
  test('a text file, a BMP, a JPEG that is only a signature, a JPEG cut in half', async () => {
    const refusal = (bytes: Buffer, name: string) =>
      preprocess(bytes, undefined, name).then(
        () => ({ code: 'none', message: 'accepted' }),
        (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
      );
    const jpeg = await drawn('jpeg');
    const cases: [Buffer, string, string][] = [
      [NOTES, 'notes.txt', 'notes.txt is not an image the classifier can read (JPEG, PNG, WebP, GIF, AVIF, TIFF)'],
      [bmp(3, 2), 'scan.bmp', 'scan.bmp is a BMP image, which the classifier cannot read: convert it to JPEG or PNG to have it labelled'],
      [Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), NOTES]), 'fake.jpg', 'fake.jpg could not be decoded as JPEG: the file is damaged or cut off'],
      [jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'half.jpg', 'half.jpg could not be decoded as JPEG: the file is damaged or cut off'],
    ];
    for (const [bytes, name, message] of cases) expect(await refusal(bytes, name)).toEqual({ code: 'IMAGE_INVALID', message });
  });

  test('a file that is not a model', async () => {
    const model = path.join(dir, 'not-a-model.onnx');
    const labels = path.join(dir, 'labels.txt');
    await writeFile(model, NOTES);
    await writeFile(labels, Array.from({ length: 1000 }, (_, i) => `class ${i}`).join('\n') + '\n');
    const err = (await ImageClassifier.load({ model, labels }).then(() => null, (e: unknown) => e)) as { code: string; message: string } | null;
    expect(err).toMatchObject({ code: 'MODEL_INVALID' });
    expect(err!.message).toMatch(new RegExp(`^${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} could not be loaded as an ONNX image classifier \\(.*\\)\\. Check the file, or install the default model with: roomcast models pull$`, 's'));
    expect(err!.message).not.toMatch(/onnxruntime/i);
  });
});

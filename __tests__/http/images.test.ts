/**
 * Posting images over HTTP with a real classifier (one worker, on the tiny model the tests
 * make, helpers/tiny-model.ts): a raw body and a multipart form both get 202 and a task, the
 * task ends with the labels of the picture drawn here, the room sees the post and the answer,
 * and the bytes are served back for the web page.
 */
import { randomBytes } from 'node:crypto';
import type { RoomcastServer } from '../../src/server.js';
import { Harness, type LineClient } from '../helpers/clients.js';
import { BLUE, solid, TINY_MODEL_NAME, useTinyModel } from '../helpers/tiny-model.js';
import { get, metrics, request, type HttpAnswer } from '../helpers/web.js';

const tiny = useTinyModel();
const h = new Harness();
let server: RoomcastServer;
let nc: LineClient;
/** A blue JPEG: the tiny model labels it "blue" (class 2). */
let picture: Buffer;

beforeAll(async () => {
  picture = await solid(BLUE, { format: 'jpeg' });
  // greetDelay: a request whose first bytes come later is taken for a silent text client, and
  // the harness's 30 ms is too little for an HTTP client on a loaded machine.
  server = await h.server({ classifier: { pool: { model: tiny.model, labels: tiny.labels, size: 1 } }, connection: { maxImageBytes: 1 << 20, greetDelay: 1000 } });
  // Until the model is loaded the server is not ready (chat already works).
  const early = await get(server.port, '/readyz');
  if (early.status === 503) expect(early.json).toMatchObject({ status: 'not ready', classifier: { state: 'loading' } });
  nc = await h.text(server, 'watcher');
  const deadline = Date.now() + 30_000;
  while ((await get(server.port, '/readyz')).status !== 200) {
    if (Date.now() > deadline) throw new Error('the classifier never got ready');
    await new Promise((r) => setTimeout(r, 50));
  }
}, 40_000);
afterAll(() => h.cleanup());

async function pollTask(id: string, timeoutMs = 20_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await get(server.port, `/api/tasks/${id}`);
    expect(r.status).toBe(200);
    if (r.json.status !== 'pending') return r.json;
    if (Date.now() > deadline) throw new Error(`task ${id} still pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function multipart(parts: { name: string; value: string | Buffer; filename?: string; type?: string }[]): { body: Buffer; type: string } {
  const boundary = `----roomcast${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `Content-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    const type = p.type ? `\r\nContent-Type: ${p.type}` : '';
    chunks.push(Buffer.from(`--${boundary}\r\n${disp}${type}\r\n\r\n`), Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

test('a raw image body: 202 with a task, then done with the right labels; the room sees both', async () => {
  const before = await metrics(server.port);
  const r = await request(server.port, {
    method: 'POST',
    path: '/api/rooms/lobby/images?name=blue.jpeg',
    headers: { 'Content-Type': 'image/jpeg' },
    body: picture,
  });
  expect(r.status).toBe(202);
  expect(r.json).toEqual({ id: expect.any(String), status: 'pending', room: 'lobby', seq: expect.any(Number), image: Number(r.json.id), name: 'blue.jpeg', nick: 'web' });
  expect(r.headers.location).toBe(`/api/tasks/${r.json.id}`);

  const task = await pollTask(r.json.id);
  expect(task).toMatchObject({ id: r.json.id, status: 'done', room: 'lobby', name: 'blue.jpeg', nick: 'web', model: TINY_MODEL_NAME });
  expect(task.labels.map((l: { label: string }) => l.label)).toEqual(['blue', 'green', 'red']);
  expect(task.labels[0]).toMatchObject({ index: 2, label: 'blue' });
  await nc.waitLine(new RegExp(`^\\[lobby\\] web posted image #${r.json.id} blue\\.jpeg \\(`));
  await nc.waitLine(new RegExp(`^\\[lobby\\] classifier: #${r.json.id} blue\\.jpeg \u2192 blue `));

  const bytes = await get(server.port, `/api/images/${r.json.id}`);
  expect(bytes.status).toBe(200);
  expect(bytes.headers['content-type']).toBe('image/jpeg');
  expect(bytes.body.equals(picture)).toBe(true);

  const after = await metrics(server.port);
  const done = 'roomcast_classifier_jobs_total{result="done"}';
  expect(after.get(done)).toBe(before.get(done)! + 1);
  expect(after.get('roomcast_classifier_job_seconds_count{result="done"}')).toBeGreaterThanOrEqual(1);
  expect(after.get('roomcast_images_posted_total')).toBe(before.get('roomcast_images_posted_total')! + 1);
  expect(after.get('roomcast_classifier_state{state="ready"}')).toBe(1);
});

test('a multipart form (field "image", with "nick" and a filename): 202, then done with the right labels', async () => {
  const form = multipart([
    { name: 'nick', value: 'birdwatch' },
    { name: 'image', value: picture, filename: 'C:\\photos\\bird.jpg', type: 'image/jpeg' },
  ]);
  const r = await request(server.port, { method: 'POST', path: '/api/rooms/lobby/images', headers: { 'Content-Type': form.type }, body: form.body });
  expect(r.status).toBe(202);
  expect(r.json).toMatchObject({ status: 'pending', nick: 'birdwatch', name: 'bird.jpg' });
  const task = await pollTask(r.json.id);
  expect(task.status).toBe('done');
  expect(task.labels[0]).toMatchObject({ index: 2, label: 'blue' });
  await nc.waitLine(new RegExp(`^\\[lobby\\] birdwatch posted image #${r.json.id} bird\\.jpg`));
});

test('what cannot be posted is refused before the classifier sees it', async () => {
  const post = (headers: Record<string, string>, body: Buffer | string, query = ''): Promise<HttpAnswer> =>
    request(server.port, { method: 'POST', path: `/api/rooms/lobby/images${query}`, headers, body });
  const jobs = server.pool!.stats().jobsDone + server.pool!.stats().jobsFailed;

  const text = await post({ 'Content-Type': 'text/plain' }, 'hello');
  expect(text.status).toBe(415);
  expect(text.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  const empty = await post({ 'Content-Type': 'image/png' }, '');
  expect(empty.json.error.code).toBe('NO_IMAGE');
  const noField = multipart([{ name: 'photo', value: picture, filename: 'x.jpg' }]);
  const nf = await post({ 'Content-Type': noField.type }, noField.body);
  expect(nf.status).toBe(400);
  expect(nf.json.error.code).toBe('NO_IMAGE');
  const noBoundary = await post({ 'Content-Type': 'multipart/form-data' }, 'x');
  expect(noBoundary.json.error.code).toBe('BAD_MULTIPART');
  const tooBig = multipart([{ name: 'image', value: Buffer.alloc((1 << 20) + 1), filename: 'big.jpg' }]);
  const big = await post({ 'Content-Type': tooBig.type }, tooBig.body);
  expect(big.status).toBe(413);
  expect(big.json.error.code).toBe('BODY_TOO_LARGE');
  const taken = await post({ 'Content-Type': 'image/jpeg' }, picture, '?nick=watcher');
  expect(taken.status).toBe(409);
  const nowhere = await request(server.port, { method: 'POST', path: '/api/rooms/empty-room/images', headers: { 'Content-Type': 'image/jpeg' }, body: picture });
  expect(nowhere.status).toBe(404);
  expect(nowhere.json.error.code).toBe('NO_SUCH_ROOM');

  // A JPEG's signature and then no JPEG: accepted (only the worker can tell), and the task says why it failed.
  const junk = await post({ 'Content-Type': 'image/jpeg' }, Buffer.from('\xff\xd8\xffnot really a jpeg', 'latin1'));
  expect(junk.status).toBe(202);
  const task = await pollTask(junk.json.id);
  expect(task).toMatchObject({ status: 'failed', error: { code: expect.any(String), message: expect.any(String) } });
  expect(server.pool!.stats().jobsDone + server.pool!.stats().jobsFailed).toBe(jobs + 1);
  const served = await get(server.port, `/api/images/${junk.json.id}`);
  expect(served.headers['content-type']).toBe('image/jpeg');
  expect(served.headers['content-disposition']).toMatch(/^inline;/);
});

/**
 * A server with no classifier bot at all: an image posted over any transport fails its task at
 * once with CLASSIFIER_OFF, rather than staying pending until the task times out (which is
 * what a post over chat did while only the HTTP route failed its task itself).
 */
import { WEB_DEFAULTS } from '../../src/http/context.js';
import type { RoomcastServer } from '../../src/server.js';
import { Harness } from '../helpers/clients.js';
import { drawn } from '../helpers/image-bytes.js';
import { labelsFor, post } from '../helpers/images.js';
import { get, request, WsClient } from '../helpers/web.js';

// HTTP and WebSocket on their own port, so a slow hello is never taken for a netcat user's.
const SERVER = { connection: { greetDelay: 500 }, web: { ...WEB_DEFAULTS, port: 0 } };

const h = new Harness();
const sockets: WsClient[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.close();
  await h.cleanup();
});

async function taskOf(server: RoomcastServer, image: number): Promise<unknown> {
  const answer = await get(server.httpPort, `/api/tasks/${image}`);
  expect(answer.status).toBe(200);
  return answer.json;
}

/** Posts the bytes as the body of POST /api/rooms/lobby/images. */
function postRaw(server: RoomcastServer, png: Buffer, query: string): ReturnType<typeof request> {
  return request(server.httpPort, { method: 'POST', path: `/api/rooms/lobby/images?${query}`, headers: { 'Content-Type': 'image/png' }, body: png });
}

const FAILED = { status: 'failed', error: { code: 'CLASSIFIER_OFF', message: expect.any(String) } };

test('over TCP JSON and WebSocket, the task of a post is failed at once', async () => {
  const server = await h.server(SERVER);
  expect(server.bot).toBeNull();
  const png = await drawn('png');

  const alice = await h.json(server, 'alice', ['lobby']);
  const overTcp = await post(alice, png, { room: 'lobby', name: 'red.png' });
  expect(overTcp).toMatchObject({ type: 'ack', image: expect.any(Number) });
  expect(await taskOf(server, overTcp.image as number)).toMatchObject(FAILED);

  const carol = await WsClient.registered(server.httpPort, 'carol', ['lobby']);
  sockets.push(carol);
  carol.send({ type: 'image', room: 'lobby', name: 'red.png', size: png.length, id: 'w1' });
  carol.ws.send(png);
  const overWs = await carol.waitEvent((e) => e.id === 'w1');
  expect(overWs).toMatchObject({ type: 'ack', image: expect.any(Number) });
  expect(await taskOf(server, overWs.image as number)).toMatchObject(FAILED);
});

test('over HTTP, a raw body and a form both answer with the failed task', async () => {
  const server = await h.server(SERVER);
  const png = await drawn('png');
  const raw = await postRaw(server, png, 'name=red.png&nick=webby');
  expect(raw.status).toBe(202);
  expect(raw.json).toMatchObject({ status: 'failed' });
  expect(await taskOf(server, (raw.json as { image: number }).image)).toMatchObject(FAILED);

  const boundary = '----roomcastnobot';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="red.png"\r\nContent-Type: image/png\r\n\r\n`),
    png,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const form = await request(server.httpPort, {
    method: 'POST',
    path: '/api/rooms/lobby/images',
    headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
    body,
  });
  expect(form.status).toBe(202);
  expect(await taskOf(server, (form.json as { image: number }).image)).toMatchObject(FAILED);
});

test('a bot that is off answers at once: over chat after the poster\'s ack, over HTTP already in the 202', async () => {
  const server = await h.server({ ...SERVER, classifier: { off: 'not needed here' } });
  const png = await drawn('png');
  const alice = await h.json(server, 'alice', ['lobby']);
  const ack = await post(alice, png, { room: 'lobby', name: 'red.png' });
  const image = ack.image as number;
  await labelsFor(alice, image);
  const order = alice.events.filter((e) => (e.type === 'ack' || e.type === 'labels') && e.image === image).map((e) => e.type);
  expect(order).toEqual(['ack', 'labels']);

  const raw = await postRaw(server, png, 'name=red.png');
  expect(raw.status).toBe(202);
  expect(raw.json).toMatchObject({ status: 'failed' });
  expect(await taskOf(server, (raw.json as { image: number }).image)).toMatchObject({
    status: 'failed',
    error: { code: 'CLASSIFIER_OFF', message: 'the classifier bot is off: not needed here' },
  });
});

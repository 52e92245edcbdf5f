/**
 * ChatClient.postImage and waitForLabels, against a real server (with the bot off, so answers
 * come at once and no model is needed) and against a scripted one that repeats itself.
 */
import net from 'node:net';
import { ChatClient, RequestError, TimeoutError } from '../../src/client/chat-client.js';
import type { LabelsEvent, ServerEvent } from '../../src/protocol/events.js';
import { Harness, HOST, until } from '../helpers/clients.js';

const h = new Harness();
const clients: ChatClient[] = [];

function client(port: number, nick: string, rooms = ['lab']): ChatClient {
  const c = new ChatClient({ host: HOST, port, nick, rooms, reconnect: false, heartbeatMs: 0 });
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await h.cleanup();
});

const OFF = 'off for this test';

describe('against a real server', () => {
  test('postImage resolves with the ack and its image id; waitForLabels gets the answer even when it came first', async () => {
    const server = await h.server({ classifier: { off: OFF } });
    const alice = client(server.port, 'alice');
    await alice.connect();
    expect(alice.maxImageBytes).toBe(8 << 20);
    const ack = await alice.postImage({ name: 'cat.jpg', bytes: Buffer.from('GIF89a, not really a cat') });
    expect(ack).toMatchObject({ type: 'ack', room: 'lab', image: 1, seq: expect.any(Number) });
    // The bot answered in the same breath as the ack: before anyone could start waiting.
    const labels = await alice.waitForLabels(ack.image!, 1000);
    expect(labels).toMatchObject({ type: 'labels', room: 'lab', image: 1, name: 'cat.jpg', error: { code: 'CLASSIFIER_OFF' } });
  });

  test('a big upload goes out whole while the socket pushes back; lines sent meanwhile follow it, not inside it', async () => {
    const server = await h.server({ classifier: { off: OFF }, connection: { floodRate: 0 } });
    // Watch what the client asks its socket to hold: it must wait for 'drain', not pile 6 MiB on.
    let pushedBack = 0;
    let mostBuffered = 0;
    const alice = new ChatClient({
      host: HOST,
      port: server.port,
      nick: 'alice',
      rooms: ['lab'],
      reconnect: false,
      heartbeatMs: 0,
      openSocket: (a) => {
        const socket = net.connect(a);
        const write = socket.write.bind(socket) as (chunk: string | Uint8Array) => boolean;
        socket.write = ((chunk: string | Uint8Array) => {
          const ok = write(chunk);
          if (!ok) pushedBack++;
          mostBuffered = Math.max(mostBuffered, socket.writableLength);
          return ok;
        }) as typeof socket.write;
        return socket;
      },
    });
    clients.push(alice);
    const bob = client(server.port, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
    const seen: ServerEvent[] = [];
    bob.on('event', (e) => seen.push(e));

    const bytes = Buffer.alloc(6 << 20);
    for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(i * 2654435761 >>> 0, i); // no newlines to lean on
    bytes.set([0xff, 0xd8, 0xff]); // an image's signature: the server refuses bytes without one
    const posting = alice.postImage({ name: 'big.png', bytes });
    const said = Promise.all([alice.say('one'), alice.say('two')]);
    const ping = alice.request({ type: 'ping' });
    const [ack, [one, two]] = await Promise.all([posting, said, ping]);
    // The bot's answer (at once, it is off) may come between; the messages come after the image.
    expect(pushedBack).toBeGreaterThan(0);
    expect(mostBuffered).toBeLessThan(256 * 1024);
    expect(one.seq).toBeGreaterThan(ack.seq);
    expect(two.seq).toBe(one.seq + 1);

    await until(() => seen.filter((e) => e.type === 'message').length === 2, 5000, 'both messages');
    const image = seen.findIndex((e) => e.type === 'image');
    expect(seen[image]).toMatchObject({ name: 'big.png', size: bytes.length, nick: 'alice' });
    expect(seen.findIndex((e) => e.type === 'message')).toBeGreaterThan(image);
    expect(seen.filter((e) => e.type === 'message').map((e) => (e as { text: string }).text)).toEqual(['one', 'two']);
  });

  test("an image over the server's advertised limit is refused before upload, with the server's code", async () => {
    const server = await h.server({ classifier: { off: OFF }, connection: { maxImageBytes: 1000 } });
    const alice = client(server.port, 'alice');
    await alice.connect();
    expect(alice.maxImageBytes).toBe(1000);
    const err = await alice.postImage({ name: 'big.jpg', bytes: Buffer.alloc(1001, 1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err).toMatchObject({ code: 'IMAGE_TOO_LARGE', local: true, message: expect.stringContaining('1001 bytes; the limit is 1000 bytes') });
    // Nothing reached the server, and the connection is as good as before.
    await alice.say('still fine');
    expect(server.hub.stats.images).toBe(0);
  });

  test('waitForLabels gives up with a TimeoutError when no bot answers, and fails when the client closes', async () => {
    const server = await h.server(); // no bot at all
    const alice = client(server.port, 'alice');
    await alice.connect();
    const ack = await alice.postImage({ name: 'x.jpg', bytes: Buffer.from('GIF89a') });
    await expect(alice.waitForLabels(ack.image!, 100)).rejects.toBeInstanceOf(TimeoutError);
    const waiting = alice.waitForLabels(ack.image!, 10_000);
    alice.close('bye');
    await expect(waiting).rejects.toThrow(/closed .* before the answer to image #1 came/);
  });
});

describe('against a scripted server', () => {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  let port = 0;

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  test('image and labels events are deduplicated by seq like messages, history replays included', async () => {
    const image = { type: 'image', room: 'lab', seq: 3, nick: 'bob', image: 7, name: 'cat.jpg', size: 10, time: 0 };
    const labels: LabelsEvent = {
      type: 'labels',
      room: 'lab',
      seq: 4,
      nick: 'classifier',
      image: 7,
      name: 'cat.jpg',
      time: 0,
      labels: [{ index: 281, label: 'tabby', score: 0.9 }],
    };
    server = net.createServer((socket) => {
      sockets.add(socket);
      const send = (e: object): void => void socket.write(JSON.stringify(e) + '\n');
      socket.once('data', () => {
        send({ type: 'welcome', nick: 'alice', server: 'fake', version: '0', rooms: ['lab'], limits: {} });
        send({ type: 'joined', room: 'lab', nick: 'alice', self: true, members: ['alice', 'bob'], seq: 3, topic: '' });
        send({ type: 'history', room: 'lab', messages: [image], first: 1, last: 3, missed: 0 });
        send(image); // again, live
        send({ type: 'history', room: 'lab', messages: [image, labels], first: 1, last: 4, missed: 0 });
        send(labels); // and the answer again
        send({ type: 'notice', text: 'end of script' });
      });
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    port = (server.address() as net.AddressInfo).port;

    const alice = client(port, 'alice');
    const events: ServerEvent[] = [];
    alice.on('event', (e) => events.push(e));
    await alice.connect();
    await until(() => events.some((e) => e.type === 'notice'), 3000, 'the script');
    const roomEvents = events.flatMap((e) => (e.type === 'history' ? e.messages : [e])).filter((e) => e.type === 'image' || e.type === 'labels');
    expect(roomEvents.map((e) => `${e.type} ${e.seq}`)).toEqual(['image 3', 'labels 4']);
    // The answer came in a history replay; it is there for whoever waits for it.
    expect(await alice.waitForLabels(7, 100)).toEqual(labels);
    expect(alice.rooms.get('lab')!.lastSeq).toBe(4);
  });
});

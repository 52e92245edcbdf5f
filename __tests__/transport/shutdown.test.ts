import net from 'node:net';
import { Harness, HOST, until } from '../helpers/clients.js';

const h = new Harness();
afterEach(() => h.cleanup());

const BYE_TEXT = '*** Disconnected: The server is shutting down. Reconnect when it is back.';
const BYE_JSON = { type: 'bye', code: 'SHUTTING_DOWN', reason: 'The server is shutting down. Reconnect when it is back.' };

test('stop() tells every client SHUTTING_DOWN in its own format, closes them, and stops listening', async () => {
  const server = await h.server({ shutdownTimeout: 2000, connection: { greetDelay: 10_000 } });
  const port = server.port;
  const t = await h.raw(server);
  t.send('hello'); // a first line: text mode at once despite the long greet delay
  await t.waitLine(/^\*\*\* You joined \[lobby\]/);
  const j = await h.json(server, 'jay');
  const j2 = await h.json(server, 'kay', ['dev']);
  const undecided = await h.raw(server); // still waiting for its first line
  await until(() => server.connections.size === 4, 2000, 'four connections');

  const t0 = Date.now();
  await server.stop();
  const took = Date.now() - t0;
  expect(took).toBeLessThan(1000);

  for (const c of [t, j, j2, undecided]) await c.waitClosed();
  expect(t.lines.at(-1)).toBe(BYE_TEXT);
  expect(undecided.lines).toEqual([BYE_TEXT]);
  expect(j.events.at(-1)).toEqual(BYE_JSON);
  expect(j2.events.at(-1)).toEqual(BYE_JSON);
  expect(j2.ofType('bye')).toHaveLength(1);
  expect(server.connections.size).toBe(0);
  expect(server.hub.sessions.size).toBe(0);

  await expect(
    new Promise((resolve, reject) => net.connect(port, HOST).on('connect', resolve).on('error', reject)),
  ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});

test('a client that neither reads nor closes is cut when the shutdown timeout runs out', async () => {
  const server = await h.server({ shutdownTimeout: 300, connection: { lingerMs: 10_000 } });
  const ok = await h.json(server, 'ok');
  const stuck = await h.raw(server, { allowHalfOpen: true }); // never answers the server's FIN
  stuck.send('hi');
  await ok.waitEvent((e) => e.type === 'message' && e.text === 'hi');
  stuck.socket.pause();

  const t0 = Date.now();
  await server.stop();
  const took = Date.now() - t0;
  expect(took).toBeGreaterThanOrEqual(280);
  expect(took).toBeLessThan(1500);
  expect(server.connections.size).toBe(0);
  expect(server.hub.sessions.size).toBe(0);
  await ok.waitClosed();
  expect(ok.events.at(-1)).toEqual(BYE_JSON);
  // It was told too, even if it does not read it until later.
  stuck.socket.resume();
  await stuck.waitLine(BYE_TEXT);
});

test('stop() is idempotent and resolves promptly with no clients', async () => {
  const server = await h.server();
  const a = server.stop();
  const b = server.stop();
  expect(a).toBe(b);
  await a;
});

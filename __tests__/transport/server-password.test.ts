/**
 * A server with a password (--password-file), against a real server on port 0: every transport
 * must give it before anything else (text /pass, the JSON and WebSocket hello, HTTP Basic or
 * Bearer), and wrong guesses are throttled per address, the attacker locked out while everyone
 * else comes in and chats on.
 */
import { FailureThrottle } from '../../src/auth/throttle.js';
import { Harness, HOST, JsonClient, type Ev } from '../helpers/clients.js';
import { WsClient } from '../helpers/web.js';

const SECRET = 'correct horse battery staple';
const h = new Harness();
afterEach(() => h.cleanup());

const withPassword = () => h.server({ hub: { serverPassword: SECRET } });

test('text mode: told the server needs a password, nothing else goes through, then /pass lets it in', async () => {
  const server = await withPassword();
  const c = await h.raw(server);
  await c.waitLine('*** This server needs a password: type /pass PASSWORD');
  c.send('hello everyone');
  await c.waitLine(/^! PASSWORD_REQUIRED: This server needs a password: type \/pass PASSWORD/);
  c.send('/pass guess');
  await c.waitLine(/^! PASSWORD_WRONG: That is not the server password/);
  c.send(`/pass ${SECRET}`);
  await c.waitLine(/^\*\*\* Welcome to roomcast, guest1!/);
  c.send('/pass again');
  await c.waitLine('*** You are in already: the server password is given once, before anything else.');
});

test('JSON and WebSocket: the hello carries it; without it or wrong, an error and no session', async () => {
  const server = await withPassword();
  const none = h.track(await JsonClient.open(server.port, { nick: 'ann' }));
  expect(await none.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'PASSWORD_REQUIRED' });
  none.sendJson({ type: 'hello', nick: 'ann', serverPassword: 'nope' });
  expect(await none.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'PASSWORD_WRONG' });
  none.sendJson({ type: 'message', text: 'let me in' });
  expect(await none.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'PASSWORD_REQUIRED' });
  none.sendJson({ type: 'hello', nick: 'ann', serverPassword: SECRET });
  expect(await none.waitEvent((e) => e.type === 'welcome')).toMatchObject({ nick: 'ann' });

  const ws = await WsClient.open(server.port);
  ws.ws.send(JSON.stringify({ type: 'hello', nick: 'bob' }));
  expect(await ws.waitEvent((e: Ev) => e.type === 'error')).toMatchObject({ code: 'PASSWORD_REQUIRED' });
  ws.ws.send(JSON.stringify({ type: 'hello', nick: 'bob', serverPassword: SECRET }));
  expect(await ws.waitEvent((e: Ev) => e.type === 'welcome')).toMatchObject({ nick: 'bob' });
  ws.ws.close();

  // Or in the WebSocket's URL, for a client that cannot add a field to its hello.
  const inUrl = await WsClient.open(server.port, { path: `/ws?password=${encodeURIComponent(SECRET)}` });
  inUrl.ws.send(JSON.stringify({ type: 'hello', nick: 'cat' }));
  expect(await inUrl.waitEvent((e: Ev) => e.type === 'welcome' || e.type === 'error')).toMatchObject({ type: 'welcome', nick: 'cat' });
  inUrl.ws.close();
  const wrongUrl = await WsClient.open(server.port, { path: '/ws?password=nope' });
  wrongUrl.ws.send(JSON.stringify({ type: 'hello', nick: 'dan' }));
  expect(await wrongUrl.waitEvent((e: Ev) => e.type === 'welcome' || e.type === 'error')).toMatchObject({ code: 'PASSWORD_WRONG' });
  wrongUrl.ws.close();
});

test('HTTP: the API needs Basic or Bearer; the health check and the page do not', async () => {
  const server = await withPassword();
  const url = `http://${HOST}:${server.port}`;
  const bare = await fetch(`${url}/api/rooms`);
  expect(bare.status).toBe(401);
  expect(bare.headers.get('www-authenticate')).toMatch(/^Basic realm="roomcast"/);
  expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('PASSWORD_REQUIRED');
  const basic = `Basic ${Buffer.from(`anyone:${SECRET}`).toString('base64')}`;
  expect((await fetch(`${url}/api/rooms`, { headers: { Authorization: basic } })).status).toBe(200);
  expect((await fetch(`${url}/api/rooms`, { headers: { Authorization: `Bearer ${SECRET}` } })).status).toBe(200);
  const wrong = await fetch(`${url}/api/rooms`, { headers: { Authorization: 'Bearer wrong' } });
  expect([wrong.status, ((await wrong.json()) as { error: { code: string } }).error.code]).toEqual([401, 'PASSWORD_WRONG']);
  expect((await fetch(`${url}/metrics`)).status).toBe(401);
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
  expect((await fetch(`${url}/`)).status).toBe(200);
});

test('10,000 wrong passwords from one address: locked out, with the wait; another address comes in and chats meanwhile', async () => {
  // Flood control off: it would pace the guesses at 20 a second (a defence of its own) and the
  // test is of the password throttle, which answers every guess at once.
  // A long greeting delay: on a loaded machine the attacker's first line must not come after
  // it, or its connection would be taken for a silent text client.
  const server = await h.server({ hub: { serverPassword: SECRET }, maxPerAddress: 8, connection: { floodRate: 0, greetDelay: 5000 } });
  const attacker = h.track(await JsonClient.open(server.port, null));
  const N = 10_000;
  let sent = 0;
  // In bursts, so the server reads, answers and keeps serving others between them.
  const attack = (async () => {
    while (sent < N) {
      const burst = Math.min(500, N - sent);
      attacker.write(Array.from({ length: burst }, (_, i) => JSON.stringify({ type: 'hello', nick: 'mallory', serverPassword: `guess${sent + i}` }) + '\n').join(''));
      sent += burst;
      await new Promise((r) => setImmediate(r));
    }
  })();
  // Someone else, from another loopback address, during the attack.
  const ann = h.track(await JsonClient.open(server.port, { nick: 'ann', serverPassword: SECRET }, { localAddress: '127.0.0.2' }));
  expect(await ann.waitEvent((e) => e.type === 'welcome' || e.type === 'error', 5000)).toMatchObject({ type: 'welcome' });
  const bob = h.track(await JsonClient.open(server.port, { nick: 'bob', serverPassword: SECRET }, { localAddress: '127.0.0.2' }));
  await bob.waitEvent((e) => e.type === 'history', 5000);
  ann.sendJson({ type: 'message', text: 'still here' });
  expect(await bob.waitEvent((e) => e.type === 'message', 5000)).toMatchObject({ text: 'still here' });
  await attack;
  await attacker.waitFor(() => attacker.events.length === N, 15_000, 'an answer to every guess');
  const codes = new Map<string, number>();
  for (const e of attacker.events) codes.set(e.code as string, (codes.get(e.code as string) ?? 0) + 1);
  // A few wrong answers, then locked out: the rest were refused without being looked at.
  expect(codes.get('PASSWORD_WRONG')).toBe(5);
  expect(codes.get('LOCKED_OUT')).toBe(N - 5);
  expect(attacker.events.at(-1)!.message).toMatch(/^Too many wrong passwords lately: wait \d+ s before the next try\.$/);
  // Even the right password waits for the lockout to end.
  attacker.sendJson({ type: 'hello', nick: 'mallory', serverPassword: SECRET });
  expect(await attacker.waitFor(() => attacker.events[N], 3000, 'the answer to the right password')).toMatchObject({ code: 'LOCKED_OUT' });
});

describe('FailureThrottle (a stepped clock)', () => {
  test('a few free tries, then lockouts that double up to the ceiling; success starts afresh; memory is bounded', () => {
    let now = 0;
    const t = new FailureThrottle({ free: 2, firstLockMs: 1000, maxLockMs: 4000, maxKeys: 3, now: () => now });
    expect([t.failed('a'), t.failed('a')]).toEqual([0, 0]);
    expect(t.failed('a')).toBe(1000);
    expect(t.wait('a')).toBe(1000);
    now += 1000;
    expect(t.wait('a')).toBe(0);
    expect([t.failed('a'), t.failed('a'), t.failed('a')]).toEqual([2000, 4000, 4000]);
    t.succeeded('a');
    expect([t.wait('a'), t.failed('a')]).toEqual([0, 0]);
    for (const k of ['b', 'c', 'd']) t.failed(k);
    // Four keys seen, three kept: the longest-quiet one ("a") is forgotten.
    expect(t.failed('a')).toBe(0);
  });
});

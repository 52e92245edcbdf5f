/**
 * API tokens against a real server on port 0: the file `roomcast token create` writes is read
 * again when it changes (no restart), a token may be scoped to one room, a revoked one stops
 * working, and only hashes are kept. With a server password, the password still opens the API.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tokenFile } from '../../src/auth/api-tokens.js';
import { WEB_DEFAULTS } from '../../src/http/context.js';
import { Harness, HOST } from '../helpers/clients.js';

const h = new Harness();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tokens-'));
});
afterEach(async () => {
  await h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function call(port: number, method: string, urlPath: string, token?: string, body?: object): Promise<{ status: number; code?: string }> {
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(`http://${HOST}:${port}${urlPath}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
  const json = (await res.json().catch(() => ({}))) as { error?: { code: string } };
  return { status: res.status, ...(json.error ? { code: json.error.code } : {}) };
}

/** Polls until the server has read the file again (it checks it every second). */
async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('--api-token-required: no token, 401; a token made while the server runs works within seconds; a room-scoped one only in its room; a revoked one stops', async () => {
  const file = tokenFile.path(dir);
  const server = await h.server({ apiTokens: { file }, web: { ...WEB_DEFAULTS, apiTokenRequired: true }, hub: { rooms: ['lab'] } });
  const port = server.port;
  expect(await call(port, 'GET', '/api/rooms')).toEqual({ status: 401, code: 'TOKEN_REQUIRED' });
  expect(await call(port, 'GET', '/api/rooms', 'rct_made-up')).toEqual({ status: 401, code: 'TOKEN_INVALID' });
  expect((await call(port, 'GET', '/healthz')).status).toBe(200);

  const everywhere = await tokenFile.create(file, 'dashboard');
  const labOnly = await tokenFile.create(file, 'lab-bot', 'lab');
  expect(everywhere).toMatch(/^rct_[A-Za-z0-9_-]{43}$/);
  // Only hashes are kept.
  const kept = readFileSync(file, 'utf8');
  expect(kept).not.toContain(everywhere.slice(4));
  expect(kept).not.toContain(labOnly.slice(4));
  await until(async () => (await call(port, 'GET', '/api/rooms', everywhere)).status === 200, 'the new token to be taken');

  expect((await call(port, 'POST', '/api/rooms/lobby/messages', everywhere, { text: 'from the dashboard' })).status).toBeLessThan(300);
  expect((await call(port, 'POST', '/api/rooms/lab/messages', labOnly, { text: 'from the lab bot' })).status).toBeLessThan(300);
  expect(await call(port, 'POST', '/api/rooms/lobby/messages', labOnly, { text: 'elsewhere' })).toEqual({ status: 403, code: 'TOKEN_SCOPE' });
  expect(await call(port, 'GET', '/api/rooms', labOnly)).toEqual({ status: 403, code: 'TOKEN_SCOPE' });
  expect((await call(port, 'GET', '/api/rooms/LAB/history', labOnly)).status).toBe(200);

  await tokenFile.revoke(file, 'dashboard');
  await until(async () => (await call(port, 'GET', '/api/rooms', everywhere)).status === 401, 'the revoked token to stop working');
  expect(await call(port, 'GET', '/api/rooms', everywhere)).toEqual({ status: 401, code: 'TOKEN_INVALID' });
  expect((await tokenFile.list(file)).map((t) => [t.name, t.room ?? null, typeof t.revoked])).toEqual([
    ['dashboard', null, 'string'],
    ['lab-bot', 'lab', 'undefined'],
  ]);
});

test('with a server password: a token or the password opens the API; names are checked; a name in use is refused', async () => {
  const file = tokenFile.path(dir);
  const token = await tokenFile.create(file, 'ci');
  const server = await h.server({ apiTokens: { file }, hub: { serverPassword: 'pw' } });
  expect((await call(server.port, 'GET', '/api/rooms', token)).status).toBe(200);
  expect((await call(server.port, 'GET', '/api/rooms', 'pw')).status).toBe(200);
  expect(await call(server.port, 'GET', '/api/rooms', 'nope')).toEqual({ status: 401, code: 'PASSWORD_WRONG' });
  await expect(tokenFile.create(file, 'ci')).rejects.toThrow('there is a token called "ci" already');
  await expect(tokenFile.create(file, 'no spaces')).rejects.toThrow('is not a token name');
  await expect(tokenFile.revoke(file, 'never')).rejects.toThrow('there is no token called "never"');
});

test("an account's own nick and password (HTTP Basic) open the API and post as that nick, even while its owner chats; a wrong one is 401 and throttled", async () => {
  const server = await h.server({ web: { ...WEB_DEFAULTS, apiTokenRequired: true }, connection: { greetDelay: 5000 } });
  const port = server.port;
  const ann = await h.json(server, 'ann');
  ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r' });
  await ann.waitFor(() => ann.events.find((e) => e.id === 'r'), 5000, 'the registration');
  const basic = (user: string, password: string): Record<string, string> => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, 'Content-Type': 'application/json' });
  const post = (headers: Record<string, string>, body: object): Promise<Response> =>
    fetch(`http://${HOST}:${port}/api/rooms/lobby/messages`, { method: 'POST', headers, body: JSON.stringify(body) });

  const ok = await post(basic('ANN', 'a long enough password'), { text: 'from my script' });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ nick: 'ann' });
  const bob = await h.json(server, 'bob');
  // As someone else's nick, an account's password is no key.
  expect((await post(basic('ann', 'a long enough password'), { text: 'x', nick: 'bob' })).status).toBe(409);
  const wrong = await post(basic('ann', 'not it at all'), { text: 'x' });
  expect(wrong.status).toBe(401);
  expect(await wrong.json()).toMatchObject({ error: { code: 'LOGIN_FAILED' } });
  for (let i = 0; i < 5; i++) await post(basic('ann', `guess ${i}`), { text: 'x' });
  const locked = await post(basic('ann', 'a long enough password'), { text: 'x' });
  expect(locked.status).toBe(429);
  expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  // Not an account: the API still wants a token.
  expect((await post(basic('nobody', 'whatever it is'), { text: 'x' })).status).toBe(401);
  expect(ann.events.some((e) => e.type === 'message' && e.text === 'from my script' && e.nick === 'ann')).toBe(true);
});

test('a room with a key (or invite-only) is closed to the open API: its history and posts need a token, scoped to it or not, or an account', async () => {
  const file = tokenFile.path(dir);
  const server = await h.server({ apiTokens: { file } });
  const port = server.port;
  const ann = await h.json(server, 'ann', ['vault']);
  ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r' }, { type: 'message', room: 'vault', text: 'the combination is 1234', id: 'm' });
  await ann.waitFor(() => ann.events.find((e) => e.id === 'm'), 5000, 'the message');
  expect((await call(port, 'GET', '/api/rooms/vault/history')).status).toBe(200);
  ann.sendJson({ type: 'key', key: 'sesame', room: 'vault', id: 'k' });
  await ann.waitFor(() => ann.events.find((e) => e.id === 'k'), 5000, 'the key');

  expect(await call(port, 'GET', '/api/rooms/vault/history')).toEqual({ status: 403, code: 'ROOM_CLOSED' });
  expect(await call(port, 'GET', '/api/rooms/vault/search?q=combination')).toEqual({ status: 403, code: 'ROOM_CLOSED' });
  expect(await call(port, 'POST', '/api/rooms/vault/messages', undefined, { text: 'let me in' })).toEqual({ status: 403, code: 'ROOM_CLOSED' });
  // Other rooms stay open.
  expect((await call(port, 'GET', '/api/rooms/lobby/history')).status).toBe(200);

  const vaultToken = await tokenFile.create(file, 'vault-bot', 'vault');
  const lobbyToken = await tokenFile.create(file, 'lobby-bot', 'lobby');
  await until(async () => (await call(port, 'GET', '/api/rooms/vault/history', vaultToken)).status === 200, 'the new token to be taken');
  // A token of another room opens nothing here.
  expect(await call(port, 'GET', '/api/rooms/vault/history', lobbyToken)).toEqual({ status: 403, code: 'ROOM_CLOSED' });
  const basic = `Basic ${Buffer.from('ann:a long enough password').toString('base64')}`;
  expect((await fetch(`http://${HOST}:${port}/api/rooms/vault/history`, { headers: { Authorization: basic } })).status).toBe(200);
});

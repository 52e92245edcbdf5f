/**
 * Accounts against a real server on port 0: /register claims the nick, nobody else can take it
 * while its owner is away (hello, /nick, the HTTP API), /login and the hello's password prove
 * it, members lists mark who is logged in, and wrong passwords are throttled per address and
 * per account with one answer for a wrong nick and a wrong password. With the SQLite store the
 * account survives a restart, kept as a scrypt hash.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { STORE_FILE } from '../../src/store/sqlite-store.js';
import { Harness, HOST, JsonClient, type Ev } from '../helpers/clients.js';

const h = new Harness();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-accounts-'));
});
afterEach(async () => {
  await h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const errorOf = (c: JsonClient, id: string): Promise<Ev> => c.waitFor(() => c.events.find((e) => e.id === id && (e.type === 'error' || e.type === 'notice')), 5000, `the answer to ${id}`);

test('register, then the nick is kept for its owner: hello, /nick and the API are refused; the password in the hello or /login gets it back', async () => {
  const server = await h.server();
  const ann = await h.json(server, 'ann');
  ann.sendJson({ type: 'register', password: 'short', id: 'r1' });
  expect(await errorOf(ann, 'r1')).toMatchObject({ code: 'PASSWORD_WEAK' });
  ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r2' });
  expect((await errorOf(ann, 'r2')).text).toMatch(/^Registered ann: nobody else can take it now/);
  const bob = await h.json(server, 'bob');
  bob.sendJson({ type: 'who', id: 'w' });
  expect(await bob.waitFor(() => bob.events.find((e) => e.id === 'w'), 3000, 'who')).toMatchObject({ members: ['ann', 'bob'], loggedIn: ['ann'] });
  ann.socket.destroy();
  await bob.waitEvent((e) => e.type === 'parted' && e.nick === 'ann');

  // Away, the nick is still hers.
  const mallory = h.track(await JsonClient.open(server.port, { nick: 'ann' }));
  expect(await mallory.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'NICK_REGISTERED' });
  bob.sendJson({ type: 'nick', nick: 'ANN', id: 'n' });
  expect(await errorOf(bob, 'n')).toMatchObject({ code: 'NICK_REGISTERED' });
  const post = await fetch(`http://${HOST}:${server.port}/api/rooms/lobby/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ nick: 'ann', text: 'hi' }) });
  expect(post.status).toBe(409);

  mallory.sendJson({ type: 'hello', nick: 'ann', password: 'a wrong password' });
  const wrong = await mallory.waitEvent((e) => e.type === 'error');
  mallory.sendJson({ type: 'hello', nick: 'nobody-at-all', password: 'a wrong password' });
  const unknown = await mallory.waitEvent((e) => e.type === 'error');
  // One answer for a wrong password and for a nick nobody registered.
  expect([wrong.code, unknown.code, unknown.message]).toEqual(['LOGIN_FAILED', 'LOGIN_FAILED', wrong.message]);

  const back = h.track(await JsonClient.open(server.port, { nick: 'ann', password: 'a long enough password' }));
  expect(await back.waitEvent((e) => e.type === 'welcome' || e.type === 'error')).toMatchObject({ type: 'welcome', nick: 'ann' });

  // A text user logs in with /login, and takes the nick.
  back.socket.destroy();
  await bob.waitEvent((e) => e.type === 'parted' && e.nick === 'ann');
  const text = await h.text(server);
  text.send('/login ann a long enough password');
  await text.waitLine(/^\*\*\* guest\d+ is now known as ann|^\*\*\* You are now known as ann/);
  await text.waitLine('*** You are logged in as ann.');
  text.send('/who');
  await text.waitLine(/^\*\*\* In \[lobby\] \(2\): \+ann, bob \(\+ logged in\)$/);
  // Someone logged in elsewhere as ann cannot take her connection's nick from under it.
  bob.sendJson({ type: 'login', nick: 'ann', password: 'a long enough password', id: 'l' });
  expect(await errorOf(bob, 'l')).toMatchObject({ code: 'NICK_TAKEN' });
  const guest = await h.json(server, 'guest77');
  guest.sendJson({ type: 'register', password: 'a long enough password', id: 'g' });
  expect(await errorOf(guest, 'g')).toMatchObject({ code: 'REGISTER_GUEST' });
});

test('wrong passwords are throttled per account too: after a run of them from one address, the right one from another waits', async () => {
  const server = await h.server({ connection: { floodRate: 0 } });
  const ann = await h.json(server, 'ann');
  ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r' });
  await errorOf(ann, 'r');
  ann.socket.destroy();
  const guesser = await h.json(server, 'guesser');
  for (let i = 0; i < 6; i++) guesser.sendJson({ type: 'login', nick: 'ann', password: `guess ${i}`, id: `g${i}` });
  const answers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => errorOf(guesser, `g${i}`)));
  expect(answers.map((a) => a.code)).toEqual(['LOGIN_FAILED', 'LOGIN_FAILED', 'LOGIN_FAILED', 'LOGIN_FAILED', 'LOGIN_FAILED', 'LOCKED_OUT']);
  const owner = h.track(await JsonClient.open(server.port, { nick: 'ann', password: 'a long enough password' }, { localAddress: '127.0.0.2' }));
  expect(await owner.waitEvent((e) => e.type === 'error' || e.type === 'welcome')).toMatchObject({ code: 'LOCKED_OUT', message: expect.stringMatching(/wait \d+ s/) });
});

test('with the SQLite store an account survives a restart, kept as a scrypt hash', async () => {
  const store = { engine: 'sqlite' as const, dir, fsync: 'batch' as const };
  const first = await h.server({ store });
  const ann = await h.json(first, 'ann');
  ann.sendJson({ type: 'register', password: 'correct horse battery', id: 'r' });
  expect((await errorOf(ann, 'r')).text).toMatch(/^Registered ann/);
  await h.cleanup();

  const db = new Database(path.join(dir, STORE_FILE), { readonly: true });
  const row = db.prepare('SELECT nick, hash FROM accounts WHERE key = ?').get('ann') as { nick: string; hash: string };
  db.close();
  expect(row.nick).toBe('ann');
  expect(row.hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  expect(row.hash).not.toContain('horse');

  const second = await h.server({ store });
  const squatter = h.track(await JsonClient.open(second.port, { nick: 'ann' }));
  expect(await squatter.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'NICK_REGISTERED' });
  const back = h.track(await JsonClient.open(second.port, { nick: 'ann', password: 'correct horse battery' }));
  expect(await back.waitEvent((e) => e.type === 'welcome' || e.type === 'error')).toMatchObject({ type: 'welcome', nick: 'ann' });
});

test('/password changes the password of the account one is logged in to; the old one stops working', async () => {
  const server = await h.server();
  const ann = await h.json(server, 'ann');
  ann.sendJson({ type: 'password', password: 'a brand new password', id: 'p0' });
  expect(await errorOf(ann, 'p0')).toMatchObject({ code: 'NOT_LOGGED_IN' });
  ann.sendJson({ type: 'register', password: 'the first password', id: 'r' });
  await errorOf(ann, 'r');
  ann.sendJson({ type: 'password', password: 'short', id: 'p1' });
  expect(await errorOf(ann, 'p1')).toMatchObject({ code: 'PASSWORD_WEAK' });
  ann.sendJson({ type: 'password', password: 'a brand new password', id: 'p2' });
  expect((await errorOf(ann, 'p2')).text).toMatch(/^Your password is changed/);
  ann.socket.destroy();
  const old = h.track(await JsonClient.open(server.port, { nick: 'ann', password: 'the first password' }));
  expect(await old.waitEvent((e) => e.type === 'welcome' || e.type === 'error')).toMatchObject({ code: 'LOGIN_FAILED' });
  const fresh = h.track(await JsonClient.open(server.port, { nick: 'ann', password: 'a brand new password' }));
  expect(await fresh.waitEvent((e) => e.type === 'welcome' || e.type === 'error')).toMatchObject({ type: 'welcome', nick: 'ann' });
});

/**
 * Operators and the rules they keep, against a real server on port 0: the first member of a
 * new room is its operator and can pass it on; /kick, /ban (evaded by neither a new nick nor a
 * reconnect from the same address), /mute, invite-only, the topic lock and a room's key (whose
 * guesses are throttled per address), each told to the room; a non-operator gets NOT_OPERATOR
 * and an operator cannot kick themselves. With the SQLite store the rules outlast a restart.
 * Bad actors come from 127.0.0.2, everyone else from 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Harness, HOST, JsonClient, type Ev } from '../helpers/clients.js';

const h = new Harness();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-moderation-'));
});
afterEach(async () => {
  await h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const OTHER = '127.0.0.2';

/** The answer to a request: the event that carries its id (an error included). */
function answer(c: JsonClient, id: string, type?: string): Promise<Ev> {
  return c.waitFor(() => c.events.find((e) => e.id === id && (type === undefined || e.type === type || e.type === 'error')), 5000, `the answer to ${id}`);
}

async function from(server: { port: number }, nick: string, rooms: string[], localAddress: string): Promise<JsonClient> {
  const c = h.track(await JsonClient.open(server.port, { nick, rooms }, { localAddress }));
  await c.waitEvent((e) => e.type === 'welcome' || e.type === 'error');
  return c;
}

async function joinRoom(c: JsonClient, room: string, id: string, key?: string): Promise<Ev> {
  c.sendJson({ type: 'join', room, id, ...(key !== undefined ? { key } : {}) });
  return answer(c, id, 'joined');
}

test('the first member of a new room is its operator, passes it on with /op, and a non-operator is told NOT_OPERATOR', async () => {
  const server = await h.server();
  const ann = await h.json(server, 'ann');
  const joined = await joinRoom(ann, 'lab', 'j');
  expect(joined).toMatchObject({ ops: ['ann'], modes: '' });
  await ann.waitEvent((e) => e.type === 'notice' && /new room and you are its operator/.test(e.text as string));
  const bob = await h.json(server, 'bob');
  expect(await joinRoom(bob, 'lab', 'j')).toMatchObject({ ops: ['ann'] });
  // The lobby is the server's own: nobody is its operator for being first.
  expect(bob.ofType('joined').find((e) => e.room === 'lobby' && e.self)).toMatchObject({ ops: [] });

  for (const [cmd, id] of [
    [{ type: 'kick', nick: 'ann' }, 'k'],
    [{ type: 'ban', mask: 'ann' }, 'b'],
    [{ type: 'mute', nick: 'ann' }, 'm'],
    [{ type: 'mode', modes: '+i' }, 'i'],
    [{ type: 'key', key: 'x' }, 'y'],
    [{ type: 'op', nick: 'bob' }, 'o'],
  ] as const) {
    bob.sendJson({ ...cmd, id });
    expect(await answer(bob, id)).toMatchObject({ type: 'error', code: 'NOT_OPERATOR' });
  }

  ann.sendJson({ type: 'op', nick: 'bob', id: 'op' });
  expect(await answer(ann, 'op')).toMatchObject({ type: 'moderation', action: 'op', by: 'ann', target: 'bob', room: 'lab' });
  expect(await bob.waitEvent((e) => e.type === 'moderation')).toMatchObject({ action: 'op', target: 'bob' });
  bob.sendJson({ type: 'who', room: 'lab', id: 'w' });
  expect(await answer(bob, 'w')).toMatchObject({ members: ['ann', 'bob'], ops: ['ann', 'bob'] });
  bob.sendJson({ type: 'deop', nick: 'ann', id: 'd' });
  expect(await answer(bob, 'd')).toMatchObject({ type: 'moderation', action: 'deop', target: 'ann' });
  ann.sendJson({ type: 'kick', nick: 'bob', id: 'k2' });
  expect(await answer(ann, 'k2')).toMatchObject({ code: 'NOT_OPERATOR' });

  // A text user sees the same, in words.
  const text = await h.text(server, 'cat');
  text.send('/join lab', '/who', '/kick ann');
  await text.waitLine('*** In [lab] (3): ann, @bob, cat (@ operator)');
  await text.waitLine(/^! NOT_OPERATOR: Only an operator of \[lab\] can do that\./);
});

test('an operator kicks a member, who may come back; kicking themselves is refused and they stay', async () => {
  const server = await h.server();
  const ann = await h.json(server, 'ann', ['lab']);
  const bob = await h.json(server, 'bob', ['lab']);
  const cat = await h.json(server, 'cat', ['lab']);
  ann.sendJson({ type: 'kick', nick: 'ann', id: 'self' });
  expect(await answer(ann, 'self')).toMatchObject({ code: 'KICK_SELF' });
  ann.sendJson({ type: 'message', room: 'lab', text: 'still here', id: 'm' });
  expect(await answer(ann, 'm', 'ack')).toMatchObject({ type: 'ack' });

  ann.sendJson({ type: 'kick', nick: 'BOB', reason: 'shouting', id: 'k' });
  expect(await answer(ann, 'k')).toMatchObject({ type: 'parted', nick: 'bob', kickedBy: 'ann', reason: 'shouting' });
  expect(await bob.waitEvent((e) => e.type === 'parted')).toMatchObject({ self: true, room: 'lab', kickedBy: 'ann', reason: 'shouting' });
  expect(await cat.waitEvent((e) => e.type === 'parted')).toMatchObject({ nick: 'bob', kickedBy: 'ann', reason: 'shouting' });
  bob.sendJson({ type: 'message', room: 'lab', text: 'hey', id: 'after' });
  expect(await answer(bob, 'after')).toMatchObject({ code: 'NOT_IN_ROOM' });
  expect(await joinRoom(bob, 'lab', 'back')).toMatchObject({ type: 'joined', self: true });
  ann.sendJson({ type: 'kick', nick: 'nobody', id: 'none' });
  expect(await answer(ann, 'none')).toMatchObject({ code: 'NO_SUCH_NICK' });
});

test('a ban by nick keeps out the address (and account): a new nick from the same address is refused, others come in, /unban lets it back', async () => {
  const server = await h.server({ connection: { greetDelay: 5000 } });
  const ann = await h.json(server, 'ann', ['lab']);
  const cat = await h.json(server, 'cat', ['lab']);
  const bob = await from(server, 'bob', ['lab'], OTHER);
  await bob.waitEvent((e) => e.type === 'history' && e.room === 'lab');

  ann.sendJson({ type: 'ban', mask: 'bob', reason: 'spam', id: 'b' });
  expect(await answer(ann, 'b')).toMatchObject({ type: 'moderation', action: 'ban', target: `address:${OTHER}`, reason: 'spam' });
  expect(await bob.waitEvent((e) => e.type === 'parted')).toMatchObject({ self: true, kickedBy: 'ann', reason: 'banned: spam' });
  expect(await cat.waitEvent((e) => e.type === 'moderation')).toMatchObject({ action: 'ban', by: 'ann' });

  // Back with a new nick, from the same address: by the hello's rooms and by join.
  bob.socket.destroy();
  const evader = await from(server, 'totally-new', ['lab'], OTHER);
  expect(evader.events.find((e) => e.type === 'welcome')).toBeDefined();
  expect(await evader.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'BANNED' });
  expect(await joinRoom(evader, 'lab', 'j')).toMatchObject({ code: 'BANNED', message: expect.stringMatching(/^You are banned from \[lab\]/) });
  // The session itself goes on elsewhere.
  expect(await joinRoom(evader, 'elsewhere', 'e')).toMatchObject({ type: 'joined' });
  // Someone else comes in.
  const dan = await h.json(server, 'dan');
  expect(await joinRoom(dan, 'lab', 'j')).toMatchObject({ type: 'joined' });

  ann.sendJson({ type: 'bans', id: 'l', room: 'lab' });
  expect(await answer(ann, 'l')).toMatchObject({ type: 'bans', bans: [{ mask: `address:${OTHER}`, nick: 'bob', by: 'ann', reason: 'spam' }], mutes: [] });
  ann.sendJson({ type: 'ban', mask: 'address:300.1.1.1', id: 'bad' });
  expect(await answer(ann, 'bad')).toMatchObject({ code: 'BAD_MASK' });
  ann.sendJson({ type: 'unban', mask: 'bob', id: 'u' });
  expect(await answer(ann, 'u')).toMatchObject({ type: 'moderation', action: 'unban', target: `address:${OTHER}` });
  expect(await joinRoom(evader, 'lab', 'j2')).toMatchObject({ type: 'joined' });

  // A ban by address block puts out whoever it matches, at once.
  ann.sendJson({ type: 'ban', mask: '127.0.0.2/32', id: 'cidr' });
  await answer(ann, 'cidr');
  expect(await evader.waitEvent((e) => e.type === 'parted' && e.room === 'lab')).toMatchObject({ self: true, kickedBy: 'ann' });
  // A ban of a nick pattern keeps out whoever takes such a nick, whatever their address.
  ann.sendJson({ type: 'ban', mask: 'nick:troll*', id: 'glob' });
  expect(await answer(ann, 'glob')).toMatchObject({ target: 'nick:troll*' });
  const troll = await h.json(server, 'troll42');
  expect(await joinRoom(troll, 'lab', 'j')).toMatchObject({ code: 'BANNED' });
});

test('a mute follows the member across a reconnect and a new nick, lifts by /unmute or by itself, and others chat on', async () => {
  let now = Date.parse('2026-12-04T10:00:00Z');
  const server = await h.server({ connection: { greetDelay: 5000 }, hub: { now: () => now } });
  const ann = await h.json(server, 'ann', ['lab']);
  const cat = await h.json(server, 'cat', ['lab']);
  let bob = await from(server, 'bob', ['lab'], OTHER);
  await bob.waitEvent((e) => e.type === 'history' && e.room === 'lab');

  ann.sendJson({ type: 'mute', nick: 'bob', minutes: 10, id: 'm' });
  expect(await answer(ann, 'm')).toMatchObject({ type: 'moderation', action: 'mute', target: 'bob', until: now + 600_000 });
  bob.sendJson({ type: 'message', room: 'lab', text: 'nobody hears me', id: 's' });
  expect(await answer(bob, 's')).toMatchObject({ code: 'MUTED', message: expect.stringContaining('[lab] for 10 more minutes') });
  bob.sendJson({ type: 'topic', room: 'lab', topic: 'mine', id: 't' });
  expect(await answer(bob, 't')).toMatchObject({ code: 'MUTED' });
  cat.sendJson({ type: 'message', room: 'lab', text: 'we chat on', id: 'c' });
  await ann.waitEvent((e) => e.type === 'message' && e.text === 'we chat on');

  bob.socket.destroy();
  bob = await from(server, 'robert', ['lab'], OTHER);
  await bob.waitEvent((e) => e.type === 'history' && e.room === 'lab');
  bob.sendJson({ type: 'message', room: 'lab', text: 'new nick', id: 's2' });
  expect(await answer(bob, 's2')).toMatchObject({ code: 'MUTED' });
  // The HTTP API from that address is muted too.
  const post = await fetch(`http://${HOST}:${server.port}/api/rooms/lab/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ nick: 'bob', text: 'via http' }) });
  expect(post.status).toBe(403);
  expect(await post.json()).toMatchObject({ error: { code: 'MUTED' } });

  now += 10 * 60_000 + 1;
  bob.sendJson({ type: 'message', room: 'lab', text: 'free again', id: 's3' });
  expect(await answer(bob, 's3', 'ack')).toMatchObject({ type: 'ack' });
  ann.sendJson({ type: 'mute', nick: 'robert', id: 'm2' });
  expect(await answer(ann, 'm2')).not.toHaveProperty('until');
  bob.sendJson({ type: 'message', room: 'lab', text: 'again?', id: 's4' });
  expect(await answer(bob, 's4')).toMatchObject({ code: 'MUTED', message: expect.stringContaining('until an operator unmutes you') });
  ann.sendJson({ type: 'unmute', nick: 'robert', id: 'u' });
  expect(await answer(ann, 'u')).toMatchObject({ type: 'moderation', action: 'unmute', target: 'robert' });
  bob.sendJson({ type: 'message', room: 'lab', text: 'thanks', id: 's5' });
  expect(await answer(bob, 's5', 'ack')).toMatchObject({ type: 'ack' });
});

test('invite-only, the topic lock and the key: each keeps out or quiets whom it should, an invitation lets one in', async () => {
  const server = await h.server();
  const ann = await h.json(server, 'ann', ['lab']);
  const bob = await h.json(server, 'bob', ['lab']);
  ann.sendJson({ type: 'mode', modes: '+it', id: 'm' });
  expect(await answer(ann, 'm')).toMatchObject({ type: 'moderation', action: 'mode', modes: '+it' });
  bob.sendJson({ type: 'topic', room: 'lab', topic: 'bob was here', id: 't' });
  expect(await answer(bob, 't')).toMatchObject({ code: 'TOPIC_LOCKED' });
  ann.sendJson({ type: 'topic', room: 'lab', topic: 'lab rules', id: 't2' });
  expect(await answer(ann, 't2')).toMatchObject({ type: 'topic', topic: 'lab rules' });

  const cat = await h.json(server, 'cat');
  expect(await joinRoom(cat, 'lab', 'j')).toMatchObject({ code: 'INVITE_ONLY' });
  bob.sendJson({ type: 'invite', nick: 'cat', id: 'i0' });
  expect(await answer(bob, 'i0')).toMatchObject({ code: 'NOT_OPERATOR' });
  ann.sendJson({ type: 'invite', nick: 'cat', id: 'i' });
  expect(await answer(ann, 'i')).toMatchObject({ type: 'moderation', action: 'invite', target: 'cat' });
  expect(await cat.waitEvent((e) => e.type === 'privmsg')).toMatchObject({ from: 'ann', text: 'invites you to [lab]: /join lab' });
  expect(await joinRoom(cat, 'lab', 'j2')).toMatchObject({ type: 'joined', modes: '+it' });

  ann.sendJson({ type: 'mode', modes: '-i', id: 'm2' }, { type: 'key', key: 'sesame', id: 'k' });
  expect(await answer(ann, 'k')).toMatchObject({ type: 'moderation', action: 'key', modes: '+kt' });
  expect(JSON.stringify(bob.events)).not.toContain('sesame');
  const dan = await h.json(server, 'dan');
  expect(await joinRoom(dan, 'lab', 'a')).toMatchObject({ code: 'ROOM_KEY_REQUIRED' });
  expect(await joinRoom(dan, 'lab', 'b', 'open')).toMatchObject({ code: 'ROOM_KEY_WRONG' });
  expect(await joinRoom(dan, 'lab', 'c', 'sesame')).toMatchObject({ type: 'joined' });
  ann.sendJson({ type: 'mode', id: 'show' });
  expect(await answer(ann, 'show')).toMatchObject({ type: 'mode', modes: '+kt', ops: ['ann'] });
  ann.sendJson({ type: 'mode', modes: '+k', id: 'bad' });
  expect(await answer(ann, 'bad')).toMatchObject({ code: 'BAD_MODE' });
  ann.sendJson({ type: 'mode', modes: '-kt', id: 'off' });
  expect(await answer(ann, 'off')).toMatchObject({ modes: '' });
});

test('a room key brute force from one address is throttled, while the right key from another address gets in', async () => {
  const server = await h.server({ connection: { floodRate: 0, greetDelay: 5000 } });
  const ann = await h.json(server, 'ann', ['vault']);
  ann.sendJson({ type: 'key', key: 'correct-key-42', id: 'k' });
  await answer(ann, 'k');
  const guesser = await from(server, 'guesser', ['lobby'], OTHER);
  const N = 1000;
  for (let i = 0; i < N; i++) guesser.sendJson({ type: 'join', room: 'vault', key: `guess-${i}`, id: `g${i}` });
  await guesser.waitFor(() => guesser.events.filter((e) => e.type === 'error' && String(e.id).startsWith('g')).length === N, 20_000, 'an answer to every guess');
  const codes = new Map<string, number>();
  for (const e of guesser.events) if (e.type === 'error') codes.set(e.code as string, (codes.get(e.code as string) ?? 0) + 1);
  expect(Object.fromEntries(codes)).toEqual({ ROOM_KEY_WRONG: 5, LOCKED_OUT: N - 5 });
  // Locked out, the right key waits too: guessing costs the guesser time.
  expect(await joinRoom(guesser, 'vault', 'right', 'correct-key-42')).toMatchObject({ code: 'LOCKED_OUT', message: expect.stringMatching(/wait \d+ s/) });
  const friend = await h.json(server, 'friend');
  expect(await joinRoom(friend, 'vault', 'f', 'correct-key-42')).toMatchObject({ type: 'joined' });
});

test('a server operator (--admin, logged in) operates every room and cannot be put out by a room operator', async () => {
  const server = await h.server({ hub: { admins: ['Teacher'] } });
  const teacher = await h.json(server, 'teacher');
  teacher.sendJson({ type: 'register', password: 'a long enough password', id: 'r' });
  await answer(teacher, 'r');
  const kid = await h.json(server, 'kid', ['corner', 'lobby']);
  expect(await joinRoom(teacher, 'corner', 'j')).toMatchObject({ ops: ['kid', 'teacher'] });
  kid.sendJson({ type: 'kick', nick: 'teacher', room: 'corner', id: 'k' });
  expect(await answer(kid, 'k')).toMatchObject({ code: 'PROTECTED' });
  kid.sendJson({ type: 'ban', mask: 'teacher', room: 'corner', id: 'b' });
  expect(await answer(kid, 'b')).toMatchObject({ code: 'PROTECTED' });
  teacher.sendJson({ type: 'deop', nick: 'kid', room: 'corner', id: 'd' });
  await answer(teacher, 'd');
  // In the server's own room too.
  teacher.sendJson({ type: 'kick', nick: 'kid', room: 'lobby', id: 'k2' });
  expect(await answer(teacher, 'k2')).toMatchObject({ type: 'parted', kickedBy: 'teacher' });
});

test('with the SQLite store, bans, mutes, modes and an account\'s operator status outlast a restart', async () => {
  const store = { engine: 'sqlite' as const, dir, fsync: 'batch' as const };
  let server = await h.server({ store, connection: { greetDelay: 5000 } });
  const ann = await h.json(server, 'ann');
  ann.sendJson({ type: 'register', password: 'a long enough password', id: 'r' });
  await answer(ann, 'r');
  expect(await joinRoom(ann, 'lab', 'j')).toMatchObject({ ops: ['ann'] });
  const bob = await from(server, 'bob', ['lab'], OTHER);
  await bob.waitEvent((e) => e.type === 'history' && e.room === 'lab');
  const cat = await h.json(server, 'cat', ['lab']);
  ann.sendJson({ type: 'ban', mask: 'bob', id: 'b' }, { type: 'mute', nick: 'cat', id: 'm' }, { type: 'mode', modes: '+t', id: 't' });
  await answer(ann, 't');
  await h.cleanup();

  server = await h.server({ store, connection: { greetDelay: 5000 } });
  const back = h.track(await JsonClient.open(server.port, { nick: 'ann', password: 'a long enough password', rooms: ['lab'] }));
  expect(await back.waitEvent((e) => e.type === 'joined' && e.self === true)).toMatchObject({ room: 'lab', ops: ['ann'], modes: '+t' });
  const evader = await from(server, 'bobby', ['lobby'], OTHER);
  expect(await joinRoom(evader, 'lab', 'j')).toMatchObject({ code: 'BANNED' });
  const cat2 = await h.json(server, 'cat', ['lab']);
  cat2.sendJson({ type: 'message', room: 'lab', text: 'hi', id: 's' });
  expect(await answer(cat2, 's')).toMatchObject({ code: 'MUTED' });
  // The account, not the nick: a guest who takes a free nick is no operator.
  back.sendJson({ type: 'bans', room: 'lab', id: 'l' });
  expect(await answer(back, 'l')).toMatchObject({ bans: [{ nick: 'bob', by: 'ann' }], mutes: [{ nick: 'cat', by: 'ann' }] });
});

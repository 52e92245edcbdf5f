/**
 * Searching a room's history over real sockets: text mode (matching words between asterisks),
 * JSON (pages, bounds, errors) and HTTP (a room nobody is in too), on the SQLite store and on
 * the in-memory one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RoomcastServer } from '../../src/server.js';
import { Harness, type Ev } from '../helpers/clients.js';

const h = new Harness();
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-search-'));
});

afterEach(async () => {
  await h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function getJson(server: RoomcastServer, p: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${p}`);
  return { status: res.status, json: await res.json() };
}

describe.each([
  ['the SQLite store', (): Partial<Parameters<Harness['server']>[0]> => ({ store: { engine: 'sqlite', dir, fsync: 'batch' } })],
  ['the memory store', (): Partial<Parameters<Harness['server']>[0]> => ({})],
])('search on %s', (_name, options) => {
  async function serverWithTalk(): Promise<{ server: RoomcastServer; ann: Awaited<ReturnType<Harness['json']>> }> {
    const server = await h.server({ ...options(), connection: { floodRate: 0 } });
    const ann = await h.json(server, 'ann');
    const lines = ['the red kite flies', 'a blue whale', 'Red wine and cheese', 'nothing here', 'reddish sky, red sun'];
    lines.forEach((text, i) => ann.sendJson({ type: 'message', text, id: i + 1 }));
    await ann.waitEvent((e) => e.type === 'ack' && e.id === lines.length);
    return { server, ann };
  }

  test('JSON: newest first, the words marked, paged with before, limit bounded', async () => {
    const { ann } = await serverWithTalk();
    ann.sendJson({ type: 'search', q: 'red', id: 's1' });
    const found = await ann.waitEvent((e) => e.type === 'search' && e.id === 's1');
    expect(found.hits.map((x: Ev) => x.seq)).toEqual([5, 3, 1]);
    const top = found.hits[0];
    expect(top).toMatchObject({ nick: 'ann', text: 'reddish sky, red sun', marks: [[13, 16]] });
    expect(found.more).toBe(false);
    ann.sendJson({ type: 'search', q: 'red*', limit: 1, id: 's2' });
    const page1 = await ann.waitEvent((e) => e.type === 'search' && e.id === 's2');
    expect(page1).toMatchObject({ hits: [{ seq: 5, marks: [[0, 7], [13, 16]] }], more: true });
    ann.sendJson({ type: 'search', q: 'red*', limit: 1000, before: 5, id: 's3' });
    const rest = await ann.waitEvent((e) => e.type === 'search' && e.id === 's3');
    expect(rest.hits.map((x: Ev) => x.seq)).toEqual([3, 1]);
    ann.sendJson({ type: 'search', q: '   ', id: 'e1' }, { type: 'search', q: 'x'.repeat(201), id: 'e2' }, { type: 'search', room: 'elsewhere', q: 'red', id: 'e3' });
    expect(await ann.waitEvent((e) => e.id === 'e1')).toMatchObject({ type: 'error', code: 'SEARCH_EMPTY' });
    expect(await ann.waitEvent((e) => e.id === 'e2')).toMatchObject({ type: 'error', code: 'TEXT_TOO_LONG' });
    expect(await ann.waitEvent((e) => e.id === 'e3')).toMatchObject({ type: 'error', code: 'NOT_IN_ROOM' });
  });

  test('text mode: /search shows the hits with the words between asterisks', async () => {
    const { server } = await serverWithTalk();
    const bob = await h.text(server, 'bob');
    bob.send('/search red');
    await bob.waitLine(/^\*\*\* 3 messages in \[lobby\] match "red", newest first:$/);
    await bob.waitLine('[lobby] ann: reddish sky, *red* sun');
    await bob.waitLine('[lobby] ann: *Red* wine and cheese');
    await bob.waitLine('[lobby] ann: the *red* kite flies');
    bob.send('/search zebra');
    await bob.waitLine('*** No messages in [lobby] match "zebra"');
    bob.send('/search');
    await bob.waitLine(/^! USAGE: Usage: \/search WORDS/);
  });

  test('HTTP: GET /api/rooms/{room}/search, also for a room nobody is in', async () => {
    const { server } = await serverWithTalk();
    const carol = await h.json(server, 'carol', ['attic']);
    carol.sendJson({ type: 'message', room: 'attic', text: 'dusty red boxes', id: 1 });
    await carol.waitEvent((e) => e.type === 'ack');
    carol.sendJson({ type: 'part', room: 'attic', id: 2 });
    await carol.waitEvent((e) => e.type === 'parted' && e.id === 2);
    const attic = await getJson(server, '/api/rooms/attic/search?q=red');
    expect(attic.status).toBe(200);
    expect(attic.json).toMatchObject({ room: 'attic', q: 'red', hits: [{ seq: 1, text: 'dusty red boxes', marks: [[6, 9]] }], more: false });
    const lobby = await getJson(server, '/api/rooms/lobby/search?q=blue%20whale&limit=5');
    expect(lobby.json.hits.map((x: Ev) => x.seq)).toEqual([2]);
    expect((await getJson(server, '/api/rooms/lobby/search?q=')).json).toMatchObject({ error: { code: 'SEARCH_EMPTY' } });
    expect((await getJson(server, '/api/rooms/lobby/search')).status).toBe(400);
    expect((await getJson(server, '/api/rooms/nowhere/search?q=red')).status).toBe(404);
    expect((await getJson(server, '/api/rooms/lobby/search?q=red&limit=101')).status).toBe(400);
  });
});

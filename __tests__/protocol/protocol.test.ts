/** The protocol over real sockets: both modes together, relay order, history, nicks, rooms. */
import { Harness, until, type Ev, type JsonClient, type LineClient } from '../helpers/clients.js';

const h = new Harness();
afterEach(() => h.cleanup());

const msgs = (c: JsonClient, room = 'lobby'): Ev[] => c.events.filter((e) => e.type === 'message' && e.room === room);

test('a netcat-style text client and a JSON client in one room see each other; nobody gets their own message back', async () => {
  const server = await h.server();
  const alice = await h.text(server, 'alice');
  const bob = await h.json(server, 'bob');
  await alice.waitLine('*** bob joined [lobby]');

  alice.send('hi bob');
  const m = await bob.waitEvent((e) => e.type === 'message');
  expect(m).toEqual({ type: 'message', room: 'lobby', seq: 1, nick: 'alice', text: 'hi bob', time: expect.any(Number) });
  expect(Math.abs(m.time - Date.now())).toBeLessThan(5000);

  bob.sendJson({ type: 'message', id: 'x1', text: 'hello alice' });
  const ack = await bob.waitEvent((e) => e.type === 'ack');
  expect(ack).toEqual({ type: 'ack', id: 'x1', room: 'lobby', seq: 2, time: expect.any(Number) });
  await alice.waitLine('[lobby] bob: hello alice');

  alice.send('/me waves');
  expect(await bob.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'alice', text: 'waves', action: true, seq: 3 });
  bob.sendJson({ type: 'message', text: 'nods', action: true });
  await alice.waitLine('[lobby] * bob nods');

  alice.send('/ping');
  await alice.waitLine('*** pong');
  expect(alice.lines.filter((l) => l.startsWith('[lobby] alice') || l.startsWith('[lobby] * alice'))).toEqual([]);
  expect(bob.events.filter((e) => e.type === 'message' && e.nick === 'bob')).toEqual([]);
  expect(alice.lines.slice(0, 3)).toEqual([
    expect.stringMatching(/^\*\*\* Welcome to roomcast, guest\d+! You are in \[lobby\]\. Type a line and press Enter to talk; \/help lists commands\.$/),
    expect.stringMatching(/^\*\*\* You joined \[lobby\] \(1 here: guest\d+\)$/),
    '*** You are now known as alice',
  ]);
});

test('relay order: several senders, several receivers, each sees every other sender in order, once', async () => {
  const server = await h.server({ connection: { floodRate: 0 } });
  const N = 150;
  const t1 = await h.text(server, 't1');
  const t2 = await h.text(server, 't2');
  const j1 = await h.json(server, 'j1');
  const j2 = await h.json(server, 'j2');
  const rt = await h.text(server, 'rt');
  const rj = await h.json(server, 'rj');

  // Each sender writes its lines in a few chunks, all at once.
  for (let k = 0; k < N; k += 50) {
    t1.send(...Array.from({ length: 50 }, (_, i) => `t1-${k + i}`));
    j1.sendJson(...Array.from({ length: 50 }, (_, i) => ({ type: 'message', text: `j1-${k + i}` })));
    t2.send(...Array.from({ length: 50 }, (_, i) => `t2-${k + i}`));
    j2.sendJson(...Array.from({ length: 50 }, (_, i) => ({ type: 'message', text: `j2-${k + i}` })));
  }
  const senders = ['t1', 't2', 'j1', 'j2'];
  const want = (nick: string): string[] => Array.from({ length: N }, (_, i) => `${nick}-${i}`);

  const fromText = (c: LineClient, nick: string): string[] =>
    c.lines.filter((l) => l.startsWith(`[lobby] ${nick}: `)).map((l) => l.slice(`[lobby] ${nick}: `.length));
  const fromJson = (c: JsonClient, nick: string): string[] => msgs(c).filter((e) => e.nick === nick).map((e) => e.text);

  const textReaders: [string, LineClient][] = [['t1', t1], ['t2', t2], ['rt', rt]];
  const jsonReaders: [string, JsonClient][] = [['j1', j1], ['j2', j2], ['rj', rj]];
  for (const [self, c] of textReaders) {
    const others = senders.filter((s) => s !== self);
    await c.waitFor(() => others.every((s) => fromText(c, s).length >= N), 5000, `${self} to get everything`);
  }
  for (const [self, c] of jsonReaders) {
    const others = senders.filter((s) => s !== self);
    await c.waitFor(() => others.every((s) => fromJson(c, s).length >= N), 5000, `${self} to get everything`);
  }
  await j1.waitFor(() => j1.ofType('ack').length === N);
  await j2.waitFor(() => j2.ofType('ack').length === N);

  for (const [self, c] of textReaders)
    for (const s of senders) expect([self, s, fromText(c, s)]).toEqual([self, s, s === self ? [] : want(s)]);
  for (const [self, c] of jsonReaders) {
    for (const s of senders) expect([self, s, fromJson(c, s)]).toEqual([self, s, s === self ? [] : want(s)]);
    // Room order: seq strictly increasing, consecutive apart from the reader's own messages.
    const seqs = msgs(c).map((e) => e.seq as number);
    const own = c.ofType('ack').map((a) => a.seq as number);
    expect([...seqs, ...own].sort((a, b) => a - b)).toEqual(Array.from({ length: 4 * N }, (_, i) => i + 1));
  }
  // Acks come back in the order sent, with increasing seqs.
  const ackSeqs = j1.ofType('ack').map((a) => a.seq as number);
  expect(ackSeqs).toEqual([...ackSeqs].sort((a, b) => a - b));
  expect(server.hub.stats.messages).toBe(4 * N);
});

test('history is replayed on join; "after" fills exactly the gap, with no duplicates', async () => {
  const server = await h.server({ hub: { replay: 5, historySize: 8 } });
  const a = await h.json(server, 'a', ['dev']);
  const b = await h.json(server, 'b', ['dev']);
  for (let i = 1; i <= 6; i++) a.sendJson({ type: 'message', text: `m${i}` });
  await b.waitFor(() => msgs(b, 'dev').length === 6);

  // A newcomer gets the last 5.
  const c = await h.json(server, 'c', ['dev']);
  const hist = c.events.find((e) => e.type === 'history')!;
  expect(hist).toMatchObject({ room: 'dev', first: 1, last: 6, missed: 0 });
  expect(hist.messages.map((m: Ev) => m.text)).toEqual(['m2', 'm3', 'm4', 'm5', 'm6']);
  expect(c.events.find((e) => e.type === 'joined')).toEqual({
    type: 'joined', room: 'dev', nick: 'c', self: true, topic: '', members: ['a', 'b', 'c'], ops: ['a'], modes: '', seq: 6, epoch: server.hub.store.historyId(),
  });

  // A text newcomer sees them as lines.
  const t = await h.raw(server);
  t.send('/join dev');
  await t.waitLine('*** Last 5 messages in [dev]:');
  expect(t.lines.slice(t.cursor, t.cursor + 5)).toEqual(['m2', 'm3', 'm4', 'm5', 'm6'].map((x) => `[dev] a: ${x}`));

  // b drops out after seq 6 and comes back with after: 6 while a has gone on talking.
  b.destroy();
  await a.waitEvent((e) => e.type === 'parted' && e.nick === 'b');
  for (let i = 7; i <= 9; i++) a.sendJson({ type: 'message', text: `m${i}` });
  await a.waitFor(() => a.ofType('ack').length === 9);
  const b2 = await h.json(server, 'b', []);
  b2.sendJson({ type: 'join', room: 'dev', after: 6, id: 'rejoin' });
  const gap = await b2.waitEvent((e) => e.type === 'history');
  expect(gap).toEqual({ type: 'history', id: 'rejoin', room: 'dev', messages: expect.any(Array), first: 2, last: 9, missed: 0 });
  expect(gap.messages.map((m: Ev) => [m.seq, m.text])).toEqual([[7, 'm7'], [8, 'm8'], [9, 'm9']]);
  a.sendJson({ type: 'message', text: 'm10' });
  await b2.waitEvent((e) => e.type === 'message' && e.seq === 10);
  expect(b2.events.filter((e) => e.type === 'message').map((e) => e.seq)).toEqual([10]);

  // Asking from further back than is kept says how many were missed.
  const d = await h.json(server, 'd', []);
  d.sendJson({ type: 'join', room: 'dev', after: 0 });
  const old = await d.waitEvent((e) => e.type === 'history');
  expect(old.messages.map((m: Ev) => m.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  expect([old.first, old.last, old.missed]).toEqual([3, 10, 2]);
});

test('nick uniqueness is case-insensitive, in both modes', async () => {
  const server = await h.server();
  const alice = await h.text(server, 'alice');
  const j = await h.jsonOpen(server, { nick: 'ALICE' });
  expect(await j.waitEvent((e) => e.type === 'error')).toEqual({
    type: 'error', code: 'NICK_TAKEN', message: 'The nick "ALICE" is already in use. Pick another with /nick NAME.',
  });
  j.sendJson({ type: 'hello', nick: 'Bob' });
  await j.waitEvent((e) => e.type === 'welcome' && e.nick === 'Bob');
  const t = await h.text(server);
  t.send('/nick bob');
  await t.waitLine('! NICK_TAKEN: The nick "bob" is already in use. Pick another with /nick NAME.');
  t.send('/nick Alice');
  await t.waitLine('! NICK_TAKEN: The nick "Alice" is already in use. Pick another with /nick NAME.');
  t.send('/nick server');
  await t.waitLine('! NICK_RESERVED: The nick "server" is reserved. Pick another with /nick NAME.');
  alice.send('/nick ALICE');
  await alice.waitLine('*** You are now known as ALICE');
  await j.waitEvent((e) => e.type === 'nick' && e.old === 'alice' && e.nick === 'ALICE');
  // The old spelling is free only once nobody has it in any case.
  alice.send('/nick carol');
  await alice.waitLine('*** You are now known as carol');
  t.send('/nick alice');
  await t.waitLine('*** You are now known as alice');
});

test('/msg private messages reach only the recipient (and echo to the sender)', async () => {
  const server = await h.server();
  const alice = await h.text(server, 'alice');
  const bob = await h.json(server, 'bob');
  const eve = await h.text(server, 'eve');
  alice.send('/msg BOB psst, bob');
  expect(await bob.waitEvent((e) => e.type === 'privmsg')).toEqual({
    type: 'privmsg', from: 'alice', to: 'bob', text: 'psst, bob', time: expect.any(Number),
  });
  await alice.waitLine('[pm] alice -> bob: psst, bob');
  bob.sendJson({ type: 'privmsg', to: 'alice', text: 'hi', id: 7 });
  await alice.waitLine('[pm] bob -> alice: hi');
  expect(await bob.waitEvent((e) => e.type === 'privmsg' && e.id === 7)).toMatchObject({ from: 'bob', to: 'alice', text: 'hi' });
  alice.send('/msg nobody hello?');
  await alice.waitLine('! NO_SUCH_NICK: Nobody is called "nobody" here. /who lists the people in a room.');
  eve.send('/ping');
  await eve.waitLine('*** pong');
  expect(eve.lines.filter((l) => l.startsWith('[pm]'))).toEqual([]);
});

test('/part; empty rooms disappear unless predefined; /rooms and /who', async () => {
  const server = await h.server({ hub: { rooms: ['keep'] } });
  const alice = await h.text(server, 'alice');
  const bob = await h.json(server, 'bob', ['lobby', 'tmp']);
  alice.send('/join tmp');
  // bob made the room, so he is its operator (@).
  await alice.waitLine('*** You joined [tmp] (2 here: alice, @bob)');
  await bob.waitEvent((e) => e.type === 'joined' && e.room === 'tmp' && e.nick === 'alice');
  alice.send('/join #KEEP');
  await alice.waitLine('*** You joined [keep] (1 here: alice)');
  alice.send('/part tmp see you');
  await alice.waitLine('*** You left [tmp] (see you)');
  expect(await bob.waitEvent((e) => e.type === 'parted')).toEqual({ type: 'parted', room: 'tmp', nick: 'alice', reason: 'see you' });
  alice.send('/part');
  await alice.waitLine('*** You left [keep]');
  bob.sendJson({ type: 'part', room: 'tmp' });
  await bob.waitEvent((e) => e.type === 'parted' && e.self === true);
  bob.sendJson({ type: 'rooms', id: 'r' });
  expect(await bob.waitEvent((e) => e.type === 'rooms')).toEqual({
    type: 'rooms', id: 'r', rooms: [{ room: 'keep', members: 0, topic: '' }, { room: 'lobby', members: 2, topic: '' }],
  });
  alice.send('/rooms');
  await alice.waitLine('*** 2 rooms:');
  expect(alice.lines.slice(alice.cursor, alice.cursor + 2)).toEqual(['***   [keep] 0 here', '***   [lobby] 2 here']);
  alice.send('/who tmp');
  await alice.waitLine('! NO_SUCH_ROOM: There is no room "tmp". /rooms lists them; /join NAME creates one.');
  alice.send('/who');
  await alice.waitLine('*** In [lobby] (2): alice, bob');
  alice.send('/part keep');
  await alice.waitLine('! NOT_IN_ROOM: You are not in room "keep". Join it first with /join keep.');
  expect([...server.hub.rooms.keys()].sort()).toEqual(['keep', 'lobby']);
});

test('quit: others get the notice with the reason; the quitter gets its bye', async () => {
  const server = await h.server();
  const alice = await h.text(server, 'alice');
  const bob = await h.json(server, 'bob');
  const carol = await h.json(server, 'carol');
  await alice.waitLine('*** carol joined [lobby]');
  alice.send('/quit lunch');
  await alice.waitClosed();
  expect(alice.lines.at(-1)).toBe('*** Disconnected: Goodbye.');
  expect(await bob.waitEvent((e) => e.type === 'parted')).toEqual({
    type: 'parted', room: 'lobby', nick: 'alice', reason: 'quit: lunch', quit: true,
  });
  const t = await h.text(server, 'dave');
  carol.sendJson({ type: 'quit' });
  expect(await carol.waitEvent((e) => e.type === 'bye')).toEqual({ type: 'bye', code: 'QUIT', reason: 'Goodbye.' });
  await carol.waitClosed();
  await t.waitLine('*** carol left [lobby] (quit)');
  // A dropped connection is a quit too.
  bob.destroy();
  await t.waitLine('*** bob left [lobby] (connection closed by the client)');
  await until(() => server.hub.sessions.size === 1, 2000, 'only dave left');
});

test('split and coalesced TCP reads: one byte per write, and many lines in one write', async () => {
  const server = await h.server({ connection: { floodRate: 0 } });
  const rx = await h.json(server, 'rx');
  const tx = await h.text(server, 'tx');
  const jx = await h.json(server, 'jx');
  const line = 'héllo wörld ✓ 😀 split\r\n';
  for (const byte of Buffer.from(line)) {
    tx.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  expect(await rx.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'tx', text: 'héllo wörld ✓ 😀 split' });

  const json = JSON.stringify({ type: 'message', text: 'json in pieces ✓', id: 1 }) + '\n';
  for (const byte of Buffer.from(json)) {
    jx.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  expect(await rx.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'jx', text: 'json in pieces ✓' });
  expect(await jx.waitEvent((e) => e.type === 'ack')).toMatchObject({ id: 1 });

  const many = Array.from({ length: 300 }, (_, i) => `line ${i} ${'ü'.repeat(i % 7)}`);
  tx.send(...many);
  await rx.waitFor(() => msgs(rx).length === 302, 3000, 'all 300 lines');
  expect(msgs(rx).slice(2).map((e) => e.text)).toEqual(many);
  expect(msgs(rx).map((e) => e.seq)).toEqual(Array.from({ length: 302 }, (_, i) => i + 1));
});

test('JSON protocol errors come back with the request id; the connection carries on', async () => {
  const server = await h.server();
  const j = await h.json(server, 'j');
  j.write('not json\n');
  expect(await j.waitEvent((e) => e.type === 'error')).toEqual({
    type: 'error', code: 'BAD_JSON', message: 'That line is not valid JSON. Send one JSON object per line.',
  });
  j.sendJson({ type: 'dance', id: 5 }, { type: 'join', id: 6 }, { type: 'message', room: 'nope', text: 'x', id: 7 }, { type: 'hello', id: 8 });
  expect(await j.waitEvent((e) => e.id === 5)).toMatchObject({ type: 'error', code: 'UNKNOWN_TYPE' });
  expect(await j.waitEvent((e) => e.id === 6)).toMatchObject({ type: 'error', code: 'BAD_MESSAGE' });
  expect(await j.waitEvent((e) => e.id === 7)).toMatchObject({ type: 'error', code: 'NOT_IN_ROOM' });
  expect(await j.waitEvent((e) => e.id === 8)).toMatchObject({ type: 'error', code: 'ALREADY_REGISTERED' });
  j.sendJson({ type: 'ping', id: 9 });
  expect(await j.waitEvent((e) => e.id === 9)).toEqual({ type: 'pong', id: 9, time: expect.any(Number) });
  // Before a successful hello, anything else is NOT_REGISTERED.
  const k = await h.jsonOpen(server, { nick: '1bad' });
  await k.waitEvent((e) => e.type === 'error');
  k.sendJson({ type: 'message', text: 'hi', id: 'early' });
  expect(await k.waitEvent((e) => e.type === 'error')).toMatchObject({ id: 'early', code: 'NOT_REGISTERED' });
  k.sendJson({ type: 'dance', id: 'd' });
  expect(await k.waitEvent((e) => e.type === 'error')).toMatchObject({ id: 'd', code: 'UNKNOWN_TYPE' });
});

test('text-mode errors: unknown commands, usage, a bare slash', async () => {
  const server = await h.server();
  const t = await h.text(server, 'tee');
  t.send('/frob', '/msg', '/', '//not a command');
  await t.waitLine('! UNKNOWN_COMMAND: Unknown command "/frob". Type /help for the list of commands.');
  await t.waitLine('! USAGE: Usage: /msg NICK TEXT');
  await t.waitLine('! UNKNOWN_COMMAND: Unknown command "/". Type /help for the list of commands.');
  const j = await h.json(server, 'jay');
  t.send('//slash');
  expect(await j.waitEvent((e) => e.type === 'message')).toMatchObject({ nick: 'tee', text: '/slash' });
  expect(server.hub.stats.messages).toBe(2);
});

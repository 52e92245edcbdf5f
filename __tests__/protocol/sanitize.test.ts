/**
 * Hostile bytes over real TCP: invalid UTF-8, NUL and other C0 controls, terminal escape
 * sequences, C1 controls and bidi overrides, in nicks, rooms, topics and messages. None may reach
 * anyone's output as a control code; invalid nicks and rooms are refused.
 */
import { Harness, findControlBytes, stringsIn, UNSAFE_CHARS, type JsonClient, type LineClient } from '../helpers/clients.js';

const h = new Harness();
afterEach(() => h.cleanup());

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const bytes = (...xs: number[]): Buffer => Buffer.from(xs);

/** The hostile message as raw bytes, and what every reader must see instead. */
const HOSTILE = Buffer.concat([
  b('A'), bytes(0x00), b('B'), bytes(0x1b), b('[2J'), b('C'), bytes(0x1b), b(']0;title'), bytes(0x07),
  b('D'), bytes(0xc2, 0x9b), b('E'), bytes(0xff, 0xfe), b('F'), b('\u202e'), b('G'), bytes(0x7f),
  b('H'), bytes(0x0d), b('I'), bytes(0x9b), b('J\tK'), bytes(0x08, 0x0b, 0x0c, 0x1f), b('L'),
  bytes(0xed, 0xa0, 0x80), b('M\u2066N\u2069'), bytes(0xc0, 0xaf),
]);
const HOSTILE_SEEN =
  'A\u2400B\u241b[2JC\u241b]0;title\u2407D\ufffdE\ufffd\ufffdF\ufffdG\u2421H\u240dI\ufffdJ\tK\u2408\u240b\u240c\u241fL' +
  '\ufffd\ufffd\ufffdM\ufffdN\ufffd\ufffd\ufffd';

function assertClean(clients: LineClient[]): void {
  for (const c of clients) {
    expect(findControlBytes(c.raw)).toBeNull();
    expect(c.raw.at(-1)).toBe(0x0a); // ends with a whole line
  }
}

function assertCleanJson(clients: JsonClient[]): void {
  for (const c of clients) {
    assertClean([c]);
    const bad = c.events.flatMap(stringsIn).filter((s) => UNSAFE_CHARS.test(s));
    expect(bad).toEqual([]);
  }
}

test('a hostile text-mode message reaches text and JSON readers neutralised, exactly', async () => {
  const server = await h.server();
  const rt = await h.text(server, 'rt');
  const rj = await h.json(server, 'rj');
  const evil = await h.text(server, 'evil');
  evil.write(Buffer.concat([HOSTILE, b('\n')]));
  evil.write(Buffer.concat([b('/me '), HOSTILE, b('\r\n')]));
  evil.write(Buffer.concat([b('/msg rt '), HOSTILE, b('\n')]));
  evil.send('end');
  await rt.waitLine('[lobby] evil: end');
  await rj.waitEvent((e) => e.type === 'message' && e.text === 'end');

  expect(rt.lines.filter((l) => l.includes('evil'))).toEqual([
    expect.stringMatching(/^\*\*\* guest\d+ is now known as evil$/),
    `[lobby] evil: ${HOSTILE_SEEN}`,
    `[lobby] * evil ${HOSTILE_SEEN}`,
    `[pm] evil -> rt: ${HOSTILE_SEEN}`,
    '[lobby] evil: end',
  ]);
  expect(rj.ofType('message').map((m) => [m.nick, m.text, m.action])).toEqual([
    ['evil', HOSTILE_SEEN, undefined],
    ['evil', HOSTILE_SEEN, true],
    ['evil', 'end', undefined],
  ]);
  assertClean([rt, evil]);
  assertCleanJson([rj]);
});

test('hostile JSON strings (escaped controls) in messages, topics, reasons and privmsgs', async () => {
  const server = await h.server();
  const rt = await h.text(server, 'rt');
  const rj = await h.json(server, 'rj', ['lobby', 'dev']);
  const evil = await h.json(server, 'evil', ['lobby', 'dev']);
  const nasty = 'x\u0000\u001b[2J\u001b]0;title\u0007\u009b\u202e\u2066\r\n\u007fy';
  const seen = 'x\u2400\u241b[2J\u241b]0;title\u2407\ufffd\ufffd\ufffd\u240d\u240a\u2421y';
  evil.sendJson(
    { type: 'message', room: 'lobby', text: nasty, id: 1 },
    { type: 'topic', room: 'lobby', topic: nasty, id: 2 },
    { type: 'privmsg', to: 'rt', text: nasty, id: 3 },
    { type: 'part', room: 'dev', reason: nasty, id: 4 },
    { type: 'quit', reason: nasty },
  );
  await evil.waitClosed();
  await rt.waitLine(`*** evil left [lobby] (quit: ${seen})`);
  await rj.waitEvent((e) => e.type === 'parted' && e.room === 'lobby' && e.nick === 'evil');

  expect(rt.lines.slice(rt.lines.findIndex((l) => l.startsWith('[lobby] evil')))).toEqual([
    `[lobby] evil: ${seen}`,
    `*** evil set the topic of [lobby]: ${seen}`,
    `[pm] evil -> rt: ${seen}`,
    `*** evil left [lobby] (quit: ${seen})`,
  ]);
  expect(rj.events.slice(rj.events.findIndex((e) => e.type === 'message'))).toEqual([
    { type: 'message', room: 'lobby', seq: 1, nick: 'evil', text: seen, time: expect.any(Number) },
    { type: 'topic', room: 'lobby', topic: seen, nick: 'evil' },
    { type: 'parted', room: 'dev', nick: 'evil', reason: seen },
    { type: 'parted', room: 'lobby', nick: 'evil', reason: `quit: ${seen}`, quit: true },
  ]);
  // What the sender got back is clean too.
  expect(evil.events.find((e) => e.type === 'topic')).toEqual({ type: 'topic', id: 2, room: 'lobby', topic: seen, nick: 'evil' });
  assertClean([rt]);
  assertCleanJson([rj, evil]);
});

test('nicks and rooms with control codes, bidi or bad UTF-8 are refused (NICK_INVALID / ROOM_INVALID)', async () => {
  const server = await h.server();
  const rt = await h.text(server, 'rt');
  const rj = await h.json(server, 'rj');
  const evil = await h.text(server, 'evil');

  evil.write(Buffer.concat([b('/nick ev'), bytes(0x1b), b('[31mil\n')]));
  await evil.waitLine(
    '! NICK_INVALID: "ev\u241b[31mil" is not a valid nick: use 1-24 letters, digits, "_" or "-", starting with a letter or "_".',
  );
  evil.write(Buffer.concat([b('/nick \u202eevil\n')]));
  await evil.waitLine(/^! NICK_INVALID: "\ufffdevil" is not a valid nick/);
  evil.write(Buffer.concat([b('/nick ev'), bytes(0xff), b('il\n')]));
  await evil.waitLine(/^! NICK_INVALID: "ev\ufffdil" is not a valid nick/);
  evil.write(Buffer.concat([b('/nick ev'), bytes(0xc2, 0x9b), b('il\n')]));
  await evil.waitLine(/^! NICK_INVALID: "ev\ufffdil" is not a valid nick/);
  evil.write(Buffer.concat([b('/join #dev'), bytes(0x07), b('\n')]));
  await evil.waitLine('! ROOM_INVALID: "#dev\u2407" is not a valid room name: use 1-32 letters, digits, "_", "-" or ".".');
  evil.write(Buffer.concat([b('/join d\u2066ev\n')]));
  await evil.waitLine(/^! ROOM_INVALID: "d\ufffdev" is not a valid room name/);
  evil.write(Buffer.concat([b('/join dev'), bytes(0x00), b('\n')]));
  await evil.waitLine(/^! ROOM_INVALID: "dev\u2400" is not a valid room name/);

  const hj = await h.jsonOpen(server, { nick: 'ev\u001bil' });
  expect(await hj.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'NICK_INVALID' });
  hj.sendJson({ type: 'hello', nick: 'okj', rooms: ['lobby', 'r\u202e'] });
  expect(await hj.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'ROOM_INVALID', message: expect.stringContaining('"r\ufffd"') });
  hj.sendJson({ type: 'hello', nick: 'okj' });
  await hj.waitEvent((e) => e.type === 'welcome');
  hj.sendJson({ type: 'nick', nick: 'a\u009bb', id: 1 }, { type: 'join', room: '\u001b[2J', id: 2 }, { type: 'who', room: 'x\u0007', id: 3 });
  expect(await hj.waitEvent((e) => e.id === 1)).toMatchObject({ type: 'error', code: 'NICK_INVALID' });
  expect(await hj.waitEvent((e) => e.id === 2)).toMatchObject({ type: 'error', code: 'ROOM_INVALID' });
  expect(await hj.waitEvent((e) => e.id === 3)).toMatchObject({ type: 'error', code: 'ROOM_INVALID' });

  // Nothing of it reached the others: no nick changes, no joins but okj's, no rooms created.
  evil.send('done');
  await rj.waitEvent((e) => e.type === 'message' && e.text === 'done');
  expect(rj.events.filter((e) => e.type === 'nick')).toEqual([
    { type: 'nick', old: expect.stringMatching(/^guest\d+$/), nick: 'evil' },
  ]);
  expect([...server.hub.rooms.keys()]).toEqual(['lobby']);
  expect(evil.lines.filter((l) => l.startsWith('!'))).toHaveLength(7);
  assertClean([rt, evil]);
  assertCleanJson([rj, hj]);
});

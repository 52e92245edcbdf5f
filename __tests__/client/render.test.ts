import { AddressError, explainConnectError, formatServerAddress, parseServerAddress } from '../../src/client/address.js';
import { backoffDelay, nickCandidate } from '../../src/client/chat-client.js';
import {
  clean,
  clock,
  colorLevel,
  createStyle,
  NICK_PALETTE,
  nickColorIndex,
  PLAIN,
  renderEvent,
  type RenderContext,
} from '../../src/client/render.js';
import { complete } from '../../src/client/terminal.js';
import type { MessageEvent, ServerEvent } from '../../src/protocol/events.js';

const NOW = new Date(2026, 0, 5, 9, 7).getTime(); // local 09:07
const ctx: RenderContext = { now: NOW };
const COLOR = createStyle(1);
// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function msg(over: Partial<MessageEvent> = {}): MessageEvent {
  return { type: 'message', room: 'lobby', seq: 1, nick: 'alice', text: 'hello', time: NOW, ...over };
}

function texts(event: ServerEvent, c: RenderContext = ctx, style = PLAIN): string[] {
  return renderEvent(event, c, style).map((l) => l.text);
}

describe('render: plain lines', () => {
  test('a message is "HH:MM [room] nick: text"', () => {
    expect(texts(msg())).toEqual(['09:07 [lobby] alice: hello']);
    expect(texts(msg({ action: true, text: 'waves' }))).toEqual(['09:07 [lobby] * alice waves']);
  });

  test('an ack shows our own message, with the text of the request it answers', () => {
    const ack: ServerEvent = { type: 'ack', id: 3, room: 'dev', seq: 9, time: NOW };
    const answered = { command: { type: 'message' as const, room: 'dev', text: 'mine' }, sentAt: NOW };
    expect(texts(ack, { now: NOW, answered, ownNick: 'bob' })).toEqual(['09:07 [dev] bob: mine']);
    expect(texts(ack)).toEqual([]); // an ack with no known request has nothing to show
  });

  test('notices start with "--" and errors with "!", and say what happened', () => {
    expect(texts({ type: 'joined', room: 'dev', nick: 'carol' })).toEqual(['09:07 -- carol joined [dev]']);
    expect(texts({ type: 'parted', room: 'dev', nick: 'carol', reason: 'quit: bye all', quit: true })).toEqual([
      '09:07 -- carol quit [dev] (bye all)',
    ]);
    expect(texts({ type: 'error', id: 1, code: 'NO_ROOM', message: 'You are not in any room.' })).toEqual([
      '09:07 ! You are not in any room.',
    ]);
    expect(renderEvent({ type: 'error', code: 'NO_ROOM', message: 'x' }, ctx)[0].kind).toBe('error');
    expect(texts({ type: 'bye', code: 'QUIT', reason: 'Goodbye.' })).toEqual([]);
  });

  test('a gap-filling history after a reconnect shows only what was new', () => {
    const history: ServerEvent = { type: 'history', room: 'lobby', messages: [msg({ seq: 4, text: 'missed' })], first: 1, last: 4, missed: 0 };
    const rejoin = { command: { type: 'join' as const, room: 'lobby', after: 3 }, sentAt: NOW };
    expect(texts(history, { now: NOW, answered: rejoin })).toEqual(['09:07 -- 1 new message in [lobby]:', '09:07 [lobby] alice: missed']);
    expect(texts({ ...history, messages: [] }, { now: NOW, answered: rejoin })).toEqual([]);
  });

  test("an operator's acts, a kick, the modes and the bans read as sentences; who marks operators and logged-in members", () => {
    expect(texts({ type: 'moderation', room: 'lab', by: 'ann', action: 'mute', target: 'bob', until: NOW + 10 * 60_000 })).toEqual(['09:07 -- ann muted bob in [lab] for 10 minutes']);
    expect(texts({ type: 'moderation', room: 'lab', by: 'ann', action: 'ban', target: 'address:10.0.0.7', nick: 'bob', reason: 'spam' })).toEqual(['09:07 -- ann banned bob (address:10.0.0.7) from [lab] (spam)']);
    expect(texts({ type: 'moderation', room: 'lab', by: 'ann', action: 'mode', change: '+i', modes: '+it' })).toEqual(['09:07 -- ann set mode +i on [lab] (modes now: +it)']);
    expect(texts({ type: 'parted', room: 'lab', nick: 'bob', kickedBy: 'ann', reason: 'shouting' })).toEqual(['09:07 -- ann put bob out of [lab] (shouting)']);
    expect(texts({ type: 'parted', room: 'lab', nick: 'bob', self: true, kickedBy: 'ann' })).toEqual(['09:07 -- You were put out of [lab] by ann']);
    expect(texts({ type: 'mode', room: 'lab', modes: '', ops: ['ann'] })).toEqual(['09:07 -- Modes of [lab]: none; operators: ann']);
    expect(texts({ type: 'bans', room: 'lab', bans: [], mutes: [] })).toEqual(['09:07 -- [lab] has no bans and no mutes']);
    expect(texts({ type: 'who', room: 'lab', members: ['ann', 'bob', 'cat'], topic: '', ops: ['ann'], loggedIn: ['ann', 'cat'] })).toEqual(['09:07 -- in [lab] (3): @+ann, bob, +cat']);
    // A hostile server's fields are neutralised here too.
    expect(texts({ type: 'moderation', room: 'lab', by: 'a\u001b[2Jnn', action: 'op', target: 'bob' })[0]).not.toMatch(ANY_CONTROL);
  });

  test('clock is local HH:MM', () => {
    expect(clock(new Date(2026, 5, 1, 23, 5).getTime())).toBe('23:05');
    expect(clock(new Date(2026, 5, 1, 0, 0).getTime())).toBe('00:00');
  });

  test('fields of the wrong type from a misbehaving server do not throw', () => {
    const weird = { type: 'who', room: 42, members: 'not a list', topic: null } as unknown as ServerEvent;
    expect(texts(weird)).toEqual(['09:07 -- in [42] (0): ']);
    expect(texts({ type: 'from-the-future' } as unknown as ServerEvent)).toEqual([]);
  });
});

describe('render: control characters from the network are neutralised', () => {
  const nasty = 'a\u001b[2J\u001b]0;pwned\u0007b\r\nc\u0000\u009b31m\u202eevil\u2028x\ty';

  test('clean() leaves no control character, ESC, C1, bidi override or line separator', () => {
    const out = clean(nasty);
    expect(out).not.toMatch(ANY_CONTROL);
    expect(out).not.toMatch(/[\u202a-\u202e\u2066-\u2069\u2028\u2029]/);
    expect(out).toBe('a\u241b[2J\u241b]0;pwned\u2407b\u240d\u240ac\u2400\ufffd31m\ufffdevil\ufffdx y');
    expect(clean(undefined)).toBe('');
    expect(clean(7)).toBe('7');
  });

  test('every field of every event is cleaned, in plain and coloured output', () => {
    const events: ServerEvent[] = [
      msg({ nick: nasty, text: nasty, room: nasty }),
      { type: 'privmsg', from: nasty, to: nasty, text: nasty, time: NOW },
      { type: 'joined', room: nasty, nick: nasty, self: true, members: [nasty], topic: nasty, seq: 1 },
      { type: 'parted', room: nasty, nick: nasty, reason: nasty },
      { type: 'nick', old: nasty, nick: nasty },
      { type: 'topic', room: nasty, topic: nasty, nick: nasty },
      { type: 'rooms', rooms: [{ room: nasty, members: 1, topic: nasty }] },
      { type: 'who', room: nasty, members: [nasty], topic: nasty },
      { type: 'history', room: nasty, messages: [msg({ text: nasty })], first: 1, last: 1, missed: 0 },
      { type: 'help', commands: [{ usage: nasty, help: nasty }] },
      { type: 'notice', text: nasty },
      { type: 'error', code: 'INTERNAL', message: nasty },
      { type: 'bye', code: 'SHUTTING_DOWN', reason: nasty },
      { type: 'welcome', nick: nasty, server: nasty, version: nasty, history: 'h', rooms: [], limits: {} },
    ];
    for (const e of events) {
      const plain = texts(e);
      expect(plain.length).toBeGreaterThan(0);
      for (const line of plain) expect(line).not.toMatch(ANY_CONTROL);
      // Coloured output has escapes, but only the ones the style added: strip SGR and check again.
      for (const line of texts(e, ctx, COLOR)) {
        // eslint-disable-next-line no-control-regex
        expect(line.replace(/\u001b\[[0-9;]*m/g, '')).not.toMatch(ANY_CONTROL);
      }
    }
  });
});

describe('render: colour', () => {
  test('each nick has one colour, whatever its case, from a palette without red', () => {
    expect(nickColorIndex('alice')).toBe(nickColorIndex('alice'));
    expect(nickColorIndex('Alice')).toBe(nickColorIndex('alice'));
    expect(NICK_PALETTE).not.toContain('red');
    const used = new Set(['alice', 'bob', 'carol', 'dave', 'erin', 'fred', 'gina', 'hank', 'ivy', 'joe'].map(nickColorIndex));
    expect(used.size).toBeGreaterThan(3); // the hash spreads nicks over the palette
    const a = COLOR.nick('alice');
    expect(a).toMatch(/\u001b\[/);
    expect(COLOR.nick('alice')).toBe(a);
    expect(COLOR.nick('ALICE').replace('ALICE', 'alice')).toBe(a);
  });

  test('errors are red and notices dim when coloured', () => {
    const [err] = texts({ type: 'error', code: 'NO_ROOM', message: 'nope' }, ctx, COLOR);
    expect(err).toContain('\u001b[31m! nope');
    const [note] = texts({ type: 'notice', text: 'hi' }, ctx, COLOR);
    expect(note).toContain('\u001b[2m-- hi');
  });

  test('plain output (not a terminal, or NO_COLOR) has no escape at all', () => {
    const tty = { isTTY: true, getColorDepth: () => 8 };
    expect(colorLevel(tty, {})).toBe(2);
    expect(colorLevel(tty, { NO_COLOR: '1' })).toBe(0);
    expect(colorLevel(tty, { NO_COLOR: '' })).toBe(2); // no-color.org: an empty value does not count
    expect(colorLevel({ isTTY: false, getColorDepth: () => 24 }, { FORCE_COLOR: '3' })).toBe(0);
    expect(colorLevel({}, {})).toBe(0);
    const plain = createStyle(0);
    for (const e of [msg(), { type: 'error', code: 'NO_ROOM', message: 'x' } as ServerEvent])
      for (const line of texts(e, ctx, plain)) expect(line).not.toContain('\u001b');
  });
});

describe('address parsing', () => {
  test.each([
    ['[::1]:7447', '::1', 7447],
    ['[::1]', '::1', 7447],
    ['[fe80::1%eth0]:9000', 'fe80::1%eth0', 9000],
    ['::1', '::1', 7447],
    ['127.0.0.1:8000', '127.0.0.1', 8000],
    ['chat.lan:1234', 'chat.lan', 1234],
    ['chat.lan', 'chat.lan', 7447],
    ['  localhost  ', 'localhost', 7447],
  ])('%s', (text, host, port) => {
    expect(parseServerAddress(text, 7447)).toEqual({ host, port });
  });

  test.each(['', 'host:', 'host:0', 'host:65536', 'host:http', ':7447', '[::1', '[::1]x', '[nothost]:1', '1:2:3'])(
    'rejects %j with a reason',
    (text) => {
      expect(() => parseServerAddress(text, 7447)).toThrow(AddressError);
    },
  );

  test('formats back with brackets for IPv6', () => {
    expect(formatServerAddress({ host: '::1', port: 7447 })).toBe('[::1]:7447');
    expect(formatServerAddress({ host: 'chat.lan', port: 1 })).toBe('chat.lan:1');
  });

  test('a refused connection says what to do', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(explainConnectError(err, { host: '127.0.0.1', port: 9 })).toBe(
      'could not connect to 127.0.0.1:9: connection refused — is the server running? start one with: roomcast serve',
    );
    const both = Object.assign(new AggregateError([err, err]), { code: undefined });
    expect(explainConnectError(both, { host: 'localhost', port: 9 })).toContain('connection refused');
  });
});

describe('client helpers', () => {
  test('taken nicks get a numbered suffix within the length limit', () => {
    expect(nickCandidate('alice', 0)).toBe('alice');
    expect(nickCandidate('alice', 1)).toBe('alice_2');
    expect(nickCandidate('a'.repeat(24), 9)).toBe('a'.repeat(21) + '_10');
  });

  test('backoff doubles from 0.5 s to at most 10 s, with jitter taking off up to a quarter', () => {
    const b = { initialMs: 500, maxMs: 10_000, jitter: 0.25 };
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelay(b, n, () => 0))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(backoffDelay(b, 2, () => 0.999999)).toBe(1500);
  });
});

describe('tab completion', () => {
  const known = { nicks: ['alice', 'Albert', 'bob'], rooms: ['lobby', 'dev'] };

  test('commands after "/"', () => {
    expect(complete('/jo', known)).toEqual([['/join '], '/jo']);
    expect(complete('/p', known)[0]).toEqual(['/part', '/pass', '/password', '/ping']);
  });

  test('nicks anywhere, with ": " when addressing someone at the start of a line', () => {
    expect(complete('ali', known)).toEqual([['alice: '], 'ali']);
    expect(complete('hi bo', known)).toEqual([['bob '], 'bo']);
    expect(complete('al', known)[0]).toEqual(['Albert', 'alice']);
    expect(complete('/msg b', known)).toEqual([['bob '], 'b']);
    expect(complete('/msg ', known)[0]).toEqual(['Albert', 'alice', 'bob']);
    expect(complete('hello ', known)[0]).toEqual([]);
  });

  test('rooms after /join and /part', () => {
    expect(complete('/join d', known)).toEqual([['dev '], 'd']);
    expect(complete('/part l', known)).toEqual([['lobby '], 'l']);
  });
});

describe('search results', () => {
  const hits = [
    { seq: 9, nick: 'ann', text: 'red sky, red\u001b[2J sun', time: NOW, marks: [[0, 3], [9, 12]] as [number, number][] },
    { seq: 4, nick: 'bob', text: 'a red kite', time: NOW, action: true as const, marks: [[2, 5], [40, 50]] as [number, number][] },
  ];

  test('plain: a header, then the hits newest first with the words between asterisks, control bytes neutralised', () => {
    const lines = texts({ type: 'search', room: 'lobby', q: 'red', hits, more: true });
    expect(lines[0]).toBe('09:07 -- 2 messages in [lobby] match "red", newest first (there are more: narrow the words):');
    expect(lines[1]).toMatch(/^09:07 \[lobby\] ann: \*red\* sky, \*red\*.*\[2J sun$/);
    expect(lines[1]).not.toMatch(ANY_CONTROL);
    expect(lines[2]).toBe('09:07 [lobby] * bob a *red* kite'); // a mark past the end is ignored
  });

  test('in colour the words are shown inverse, and no hits says so', () => {
    expect(texts({ type: 'search', room: 'lobby', q: 'red', hits, more: false }, ctx, COLOR)[2]).toContain('\u001b[7mred\u001b[27m');
    expect(texts({ type: 'search', room: 'lobby', q: 'zebra', hits: [], more: false })).toEqual(['09:07 -- no messages in [lobby] match "zebra"']);
  });
});

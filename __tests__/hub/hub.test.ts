import { Hub, type HubOptions } from '../../src/hub/hub.js';
import type { Link, Session } from '../../src/hub/session.js';
import { Frame, type WireMode } from '../../src/protocol/frame.js';
import type { EventOf, MessageEvent, ServerEvent } from '../../src/protocol/events.js';
import { parseTextLine, parseJsonLine, type Command } from '../../src/protocol/commands.js';
import { RoomcastError } from '../../src/protocol/errors.js';
import type { RoomRelay } from '../../src/hub/room-relay.js';

class FakeLink implements Link {
  readonly frames: Frame[] = [];
  closedWith: Omit<EventOf<'bye'>, 'type'> | null | undefined = undefined;
  constructor(
    readonly peer: string,
    readonly mode: WireMode = 'json',
  ) {}
  send(frame: Frame): void {
    this.frames.push(frame);
  }
  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void {
    this.closedWith = bye;
  }
  get events(): ServerEvent[] {
    return this.frames.map((f) => f.event);
  }
  /** What the link got since the last take(). */
  private seen = 0;
  take(): ServerEvent[] {
    const out = this.events.slice(this.seen);
    this.seen = this.frames.length;
    return out;
  }
  text(): string[] {
    return this.frames.map((f) => f.text?.toString('utf8') ?? '(none)');
  }
}

const NOW = 1_767_225_600_000;

function makeHub(opts: Partial<HubOptions> = {}): Hub {
  return new Hub({ now: () => NOW, ...opts });
}

function join(hub: Hub, nick: string, rooms?: string[], mode: WireMode = 'json'): { s: Session; link: FakeLink } {
  const link = new FakeLink(`peer-${nick}`, mode);
  const s = hub.attach(link, rooms ? { nick, rooms } : { nick });
  link.take();
  return { s, link };
}

function msg(room: string, seq: number, nick: string, text: string): MessageEvent {
  return { type: 'message', room, seq, nick, text, time: NOW };
}

describe('Hub', () => {
  test('attach: welcome, joined (self) in the default room, guest nicks', () => {
    const hub = makeHub({ limits: { maxLine: 10 } });
    const link = new FakeLink('p1', 'json');
    const s = hub.attach(link);
    expect(s.nick).toBe('guest1');
    expect(link.events).toEqual([
      { type: 'welcome', nick: 'guest1', server: 'roomcast', version: '0.1.0', history: expect.stringMatching(/^[0-9a-f]{16}$/), rooms: ['lobby'], limits: { maxLine: 10 } },
      { type: 'joined', room: 'lobby', nick: 'guest1', self: true, topic: '', members: ['guest1'], ops: [], modes: '', seq: 0, epoch: hub.store.historyId() },
      { type: 'history', room: 'lobby', messages: [], first: 1, last: 0, missed: 0 },
    ]);
    expect(hub.attach(new FakeLink('p2')).nick).toBe('guest2');
  });

  test('text links show no empty history on joining, and say there is none when asked', () => {
    const hub = makeHub();
    const link = new FakeLink('p1', 'text');
    const s = hub.attach(link);
    // The hub sends every link the same events; the text wire leaves out the empty replay.
    expect(link.events.map((e) => e.type)).toEqual(['welcome', 'joined', 'history']);
    expect(link.text().slice(2)).toEqual(['(none)']);
    hub.handle(s, { type: 'history' });
    expect(link.text().slice(3)).toEqual(['*** No messages yet in [lobby]\n']);
    hub.handle(s, { type: 'message', text: 'one' });
    hub.handle(s, { type: 'history', limit: 0 });
    expect(link.text().slice(-1)).toEqual(['*** No earlier messages in [lobby]\n']);
  });

  test('nicks: invalid, reserved, taken (case-insensitively)', () => {
    const hub = makeHub();
    join(hub, 'Zoë');
    const code = (nick: string): string => {
      try {
        hub.attach(new FakeLink('x'), { nick });
        return 'ok';
      } catch (e) {
        return (e as RoomcastError).code;
      }
    };
    expect(code('zoë')).toBe('NICK_TAKEN');
    expect(code('ZOË')).toBe('NICK_TAKEN');
    expect(code('ZOE\u0308')).toBe('NICK_INVALID'); // decomposed: a combining mark is not a letter
    expect(code('Server')).toBe('NICK_RESERVED');
    expect(code('9lives')).toBe('NICK_INVALID');
    expect(code('a\u241bb')).toBe('NICK_INVALID');
    expect(code('bob')).toBe('ok');
    expect([...hub.sessions.keys()].sort()).toEqual(['bob', 'zoë']);
  });

  test('a failed attach registers nothing', () => {
    const hub = makeHub();
    expect(() => hub.attach(new FakeLink('x'), { nick: 'al', rooms: ['ok', 'bad room'] })).toThrow(RoomcastError);
    expect(hub.sessions.size).toBe(0);
    expect([...hub.rooms.keys()]).toEqual(['lobby']);
  });

  test('broadcast reaches every member but the sender, with one Frame object shared by all', () => {
    const hub = makeHub();
    const a = join(hub, 'a');
    const b = join(hub, 'b');
    const c = join(hub, 'c', undefined, 'text');
    const d = join(hub, 'd', ['elsewhere']);
    for (const x of [a, b, c]) x.link.take();
    hub.handle(a.s, { type: 'message', text: 'hi', id: 1 });
    expect(a.link.take()).toEqual([{ type: 'ack', id: 1, room: 'lobby', seq: 1, time: NOW }]);
    expect(b.link.events.at(-1)).toEqual(msg('lobby', 1, 'a', 'hi'));
    expect(b.link.frames.at(-1)).toBe(c.link.frames.at(-1)); // the same object
    expect(c.link.text().at(-1)).toBe('[lobby] a: hi\n');
    expect(d.link.take()).toEqual([]);
    expect(hub.stats).toEqual({ messages: 1, deliveries: 2, privmsgs: 0, images: 0 });
    // The history keeps that same frame too.
    expect(hub.rooms.get('lobby')!.log.window(0, 5)![0]).toBe(b.link.frames.at(-1));
  });

  test('the hub acks every sender whatever its wire mode; the text wire shows no ack', () => {
    const hub = makeHub();
    const a = join(hub, 'a', undefined, 'text');
    join(hub, 'b');
    a.link.take();
    hub.handle(a.s, { type: 'message', text: 'hi' });
    const [ack, ...rest] = a.link.frames.slice(-1);
    expect(rest).toEqual([]);
    expect(ack.event).toMatchObject({ type: 'ack', room: 'lobby', seq: 1 });
    expect(ack.text).toBeNull();
  });

  test('what enters a room is sanitised by the hub, whoever parsed it', () => {
    const hub = makeHub();
    const a = join(hub, 'a');
    const b = join(hub, 'b');
    b.link.take();
    // A program that skipped the command parser (the HTTP API calls say() directly).
    hub.say(hub.rooms.get('lobby')!, 'a', 'bell\u0007 and \u202eevil');
    const [said] = b.link.take() as MessageEvent[];
    expect(said.text).not.toMatch(/[\u0007\u202e]/);
    hub.handle(a.s, { type: 'topic', topic: 'tab\u0007' });
    expect(hub.rooms.get('lobby')!.topic).not.toMatch(/\u0007/);
  });

  test('the parsers pass control characters on; the hub neutralises them in all it relays and all it shows back', () => {
    const hub = makeHub();
    const a = join(hub, 'a', ['dev', 'lobby']);
    const b = join(hub, 'b', ['dev', 'lobby']);
    b.link.take();
    const json = (o: object): Command => parseJsonLine(JSON.stringify(o));
    for (const cmd of [
      parseTextLine('a\x1b[2Jb\x07\x00')!,
      parseTextLine('/msg b \u202eevil\x9b')!,
      json({ type: 'message', text: 'x\u001b]0;t\u0007\u009b\u2066\n', room: 'lobby' }),
      parseJsonLine('{"type":"message","text":"a\u009bb\u202e"}'), // read the fast way
      json({ type: 'message', text: '\r\n' }), // not empty: two control pictures
      json({ type: 'topic', topic: ' t\u0007 ' }),
      parseTextLine('/part dev bye\x1b')!,
    ])
      hub.handle(a.s, cmd);
    expect(b.link.take()).toEqual([
      msg('lobby', 1, 'a', 'a\u241b[2Jb\u2407\u2400'),
      { type: 'privmsg', from: 'a', to: 'b', text: '\ufffdevil\ufffd', time: NOW },
      msg('lobby', 2, 'a', 'x\u241b]0;t\u2407\ufffd\ufffd\u240a'),
      msg('lobby', 3, 'a', 'a\ufffdb\ufffd'),
      msg('lobby', 4, 'a', '\u240d\u240a'),
      { type: 'topic', room: 'lobby', topic: 't\u2407', nick: 'a' },
      { type: 'parted', room: 'dev', nick: 'a', reason: 'bye\u241b' },
    ]);
    expect(a.link.take().filter((e) => e.type === 'parted')).toEqual([
      { type: 'parted', room: 'dev', nick: 'a', self: true, reason: 'bye\u241b' },
    ]);
    for (const cmd of [
      parseTextLine('/nick ev\x1bil')!,
      json({ type: 'join', room: 'r\u0000' }),
      json({ type: 'who', room: '\u202ex' }),
      parseTextLine('/msg \x07bob hi')!,
    ])
      hub.handle(a.s, cmd);
    expect(a.link.take().map((e) => (e.type === 'error' ? e.message.split(' ')[0] : e.type))).toEqual([
      '"ev\u241bil"',
      '"r\u2400"',
      '"\ufffdx"',
      'Nobody',
    ]);
    expect(hub.sessions.get('a')!.nick).toBe('a');
    hub.handle(a.s, parseTextLine('/quit gone\x1b[0m')!);
    expect(b.link.take()).toEqual([{ type: 'parted', room: 'lobby', nick: 'a', reason: 'quit: gone\u241b[0m', quit: true }]);
  });

  test('errors go to the sender alone, with its id', () => {
    const hub = makeHub();
    const a = join(hub, 'a');
    const b = join(hub, 'b');
    a.link.take();
    hub.handle(a.s, { type: 'message', room: 'nowhere', text: 'x', id: 'q' });
    hub.handle(a.s, { type: 'message', text: '   ', id: 2 });
    hub.handle(a.s, { type: 'privmsg', to: 'zed', text: 'x' });
    expect(a.link.take().map((e) => [e.type, (e as { code?: string }).code, (e as { id?: unknown }).id])).toEqual([
      ['error', 'NOT_IN_ROOM', 'q'],
      ['error', 'EMPTY_MESSAGE', 2],
      ['error', 'NO_SUCH_NICK', undefined],
    ]);
    expect(b.link.take()).toEqual([]);
  });

  test('text longer than maxTextLength is refused', () => {
    const hub = makeHub({ maxTextLength: 5 });
    const a = join(hub, 'a');
    hub.handle(a.s, { type: 'message', text: '123456' });
    expect(a.link.take()).toEqual([
      { type: 'error', code: 'TEXT_TOO_LONG', message: 'That text is longer than 5 characters. Split it into shorter messages.' },
    ]);
  });

  test('join: others are told, the joiner gets members, seq and history; a second join only makes it current', () => {
    const hub = makeHub({ replay: 2 });
    const a = join(hub, 'a', ['dev']);
    for (const t of ['one', 'two', 'three']) hub.handle(a.s, { type: 'message', text: t });
    a.link.take();
    const b = join(hub, 'b', []);
    hub.handle(b.s, { type: 'join', room: '#DEV', id: 5 });
    expect(a.link.take()).toEqual([{ type: 'joined', room: 'dev', nick: 'b' }]);
    expect(b.link.take()).toEqual([
      { type: 'joined', id: 5, room: 'dev', nick: 'b', self: true, topic: '', members: ['a', 'b'], ops: ['a'], modes: '', seq: 3, epoch: hub.store.historyId() },
      { type: 'history', id: 5, room: 'dev', messages: [msg('dev', 2, 'a', 'two'), msg('dev', 3, 'a', 'three')], first: 1, last: 3, missed: 0 },
    ]);
    hub.handle(b.s, { type: 'join', room: 'lobby' });
    hub.handle(b.s, { type: 'join', room: 'dev' });
    expect(a.link.take()).toEqual([]);
    expect(b.s.current?.name).toBe('dev');
  });

  test('join with "after" fills exactly the gap, and counts what is no longer kept', () => {
    const hub = makeHub({ historySize: 4 });
    const a = join(hub, 'a');
    for (let i = 1; i <= 6; i++) hub.handle(a.s, { type: 'message', text: `m${i}` });
    const b = join(hub, 'b', []);
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 4 });
    expect(b.link.take()[1]).toEqual({
      type: 'history',
      room: 'lobby',
      messages: [msg('lobby', 5, 'a', 'm5'), msg('lobby', 6, 'a', 'm6')],
      first: 3,
      last: 6,
      missed: 0,
    });
    hub.handle(b.s, { type: 'part' });
    b.link.take();
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 1 });
    const h = b.link.take()[1] as EventOf<'history'>;
    expect(h.messages.map((m) => m.seq)).toEqual([3, 4, 5, 6]);
    expect([h.first, h.last, h.missed]).toEqual([3, 6, 1]);
  });

  test('join with "after" of another numbering (another epoch): told so, and given the room as it is now', () => {
    const hub = makeHub({ replay: 2 });
    const a = join(hub, 'a');
    for (let i = 1; i <= 5; i++) hub.handle(a.s, { type: 'message', text: `m${i}` });
    const b = join(hub, 'b', []);
    // On a single server every room's numbering is the store's history.
    const epoch = hub.store.historyId();
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 3, epoch, id: 1 });
    const same = b.link.take();
    expect(same[0]).toMatchObject({ type: 'joined', self: true, seq: 5, epoch });
    expect(same.map((e) => e.type)).toEqual(['joined', 'history']);
    expect((same[1] as EventOf<'history'>).messages.map((m) => m.seq)).toEqual([4, 5]);
    hub.handle(b.s, { type: 'part' });
    b.link.take();
    hub.handle(b.s, { type: 'join', room: 'lobby', after: 1, epoch: 'a-numbering-long-gone', id: 2 });
    const other = b.link.take();
    expect(other.map((e) => e.type)).toEqual(['joined', 'notice', 'history']);
    expect(other[0]).toMatchObject({ epoch });
    expect(other[1]).toMatchObject({ id: 2, text: expect.stringContaining('the history you had seen here is gone') });
    // The recent past (replay: 2), not "everything after 1" of numbers that meant other messages.
    expect((other[2] as EventOf<'history'>).messages.map((m) => m.seq)).toEqual([4, 5]);
  });

  test('part: rooms disappear when empty unless predefined; current room moves', () => {
    const hub = makeHub({ rooms: ['keep'] });
    const a = join(hub, 'a', ['keep', 'tmp', 'lobby']);
    const b = join(hub, 'b', ['tmp']);
    a.link.take();
    hub.handle(a.s, { type: 'part', room: 'tmp', reason: 'bye', id: 1 });
    expect(a.link.take()).toEqual([{ type: 'parted', id: 1, room: 'tmp', nick: 'a', self: true, reason: 'bye' }]);
    expect(b.link.take()).toEqual([{ type: 'parted', room: 'tmp', nick: 'a', reason: 'bye' }]);
    expect(a.s.current?.name).toBe('lobby');
    hub.handle(b.s, { type: 'part' });
    expect(hub.rooms.has('tmp')).toBe(false);
    hub.handle(a.s, { type: 'part' });
    hub.handle(a.s, { type: 'part' });
    expect(a.s.current).toBeNull();
    expect([...hub.rooms.keys()].sort()).toEqual(['keep', 'lobby']);
    hub.handle(a.s, { type: 'message', text: 'x' });
    expect(a.link.take().at(-1)).toMatchObject({ type: 'error', code: 'NO_ROOM' });
  });

  test('rename: every peer is told once even when sharing several rooms; case-only change allowed', () => {
    const hub = makeHub();
    const a = join(hub, 'a', ['r1', 'r2', 'r3']);
    const b = join(hub, 'b', ['r1', 'r2']);
    const c = join(hub, 'c', ['r3']);
    const d = join(hub, 'd', ['other']);
    a.link.take();
    hub.handle(a.s, { type: 'nick', nick: 'alice', id: 9 });
    expect(a.link.take()).toEqual([{ type: 'nick', id: 9, old: 'a', nick: 'alice', self: true }]);
    expect(b.link.take()).toEqual([{ type: 'nick', old: 'a', nick: 'alice' }]);
    expect(c.link.take()).toEqual([{ type: 'nick', old: 'a', nick: 'alice' }]);
    expect(b.link.frames.at(-1)).toBe(c.link.frames.at(-1));
    expect(d.link.take()).toEqual([]);
    expect(hub.sessions.has('a')).toBe(false);
    expect(hub.sessions.get('alice')).toBe(a.s);
    hub.handle(a.s, { type: 'nick', nick: 'ALICE' });
    expect(a.link.take()).toEqual([{ type: 'nick', old: 'alice', nick: 'ALICE', self: true }]);
    hub.handle(b.s, { type: 'nick', nick: 'Alice' });
    expect(b.link.take().at(-1)).toMatchObject({ type: 'error', code: 'NICK_TAKEN' });
  });

  test('look-alike nicks: a Cyrillic а in "alice" is refused as mixed scripts, a full-width "alice" is alice, a Cyrillic name is its own', () => {
    const hub = makeHub();
    const alice = join(hub, 'alice');
    const link = new FakeLink('peer-x');
    expect(() => hub.attach(link, { nick: '\u0430lice' })).toThrow(expect.objectContaining({ code: 'NICK_MIXED_SCRIPTS', message: expect.stringContaining('mixes letters of Cyrillic and Latin') }));
    expect(() => hub.attach(link, { nick: 'ａｌｉｃｅ' })).toThrow(expect.objectContaining({ code: 'NICK_TAKEN' }));
    const anna = hub.attach(link, { nick: 'анна' });
    expect(anna.nick).toBe('анна');
    // Renaming oneself to a mixed spelling of one's own key is refused too.
    hub.handle(alice.s, { type: 'nick', nick: 'ALICE', id: 1 });
    expect(alice.link.take().at(-1)).toMatchObject({ type: 'nick', nick: 'ALICE' });
    hub.handle(alice.s, { type: 'nick', nick: 'аLICE', id: 2 });
    expect(alice.link.take().at(-1)).toMatchObject({ type: 'error', id: 2, code: 'NICK_MIXED_SCRIPTS' });
  });

  test('rename to a case/Unicode variant of your own nick is still validated', () => {
    const hub = makeHub();
    const a = join(hub, 'Zoë');
    // Same key as "Zoë", but not a valid nick: the combining mark is not a letter.
    hub.handle(a.s, { type: 'nick', nick: 'ZOE\u0308' });
    expect(a.link.take().at(-1)).toMatchObject({ type: 'error', code: 'NICK_INVALID' });
    expect(a.s.nick).toBe('Zoë');
  });

  test('privmsg: the recipient and the sender get the same event; nick lookup ignores case', () => {
    const hub = makeHub();
    const a = join(hub, 'a', []);
    const b = join(hub, 'Bob', []);
    hub.handle(a.s, { type: 'privmsg', to: 'BOB', text: 'psst', id: 3 });
    expect(b.link.take()).toEqual([{ type: 'privmsg', from: 'a', to: 'Bob', text: 'psst', time: NOW }]);
    expect(a.link.take()).toEqual([{ type: 'privmsg', id: 3, from: 'a', to: 'Bob', text: 'psst', time: NOW }]);
    expect(hub.stats.privmsgs).toBe(1);
  });

  test('topic: set (trimmed), broadcast to the others, shown', () => {
    const hub = makeHub();
    const a = join(hub, 'a');
    const b = join(hub, 'b');
    a.link.take();
    hub.handle(a.s, { type: 'topic', topic: '  release friday ' });
    expect(b.link.take()).toEqual([{ type: 'topic', room: 'lobby', topic: 'release friday', nick: 'a' }]);
    expect(a.link.take()).toEqual([{ type: 'topic', room: 'lobby', topic: 'release friday', nick: 'a' }]);
    hub.handle(b.s, { type: 'topic' });
    expect(b.link.take()).toEqual([{ type: 'topic', room: 'lobby', topic: 'release friday' }]);
    hub.handle(b.s, { type: 'topic', topic: 'x'.repeat(301) });
    expect(b.link.take().at(-1)).toMatchObject({ type: 'error', code: 'TEXT_TOO_LONG' });
  });

  test('detach: rooms are told (quit), nick freed, empty rooms dropped; twice is harmless', () => {
    const hub = makeHub();
    const a = join(hub, 'a', ['lobby', 'solo']);
    const b = join(hub, 'b');
    hub.detach(a.s, 'connection reset');
    hub.detach(a.s, 'again');
    expect(b.link.take()).toEqual([{ type: 'parted', room: 'lobby', nick: 'a', reason: 'connection reset', quit: true }]);
    expect(hub.sessions.has('a')).toBe(false);
    expect(hub.rooms.has('solo')).toBe(false);
    hub.handle(a.s, { type: 'message', text: 'ghost' });
    expect(b.link.take()).toEqual([]);
    // The nick can be had again.
    expect(hub.attach(new FakeLink('p'), { nick: 'A' }).nick).toBe('A');
  });

  test('quit: others see the reason, the link is closed with QUIT', () => {
    const hub = makeHub();
    const a = join(hub, 'a');
    const b = join(hub, 'b');
    hub.handle(a.s, parseTextLine('/quit lunch') as Command);
    expect(b.link.take()).toEqual([{ type: 'parted', room: 'lobby', nick: 'a', reason: 'quit: lunch', quit: true }]);
    expect(a.link.closedWith).toEqual({ code: 'QUIT', reason: 'Goodbye.' });
  });

  test('too many rooms', () => {
    const hub = makeHub({ maxRoomsPerSession: 2 });
    const a = join(hub, 'a', ['r1', 'r2']);
    hub.handle(a.s, { type: 'join', room: 'r3' });
    expect(a.link.take().at(-1)).toMatchObject({ type: 'error', code: 'TOO_MANY_ROOMS' });
    expect(() => hub.attach(new FakeLink('x'), { nick: 'b', rooms: ['1', '2', '3'] })).toThrow(
      'You are in 2 rooms already, the most allowed. /part one first.',
    );
  });

  test('who, rooms, history, ping, help, second hello', () => {
    const hub = makeHub({ rooms: ['zeta'] });
    const a = join(hub, 'a');
    join(hub, 'b');
    hub.handle(a.s, { type: 'message', text: 'one' });
    a.link.take();
    hub.handle(a.s, parseJsonLine('{"type":"who","room":"zeta"}'));
    hub.handle(a.s, parseJsonLine('{"type":"who"}'));
    hub.handle(a.s, parseJsonLine('{"type":"who","room":"none"}'));
    hub.handle(a.s, parseJsonLine('{"type":"rooms","id":1}'));
    hub.handle(a.s, parseJsonLine('{"type":"history","limit":1}'));
    hub.handle(a.s, parseJsonLine('{"type":"ping"}'));
    hub.handle(a.s, parseJsonLine('{"type":"hello","nick":"x"}'));
    const ev = a.link.take();
    expect(ev.slice(0, 6)).toEqual([
      { type: 'who', room: 'zeta', members: [], topic: '' },
      { type: 'who', room: 'lobby', members: ['a', 'b'], topic: '' },
      expect.objectContaining({ type: 'error', code: 'NO_SUCH_ROOM' }),
      { type: 'rooms', id: 1, rooms: [{ room: 'lobby', members: 2, topic: '' }, { room: 'zeta', members: 0, topic: '' }] },
      { type: 'history', room: 'lobby', messages: [msg('lobby', 1, 'a', 'one')], first: 1, last: 1, missed: 0 },
      { type: 'pong', time: NOW },
    ]);
    expect(ev[6]).toMatchObject({ type: 'error', code: 'ALREADY_REGISTERED' });
  });

  test('an unexpected exception in a handler becomes INTERNAL for that session only', () => {
    const failed: unknown[] = [];
    const hub = new Hub({ now: () => NOW }, { failed: (_s, err) => failed.push(err) });
    const a = join(hub, 'a');
    hub.handle(a.s, { type: 'dance' } as unknown as Command);
    expect(a.link.take()).toEqual([{ type: 'error', code: 'INTERNAL', message: 'internal error' }]);
    expect(failed).toHaveLength(1);
  });
});

describe('Hub in a cluster (a fake relay)', () => {
  /** A relay whose numbers come when the test says: `answer()` numbers the oldest publish. */
  class SlowRelay implements RoomRelay {
    reachable = true;
    private seq = 0;
    readonly waiting: { resolve: (seq: number) => void }[] = [];
    publish(): Promise<number> {
      return new Promise((resolve) => this.waiting.push({ resolve }));
    }
    answer(n = 1): void {
      for (const w of this.waiting.splice(0, n)) w.resolve(++this.seq);
    }
    follow = () => Promise.resolve({ lastSeq: 0, firstSeq: 1, topic: '', epoch: 'e1', members: [] });
    unfollow(): void {}
    announce(): void {}
    claimNick = () => Promise.resolve(true);
    releaseNick(): void {}
    listRooms = () => Promise.resolve([]);
    sendPrivate = () => Promise.resolve(false);
  }
  const settle = () => new Promise((r) => setImmediate(r));

  test("past maxRelayBacklog events waiting for their numbers the hub takes no input, until half are answered; what Redis' absence holds back does not count", async () => {
    const hub = makeHub({ maxRelayBacklog: 4 });
    const relay = new SlowRelay();
    hub.useRelay(relay);
    const link = new FakeLink('peer-a');
    const s = await hub.admit(link, { nick: 'a' });
    await settle();
    expect(link.take().find((e) => e.type === 'joined')).toMatchObject({ self: true, epoch: 'e1' });
    for (let i = 0; i < 3; i++) hub.handle(s, { type: 'message', text: `m${i}` });
    expect(hub.intake.open).toBe(true);
    hub.handle(s, { type: 'message', text: 'm3' });
    expect([hub.intake.open, hub.intake.backlog]).toEqual([false, 4]);
    relay.answer(1);
    await settle();
    expect(hub.intake.open).toBe(false);
    relay.answer(1);
    await settle();
    expect([hub.intake.open, hub.intake.backlog]).toEqual([true, 2]);
    // The acks came as the numbers did.
    expect(link.take().filter((e) => e.type === 'ack').map((e) => (e as EventOf<'ack'>).seq)).toEqual([1, 2]);
    relay.reachable = false;
    for (let i = 0; i < 10; i++) hub.handle(s, { type: 'message', text: `away${i}` });
    expect([hub.intake.open, hub.intake.backlog]).toEqual([true, 2]);
    // Answering them all settles the two counted, and never takes the count below zero.
    relay.answer(12);
    await settle();
    expect([hub.intake.open, hub.intake.backlog]).toEqual([true, 0]);
  });
});

describe('Hub in a cluster: a topic read from the cluster', () => {
  test('is told when newer than the last change this node heard of, and not when older or the same', () => {
    let now = 1000;
    const hub = makeHub({ now: () => now });
    const a = join(hub, 'a', ['dev']);
    a.link.take();
    hub.handle(a.s, { type: 'topic', room: 'dev', topic: 'mine' });
    a.link.take();
    hub.topicRead('dev', { topic: 'stale', nick: 'b', time: 999 });
    hub.topicRead('dev', { topic: 'mine', nick: 'a', time: 2000 });
    expect(a.link.take()).toEqual([]);
    now = 3000;
    hub.topicRead('dev', { topic: 'set elsewhere meanwhile', nick: 'b', time: 2500 });
    expect(a.link.take()).toEqual([{ type: 'topic', room: 'dev', topic: 'set elsewhere meanwhile', nick: 'b' }]);
    hub.topicRead('nowhere', { topic: 'x', nick: 'b', time: 5000 });
  });
});

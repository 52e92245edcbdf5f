import { parseTextLine, parseJsonLine, commandFromObject, isHelloLine, HELP, plainMessage } from '../../src/protocol/commands.js';
import { RoomcastError, type ErrorCode } from '../../src/protocol/errors.js';

/** What a parse gives: the command, or the code of the error it throws. */
function outcome(f: () => unknown): unknown {
  const code = codeOf(f);
  return code === 'no error' ? f() : code;
}

function codeOf(f: () => unknown): ErrorCode | string {
  try {
    f();
  } catch (err) {
    return err instanceof RoomcastError ? err.code : `not a RoomcastError: ${String(err)}`;
  }
  return 'no error';
}

describe('parseTextLine', () => {
  test('plain text is a message to the current room, kept exactly (spaces included)', () => {
    expect(parseTextLine('hello  world ')).toEqual({ type: 'message', text: 'hello  world ' });
  });

  test('blank lines are ignored', () => {
    expect(parseTextLine('')).toBeNull();
    expect(parseTextLine('   \t ')).toBeNull();
  });

  test('"//" escapes a message that starts with a slash', () => {
    expect(parseTextLine('//etc/passwd is a file')).toEqual({ type: 'message', text: '/etc/passwd is a file' });
  });

  test('commands, case-insensitive, with aliases', () => {
    expect(parseTextLine('/NICK alice')).toEqual({ type: 'nick', nick: 'alice' });
    expect(parseTextLine('/j #dev')).toEqual({ type: 'join', room: '#dev' });
    expect(parseTextLine('/join dev')).toEqual({ type: 'join', room: 'dev' });
    expect(parseTextLine('/part')).toEqual({ type: 'part' });
    expect(parseTextLine('/leave dev see you')).toEqual({ type: 'part', room: 'dev', reason: 'see you' });
    expect(parseTextLine('/list')).toEqual({ type: 'rooms' });
    expect(parseTextLine('/names dev')).toEqual({ type: 'who', room: 'dev' });
    expect(parseTextLine('/who')).toEqual({ type: 'who' });
    expect(parseTextLine('/ping')).toEqual({ type: 'ping' });
    expect(parseTextLine('/?')).toEqual({ type: 'help' });
    expect(parseTextLine('/quit')).toEqual({ type: 'quit' });
    expect(parseTextLine('/exit gone for lunch')).toEqual({ type: 'quit', reason: 'gone for lunch' });
  });

  test('/msg takes a nick and the rest of the line as text', () => {
    expect(parseTextLine('/msg bob  hi   there')).toEqual({ type: 'privmsg', to: 'bob', text: 'hi   there' });
    expect(parseTextLine('/m bob x')).toEqual({ type: 'privmsg', to: 'bob', text: 'x' });
  });

  test('/me is an action message', () => {
    expect(parseTextLine('/me waves')).toEqual({ type: 'message', action: true, text: 'waves' });
  });

  test('/topic with and without text; /history with a count', () => {
    expect(parseTextLine('/topic')).toEqual({ type: 'topic' });
    expect(parseTextLine('/topic release on friday')).toEqual({ type: 'topic', topic: 'release on friday' });
    expect(parseTextLine('/history 5')).toEqual({ type: 'history', limit: 5 });
    expect(parseTextLine('/history')).toEqual({ type: 'history' });
  });

  test('usage errors', () => {
    expect(codeOf(() => parseTextLine('/nick'))).toBe('USAGE');
    expect(codeOf(() => parseTextLine('/join'))).toBe('USAGE');
    expect(codeOf(() => parseTextLine('/msg bob'))).toBe('USAGE');
    expect(codeOf(() => parseTextLine('/msg'))).toBe('USAGE');
    expect(codeOf(() => parseTextLine('/me'))).toBe('USAGE');
    expect(codeOf(() => parseTextLine('/history five'))).toBe('USAGE');
    const err = (() => {
      try {
        parseTextLine('/msg bob');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toBe('Usage: /msg NICK TEXT');
  });

  test('unknown commands name the command, sanitised and cut short', () => {
    expect(codeOf(() => parseTextLine('/frobnicate now'))).toBe('UNKNOWN_COMMAND');
    try {
      parseTextLine('/x\x1b[2J' + 'y'.repeat(100));
    } catch (e) {
      expect((e as Error).message).toBe(
        `Unknown command "/x\u241b[2j${'y'.repeat(27)}". Type /help for the list of commands.`,
      );
    }
    expect.assertions(2);
  });

  test('a bare "/" or "/ text" is an unknown command, not an internal error', () => {
    expect(codeOf(() => parseTextLine('/'))).toBe('UNKNOWN_COMMAND');
    expect(() => parseTextLine('/')).toThrow('Unknown command "/". Type /help for the list of commands.');
    expect(codeOf(() => parseTextLine('/ hello'))).toBe('UNKNOWN_COMMAND');
  });

  test('control characters in text and words are passed on as sent: the hub neutralises them', () => {
    expect(parseTextLine('a\x1b[2Jb\x07\x00')).toEqual({ type: 'message', text: 'a\x1b[2Jb\x07\x00' });
    expect(parseTextLine('/nick ev\x1bil')).toEqual({ type: 'nick', nick: 'ev\x1bil' });
    expect(parseTextLine('/msg bob \u202eevil\x9b')).toEqual({ type: 'privmsg', to: 'bob', text: '\u202eevil\x9b' });
    // The errors made here show what was sent neutralised, as the hub's do.
    expect(() => parseTextLine('/x\x1by')).toThrow('Unknown command "/x\u241by"');
    expect(() => parseTextLine('/nick ev\x1bil b\x07')).toThrow('"ev\u241bil b\u2407" is not a valid nick: nicks have no spaces.');
  });
});

describe('parseJsonLine', () => {
  test('full message with id, room and action', () => {
    expect(parseJsonLine('{"type":"message","id":7,"room":"dev","text":"hi","action":true}')).toEqual({
      type: 'message',
      id: 7,
      room: 'dev',
      text: 'hi',
      action: true,
    });
  });

  test('hello with nick and rooms; unknown fields are ignored', () => {
    expect(parseJsonLine('{"type":"hello","nick":"al","rooms":["a","b"],"extra":1}')).toEqual({
      type: 'hello',
      nick: 'al',
      rooms: ['a', 'b'],
    });
  });

  test('join with after and history', () => {
    expect(parseJsonLine('{"type":"join","room":"dev","after":12,"history":0}')).toEqual({
      type: 'join',
      room: 'dev',
      after: 12,
      history: 0,
    });
  });

  test('errors have stable codes', () => {
    expect(codeOf(() => parseJsonLine('not json'))).toBe('BAD_JSON');
    expect(codeOf(() => parseJsonLine('[1,2]'))).toBe('BAD_JSON');
    expect(codeOf(() => parseJsonLine('"str"'))).toBe('BAD_JSON');
    expect(codeOf(() => parseJsonLine('null'))).toBe('BAD_JSON');
    expect(codeOf(() => parseJsonLine('{"text":"x"}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":5}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"dance"}'))).toBe('UNKNOWN_TYPE');
    expect(codeOf(() => parseJsonLine('{"type":"message"}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"message","text":5}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"join","room":"a","after":1.5}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"join","room":"a","after":"3"}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"message","text":"x","action":"yes"}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"hello","rooms":"lobby"}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"hello","rooms":[1]}'))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine(`{"type":"ping","id":"${'x'.repeat(65)}"}`))).toBe('BAD_MESSAGE');
    expect(codeOf(() => parseJsonLine('{"type":"ping","id":{}}'))).toBe('BAD_MESSAGE');
  });

  test('error messages say which field is wrong', () => {
    try {
      parseJsonLine('{"type":"message","text":5}');
    } catch (e) {
      expect((e as Error).message).toBe(
        'That message is missing a field or has one of the wrong type: "text" must be a string.',
      );
    }
    try {
      parseJsonLine('{"type":"privmsg","text":"x"}');
    } catch (e) {
      expect((e as Error).message).toBe('That message is missing a field or has one of the wrong type: "to" is required.');
    }
    expect.assertions(2);
  });

  test('an error caused by a request with a valid id carries that id', () => {
    const idOf = (line: string): unknown => {
      try {
        parseJsonLine(line);
      } catch (e) {
        return [(e as RoomcastError).code, (e as RoomcastError).id];
      }
      return 'no error';
    };
    expect(idOf('{"type":"dance","id":5}')).toEqual(['UNKNOWN_TYPE', 5]);
    expect(idOf('{"type":"join","id":"j"}')).toEqual(['BAD_MESSAGE', 'j']);
    expect(idOf('{"id":1}')).toEqual(['BAD_MESSAGE', 1]);
    expect(idOf('{"type":"join"}')).toEqual(['BAD_MESSAGE', undefined]);
    expect(idOf('{"type":"join","id":[1]}')).toEqual(['BAD_MESSAGE', undefined]);
  });

  test('id may be a string up to 64 characters or an integer', () => {
    expect(parseJsonLine(`{"type":"ping","id":"${'x'.repeat(64)}"}`)).toEqual({ type: 'ping', id: 'x'.repeat(64) });
    expect(parseJsonLine('{"type":"ping","id":-3}')).toEqual({ type: 'ping', id: -3 });
  });

  test('JSON escapes of control characters are passed on like raw ones, for the hub to neutralise', () => {
    expect(
      parseJsonLine(JSON.stringify({ type: 'message', text: 'x\u001b]0;t\u0007\u009b\u2066\n', room: 'r\u0000' })),
    ).toEqual({ type: 'message', text: 'x\u001b]0;t\u0007\u009b\u2066\n', room: 'r\u0000' });
    expect(commandFromObject({ type: 'hello', rooms: ['a\u001bb'] })).toEqual({ type: 'hello', rooms: ['a\u001bb'] });
    expect(() => commandFromObject({ type: '\u001b[2J' })).toThrow('Unknown message type "\u241b[2J"');
    // A line break in a nick is no space: it is refused by the hub's general rule, not as "a b".
    expect(commandFromObject({ type: 'nick', nick: 'a\nb' })).toEqual({ type: 'nick', nick: 'a\nb' });
    expect(() => commandFromObject({ type: 'nick', nick: 'a\u2028b' })).toThrow('nicks have no spaces');
  });

  test('message lines as clients write them are read without JSON.parse, to the same command', () => {
    const lines = [
      '{"type":"message","text":"hi there"}',
      '{"type":"message","text":"hi","room":"dev","id":3}',
      '{"type":"message","room":"dev","text":"hi","id":"r-1","action":true}',
      '{"type":"message","room":"","text":"","id":0,"action":false}',
      '{"type":"message","text":"caf\u00e9 \u2028 \ud83d\ude00 \u00a0","id":-42}',
      '{"type":"message","text":"x","id":999999999999999}',
    ];
    for (const line of lines) {
      const fast = plainMessage(line);
      const general = commandFromObject(JSON.parse(line));
      expect([line, fast]).toEqual([line, general]);
      expect([line, Object.keys(fast!)]).toEqual([line, Object.keys(general)]);
      expect(parseJsonLine(line)).toEqual(general);
    }
    // Controls JSON needs no escape for are read the fast way too, as they were sent (the hub
    // neutralises them).
    const unsafe = JSON.stringify({ type: 'message', text: 'a\u009bb\u202e', room: 'r\u007f' });
    expect(plainMessage(unsafe)).toEqual({ type: 'message', room: 'r\u007f', text: 'a\u009bb\u202e' });
    expect(parseJsonLine(unsafe)).toEqual(commandFromObject(JSON.parse(unsafe)));
    // A key twice: JSON.parse keeps the last.
    const twice = '{"type":"message","room":"a","text":"x","room":"b"}';
    expect(plainMessage(twice)).toBeNull();
    expect(parseJsonLine(twice)).toEqual({ type: 'message', room: 'b', text: 'x' });
  });

  test('any other message line takes the general way, with the same result (4,000 random lines)', () => {
    let x = 7;
    const next = (): number => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T,>(a: T[]): T => a[Math.floor(next() * a.length)];
    const pieces = ['a', 'b c', ' ', '"', '\\', '\n', '\u0000', '\u001b', '\u007f', '\u00e9', '\u2066', '\ud83d', '\ud83d\ude00', '/', '}'];
    const str = (): string => Array.from({ length: Math.floor(next() * 6) }, () => pick(pieces)).join('');
    const ids: unknown[] = [undefined, 0, -0, 7, -7, 1.5, 2 ** 53, 999999999999999, 1e21, 'id', '', 'x'.repeat(64), 'x'.repeat(65), null, true];
    let fastOnes = 0;
    for (let i = 0; i < 4000; i++) {
      const fields: [string, unknown][] = [['text', next() < 0.1 ? 5 : str()]];
      if (next() < 0.6) fields.push(['room', next() < 0.1 ? null : str()]);
      const id = pick(ids);
      if (id !== undefined) fields.push(['id', id]);
      if (next() < 0.4) fields.push(['action', next() < 0.8 ? next() < 0.5 : 'yes']);
      // Mostly the orders clients write, sometimes shuffled, a key twice, or spaced out.
      if (next() < 0.2) fields.sort(() => next() - 0.5);
      if (next() < 0.05) fields.push(['room', str()]);
      let line = '{"type":"message"' + fields.map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join('') + '}';
      if (next() < 0.05) line = line.replace(':', ': ');
      const fast = plainMessage(line);
      const general = outcome(() => commandFromObject(JSON.parse(line)));
      if (fast !== null) {
        fastOnes++;
        expect([line, fast, Object.keys(fast)]).toEqual([line, general, Object.keys(general as object)]);
      }
      expect([line, outcome(() => parseJsonLine(line))]).toEqual([line, general]);
    }
    // Both ways were taken, often.
    expect(fastOnes).toBeGreaterThan(200);
    expect(fastOnes).toBeLessThan(3600);
  });

  test('isHelloLine', () => {
    expect(isHelloLine('{"type":"hello"}')).toBe(true);
    expect(isHelloLine('{"type":"hello","nick":"a"}')).toBe(true);
    expect(isHelloLine('{"type":"message","text":"x"}')).toBe(false);
    expect(isHelloLine('{"type":"hello"')).toBe(false);
    expect(isHelloLine(' {"type":"hello"}')).toBe(false);
    expect(isHelloLine('hello')).toBe(false);
    expect(isHelloLine('{}')).toBe(false);
  });

  test('HELP lists every text command with usage', () => {
    expect(HELP.map((h) => h.usage)).toEqual([
      '/nick NAME',
      '/join ROOM [KEY]',
      '/part [ROOM]',
      '/rooms',
      '/who [ROOM]',
      '/msg NICK TEXT',
      '/me ACTION',
      '/topic [TEXT]',
      '/history [N]',
      '/search WORDS',
      '/bot',
      '/help',
      '/ping',
      '/register PASSWORD',
      '/login NICK PASSWORD',
      '/password NEW',
      '/op NICK',
      '/deop NICK',
      '/kick NICK [REASON]',
      '/ban NICK|MASK [REASON]',
      '/unban MASK',
      '/bans',
      '/mute NICK [MINUTES]',
      '/unmute NICK',
      '/invite NICK',
      '/mode [+i|-i|+t|-t|-k]',
      '/key SECRET',
      '/quit [REASON]',
      '/pass PASSWORD',
    ]);
  });
});

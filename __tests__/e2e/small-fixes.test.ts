/**
 * Small things a new user trips on: "/nick a b" (refused: nicks have no spaces, in text and
 * JSON alike), "/history" in a room with nothing said yet (a netcat user gets an answer), and a
 * server given as a URL (http://HOST:PORT/ as copied from the browser) to join and post.
 * Real sockets on 127.0.0.1, port 0; the built bin/roomcast for the end-to-end post.
 */
import { execFile } from 'node:child_process';
import { AddressError, parseServerAddress } from '../../src/client/address.js';
import { parseJsonLine, parseTextLine } from '../../src/protocol/commands.js';
import { RoomcastError } from '../../src/protocol/errors.js';
import { BIN, CLI_ENV } from '../helpers/cli-child.js';
import { Harness } from '../helpers/clients.js';

const h = new Harness();
afterEach(() => h.cleanup());

const NO_SPACES = '"a b" is not a valid nick: nicks have no spaces. Pick one word such as a_b: 1-24 letters, digits, "_" or "-", starting with a letter or "_".';

describe('/nick with a space', () => {
  test('parsing: "/nick a b" is refused, a trailing space is not a second word', () => {
    let thrown: unknown;
    try {
      parseTextLine('/nick a b');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(RoomcastError);
    expect(thrown).toMatchObject({ code: 'NICK_INVALID', message: NO_SPACES });
    expect(parseTextLine('/nick bob ')).toEqual({ type: 'nick', nick: 'bob' });
    expect(() => parseJsonLine('{"type":"nick","nick":"a\\tb","id":3}')).toThrow(expect.objectContaining({ code: 'NICK_INVALID', id: 3 }));
    // What the message quotes is sanitised, like every echo of what a client sent.
    expect(() => parseTextLine('/nick a \u001b[31mb')).toThrow('"a \u241b[31mb" is not a valid nick: nicks have no spaces. Pick one word:');
  });

  test('over text: refused with NICK_INVALID, and the nick stays as it was', async () => {
    const server = await h.server();
    const nc = await h.text(server, 'zed');
    const other = await h.text(server, 'watcher');
    nc.send('/nick a b');
    expect(await nc.waitLine(/^! /)).toBe(`! NICK_INVALID: ${NO_SPACES}`);
    nc.send('/who');
    expect(await nc.waitLine(/^\*\*\* In \[lobby\]/)).toBe('*** In [lobby] (2): watcher, zed');
    expect(other.hasLine(/is now known as/)).toBe(false);
  });

  test('over JSON: the nick command and a hello are refused the same way, with the request id', async () => {
    const server = await h.server();
    const c = await h.json(server, 'zed');
    c.sendJson({ type: 'nick', nick: 'a b', id: 7 });
    expect(await c.waitEvent((e) => e.type === 'error')).toEqual({ type: 'error', id: 7, code: 'NICK_INVALID', message: NO_SPACES });

    const fresh = await h.jsonOpen(server, { nick: 'a b' });
    expect(await fresh.waitEvent((e) => e.type === 'error')).toMatchObject({ code: 'NICK_INVALID', message: NO_SPACES });
    // Still unregistered, as after any refused hello: another one goes through.
    fresh.sendJson({ type: 'hello', nick: 'a_b' });
    expect(await fresh.waitEvent((e) => e.type === 'welcome')).toMatchObject({ nick: 'a_b' });
  });
});

describe('/history in a room with nothing said', () => {
  test('over text: "No messages yet", then the messages once there are some', async () => {
    const server = await h.server();
    const nc = await h.text(server, 'zed');
    nc.send('/history');
    expect(await nc.waitLine(/^\*\*\* /)).toBe('*** No messages yet in [lobby]');
    nc.send('hello', '/history');
    expect(await nc.waitLine(/^\*\*\* Last/)).toBe('*** Last 1 message in [lobby]:');
    nc.send('/history 0');
    expect(await nc.waitLine(/^\*\*\* No/)).toBe('*** No earlier messages in [lobby]');
  });

  test('over JSON: a history event with an empty list, as the protocol says', async () => {
    const server = await h.server();
    const c = await h.json(server, 'zed');
    c.sendJson({ type: 'history', id: 1 });
    expect(await c.waitEvent((e) => e.id === 1)).toEqual({ type: 'history', id: 1, room: 'lobby', messages: [], first: 1, last: 0, missed: 0 });
  });
});

describe('a server given as a URL', () => {
  test.each([
    ['http://127.0.0.1:7447/', '127.0.0.1', 7447],
    ['HTTP://Chat.Lan:8000/#lobby', 'Chat.Lan', 8000],
    ['http://chat.lan:7447/api/rooms?x=1', 'chat.lan', 7447],
    ['http://chat.lan/', 'chat.lan', 80],
    ['http://chat.lan:/', 'chat.lan', 80],
    ['http://[::1]:7447/', '::1', 7447],
    ['http://[::1]/', '::1', 80],
    ['ws://[::1]:9000/ws', '::1', 9000],
    ['roomcast://chat.lan', 'chat.lan', 7447],
    ['roomcast://chat.lan:9000', 'chat.lan', 9000],
    ['roomcast://[fe80::1%25eth0]:9000/', 'fe80::1%eth0', 9000],
    ['http://me@chat.lan:7447/', 'chat.lan', 7447],
    ['  http://127.0.0.1:7447  ', '127.0.0.1', 7447],
    // Encrypted ones are TLS (the client's side of it: __tests__/client/tls-trust.test.ts).
    ['https://chat.lan/', 'chat.lan', 443, true],
    ['https://chat.lan:7447/#lobby', 'chat.lan', 7447, true],
    ['wss://chat.lan/ws', 'chat.lan', 443, true],
    ['wss://[fe80::1%25eth0]:7447/ws', 'fe80::1%eth0', 7447, true],
    ['tls://chat.lan:9000', 'chat.lan', 9000, true],
    ['tls://chat.lan', 'chat.lan', 7447, true],
    ['TLS://[::1]:9000/', '::1', 9000, true],
    ['roomcasts://chat.lan', 'chat.lan', 7447, true],
  ])('%s', (text, host, port, tls = false) => {
    expect(parseServerAddress(text, 7447)).toEqual(tls ? { host, port, tls } : { host, port });
  });

  test.each([
    ['ftp://chat.lan/', /is a ftp:\/\/ URL: give HOST:PORT, or a URL such as http:\/\/HOST:PORT\//],
    ['http://', /has no host/],
    ['http://:7447/', /has no host/],
    ['http://::1:7447/', /has an IPv6 address without brackets: write it as http:\/\/\[::1\]:PORT\//],
    ['http://chat.lan:0/', /invalid port "0"/],
    ['http://[::1]x/', /expected :PORT/],
  ])('rejects %s, saying why', (text, why) => {
    expect(() => parseServerAddress(text, 7447)).toThrow(AddressError);
    expect(() => parseServerAddress(text, 7447)).toThrow(why);
  });

  test('roomcast post http://127.0.0.1:PORT/ posts (the built CLI)', async () => {
    const server = await h.server({ classifier: { off: 'unused' } });
    const watcher = await h.text(server, 'watcher');
    const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'post', `http://127.0.0.1:${server.port}/`, '--room', 'lobby', '--nick', 'ci', '--text', 'from a URL'],
        { env: CLI_ENV, timeout: 20_000 },
        (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });
    expect(run).toEqual({ code: 0, stderr: '' });
    await watcher.waitLine('[lobby] ci: from a URL');
  });
});

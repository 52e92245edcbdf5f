/**
 * `roomcast post` (the built binary, `npm run build` first) and the nick it asked for: when
 * someone online has it, the post goes out under the next free one and says so on stderr, as
 * `roomcast join` does. And --room, without which nothing can be posted, reads as required.
 */
import { execFile } from 'node:child_process';
import { BIN, CLI_ENV } from '../helpers/cli-child.js';
import { Harness } from '../helpers/clients.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function roomcast(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: CLI_ENV, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const h = new Harness();
afterEach(() => h.cleanup());

test('post -n bob while bob is online: posts as bob_2 and warns on stderr', async () => {
  const server = await h.server({ classifier: { off: 'unused' } });
  const bob = await h.text(server, 'bob');
  const run = await roomcast('post', `127.0.0.1:${server.port}`, '-r', 'lobby', '-n', 'bob', '--text', 'hello from a script');
  expect(run.code).toBe(0);
  expect(run.stdout).toBe('');
  expect(run.stderr).toBe('roomcast: the nick bob is taken, so this posts as bob_2 (--nick to pick another)\n');
  await bob.waitLine('[lobby] bob_2: hello from a script');
});

test('a free nick, or the same one in another case, posts without a word', async () => {
  const server = await h.server({ classifier: { off: 'unused' } });
  const watcher = await h.text(server, 'watcher');
  const run = await roomcast('post', `127.0.0.1:${server.port}`, '-r', 'lobby', '-n', 'Carol', '--text', 'hi');
  expect(run).toEqual({ code: 0, stdout: '', stderr: '' });
  await watcher.waitLine('[lobby] Carol: hi');
});

test('post --help marks --room as required, and leaving it out says so', async () => {
  const help = await roomcast('post', '--help');
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/^Usage: roomcast post --room ROOM \[options\] <address>$/m);
  expect(help.stdout).toMatch(/^ {2}-r, --room <room> +room to post to \(required\)$/m);

  const missing = await roomcast('post', '127.0.0.1:7447', '--text', 'hi');
  expect(missing.code).not.toBe(0);
  expect(missing.stdout).toBe('');
  expect(missing.stderr).toContain("required option '-r, --room <room>' not specified");
});

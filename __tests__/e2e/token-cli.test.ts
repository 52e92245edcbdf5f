/**
 * `roomcast token` as an operator runs it, beside a running `roomcast serve
 * --api-token-required` on the same data directory: the token is printed once (alone on
 * stdout, for scripts), works at once, is listed without its secret, and stops when revoked.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';

const WAIT = 15_000;
const children: CliChild[] = [];
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-token-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of children.splice(0)) await c.stop().catch(() => c.kill());
});

function roomcast(...args: string[]): CliChild {
  const child = new CliChild(`roomcast ${args[0]}`, spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: CLI_ENV }), WAIT);
  children.push(child);
  return child;
}

async function statusWith(port: number, token: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/api/rooms`, { headers: { Authorization: `Bearer ${token}` } })).status;
}

test('token create, list and revoke against a running server', async () => {
  const serve = roomcast('serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--data-dir', dir, '--api-token-required');
  await serve.waitOutput(/listening on 127\.0\.0\.1:(\d+)/);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(serve.stdout)![1]);
  expect((await fetch(`http://127.0.0.1:${port}/api/rooms`)).status).toBe(401);

  const create = roomcast('token', 'create', 'grades-bot', '--data-dir', dir);
  expect(await create.waitExit()).toBe(0);
  const token = create.stdout.trim();
  expect(token).toMatch(/^rct_\S{43}$/);
  expect(create.stderr).toMatch(/token "grades-bot" kept \(hashed\) in .*api-tokens\.json; it is shown only now/);
  const deadline = Date.now() + WAIT;
  while ((await statusWith(port, token)) !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(await statusWith(port, token)).toBe(200);

  const list = roomcast('token', 'list', '--data-dir', dir);
  expect(await list.waitExit()).toBe(0);
  expect(list.stdout).toMatch(/^grades-bot\tevery room\tcreated \d{4}-/);
  expect(list.stdout).not.toContain(token.slice(4));

  const again = roomcast('token', 'create', 'grades-bot', '--data-dir', dir);
  expect(await again.waitExit()).toBe(1);
  expect(again.stderr).toMatch(/^roomcast: there is a token called "grades-bot" already: revoke it first/);

  const revoke = roomcast('token', 'revoke', 'grades-bot', '--data-dir', dir);
  expect(await revoke.waitExit()).toBe(0);
  while ((await statusWith(port, token)) !== 401 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(await statusWith(port, token)).toBe(401);
});

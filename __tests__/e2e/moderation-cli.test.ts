/**
 * The classroom of docs/security.md, "Operators", with the built binary: `serve --admin
 * teacher` warns while no account teacher exists; the teacher, an nc-style user, registers
 * it and bans a pupil from the server's own room; the log says who did what; after a restart
 * on the same data dir the warning is gone and the pupil, back under another nick from the
 * same address, is still kept out, in words.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { LineClient } from '../helpers/clients.js';

const WAIT = 15_000;
const PUPIL = '127.0.0.2';

describe('serve --admin: a teacher keeps order, and it lasts', () => {
  const children: CliChild[] = [];
  const clients: LineClient[] = [];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-moderation-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const c of children.splice(0)) await c.stop().catch(() => c.kill());
  });

  async function serve(): Promise<{ child: CliChild; port: number }> {
    const child = new CliChild('roomcast serve', spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--no-bot', '--data-dir', dir, '--admin', 'teacher'], { cwd: ROOT, env: CLI_ENV }), WAIT);
    children.push(child);
    await child.waitOutput(/listening on 127\.0\.0\.1:\d+/);
    return { child, port: Number(/listening on 127\.0\.0\.1:(\d+)/.exec(child.stdout)![1]) };
  }

  async function nc(port: number, localAddress?: string): Promise<LineClient> {
    const c = await LineClient.connect(port, localAddress ? { localAddress } : {});
    clients.push(c);
    await c.waitLine(/^\*\*\* Welcome to roomcast/, WAIT);
    return c;
  }

  test('the warning, the ban, the log line; and after a restart the ban still holds', async () => {
    let { child, port } = await serve();
    const output = (): string => child.stdout + child.stderr;
    await child.waitFor(() => /--admin teacher: there is no account teacher yet/.test(output()), 'the warning');

    const teacher = await nc(port);
    teacher.send('/nick teacher', '/register chalk and cheese');
    await teacher.waitLine(/^\*\*\* Registered teacher/, WAIT);
    const pupil = await nc(port, PUPIL);
    pupil.send('/nick pupil');
    await teacher.waitLine('*** guest2 is now known as pupil', WAIT);
    teacher.send('/who', '/ban pupil throwing paper');
    await teacher.waitLine('*** In [lobby] (2): pupil, @+teacher (@ operator, + logged in)', WAIT);
    await pupil.waitLine('*** You were put out of [lobby] by teacher (banned: throwing paper)', WAIT);
    await teacher.waitLine(`*** teacher banned pupil (address:${PUPIL}) from [lobby] (throwing paper)`, WAIT);
    await child.waitFor(() => output().includes(`moderation: teacher banned pupil (address:${PUPIL}) from [lobby] (throwing paper)`), 'the log line');
    pupil.send('/join lobby');
    await pupil.waitLine(/^! BANNED: You are banned from \[lobby\]\. Ask one of its operators/, WAIT);

    await child.stop();
    ({ child, port } = await serve());
    await new Promise((r) => setTimeout(r, 300));
    expect(output()).not.toMatch(/--admin teacher/);
    const back = await nc(port, PUPIL);
    // The hello puts a newcomer in the lobby: refused, and told why; the connection goes on.
    await back.waitLine(/^! BANNED: You are banned from \[lobby\]/, WAIT);
    back.send('/join den');
    await back.waitLine(/^\*\*\* You joined \[den\]/, WAIT);
  });
});

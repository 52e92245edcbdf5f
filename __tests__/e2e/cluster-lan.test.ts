/**
 * The classifier on another machine, across a (virtual) wire: two `serve --redis` nodes on host
 * a, `roomcast classifier` workers on host b, Redis on host c (three network namespaces on one
 * switch, the LAN test's helper), so that every node and worker reaches Redis over the wire.
 * `roomcast post` on a, against either node, gets its answer from b; a worker on b that freezes
 * while it holds a job and is then killed has that job answered, once, by a second worker on b.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { describeOnLan, type Host, type Lan } from '../helpers/netns.js';
import { redisUnavailable } from '../helpers/redis-server.js';
import { BLUE, GREEN, RED, solid, useTinyModel } from '../helpers/tiny-model.js';

const WAIT = 15_000;
const REDIS_PORT = 6391;

describeOnLan('the classifier on another machine (network namespaces)', (theLan) => {
  const tiny = useTinyModel();
  let lan: Lan;
  let dir: string;
  const started: CliChild[] = [];

  beforeAll(() => {
    if (!existsSync(`${ROOT}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` before this test (it runs the built CLI)');
    lan = theLan();
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-cluster-lan-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    for (const c of started.splice(0).reverse()) await c.stop().catch(() => c.kill());
  });

  function run(host: Host, name: string, command: string, args: string[]): CliChild {
    const child = new CliChild(name, lan.spawn(host, command, args, { cwd: ROOT, env: CLI_ENV }), WAIT);
    started.push(child);
    return child;
  }
  const roomcast = (host: Host, name: string, args: string[]): CliChild => run(host, name, process.execPath, [BIN, ...args]);

  test('posts on two nodes of a are answered by a worker on b, through Redis on c; a worker that freezes holding a job is taken over by another on b', async () => {
    const why = redisUnavailable();
    if (why !== null) {
      if (process.env.ROOMCAST_REQUIRE_REDIS === '1') throw new Error(why);
      console.warn(`skipped: ${why}`);
      return;
    }
    const redis = run(lan.c, 'redis', 'redis-server', ['--port', String(REDIS_PORT), '--bind', `127.0.0.1 ${lan.c.ipv4}`, '--protected-mode', 'no', '--save', '', '--appendonly', 'no']);
    await redis.waitOutput('Ready to accept connections');
    const overThere = `redis://${lan.c.ipv4}:${REDIS_PORT}`;
    const ports: number[] = [];
    for (const name of ['node1', 'node2']) {
      const node = roomcast(lan.a, name, ['serve', '--host', '127.0.0.1', '--port', '0', '--flood-rate', '0', '--redis', overThere, '--models-dir', dir]);
      await node.waitOutput(/roomcast listening on 127\.0\.0\.1:\d+/);
      ports.push(Number(/listening on 127\.0\.0\.1:(\d+)/.exec(node.stdout)![1]));
    }
    const worker = (name: string, extra: string[] = []): CliChild =>
      roomcast(lan.b, name, ['classifier', '--redis', overThere, '--model', tiny.model, '--labels', tiny.labels, '--workers', '1', ...extra]);
    const first = worker('worker1');
    await first.waitOutput('taking image jobs');
    await new Promise((r) => setTimeout(r, 1200)); // the nodes look for workers every second

    const files: Record<string, string> = {};
    for (const [name, rgb] of [['red.png', RED], ['green.png', GREEN], ['blue.png', BLUE]] as const) {
      files[name] = path.join(dir, name);
      writeFileSync(files[name]!, await solid(rgb));
    }
    const post = async (port: number, file: string): Promise<CliChild> => {
      const p = roomcast(lan.a, `post ${path.basename(file)}`, ['post', `127.0.0.1:${port}`, '--room', 'lab', '--image', file, '--timeout', '20000']);
      const status = await p.waitExit(WAIT + 10_000);
      if (status !== 0) throw new Error(`post exited ${status}:\n${p.stdout}\n${p.stderr}`);
      return p;
    };
    expect((await post(ports[0]!, files['red.png']!)).stdout).toMatch(/^red\.png: red 99\.\d%/);
    expect((await post(ports[1]!, files['green.png']!)).stdout).toMatch(/^green\.png: green 99\.\d%/);

    // Frozen while Redis lists its read as blocked: the next job is handed to it, and stays there.
    for (let tries = 0; ; tries++) {
      first.proc.kill('SIGSTOP');
      const list = lan.exec(lan.c, 'redis-cli', ['-p', String(REDIS_PORT), 'CLIENT', 'LIST']);
      if (/flags=b .*cmd=xreadgroup/.test(list)) break;
      if (tries > 20) throw new Error(`the worker never waited in XREADGROUP:\n${list}`);
      first.proc.kill('SIGCONT');
      await new Promise((r) => setTimeout(r, 50));
    }
    const blue = roomcast(lan.a, 'post blue.png', ['post', `127.0.0.1:${ports[0]}`, '--room', 'lab', '--image', files['blue.png']!, '--timeout', '30000', '--json']);
    await new Promise((r) => setTimeout(r, 500));
    expect(lan.exec(lan.c, 'redis-cli', ['-p', String(REDIS_PORT), 'XPENDING', 'roomcast:classifier:jobs', 'workers'])).toMatch(/^1\n/);
    const second = worker('worker2', ['--claim-after', '1000']);
    await second.waitOutput('taking image jobs');
    expect(await blue.waitExit(WAIT + 15_000)).toBe(0);
    const answer = JSON.parse(blue.stdout.trim()) as { labels: { label: string }[]; image: number };
    expect(answer.labels[0]!.label).toBe('blue');
    // Everyone reached Redis over the wire: its clients connect from a and from b, none from c.
    const peers = [...lan.exec(lan.c, 'redis-cli', ['-p', String(REDIS_PORT), 'CLIENT', 'LIST']).matchAll(/ addr=([\d.]+):/g)].map((m) => m[1]);
    expect(new Set(peers.filter((p) => p !== '127.0.0.1'))).toEqual(new Set([lan.a.ipv4, lan.b.ipv4]));
    first.kill();
    await first.waitExit(WAIT);
    // Once: the one result recorded for the job, none pending.
    expect(lan.exec(lan.c, 'redis-cli', ['-p', String(REDIS_PORT), 'XLEN', 'roomcast:classifier:jobs']).trim()).toBe('0');
  });
}, 3);

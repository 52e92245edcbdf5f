/**
 * The classifier as a worker pool of a cluster, end to end: two built `roomcast serve --redis`
 * nodes without a model of their own, and `roomcast classifier --redis` worker processes with
 * the tiny model, all on one real Redis. Posts on either node are answered once each; a
 * worker that stops answering (SIGSTOP, then SIGKILL) has its jobs taken over by another.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from '@redis/client';
import { BIN, CLI_ENV, CliChild, ROOT } from '../helpers/cli-child.js';
import { JsonClient, type Ev } from '../helpers/clients.js';
import { describeWithRedis, RedisServer } from '../helpers/redis-server.js';
import { post } from '../helpers/images.js';
import { GREEN, RED, BLUE, solid, useTinyModel, TINY_MODEL_NAME } from '../helpers/tiny-model.js';

const WAIT = 15_000;

describeWithRedis('the classifier as workers of a cluster', () => {
  const tiny = useTinyModel();
  let redis: RedisServer;
  let emptyModels: string;
  const children: CliChild[] = [];
  const clients: JsonClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    emptyModels = mkdtempSync(path.join(tmpdir(), 'roomcast-no-models-'));
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(emptyModels, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const c of children.splice(0)) {
      c.kill();
      await c.waitExit(WAIT).catch(() => {});
    }
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.sendCommand(['FLUSHALL']);
    await admin.close();
  });

  function start(args: string[]): CliChild {
    const child = new CliChild(args[0]!, spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: CLI_ENV }), WAIT);
    children.push(child);
    return child;
  }

  /** A node without a model of its own: its bot sends every post to the cluster's workers. */
  async function node(): Promise<number> {
    const child = start(['serve', '--host', '127.0.0.1', '--port', '0', '--flood-rate', '0', '--redis', redis.url, '--models-dir', emptyModels]);
    await child.waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(child.stdout) || child.exitCode !== null, 'roomcast listening on ...');
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${child.stderr}`);
    return Number(/listening on 127\.0\.0\.1:(\d+)/.exec(child.stdout)![1]);
  }

  async function worker(extra: string[] = []): Promise<CliChild> {
    const child = start(['classifier', '--redis', redis.url, '--model', tiny.model, '--labels', tiny.labels, '--workers', '1', ...extra]);
    await child.waitFor(() => /taking image jobs/.test(child.stdout) || child.exitCode !== null, 'the worker ready');
    if (child.exitCode !== null) throw new Error(`classifier exited with ${child.exitCode}:\n${child.stderr}`);
    return child;
  }

  async function client(port: number, nick: string): Promise<JsonClient> {
    const c = await JsonClient.registered(port, nick, ['lab']);
    clients.push(c);
    return c;
  }

  const labelsOf = (c: JsonClient, image: number): Ev[] => c.events.filter((e) => e.type === 'labels' && e.image === image);

  test('posts on two nodes are answered by a worker on neither, once each, with the right labels; /bot says who serves', async () => {
    const [a, b] = [await node(), await node()];
    const ann = await client(a, 'ann');
    const bob = await client(b, 'bob');
    // No worker yet: the bot says so, and a post is answered with that advice.
    ann.sendJson({ type: 'bot', id: 1 });
    expect(await ann.waitEvent((e) => e.type === 'bot' && e.id === 1)).toMatchObject({ state: 'off', reason: expect.stringMatching(/roomcast classifier --redis/) });

    await worker();
    await new Promise((r) => setTimeout(r, 1200)); // the nodes look for workers every second
    ann.sendJson({ type: 'bot', id: 2 });
    expect(await ann.waitEvent((e) => e.type === 'bot' && e.id === 2)).toMatchObject({ state: 'ready', model: TINY_MODEL_NAME, workers: 1 });

    const redBytes = await solid(RED);
    const red = await post(ann, redBytes, { room: 'lab', name: 'red.png' });
    const green = await post(bob, await solid(GREEN), { room: 'lab', name: 'green.png' });
    expect([red.type, green.type]).toEqual(['ack', 'ack']);
    for (const c of [ann, bob]) {
      await c.waitFor(() => labelsOf(c, red.image).length > 0 && labelsOf(c, green.image).length > 0, WAIT, 'both answers');
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const c of [ann, bob]) {
      expect(labelsOf(c, red.image)).toHaveLength(1);
      expect(labelsOf(c, green.image)).toHaveLength(1);
      expect(labelsOf(c, red.image)[0]!.labels[0].label).toBe('red');
      expect(labelsOf(c, green.image)[0]!.labels[0].label).toBe('green');
      expect(labelsOf(c, red.image)[0]!.nick).toBe('classifier');
    }
    // The task of a post one node took can be read on the other, numbered.
    await new Promise((r) => setTimeout(r, 200));
    const res = await fetch(`http://127.0.0.1:${b}/api/tasks/${red.image}`);
    expect(res.status).toBe(200);
    const task = (await res.json()) as { status: string; labels: { label: string }[]; seq: number; room: string };
    expect(task).toMatchObject({ status: 'done', room: 'lab', seq: red.seq });
    expect(task.labels[0]!.label).toBe('red');
    expect(red.seq).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${b}/api/tasks/999999`)).status).toBe(404);
    // So can the image: its bytes, as posted, with their type.
    const img = await fetch(`http://127.0.0.1:${b}/api/images/${red.image}`);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await img.arrayBuffer()).equals(redBytes)).toBe(true);
  });

  test('a worker that stops answering mid-job: another takes its jobs over after --claim-after, and each image is answered once', async () => {
    const a = await node();
    const ann = await client(a, 'ann');
    const stuck = await worker();
    await new Promise((r) => setTimeout(r, 1200)); // the node has seen the worker
    // Frozen while its blocking read waits (Redis lists that read as blocked): Redis hands it
    // the first job, and nothing comes back.
    const admin = createClient({ url: redis.url });
    admin.on('error', () => {});
    await admin.connect();
    for (let tries = 0; ; tries++) {
      stuck.proc.kill('SIGSTOP');
      const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
      if (/flags=b .*cmd=xreadgroup/.test(list)) break;
      if (tries > 20) throw new Error(`the worker never waited in XREADGROUP:\n${list}`);
      stuck.proc.kill('SIGCONT');
      await new Promise((r) => setTimeout(r, 50));
    }
    const posts: Ev[] = [];
    for (const [name, rgb] of [['r.png', RED], ['g.png', GREEN], ['b.png', BLUE]] as const) posts.push(await post(ann, await solid(rgb), { room: 'lab', name }));
    await new Promise((r) => setTimeout(r, 300));
    expect(posts.every((p) => labelsOf(ann, p.image).length === 0)).toBe(true);
    // The frozen worker holds the first (delivered to it, never acknowledged); it never asks for more.
    const pending = (await admin.sendCommand(['XPENDING', 'roomcast:classifier:jobs', 'workers'])) as [number, string, string, [string, string][]];
    await admin.close();
    expect(Number(pending[0])).toBe(1);
    await worker(['--claim-after', '1000']);
    await ann.waitFor(() => posts.every((p) => labelsOf(ann, p.image).length > 0), WAIT, 'every answer from the second worker');
    stuck.proc.kill('SIGKILL');
    await stuck.waitExit(WAIT);
    await new Promise((r) => setTimeout(r, 500));
    expect(posts.map((p) => labelsOf(ann, p.image).map((e) => e.labels[0].label))).toEqual([['red'], ['green'], ['blue']]);
  });
});

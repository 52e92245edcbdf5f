/**
 * The bot's pacing: a worker answers a whole batch at once, and the bot posts those answers in
 * that same turn, in order, so each member gets them in one write (the transports coalesce a
 * turn's output) rather than one write per answer. A stand-in pool lets the test release a
 * batch's answers in one go.
 */
import { EventEmitter } from 'node:events';
import { ClassifierBot } from '../../src/images/classifier-bot.js';
import type { ClassifierPool, ClassifyResult } from '../../src/classifier/pool.js';
import { Hub, type ImagePost } from '../../src/hub/hub.js';
import { ImagePosts } from '../../src/images/image-posts.js';
import { ImageStore } from '../../src/images/image-store.js';
import { TaskStore } from '../../src/images/task-store.js';
import type { Link } from '../../src/hub/session.js';

class BatchPool extends EventEmitter {
  readonly modelPath = 'mobilenet.onnx';
  readonly modelInfo = { model: 'mobilenet.onnx' };
  readonly maxQueue = 8;
  private readonly waiting: ((r: ClassifyResult) => void)[] = [];

  classify(_bytes: Uint8Array, opts: { name?: string }): Promise<ClassifyResult> {
    return new Promise((resolve) => this.waiting.push(() => resolve(result(opts.name ?? 'image'))));
  }

  /** The worker's whole batch answers at once, as its result messages arrive in one read. */
  answerAll(): void {
    for (const resolve of this.waiting.splice(0)) resolve(result('x'));
  }
}

function result(name: string): ClassifyResult {
  return {
    name,
    labels: [{ label: 'tabby', index: 281, score: 0.9 }],
    batchSize: 3,
    width: 224,
    height: 224,
    worker: 1,
    timings: { queueMs: 0, decodeMs: 1, inferenceMs: 1, totalMs: 2 },
  } as ClassifyResult;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a batch of answers reaches each member in the turn it came, in order', async () => {
  const hub = new Hub({ rooms: ['lab'] });
  let turnNo = 0;
  const got: { turn: number; image: number }[] = [];
  const member: Link = {
    peer: 'test',
    send: (frame) => {
      if (frame.event.type === 'labels') got.push({ turn: turnNo, image: frame.event.image });
    },
    close: () => {},
  };
  hub.attach(member, { nick: 'bea', rooms: ['lab'] });
  const pool = new BatchPool();
  const bot = new ClassifierBot(new ImagePosts(hub, new ImageStore(1 << 20, 16), new TaskStore()), pool as unknown as ClassifierPool);
  const post = (image: number): ImagePost => ({ room: 'lab', image, name: `${image}.jpg`, nick: 'ann', bytes: Buffer.from('img') });
  for (const image of [7, 8, 9]) bot.submit(post(image));

  pool.answerAll();
  // Every answer's promise settles within this turn's microtasks.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  turnNo++;
  await turn();
  expect(got).toEqual([
    { turn: 0, image: 7 },
    { turn: 0, image: 8 },
    { turn: 0, image: 9 },
  ]);
  expect(bot.stats.answered).toBe(3);
});

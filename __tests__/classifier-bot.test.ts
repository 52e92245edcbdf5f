/**
 * The bot's pacing: a worker answers a whole batch at once, and the bot must post those answers
 * one per event-loop turn (so chat read in between is not held up by the whole batch), in
 * order. A stand-in pool lets the test release a batch's answers in one go.
 */
import { EventEmitter } from 'node:events';
import { ClassifierBot } from '../src/bot/classifier-bot.js';
import type { ClassifierPool, ClassifyResult } from '../src/classifier/pool.js';
import { Hub, type ImagePost } from '../src/hub/hub.js';
import type { LabelsEvent } from '../src/protocol/events.js';

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

test('a batch of answers is posted one per event-loop turn, in order', async () => {
  const hub = new Hub({ rooms: ['lab'] });
  const pool = new BatchPool();
  const posted: number[] = [];
  const postAs = hub.postAs.bind(hub);
  hub.postAs = ((room, build) => {
    posted.push((build(0, 0) as LabelsEvent).image);
    return postAs(room, build);
  }) as Hub['postAs'];
  const bot = new ClassifierBot(hub, pool as unknown as ClassifierPool);
  const post = (image: number): ImagePost => ({ room: 'lab', image, name: `${image}.jpg`, nick: 'ann', bytes: Buffer.from('img') });
  for (const image of [7, 8, 9]) bot.submit(post(image));

  pool.answerAll();
  // Every answer's promise has settled within this turn's microtasks: none is posted yet.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  expect(posted).toEqual([]);
  await turn();
  expect(posted).toEqual([7]);
  await turn();
  expect(posted).toEqual([7, 8]);
  await turn();
  expect(posted).toEqual([7, 8, 9]);
  expect(bot.stats.answered).toBe(3);
});

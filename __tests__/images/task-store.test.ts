import type { ImagePost } from '../../src/hub/hub.js';
import type { ImageEvent, LabelsEvent } from '../../src/protocol/events.js';
import { TaskStore, type Task } from '../../src/images/task-store.js';

// A clock the test moves by hand: no sleeps.
let now = 1_000_000;
const finished: Task[] = [];

function store(opts: { maxFinished?: number; finishedTtlMs?: number; pendingTimeoutMs?: number } = {}): TaskStore {
  finished.length = 0;
  return new TaskStore({ maxFinished: 3, finishedTtlMs: 60_000, pendingTimeoutMs: 10_000, ...opts, now: () => now, onFinished: (t) => void finished.push(t) });
}

function post(s: TaskStore, image: number): Task {
  const p: ImagePost = { room: 'lab', image, name: `${image}.jpg`, nick: 'ann', bytes: Buffer.alloc(0) };
  const e: ImageEvent = { type: 'image', room: 'lab', seq: image, nick: 'ann', image, name: p.name, size: 0, time: now };
  return s.posted(p, e);
}

function answer(s: TaskStore, image: number): void {
  const e: LabelsEvent = { type: 'labels', room: 'lab', seq: 100 + image, nick: 'classifier', image, name: `${image}.jpg`, time: now, labels: [{ index: 281, label: 'cat', score: 0.9 }] };
  s.answered(e);
}

beforeEach(() => {
  now = 1_000_000;
});

test('a task is pending until answered, then done with its labels; a second answer changes nothing', () => {
  const s = store();
  post(s, 1);
  expect(s.get('1')).toMatchObject({ id: '1', status: 'pending', room: 'lab', image: 1 });
  expect(s.pending).toBe(1);
  now += 500;
  answer(s, 1);
  expect(s.get('1')).toMatchObject({ status: 'done', labels: [{ label: 'cat', score: 0.9 }], finished: now });
  expect(s.pending).toBe(0);
  s.fail(1, { code: 'X', message: 'late' });
  expect(s.get('1')!.status).toBe('done');
  expect(finished.map((t) => t.id)).toEqual(['1']);
});

test('ids that are not a positive integer, and unknown ones, find nothing', () => {
  const s = store();
  post(s, 7);
  for (const id of ['', '0', '07', '-7', '7.0', 'abc', '99999999999999999', '8']) expect(s.get(id)).toBeUndefined();
  expect(s.get('7')).toBeDefined();
});

test('pending tasks time out oldest first, as soon as anything touches the store', () => {
  const s = store();
  post(s, 1);
  now += 4_000;
  post(s, 2);
  now += 6_001; // task 1 is 10,001 ms old, task 2 6,001
  expect(s.get('2')!.status).toBe('pending');
  expect(s.get('1')).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
  expect(s.get('1')!.error!.message).toBe('no answer came within 10 s');
  now += 4_000;
  post(s, 3);
  expect(s.get('2')!.status).toBe('failed');
  expect(s.get('3')!.status).toBe('pending');
  expect(s.pending).toBe(1);
  // An answer after the timeout is ignored.
  answer(s, 1);
  expect(s.get('1')!.status).toBe('failed');
});

test('at most maxFinished finished tasks are kept, the first finished going first; pending ones are never dropped', () => {
  const s = store({ maxFinished: 3 });
  for (let i = 1; i <= 6; i++) post(s, i);
  // Finished out of posting order: 4, 2, 6, 1, then 5.
  for (const i of [4, 2, 6, 1, 5]) answer(s, i);
  expect(s.size).toBe(4); // 3 finished + task 3, still pending
  expect(s.get('4')).toBeUndefined();
  expect(s.get('2')).toBeUndefined();
  expect(['6', '1', '5'].map((id) => s.get(id)?.status)).toEqual(['done', 'done', 'done']);
  expect(s.get('3')!.status).toBe('pending');
});

test('finished tasks expire after finishedTtlMs', () => {
  const s = store({ finishedTtlMs: 60_000, pendingTimeoutMs: 600_000 });
  post(s, 1);
  post(s, 2);
  answer(s, 1);
  now += 30_000;
  answer(s, 2);
  now += 30_001; // task 1 finished 60,001 ms ago, task 2 30,001
  expect(s.get('1')).toBeUndefined();
  expect(s.get('2')!.status).toBe('done');
  expect(s.size).toBe(1);
});

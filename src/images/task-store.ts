/**
 * Classification tasks: one per image posted (over any transport, so a page that posted over
 * its WebSocket can poll too), keyed by the image's id. A task is pending until the classifier
 * bot answers in the room, then done (labels) or failed (why).
 *
 * Bounded: finished tasks are kept for `finishedTtlMs` and at most `maxFinished` of them (the
 * oldest go first); a task still pending after `pendingTimeoutMs` is failed as TIMEOUT, so a
 * lost answer can never pin memory. Pending tasks are few anyway: the classifier's queue is
 * bounded and refuses (an answer too) what does not fit.
 */
import type { ImagePost } from '../hub/hub.js';
import type { ImageEvent, LabelScore, LabelsEvent } from '../protocol/events.js';

export type TaskStatus = 'pending' | 'done' | 'failed';

export interface Task {
  id: string;
  status: TaskStatus;
  room: string;
  /** The image's id: its bytes are at /api/images/{image} while they are kept. */
  image: number;
  /** The image event's seq in the room. */
  seq: number;
  name: string;
  nick: string;
  /** When it was posted and answered (ms since the epoch). */
  created: number;
  finished?: number;
  labels?: LabelScore[];
  model?: string;
  error?: { code: string; message: string };
}

/** Where tasks are kept beyond memory (the image archive), so they outlive a restart. */
export interface TaskArchive {
  saveTask(task: Task): void;
  loadTask(image: number): Task | undefined;
}

export interface TaskStoreOptions {
  maxFinished: number;
  finishedTtlMs: number;
  pendingTimeoutMs: number;
  now: () => number;
  /** A task finished: for the latency metrics. */
  onFinished?(task: Task, answer: LabelsEvent | null): void;
  archive?: TaskArchive;
}

export const TASK_DEFAULTS: TaskStoreOptions = {
  maxFinished: 1000,
  finishedTtlMs: 15 * 60_000,
  pendingTimeoutMs: 5 * 60_000,
  now: Date.now,
};

export class TaskStore {
  readonly opts: TaskStoreOptions;
  // Two maps, each in its own order, so that bounding them never scans the other: pending
  // tasks in the order they were posted (the first ones time out first), finished ones in the
  // order they finished (the first ones expire first). prune() runs on every post, answer and
  // lookup, so it must not copy every task.
  private readonly pendingTasks = new Map<number, Task>();
  private readonly finishedTasks = new Map<number, Task>();
  private pruning = false;

  constructor(opts: Partial<TaskStoreOptions> = {}) {
    this.opts = { ...TASK_DEFAULTS, ...opts };
  }

  get pending(): number {
    return this.pendingTasks.size;
  }

  get size(): number {
    return this.pendingTasks.size + this.finishedTasks.size;
  }

  posted(post: ImagePost, event: ImageEvent): Task {
    const task: Task = {
      id: String(post.image),
      status: 'pending',
      room: post.room,
      image: post.image,
      seq: event.seq,
      name: post.name,
      nick: post.nick,
      created: event.time,
    };
    this.pendingTasks.set(post.image, task);
    this.opts.archive?.saveTask(task);
    this.prune();
    return task;
  }

  /** The image event got its number later (a cluster numbers it in Redis): the task says it. */
  numbered(image: number, seq: number): void {
    const task = this.pendingTasks.get(image) ?? this.finishedTasks.get(image);
    if (!task) return;
    task.seq = seq;
    this.opts.archive?.saveTask(task);
  }

  /** The bot's answer (labels, or an error) to an image. */
  answered(e: LabelsEvent): void {
    const task = this.pendingTasks.get(e.image);
    if (!task) return;
    if (e.error) task.error = e.error;
    else {
      task.labels = e.labels ?? [];
      if (e.model) task.model = e.model;
    }
    this.finish(task, e.error ? 'failed' : 'done', e);
  }

  fail(image: number, error: { code: string; message: string }): void {
    const task = this.pendingTasks.get(image);
    if (!task) return;
    task.error = error;
    this.finish(task, 'failed', null);
  }

  get(id: string): Task | undefined {
    if (!/^[1-9]\d{0,15}$/.test(id)) return undefined;
    this.prune();
    const image = Number(id);
    return this.pendingTasks.get(image) ?? this.finishedTasks.get(image) ?? this.opts.archive?.loadTask(image);
  }

  private finish(task: Task, status: 'done' | 'failed', answer: LabelsEvent | null): void {
    task.status = status;
    task.finished = this.opts.now();
    this.pendingTasks.delete(task.image);
    this.finishedTasks.set(task.image, task);
    this.opts.archive?.saveTask(task);
    this.opts.onFinished?.(task, answer);
    this.prune();
  }

  private prune(): void {
    if (this.pruning) return; // fail() below finishes tasks, which prunes again
    this.pruning = true;
    try {
      const now = this.opts.now();
      const { maxFinished, finishedTtlMs, pendingTimeoutMs } = this.opts;
      // Deleting the entry being visited is safe in a Map's iteration.
      for (const task of this.pendingTasks.values()) {
        if (now - task.created <= pendingTimeoutMs) break;
        this.fail(task.image, { code: 'TIMEOUT', message: `no answer came within ${Math.round(pendingTimeoutMs / 1000)} s` });
      }
      for (const task of this.finishedTasks.values()) {
        if (this.finishedTasks.size <= maxFinished && now - task.finished! <= finishedTtlMs) break;
        this.finishedTasks.delete(task.image);
      }
    } finally {
      this.pruning = false;
    }
  }
}

/**
 * Classification tasks where every node of a cluster can read them (GET /api/tasks/{id} on any
 * node): the task store of the node that took the post writes each change to Redis (it is that
 * store's TaskArchive), and a node that does not hold a task asks Redis for it.
 */
import type { CommandSender } from './redis-script.js';

/** How long a task's state is kept in Redis for the other nodes to read. */
const TASK_TTL_SECONDS = 15 * 60;

export class ClusterTasks {
  constructor(
    private readonly redis: CommandSender,
    private readonly prefix = 'roomcast',
  ) {}

  /** TaskArchive.saveTask: written in the background; a failure leaves the other nodes a step behind. */
  saveTask(task: { image: number }): void {
    this.redis.sendCommand(['SET', this.key(task.image), JSON.stringify(task), 'EX', String(TASK_TTL_SECONDS)]).catch(() => {});
  }

  /** TaskArchive.loadTask: nothing locally; load() is the way to ask. */
  loadTask(): undefined {
    return undefined;
  }

  async load<T>(image: number): Promise<T | null> {
    const json = (await this.redis.sendCommand(['GET', this.key(image)])) as string | null;
    return json === null ? null : (JSON.parse(json) as T);
  }

  private key(image: number): string {
    return `${this.prefix}:task:${image}`;
  }
}

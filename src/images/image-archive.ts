/**
 * Posted images and their classification tasks on disk, so that GET /api/images/{id} and
 * GET /api/tasks/{id} answer after a restart. The bytes are files named by their sha256
 * (`images/ab/abcd…`), one file however often the same picture is posted; an index in
 * `images.sqlite` maps each image id to its file, and keeps the tasks.
 *
 * File writes are asynchronous (to a temporary name, then renamed, so a crash never leaves a
 * half file under a real name); until one is done its bytes are served from memory. Index and
 * task rows are single small statements, run as they come: a post is rare next to messages.
 * A failure while running (a full disk) is reported once, the post is served from memory while
 * it lasts, and the next success reports the recovery.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ImagePost } from '../hub/hub.js';
import { StoreError } from '../store/errors.js';
import { storeErrorOf } from '../store/sqlite-schema.js';
import { imageType, type ImageKeeper, type StoredImage } from './image-store.js';
import type { Task, TaskArchive } from './task-store.js';

export const IMAGES_FILE = 'images.sqlite';
const SCHEMA_VERSION = 1;
/** Tasks are answered for this many of the newest image ids; older ones are forgotten at start-up. */
const TASKS_KEPT = 100_000;

/** Told to a poller of a task that was pending when the server stopped. */
export const INTERRUPTED = {
  code: 'INTERRUPTED',
  message: 'the server stopped before the classifier answered; post the image again',
} as const;

export interface ImageArchiveOptions {
  /** The data directory. */
  dir: string;
  /** Total bytes of image files kept; the oldest images go first. */
  maxBytes: number;
  now?: () => number;
  /** Called once when writing starts failing, and once when it works again. */
  degraded?(err: StoreError): void;
  recovered?(): void;
}

interface Row {
  id: number;
  sha: string;
  room: string;
  name: string;
  type: string | null;
  size: number;
}

export class ImageArchive implements ImageKeeper, TaskArchive {
  readonly file: string;
  private readonly root: string;
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof prepare>;
  /** Bytes of files kept (each file once). */
  private total: number;
  private kept: number;
  /** Files being written, by sha: served from here until they are on disk. */
  private readonly writing = new Map<string, Buffer>();
  /** File writes under way, which close() waits for. */
  private readonly inflight = new Set<Promise<void>>();
  private failing: StoreError | null = null;
  failedWrites = 0;

  private constructor(
    private readonly opts: ImageArchiveOptions,
    db: Database.Database,
  ) {
    this.file = path.join(opts.dir, IMAGES_FILE);
    this.root = path.join(opts.dir, 'images');
    this.db = db;
    this.stmt = prepare(db);
    this.total = (this.stmt.totalBytes.get() as number | null) ?? 0;
    this.kept = this.stmt.count.get() as number;
  }

  /**
   * Opens (creating) the archive in `dir`; tasks that were pending when the server last
   * stopped are failed as INTERRUPTED. Throws a StoreError naming the file and what to do.
   */
  static open(opts: ImageArchiveOptions): ImageArchive {
    const file = path.join(opts.dir, IMAGES_FILE);
    let db: Database.Database | undefined;
    try {
      mkdirSync(path.join(opts.dir, 'images'), { recursive: true, mode: 0o700 });
      db = new Database(file, { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION)
        throw new StoreError('STORE_TOO_NEW', file, `image index version ${version}; this roomcast reads up to version ${SCHEMA_VERSION}`);
      if (version < SCHEMA_VERSION) {
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
      const archive = new ImageArchive(opts, db);
      archive.stmt.interrupt.run(JSON.stringify(INTERRUPTED), (opts.now ?? Date.now)());
      archive.stmt.forgetTasks.run(TASKS_KEPT);
      return archive;
    } catch (err) {
      db?.close();
      throw storeErrorOf(err, file, true);
    }
  }

  get bytes(): number {
    return this.total;
  }

  get count(): number {
    return this.kept;
  }

  /** The highest image id ever kept, so that numbering goes on above it after a restart. */
  lastImageId(): number {
    return (this.stmt.lastId.get() as number | null) ?? 0;
  }

  put(post: ImagePost): void {
    const size = post.bytes.length;
    if (size > this.opts.maxBytes) return;
    const sha = createHash('sha256').update(post.bytes).digest('hex');
    const known = this.stmt.hasSha.get(sha) !== undefined || this.writing.has(sha);
    if (!this.run(() => this.stmt.insert.run(post.image, sha, post.room, post.name, imageType(post.bytes), size, (this.opts.now ?? Date.now)()))) return;
    this.kept++;
    if (!known) {
      this.total += size;
      // A copy: the caller's buffer is not ours to keep while the write is under way.
      const bytes = Buffer.from(post.bytes);
      this.writing.set(sha, bytes);
      const write = this.writeFile(sha, bytes).finally(() => this.inflight.delete(write));
      this.inflight.add(write);
    }
    this.evict();
  }

  async get(id: number): Promise<StoredImage | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    const row = this.stmt.byId.get(id) as Row | undefined;
    if (!row) return undefined;
    const meta = { id: row.id, room: row.room, name: row.name, type: row.type };
    const pending = this.writing.get(row.sha);
    if (pending) return { ...meta, bytes: pending };
    try {
      return { ...meta, bytes: await readFile(this.pathOf(row.sha)) };
    } catch {
      return undefined; // evicted meanwhile, or lost with the disk
    }
  }

  saveTask(task: Task): void {
    this.run(() => this.stmt.saveTask.run(task.image, task.status, JSON.stringify(task)));
  }

  loadTask(image: number): Task | undefined {
    const row = this.stmt.task.get(image) as string | undefined;
    return row === undefined ? undefined : (JSON.parse(row) as Task);
  }

  /** Waits for the files being written, then closes the index. */
  async close(): Promise<void> {
    await Promise.all(this.inflight);
    if (this.db.open) this.db.close();
  }

  private pathOf(sha: string): string {
    return path.join(this.root, sha.slice(0, 2), sha);
  }

  private async writeFile(sha: string, bytes: Buffer): Promise<void> {
    const final = this.pathOf(sha);
    const tmp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(path.dirname(final), { recursive: true });
      await writeFile(tmp, bytes);
      await rename(tmp, final);
      this.succeeded();
    } catch (err) {
      await unlink(tmp).catch(() => {});
      // The image is not kept after all; its post and task stand.
      if (this.db.open) {
        this.run(() => this.stmt.deleteSha.run(sha));
        this.total -= bytes.length;
        this.kept = this.stmt.count.get() as number;
      }
      this.failed(err);
    } finally {
      this.writing.delete(sha);
    }
  }

  /** Drops the oldest images while the files are over the byte budget. */
  private evict(): void {
    while (this.total > this.opts.maxBytes) {
      const oldest = this.stmt.oldest.get() as Row | undefined;
      if (!oldest) return;
      this.run(() => this.stmt.deleteId.run(oldest.id));
      this.kept--;
      if (this.stmt.hasSha.get(oldest.sha) === undefined) {
        this.total -= oldest.size;
        if (!this.writing.has(oldest.sha)) void unlink(this.pathOf(oldest.sha)).catch(() => {});
      }
    }
  }

  /** Runs a statement; a failure is reported (once while it lasts) and the caller carries on. */
  private run(statement: () => unknown): boolean {
    try {
      statement();
      return true;
    } catch (err) {
      this.failed(err);
      return false;
    }
  }

  private failed(err: unknown): void {
    this.failedWrites++;
    const first = this.failing === null;
    this.failing = err instanceof StoreError ? err : new StoreError('STORE_IO', this.root, (err as Error)?.message ?? String(err));
    if (first) this.opts.degraded?.(this.failing);
  }

  private succeeded(): void {
    if (this.failing === null) return;
    this.failing = null;
    this.opts.recovered?.();
  }
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    sha TEXT NOT NULL,
    room TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT,
    size INTEGER NOT NULL,
    time INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS images_sha ON images (sha);
  -- A task as GET /api/tasks/{id} shows it, as JSON; status apart, to find the pending ones.
  CREATE TABLE IF NOT EXISTS tasks (
    image INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    task TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS tasks_pending ON tasks (status) WHERE status = 'pending';
`;

function prepare(db: Database.Database) {
  return {
    insert: db.prepare('INSERT OR REPLACE INTO images (id, sha, room, name, type, size, time) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    byId: db.prepare('SELECT id, sha, room, name, type, size FROM images WHERE id = ?'),
    hasSha: db.prepare('SELECT 1 FROM images WHERE sha = ? LIMIT 1'),
    oldest: db.prepare('SELECT id, sha, size FROM images ORDER BY id LIMIT 1'),
    deleteId: db.prepare('DELETE FROM images WHERE id = ?'),
    deleteSha: db.prepare('DELETE FROM images WHERE sha = ?'),
    count: db.prepare('SELECT count(*) FROM images').pluck(),
    // Each file once: the size of every distinct sha.
    totalBytes: db.prepare('SELECT sum(size) FROM (SELECT max(size) AS size FROM images GROUP BY sha)').pluck(),
    lastId: db.prepare('SELECT max(id) FROM (SELECT max(id) AS id FROM images UNION ALL SELECT max(image) FROM tasks)').pluck(),
    saveTask: db.prepare('INSERT OR REPLACE INTO tasks (image, status, task) VALUES (?, ?, ?)'),
    task: db.prepare('SELECT task FROM tasks WHERE image = ?').pluck(),
    // The newest task stays whatever happens: it keeps the highest image id for lastId.
    forgetTasks: db.prepare('DELETE FROM tasks WHERE image <= (SELECT max(image) FROM tasks) - ?'),
    interrupt: db.prepare(
      `UPDATE tasks SET status = 'failed',
         task = json_set(task, '$.status', 'failed', '$.error', json(?), '$.finished', ?)
       WHERE status = 'pending'`,
    ),
  };
}

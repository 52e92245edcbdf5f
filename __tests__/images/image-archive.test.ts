/**
 * The image archive on real files: bytes and tasks outlive a reopen, the same picture is one
 * file, the byte budget drops the oldest, and tasks that were pending become INTERRUPTED.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ImagePost } from '../../src/hub/hub.js';
import { ImageArchive, INTERRUPTED } from '../../src/images/image-archive.js';
import { TaskStore } from '../../src/images/task-store.js';
import { StoreError } from '../../src/store/errors.js';
import { bmp } from '../helpers/image-bytes.js';
import { mountTmpfs, tmpfsUnavailable, unmount } from '../store/tmpfs.js';

let dir: string;
const open: ImageArchive[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roomcast-archive-'));
});

afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
  rmSync(dir, { recursive: true, force: true });
});

function archive(maxBytes = 1 << 20): ImageArchive {
  const a = ImageArchive.open({ dir, maxBytes, now: () => 1000 });
  open.push(a);
  return a;
}

const post = (image: number, bytes: Buffer, room = 'lobby'): ImagePost => ({ room, image, name: `p${image}.bmp`, nick: 'ann', bytes });

/** The image files on disk (no temporary ones left behind). */
function files(): string[] {
  const root = path.join(dir, 'images');
  return readdirSync(root).flatMap((d) => readdirSync(path.join(root, d)));
}

/** Lets the archive's file writes finish. */
async function settle(a: ImageArchive, id: number): Promise<void> {
  for (let i = 0; i < 100 && files().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  await a.get(id);
  await new Promise((r) => setTimeout(r, 20));
}

test('an image is served before and after a reopen, with its name and type; ids go on above it', async () => {
  const a = archive();
  const red = bmp(4, 4, [255, 0, 0]);
  a.put(post(7, red));
  expect(await a.get(7)).toMatchObject({ id: 7, room: 'lobby', name: 'p7.bmp', type: 'image/bmp', bytes: red });
  await a.close(); // waits for the file

  const b = archive();
  expect((await b.get(7))!.bytes.equals(red)).toBe(true);
  expect(b.lastImageId()).toBe(7);
  expect(await b.get(8)).toBeUndefined();
  expect(files().every((f) => !f.endsWith('.tmp'))).toBe(true);
});

test('the same picture posted twice is one file; it is deleted only when no image refers to it', async () => {
  const a = archive(300);
  const same = bmp(8, 8, [0, 255, 0]); // 246 bytes
  a.put(post(1, same));
  a.put(post(2, same));
  await settle(a, 1);
  expect(files()).toHaveLength(1);
  expect(a.bytes).toBe(same.length);
  expect(a.count).toBe(2);
  // Over the budget: the oldest images go, and with the last of them the shared file.
  a.put(post(3, bmp(8, 8, [0, 0, 255])));
  await settle(a, 3);
  expect(await a.get(1)).toBeUndefined();
  expect(await a.get(2)).toBeUndefined();
  expect((await a.get(3))!.bytes.length).toBe(246);
  await new Promise((r) => setTimeout(r, 50));
  expect(files()).toHaveLength(1);
  expect(a.bytes).toBe(246);
});

test('tasks outlive a reopen; one that was pending is failed as INTERRUPTED', async () => {
  const a = archive();
  const tasks = new TaskStore({ archive: a, now: () => 1000 });
  const event = { type: 'image' as const, room: 'lobby', seq: 3, nick: 'ann', image: 5, name: 'p5.bmp', size: 10, time: 1000 };
  tasks.posted(post(5, bmp(2, 2)), event);
  tasks.posted(post(6, bmp(2, 2)), { ...event, image: 6, seq: 4 });
  tasks.answered({ type: 'labels', room: 'lobby', seq: 5, nick: 'classifier', image: 6, name: 'p6.bmp', time: 1001, labels: [{ index: 281, label: 'cat', score: 0.9 }] });
  await a.close();
  const b = archive();
  const after = new TaskStore({ archive: b });
  expect(after.get('5')).toMatchObject({ status: 'failed', error: INTERRUPTED, room: 'lobby', seq: 3 });
  expect(after.get('6')).toMatchObject({ status: 'done', labels: [{ index: 281, label: 'cat', score: 0.9 }] });
  expect(after.get('7')).toBeUndefined();
  expect(b.lastImageId()).toBe(6);
});

test('a second archive on the same directory is refused: STORE_LOCKED, naming the file', () => {
  archive();
  let err: unknown;
  try {
    ImageArchive.open({ dir, maxBytes: 1000 });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe('STORE_LOCKED');
  expect((err as StoreError).message).toContain(path.join(dir, 'images.sqlite'));
});

test('a data directory that cannot be made: STORE_NOT_WRITABLE', () => {
  const file = path.join(dir, 'a-file');
  writeFileSync(file, 'x');
  expect(() => ImageArchive.open({ dir: path.join(file, 'data'), maxBytes: 1000 })).toThrow(/Cannot write the history store/);
  expect(existsSync(path.join(file, 'data'))).toBe(false);
});

const noTmpfs = tmpfsUnavailable();
(noTmpfs ? test.skip : test)(`a disk that fills up: reported once, writing resumes by itself when there is room${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, async () => {
  const mnt = path.join(dir, 'disk');
  const why = mountTmpfs(mnt, '1M');
  if (why) throw new Error(why);
  const events: string[] = [];
  const inMnt = (): ImageArchive => {
    const a = ImageArchive.open({ dir: mnt, maxBytes: 1 << 30, degraded: (e) => events.push(`degraded ${e.code}`), recovered: () => events.push('recovered') });
    open.push(a);
    return a;
  };
  try {
    const a = inMnt();
    const filler = path.join(mnt, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(2 << 20));
    } catch {
      // ENOSPC: the disk is full now
    }
    for (let i = 1; i <= 3; i++) a.put(post(i, bmp(64, 64, [i, 0, 0])));
    for (let i = 0; i < 200 && a.failedWrites < 3; i++) await new Promise((r) => setTimeout(r, 5));
    expect(events).toEqual(['degraded STORE_IO']); // once, not once per image
    expect(await a.get(1)).toBeUndefined();
    rmSync(filler);
    const green = bmp(64, 64, [0, 255, 0]);
    a.put(post(4, green));
    await a.close();
    expect(events).toEqual(['degraded STORE_IO', 'recovered']);
    const b = inMnt();
    expect((await b.get(4))!.bytes.equals(green)).toBe(true);
    expect(b.lastImageId()).toBe(4);
  } finally {
    for (const x of open.splice(0)) await x.close();
    unmount(mnt);
  }
});

/**
 * The image store keeps recent images in one ring of bytes: the newest always fit, the oldest
 * go when their bytes are needed (or the count is reached), and what get() returns stays
 * intact whatever is posted after.
 */
import { ImageStore } from '../../src/images/image-store.js';
import type { ImagePost } from '../../src/hub/hub.js';

const post = (image: number, size: number): ImagePost => ({
  room: 'lab',
  image,
  name: `${image}.jpg`,
  nick: 'ann',
  bytes: Buffer.alloc(size, image),
});

function kept(store: ImageStore, upTo: number): number[] {
  const ids: number[] = [];
  for (let id = 1; id <= upTo; id++) {
    const img = store.get(id);
    if (!img) continue;
    // Every byte is the image's own: no other image was written over it.
    expect(img.bytes.every((b) => b === (id & 0xff))).toBe(true);
    ids.push(id);
  }
  return ids;
}

test('the oldest images make room for new ones, across the end of the ring', () => {
  const store = new ImageStore(1000, 100);
  for (let id = 1; id <= 3; id++) store.put(post(id, 300)); // 0-900
  expect(kept(store, 3)).toEqual([1, 2, 3]);
  expect(store.bytes).toBe(900);
  store.put(post(4, 300)); // does not fit before the end: back to 0, over image 1
  expect(kept(store, 4)).toEqual([2, 3, 4]);
  store.put(post(5, 250)); // 300-550: over image 2
  expect(kept(store, 5)).toEqual([3, 4, 5]);
  store.put(post(6, 100)); // 550-650: over image 3 (600-900)
  expect(kept(store, 6)).toEqual([4, 5, 6]);
  store.put(post(7, 400)); // 650-1050 does not fit: back to 0, over images 4 (0-300) and 5 (300-550)
  expect(kept(store, 7)).toEqual([6, 7]);
  expect(store.bytes).toBe(500);
  for (let id = 8; id <= 60; id++) store.put(post(id, 1 + ((id * 37) % 400)));
  const now = kept(store, 60);
  expect(now.at(-1)).toBe(60);
  expect(now).toEqual(now.slice().sort((a, b) => a - b));
  expect(store.bytes).toBeLessThanOrEqual(1000);
  expect(store.count).toBe(now.length);
});

test('at most maxCount images; one larger than the whole budget is not kept', () => {
  const store = new ImageStore(1000, 2);
  for (let id = 1; id <= 3; id++) store.put(post(id, 10));
  expect(kept(store, 3)).toEqual([2, 3]);
  store.put(post(4, 1001));
  expect(store.get(4)).toBeUndefined();
  expect(kept(store, 4)).toEqual([2, 3]);
  expect(new ImageStore(1000, 0).count).toBe(0);
});

test('what get() returned stays intact when the ring is written over', () => {
  const store = new ImageStore(100, 10);
  store.put(post(1, 60));
  const first = store.get(1)!;
  store.put(post(2, 60)); // back to 0, over image 1
  expect(store.get(1)).toBeUndefined();
  expect(first.bytes.every((b) => b === 1)).toBe(true);
  expect(first).toMatchObject({ id: 1, room: 'lab', name: '1.jpg', type: null });
});

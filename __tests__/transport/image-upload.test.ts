/**
 * Image headers on a link without a socket: which bytes the link is told to read or skip, what
 * the client hears, and when the connection is closed instead.
 */
import type { Command } from '../../src/protocol/commands.js';
import type { EventOf, ServerEvent } from '../../src/protocol/events.js';
import { RoomcastError } from '../../src/protocol/errors.js';
import type { Frame } from '../../src/protocol/frame.js';
import { Hub } from '../../src/hub/hub.js';
import type { Link } from '../../src/hub/session.js';
import { ImageUpload, type ImageCommand, type ImageSource } from '../../src/transport/image-upload.js';
import { Registration } from '../../src/transport/registration.js';

const MAX = 1000;
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);

class FakeLink implements Link, ImageSource {
  readonly mode = 'json';
  readonly peer = '192.0.2.7:4000';
  events: ServerEvent[] = [];
  expected: [number, boolean][] = [];
  closedWith: Omit<EventOf<'bye'>, 'type'> | null | undefined;
  send(frame: Frame): void {
    this.events.push(frame.event);
  }
  close(bye: Omit<EventOf<'bye'>, 'type'> | null): void {
    this.closedWith = bye;
  }
  expectImageBytes(size: number, keep: boolean): void {
    this.expected.push([size, keep]);
  }
  errors(): string[] {
    return this.events.flatMap((e) => (e.type === 'error' ? [`${e.code} ${e.id ?? ''}`.trim()] : []));
  }
}

function setup(registered: boolean): { link: FakeLink; upload: ImageUpload } {
  const hub = new Hub();
  const link = new FakeLink();
  const registration = new Registration(hub, link, 0, null);
  if (registered) registration.handle({ type: 'hello', nick: 'ada' });
  link.events = [];
  return { link, upload: new ImageUpload(MAX, registration, link) };
}

const header = (size: number): ImageCommand => ({ type: 'image', name: 'cat.png', size, id: 'i1' });

test('an accepted header has its bytes read and kept, and they are posted with it', () => {
  const { link, upload } = setup(true);
  upload.start(header(PNG.length));
  expect(link.expected).toEqual([[PNG.length, true]]);
  upload.end(PNG);
  // The hub took the bytes as this header's: the post is acknowledged by the header's id.
  expect(link.events).toContainEqual(expect.objectContaining({ type: 'ack', id: 'i1' }));
});

test('before hello the header is refused with NOT_REGISTERED and its bytes are skipped', () => {
  const { link, upload } = setup(false);
  upload.start(header(10));
  expect(link.errors()).toEqual(['NOT_REGISTERED i1']);
  expect(link.expected).toEqual([[10, false]]);
  expect(link.closedWith).toBeUndefined();
});

test('over the limit: IMAGE_TOO_LARGE, bytes skipped; far over it: the connection is closed', () => {
  const { link, upload } = setup(true);
  upload.start(header(MAX + 1));
  expect(link.errors()).toEqual(['IMAGE_TOO_LARGE i1']);
  expect(link.expected).toEqual([[MAX + 1, false]]);
  upload.start(header(MAX * 4 + 1));
  expect(link.errors()).toEqual(['IMAGE_TOO_LARGE i1', 'IMAGE_TOO_LARGE i1']);
  expect(link.expected).toHaveLength(1);
  expect(link.closedWith?.code).toBe('IMAGE_FAR_TOO_LARGE');
});

test('a negative size is a bad message, and no bytes are expected', () => {
  const { link, upload } = setup(true);
  upload.start(header(-1));
  expect(link.errors()).toEqual(['BAD_MESSAGE i1']);
  expect(link.expected).toEqual([]);
});

test('bytes that never came as announced: the header is answered with the reason, once', () => {
  const { link, upload } = setup(true);
  upload.start(header(10));
  upload.drop(new RoomcastError('BAD_MESSAGE', 'the image header announced 10 bytes but 3 came'));
  upload.drop(new RoomcastError('BAD_MESSAGE', 'again'));
  upload.end(Buffer.alloc(10));
  expect(link.errors()).toEqual(['BAD_MESSAGE i1']);
});

test('handle() of a non-image command before hello is NOT_REGISTERED', () => {
  const hub = new Hub();
  const link = new FakeLink();
  const registration = new Registration(hub, link, 0, null);
  const message: Command = { type: 'message', text: 'hi', id: 7 };
  registration.handle(message);
  expect(link.errors()).toEqual(['NOT_REGISTERED 7']);
  expect(registration.session).toBeNull();
});

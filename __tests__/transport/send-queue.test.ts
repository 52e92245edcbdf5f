/**
 * A link's send queue on a fake socket: one write per turn, the bound counting the socket's own
 * buffer, the goodbye past the bound, and nothing written after the transport's last frame.
 */
import { SendQueue, type QueueSocket } from '../../src/transport/send-queue.js';

class FakeSocket implements QueueSocket {
  writableLength = 0;
  destroyed = false;
  readonly writes: string[] = [];
  write(bytes: Buffer): boolean {
    this.writes.push(bytes.toString());
    return true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  once(): this {
    return this;
  }
}

function queue(max: number): { q: SendQueue; socket: FakeSocket; exceeded: number[] } {
  const socket = new FakeSocket();
  const exceeded: number[] = [];
  const q = new SendQueue(socket, max, { sendqExceeded: (bytes) => exceeded.push(bytes) });
  return { q, socket, exceeded };
}

const endOfTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('what is queued in a turn is written once, when the turn ends', async () => {
  const { q, socket } = queue(1000);
  q.push(Buffer.from('one\n'));
  q.push(Buffer.from('two\n'));
  q.push(Buffer.from('three\n'));
  expect(socket.writes).toEqual([]);
  await endOfTurn();
  expect(socket.writes).toEqual(['one\ntwo\nthree\n']);
  q.push(Buffer.from('four\n'));
  await endOfTurn();
  expect(socket.writes).toEqual(['one\ntwo\nthree\n', 'four\n']);
});

test('past the bound the queue is dropped and its owner told how much was waiting', async () => {
  const { q, socket, exceeded } = queue(100);
  q.push(Buffer.alloc(60, 'a'));
  q.push(Buffer.alloc(50, 'b'));
  expect(exceeded).toEqual([110]);
  await endOfTurn();
  expect(socket.writes).toEqual([]);
});

test('the bound counts what the socket still holds', () => {
  const { q, socket, exceeded } = queue(100);
  socket.writableLength = 80;
  q.push(Buffer.alloc(20));
  expect(exceeded).toEqual([]);
  q.push(Buffer.alloc(1));
  expect(exceeded).toEqual([101]);
});

test('a goodbye goes past the bound, after what is queued', () => {
  const { q, socket, exceeded } = queue(10);
  q.push(Buffer.from('hi\n'));
  q.pushLast(Buffer.from('*** Disconnected: a long goodbye\n'));
  q.flush();
  expect(exceeded).toEqual([]);
  expect(socket.writes).toEqual(['hi\n*** Disconnected: a long goodbye\n']);
});

test('sealing writes what is queued, then the last frame, and nothing after it', async () => {
  const { q, socket } = queue(1000);
  q.push(Buffer.from('event'));
  expect(q.seal(Buffer.from('close'))).toBe(true);
  expect(q.sealed).toBe(true);
  q.push(Buffer.from('late'));
  await endOfTurn();
  expect(q.seal(Buffer.from('close again'))).toBe(false);
  expect(socket.writes).toEqual(['event', 'close']);
});

test('nothing is written to a destroyed socket', async () => {
  const { q, socket } = queue(1000);
  q.push(Buffer.from('event'));
  socket.destroy();
  await endOfTurn();
  expect(q.seal(Buffer.from('close'))).toBe(false);
  expect(socket.writes).toEqual([]);
});

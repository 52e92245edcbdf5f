/**
 * Presence in a real Redis, two nodes: nicks are one per cluster, rooms list members with
 * their node, and a node that stops renewing its lease has its members gone within the lease
 * (and reaped: its nicks free, its rooms told whom they lost).
 */
import { Presence } from '../../src/cluster/presence.js';
import { describeWithRedis, useRedis } from '../helpers/redis-server.js';

const LEASE = 300;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const byNick = <T extends { nick: string }>(xs: T[]): T[] => [...xs].sort((a, b) => a.nick.localeCompare(b.nick));

describeWithRedis('presence in a real Redis', () => {
  const redis = useRedis();
  const node = async (id: string): Promise<Presence> => {
    const p = new Presence(await redis.connect(), id, { leaseMs: LEASE });
    await p.renew();
    return p;
  };

  test('a nick is one per cluster (by its key); the owner may claim it again; released, it is free', async () => {
    const [a, b] = [await node('a'), await node('b')];
    expect(await a.claimNick('ann')).toBe(true);
    expect(await a.claimNick('ann')).toBe(true);
    expect(await b.claimNick('ann')).toBe(false);
    expect(await b.claimNick('bob')).toBe(true);
    expect(await b.nodeOf('ann')).toBe('a');
    expect(await a.nodeOf('nobody')).toBeNull();
    await b.releaseNick('ann'); // not b's: nothing happens
    expect(await b.claimNick('ann')).toBe(false);
    await a.releaseNick('ann');
    expect(await b.claimNick('ann')).toBe(true);
  });

  test("a room lists its members on every node; a part takes one out", async () => {
    const [a, b] = [await node('a'), await node('b')];
    await a.join('lobby', 'ann', 'Ann');
    await b.join('lobby', 'bob', 'Bob');
    await b.join('lab', 'bob', 'Bob');
    expect(byNick(await a.members('lobby'))).toEqual([
      { nick: 'Ann', node: 'a' },
      { nick: 'Bob', node: 'b' },
    ]);
    await b.part('lobby', 'bob');
    expect(await b.members('lobby')).toEqual([{ nick: 'Ann', node: 'a' }]);
    expect(await a.members('lab')).toEqual([{ nick: 'Bob', node: 'b' }]);
  });

  test('a node that stops renewing: its members are not listed once the lease lapses, its nicks can be had, and reap() says whom each room lost', async () => {
    const [a, b] = [await node('a'), await node('b')];
    await a.claimNick('ann');
    await a.join('lobby', 'ann', 'Ann');
    await a.join('lab', 'ann', 'Ann');
    await b.claimNick('bob');
    await b.join('lobby', 'bob', 'Bob');
    // b goes on renewing; a has died.
    const started = Date.now();
    while (Date.now() - started < LEASE + 200) {
      await b.renew();
      await sleep(LEASE / 3);
    }
    expect(await b.members('lobby')).toEqual([{ nick: 'Bob', node: 'b' }]);
    expect(await b.nodeOf('ann')).toBeNull();
    const reaped = await b.reap();
    expect(reaped.map((r) => ({ node: r.node, rooms: byRoom(r.rooms) }))).toEqual([
      {
        node: 'a',
        rooms: [
          { room: 'lab', nicks: ['Ann'] },
          { room: 'lobby', nicks: ['Ann'] },
        ],
      },
    ]);
    expect(await b.reap()).toEqual([]); // once
    expect(await b.claimNick('ann')).toBe(true);
    expect(await b.members('lab')).toEqual([]);
  });

  test('a node that leaves cleanly is reaped at once', async () => {
    const [a, b] = [await node('a'), await node('b')];
    await a.join('lobby', 'ann', 'Ann');
    await a.leave();
    expect(await b.members('lobby')).toEqual([]);
    expect((await b.reap()).map((r) => r.node)).toEqual(['a']);
  });
});

function byRoom<T extends { room: string }>(xs: T[]): T[] {
  return [...xs].sort((x, y) => x.room.localeCompare(y.room));
}

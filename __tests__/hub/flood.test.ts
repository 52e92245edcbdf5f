import { TokenBucket } from '../../src/hub/flood.js';
import { Harness, type Ev } from '../helpers/clients.js';

describe('TokenBucket (fake clock)', () => {
  function bucket(rate: number, burst: number): { b: TokenBucket; advance: (ms: number) => void } {
    let now = 1000;
    const b = new TokenBucket(rate, burst, () => now);
    return { b, advance: (ms) => void (now += ms) };
  }

  test('starts full: burst tokens at once, then none', () => {
    const { b } = bucket(50, 5);
    for (let i = 0; i < 5; i++) {
      expect(b.wait()).toBe(0);
      expect(b.take()).toBe(true);
    }
    expect(b.take()).toBe(false);
    expect(b.wait()).toBe(20); // one token per 1000/50 ms
  });

  test('refills at rate per second, and wait() counts down', () => {
    const { b, advance } = bucket(50, 5);
    for (let i = 0; i < 5; i++) b.take();
    advance(10);
    expect(b.wait()).toBe(10);
    expect(b.take()).toBe(false);
    advance(10);
    expect(b.wait()).toBe(0);
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
  });

  test('never holds more than burst', () => {
    const { b, advance } = bucket(10, 3);
    advance(60_000);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
    expect(b.wait()).toBe(100);
  });

  test('a sustained sender gets exactly rate lines per second', () => {
    const { b, advance } = bucket(20, 4);
    let taken = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      while (b.take()) taken++;
      advance(1);
    }
    expect(taken).toBe(4 + 20 * 10 - 1); // the burst, then one per 50 ms (the last not yet due)
  });

  test('fractional waits round up', () => {
    const { b, advance } = bucket(3, 1);
    b.take();
    expect(b.wait()).toBe(334);
    advance(333);
    expect(b.wait()).toBe(1);
    advance(1);
    expect(b.wait()).toBe(0);
  });

  test('a clock that goes backwards does not mint tokens', () => {
    let now = 5000;
    const b = new TokenBucket(10, 1, () => now);
    b.take();
    now = 1000;
    expect(b.take()).toBe(false);
    now = 1050;
    expect(b.take()).toBe(false);
  });

  test('rate 0 is unlimited', () => {
    const { b } = bucket(0, 1);
    expect(b.unlimited).toBe(true);
    for (let i = 0; i < 1000; i++) expect(b.take()).toBe(true);
    expect(b.wait()).toBe(0);
  });
});

describe('flood control over TCP', () => {
  const h = new Harness();
  afterEach(() => h.cleanup());

  const messagesFrom = (events: Ev[], nick: string): { text: string; i: number }[] =>
    events.flatMap((e, i) => (e.type === 'message' && e.nick === nick ? [{ text: e.text as string, i }] : []));

  const FLOOD = Array.from({ length: 60 }, (_, i) => `f${i + 1}`);

  test('a flooder is slowed, not dropped: everything arrives in order, at the rate; others stay prompt', async () => {
    const server = await h.server({ connection: { floodRate: 50, floodBurst: 5 } });
    const rx = await h.json(server, 'rx');
    const flooder = await h.text(server, 'flooder');
    const other = await h.text(server, 'other');
    await rx.waitEvent((e) => e.type === 'nick' && e.nick === 'other');

    const t0 = Date.now();
    flooder.send(...FLOOD);
    other.send('b1', 'b2', 'b3');

    await rx.waitFor(() => messagesFrom(rx.events, 'other').length === 3, 2000, "other's 3 messages");
    const otherDone = rx.timeOf(messagesFrom(rx.events, 'other')[2].i) - t0;
    await rx.waitFor(() => messagesFrom(rx.events, 'flooder').length >= 60, 5000, "the flooder's 60 messages");
    const flood = messagesFrom(rx.events, 'flooder');
    const floodDone = rx.timeOf(flood[59].i) - t0;

    expect(messagesFrom(rx.events, 'other').map((m) => m.text)).toEqual(['b1', 'b2', 'b3']);
    expect(flood.map((m) => m.text)).toEqual(FLOOD);
    // 5 at once, then 55 at 50 per second: at least 1.1 s.
    expect(floodDone).toBeGreaterThanOrEqual(1050);
    expect(floodDone).toBeLessThan(4000);
    // The other client was not held up behind the flood.
    expect(otherDone).toBeLessThan(400);
    expect(otherDone).toBeLessThan(floodDone - 500);
    // Still connected and served.
    expect(flooder.closed).toBe(false);
    flooder.send('/ping');
    await flooder.waitLine('*** pong');
    expect(server.stats.throttled).toBeGreaterThanOrEqual(1);
  });

  test('a flooder that sends its lines and then closes loses none of them', async () => {
    const server = await h.server({ connection: { floodRate: 50, floodBurst: 5 } });
    const rx = await h.json(server, 'rx');
    const flooder = await h.text(server, 'flooder');
    await rx.waitEvent((e) => e.type === 'nick' && e.nick === 'flooder');

    flooder.send(...FLOOD);
    flooder.end(); // like `printf ... | nc -N`: FIN right after the data
    await rx.waitFor(
      () => rx.events.some((e) => e.type === 'parted' && e.nick === 'flooder'),
      5000,
      'the flooder to leave',
    );
    expect(messagesFrom(rx.events, 'flooder').map((m) => m.text)).toEqual(FLOOD);
    const parted = rx.events.find((e) => e.type === 'parted' && e.nick === 'flooder');
    expect(parted).toEqual({ type: 'parted', room: 'lobby', nick: 'flooder', reason: 'connection closed by the client', quit: true });
    await flooder.waitClosed();
  });

  test('JSON flooder: every message acked in order with consecutive seqs', async () => {
    const server = await h.server({ connection: { floodRate: 100, floodBurst: 3 } });
    const rx = await h.json(server, 'rx');
    const tx = await h.json(server, 'tx');
    tx.sendJson(...Array.from({ length: 30 }, (_, i) => ({ type: 'message', id: i, text: `j${i}` })));
    await tx.waitFor(() => tx.ofType('ack').length === 30, 3000, '30 acks');
    expect(tx.ofType('ack').map((a) => [a.id, a.seq])).toEqual(Array.from({ length: 30 }, (_, i) => [i, i + 1]));
    await rx.waitFor(() => rx.ofType('message').length === 30, 3000, '30 messages');
    expect(rx.ofType('message').map((m) => [m.seq, m.text])).toEqual(Array.from({ length: 30 }, (_, i) => [i + 1, `j${i}`]));
  });
});

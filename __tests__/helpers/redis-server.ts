/**
 * A real Redis for a test (bench/redis-server.ts: Debian's redis-server on a free loopback
 * port, without persistence, stopped by its PID). Where redis-server is not installed the
 * tests that need it are reported as skipped with the reason; CI installs it and sets
 * ROOMCAST_REQUIRE_REDIS=1, which makes them fail instead.
 */
import { spawnSync } from 'node:child_process';
import { createClient } from '@redis/client';
import { RedisServer } from '../../bench/redis-server.js';

export { RedisServer };

export const REQUIRE_REDIS_ENV = 'ROOMCAST_REQUIRE_REDIS';

/** Why Redis cannot be had here, or null when it can. */
export function redisUnavailable(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'redis-server is not installed (apt-get install redis-server)';
  return null;
}

/** `describe` for tests that need a real Redis; see the module's comment. */
export function describeWithRedis(title: string, body: () => void): void {
  const why = redisUnavailable();
  if (why === null) describe(title, body);
  else if (process.env[REQUIRE_REDIS_ENV] === '1')
    describe(title, () => {
      test('redis-server is installed', () => {
        throw new Error(`${REQUIRE_REDIS_ENV}=1 but ${why}`);
      });
    });
  else {
    console.warn(`Redis tests skipped: ${why}`);
    describe.skip(`${title} (skipped: ${why})`, body);
  }
}

/**
 * A Redis of the test file's own: started before its tests, flushed after each, stopped after
 * all. connect() makes a client (reconnecting every 50 ms when cut off) closed after each test.
 */
export function useRedis() {
  let server: RedisServer | undefined;
  const clients: { close(): Promise<unknown>; destroy(): void }[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close().catch(() => c.destroy());
    const c = createClient({ url: server!.url });
    await c.connect();
    await c.sendCommand(['FLUSHALL']);
    await c.close();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return {
    get server(): RedisServer {
      return server!;
    },
    async connect() {
      const c = createClient({ url: server!.url, socket: { reconnectStrategy: () => 50 } });
      // Reconnects are the point of some tests; each checks what it needs through its results.
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    },
  };
}

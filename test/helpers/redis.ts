import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { serviceSkipReason } from './service-probe.ts';

/** Where this machine's (and CI's) Redis listens. */
export const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether Redis suites run here. Without a server they skip with a notice, except in CI
 * (`CI=true`), where a missing Redis fails the run instead of passing it silently.
 */
export function redisSkipReason(): Promise<string | undefined> {
  return serviceSkipReason({
    name: `Redis at ${REDIS_URL}`,
    async attempt() {
      const client = adminClient();
      // ioredis rejects connect() with "Connection is closed."; the cause (ECONNREFUSED…) is an event.
      let cause: unknown;
      client.on('error', (error) => {
        cause ??= error;
      });
      try {
        await client.connect();
        const answer = await client.ping();
        if (answer !== 'PONG') throw new Error(`PING answered ${answer}`);
      } catch (error) {
        throw cause ?? error;
      } finally {
        client.disconnect();
      }
    },
  });
}

/** A connection of the test's own, which fails fast rather than queueing while Redis is away. */
export function adminClient(): Redis {
  return new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
}

export interface RedisNamespace {
  /** A key prefix no other test uses. */
  readonly prefix: string;
  /** The keys written under the prefix so far. */
  keys(): Promise<string[]>;
  /** Deletes every key under the prefix and disconnects. */
  drop(): Promise<void>;
}

/** A key prefix of its own for one test, cleaned up afterwards. */
export async function createRedisNamespace(): Promise<RedisNamespace> {
  const prefix = `tessera-test:${process.pid}:${randomBytes(4).toString('hex')}:`;
  const client = adminClient();
  await client.connect();
  async function keys(): Promise<string[]> {
    const found: string[] = [];
    for await (const batch of client.scanStream({ match: `${prefix}*`, count: 1000 })) {
      found.push(...(batch as string[]));
    }
    return found;
  }
  return {
    prefix,
    keys,
    async drop() {
      const found = await keys();
      if (found.length > 0) await client.del(...found);
      client.disconnect();
    },
  };
}

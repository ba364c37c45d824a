import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  adminClient,
  createRedisNamespace,
  REDIS_URL,
  type RedisNamespace,
  redisSkipReason,
} from '../../test/helpers/redis.ts';
import type { RateLimitResult } from './rate-limiter.ts';
import { RedisRateLimiter } from './redis-rate-limiter.ts';

const skip = (await redisSkipReason()) ?? false;
const RULE = { limit: 20, interval: 60 };

/** One "node" on its own connection, syncing every 50 ms like a server. */
async function node(namespace: RedisNamespace): Promise<RedisRateLimiter> {
  const limiter = new RedisRateLimiter({ url: REDIS_URL, prefix: namespace.prefix });
  await limiter.start();
  return limiter;
}

/** The middle of a window, so a test never straddles two. */
function midWindow(): number {
  const length = RULE.interval * 1000;
  return Math.floor(Date.now() / length) * length + length / 2;
}

/** `hit` is synchronous by its type; this also proves no caller could be kept waiting on a promise. */
function timedHit(limiter: RedisRateLimiter, key: string, now: number): RateLimitResult & { ms: number } {
  const started = performance.now();
  const result = limiter.hit(key, RULE, now);
  assert.equal(result instanceof Promise, false);
  return { ...result, ms: performance.now() - started };
}

async function total(namespace: RedisNamespace): Promise<number> {
  const client = adminClient();
  await client.connect();
  try {
    const keys = await namespace.keys();
    const values = keys.length === 0 ? [] : await client.mget(...keys);
    return values.reduce((sum, value) => sum + Number(value ?? 0), 0);
  } finally {
    client.disconnect();
  }
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

test('two nodes share one limit: together they admit the limit plus at most the documented overshoot', {
  skip,
}, async () => {
  const namespace = await createRedisNamespace();
  const [a, b] = await Promise.all([node(namespace), node(namespace)]);
  try {
    const now = midWindow();
    const batch = 3;
    let allowed = 0;
    let hits = 0;
    for (let round = 0; round < 12; round++) {
      for (const limiter of [a, b]) {
        for (let i = 0; i < batch; i++, hits++) if (limiter.hit('k', RULE, now).allowed) allowed += 1;
      }
      await a.sync();
      await b.sync();
    }
    // Each node misses at most the other's last two batches (docs/rate-limits.md): N - 1 = 1 other.
    assert.ok(allowed >= RULE.limit, `the whole limit is usable: ${allowed}`);
    assert.ok(allowed <= RULE.limit + 2 * batch, `${allowed} admitted, limit ${RULE.limit}`);
    assert.equal(a.hit('k', RULE, now).allowed, false);
    assert.equal(b.hit('k', RULE, now).allowed, false);
    await Promise.all([a.sync(), b.sync()]);
    assert.equal(await total(namespace), hits + 2, 'every hit reached Redis once');
    assert.equal(a.errors + b.errors, 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await namespace.drop();
  }
});

test('a node new to a key admits until its first sync, then refuses: overshoot within one interval', {
  skip,
}, async () => {
  const namespace = await createRedisNamespace();
  const [a, b] = await Promise.all([node(namespace), node(namespace)]);
  try {
    const now = midWindow();
    for (let i = 0; i < RULE.limit; i++) assert.equal(a.hit('k', RULE, now).allowed, true);
    await a.sync();
    assert.equal(b.hit('k', RULE, now).allowed, true, 'b has not heard of the key yet');
    await sleep(150);
    const refused = b.hit('k', RULE, now);
    assert.equal(refused.allowed, false, 'b synced by itself within the interval');
    assert.equal(refused.remaining, 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await namespace.drop();
  }
});

test('Redis unreachable: hit answers at once and counts per node, never unlimited', { skip }, async () => {
  const port = await closedPort();
  const errors: unknown[] = [];
  const limiter = new RedisRateLimiter({ url: `redis://127.0.0.1:${port}`, onError: (e) => errors.push(e) });
  const starting = performance.now();
  await limiter.start();
  assert.ok(performance.now() - starting < 1500, 'start does not wait on a dead Redis');
  try {
    const now = midWindow();
    const results = Array.from({ length: 25 }, () => timedHit(limiter, 'k', now));
    assert.equal(results.filter((result) => result.allowed).length, RULE.limit);
    assert.ok(Math.max(...results.map((result) => result.ms)) < 20, 'no hit waited');
    await sleep(200);
    await limiter.sync();
    assert.equal(limiter.hit('k', RULE, now).allowed, false, 'still refused after failed syncs');
    assert.ok(limiter.errors > 0, 'errors are counted');
    assert.equal(errors.length, 1, 'reported once per outage');
    assert.equal(limiter.shared, false);
  } finally {
    const closing = performance.now();
    await limiter.close();
    assert.ok(performance.now() - closing < 500, 'close does not hang on a dead Redis');
  }
});

test('a Redis that stops answering never delays hit, and syncing recovers after', { skip }, async () => {
  const namespace = await createRedisNamespace();
  const limiter = await node(namespace);
  const admin = adminClient();
  await admin.connect();
  try {
    const now = midWindow();
    limiter.hit('k', RULE, now);
    await limiter.sync();
    assert.equal(limiter.shared, true);
    await admin.call('CLIENT', 'PAUSE', '1000', 'WRITE');
    const paused = performance.now();
    let slowest = 0;
    let hits = 1;
    // Hits keep coming while the paused syncs time out (200 ms) and are retried.
    while (performance.now() - paused < 900) {
      slowest = Math.max(slowest, timedHit(limiter, 'k', now).ms);
      hits += 1;
      await sleep(10);
    }
    assert.ok(slowest < 20, `the slowest hit took ${slowest} ms`);
    assert.ok(limiter.errors > 0, 'the paused syncs timed out');
    assert.equal(limiter.shared, false);
    assert.equal(limiter.hit('k', RULE, now).allowed, false, 'counted locally while Redis was away');
    hits += 1;
    const failedAt = Date.now();
    await sleep(1000);
    await limiter.sync();
    assert.equal(limiter.shared, true, 'syncing again');
    assert.ok(limiter.lastSyncAt > failedAt);
    // A timed-out script may still have run: resending then counts twice, never fewer.
    assert.ok((await total(namespace)) >= hits);
  } finally {
    await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
    admin.disconnect();
    await limiter.close();
    await namespace.drop();
  }
});

test('counters expire with their window and keys are not stored in the clear', { skip }, async () => {
  const namespace = await createRedisNamespace();
  const limiter = await node(namespace);
  const admin = adminClient();
  await admin.connect();
  try {
    limiter.hit('tk:tk.secret-looking-value', RULE, midWindow());
    await limiter.sync();
    const [key, ...others] = await namespace.keys();
    assert.ok(key !== undefined && others.length === 0);
    assert.doesNotMatch(key, /secret/);
    const ttl = await admin.pttl(key);
    assert.ok(ttl > 0 && ttl <= RULE.interval * 1000 + 5000, `pttl ${ttl}`);
  } finally {
    admin.disconnect();
    await limiter.close();
    await namespace.drop();
  }
});

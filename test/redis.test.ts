import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { counterPattern } from '../src/services/redis-rate-limiter.ts';
import { createApiToken, verifyNginx, withToken } from './helpers/forward-auth.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import { adminClient, REDIS_URL, redisSkipReason } from './helpers/redis.ts';
import { createTestAccount, startConfiguredServer, type TestServer } from './helpers/server.ts';

const skip = (await redisSkipReason()) ?? (await postgresSkipReason()) ?? false;
const FONT = '/fonts/v1/dora/Roboto/0-255.pbf';
// A day-long window: the test cannot straddle two.
const LIMIT = { limit: 20, interval: 86_400 };

let database: TemporaryDatabase;
let nodes: TestServer[] = [];

before(async () => {
  if (skip) return;
  database = await createTemporaryDatabase();
  const env = { TESSERA_DATABASE_URL: database.url, TESSERA_REDIS_URL: REDIS_URL };
  const config = { limits: { tokensApi: { limit: 100_000, interval: 60 }, scopes: { 'fonts:read': LIMIT } } };
  for (let i = 0; i < 2; i++) nodes.push(await startConfiguredServer(config, { env }));
});

after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  nodes = [];
  await database?.drop();
});

async function dropCounters(key: string): Promise<void> {
  const client = adminClient();
  await client.connect();
  try {
    const keys = await client.keys(counterPattern(key));
    if (keys.length > 0) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}

test('forward-auth on two nodes shares one scope limit through Redis, not one each', { skip }, async () => {
  const [a, b] = nodes as [TestServer, TestServer];
  const owner = await createTestAccount(a.services, 'dora', ['tokens:read', 'tokens:write', 'fonts:read']);
  const token = await createApiToken(a, 'dora', owner.adminToken, { scopes: ['fonts:read'] });
  try {
    const statuses: Record<string, number[]> = { a: [], b: [] };
    // Traffic spread over both nodes, a pair of requests per node per sync interval (50 ms).
    for (let round = 0; round < 15; round++) {
      for (const [name, node] of [
        ['a', a],
        ['b', b],
      ] as const) {
        for (let i = 0; i < 2; i++) {
          statuses[name]?.push((await verifyNginx(node, withToken(FONT, token.token))).status);
        }
      }
      await sleep(60);
    }
    const all = [...(statuses['a'] ?? []), ...(statuses['b'] ?? [])];
    const allowed = all.filter((status) => status === 200).length;
    assert.deepEqual(new Set(all), new Set([200, 429]));
    // Per-node limits would admit 40; shared, each node misses at most the other's last two pairs.
    assert.ok(allowed >= LIMIT.limit && allowed <= LIMIT.limit + 4, `${allowed} admitted`);
    assert.ok(statuses['a']?.includes(429) && statuses['b']?.includes(429), 'both nodes refuse');
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.match(metrics, /^tessera_redis_shared 1$/m);
    assert.match(metrics, /^tessera_redis_errors_total 0$/m);
    assert.match(metrics, /^tessera_redis_sync_lag_seconds (0|0\.\d+)$/m);
  } finally {
    await dropCounters(`token:${token.id}`);
  }
});

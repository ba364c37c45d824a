import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestAccount, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let token: string;

before(async () => {
  server = await startTestServer();
  const account = await createTestAccount(server.services, 'metrics', ['tokens:read']);
  token = account.defaultToken;
});
after(() => server.close());

interface Exposition {
  readonly contentType: string;
  readonly text: string;
  /** Sample name with its labels as written (`name{label="value"}`) to value. */
  readonly samples: Map<string, number>;
}

const SAMPLE = /^([a-z_:][a-z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? (\S+)$/;

async function scrape(): Promise<Exposition> {
  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  const text = await response.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${line}`);
    const value = Number(match[4]);
    assert.ok(!Number.isNaN(value), line);
    samples.set(`${match[1]}${match[2] ?? ''}`, value);
  }
  return { contentType: response.headers.get('content-type') ?? '', text, samples };
}

function sample(exposition: Exposition, name: string): number {
  const value = exposition.samples.get(name);
  assert.ok(value !== undefined, `no sample ${name} in\n${exposition.text}`);
  return value;
}

async function verify(scope: string, credential = token): Promise<number> {
  const response = await fetch(`${server.url}/auth/verify?scope=${scope}`, {
    headers: { 'X-Original-URI': `/styles/v1/x?access_token=${credential}` },
  });
  await response.arrayBuffer();
  return response.status;
}

test('/metrics answers the Prometheus text format, with HELP and TYPE for every metric', async () => {
  const exposition = await scrape();
  assert.match(exposition.contentType, /^text\/plain; version=0\.0\.4/);
  assert.ok(exposition.text.endsWith('\n'));
  const typed = new Set(
    [...exposition.text.matchAll(/^# TYPE (\S+) (counter|gauge|histogram)$/gm)].map((match) => match[1]),
  );
  const helped = new Set([...exposition.text.matchAll(/^# HELP (\S+) .+$/gm)].map((match) => match[1]));
  assert.deepEqual(helped, typed);
  for (const name of exposition.samples.keys()) {
    const family = name.replace(/\{.*$/, '').replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(family) || typed.has(name.replace(/\{.*$/, '')), `${name} has no TYPE`);
  }
  for (const name of [
    'tessera_cache_hits_total',
    'tessera_cache_misses_total',
    'tessera_cache_hit_ratio',
    'tessera_cache_entries',
    'tessera_usage_flush_lag_seconds',
    'tessera_usage_dropped_total',
    'tessera_store_errors_total',
    'tessera_cache_suspensions_total',
    'tessera_verify_duration_seconds_count',
  ]) {
    sample(exposition, name);
  }
  assert.equal(sample(exposition, 'tessera_store_errors_total'), 0);
});

test('decisions are counted by outcome, and the latency histogram is cumulative', async () => {
  const before = await scrape();
  const allowedBefore = before.samples.get('tessera_decisions_total{outcome="allowed"}') ?? 0;
  const N = 7;
  for (let index = 0; index < N; index++) assert.equal(await verify('styles:read'), 200);
  assert.equal(await verify('styles:write'), 403);
  assert.equal(await verify('styles:write'), 403);
  assert.equal(await verify('styles:read', ''), 401);

  const after = await scrape();
  assert.equal(sample(after, 'tessera_decisions_total{outcome="allowed"}'), allowedBefore + N);
  assert.equal(sample(after, 'tessera_decisions_total{outcome="scope"}'), 2);
  assert.equal(sample(after, 'tessera_decisions_total{outcome="missing"}'), 1);

  const buckets = [...after.samples].filter(([name]) =>
    name.startsWith('tessera_verify_duration_seconds_bucket{'),
  );
  assert.ok(buckets.length >= 2);
  const bounds = buckets.map(([name]) => /le="([^"]+)"/.exec(name)?.[1] ?? '');
  assert.equal(bounds.at(-1), '+Inf', 'the last bucket is +Inf');
  const numeric = bounds.slice(0, -1).map(Number);
  assert.deepEqual(
    numeric,
    [...numeric].sort((a, b) => a - b),
    'bounds ascend',
  );
  const counts = buckets.map(([, value]) => value);
  for (let index = 1; index < counts.length; index++) {
    assert.ok(
      (counts[index] ?? 0) >= (counts[index - 1] ?? 0),
      `buckets are cumulative: ${counts.join(' ')}`,
    );
  }
  const total = [...after.samples]
    .filter(([name]) => name.startsWith('tessera_decisions_total{'))
    .reduce((sum, [, value]) => sum + value, 0);
  assert.equal(counts.at(-1), sample(after, 'tessera_verify_duration_seconds_count'));
  assert.equal(sample(after, 'tessera_verify_duration_seconds_count'), total);
  assert.ok(sample(after, 'tessera_verify_duration_seconds_sum') >= 0);
});

test('repeated verification of one token is served from the cache', async () => {
  assert.equal(await verify('styles:read'), 200);
  const before = await scrape();
  for (let index = 0; index < 3; index++) assert.equal(await verify('styles:read'), 200);
  const after = await scrape();
  const hits = sample(after, 'tessera_cache_hits_total') - sample(before, 'tessera_cache_hits_total');
  const misses = sample(after, 'tessera_cache_misses_total') - sample(before, 'tessera_cache_misses_total');
  assert.ok(hits >= 3, `hits grew by ${hits}`);
  assert.equal(misses, 0);
  assert.ok(sample(after, 'tessera_cache_entries') >= 1);
  const ratio = sample(after, 'tessera_cache_hit_ratio');
  assert.ok(ratio > 0 && ratio <= 1, `ratio ${ratio}`);
  assert.ok(ratio > sample(before, 'tessera_cache_hit_ratio'));
});

test('the usage flush lag grows between flushes and falls back after one', async () => {
  await server.services.usage.flush();
  const first = sample(await scrape(), 'tessera_usage_flush_lag_seconds');
  assert.ok(first >= 0, `lag ${first}`);
  assert.equal(await verify('styles:read'), 200);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const waited = sample(await scrape(), 'tessera_usage_flush_lag_seconds');
  assert.ok(waited > first, `lag ${first} then ${waited}`);
  await server.services.usage.flush();
  const flushed = sample(await scrape(), 'tessera_usage_flush_lag_seconds');
  assert.ok(flushed < waited, `lag ${waited} then ${flushed} after a flush`);
});

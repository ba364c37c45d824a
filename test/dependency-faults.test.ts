import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import { newTokenId } from '../src/core/identifiers.ts';
import type { RandomSource } from '../src/core/ports.ts';
import { issuePersistentToken } from '../src/core/token-format.ts';
import { createServices, type Services } from '../src/services/create-services.ts';
import { OUTAGE_GRACE_MS } from '../src/services/token-service.ts';
import { api, createToken, startApiServer, tokensOf } from './helpers/api.ts';
import { DashboardClient } from './helpers/dashboard.ts';
import { type Figure, recordFigures } from './helpers/figures.ts';
import { nginx, withToken } from './helpers/forward-auth.ts';
import {
  PrivatePostgres,
  PrivateRedis,
  privatePostgresSkipReason,
  privateRedisSkipReason,
} from './helpers/private-services.ts';
import { callNode, freePort, NodeGroup, postgresEnv, waitUntilReady } from './helpers/processes.ts';
import { seeded } from './helpers/seeded.ts';
import { createTestAccount, type TestServer } from './helpers/server.ts';

/**
 * PostgreSQL and Redis stopped, killed, frozen with SIGSTOP and restarted under steady load, on
 * servers of this file's own (the machine's shared ones stay untouched). The failure matrix of the
 * security plan (section 2.7) must hold: fail closed, 503 with Retry-After, never a 500, never a
 * write acknowledged and then lost, and recovery without restarting Tessera. Durations are figures;
 * the only time limits asserted are generous bounds that tell an answer from a hang.
 */
const pgSkip = privatePostgresSkipReason();
const redisSkip = pgSkip ?? privateRedisSkipReason();

const SEED = Number(process.env['TESSERA_FAULTS_SEED'] ?? 20_240_707);
const USER = 'faults';
const STYLE = `/styles/v1/${USER}/streets`;
const FONT = `/fonts/v1/${USER}/Roboto/0-255.pbf`;
/** A scope limit for the "limits are never lifted while Redis is away" check; a day, so no window ends mid-test. */
const FONT_LIMIT = { limit: 10, interval: 86_400 };
const LIMITS = { tokensApi: { limit: 1_000_000, interval: 60 }, scopes: { 'fonts:read': FONT_LIMIT } };
/** No answer within this is a hang: the request timeouts are 5 s (pool) and 2-3 s (statement). */
const HANG_BOUND_MS = 10_000;
/** Our own limit on one request, so a hung server fails the test instead of stalling it. */
const ABORT_MS = 20_000;
/** The longest wait for recovery once a dependency is back: liveness, not performance. */
const RECOVERY_BOUND_MS = 30_000;
/** A node notices a stopped PostgreSQL within this (its change feed drops at once). */
const NOTICE_SLACK_MS = 1_500;
const VERIFY_WORKERS = 3;
const MAX_REQUESTS_PER_WORKER = 5_000;
/** Every load run stops by itself after this, whatever the test does. */
const LOAD_WALL_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32), so a failing run can be replayed with TESSERA_FAULTS_SEED.

function seededBytes(seed: number): RandomSource {
  const next = seeded(seed);
  return { bytes: (length) => Uint8Array.from({ length }, () => Math.floor(next() * 256)) };
}

// ---------------------------------------------------------------------------------------------
// The fixture: an account with valid, revoked and unknown tokens.

interface Fixture {
  readonly adminToken: string;
  readonly valid: readonly string[];
  readonly revoked: readonly string[];
  /** Well formed, right checksum, never stored: only the store can tell they are unknown. */
  readonly unknown: readonly string[];
}

async function createFixture(server: TestServer): Promise<Fixture> {
  const scopes = ['tokens:read', 'tokens:write', 'styles:read', 'fonts:read'];
  const owner = await createTestAccount(server.services, USER, scopes);
  const valid: string[] = [];
  for (let i = 0; i < 8; i++)
    valid.push((await createToken(server, USER, { scopes: ['styles:read'] })).token);
  const revoked: string[] = [];
  for (let i = 0; i < 4; i++) {
    const token = await createToken(server, USER, { scopes: ['styles:read'] });
    const deleted = await api(server, 'DELETE', `/tokens/v2/${USER}/${token.id}`, {
      token: owner.adminToken,
    });
    assert.equal(deleted.status, 204, deleted.text);
    revoked.push(token.token);
  }
  const random = seededBytes(SEED);
  const unknown = Array.from({ length: 4 }, () =>
    issuePersistentToken({ usage: 'pk', username: USER, tokenId: newTokenId(random) }, random),
  );
  return { adminToken: owner.adminToken, valid, revoked, unknown };
}

// ---------------------------------------------------------------------------------------------
// Steady load: forward-auth of valid, revoked and unknown tokens, Tokens API creates and deletes,
// and /healthz, each answer recorded with its latency. Bounded by count and wall time.

/** `redelete`: a delete sent again after a 503, which may have committed all the same. */
type Kind = 'valid' | 'revoked' | 'unknown' | 'create' | 'delete' | 'redelete' | 'health';

interface Sample {
  readonly kind: Kind;
  readonly startedAt: number;
  readonly ms: number;
  /** 0: no answer (connection error, or our own abort after ABORT_MS). */
  readonly status: number;
  readonly retryAfter: string | null;
  readonly detail: string;
}

interface Created {
  readonly id: string;
  readonly token: string;
}

class Load {
  readonly samples: Sample[] = [];
  /** Creates answered 200, by id. */
  readonly acknowledged = new Map<string, Created>();
  /** Deletes answered 204. */
  readonly deleted = new Set<string>();
  /** Notes of creates answered 503: not acknowledged, so either outcome is allowed. */
  readonly refusedCreates: string[] = [];
  readonly #server: TestServer;
  readonly #fixture: Fixture;
  readonly #workers: Promise<void>[] = [];
  readonly #deadline = performance.now() + LOAD_WALL_MS;
  #stopped = false;

  constructor(server: TestServer, fixture: Fixture) {
    this.#server = server;
    this.#fixture = fixture;
    for (let worker = 0; worker < VERIFY_WORKERS; worker++) {
      this.#workers.push(this.#verifier(seeded(SEED + worker + 1)));
    }
    this.#workers.push(this.#writer(), this.#health());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#workers);
  }

  get #running(): boolean {
    return !this.#stopped && performance.now() < this.#deadline;
  }

  async #send(kind: Kind, path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
    const startedAt = performance.now();
    let status = 0;
    let text = '';
    let retryAfter: string | null = null;
    try {
      const response = await fetch(new URL(path, this.#server.url), {
        ...init,
        signal: AbortSignal.timeout(ABORT_MS),
      });
      text = await response.text();
      status = response.status;
      retryAfter = response.headers.get('retry-after');
    } catch (error) {
      text = String((error as Error).message);
    }
    const ms = performance.now() - startedAt;
    this.samples.push({ kind, startedAt, ms, status, retryAfter, detail: text.slice(0, 200) });
    return { status, text };
  }

  async #verifier(random: () => number): Promise<void> {
    const { valid, revoked, unknown } = this.#fixture;
    for (let n = 0; n < MAX_REQUESTS_PER_WORKER && this.#running; n++) {
      const draw = random();
      const [kind, pool]: [Kind, readonly string[]] =
        draw < 0.6 ? ['valid', valid] : draw < 0.8 ? ['revoked', revoked] : ['unknown', unknown];
      const token = pool[Math.floor(random() * pool.length)] ?? '';
      await this.#send(kind, '/auth/verify', { headers: nginx(withToken(STYLE, token)) });
      await sleep(5);
    }
  }

  async #writer(): Promise<void> {
    const admin = `access_token=${encodeURIComponent(this.#fixture.adminToken)}`;
    const toDelete: { readonly token: Created; readonly retry: boolean }[] = [];
    for (let n = 0; n < MAX_REQUESTS_PER_WORKER && this.#running; n++) {
      const note = `load ${n}`;
      const created = await this.#send('create', `/tokens/v2/${USER}?${admin}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ note, scopes: ['styles:read'] }),
      });
      if (created.status === 200) {
        const token = JSON.parse(created.text) as Created;
        this.acknowledged.set(token.id, token);
        // Every other acknowledged token is deleted again while the load goes on.
        if (n % 2 === 0) toDelete.push({ token, retry: false });
      } else if (created.status === 503) this.refusedCreates.push(note);
      // A backlog of a few tokens waits for deletion, so deletes meet an outage too.
      const target = toDelete.length > 4 || created.status !== 200 ? toDelete.shift() : undefined;
      if (target) {
        const path = `/tokens/v2/${USER}/${target.token.id}?${admin}`;
        const removed = await this.#send(target.retry ? 'redelete' : 'delete', path, { method: 'DELETE' });
        // A 404 on a retry: the delete answered 503 had committed; the token is gone either way.
        if (removed.status === 204 || (target.retry && removed.status === 404))
          this.deleted.add(target.token.id);
        else if (removed.status === 503) toDelete.push({ token: target.token, retry: true });
      }
      await sleep(20);
    }
  }

  async #health(): Promise<void> {
    for (let n = 0; n < MAX_REQUESTS_PER_WORKER && this.#running; n++) {
      await this.#send('health', '/healthz');
      await sleep(100);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The failure matrix, checked over every answer.

/** What each kind of request may answer while a dependency is away (anything, at any time). */
const ALLOWED: Readonly<Record<Kind, readonly number[]>> = {
  valid: [200, 503],
  revoked: [401, 503],
  unknown: [401, 503],
  create: [200, 503],
  delete: [204, 503],
  redelete: [204, 404, 503],
  health: [200],
};
/** What each kind answers when every dependency is up. */
const NORMAL: Readonly<Record<Kind, readonly number[]>> = {
  valid: [200],
  revoked: [401],
  unknown: [401],
  create: [200],
  delete: [204],
  redelete: [204, 404],
  health: [200],
};

interface Window {
  /** When the fault was injected. */
  readonly faultAt: number;
  /** When the service was seen recovered (Infinity: the check is for the whole run). */
  readonly recoveredAt: number;
}

function describeSample(sample: Sample, window: Window): string {
  const at = Math.round(sample.startedAt - window.faultAt);
  return `${sample.kind} at ${at} ms: ${sample.status} in ${Math.round(sample.ms)} ms ${sample.detail}`;
}

/**
 * Answers that break the matrix: a status outside ALLOWED (a 500, a 200 for a revoked or unknown
 * token), a 503 without Retry-After, no answer within HANG_BOUND_MS, or anything but the normal
 * answer from a request that ran entirely before the fault or started after recovery (`normalOnly`:
 * from every request, for a dependency the answers must not depend on).
 */
function violations(
  samples: readonly Sample[],
  window: Window,
  { normalOnly = false }: { readonly normalOnly?: boolean } = {},
): string[] {
  const found: string[] = [];
  for (const sample of samples) {
    const calm = sample.startedAt + sample.ms < window.faultAt || sample.startedAt > window.recoveredAt;
    const ok = calm || normalOnly ? NORMAL[sample.kind] : ALLOWED[sample.kind];
    if (!ok.includes(sample.status)) found.push(describeSample(sample, window));
    else if (sample.status === 503 && !sample.retryAfter)
      found.push(`no Retry-After: ${describeSample(sample, window)}`);
    else if (sample.ms > HANG_BOUND_MS) found.push(`slow: ${describeSample(sample, window)}`);
  }
  return found.slice(0, 20);
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const round = (ms: number): number => Math.round(ms);

/** Status counts of one kind of request, e.g. "503: 120, 200: 3". */
function statusCounts(samples: readonly Sample[], kind: Kind): string {
  const counts = new Map<number, number>();
  for (const sample of samples)
    if (sample.kind === kind) counts.set(sample.status, (counts.get(sample.status) ?? 0) + 1);
  return (
    [...counts]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}: ${n}`)
      .join(', ') || 'none'
  );
}

function during(samples: readonly Sample[], from: number, to: number): Sample[] {
  return samples.filter((sample) => sample.startedAt >= from && sample.startedAt < to);
}

function report(t: TestContext, row: string, figures: Readonly<Record<string, Figure>>): void {
  for (const [name, value] of Object.entries(figures)) t.diagnostic(`${row} ${name}: ${value}`);
  recordFigures(row, figures);
}

// ---------------------------------------------------------------------------------------------
// Recovery and durability checks.

async function waitFor(
  condition: () => Promise<boolean> | boolean,
  what: string,
  boundMs = 15_000,
): Promise<void> {
  const deadline = performance.now() + boundMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Ready, a create goes through, and the new token (never cached) verifies from the store. */
async function serving(server: TestServer, fixture: Fixture): Promise<boolean> {
  try {
    if ((await api(server, 'GET', '/readyz')).status !== 200) return false;
    const created = await api(server, 'POST', `/tokens/v2/${USER}`, {
      token: fixture.adminToken,
      json: { note: 'recovery probe', scopes: ['styles:read'] },
    });
    if (created.status !== 200) return false;
    const { token } = created.body as Created;
    return (
      (await api(server, 'GET', '/auth/verify', { headers: nginx(withToken(STYLE, token)) })).status === 200
    );
  } catch {
    return false;
  }
}

/** ms from now until the node serves again without a restart (fails after RECOVERY_BOUND_MS). */
async function timeToRecovery(server: TestServer, fixture: Fixture): Promise<number> {
  const since = performance.now();
  await waitFor(() => serving(server, fixture), 'recovery', RECOVERY_BOUND_MS);
  return performance.now() - since;
}

interface Durability {
  readonly lostCreates: string[];
  readonly resurrected: string[];
  /** Creates answered 503 whose token exists all the same (committed as the connection died). */
  readonly refusedButCommitted: number;
}

/** Every acknowledged create is there, every acknowledged delete stays deleted, read from the store. */
async function durability(server: TestServer, load: Load): Promise<Durability> {
  const live = await tokensOf(server, USER);
  const liveIds = new Set(live.map((token) => token.id));
  const lostCreates = [...load.acknowledged.keys()].filter((id) => !load.deleted.has(id) && !liveIds.has(id));
  const resurrected = [...load.deleted].filter((id) => liveIds.has(id));
  const refused = new Set(load.refusedCreates);
  return {
    lostCreates,
    resurrected,
    refusedButCommitted: live.filter((token) => refused.has(token.note)).length,
  };
}

/** Forward-auth answers for acknowledged-deleted tokens, in small batches: each must be 401. */
async function deletedAnswers(server: TestServer, load: Load): Promise<number[]> {
  const tokens = [...load.deleted].map((id) => load.acknowledged.get(id)?.token ?? '');
  const statuses: number[] = [];
  for (let i = 0; i < tokens.length; i += 10) {
    const batch = tokens
      .slice(i, i + 10)
      .map((token) => api(server, 'GET', '/auth/verify', { headers: nginx(withToken(STYLE, token)) }));
    statuses.push(...(await Promise.all(batch)).map((answer) => answer.status));
  }
  return statuses;
}

// ---------------------------------------------------------------------------------------------

/** Runs `work` on services of this process over the node's database (quicker than two CLI processes). */
async function withServices<T>(
  env: Record<string, string>,
  work: (services: Services) => Promise<T>,
): Promise<T> {
  const services = await createServices(loadConfig(env));
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}

let postgres: PrivatePostgres | undefined;
let redis: PrivateRedis | undefined;
let databases = 0;

async function startNode(options: { readonly redis?: boolean } = {}): Promise<TestServer> {
  assert.ok(postgres);
  const url = await postgres.createDatabase(`faults_${++databases}`);
  const env: Record<string, string> = { TESSERA_DATABASE_URL: url };
  if (options.redis && redis) env['TESSERA_REDIS_URL'] = redis.url;
  return startApiServer({ limits: LIMITS, env });
}

async function ready(server: TestServer, options: { readonly redis?: boolean } = {}): Promise<Fixture> {
  const fixture = await createFixture(server);
  await waitFor(() => !server.services.cache.suspended, 'the change feed');
  if (options.redis) await waitFor(() => redisShared(server), 'the first Redis sync');
  return fixture;
}

async function redisShared(server: TestServer): Promise<boolean> {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  return /^tessera_redis_shared 1$/m.test(metrics);
}

describe('dependency faults on private PostgreSQL and Redis servers', { skip: pgSkip ?? false }, () => {
  before(async () => {
    [postgres, redis] = await Promise.all([
      PrivatePostgres.create(),
      redisSkip ? Promise.resolve(undefined) : PrivateRedis.create(),
    ]);
  });
  after(async () => {
    await Promise.all([postgres?.destroy(), redis?.destroy()]);
  });

  test('T61 PostgreSQL stopped under load (pg_ctl stop -m immediate) and started again: 503 with Retry-After meanwhile, recovery without a restart, no acknowledged write lost', async (t) => {
    assert.ok(postgres);
    const server = await startNode();
    try {
      const fixture = await ready(server);
      t.diagnostic(`seed ${SEED}`);
      const load = new Load(server, fixture);
      await sleep(1_000);
      const faultAt = performance.now();
      await postgres.stop();
      const stoppedAt = performance.now();
      // Longer than the 5 s grace, so tokens verified just before the stop run out of it.
      await sleep(8_000);
      const restartAt = performance.now();
      await postgres.start();
      const backAt = performance.now();
      const recoveryMs = await timeToRecovery(server, fixture);
      const recoveredAt = performance.now();
      await sleep(500);
      await load.stop();

      const window = { faultAt, recoveredAt };
      assert.deepEqual(violations(load.samples, window), [], 'the failure matrix holds');
      const outage = during(load.samples, stoppedAt + NOTICE_SLACK_MS, backAt);
      assert.ok(
        outage.filter((s) => s.kind === 'unknown' && s.status === 503).length > 0,
        'unknown tokens met the outage',
      );
      assert.ok(
        outage.filter((s) => s.kind === 'create' && s.status === 503).length > 0,
        'writes met the outage',
      );
      // The grace covers tokens the store confirmed moments before the outage, not the outage.
      const lateAccepts = during(
        load.samples,
        stoppedAt + OUTAGE_GRACE_MS + NOTICE_SLACK_MS,
        restartAt,
      ).filter((s) => s.kind === 'valid' && s.status === 200);
      assert.deepEqual(
        lateAccepts.map((s) => describeSample(s, window)),
        [],
        'no acceptance beyond the grace',
      );

      const kept = await durability(server, load);
      assert.deepEqual(kept.lostCreates, [], 'acknowledged creates lost');
      assert.deepEqual(kept.resurrected, [], 'acknowledged deletes undone');
      assert.ok(load.acknowledged.size > 0 && load.deleted.size > 0, 'the load wrote before and after');
      assert.ok(
        (await deletedAnswers(server, load)).every((status) => status === 401),
        'deleted tokens refused',
      );

      const inOutage = during(load.samples, faultAt, backAt);
      report(t, 'T61', {
        'stop: outage (s)': Math.round((backAt - faultAt) / 100) / 10,
        'stop: pg_ctl stop / start (s)': `${Math.round((stoppedAt - faultAt) / 100) / 10} / ${Math.round((backAt - restartAt) / 100) / 10}`,
        'stop: requests during outage': inOutage.length,
        'stop: outage writes': `${statusCounts(inOutage, 'create')} (creates); ${statusCounts(inOutage, 'delete')} (deletes); ${statusCounts(inOutage, 'redelete')} (retried deletes)`,
        'stop: outage valid tokens': statusCounts(inOutage, 'valid'),
        'stop: deletes retried after a 503': statusCounts(load.samples, 'redelete'),
        'stop: outage unknown tokens': statusCounts(inOutage, 'unknown'),
        'stop: outage revoked tokens': statusCounts(inOutage, 'revoked'),
        'stop: 500s': load.samples.filter((s) => s.status >= 500 && s.status !== 503).length,
        'stop: valid accepted beyond the 5 s grace': lateAccepts.length,
        'stop: max latency (ms)': round(Math.max(...load.samples.map((s) => s.ms))),
        'stop: recovery after PostgreSQL is back (s)': Math.round(recoveryMs / 100) / 10,
        'stop: acknowledged creates': load.acknowledged.size,
        'stop: acknowledged deletes': load.deleted.size,
        'stop: lost acknowledged writes': kept.lostCreates.length + kept.resurrected.length,
        'stop: creates answered 503 yet committed': kept.refusedButCommitted,
      });
    } finally {
      await server.close();
      await postgres.ensureRunning();
    }
  });

  test('T61 PostgreSQL hung (SIGSTOP) under load, then SIGCONT: every request answered in bounded time, 503 not 500, liveness answers, recovery', async (t) => {
    assert.ok(postgres);
    const server = await startNode();
    try {
      const fixture = await ready(server);
      const load = new Load(server, fixture);
      await sleep(1_000);
      const faultAt = performance.now();
      postgres.hang();
      await sleep(10_000);
      postgres.resume();
      const backAt = performance.now();
      const recoveryMs = await timeToRecovery(server, fixture);
      const recoveredAt = performance.now();
      await sleep(500);
      await load.stop();

      const window = { faultAt, recoveredAt };
      assert.deepEqual(violations(load.samples, window), [], 'the failure matrix holds, nothing hangs');
      const inOutage = during(load.samples, faultAt, backAt);
      const health = inOutage.filter((s) => s.kind === 'health');
      assert.ok(health.length > 0 && health.every((s) => s.status === 200), 'liveness answers throughout');
      const writes: readonly Kind[] = ['create', 'delete', 'redelete'];
      // A closed-loop writer may have one request spanning most of the hang: count the writes that
      // overlapped it, not only those that started within it.
      const overlapping = load.samples.filter((s) => s.startedAt < backAt && s.startedAt + s.ms > faultAt);
      assert.ok(
        overlapping.some((s) => writes.includes(s.kind) && s.status === 503),
        `writes met the hang: ${statusCounts(inOutage, 'create')} (creates); ${statusCounts(inOutage, 'delete')} (deletes); ${statusCounts(inOutage, 'redelete')} (retried deletes)`,
      );

      const kept = await durability(server, load);
      assert.deepEqual(kept.lostCreates, [], 'acknowledged creates lost');
      assert.deepEqual(kept.resurrected, [], 'acknowledged deletes undone');
      assert.ok(
        (await deletedAnswers(server, load)).every((status) => status === 401),
        'deleted tokens refused',
      );

      const latencies = inOutage.filter((s) => s.kind !== 'health').map((s) => s.ms);
      report(t, 'T61', {
        'hang: SIGSTOP (s)': Math.round((backAt - faultAt) / 100) / 10,
        'hang: requests during hang': inOutage.length,
        'hang: writes': `${statusCounts(inOutage, 'create')} (creates); ${statusCounts(inOutage, 'delete')} (deletes); ${statusCounts(inOutage, 'redelete')} (retried deletes)`,
        // Answered from the node's cache: its change feed stays connected, and a frozen server commits nothing.
        'hang: valid tokens (cached verdicts)': statusCounts(inOutage, 'valid'),
        'hang: deletes retried after a 503': statusCounts(load.samples, 'redelete'),
        'hang: unknown tokens': statusCounts(inOutage, 'unknown'),
        'hang: revoked tokens': statusCounts(inOutage, 'revoked'),
        'hang: 500s': load.samples.filter((s) => s.status >= 500 && s.status !== 503).length,
        'hang: p99 / max latency (ms)': `${round(quantile(latencies, 0.99))} / ${round(Math.max(...latencies))}`,
        'hang: /healthz max latency (ms)': round(Math.max(...health.map((s) => s.ms))),
        'hang: recovery after SIGCONT (s)': Math.round(recoveryMs / 100) / 10,
        'hang: lost acknowledged writes': kept.lostCreates.length + kept.resurrected.length,
        'hang: creates answered 503 yet committed': kept.refusedButCommitted,
      });
    } finally {
      await server.close();
      await postgres.ensureRunning();
    }
  });

  /*
   * test/postgres-startup.test.ts proves, in process and through a proxy, that createServices waits
   * with backoff. This runs the real `tessera serve` against a really stopped PostgreSQL: the process
   * must stay up (no crash loop), never claim readiness, and serve once PostgreSQL starts.
   */
  test('T62 tessera serve started while PostgreSQL is down: alive, 503 for readiness and requests, serves once PostgreSQL is up', async (t) => {
    assert.ok(postgres);
    const group = new NodeGroup();
    try {
      const url = await postgres.createDatabase(`faults_${++databases}`);
      const env = postgresEnv(url, group.dataDir());
      await postgres.stop();
      const node = group.launch('late', { ...env, TESSERA_LOG_LEVEL: 'info' }, await freePort());
      const waits = (): number =>
        node
          .output()
          .split('\n')
          .filter((line) => line.includes('waiting for the database')).length;
      const probes = new Map<string, number>();
      const probe = async (): Promise<void> => {
        const answer = await fetch(`${node.url}/readyz`).then(
          (response) => String(response.status),
          () => 'no answer',
        );
        probes.set(answer, (probes.get(answer) ?? 0) + 1);
      };
      // Two backoff rounds (0.25 + 0.5 s) once the node has compiled and tried.
      await waitFor(
        async () => {
          await probe();
          return waits() >= 2 || !node.running;
        },
        'the node waiting for PostgreSQL',
        RECOVERY_BOUND_MS,
      );
      assert.ok(node.running, `the node exited instead of waiting:\n${node.output()}`);
      assert.ok(!probes.has('200'), 'never ready while PostgreSQL is down');
      // Bound before the wait: alive for a liveness probe, 503 for readiness and for everything else.
      const live = await fetch(`${node.url}/healthz`);
      assert.equal(live.status, 200);
      const ready = await fetch(`${node.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(ready.headers.get('retry-after'), '5');
      const verification = await fetch(`${node.url}/auth/verify`, {
        headers: { 'X-Original-URI': '/x?access_token=pk.a.b' },
      });
      assert.equal(verification.status, 503, 'nothing is admitted while starting');
      assert.deepEqual(await verification.json(), { message: 'Service Unavailable' });
      const restartStartedAt = performance.now();
      await postgres.start();
      const backAt = performance.now();
      // Fails at once if the process exits: the process that waited is the one that serves.
      await waitUntilReady(node);
      const readyMs = performance.now() - backAt;

      const owner = await withServices(env, (services) =>
        createTestAccount(services, 'late', ['tokens:read', 'tokens:write', 'styles:read']),
      );
      const created = await callNode(node, 'POST', '/tokens/v2/late', {
        token: owner.adminToken,
        json: { note: 'after the wait', scopes: ['styles:read'] },
      });
      assert.equal(created.status, 200, created.text);
      const verdict = await callNode(node, 'GET', '/tokens/v2', { token: (created.body as Created).token });
      assert.equal((verdict.body as { code: string }).code, 'TokenValid');
      report(t, 'T62', {
        '/readyz while PostgreSQL is down': [...probes].map(([answer, n]) => `${answer}: ${n}`).join(', '),
        'waiting warnings logged': waits(),
        'process restarts': 0,
        'PostgreSQL start (s)': Math.round((backAt - restartStartedAt) / 100) / 10,
        'ready after PostgreSQL started (s)': Math.round(readyMs / 100) / 10,
      });
    } finally {
      await group.cleanup();
      await postgres.ensureRunning();
    }
  });

  describe('with Redis', { skip: redisSkip ?? false }, () => {
    test('T63 Redis killed under load, then restarted: tokens verify from the database, revoked 0 accepted, limits still enforced', async (t) => {
      assert.ok(redis);
      const server = await startNode({ redis: true });
      try {
        const fixture = await ready(server, { redis: true });
        const load = new Load(server, fixture);
        await sleep(1_000);
        const faultAt = performance.now();
        await redis.kill();
        await waitFor(async () => !(await redisShared(server)), 'the node noticing Redis is gone');
        const limiter = await limiterDuringOutage(server);
        const signIn = await signInDuringOutage(server);
        const readyz = (await api(server, 'GET', '/readyz')).status;
        await sleep(1_000);
        await redis.start();
        const backAt = performance.now();
        await waitFor(() => redisShared(server), 'the node syncing with Redis again', RECOVERY_BOUND_MS);
        const recoveryMs = performance.now() - backAt;
        await sleep(500);
        await load.stop();

        assertRedisOutcome(load, { faultAt, recoveredAt: Number.POSITIVE_INFINITY }, limiter, signIn);
        assert.equal(readyz, 200, 'Redis is optional: the node stays ready');
        report(t, 'T63', redisFigures(load, { faultAt, backAt }, { recoveryMs, limiter, signIn }));
      } finally {
        await server.close();
        await redis.ensureRunning();
      }
    });

    test('T64 Redis hung (SIGSTOP) under load, then SIGCONT: no request waits on it, liveness answers, limits hold, recovery', async (t) => {
      assert.ok(redis);
      const server = await startNode({ redis: true });
      try {
        const fixture = await ready(server, { redis: true });
        const load = new Load(server, fixture);
        await sleep(1_000);
        const faultAt = performance.now();
        redis.hang();
        const limiter = await limiterDuringOutage(server);
        await sleep(Math.max(0, 10_000 - (performance.now() - faultAt)));
        redis.resume();
        const backAt = performance.now();
        await waitFor(() => redisShared(server), 'the node syncing with Redis again', RECOVERY_BOUND_MS);
        const recoveryMs = performance.now() - backAt;
        await sleep(500);
        await load.stop();

        assertRedisOutcome(load, { faultAt, recoveredAt: Number.POSITIVE_INFINITY }, limiter);
        const health = during(load.samples, faultAt, backAt).filter((s) => s.kind === 'health');
        assert.ok(health.length > 0, 'liveness was asked during the hang');
        report(t, 'T64', {
          ...redisFigures(load, { faultAt, backAt }, { recoveryMs, limiter }),
          'hang: SIGSTOP (s)': Math.round((backAt - faultAt) / 100) / 10,
          '/healthz max latency during the hang (ms)': round(Math.max(...health.map((s) => s.ms))),
        });
      } finally {
        await server.close();
        await redis.ensureRunning();
      }
    });

    /*
     * Redis holds only rate-limit counters (`tessera:rl:<sha-256 digest>:…`): verdicts are cached in
     * each node's memory (decision 0003), never in Redis, so a stale dump.rdb cannot bring a revoked
     * token back. The test checks both halves: what Redis holds, and the revoked token after the restore.
     */
    test('T65 Redis restarted from a dump.rdb taken before a revocation: the revoked token stays 401 (Redis holds no verdicts)', async (t) => {
      assert.ok(redis);
      const server = await startNode({ redis: true });
      let second: TestServer | undefined;
      try {
        const fixture = await ready(server, { redis: true });
        const token = await createToken(server, USER, { scopes: ['styles:read', 'fonts:read'] });
        const ask = async (node: TestServer, path: string): Promise<number> =>
          (await api(node, 'GET', '/auth/verify', { headers: nginx(withToken(path, token.token)) })).status;
        assert.equal(await ask(server, STYLE), 200);
        assert.equal(await ask(server, FONT), 200, 'a limited scope: Redis gets a counter');
        await waitFor(async () => (await redis?.keys())?.length !== 0, 'the counter in Redis');
        const snapshot = await redis.snapshot('before-revocation');
        const held = await redis.dump();
        const verdictLike = Object.entries(held).filter(
          ([key, value]) =>
            !key.startsWith('tessera:rl:') || /[a-z]{2}\./.test(value) || value.includes(token.id),
        );
        assert.deepEqual(verdictLike, [], 'Redis holds counters only, nothing naming a token');

        const removed = await api(server, 'DELETE', `/tokens/v2/${USER}/${token.id}`, {
          token: fixture.adminToken,
        });
        assert.equal(removed.status, 204);
        assert.equal(await ask(server, STYLE), 401);
        await redis.restartFrom(snapshot);
        await waitFor(
          () => redisShared(server),
          'the node syncing with the restored Redis',
          RECOVERY_BOUND_MS,
        );
        const answers = [await ask(server, STYLE), await ask(server, FONT)];
        // A node started after the restore, cache empty, on the same database and the restored Redis.
        second = await startApiServer({
          limits: LIMITS,
          env: { TESSERA_DATABASE_URL: server.services.config.databaseUrl, TESSERA_REDIS_URL: redis.url },
        });
        answers.push(await ask(second, STYLE), await ask(second, FONT));
        assert.deepEqual(answers, [401, 401, 401, 401], 'revoked on both nodes after the stale restore');
        report(t, 'T65', {
          'Redis keys before the revocation': Object.keys(held).length,
          'Redis keys holding verdicts or token ids': verdictLike.length,
          'revoked token answers after restoring the older dump.rdb': answers.join(', '),
          'resurrected tokens': answers.filter((status) => status === 200).length,
        });
      } finally {
        await second?.close();
        await server.close();
        await redis.ensureRunning();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Redis outage checks.

interface LimiterOutcome {
  readonly admitted: number;
  readonly refused: number;
  readonly other: number[];
}

/** A fresh token with a limited scope, asked LIMIT + 5 times while Redis is away. */
async function limiterDuringOutage(server: TestServer): Promise<LimiterOutcome> {
  const token = await createToken(server, USER, { scopes: ['fonts:read'] });
  const statuses: number[] = [];
  for (let i = 0; i < FONT_LIMIT.limit + 5; i++) {
    statuses.push(
      (await api(server, 'GET', '/auth/verify', { headers: nginx(withToken(FONT, token.token)) })).status,
    );
  }
  return {
    admitted: statuses.filter((status) => status === 200).length,
    refused: statuses.filter((status) => status === 429).length,
    other: statuses.filter((status) => status !== 200 && status !== 429),
  };
}

/** Six wrong passwords for one account while Redis is away: the sixth is throttled. */
async function signInDuringOutage(server: TestServer): Promise<number[]> {
  await server.services.accounts.createAccount({
    username: 'signin',
    email: 'signin@example.com',
    password: 'correct horse battery staple',
  });
  const browser = new DashboardClient(server);
  await browser.get('/signin');
  const statuses: number[] = [];
  for (let attempt = 0; attempt < 6; attempt++) {
    statuses.push(
      (await browser.post('/signin', { username: 'signin', password: 'wrong', next: '/account' })).status,
    );
  }
  return statuses;
}

function assertRedisOutcome(
  load: Load,
  window: Window,
  limiter: LimiterOutcome,
  signIn?: readonly number[],
): void {
  // Redis is optional: every answer is the normal one, during the fault too.
  assert.deepEqual(violations(load.samples, window, { normalOnly: true }), [], 'answers as if Redis were up');
  assert.deepEqual(
    limiter,
    { admitted: FONT_LIMIT.limit, refused: 5, other: [] },
    'the limit holds per node while Redis is away (never lifted)',
  );
  if (signIn) assert.deepEqual(signIn, [401, 401, 401, 401, 401, 429], 'sign-in throttling holds');
}

function redisFigures(
  load: Load,
  window: { readonly faultAt: number; readonly backAt: number },
  measured: {
    readonly recoveryMs: number;
    readonly limiter: LimiterOutcome;
    readonly signIn?: readonly number[];
  },
): Record<string, Figure> {
  const verifications = (from: number, to: number): number[] =>
    during(load.samples, from, to)
      .filter((s) => s.kind === 'valid')
      .map((s) => s.ms);
  const outage = during(load.samples, window.faultAt, window.backAt);
  const valid = load.samples.filter((s) => s.kind === 'valid');
  const p99 = (values: number[]): number => Math.round(quantile(values, 0.99) * 10) / 10;
  return {
    'valid-token success': `${valid.filter((s) => s.status === 200).length}/${valid.length}`,
    'revoked or unknown tokens accepted': load.samples.filter(
      (s) => (s.kind === 'revoked' || s.kind === 'unknown') && s.status === 200,
    ).length,
    'requests during the fault': outage.length,
    '5xx': load.samples.filter((s) => s.status >= 500).length,
    'verification p99 before / during / after (ms)': [
      p99(verifications(0, window.faultAt)),
      p99(verifications(window.faultAt, window.backAt)),
      p99(verifications(window.backAt, Number.POSITIVE_INFINITY)),
    ].join(' / '),
    'max latency (ms)': round(Math.max(...load.samples.map((s) => s.ms))),
    'limiter while Redis is away': `per-node fallback, ${measured.limiter.admitted} of ${FONT_LIMIT.limit + 5} admitted (limit ${FONT_LIMIT.limit})`,
    ...(measured.signIn ? { 'sign-in while Redis is away': measured.signIn.join(', ') } : {}),
    'recovery: shared again after Redis is back (s)': Math.round(measured.recoveryMs / 100) / 10,
  };
}

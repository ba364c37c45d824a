import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Clock } from '../src/core/ports.ts';
import { openDatabase, parseDatabaseUrl } from '../src/storage/database.ts';
import { migrateToLatest } from '../src/storage/migrations.ts';
import { type ApiResponse, api } from './helpers/api.ts';
import { recordFigures } from './helpers/figures.ts';
import { verifyNginx, withToken } from './helpers/forward-auth.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import { NodeGroup, postgresEnv } from './helpers/processes.ts';
import {
  ADMIN_SCOPES,
  createTestAccount,
  ManualClock,
  startConfiguredServer,
  type TestServer,
} from './helpers/server.ts';

/**
 * T68: two Tessera nodes on one PostgreSQL database, node B's clock 90 s ahead of node A's. Both
 * clocks are injected and moved together, one second at a time, across a token's expiry; every
 * step asks both nodes, through forward-auth and the Tokens API's retrieve, what they make of it.
 * A's clock is the true time (it starts at the real time, as the database's does).
 */
const skip = await postgresSkipReason();

const SKEW_MS = 90_000;
const USER = 'skew';
const WARNING = 'this machine clock differs from the database clock';

type Code = 'TokenValid' | 'TokenExpired' | 'TokenInvalid' | 'TokenRevoked';

interface SkewNode extends TestServer {
  readonly name: 'A' | 'B';
  readonly clock: Clock;
  /**
   * What the node reported through its skew check (`onClockSkew`, ms) and exported (`/metrics`, s)
   * at start. Taken then: the node measures again every 5 s, and a ManualClock stands still while
   * the real time goes on.
   */
  readonly atStart: { readonly reports: readonly number[]; readonly metric: number };
}

/** One answer of one node, at one step. */
interface Observation {
  readonly node: 'A' | 'B';
  /** Seconds since the token was made, by A's (true) clock. */
  readonly second: number;
  /** The node's own clock, ms. */
  readonly ownNow: number;
  readonly code: Code;
}

/** A run of steps with one verdict: [code, first second, last second] (true time). */
type Span = readonly [Code, number, number];

const FORWARD_AUTH_CODES: Readonly<Record<string, Code>> = {
  expired: 'TokenExpired',
  invalid: 'TokenInvalid',
  revoked: 'TokenRevoked',
};

/**
 * A node as `tessera serve` builds it, but with `clock` injected and the skew check recorded
 * through the callback the CLI logs from.
 */
async function startNode(name: 'A' | 'B', clock: Clock, databaseUrl: string): Promise<SkewNode> {
  const skewReports: number[] = [];
  const server = await startConfiguredServer(
    { limits: { tokensApi: { limit: 100_000, interval: 60 } } },
    { clock, env: { TESSERA_DATABASE_URL: databaseUrl }, onClockSkew: (ms) => skewReports.push(ms) },
  );
  try {
    return {
      ...server,
      name,
      clock,
      atStart: { reports: [...skewReports], metric: await skewMetric(server.url) },
    };
  } catch (error) {
    await server.close();
    throw error;
  }
}

async function skewMetric(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^tessera_clock_skew_seconds (\S+)$/m.exec(text);
  assert.ok(match?.[1], `no tessera_clock_skew_seconds in /metrics:\n${text}`);
  return Number(match[1]);
}

/** The Tokens API's verdict, and forward-auth's (which must agree with it), on `token`. */
async function verdictOn(node: SkewNode, token: string): Promise<Code> {
  const retrieved = await api(node, 'GET', '/tokens/v2', { token });
  assert.equal(retrieved.status, 200, retrieved.text);
  const code = (retrieved.body as { code: Code }).code;
  const gate = await verifyNginx(node, withToken(`/styles/v1/${USER}/streets`, token));
  assert.equal(gateCode(gate), code, `node ${node.name}: forward-auth and retrieve disagree`);
  return code;
}

function gateCode(response: ApiResponse): Code | string {
  if (response.status === 200) return 'TokenValid';
  const reason = response.headers.get('x-tessera-reason') ?? '';
  return response.status === 401 ? (FORWARD_AUTH_CODES[reason] ?? reason) : `${response.status} ${reason}`;
}

/** Runs of equal verdicts, in true seconds since the token was made. */
function spans(observations: readonly Observation[], node: 'A' | 'B'): Span[] {
  const result: [Code, number, number][] = [];
  for (const { code, second } of observations.filter((o) => o.node === node)) {
    const last = result.at(-1);
    if (last && last[0] === code && last[2] === second - 1) last[2] = second;
    else result.push([code, second, second]);
  }
  return result;
}

function accepted(observations: readonly Observation[], node?: 'A' | 'B'): Observation[] {
  return observations.filter((o) => o.code === 'TokenValid' && (node === undefined || o.node === node));
}

/** The last second (true time) at which `node` accepted the token. */
function lastAccepted(observations: readonly Observation[], node: 'A' | 'B'): number {
  return Math.max(...accepted(observations, node).map((o) => o.second));
}

function createOn(node: SkewNode, admin: string, json: object): Promise<ApiResponse> {
  return api(node, 'POST', `/tokens/v2/${USER}`, { token: admin, json });
}

describe('T68: two nodes on one PostgreSQL database, node B 90 s ahead of node A', {
  skip: skip ?? false,
}, () => {
  let trueClock: ManualClock;
  const fastClock: Clock = { now: () => trueClock.now() + SKEW_MS };
  let database: TemporaryDatabase;
  let nodeA: SkewNode;
  let nodeB: SkewNode;
  let nodes: readonly SkewNode[];
  let admin: string;
  const counts = { verdicts: 0, lateByOwnClock: 0, lateByTrueClock: 0 };

  before(async () => {
    database = await createTemporaryDatabase();
    // Migrated first, so the real time that passes before a node measures its skew stays small.
    const db = openDatabase(parseDatabaseUrl(database.url));
    await migrateToLatest(db);
    await db.destroy();
    // The real time to the second, so a tk's iat (whole seconds) is exactly the minting node's clock.
    trueClock = new ManualClock(Math.round(Date.now() / 1000) * 1000);
    nodeA = await startNode('A', trueClock, database.url);
    nodeB = await startNode('B', fastClock, database.url);
    nodes = [nodeA, nodeB];
    admin = (await createTestAccount(nodeA.services, USER, [...ADMIN_SCOPES, 'styles:read'])).adminToken;
  });
  after(async () => {
    try {
      await nodeB?.close();
    } finally {
      try {
        await nodeA?.close();
      } finally {
        await database?.drop();
      }
    }
    recordFigures('T68', {
      'verdicts (token x node x 1 s step), each asked of retrieve and forward-auth': counts.verdicts,
      'acceptances at or after expiry by the judging node clock': counts.lateByOwnClock,
      'acceptances at or after expiry by the true clock (A)': counts.lateByTrueClock,
    });
  });

  /**
   * Steps the shared time one second at a time from now, `seconds` + 1 steps, and asks both nodes
   * about each token at each step; `expiresAt` (ms) is the tokens' expiry. Leaves the clocks where
   * they stopped.
   */
  async function walk<K extends string>(
    tokens: Readonly<Record<K, string>>,
    seconds: number,
    expiresAt: number,
  ): Promise<Record<K, Observation[]>> {
    const labels = Object.keys(tokens) as K[];
    const observations = Object.fromEntries(labels.map((label) => [label, []])) as unknown as Record<
      K,
      Observation[]
    >;
    for (let second = 0; second <= seconds; second++) {
      for (const label of labels) {
        for (const node of nodes) {
          const ownNow = node.clock.now();
          const code = await verdictOn(node, tokens[label]);
          observations[label].push({ node: node.name, second, ownNow, code });
          counts.verdicts += 1;
          if (code === 'TokenValid' && ownNow >= expiresAt) counts.lateByOwnClock += 1;
          if (code === 'TokenValid' && trueClock.now() >= expiresAt) counts.lateByTrueClock += 1;
        }
      }
      trueClock.advance(1000);
    }
    return observations;
  }

  function assertNoAcceptanceAtOrAfter(observations: readonly Observation[], expiresAt: number): void {
    const late = accepted(observations).filter((o) => o.ownNow >= expiresAt);
    assert.deepEqual(late, [], 'no node accepts at or after expiry by its own clock');
  }

  test('each node measures its clock against the database at start: B reports -90 s, A about 0', async () => {
    // The sign: the database's clock minus the node's, so a node ahead of the database is negative.
    const skewA = nodeA.atStart.metric;
    const skewB = nodeB.atStart.metric;
    assert.ok(Math.abs(skewA) < 5, `A: ${skewA} s`);
    assert.ok(Math.abs(skewB + 90) < 5, `B: ${skewB} s`);
    assert.ok(Math.abs(skewB - skewA + 90) < 2, `B - A: ${skewB - skewA} s`);
    assert.deepEqual(nodeA.atStart.reports, [], 'A is within 5 s of the database: nothing to report');
    assert.equal(nodeB.atStart.reports.length, 1, 'B reports its skew once, at start');
    assert.ok(Math.abs((nodeB.atStart.reports[0] ?? 0) / 1000 - skewB) < 0.01, 'the report is the metric');
    recordFigures('T68', {
      'clock skew measured on B (s, database minus node)': Math.round(skewB * 10) / 10,
      'clock skew measured on A (s)': Math.round(skewA * 10) / 10,
    });
  });

  test('a tk minted on A 120 s before expiry: neither node accepts it at or after exp by its own clock; B stops 90 s early', async () => {
    const mintedAt = trueClock.now();
    const exp = mintedAt + 120_000;
    const created = await createOn(nodeA, admin, {
      expires: new Date(exp).toISOString(),
      scopes: ['styles:read'],
    });
    assert.equal(created.status, 200, created.text);
    const { token, expires_in } = created.body as { token: string; expires_in: number };
    assert.equal(expires_in, 120);
    const { tk } = await walk({ tk: token }, 125, exp);
    assertNoAcceptanceAtOrAfter(tk, exp);
    assert.deepEqual(spans(tk, 'A'), [
      ['TokenValid', 0, 119],
      ['TokenExpired', 120, 125],
    ]);
    // B's clock reaches exp 90 s early: it fails closed, refusing a token A still accepts.
    assert.deepEqual(spans(tk, 'B'), [
      ['TokenValid', 0, 29],
      ['TokenExpired', 30, 125],
    ]);
    recordFigures('T68', {
      'tk minted on A, 120 s life: last second accepted on A / on B (true time)': `${lastAccepted(tk, 'A')}/${lastAccepted(tk, 'B')}`,
      'tk minted on A: seconds B refused it before exp (true time)':
        lastAccepted(tk, 'A') - lastAccepted(tk, 'B'),
    });
  });

  test('a tk minted on B: A refuses it as issued in the future for 30 s, then accepts it until exp by its own clock', async () => {
    // A client with a true clock asks B for a token expiring 150 s from now.
    const mintedAt = trueClock.now();
    const exp = mintedAt + 150_000;
    const created = await createOn(nodeB, admin, {
      expires: new Date(exp).toISOString(),
      scopes: ['styles:read'],
    });
    assert.equal(created.status, 200, created.text);
    const body = created.body as { token: string; issued_at: string; expires: string; expires_in: number };
    // B stamps iat from its own clock, 90 s ahead: it announces a life 90 s shorter than the token has.
    assert.equal(body.issued_at, new Date(mintedAt + SKEW_MS).toISOString());
    assert.equal(body.expires, new Date(exp).toISOString());
    assert.equal(body.expires_in, 60);
    const { tk } = await walk({ tk: body.token }, 155, exp);
    assertNoAcceptanceAtOrAfter(tk, exp);
    // iat lies 90 s ahead of A's clock, beyond the 60 s leeway, until 30 s have passed.
    assert.deepEqual(spans(tk, 'A'), [
      ['TokenInvalid', 0, 29],
      ['TokenValid', 30, 149],
      ['TokenExpired', 150, 155],
    ]);
    assert.deepEqual(spans(tk, 'B'), [
      ['TokenValid', 0, 59],
      ['TokenExpired', 60, 155],
    ]);
    const acceptedSeconds = new Set(accepted(tk).map((o) => o.second));
    recordFigures('T68', {
      'tk minted on B: seconds A refused it as issued in the future': tk.filter(
        (o) => o.node === 'A' && o.code === 'TokenInvalid',
      ).length,
      'tk minted on B: expires_in announced / seconds accepted on some node (true time)': `${body.expires_in}/${acceptedSeconds.size}`,
    });
  });

  test('pk and sk with an expiresAt 120 s ahead: neither node accepts them at or after expiresAt by its own clock', async () => {
    const expiresAt = trueClock.now() + 120_000;
    const pk = await createOn(nodeA, admin, {
      note: 'pk made on A',
      scopes: ['styles:read'],
      expiresAt: new Date(expiresAt).toISOString(),
    });
    const sk = await createOn(nodeB, admin, {
      note: 'sk made on B',
      scopes: ['styles:read', 'tokens:read'],
      expiresAt: new Date(expiresAt).toISOString(),
    });
    assert.equal(pk.status, 200, pk.text);
    assert.equal(sk.status, 200, sk.text);
    const made = {
      pk: pk.body as { token: string; usage: string },
      sk: sk.body as { token: string; usage: string },
    };
    assert.equal(made.pk.usage, 'pk');
    assert.equal(made.sk.usage, 'sk');
    const observations = await walk({ pk: made.pk.token, sk: made.sk.token }, 125, expiresAt);
    for (const usage of ['pk', 'sk'] as const) {
      assertNoAcceptanceAtOrAfter(observations[usage], expiresAt);
      assert.deepEqual(spans(observations[usage], 'A'), [
        ['TokenValid', 0, 119],
        ['TokenExpired', 120, 125],
      ]);
      assert.deepEqual(spans(observations[usage], 'B'), [
        ['TokenValid', 0, 29],
        ['TokenExpired', 30, 125],
      ]);
    }
    const { pk: pkSeen, sk: skSeen } = observations;
    recordFigures('T68', {
      'pk/sk: seconds B refused them before expiresAt (true time)': `${lastAccepted(pkSeen, 'A') - lastAccepted(pkSeen, 'B')}/${lastAccepted(skSeen, 'A') - lastAccepted(skSeen, 'B')}`,
    });
  });
});

/**
 * The warning itself comes from `tessera serve`, whose clock cannot be injected. A real node on a
 * correct clock is started against a database whose `clock_timestamp()` runs 90 s behind (a
 * function of that throwaway database, ahead of pg_catalog on its search_path): to the node, the
 * same as its own clock running 90 s ahead of the database's.
 */
describe('T68: a real `tessera serve` whose clock is 90 s ahead of its database', {
  skip: skip ?? false,
}, () => {
  const group = new NodeGroup();
  let database: TemporaryDatabase;
  before(async () => {
    database = await createTemporaryDatabase();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const name = new URL(database.url).pathname.slice(1);
      await client.query('create schema skewed');
      await client.query(
        `create function skewed.clock_timestamp() returns timestamptz language sql
         as $$ select pg_catalog.clock_timestamp() - interval '90 seconds' $$`,
      );
      await client.query(`alter database ${name} set search_path = public, skewed, pg_catalog`);
    } finally {
      await client.end();
    }
  });
  after(async () => {
    await group.cleanup();
    await database?.drop();
  });

  test('logs "this machine clock differs from the database clock" at start and exports -90 s', async () => {
    const node = await group.start('B', {
      ...postgresEnv(database.url, group.dataDir()),
      TESSERA_LOG_LEVEL: 'info',
    });
    const warnings = node
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; msg: string; skewSeconds?: number })
      .filter((entry) => entry.msg === WARNING);
    assert.equal(warnings.length, 1, node.output());
    const [warning] = warnings;
    assert.equal(warning?.level, 'warn');
    assert.ok(Math.abs((warning?.skewSeconds ?? 0) + 90) < 5, `skewSeconds: ${warning?.skewSeconds}`);
    const exported = await skewMetric(node.url);
    assert.equal(exported, warning?.skewSeconds, 'the log and /metrics give the same figure');
    recordFigures('T68', { 'tessera serve 90 s ahead of its database: skew logged (s)': exported });
  });
});

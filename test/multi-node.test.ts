import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import {
  type CliAccount,
  callNode,
  createAccountWithCli,
  NodeGroup,
  postgresEnv,
  type TesseraNode,
} from './helpers/processes.ts';

/**
 * Three real `tessera serve` processes on one PostgreSQL database, as several nodes behind a load
 * balancer run: what one node writes, the others honour. Figures are reported, never asserted: the
 * deadlines below only catch a node that never hears of a change.
 */
const skip = await postgresSkipReason();

const USER = 'multi';
const TRIALS = 20;
/** Liveness, not performance: a node still accepting a deleted token after this is broken. */
const LIVENESS_MS = 10_000;
/** Answers asked of a node after it first refused a token, to see it never accepts it again. */
const RECHECKS = 5;

interface Decision {
  readonly status: number;
  readonly reason: string | null;
}

/** Forward-auth on `node`, as nginx asks it, for `scope`. */
async function decide(node: TesseraNode, token: string, scope = 'styles:read'): Promise<Decision> {
  const response = await callNode(node, 'GET', `/auth/verify?scope=${scope}`, {
    headers: {
      'X-Original-URI': `/styles/v1/${USER}/streets?access_token=${encodeURIComponent(token)}`,
      'X-Original-Method': 'GET',
    },
  });
  return { status: response.status, reason: response.headers.get('x-tessera-reason') };
}

/** The Tokens API's verdict on a token (`TokenValid`, `TokenRevoked`, ...) from `node`. */
async function codeOn(node: TesseraNode, token: string): Promise<string> {
  const response = await callNode(node, 'GET', '/tokens/v2', { token });
  assert.equal(response.status, 200, `${node.name}: ${response.text}`);
  return (response.body as { code: string }).code;
}

interface Created {
  readonly id: string;
  readonly token: string;
  readonly scopes: readonly string[];
}

async function createOn(node: TesseraNode, admin: string, json: object): Promise<Created> {
  const response = await callNode(node, 'POST', `/tokens/v2/${USER}`, { token: admin, json });
  assert.equal(response.status, 200, `${node.name}: ${response.text}`);
  return response.body as Created;
}

/**
 * Asks `node` as fast as it answers until it gives `refused` (anything but it or 200 fails), then
 * asks a few more times to see it never accepts again. Returns the ms from `since` to the refusal.
 */
async function untilRefused(
  node: TesseraNode,
  ask: () => Promise<Decision>,
  refused: Decision,
  since: number,
): Promise<{ readonly windowMs: number; readonly accepted: number }> {
  let accepted = 0;
  for (;;) {
    const decision = await ask();
    if (decision.status === refused.status) {
      assert.deepEqual(decision, refused, `${node.name} refuses for the right reason`);
      break;
    }
    assert.equal(decision.status, 200, `${node.name} either accepts or refuses, got ${decision.status}`);
    accepted++;
    assert.ok(performance.now() - since < LIVENESS_MS, `${node.name} still accepts after ${LIVENESS_MS} ms`);
  }
  const windowMs = performance.now() - since;
  for (let check = 0; check < RECHECKS; check++) {
    assert.deepEqual(await ask(), refused, `${node.name} accepted again after refusing`);
  }
  return { windowMs, accepted };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

function summary(values: readonly number[]): string {
  const ms = (value: number): string => `${value.toFixed(1)} ms`;
  return `min ${ms(Math.min(...values))}, p50 ${ms(quantile(values, 0.5))}, max ${ms(Math.max(...values))}`;
}

describe('three nodes on one PostgreSQL database', { skip: skip ?? false }, () => {
  let database: TemporaryDatabase | undefined;
  let group: NodeGroup | undefined;
  let a: TesseraNode;
  let b: TesseraNode;
  let c: TesseraNode;
  let owner: CliAccount;

  before(async () => {
    database = await createTemporaryDatabase();
    const nodes = new NodeGroup();
    group = nodes;
    const url = database.url;
    owner = await createAccountWithCli(postgresEnv(url, nodes.dataDir()), USER, [
      'tokens:read',
      'tokens:write',
      'styles:read',
      'fonts:read',
    ]);
    // Each node has a data folder of its own, as on separate machines: only the database is shared.
    const start = (name: string): Promise<TesseraNode> =>
      nodes.start(name, postgresEnv(url, nodes.dataDir()));
    [a, b, c] = await Promise.all([start('A'), start('B'), start('C')]);
  });
  after(async () => {
    await group?.cleanup();
    await database?.drop();
  });

  test('a token deleted through node A is refused by nodes B and C, and stays refused', async (t) => {
    const windows: Record<string, number[]> = { B: [], C: [] };
    const acceptedAfterDelete: Record<string, number> = { B: 0, C: 0 };
    const deleted: string[] = [];
    const revoked: Decision = { status: 401, reason: 'revoked' };
    for (let trial = 0; trial < TRIALS; trial++) {
      const { id, token } = await createOn(a, owner.adminToken, {
        note: `trial ${trial}`,
        scopes: ['styles:read'],
      });
      for (const node of [b, c]) assert.deepEqual(await decide(node, token), { status: 200, reason: null });
      const removed = await callNode(a, 'DELETE', `/tokens/v2/${USER}/${id}`, { token: owner.adminToken });
      assert.equal(removed.status, 204, removed.text);
      const since = performance.now();
      const results = await Promise.all(
        [b, c].map((node) => untilRefused(node, () => decide(node, token), revoked, since)),
      );
      results.forEach((result, index) => {
        const name = index === 0 ? 'B' : 'C';
        windows[name]?.push(result.windowMs);
        acceptedAfterDelete[name] = (acceptedAfterDelete[name] ?? 0) + result.accepted;
      });
      deleted.push(token);
    }
    for (const [name, values] of Object.entries(windows)) {
      t.diagnostic(
        `node ${name}, 204 on A -> refusal received (${TRIALS} trials): ${summary(values)}; ` +
          `answers still accepting after the 204: ${acceptedAfterDelete[name]}`,
      );
    }
    // Every deleted token, on every node, once all the changes have gone round.
    for (const token of deleted) {
      for (const node of [a, b, c]) {
        assert.deepEqual(await decide(node, token), revoked, `${node.name} refuses a deleted token`);
        assert.equal(await codeOn(node, token), 'TokenRevoked');
      }
    }
  });

  test('a token created through node B verifies on nodes C and A', async () => {
    const { id, token } = await createOn(b, owner.adminToken, { note: 'made on B', scopes: ['styles:read'] });
    for (const node of [c, a]) {
      assert.equal(await codeOn(node, token), 'TokenValid', node.name);
      assert.deepEqual(await decide(node, token), { status: 200, reason: null }, node.name);
    }
    const listed = await callNode(a, 'GET', `/tokens/v2/${USER}`, { token: owner.adminToken });
    assert.ok(
      (listed.body as { id: string }[]).some((entry) => entry.id === id),
      'node A lists it',
    );
  });

  test('a scope removed through node A is refused by node B, which had it cached', async () => {
    const { id, token } = await createOn(a, owner.adminToken, {
      note: 'losing fonts',
      scopes: ['styles:read', 'fonts:read'],
    });
    assert.deepEqual(await decide(b, token, 'fonts:read'), { status: 200, reason: null });
    const patched = await callNode(a, 'PATCH', `/tokens/v2/${USER}/${id}`, {
      token: owner.adminToken,
      json: { scopes: ['styles:read'] },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual((patched.body as Created).scopes, ['styles:read']);
    const since = performance.now();
    const forbidden: Decision = { status: 403, reason: 'scope' };
    await untilRefused(b, () => decide(b, token, 'fonts:read'), forbidden, since);
    assert.deepEqual(await decide(b, token, 'styles:read'), { status: 200, reason: null }, 'the kept scope');
    assert.deepEqual(await decide(c, token, 'fonts:read'), forbidden, 'node C agrees');
  });

  // Needs signing keys shared through the database: each node here has a data folder of its own.
  test('a temporary token minted on node A verifies on nodes B and C', async () => {
    const expires = new Date(Date.now() + 10 * 60_000).toISOString();
    const minted = await callNode(a, 'POST', `/tokens/v2/${USER}`, {
      token: owner.adminToken,
      json: { expires, scopes: ['styles:read'] },
    });
    assert.equal(minted.status, 200, minted.text);
    const { token } = minted.body as { token: string };
    assert.match(token, /^tk\./);
    assert.equal(await codeOn(a, token), 'TokenValid', 'node A, which signed it');
    for (const node of [b, c]) {
      assert.equal(await codeOn(node, token), 'TokenValid', node.name);
      assert.deepEqual(await decide(node, token), { status: 200, reason: null }, node.name);
    }
  });
});

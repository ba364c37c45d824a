import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { LISTENER_APPLICATION_NAME } from '../src/storage/postgres-listener.ts';
import { api } from './helpers/api.ts';
import { DashboardClient } from './helpers/dashboard.ts';
import { verifyNginx } from './helpers/forward-auth.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import { createTestAccount, startTestServer, type TestAccount, type TestServer } from './helpers/server.ts';

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Ends the change-feed connections into this database, as a network cut or a failover would. */
async function terminateFeeds(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const ended = await client.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = current_database()',
      [LISTENER_APPLICATION_NAME],
    );
    assert.ok((ended.rowCount ?? 0) >= 2, 'both nodes had a feed connection');
  } finally {
    await client.end();
  }
}

/**
 * The whole product on a real PostgreSQL (`TESSERA_DATABASE_URL=postgres://…`): the Tokens API,
 * forward-auth, usage, the dashboard, and two nodes on one database seeing each other's deletes.
 */
const skip = await postgresSkipReason();

describe('on PostgreSQL', { skip: skip ?? false }, () => {
  let database: TemporaryDatabase;
  let nodeA: TestServer;
  let nodeB: TestServer;
  let owner: TestAccount;

  before(async () => {
    database = await createTemporaryDatabase();
    const env = { TESSERA_DATABASE_URL: database.url };
    nodeA = await startTestServer({ env });
    nodeB = await startTestServer({ env });
    owner = await createTestAccount(nodeA.services, 'pgowner', [
      'tokens:read',
      'tokens:write',
      'styles:read',
    ]);
  });
  after(async () => {
    await nodeA?.close();
    await nodeB?.close();
    await database?.drop();
  });

  test('the Tokens API creates, lists, updates and deletes; the retrieve endpoint follows', async () => {
    const created = await api(nodeA, 'POST', '/tokens/v2/pgowner', {
      token: owner.adminToken,
      json: { note: 'on pg', scopes: ['styles:read'], allowedUrls: ['https://app.example.com'] },
    });
    assert.equal(created.status, 200, created.text);
    const { id, token } = created.body as { id: string; token: string };
    const listed = await api(nodeB, 'GET', '/tokens/v2/pgowner', { token: owner.adminToken });
    assert.ok((listed.body as { id: string }[]).some((entry) => entry.id === id));
    const patched = await api(nodeB, 'PATCH', `/tokens/v2/pgowner/${id}`, {
      token: owner.adminToken,
      json: { note: 'renamed', allowedUrls: null },
    });
    assert.equal((patched.body as { note: string }).note, 'renamed');
    assert.equal(
      ((await api(nodeA, 'GET', `/tokens/v2?access_token=${token}`)).body as { code: string }).code,
      'TokenValid',
    );
    assert.equal(
      (await api(nodeA, 'DELETE', `/tokens/v2/pgowner/${id}`, { token: owner.adminToken })).status,
      204,
    );
    assert.equal(
      ((await api(nodeB, 'GET', `/tokens/v2?access_token=${token}`)).body as { code: string }).code,
      'TokenRevoked',
    );
  });

  test('a token deleted through node A is refused by node B, which had it cached', async () => {
    const created = await api(nodeA, 'POST', '/tokens/v2/pgowner', {
      token: owner.adminToken,
      json: { note: 'cached on B', scopes: ['styles:read'] },
    });
    const { id, token } = created.body as { id: string; token: string };
    const uri = `/styles/v1/pgowner/streets?access_token=${token}`;
    assert.equal((await verifyNginx(nodeB, uri)).status, 200);
    assert.equal((await verifyNginx(nodeB, uri)).status, 200, 'served from node B’s cache');
    await api(nodeA, 'DELETE', `/tokens/v2/pgowner/${id}`, { token: owner.adminToken });
    const deadline = Date.now() + 5000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await verifyNginx(nodeB, uri)).status;
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(status, 401, 'node B stopped accepting the deleted token');
    assert.ok(nodeB.services.changes.pushed > 0, 'node B heard of the change through LISTEN/NOTIFY');
  });

  test('a node whose change feed drops serves nothing from memory until it is back', async () => {
    const created = await api(nodeA, 'POST', '/tokens/v2/pgowner', {
      token: owner.adminToken,
      json: { note: 'while deaf', scopes: ['styles:read'] },
    });
    const { id, token } = created.body as { id: string; token: string };
    const uri = `/styles/v1/pgowner/streets?access_token=${token}`;
    await waitFor(() => !nodeB.services.cache.suspended, 'node B listening');
    assert.equal((await verifyNginx(nodeB, uri)).status, 200);
    // Cut every feed connection; node B cannot hear the delete that follows.
    await terminateFeeds(database.url);
    await waitFor(() => nodeB.services.cache.suspended, 'node B noticed the lost feed');
    await api(nodeA, 'DELETE', `/tokens/v2/pgowner/${id}`, { token: owner.adminToken });
    assert.equal((await verifyNginx(nodeB, uri)).status, 401, 'answered from the store, not a stale cache');
    await waitFor(() => !nodeB.services.cache.suspended, 'node B reconnected');
    assert.equal((await verifyNginx(nodeB, uri)).status, 401);
  });

  test('usage counted on both nodes adds up in the report', async () => {
    const uri = `/styles/v1/pgowner/streets?access_token=${owner.defaultToken}`;
    for (let i = 0; i < 3; i++) assert.equal((await verifyNginx(nodeA, uri)).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await verifyNginx(nodeB, uri)).status, 200);
    await nodeA.services.usage.flush();
    await nodeB.services.usage.flush();
    const tokenId = (await nodeA.services.tokens.inspect(owner.defaultToken)).record?.id;
    assert.ok(tokenId);
    const rows = await nodeA.services.store.usage({
      username: 'pgowner',
      tokenId,
      start: new Date(Date.now() - 7_200_000).toISOString(),
      end: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const allowed = rows.filter((row) => row.outcome === 'allowed').reduce((sum, row) => sum + row.count, 0);
    assert.equal(allowed, 7);
  });

  test('the dashboard signs in on node A and the session works on node B', async () => {
    const onA = new DashboardClient(nodeA);
    await onA.signInOk('pgowner');
    const onB = new DashboardClient(nodeB);
    for (const [name, value] of onA.cookies()) onB.setCookie(name, value);
    const page = await onB.get('/account');
    assert.equal(page.status, 200);
    assert.match(page.text, /Default public token/);
  });

  test('/readyz is ready', async () => {
    assert.equal((await api(nodeA, 'GET', '/readyz')).status, 200);
  });
});

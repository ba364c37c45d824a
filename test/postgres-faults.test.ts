import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OUTAGE_GRACE_MS } from '../src/services/token-service.ts';
import { api } from './helpers/api.ts';
import { verifyNginx } from './helpers/forward-auth.ts';
import { startPostgresProxy } from './helpers/pg-proxy.ts';
import { createTemporaryDatabase, postgresSkipReason } from './helpers/postgres.ts';
import { createTestAccount, ManualClock, startTestServer } from './helpers/server.ts';

const skip = await postgresSkipReason();

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('PostgreSQL cut off: recently verified tokens pass, the rest and all writes answer 503, and service returns without a restart', {
  skip: skip ?? false,
}, async () => {
  const database = await createTemporaryDatabase();
  const proxy = await startPostgresProxy();
  const clock = new ManualClock();
  const server = await startTestServer({ env: { TESSERA_DATABASE_URL: proxy.through(database.url) }, clock });
  try {
    const owner = await createTestAccount(server.services, 'outage', [
      'tokens:read',
      'tokens:write',
      'styles:read',
    ]);
    const inUse = `/styles/v1/outage/streets?access_token=${owner.defaultToken}`;
    const spare = await server.services.tokens.create({ kind: 'operator' }, 'outage', {
      note: 'spare',
      scopes: ['styles:read'],
      allowedUrls: null,
      extensions: {},
      rateLimit: null,
      expiresAt: null,
    });
    const idle = `/styles/v1/outage/streets?access_token=${spare.token}`;
    await waitFor(() => !server.services.cache.suspended, 'the change feed');
    assert.equal((await verifyNginx(server, inUse)).status, 200);
    // The admin token is used moments before the cut too, so the write below gets past authentication.
    assert.equal((await api(server, 'GET', '/tokens/v2/outage', { token: owner.adminToken })).status, 200);

    await proxy.cut();
    await waitFor(() => server.services.cache.suspended, 'the node noticing the lost feed');
    assert.equal((await verifyNginx(server, inUse)).status, 200, 'verified moments ago: still passes');
    const unknown = await verifyNginx(server, idle);
    assert.equal(unknown.status, 503, 'never verified recently: refused, not admitted');
    assert.equal(unknown.headers.get('retry-after'), '5');
    const write = await api(server, 'POST', '/tokens/v2/outage', {
      token: owner.adminToken,
      json: { note: 'during the outage', scopes: ['styles:read'] },
    });
    assert.equal(write.status, 503, write.text);
    assert.ok(write.headers.get('retry-after'));
    assert.deepEqual(write.body, { message: 'Service Unavailable' });
    assert.equal((await api(server, 'GET', '/readyz')).status, 503);

    clock.advance(OUTAGE_GRACE_MS + 1);
    assert.equal(
      (await verifyNginx(server, inUse)).status,
      503,
      'the grace is a few seconds, not the outage',
    );

    await proxy.open();
    await waitFor(async () => (await api(server, 'GET', '/readyz')).status === 200, 'readiness');
    await waitFor(() => !server.services.cache.suspended, 'the change feed again');
    assert.equal((await verifyNginx(server, idle)).status, 200);
    assert.equal((await verifyNginx(server, inUse)).status, 200);
    const tokens = await api(server, 'GET', '/tokens/v2/outage', { token: owner.adminToken });
    assert.ok(!(tokens.body as { note: string }[]).some((token) => token.note === 'during the outage'));
  } finally {
    await server.close();
    await proxy.cut();
    await database.drop();
  }
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DashboardClient } from './helpers/dashboard.ts';
import { createTestAccount, startTestServer, type TestServer } from './helpers/server.ts';

/**
 * Behind a proxy that serves Tessera under a path prefix (and strips it), every link, form action
 * and redirect must carry the prefix, and the forms must still work. One-character prefixes are
 * the sharpest case: they once made the sign-in form look like a signed-in form.
 */
for (const prefix of ['/t', '/tessera']) {
  const ORIGIN = 'http://tokens.example.test';
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ env: { TESSERA_PUBLIC_URL: `${ORIGIN}${prefix}` } });
    await createTestAccount(server.services, 'alice');
  });
  after(() => server.close());

  test(`${prefix}: sign-in, a confirmed create and the return page all stay under the prefix`, async () => {
    const client = new DashboardClient(server, { origin: ORIGIN });
    const away = await client.get('/account/statistics?period=7d');
    assert.equal(away.status, 303);
    assert.equal(away.location, `${prefix}/signin?next=%2Faccount%2Fstatistics%3Fperiod%3D7d`);
    const form = await client.get('/signin?next=/account/statistics');
    assert.match(form.text, new RegExp(`action="${prefix}/signin"`));
    assert.match(form.text, new RegExp(`href="${prefix}/assets/tessera.css"`));
    const signedIn = await client.post('/signin', {
      username: 'alice',
      password: 'correct horse battery staple',
      next: '/account/statistics',
    });
    assert.equal(signedIn.status, 303, signedIn.text);
    assert.equal(signedIn.location, `${prefix}/account/statistics`);

    await client.get('/account/tokens/new');
    const asked = await client.post('/account/tokens', { note: 'prefixed', scopes: 'styles:read' });
    assert.equal(asked.status, 403);
    assert.match(asked.text, new RegExp(`action="${prefix}/account/tokens"`));
    const created = await client.post('/account/tokens', {
      note: 'prefixed',
      scopes: 'styles:read',
      password: 'correct horse battery staple',
    });
    assert.equal(created.status, 303, created.text);
    assert.equal(created.location, `${prefix}/account`);
    const page = await client.get('/account');
    assert.match(page.text, /Token “prefixed” created/);

    // Rotation and the activity log: every link, form and redirect keeps the prefix too.
    const id = /<tr id="row-(c[a-z0-9]{24})">/.exec(page.text)?.[1] ?? '';
    assert.ok(page.text.includes(`href="${prefix}/account/tokens/${id}/rotate"`));
    assert.match(page.text, new RegExp(`href="${prefix}/account/audit"`));
    const rotate = await client.get(`/account/tokens/${id}/rotate`);
    assert.ok(rotate.text.includes(`action="${prefix}/account/tokens/${id}/rotate"`));
    const rotated = await client.post(`/account/tokens/${id}/rotate`, { gracePeriod: '3600' });
    assert.equal(rotated.status, 303, rotated.text);
    assert.equal(rotated.location, `${prefix}/account`);
    const audit = await client.get('/account/audit');
    assert.match(audit.text, new RegExp(`href="${prefix}/account/audit/export\\.csv"`));
    assert.match(audit.text, /Token rotated, old token kept for 1 hour/);
  });
}

test('two session cookies in one request open nothing: one of them was planted', async () => {
  const server = await startTestServer();
  try {
    await createTestAccount(server.services, 'bob');
    const client = new DashboardClient(server);
    await client.signInOk('bob');
    const real = client.cookie('tessera_session') ?? '';
    assert.equal((await client.get('/account')).status, 200);
    const planted = await client.get('/account', {
      headers: { cookie: `tessera_session=${real}; tessera_session=planted-by-a-sibling` },
    });
    assert.equal(planted.status, 303);
    assert.match(planted.location ?? '', /^\/signin/);
  } finally {
    await server.close();
  }
});

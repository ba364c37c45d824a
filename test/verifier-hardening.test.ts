import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import express from 'express';
import { createVerifier, tesseraExpress, type Verifier } from '../src/index.ts';
import { createTestAccount, startTestServer, type TestAccount, type TestServer } from './helpers/server.ts';

let server: TestServer;
let account: TestAccount;
let embedded: Verifier;

async function createToken(
  json: unknown,
  token = account.adminToken,
): Promise<{ id: string; token: string }> {
  const response = await fetch(`${server.url}/tokens/v2/hard?access_token=${token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(json),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { id: string; token: string };
}

before(async () => {
  server = await startTestServer();
  account = await createTestAccount(server.services, 'hard', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'fonts:read',
  ]);
  embedded = await createVerifier({ dataDir: server.dataDir });
});
after(async () => {
  await embedded.close();
  await server.close();
});

test('a service name outside [a-z0-9._-] is refused: 400 over HTTP, a TypeError in-process', async () => {
  for (const service of ['__proto__', 'a\u20ac', 'x'.repeat(33)]) {
    const response = await fetch(
      `${server.url}/auth/verify?scope=styles:read&service=${encodeURIComponent(service)}`,
      {
        headers: { 'X-Original-URI': `/styles/v1/hard/x?access_token=${account.defaultToken}` },
      },
    );
    assert.equal(response.status, 400, service);
    await assert.rejects(
      embedded.verify({ token: account.defaultToken, scope: 'styles:read', service }),
      TypeError,
    );
  }
});

test('the remote verifier never reuses an answer for a rate-limited token', async () => {
  const limited = await createToken({ scopes: ['styles:read'], rateLimit: { limit: 2, interval: 3600 } });
  const remote = await createVerifier({ serverUrl: server.url, cacheTtlMs: 60_000 });
  const outcomes = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const decision = await remote.verify({ token: limited.token, scope: 'styles:read' });
    outcomes.push(decision.allowed ? 'allowed' : decision.reason);
  }
  assert.deepEqual(outcomes, ['allowed', 'allowed', 'rate_limited', 'rate_limited']);
  assert.equal((await remote.verify({ token: 'not\na token', scope: 'styles:read' })).allowed, false);
  await remote.close();
});

test("temporary tokens spend their parent's rate limit, not a budget of their own", async () => {
  const parent = await createToken({
    scopes: ['tokens:write', 'styles:read'],
    rateLimit: { limit: 3, interval: 3600 },
  });
  const outcomes = [];
  for (let mint = 0; mint < 3; mint++) {
    const response = await fetch(`${server.url}/tokens/v2/hard?access_token=${parent.token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        expires: new Date(Date.now() + 600_000).toISOString(),
        scopes: ['styles:read'],
      }),
    });
    const tk = ((await response.json()) as { token: string }).token;
    for (let use = 0; use < 2; use++) {
      const decision = await embedded.verify({ token: tk, scope: 'styles:read' });
      outcomes.push(decision.allowed);
    }
  }
  assert.equal(outcomes.filter(Boolean).length, 3, 'three allowed in all, across three temporary tokens');
});

test('express: raw paths the route map cannot trust are refused, two Authorization headers are malformed', async () => {
  const fontsOnly = await createToken({ scopes: ['fonts:read'] });
  const app = express();
  app.use(tesseraExpress(embedded));
  app.get('/{*rest}', (_req, res) => {
    res.json({ reached: true });
  });
  const listener = app.listen(0, '127.0.0.1');
  await new Promise((done) => listener.once('listening', done));
  const port = (listener.address() as AddressInfo).port;
  const raw = (path: string, headers: Record<string, string | string[]> = {}): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  try {
    const token = `access_token=${fontsOnly.token}`;
    assert.equal(await raw(`/fonts/v1/hard/Arial/0-255.pbf?${token}`), 200);
    assert.equal(await raw(`/styles/v1/hard/x\\..\\..\\..\\..\\fonts\\v1\\a\\b\\c?${token}`), 403);
    assert.equal(await raw(`/styles/v1/hard/%2e%2e/%2e%2e/%2e%2e/fonts/v1/a/b/c?${token}`), 403);
    assert.ok([401, 403, 404].includes(await raw('//a:b/styles')), 'never a 5xx');
    const twice = await raw('/fonts/v1/hard/Arial/0-255.pbf', {
      Authorization: [`Bearer ${fontsOnly.token}`, `Bearer ${account.adminToken}`],
    });
    assert.equal(twice, 401);
  } finally {
    listener.close();
  }
});

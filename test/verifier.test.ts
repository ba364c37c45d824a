import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { Hono } from 'hono';
import type { Decision } from '../src/core/decision.ts';
import {
  createVerifier,
  tesseraExpress,
  tesseraHono,
  type Verifier,
  type VerifyInput,
} from '../src/index.ts';
import { createTestAccount, startTestServer, type TestAccount, type TestServer } from './helpers/server.ts';

let server: TestServer;
let account: TestAccount;
let restricted: string;
let embedded: Verifier;
let remote: Verifier;

async function createToken(json: unknown): Promise<{ id: string; token: string }> {
  const response = await fetch(`${server.url}/tokens/v2/lib?access_token=${account.adminToken}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(json),
  });
  assert.equal(response.status, 200);
  return (await response.json()) as { id: string; token: string };
}

/** What /auth/verify says about the same request, reduced to what a Decision carries. */
async function overHttp(
  input: VerifyInput,
): Promise<{ status: number; reason: string | null; username: string | null }> {
  const url = new URL('/auth/verify', server.url);
  if (input.scope) url.searchParams.set('scope', input.scope);
  const headers: Record<string, string> = {
    'X-Original-URI': input.path ?? '/',
    'X-Original-Method': input.method ?? 'GET',
  };
  if (input.token) headers.Authorization = `Bearer ${input.token}`;
  if (input.origin) headers.Origin = input.origin;
  if (input.referer) headers.Referer = input.referer;
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return {
    status: response.status,
    reason: response.headers.get('x-tessera-reason'),
    username: response.headers.get('x-tessera-username'),
  };
}

function summary(decision: Decision): { status: number; reason: string | null; username: string | null } {
  return decision.allowed
    ? { status: 200, reason: null, username: decision.username }
    : { status: decision.status, reason: decision.reason, username: null };
}

before(async () => {
  server = await startTestServer();
  account = await createTestAccount(server.services, 'lib', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'fonts:read',
  ]);
  restricted = (await createToken({ scopes: ['styles:read'], allowedUrls: ['https://app.example.com'] }))
    .token;
  embedded = await createVerifier({ dataDir: server.dataDir });
  remote = await createVerifier({ serverUrl: server.url, cacheTtlMs: 0 });
});
after(async () => {
  await embedded.close();
  await remote.close();
  await server.close();
});

describe('createVerifier', () => {
  test('embedded and remote verifiers decide exactly as /auth/verify does', async () => {
    const cases: VerifyInput[] = [
      { token: account.defaultToken, scope: 'styles:read', path: '/styles/v1/lib/streets' },
      { token: account.defaultToken, path: '/fonts/v1/lib/Arial/0-255.pbf' },
      { token: account.defaultToken, scope: 'styles:write' },
      { token: account.defaultToken, path: '/nowhere' },
      { token: restricted, scope: 'styles:read', origin: 'https://app.example.com' },
      { token: restricted, scope: 'styles:read', referer: 'https://app.example.com/map' },
      { token: restricted, scope: 'styles:read', origin: 'https://evil.example.com' },
      { token: restricted, scope: 'styles:read' },
      { scope: 'styles:read' },
      { token: 'pk.garbage.token', scope: 'styles:read' },
      { token: `${account.defaultToken.slice(0, -3)}abc`, scope: 'styles:read' },
    ];
    for (const input of cases) {
      const expected = await overHttp(input);
      assert.deepEqual(summary(await embedded.verify(input)), expected, JSON.stringify(input));
      assert.deepEqual(summary(await remote.verify(input)), expected, JSON.stringify(input));
    }
  });

  test('an allowed decision names the account, the token and its usage', async () => {
    const decision = await embedded.verify({ token: account.adminToken, scope: 'tokens:read' });
    assert.ok(decision.allowed);
    assert.equal(decision.username, 'lib');
    assert.equal(decision.tokenId, account.adminTokenId);
    assert.equal(decision.usage, 'sk');
    assert.deepEqual(decision.scopes, ['tokens:read', 'tokens:write', 'styles:read', 'fonts:read']);
    assert.deepEqual(await remote.verify({ token: account.adminToken, scope: 'tokens:read' }), decision);
  });

  test('a token deleted through the server is refused by the embedded verifier within a second', async () => {
    const { id, token } = await createToken({ scopes: ['styles:read'] });
    assert.equal(
      (await embedded.verify({ token, scope: 'styles:read' })).allowed,
      true,
      'cached as allowed first',
    );
    const deleted = await fetch(`${server.url}/tokens/v2/lib/${id}?access_token=${account.adminToken}`, {
      method: 'DELETE',
    });
    assert.equal(deleted.status, 204);
    const started = Date.now();
    let decision = await embedded.verify({ token, scope: 'styles:read' });
    while (decision.allowed && Date.now() - started < 1000) {
      await new Promise((done) => setTimeout(done, 20));
      decision = await embedded.verify({ token, scope: 'styles:read' });
    }
    assert.equal(decision.allowed, false);
    assert.equal(decision.allowed === false && decision.reason, 'revoked');
  });

  test('the remote verifier fails closed when the server does not answer', async () => {
    const gone = await createVerifier({ serverUrl: 'http://127.0.0.1:9', timeoutMs: 500 });
    await assert.rejects(
      gone.verify({ token: account.defaultToken, scope: 'styles:read' }),
      /did not answer/,
    );
  });

  test('importing the package entry never loads the HTTP server or the web framework', () => {
    const reached = runtimeImports(resolve(import.meta.dirname, '../src/index.ts'));
    const offending = [...reached].filter(
      (file) =>
        file.includes('/src/http/') ||
        file.includes('/src/dashboard/') ||
        file === 'hono' ||
        file.startsWith('@hono/'),
    );
    assert.deepEqual(offending, []);
    assert.ok([...reached].some((file) => file.endsWith('/src/services/verification-service.ts')));
  });
});

describe('middleware', () => {
  test('express: allowed requests reach the handler with the decision; refusals get status and message', async () => {
    const app = express();
    app.use(tesseraExpress(embedded, { scope: 'styles:read' }));
    app.get('/styles/v1/lib/streets', (_req, res) => {
      res.json({ user: (res.locals.tessera as Decision & { username: string }).username });
    });
    const listener = app.listen(0, '127.0.0.1');
    await new Promise((done) => listener.once('listening', done));
    const base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
    try {
      const ok = await fetch(`${base}/styles/v1/lib/streets?access_token=${account.defaultToken}`);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { user: 'lib' });
      const missing = await fetch(`${base}/styles/v1/lib/streets`);
      assert.equal(missing.status, 401);
      assert.equal(missing.headers.get('x-tessera-reason'), 'missing');
      assert.deepEqual(await missing.json(), { message: 'An access token is required' });
      const elsewhere = await fetch(`${base}/styles/v1/lib/streets`, {
        headers: { Authorization: `Bearer ${restricted}`, Origin: 'https://evil.example.com' },
      });
      assert.equal(elsewhere.status, 403);
    } finally {
      listener.close();
    }
  });

  test('express and hono answer 503 when the verifier cannot decide', async () => {
    const broken: Verifier = { verify: () => Promise.reject(new Error('store down')), close: async () => {} };
    const hono = new Hono();
    hono.use(tesseraHono(broken));
    hono.get('/x', (c) => c.text('never'));
    const response = await hono.request(`/x?access_token=${account.defaultToken}`);
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
  });

  test('hono: the decision is in c.get("tessera"); a missing scope is 403', async () => {
    const app = new Hono<{ Variables: { tessera: Decision } }>();
    app.use('/fonts/*', tesseraHono(embedded));
    app.get('/fonts/v1/lib/:stack', (c) => c.json(c.get('tessera')));
    const ok = await app.request(`/fonts/v1/lib/Arial?access_token=${account.defaultToken}`);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { username: string }).username, 'lib');
    const admin = await app.request('/fonts/v1/lib/Arial', {
      headers: { Authorization: `Bearer ${account.adminToken}` },
    });
    assert.equal(admin.status, 200);
    const scopeless = (await createToken({ scopes: ['styles:read'] })).token;
    const refused = await app.request(`/fonts/v1/lib/Arial?access_token=${scopeless}`);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('x-tessera-reason'), 'scope');
  });
});

/** Files and packages reachable from `entry` through imports that survive compilation (not `import type`). */
function runtimeImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)[^'";]*?from\s+'([^']+)'/gm)) {
      const target = match[1] as string;
      if (target.startsWith('.')) pending.push(join(dirname(file), target));
      else seen.add(target);
    }
  }
  return seen;
}

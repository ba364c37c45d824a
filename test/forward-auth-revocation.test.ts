import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiResponse, api } from './helpers/api.ts';
import {
  assertAllowed,
  assertInvalidToken,
  assertRefused,
  type CreatedToken,
  createApiToken,
  startForwardAuthServer,
  verifyNginx,
  withToken,
} from './helpers/forward-auth.ts';
import { createTestAccount, type TestAccount, type TestServer } from './helpers/server.ts';

// A change made through the Tokens API applies to the very next request on this node, cached
// verdict or not; a change made by another process (the CLI) within a short, measured delay.

const STYLE = '/styles/v1/frank/streets';
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let server: TestServer;
let owner: TestAccount;

before(async () => {
  server = await startForwardAuthServer();
  owner = await createTestAccount(server.services, 'frank', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'fonts:read',
  ]);
});
after(() => server.close());

function create(json: Readonly<Record<string, unknown>>): Promise<CreatedToken> {
  return createApiToken(server, 'frank', owner.adminToken, json);
}

function style(token: string, headers: Readonly<Record<string, string>> = {}): Promise<ApiResponse> {
  return verifyNginx(server, withToken(STYLE, token), { headers });
}

function pk(token: CreatedToken) {
  return { username: 'frank', tokenId: token.id, usage: 'pk' } as const;
}

async function tokensApi(method: string, path: string, json?: unknown): Promise<ApiResponse> {
  return api(server, method, path, { token: owner.adminToken, ...(json === undefined ? {} : { json }) });
}

/** Verifies twice, so the second answer comes from the cache of verdicts. */
async function warm(token: CreatedToken): Promise<void> {
  assertAllowed(await style(token.token), pk(token));
  assertAllowed(await style(token.token), pk(token));
}

describe('changes through the Tokens API: no stale window on this node', () => {
  test('DELETE: the very next verification is 401 revoked', async () => {
    const token = await create({ scopes: ['styles:read'] });
    await warm(token);
    assert.equal((await tokensApi('DELETE', `/tokens/v2/frank/${token.id}`)).status, 204);
    assertInvalidToken(await style(token.token), 'revoked');
  });

  test('DELETE while verifications are in flight: every one started after the answer is refused', async () => {
    const token = await create({ scopes: ['styles:read'] });
    await warm(token);
    const inFlight = Array.from({ length: 20 }, () => style(token.token));
    const deleted = await tokensApi('DELETE', `/tokens/v2/frank/${token.id}`);
    assert.equal(deleted.status, 204);
    const afterwards = await Promise.all(Array.from({ length: 20 }, () => style(token.token)));
    for (const response of afterwards) assertInvalidToken(response, 'revoked');
    for (const response of await Promise.all(inFlight)) assert.ok([200, 401].includes(response.status));
  });

  test('PATCH removing a scope: the next verification needing it is 403', async () => {
    const token = await create({ scopes: ['styles:read', 'fonts:read'] });
    await warm(token);
    const patched = await tokensApi('PATCH', `/tokens/v2/frank/${token.id}`, { scopes: ['fonts:read'] });
    assert.equal(patched.status, 200, patched.text);
    assertRefused(await style(token.token), 403, 'scope');
    const font = await verifyNginx(server, withToken('/fonts/v1/frank/Roboto/0-255.pbf', token.token));
    assertAllowed(font, pk(token));
  });

  test('PATCH adding a URL restriction or a rate limit applies at once', async () => {
    const token = await create({ scopes: ['styles:read'] });
    await warm(token);
    await tokensApi('PATCH', `/tokens/v2/frank/${token.id}`, { allowedUrls: ['https://app.example.com'] });
    assertRefused(await style(token.token), 403, 'url');
    assertAllowed(await style(token.token, { Origin: 'https://app.example.com' }), pk(token));
    await tokensApi('PATCH', `/tokens/v2/frank/${token.id}`, { rateLimit: { limit: 1, interval: 3600 } });
    const origin = { Origin: 'https://app.example.com' };
    assertAllowed(await style(token.token, origin), pk(token));
    assertRefused(await style(token.token, origin), 429, 'rate_limited');
    await tokensApi('PATCH', `/tokens/v2/frank/${token.id}`, { allowedUrls: null, rateLimit: null });
    assertAllowed(await style(token.token), pk(token));
  });

  test('refreshing the default token: the old one is 401 at once, the new one 200', async () => {
    const list = await tokensApi('GET', '/tokens/v2/frank?default=true');
    const [old] = list.body as CreatedToken[];
    assert.ok(old, list.text);
    assert.equal(old.default, true);
    await warm(old);
    assert.equal((await tokensApi('DELETE', `/tokens/v2/frank/${old.id}`)).status, 204);
    assertInvalidToken(await style(old.token), 'revoked');
    const [fresh] = (await tokensApi('GET', '/tokens/v2/frank?default=true')).body as CreatedToken[];
    assert.ok(fresh && fresh.id !== old.id);
    assertAllowed(await style(fresh.token), pk(fresh));
  });

  test('a tk dies with the token that minted it', async () => {
    const parent = await create({ scopes: ['styles:read', 'tokens:write'] });
    const minted = await api(server, 'POST', '/tokens/v2/frank', {
      token: parent.token,
      json: { expires: new Date(Date.now() + 30 * 60_000).toISOString(), scopes: ['styles:read'] },
    });
    assert.equal(minted.status, 200, minted.text);
    const { token: tk } = minted.body as { token: string };
    assertAllowed(await style(tk), { username: 'frank', usage: 'tk' });
    assertAllowed(await style(tk), { username: 'frank', usage: 'tk' });
    assert.equal((await tokensApi('DELETE', `/tokens/v2/frank/${parent.id}`)).status, 204);
    assertInvalidToken(await style(tk), 'revoked');
  });
});

describe('changes by another process', () => {
  test('a token deleted with the CLI is refused by the running server within 2 seconds', async (t) => {
    const token = await create({ scopes: ['styles:read'] });
    await warm(token);
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'tokens', 'delete', 'frank', token.id], {
        env: { ...process.env, TESSERA_DATA_DIR: server.dataDir, TESSERA_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(run.code, 0, run.stderr);
    const deletedAt = performance.now();
    let response = await style(token.token);
    while (response.status === 200 && performance.now() - deletedAt < 2000) {
      await sleep(50);
      response = await style(token.token);
    }
    const delay = Math.round(performance.now() - deletedAt);
    t.diagnostic(`cross-process revocation delay: ${delay} ms after the CLI exited`);
    assertInvalidToken(response, 'revoked');
    assert.ok(delay <= 2000, `refused after ${delay} ms`);
  });
});

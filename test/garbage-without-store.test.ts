import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestAccount, startTestServer, type TestAccount, type TestServer } from './helpers/server.ts';

let server: TestServer;
let account: TestAccount;
let lookups = 0;

before(async () => {
  server = await startTestServer();
  account = await createTestAccount(server.services, 'garbage');
  // Count the store's token lookups (the real SQLite store, only observed).
  const store = server.services.store;
  const findToken = store.findToken.bind(store);
  store.findToken = (id: string) => {
    lookups += 1;
    return findToken(id);
  };
});
after(() => server.close());

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The token with its character at `index` replaced by another base62 character. */
function flip(token: string, index: number): string {
  const current = token[index] as string;
  const replacement = BASE62[(BASE62.indexOf(current) + 1 + (index % 60)) % 62] as string;
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

async function verify(token: string): Promise<number> {
  const response = await fetch(`${server.url}/auth/verify?scope=styles:read`, {
    headers: { 'X-Original-URI': `/styles/v1/garbage/streets?access_token=${token}` },
  });
  await response.arrayBuffer();
  return response.status;
}

test('1,000 one-character typos in the secret part are refused without one store lookup (T03)', async () => {
  const token = account.defaultToken;
  const secretStart = token.lastIndexOf('.') + 1;
  lookups = 0;
  const statuses = new Set<number>();
  for (let attempt = 0; attempt < 1000; attempt++) {
    const index = secretStart + (attempt % (token.length - secretStart));
    const typo = flip(token, index);
    assert.notEqual(typo, token);
    statuses.add(await verify(typo));
  }
  assert.deepEqual([...statuses], [401]);
  assert.equal(lookups, 0, 'the CRC-32 rejected every typo before the store was asked');
  assert.equal(await verify(token), 200);
  assert.ok(lookups <= 1, 'the real token needs at most one lookup, then it is cached');
});

test('a forged temporary token is refused before its parent is looked up', async () => {
  const minted = await fetch(`${server.url}/tokens/v2/garbage?access_token=${account.adminToken}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ expires: new Date(Date.now() + 600_000).toISOString(), scopes: ['tokens:read'] }),
  });
  const { token } = (await minted.json()) as { token: string };
  lookups = 0;
  const forged = flip(token, token.length - 5);
  const response = await fetch(`${server.url}/tokens/v2?access_token=${forged}`);
  assert.equal(((await response.json()) as { code: string }).code, 'TokenInvalid');
  assert.equal(lookups, 0);
});

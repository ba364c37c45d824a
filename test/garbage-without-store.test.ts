import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { issuePersistentToken } from '../src/core/token-format.ts';
import { api } from './helpers/api.ts';
import { recordFigures } from './helpers/figures.ts';
import { verifyNginx } from './helpers/forward-auth.ts';
import { seeded } from './helpers/seeded.ts';
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

const SEED = 0x7472;

/** A token of the real shape (username, token id, 256-bit secret, checksum) from a seeded source. */
function randomToken(next: () => number, options: { readonly checksum: 'valid' | 'broken' }): string {
  const random = {
    bytes: (size: number) => Uint8Array.from({ length: size }, () => Math.floor(next() * 256)),
  };
  const tokenId = `c${Array.from({ length: 24 }, () => BASE62[Math.floor(next() * 36)])
    .join('')
    .toLowerCase()}`;
  const usage = next() < 0.5 ? 'pk' : 'sk';
  const token = issuePersistentToken({ usage, username: `u${Math.floor(next() * 1e6)}`, tokenId }, random);
  if (options.checksum === 'valid') return token;
  const last = token.at(-1) as string;
  return token.slice(0, -1) + BASE62[(BASE62.indexOf(last) + 1 + Math.floor(next() * 60)) % 62];
}

/** What the server's own timers call on the store (following changes, usage, expiry notices). */
const BACKGROUND = new Set([
  'changesSince',
  'latestChange',
  'touchTokens',
  'addUsage',
  'tokensToNotify',
  'recordNotice',
  'unusedTokens',
]);

/** Counts the calls into the token store by method (the real SQLite store, only observed). */
function countStoreCalls(server: TestServer): Map<string, number> {
  const calls = new Map<string, number>();
  const store = server.services.store as unknown as Record<string, unknown>;
  const prototype = Object.getPrototypeOf(store) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = prototype[name];
    if (name === 'constructor' || typeof method !== 'function') continue;
    store[name] = (...args: unknown[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return (method as (...a: unknown[]) => unknown).apply(store, args);
    };
  }
  return calls;
}

/** Store calls a request made: everything but the background work. */
function requestCalls(calls: ReadonlyMap<string, number>): number {
  return [...calls].reduce((sum, [name, count]) => sum + (BACKGROUND.has(name) ? 0 : count), 0);
}

async function flood(tokens: readonly string[], send: (token: string) => Promise<string>): Promise<string[]> {
  const outcomes: string[] = [];
  for (let offset = 0; offset < tokens.length; offset += 50) {
    outcomes.push(...(await Promise.all(tokens.slice(offset, offset + 50).map(send))));
  }
  return outcomes;
}

test('T72: 2,500 random well-formed tokens with a bad checksum: refused with 0 store calls; valid checksums do reach it', async () => {
  // A server of its own: this test observes every store method, the ones above only findToken.
  const server = await startTestServer();
  try {
    const next = seeded(SEED);
    const garbage = Array.from({ length: 2000 }, () => randomToken(next, { checksum: 'broken' }));
    const calls = countStoreCalls(server);
    const forwardAuth = (token: string) =>
      verifyNginx(server, `/styles/v1/x/streets?access_token=${token}`, {
        authQuery: '?scope=styles:read',
      }).then((answer) => String(answer.status));
    const retrieve = (token: string) =>
      api(server, 'GET', '/tokens/v2', { token }).then(
        (answer) => `${answer.status} ${(answer.body as { code: string }).code}`,
      );
    const started = performance.now();
    const viaGateway = await flood(garbage, forwardAuth);
    const viaApi = await flood(garbage.slice(0, 500), retrieve);
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual([...new Set(viaGateway)], ['401'], `seed ${SEED}`);
    assert.deepEqual([...new Set(viaApi)], ['200 TokenInvalid'], `seed ${SEED}`);
    assert.equal(requestCalls(calls), 0, `the checksum refused every one before the store: ${[...calls]}`);
    const background = [...calls.values()].reduce((sum, count) => sum + count, 0);

    // The control: the same shape with a valid checksum is looked up, so the counter does see lookups.
    const unknown = Array.from({ length: 100 }, () => randomToken(next, { checksum: 'valid' }));
    assert.deepEqual([...new Set(await flood(unknown, forwardAuth))], ['401']);
    const lookups = calls.get('findToken') ?? 0;
    assert.equal(lookups, 100, 'each valid checksum is one lookup');
    recordFigures('T72', {
      seed: SEED,
      'random tokens with a bad checksum': viaGateway.length + viaApi.length,
      'store calls for them': 0,
      'store calls by background timers meanwhile': background,
      'store lookups for 100 with a valid checksum': lookups,
      'requests/s (in-process client, not a load test)': Math.round(
        (viaGateway.length + viaApi.length) / seconds,
      ),
    });
  } finally {
    await server.close();
  }
});

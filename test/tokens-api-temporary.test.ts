import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodePayload } from '../src/core/payload.ts';
import { api, assertError, assertUnchanged, createToken, startApiServer } from './helpers/api.ts';
import { createTestAccount, ManualClock, type TestAccount, type TestServer } from './helpers/server.ts';

interface Temporary {
  readonly token: string;
  readonly issued_at: string;
  readonly expires: string;
  readonly expires_in: number;
}

const MINUTE = 60_000;
// Whole seconds, so `expires` round-trips through the token's Unix-seconds `exp` exactly.
const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
let server: TestServer;
let owner: TestAccount;

before(async () => {
  server = await startApiServer({ clock });
  owner = await createTestAccount(server.services, 'temp', ['tokens:read', 'tokens:write', 'styles:read']);
});
after(() => server.close());

function inMinutes(minutes: number): string {
  return new Date(clock.now() + minutes * MINUTE).toISOString();
}

async function mint(authorizer: string, json: unknown): Promise<Temporary> {
  const response = await api(server, 'POST', '/tokens/v2/temp', { token: authorizer, json });
  assert.equal(response.status, 200, response.text);
  return response.body as Temporary;
}

async function codeOf(token: string): Promise<string> {
  const response = await api(server, 'GET', '/tokens/v2', { token });
  assert.equal(response.status, 200);
  return (response.body as { code: string }).code;
}

/** Asserts a refused mint: the status, the message, and no token of the account changed. */
async function assertRefused(
  authorizer: string,
  json: unknown,
  status: number,
  message: string,
): Promise<void> {
  await assertUnchanged(server, 'temp', async () => {
    assertError(await api(server, 'POST', '/tokens/v2/temp', { token: authorizer, json }), status, message);
  });
}

test('an sk mints a tk for up to one hour, and nothing is stored', async () => {
  await assertUnchanged(server, 'temp', async () => {
    const temporary = await mint(owner.adminToken, { expires: inMinutes(60), scopes: ['styles:read'] });
    assert.match(temporary.token, /^tk\.[A-Za-z0-9]+\.[A-Za-z0-9]+$/);
    assert.deepEqual(temporary, {
      token: temporary.token,
      issued_at: new Date(clock.now()).toISOString(),
      expires: inMinutes(60),
      expires_in: 3600,
    });
    const retrieved = await api(server, 'GET', '/tokens/v2', { token: temporary.token });
    assert.deepEqual(retrieved.body, {
      code: 'TokenValid',
      token: {
        usage: 'tk',
        user: 'temp',
        expires: inMinutes(60),
        created: new Date(clock.now()).toISOString(),
        scopes: ['styles:read'],
        client: 'api',
      },
    });
  });
});

test('expires may be any RFC 3339 time, with or without milliseconds or offset', async () => {
  const at = new Date(clock.now() + 10 * MINUTE);
  const plusTwo = new Date(at.getTime() + 2 * 60 * MINUTE).toISOString().replace(/\.\d{3}Z$/, '+02:00');
  for (const expires of [at.toISOString(), at.toISOString().replace('.000Z', 'Z'), plusTwo]) {
    const temporary = await mint(owner.adminToken, { expires, scopes: [] });
    assert.equal(temporary.expires, at.toISOString(), expires);
  }
});

test('expires in the past, now, or more than an hour ahead is refused with Mapbox messages', async () => {
  for (const expires of [inMinutes(-1), inMinutes(0)]) {
    await assertRefused(owner.adminToken, { expires, scopes: [] }, 422, 'expires is in the past');
  }
  const tooFar = new Date(clock.now() + 60 * MINUTE + 1000).toISOString();
  await assertRefused(
    owner.adminToken,
    { expires: tooFar, scopes: [] },
    422,
    'expires is more than one hour in the future',
  );
});

test('a tk with tokens:write mints tks, never past its own expiry', async () => {
  const parent = await mint(owner.adminToken, {
    expires: inMinutes(10),
    scopes: ['tokens:write', 'styles:read'],
  });
  const child = await mint(parent.token, { expires: inMinutes(10), scopes: ['styles:read'] });
  assert.equal(await codeOf(child.token), 'TokenValid');
  await assertRefused(
    parent.token,
    { expires: inMinutes(11), scopes: ['styles:read'] },
    422,
    'expires may not be greater than the expiration of the authorizing token',
  );
});

test('a tk never outlives an expiring sk that mints it', async () => {
  const minter = await createToken(server, 'temp', {
    scopes: ['tokens:write', 'styles:read'],
    expiresAt: inMinutes(10),
  });
  await assertRefused(
    minter.token,
    { expires: inMinutes(11), scopes: ['styles:read'] },
    422,
    'expires may not be greater than the expiration of the authorizing token',
  );
  const temporary = await mint(minter.token, { expires: inMinutes(10), scopes: ['styles:read'] });
  assert.equal(temporary.expires_in, 600);
  clock.advance(10 * MINUTE);
  assert.equal(await codeOf(temporary.token), 'TokenExpired', 'it ends when it said it would');
});

test('a tk cannot create pk or sk tokens (403)', async () => {
  const temporary = await mint(owner.adminToken, {
    expires: inMinutes(10),
    scopes: ['tokens:write', 'styles:read'],
  });
  await assertRefused(
    temporary.token,
    { scopes: ['styles:read'] },
    403,
    'temporary tokens may only create temporary tokens',
  );
  await assertRefused(
    temporary.token,
    { scopes: ['tokens:write'] },
    403,
    'temporary tokens may only create temporary tokens',
  );
});

test('scopes beyond the authorizer, unknown scopes and allowedUrls are refused', async () => {
  const expires = inMinutes(10);
  await assertRefused(owner.adminToken, { expires, scopes: ['uploads:write'] }, 422, 'scopes are invalid');
  await assertRefused(owner.adminToken, { expires, scopes: ['no:such'] }, 422, 'scopes are invalid');
  await assertRefused(
    owner.adminToken,
    { expires, scopes: ['styles:read'], allowedUrls: ['https://example.com'] },
    422,
    'temporary tokens cannot have allowedUrls',
  );
  const narrow = await mint(owner.adminToken, { expires, scopes: ['tokens:write'] });
  await assertRefused(narrow.token, { expires, scopes: ['styles:read'] }, 422, 'scopes are invalid');
});

test('expires and scopes of the wrong type are 422', async () => {
  for (const expires of [1_900_000_000, 'tomorrow', '2030-01-01', null, '']) {
    await assertRefused(owner.adminToken, { expires, scopes: [] }, 422, 'expires must be an ISO 8601 time');
  }
  for (const scopes of ['styles:read', [1], null, undefined]) {
    await assertRefused(
      owner.adminToken,
      { expires: inMinutes(5), ...(scopes === undefined ? {} : { scopes }) },
      422,
      'scopes must be an array of at most 64 strings',
    );
  }
});

test('a tk expires with the clock: TokenExpired, then 401 on the API', async () => {
  const temporary = await mint(owner.adminToken, { expires: inMinutes(5), scopes: ['tokens:read'] });
  assert.equal((await api(server, 'GET', '/tokens/v2/temp', { token: temporary.token })).status, 200);
  clock.advance(5 * MINUTE - 1000);
  assert.equal(await codeOf(temporary.token), 'TokenValid');
  clock.advance(1000);
  assert.equal(await codeOf(temporary.token), 'TokenExpired');
  assertError(await api(server, 'GET', '/tokens/v2/temp', { token: temporary.token }), 401, 'Unauthorized');
});

test('a tk dies with the sk that minted it (and so do its own tks)', async () => {
  const minter = await createToken(server, 'temp', { scopes: ['tokens:read', 'tokens:write'] });
  const temporary = await mint(minter.token, {
    expires: inMinutes(30),
    scopes: ['tokens:read', 'tokens:write'],
  });
  const grandchild = await mint(temporary.token, { expires: inMinutes(20), scopes: ['tokens:read'] });
  assert.equal(await codeOf(temporary.token), 'TokenValid');

  const deleted = await api(server, 'DELETE', `/tokens/v2/temp/${minter.id}`, { token: owner.adminToken });
  assert.equal(deleted.status, 204);
  assert.equal(await codeOf(temporary.token), 'TokenRevoked');
  assert.equal(await codeOf(grandchild.token), 'TokenRevoked');
  assertError(await api(server, 'GET', '/tokens/v2/temp', { token: temporary.token }), 401, 'Unauthorized');
  await assertRefused(temporary.token, { expires: inMinutes(5), scopes: [] }, 401, 'Unauthorized');
});

test('a tk with a forged signature or a lengthened expiry is TokenInvalid', async () => {
  const temporary = await mint(owner.adminToken, { expires: inMinutes(10), scopes: ['styles:read'] });
  const [usage, payload, signature] = temporary.token.split('.') as [string, string, string];
  const flipped = `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
  assert.equal(await codeOf(`${usage}.${payload}.${flipped}`), 'TokenInvalid');
  const claims = JSON.parse(Buffer.from(payload, 'base64').toString('latin1')) as Record<string, unknown>;
  const lengthened = encodePayload({ ...claims, exp: Number(claims.exp) + 3600 });
  assert.ok(lengthened);
  assert.equal(await codeOf(`${usage}.${lengthened}.${signature}`), 'TokenInvalid');
  assert.equal(await codeOf(`${usage}.${payload}`), 'TokenMalformed');
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, assertError, assertUnchanged, startApiServer, tokensOf } from './helpers/api.ts';
import { createTestAccount, ManualClock, type TestAccount, type TestServer } from './helpers/server.ts';

interface Metadata {
  readonly id: string;
  readonly usage: string;
  readonly client: string;
  readonly default: boolean;
  readonly note: string;
  readonly scopes: string[];
  readonly created: string;
  readonly modified: string;
  readonly allowedUrls?: string[];
  readonly token?: string;
  readonly [extension: string]: unknown;
}

const clock = new ManualClock();
let server: TestServer;
let owner: TestAccount;

before(async () => {
  server = await startApiServer({ clock });
  owner = await createTestAccount(server.services, 'life', [
    'tokens:read',
    'tokens:write',
    'scopes:list',
    'styles:tiles',
    'styles:read',
    'fonts:read',
    'datasets:read',
    'vision:read',
    'styles:write',
  ]);
});
after(() => server.close());

async function create(json: unknown): Promise<Metadata> {
  const response = await api(server, 'POST', '/tokens/v2/life', { token: owner.adminToken, json });
  assert.equal(response.status, 200, response.text);
  return response.body as Metadata;
}

async function retrieve(token: string): Promise<unknown> {
  const response = await api(server, 'GET', '/tokens/v2', { token });
  assert.equal(response.status, 200, response.text);
  return response.body;
}

describe('create', () => {
  test('public scopes make a pk, shown in full and listed with its token', async () => {
    const token = await create({ note: 'site', scopes: ['styles:read', 'fonts:read'] });
    assert.deepEqual(Object.keys(token).sort(), [
      'client',
      'created',
      'default',
      'id',
      'modified',
      'note',
      'scopes',
      'token',
      'usage',
    ]);
    assert.equal(token.usage, 'pk');
    assert.equal(token.client, 'api');
    assert.equal(token.default, false);
    assert.equal(token.created, token.modified);
    assert.match(token.token ?? '', /^pk\./);
    const listed = (await tokensOf(server, 'life')).find((item) => item.id === token.id);
    assert.equal(listed?.token, token.token);
  });

  test('a secret scope makes an sk whose token string is shown once', async () => {
    const token = await create({ scopes: ['styles:read', 'styles:write'] });
    assert.equal(token.usage, 'sk');
    assert.match(token.token ?? '', /^sk\./);
    const listed = await api(server, 'GET', '/tokens/v2/life?usage=sk', { token: owner.adminToken });
    const again = (listed.body as Metadata[]).find((item) => item.id === token.id);
    assert.ok(again);
    assert.equal('token' in again, false);
    assert.deepEqual(await retrieve(token.token ?? ''), {
      code: 'TokenValid',
      token: { usage: 'sk', user: 'life', authorization: token.id },
    });
  });

  test('allowedUrls take up to 100 entries', async () => {
    const urls = Array.from({ length: 100 }, (_, index) => `https://site${index}.example.com`);
    const token = await create({ scopes: ['styles:read'], allowedUrls: urls });
    assert.deepEqual(token.allowedUrls, urls);
    await assertUnchanged(server, 'life', async () => {
      const response = await api(server, 'POST', '/tokens/v2/life', {
        token: owner.adminToken,
        json: { scopes: ['styles:read'], allowedUrls: [...urls, 'https://one-more.example.com'] },
      });
      assertError(response, 422, 'allowedUrls may contain at most 100 URLs');
    });
  });

  test('fields of newer Mapbox clients are stored and echoed', async () => {
    const future = {
      allowedApplications: [{ platform: 'iOS', bundleId: 'com.example.foo' }],
      resources: ['style-one', 'style-two'],
      allowedApis: ['api-styles'],
    };
    const token = await create({ scopes: ['styles:read'], ...future });
    assert.deepEqual(
      {
        allowedApplications: token.allowedApplications,
        resources: token.resources,
        allowedApis: token.allowedApis,
      },
      future,
    );
    const stored = (await tokensOf(server, 'life')).find((item) => item.id === token.id);
    assert.deepEqual(stored?.allowedApplications, future.allowedApplications);
    assert.deepEqual(stored?.resources, future.resources);
  });
});

describe('update', () => {
  test('changes what it is given, null clears, modified advances, usage and created stay', async () => {
    const token = await create({
      note: 'before',
      scopes: ['styles:read', 'styles:write'],
      allowedUrls: ['https://a.example.com'],
      resources: ['one'],
    });
    clock.advance(1000);
    const response = await api(server, 'PATCH', `/tokens/v2/life/${token.id}`, {
      token: owner.adminToken,
      json: { note: 'after', scopes: ['styles:read'], allowedUrls: null, resources: null },
    });
    assert.equal(response.status, 200, response.text);
    const updated = response.body as Metadata;
    assert.equal(updated.note, 'after');
    assert.deepEqual(updated.scopes, ['styles:read']);
    assert.equal('allowedUrls' in updated, false);
    assert.equal('resources' in updated, false);
    assert.equal(updated.usage, 'sk', 'an sk with only public scopes left is still an sk');
    assert.equal(updated.created, token.created);
    assert.equal(updated.modified, new Date(clock.now()).toISOString());
    assert.ok(updated.modified > token.modified);
    assert.equal('token' in updated, false, 'the sk token string is not shown again');
    assert.equal(((await retrieve(token.token ?? '')) as { code: string }).code, 'TokenValid');
  });

  test('an empty patch leaves every field as it was', async () => {
    const token = await create({ note: 'same', scopes: ['fonts:read'] });
    const response = await api(server, 'PATCH', `/tokens/v2/life/${token.id}`, {
      token: owner.adminToken,
      json: {},
    });
    assert.equal(response.status, 200);
    const { modified: _modified, ...rest } = response.body as Metadata;
    const { modified: _before, ...expected } = token;
    assert.deepEqual(rest, expected);
  });

  test('a pk can never gain a secret scope', async () => {
    const token = await create({ scopes: ['styles:read'] });
    await assertUnchanged(server, 'life', async () => {
      const response = await api(server, 'PATCH', `/tokens/v2/life/${token.id}`, {
        token: owner.adminToken,
        json: { scopes: ['styles:read', 'styles:write'] },
      });
      assertError(response, 422, 'scopes are invalid');
    });
  });

  test('an unknown token id is 404 "Not found"', async () => {
    for (const id of ['cnosuchtoken0000000000000', 'not-an-id', '%20x']) {
      const response = await api(server, 'PATCH', `/tokens/v2/life/${id}`, {
        token: owner.adminToken,
        json: { note: 'x' },
      });
      assertError(response, 404, 'Not found');
    }
  });
});

describe('delete', () => {
  test('answers 204 with no body, revokes the token, then 404 the second time', async () => {
    const token = await create({ scopes: ['styles:read'] });
    const first = await api(server, 'DELETE', `/tokens/v2/life/${token.id}`, { token: owner.adminToken });
    assert.equal(first.status, 204);
    assert.equal(first.text, '');
    assert.equal(
      (await tokensOf(server, 'life')).some((item) => item.id === token.id),
      false,
    );
    assert.deepEqual(await retrieve(token.token ?? ''), {
      code: 'TokenRevoked',
      token: { usage: 'pk', user: 'life', authorization: token.id },
    });
    const second = await api(server, 'DELETE', `/tokens/v2/life/${token.id}`, { token: owner.adminToken });
    assertError(second, 404, 'Not found');
    const patch = await api(server, 'PATCH', `/tokens/v2/life/${token.id}`, {
      token: owner.adminToken,
      json: { note: 'zombie' },
    });
    assertError(patch, 404, 'Not found');
  });

  test('a deleted sk is refused everywhere but retrieve', async () => {
    const token = await create({ scopes: ['tokens:read'] });
    await api(server, 'DELETE', `/tokens/v2/life/${token.id}`, { token: owner.adminToken });
    const response = await api(server, 'GET', '/tokens/v2/life', { token: token.token ?? '' });
    assertError(response, 401, 'Unauthorized');
  });
});

describe('the default token', () => {
  test('can get neither secret scopes nor allowedUrls', async () => {
    const [current] = (await tokensOf(server, 'life')).filter((item) => item.default);
    assert.ok(current);
    await assertUnchanged(server, 'life', async () => {
      const secret = await api(server, 'PATCH', `/tokens/v2/life/${current.id}`, {
        token: owner.adminToken,
        json: { scopes: ['styles:write'] },
      });
      assertError(secret, 422, 'scopes are invalid');
      const restricted = await api(server, 'PATCH', `/tokens/v2/life/${current.id}`, {
        token: owner.adminToken,
        json: { allowedUrls: ['https://example.com'] },
      });
      assertError(restricted, 422, 'the default token cannot have allowedUrls');
    });
  });

  test('deleting it answers 204 and a new default token takes its place', async () => {
    const [old] = (await tokensOf(server, 'life')).filter((item) => item.default);
    assert.ok(old?.token);
    const response = await api(server, 'DELETE', `/tokens/v2/life/${old.id}`, { token: owner.adminToken });
    assert.equal(response.status, 204);
    const defaults = (await tokensOf(server, 'life')).filter((item) => item.default);
    assert.equal(defaults.length, 1);
    const [fresh] = defaults;
    assert.ok(fresh?.token);
    assert.notEqual(fresh.id, old.id);
    assert.notEqual(fresh.token, old.token);
    assert.equal(fresh.usage, 'pk');
    assert.deepEqual(fresh.scopes, old.scopes);
    assert.equal(((await retrieve(old.token)) as { code: string }).code, 'TokenRevoked');
    assert.equal(((await retrieve(fresh.token)) as { code: string }).code, 'TokenValid');
  });
});

describe('retrieve', () => {
  test('reports TokenValid with the parsed token, needing no scope', async () => {
    const [current] = (await tokensOf(server, 'life')).filter((item) => item.default);
    assert.ok(current?.token);
    assert.deepEqual(await retrieve(current.token), {
      code: 'TokenValid',
      token: { usage: 'pk', user: 'life', authorization: current.id },
    });
  });

  test('reports TokenMalformed for strings that are not tokens', async () => {
    for (const token of [
      'yada.yada',
      'abcdef',
      'pk..sig',
      'pk.e30.x',
      `tk.${'A'.repeat(5000)}.x`,
      '\u00e9',
    ]) {
      assert.deepEqual(await retrieve(token), { code: 'TokenMalformed' }, token);
    }
  });

  test('reports TokenInvalid for a well-formed token that was never issued', async () => {
    const token = await create({ scopes: ['styles:read'] });
    const raw = token.token ?? '';
    const secretStart = raw.lastIndexOf('.') + 1;
    const flipped = raw[secretStart] === 'A' ? 'B' : 'A';
    const forged = `${raw.slice(0, secretStart)}${flipped}${raw.slice(secretStart + 1)}`;
    assert.deepEqual(await retrieve(forged), {
      code: 'TokenInvalid',
      token: { usage: 'pk', user: 'life', authorization: token.id },
    });
    const otherUsage = `sk${raw.slice(2)}`;
    assert.equal(((await retrieve(otherUsage)) as { code: string }).code, 'TokenInvalid');
  });

  test('reports TokenExpired once the clock passes a pk expiresAt; the API then says 401', async () => {
    const expiresAt = new Date(clock.now() + 60_000).toISOString();
    const token = await create({ scopes: ['styles:read'], expiresAt });
    assert.equal(token.expiresAt, expiresAt);
    assert.equal(((await retrieve(token.token ?? '')) as { code: string }).code, 'TokenValid');
    const before = await api(server, 'GET', '/tokens/v2/life', { token: token.token ?? '' });
    assertError(before, 404, 'Not found');
    clock.advance(60_000);
    assert.equal(((await retrieve(token.token ?? '')) as { code: string }).code, 'TokenExpired');
    const afterwards = await api(server, 'GET', '/tokens/v2/life', { token: token.token ?? '' });
    assertError(afterwards, 401, 'Unauthorized');
  });

  test('without a token it is 422 "access token is required"', async () => {
    assertError(await api(server, 'GET', '/tokens/v2'), 422, 'access token is required');
    assertError(await api(server, 'GET', '/tokens/v2?access_token='), 422, 'access token is required');
  });
});

test('scopes list every scope with a description; only public ones say public:true', async () => {
  const response = await api(server, 'GET', '/scopes/v1/life', { token: owner.adminToken });
  assert.equal(response.status, 200);
  const scopes = response.body as Array<{ id: string; description: string; public?: boolean }>;
  const ids = scopes.map((scope) => scope.id);
  for (const id of ['styles:read', 'fonts:read', 'tokens:read', 'tokens:write', 'scopes:list']) {
    assert.ok(ids.includes(id), id);
  }
  assert.equal(new Set(ids).size, ids.length);
  for (const scope of scopes) {
    assert.ok(scope.description.length > 0);
    assert.ok(scope.public === true || !('public' in scope), scope.id);
  }
  assert.deepEqual(
    scopes.filter((scope) => scope.public).map((scope) => scope.id),
    ['styles:tiles', 'styles:read', 'fonts:read', 'datasets:read', 'vision:read'],
  );
});

describe('a weaker token against a stronger one', () => {
  test('cannot update a token holding scopes it lacks (403), but may still revoke it', async () => {
    const strong = await create({
      note: 'strong',
      scopes: ['styles:write', 'styles:read'],
      expiresAt: '2999-01-01T00:00:00.000Z',
    });
    const weak = await create({ note: 'weak', scopes: ['tokens:write', 'styles:read'] });
    await assertUnchanged(server, 'life', async () => {
      const lifted = await api(server, 'PATCH', `/tokens/v2/life/${strong.id}`, {
        token: weak.token ?? '',
        json: { expiresAt: null },
      });
      assertError(lifted, 403, 'the authorizing token does not hold every scope of this token');
    });
    const narrowed = await api(server, 'PATCH', `/tokens/v2/life/${strong.id}`, {
      token: weak.token ?? '',
      json: { scopes: ['styles:read'] },
    });
    assert.equal(narrowed.status, 200, 'dropping to scopes the authorizer holds is allowed');
    const revoke = await create({ note: 'revoke me', scopes: ['styles:write'] });
    const deleted = await api(server, 'DELETE', `/tokens/v2/life/${revoke.id}`, { token: weak.token ?? '' });
    assert.equal(deleted.status, 204);
  });

  test('a temporary token may only delete tokens within its own scopes', async () => {
    const target = await create({ note: 'target', scopes: ['styles:write'] });
    const minted = await api(server, 'POST', '/tokens/v2/life', {
      token: owner.adminToken,
      json: {
        expires: new Date(clock.now() + 600_000).toISOString(),
        scopes: ['tokens:write', 'styles:read'],
      },
    });
    const tk = (minted.body as { token: string }).token;
    await assertUnchanged(server, 'life', async () => {
      const refused = await api(server, 'DELETE', `/tokens/v2/life/${target.id}`, { token: tk });
      assertError(refused, 403, 'a temporary token may only delete tokens within its own scopes');
    });
    const within = await create({ note: 'within', scopes: ['styles:read'] });
    assert.equal((await api(server, 'DELETE', `/tokens/v2/life/${within.id}`, { token: tk })).status, 204);
  });

  test('PATCH with an empty body changes nothing, not even modified', async () => {
    const token = await create({ note: 'still', scopes: ['styles:read'] });
    clock.advance(5000);
    const response = await api(server, 'PATCH', `/tokens/v2/life/${token.id}`, {
      token: owner.adminToken,
      json: {},
    });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, token);
  });
});

describe('authority that shrinks', () => {
  test('a temporary token loses what its parent loses, and cannot update tokens at all', async () => {
    const parent = await create({ note: 'parent', scopes: ['tokens:read', 'tokens:write', 'styles:read'] });
    const minted = await api(server, 'POST', '/tokens/v2/life', {
      token: parent.token ?? '',
      json: {
        expires: new Date(clock.now() + 600_000).toISOString(),
        scopes: ['tokens:read', 'tokens:write', 'styles:read'],
      },
    });
    const tk = (minted.body as { token: string }).token;
    assert.equal((await api(server, 'GET', '/tokens/v2/life', { token: tk })).status, 200);
    const narrowed = await api(server, 'PATCH', `/tokens/v2/life/${parent.id}`, {
      token: owner.adminToken,
      json: { scopes: ['styles:read', 'tokens:write'] },
    });
    assert.equal(narrowed.status, 200);
    assertError(await api(server, 'GET', '/tokens/v2/life', { token: tk }), 404, 'Not found');
    await assertUnchanged(server, 'life', async () => {
      const restore = await api(server, 'PATCH', `/tokens/v2/life/${parent.id}`, {
        token: tk,
        json: { scopes: ['tokens:read', 'tokens:write', 'styles:read'] },
      });
      assertError(restore, 403, 'temporary tokens cannot update tokens');
    });
  });

  test('an expiring token can neither lift its own expiry nor create a token that outlives it', async () => {
    const expiresAt = new Date(clock.now() + 120_000).toISOString();
    const expiring = await create({ note: 'expiring', scopes: ['tokens:write', 'styles:read'], expiresAt });
    const message = 'expiresAt may not be later than the expiration of the authorizing token';
    await assertUnchanged(server, 'life', async () => {
      const lifted = await api(server, 'PATCH', `/tokens/v2/life/${expiring.id}`, {
        token: expiring.token ?? '',
        json: { expiresAt: null },
      });
      assertError(lifted, 422, message);
      const clone = await api(server, 'POST', '/tokens/v2/life', {
        token: expiring.token ?? '',
        json: { scopes: ['styles:read'] },
      });
      assertError(clone, 422, message);
    });
    const within = await api(server, 'POST', '/tokens/v2/life', {
      token: expiring.token ?? '',
      json: { scopes: ['styles:read'], expiresAt: new Date(clock.now() + 60_000).toISOString() },
    });
    assert.equal(within.status, 200);
  });

  test('an empty PATCH by a weaker token is refused like any other update', async () => {
    const strong = await create({ note: 'strong2', scopes: ['styles:write'] });
    const weak = await create({ note: 'weak2', scopes: ['tokens:write'] });
    const response = await api(server, 'PATCH', `/tokens/v2/life/${strong.id}`, {
      token: weak.token ?? '',
      json: {},
    });
    assertError(response, 403, 'the authorizing token does not hold every scope of this token');
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type ApiRequest,
  api,
  assertError,
  assertUnchanged,
  createToken,
  startApiServer,
} from './helpers/api.ts';
import { createTestAccount, type TestAccount, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: TestAccount;
let bob: TestAccount;
let bobTokenId: string;

before(async () => {
  server = await startApiServer();
  alice = await createTestAccount(server.services, 'alice');
  bob = await createTestAccount(server.services, 'bob');
  bobTokenId = (await createToken(server, 'bob', { scopes: ['styles:read'], note: 'bob' })).id;
});
after(() => server.close());

/** One request per Tokens API operation on `username`'s tokens (`id` for update and delete). */
function operations(username: string, id: string): Array<[string, string, ApiRequest]> {
  return [
    ['GET', `/tokens/v2/${username}`, {}],
    ['POST', `/tokens/v2/${username}`, { json: { scopes: ['styles:read'] } }],
    [
      'POST',
      `/tokens/v2/${username}`,
      { json: { scopes: [], expires: new Date(Date.now() + 60_000).toISOString() } },
    ],
    ['PATCH', `/tokens/v2/${username}/${id}`, { json: { note: 'changed' } }],
    ['DELETE', `/tokens/v2/${username}/${id}`, {}],
    ['GET', `/scopes/v1/${username}`, {}],
  ];
}

async function assertAllRefused(
  token: string | undefined,
  username: string,
  id: string,
  status: number,
  message: string,
): Promise<void> {
  for (const [method, path, request] of operations(username, id)) {
    await assertUnchanged(server, 'bob', async () => {
      await assertUnchanged(server, 'alice', async () => {
        const response = await api(server, method, path, { ...request, ...(token ? { token } : {}) });
        assert.equal(response.status, status, `${method} ${path}`);
        assertError(response, status, message);
      });
    });
  }
}

describe('authentication', () => {
  test('no token is 401 "Unauthorized" on every operation', async () => {
    await assertAllRefused(undefined, 'bob', bobTokenId, 401, 'Unauthorized');
  });

  test('a garbage, forged or revoked token is 401 "Unauthorized"', async () => {
    const revoked = await createToken(server, 'bob', { scopes: ['tokens:read', 'tokens:write'] });
    await server.services.tokens.remove({ kind: 'operator' }, 'bob', revoked.id);
    const forged = `${bob.adminToken.slice(0, -1)}${bob.adminToken.endsWith('A') ? 'B' : 'A'}`;
    for (const token of ['garbage', 'pk.e30.x', forged, revoked.token]) {
      await assertAllRefused(token, 'bob', bobTokenId, 401, 'Unauthorized');
    }
  });

  test('an Authorization: Bearer header works too; a conflicting second token is 400', async () => {
    const ok = await api(server, 'GET', '/tokens/v2/bob', {
      headers: { authorization: `Bearer ${bob.adminToken}` },
    });
    assert.equal(ok.status, 200);
    assertError(
      await api(server, 'GET', '/tokens/v2/bob', { headers: { authorization: `Basic ${bob.adminToken}` } }),
      401,
      'Unauthorized',
    );
    assertError(
      await api(server, 'GET', '/tokens/v2/bob', {
        token: bob.defaultToken,
        headers: { authorization: `Bearer ${bob.adminToken}` },
      }),
      400,
      'the request carries two different access tokens',
    );
  });
});

describe('scopes', () => {
  test('a token without tokens:read, tokens:write or scopes:list gets 404 "Not found"', async () => {
    await assertAllRefused(bob.defaultToken, 'bob', bobTokenId, 404, 'Not found');
  });

  test('each scope opens only its own operations', async () => {
    const reader = await createToken(server, 'bob', { scopes: ['tokens:read'] });
    assert.equal((await api(server, 'GET', '/tokens/v2/bob', { token: reader.token })).status, 200);
    await assertUnchanged(server, 'bob', async () => {
      const create = await api(server, 'POST', '/tokens/v2/bob', {
        token: reader.token,
        json: { scopes: [] },
      });
      assertError(create, 404, 'Not found');
      const patch = await api(server, 'PATCH', `/tokens/v2/bob/${bobTokenId}`, {
        token: reader.token,
        json: { note: 'x' },
      });
      assertError(patch, 404, 'Not found');
    });
    assertError(await api(server, 'GET', '/scopes/v1/bob', { token: reader.token }), 404, 'Not found');

    const writer = await createToken(server, 'bob', { scopes: ['tokens:write'] });
    assertError(await api(server, 'GET', '/tokens/v2/bob', { token: writer.token }), 404, 'Not found');
  });

  test('a new token can hold only scopes its creator holds', async () => {
    const writer = await createToken(server, 'bob', { scopes: ['tokens:write', 'styles:read'] });
    await assertUnchanged(server, 'bob', async () => {
      for (const scopes of [['fonts:read'], ['tokens:read'], ['styles:read', 'uploads:write']]) {
        const response = await api(server, 'POST', '/tokens/v2/bob', {
          token: writer.token,
          json: { scopes },
        });
        assertError(response, 422, 'scopes are invalid');
      }
      const patch = await api(server, 'PATCH', `/tokens/v2/bob/${bobTokenId}`, {
        token: writer.token,
        json: { scopes: ['fonts:read'] },
      });
      assertError(patch, 422, 'scopes are invalid');
    });
  });
});

describe('accounts', () => {
  test('an unknown username is 404 "No such user", whatever the token may do', async () => {
    for (const username of ['nobody', 'carol', 'j%C3%B6hn', 'a%00b', '%E2%80%AE']) {
      await assertAllRefused(alice.adminToken, username, bobTokenId, 404, 'No such user');
      await assertAllRefused(bob.defaultToken, username, bobTokenId, 404, 'No such user');
    }
  });

  test("one account's token never sees or touches another's tokens: 404 and no change", async () => {
    await assertAllRefused(alice.adminToken, 'bob', bobTokenId, 404, 'Not found');
  });

  test("a token id of another account under one's own name is 404 and no change", async () => {
    for (const method of ['PATCH', 'DELETE']) {
      await assertUnchanged(server, 'bob', async () => {
        const response = await api(server, method, `/tokens/v2/alice/${bobTokenId}`, {
          token: alice.adminToken,
          ...(method === 'PATCH' ? { json: { note: 'stolen', allowedUrls: null } } : {}),
        });
        assertError(response, 404, 'Not found');
      });
    }
    const listed = await api(server, 'GET', '/tokens/v2/alice', { token: alice.adminToken });
    const ids = (listed.body as Array<{ id: string }>).map((token) => token.id);
    assert.equal(ids.includes(bobTokenId), false);
  });

  test("another account's temporary token is refused too", async () => {
    const temporary = await server.services.tokens.createTemporary(
      await server.services.tokens.authenticate(alice.adminToken),
      'alice',
      { expires: Date.now() + 60_000, scopes: ['tokens:read', 'tokens:write', 'scopes:list'] },
    );
    await assertAllRefused(temporary.token, 'bob', bobTokenId, 404, 'Not found');
  });
});

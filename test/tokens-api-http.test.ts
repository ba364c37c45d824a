import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, assertError, assertUnchanged, startApiServer } from './helpers/api.ts';
import {
  createTestAccount,
  ManualClock,
  startTestServer,
  type TestAccount,
  type TestServer,
} from './helpers/server.ts';

const MINUTE = 60_000;
// At the start of a fixed one-minute window, so no test straddles a window boundary.
const clock = new ManualClock(Math.floor(Date.now() / MINUTE) * MINUTE + MINUTE);
let server: TestServer;
let first: TestAccount;
let second: TestAccount;

before(async () => {
  server = await startApiServer({ clock, limits: { tokensApi: { limit: 3, interval: 60 } } });
  first = await createTestAccount(server.services, 'first');
  second = await createTestAccount(server.services, 'second');
});
after(() => server.close());

function listHeader(value: string | null): string[] {
  return (value ?? '').split(',').map((item) => item.trim().toLowerCase());
}

describe('rate limit', () => {
  test('three headers on every answer, then 429 "Too Many Requests" until the window ends', async () => {
    const reset = String((clock.now() + MINUTE) / 1000);
    const requests = [
      api(server, 'GET', '/tokens/v2/first', { token: first.adminToken }),
      api(server, 'GET', '/tokens/v2/first?default=true', { token: first.adminToken }),
      api(server, 'GET', '/scopes/v1/first', { token: first.adminToken }),
    ];
    for (const response of await Promise.all(requests)) {
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-rate-limit-interval'), '60');
      assert.equal(response.headers.get('x-rate-limit-limit'), '3');
      assert.equal(response.headers.get('x-rate-limit-reset'), reset);
    }
    await assertUnchanged(server, 'first', async () => {
      const refused = await api(server, 'POST', '/tokens/v2/first', {
        token: first.adminToken,
        json: { scopes: ['styles:read'] },
      });
      assertError(refused, 429, 'Too Many Requests');
      assert.equal(refused.headers.get('x-rate-limit-limit'), '3');
      assert.equal(refused.headers.get('x-rate-limit-reset'), reset);
      assert.equal(refused.headers.get('retry-after'), '60');
    });

    const other = await api(server, 'GET', '/tokens/v2/second', { token: second.adminToken });
    assert.equal(other.status, 200, 'the limit is per account');

    clock.advance(MINUTE - 1000);
    assertError(
      await api(server, 'GET', '/tokens/v2/first', { token: first.adminToken }),
      429,
      'Too Many Requests',
    );
    clock.advance(1000);
    const again = await api(server, 'GET', '/tokens/v2/first', { token: first.adminToken });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('x-rate-limit-reset'), String((clock.now() + MINUTE) / 1000));
  });

  test("a public token cannot use up its account's limit", async () => {
    const account = await createTestAccount(server.services, 'shielded');
    for (let index = 0; index < 5; index++) {
      const retrieve = await api(server, 'GET', '/tokens/v2', { token: account.defaultToken });
      assert.equal(retrieve.status, 200);
      assert.equal(retrieve.headers.get('x-rate-limit-limit'), null, 'retrieve is not counted');
      const list = await api(server, 'GET', '/tokens/v2/shielded', { token: account.defaultToken });
      assertError(list, 404, 'Not found');
    }
    const admin = await api(server, 'GET', '/tokens/v2/shielded', { token: account.adminToken });
    assert.equal(admin.status, 200);
    assert.equal(admin.headers.get('x-rate-limit-limit'), '3');
  });

  test('the default limit is 100 requests per minute per account', async () => {
    const defaults = await startTestServer({ clock });
    try {
      const account = await createTestAccount(defaults.services, 'hundred');
      for (let index = 0; index < 100; index++) {
        const response = await api(defaults, 'GET', '/scopes/v1/hundred', { token: account.adminToken });
        assert.equal(response.status, 200, `request ${index + 1}`);
        assert.equal(response.headers.get('x-rate-limit-limit'), '100');
        assert.equal(response.headers.get('x-rate-limit-interval'), '60');
      }
      const refused = await api(defaults, 'GET', '/scopes/v1/hundred', { token: account.adminToken });
      assertError(refused, 429, 'Too Many Requests');
    } finally {
      await defaults.close();
    }
  });
});

describe('CORS', () => {
  test('any origin may read answers, Link and the rate-limit headers included', async () => {
    clock.advance(MINUTE);
    const headers = { origin: 'https://app.example.com' };
    for (const response of [
      await api(server, 'GET', '/tokens/v2/second', { token: second.adminToken, headers }),
      await api(server, 'GET', '/tokens/v2/second', { headers }),
      await api(server, 'GET', '/tokens/v2', { token: 'garbage', headers }),
    ]) {
      assert.equal(response.headers.get('access-control-allow-origin'), '*');
      const exposed = listHeader(response.headers.get('access-control-expose-headers'));
      for (const name of ['link', 'x-rate-limit-interval', 'x-rate-limit-limit', 'x-rate-limit-reset']) {
        assert.ok(exposed.includes(name), name);
      }
    }
  });

  test('preflight requests allow the methods and headers the SDK uses', async () => {
    for (const path of ['/tokens/v2/second', '/tokens/v2/second/cabc', '/tokens/v2', '/scopes/v1/second']) {
      const response = await api(server, 'OPTIONS', path, {
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': 'PATCH',
          'access-control-request-headers': 'content-type',
        },
      });
      assert.ok(response.status === 200 || response.status === 204, `${path}: ${response.status}`);
      assert.equal(response.headers.get('access-control-allow-origin'), '*');
      const methods = listHeader(response.headers.get('access-control-allow-methods'));
      for (const method of ['get', 'post', 'patch', 'delete']) assert.ok(methods.includes(method), method);
      assert.ok(listHeader(response.headers.get('access-control-allow-headers')).includes('content-type'));
    }
  });
});

test('API paths never redirect: near-misses get a JSON 404', async () => {
  clock.advance(MINUTE);
  const paths = [
    '/tokens/v2/',
    '/tokens/v2/second/',
    '/tokens/v2//second',
    '/tokens/v2/second/cabc/',
    '/scopes/v1/second/',
    '/scopes/v1',
    '/tokens',
    '/tokens/v1/second',
    '/TOKENS/v2/second',
  ];
  for (const method of ['GET', 'POST', 'PATCH', 'DELETE']) {
    for (const path of paths) {
      const response = await api(server, method, path, {
        token: second.adminToken,
        ...(method === 'POST' || method === 'PATCH' ? { json: { scopes: [] } } : {}),
      });
      assertError(response, 404, 'Not found');
      assert.equal(response.headers.get('location'), null);
    }
  }
});

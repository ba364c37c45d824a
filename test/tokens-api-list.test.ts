import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, assertError, createToken, startApiServer, tokensOf } from './helpers/api.ts';
import { createTestAccount, type TestAccount, type TestServer } from './helpers/server.ts';

interface Listed {
  readonly id: string;
  readonly usage: string;
  readonly default: boolean;
  readonly created: string;
  readonly modified: string;
  readonly token?: string;
}

let server: TestServer;
let owner: TestAccount;
/** Tokens of `lister` besides its default and admin tokens, oldest first. */
const extra: Array<{ id: string; usage: string }> = [];

before(async () => {
  server = await startApiServer();
  owner = await createTestAccount(server.services, 'lister', [
    'tokens:read',
    'tokens:write',
    'scopes:list',
    'styles:read',
  ]);
  for (let index = 0; index < 6; index++) {
    const scopes = index % 2 === 0 ? ['styles:read'] : ['tokens:read'];
    extra.push(await createToken(server, 'lister', { scopes, note: `extra ${index}` }));
  }
});
after(() => server.close());

async function list(query: string): Promise<{ tokens: Listed[]; link: string | null }> {
  const response = await api(server, 'GET', `/tokens/v2/lister${query}`, { token: owner.adminToken });
  assert.equal(response.status, 200, response.text);
  return { tokens: response.body as Listed[], link: response.headers.get('link') };
}

function nextUrl(link: string | null): URL {
  const match = /^<([^>]+)>; rel="next"$/.exec(link ?? '');
  assert.ok(match?.[1], `a next link, got ${link}`);
  return new URL(match[1]);
}

test('lists every live token, newest first, without a Link when all fit', async () => {
  const { tokens, link } = await list('');
  assert.equal(link, null);
  assert.equal(tokens.length, 8);
  assert.deepEqual(
    tokens.map((token) => token.id),
    (await tokensOf(server, 'lister')).map((token) => token.id),
  );
  const created = tokens.map((token) => token.created);
  assert.deepEqual(created, [...created].sort().reverse());
});

test('secret tokens are listed without their token string; public ones with it', async () => {
  const { tokens } = await list('');
  const secret = tokens.filter((token) => token.usage === 'sk');
  assert.equal(secret.length, 4);
  for (const token of secret) assert.equal('token' in token, false, token.id);
  for (const token of tokens.filter((item) => item.usage === 'pk')) assert.match(token.token ?? '', /^pk\./);
});

describe('filters', () => {
  test('default=true lists only the default token; default=false everything else', async () => {
    const only = (await list('?default=true')).tokens;
    assert.deepEqual(
      only.map((token) => [token.default, token.token]),
      [[true, owner.defaultToken]],
    );
    const rest = (await list('?default=false')).tokens;
    assert.equal(rest.length, 7);
    assert.ok(rest.every((token) => !token.default));
  });

  test('usage=pk and usage=sk filter by type', async () => {
    assert.deepEqual(new Set((await list('?usage=pk')).tokens.map((token) => token.usage)), new Set(['pk']));
    assert.equal((await list('?usage=pk')).tokens.length, 4);
    assert.equal((await list('?usage=sk')).tokens.length, 4);
    assert.equal((await list('?usage=sk&default=true')).tokens.length, 0);
  });

  test('any other usage is 422 "usage must be pk or sk"', async () => {
    for (const usage of ['tk', 'PK', '', 'pk,sk']) {
      const response = await api(server, 'GET', `/tokens/v2/lister?usage=${usage}`, {
        token: owner.adminToken,
      });
      assertError(response, 422, 'usage must be pk or sk');
    }
  });

  test('an invalid default or sortby is a 422', async () => {
    const badDefault = await api(server, 'GET', '/tokens/v2/lister?default=yes', { token: owner.adminToken });
    assertError(badDefault, 422, 'default must be true or false');
    const badSort = await api(server, 'GET', '/tokens/v2/lister?sortby=id', { token: owner.adminToken });
    assertError(badSort, 422, 'sortby must be created or modified');
  });
});

describe('sorting and paging', () => {
  test('sortby=modified puts the most recently changed token first', async () => {
    const oldest = extra[0];
    assert.ok(oldest);
    const patched = await api(server, 'PATCH', `/tokens/v2/lister/${oldest.id}`, {
      token: owner.adminToken,
      json: { note: 'touched' },
    });
    assert.equal(patched.status, 200);
    assert.equal((await list('?sortby=modified')).tokens[0]?.id, oldest.id);
    assert.notEqual((await list('?sortby=created')).tokens[0]?.id, oldest.id);
  });

  test('limit pages through every token with absolute next links that carry no token', async () => {
    for (const sortby of ['created', 'modified']) {
      const seen: string[] = [];
      let query = `?limit=2&sortby=${sortby}&usage=pk&default=false`;
      let pages = 0;
      for (;;) {
        const { tokens, link } = await list(query);
        pages += 1;
        assert.ok(tokens.length <= 2);
        seen.push(...tokens.map((token) => token.id));
        if (!link) break;
        const next = nextUrl(link);
        assert.equal(next.origin, server.url);
        assert.equal(next.pathname, '/tokens/v2/lister');
        assert.equal(next.searchParams.has('access_token'), false);
        assert.equal(next.searchParams.get('limit'), '2');
        assert.equal(next.searchParams.get('sortby'), sortby);
        assert.equal(next.searchParams.get('usage'), 'pk');
        assert.equal(next.searchParams.get('default'), 'false');
        assert.ok(next.searchParams.get('start'));
        query = next.search;
      }
      assert.equal(pages, 2);
      const all = (await list(`?sortby=${sortby}&usage=pk&default=false`)).tokens.map((token) => token.id);
      assert.deepEqual(seen, all);
    }
  });

  test('a page that ends exactly at the last token has no next link', async () => {
    const { tokens, link } = await list('?limit=4&usage=sk');
    assert.equal(tokens.length, 4);
    assert.equal(link, null);
  });

  test('limit must be an integer from 1 to 100', async () => {
    for (const limit of ['0', '101', '-1', 'abc', '1.5', '1e2', '', '%201', '0x10', '99999999999']) {
      const response = await api(server, 'GET', `/tokens/v2/lister?limit=${limit}`, {
        token: owner.adminToken,
      });
      assertError(response, 422, 'limit must be an integer from 1 to 100');
    }
    assert.equal((await list('?limit=100')).tokens.length, 8);
    assert.equal((await list('?limit=1')).tokens.length, 1);
  });

  test('an invalid start is 422 "start is invalid"', async () => {
    const forged = Buffer.from('not-a-time~cnotanid', 'latin1').toString('base64url');
    for (const start of ['abc', '!!!', '', forged, 'x'.repeat(300), '%00']) {
      const response = await api(server, 'GET', `/tokens/v2/lister?start=${start}`, {
        token: owner.adminToken,
      });
      assertError(response, 422, 'start is invalid');
    }
  });

  test('Link points at the configured public URL, path prefix included', async () => {
    const proxied = await startApiServer({
      env: { TESSERA_PUBLIC_URL: 'https://tokens.example.org/prefix/' },
    });
    try {
      const account = await createTestAccount(proxied.services, 'proxied');
      const response = await api(proxied, 'GET', '/tokens/v2/proxied?limit=1&sortby=modified', {
        token: account.adminToken,
      });
      const next = nextUrl(response.headers.get('link'));
      assert.equal(next.origin, 'https://tokens.example.org');
      assert.equal(next.pathname, '/prefix/tokens/v2/proxied');
      assert.equal(next.searchParams.get('sortby'), 'modified');
      assert.equal(next.searchParams.has('access_token'), false);
    } finally {
      await proxied.close();
    }
  });
});

test('a duplicated access_token is accepted: the first one counts', async () => {
  const url = `/tokens/v2/lister?access_token=${owner.adminToken}&access_token=garbage`;
  const response = await api(server, 'GET', url);
  assert.equal(response.status, 200);
});

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { ApiResponse } from './helpers/api.ts';
import {
  assertAllowed,
  assertInvalidToken,
  assertRefused,
  type CreatedToken,
  createApiToken,
  rawRequest,
  startForwardAuthServer,
  verify,
  verifyNginx,
  withToken,
} from './helpers/forward-auth.ts';
import { createTestAccount, type TestServer } from './helpers/server.ts';

// Bad input from clients and gateways: a clear 4xx, never a 5xx, never an admission by mistake.

let server: TestServer;
let fonts: CreatedToken;
let styles: CreatedToken;
let both: CreatedToken;
let restricted: CreatedToken;

before(async () => {
  server = await startForwardAuthServer();
  const owner = await createTestAccount(server.services, 'mallory', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'fonts:read',
  ]);
  const create = (json: Readonly<Record<string, unknown>>) =>
    createApiToken(server, 'mallory', owner.adminToken, json);
  fonts = await create({ scopes: ['fonts:read'] });
  styles = await create({ scopes: ['styles:read'] });
  both = await create({ scopes: ['styles:read', 'fonts:read'] });
  restricted = await create({ scopes: ['styles:read'], allowedUrls: ['https://app.example.com'] });
});
after(() => server.close());

function pk(token: CreatedToken) {
  return { username: 'mallory', tokenId: token.id, usage: 'pk' } as const;
}

function assertClientError(response: ApiResponse): void {
  assert.ok(response.status >= 400 && response.status < 500, `a 4xx, not ${response.status}`);
}

/** Sends raw bytes as an HTTP/1.1 request and returns the status line's code. */
function rawStatus(server: TestServer, bytes: string): Promise<number> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(Buffer.from(bytes, 'latin1')));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

describe('oversized and binary tokens', () => {
  test('a 100 KB token in the query or the Bearer header: a 4xx (431 from Node), never a 5xx', async () => {
    const huge = `pk.${'A'.repeat(100 * 1024)}`;
    for (const response of [
      await verifyNginx(server, withToken('/styles/v1/a/b', huge)),
      await verifyNginx(server, '/styles/v1/a/b', { headers: { Authorization: `Bearer ${huge}` } }),
      await verify(server, {}, { path: withToken('/auth/verify/styles/v1/a/b', huge) }),
    ]) {
      assertClientError(response);
    }
    // Under the header limit, a long token is just malformed.
    assertInvalidToken(
      await verifyNginx(server, withToken('/styles/v1/a/b', 'x'.repeat(10_000))),
      'malformed',
    );
    assertAllowed(await verifyNginx(server, withToken('/styles/v1/a/b', styles.token)), pk(styles));
  });

  test('NUL bytes: malformed in a token, refused in a path, rejected by the parser in a raw header', async () => {
    for (const token of ['\0', `${styles.token}\0`, `\0${styles.token}`, styles.token.replace('.', '\0')]) {
      assertInvalidToken(await verifyNginx(server, withToken('/styles/v1/a/b', token)), 'malformed');
    }
    const nulPath = await verifyNginx(server, withToken('/styles/v1/a%00/b', both.token));
    assertRefused(nulPath, 403, 'scope');
    const status = await rawStatus(
      server,
      `GET /auth/verify HTTP/1.1\r\nHost: x\r\nX-Original-URI: /styles/v1/a\0?access_token=${styles.token}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(status, 400);
  });
});

describe('ambiguous credentials and headers (T09)', () => {
  test('access_token given twice: the same token is fine, two different ones are 400 (T09)', async () => {
    const twice = (first: string, second: string) =>
      verifyNginx(server, `/styles/v1/a/b?access_token=${first}&access_token=${second}`);
    assertAllowed(await twice(styles.token, styles.token), pk(styles));
    assertRefused(await twice(styles.token, 'garbage'), 400);
    assertRefused(await twice('garbage', styles.token), 400);
    assertRefused(await twice(fonts.token, styles.token), 400);
  });

  test('a query token and a different Bearer token: 400; the same token in both: fine', async () => {
    const uri = withToken('/styles/v1/a/b', styles.token);
    const conflict = await verifyNginx(server, uri, { headers: { Authorization: `Bearer ${fonts.token}` } });
    assertRefused(conflict, 400);
    const weaker = withToken('/styles/v1/a/b', fonts.token);
    const reversed = await verifyNginx(server, weaker, {
      headers: { Authorization: `Bearer ${styles.token}` },
    });
    assertRefused(reversed, 400);
    const same = await verifyNginx(server, uri, { headers: { Authorization: `Bearer ${styles.token}` } });
    assertAllowed(same, pk(styles));
    // A Bearer header with no token or extra parts is a malformed token, not a missing one.
    for (const header of ['Bearer', 'Bearer ', `Bearer ${styles.token} extra`, `Bearer ${styles.token},x`]) {
      const response = await verifyNginx(server, '/styles/v1/a/b', { headers: { Authorization: header } });
      assertInvalidToken(response, 'malformed');
    }
  });

  test('the same header twice is refused with 400', async () => {
    const uri = withToken('/styles/v1/a/b', styles.token);
    for (const headers of [
      { 'x-original-uri': [uri, withToken('/fonts/v1/a/b', fonts.token)] },
      { 'x-original-uri': [uri, uri] },
      { 'x-original-uri': uri, 'x-original-method': ['GET', 'DELETE'] },
      {
        'x-original-uri': '/styles/v1/a/b',
        authorization: [`Bearer ${styles.token}`, `Bearer ${fonts.token}`],
      },
      { 'x-forwarded-uri': [uri, uri] },
      {
        'x-original-uri': withToken('/styles/v1/a/b', restricted.token),
        origin: ['https://app.example.com', 'https://evil.com'],
      },
      {
        'x-original-uri': withToken('/styles/v1/a/b', restricted.token),
        referer: ['https://app.example.com/', 'https://evil.com/'],
      },
    ]) {
      const response = await rawRequest(server, { path: '/auth/verify', headers });
      assertRefused(response, 400);
    }
  });

  test('two gateway conventions that disagree are refused: a client cannot add its own X-Original-* behind Traefik', async () => {
    // Traefik and Caddy pass the client's headers on and set X-Forwarded-Uri/-Method themselves.
    const actual = withToken('/styles/v1/a/b', fonts.token);
    const claimed = withToken('/fonts/v1/a/b', fonts.token);
    const uriConflict = await verify(server, { 'X-Forwarded-Uri': actual, 'X-Original-URI': claimed });
    assertRefused(uriConflict, 400);
    const methodConflict = await verify(server, {
      'X-Forwarded-Uri': withToken('/styles/v1/a/b', styles.token),
      'X-Forwarded-Method': 'DELETE',
      'X-Original-Method': 'GET',
    });
    assertRefused(methodConflict, 400);
    // Envoy puts the original path in the auth URL: a header naming another one is a conflict.
    const envoy = await verify(
      server,
      { 'X-Original-URI': claimed },
      { path: withToken('/auth/verify/styles/v1/a/b', fonts.token) },
    );
    assertRefused(envoy, 400);
    // Both conventions naming the same request are fine.
    const agree = await verify(server, { 'X-Forwarded-Uri': actual, 'X-Original-URI': actual });
    assertRefused(agree, 403, 'scope');
    const agreeStyles = withToken('/styles/v1/a/b', styles.token);
    const agreed = await verify(server, { 'X-Forwarded-Uri': agreeStyles, 'X-Original-URI': agreeStyles });
    assertAllowed(agreed, pk(styles));
  });

  test('an X-Tessera-Scope header from the client does not replace the route map behind nginx, Traefik or Caddy', async () => {
    const uri = withToken('/styles/v1/a/b', fonts.token);
    for (const scope of ['fonts:read', '']) {
      const nginxStyle = await verifyNginx(server, uri, { headers: { 'X-Tessera-Scope': scope } });
      assertRefused(nginxStyle, 403, 'scope');
      const traefik = await verify(server, { 'X-Forwarded-Uri': uri, 'X-Tessera-Scope': scope });
      assertRefused(traefik, 403, 'scope');
    }
  });

  test('an original URI that cannot be parsed is a 400', async () => {
    for (const uri of ['http://[::1/styles', 'https://:80/x']) {
      assertRefused(await verifyNginx(server, uri), 400);
    }
  });

  test('a scope that is not a scope name is a 400 that does not repeat it (found by the fuzz campaign)', async () => {
    const uri = withToken('/styles/v1/mallory/streets', styles.token);
    for (const scope of [styles.token, '<img src=x onerror=alert(1)>', 'STYLES:READ', 'fonts']) {
      const nginxAnswer = await verifyNginx(server, uri, {
        authQuery: `?scope=${encodeURIComponent(scope)}`,
      });
      assertRefused(nginxAnswer, 400);
      assert.ok(!nginxAnswer.text.includes(scope), nginxAnswer.text);
      const envoyAnswer = await rawRequest(server, {
        path: `/auth/verify${uri}`,
        headers: { 'x-tessera-scope': scope },
      });
      assertRefused(envoyAnswer, 400);
      assert.ok(!envoyAnswer.text.includes(scope), envoyAnswer.text);
    }
    // An empty scope still means "no scope: the route map decides", as docs/gateways/nginx.md says.
    assertAllowed(await verifyNginx(server, uri, { authQuery: '?scope=' }), {
      username: 'mallory',
      usage: 'pk',
    });
  });
});

describe('path tricks: the scope is the one the upstream will serve', () => {
  // Whether and how an upstream resolves dot segments (`%2e` included) varies, and no client of a
  // real API sends them: the route map refuses them for every token.
  for (const path of [
    '/fonts/v1/../styles/v1/a/b',
    '/fonts/v1/../../styles/v1/a/b',
    '/fonts/v1/%2e%2e/%2e%2e/styles/v1/a/b',
    '/fonts/v1/%2E%2E/%2e./styles/v1/a/b',
    '/fonts/v1/./a/b',
    '/styles/v1/a/../../../fonts/v1/a/b',
    '/styles/v1/a/%2e%2e/%2e%2e/%2e%2e/fonts/v1/a/b/c',
    '/fonts/v1/a/..',
  ]) {
    test(`${path} is refused for every token`, async () => {
      for (const token of [fonts, styles, both]) {
        assertRefused(await verifyNginx(server, withToken(path, token.token)), 403, 'scope');
      }
    });
  }

  test('paths a server might read differently are refused for every token (403)', async () => {
    for (const path of [
      '/fonts/v1/..%2f..%2fstyles/v1/a/b',
      '/fonts/v1/..%2F..%2Fstyles/v1/a/b',
      '/fonts/v1%2f..%2f..%2fstyles/v1/a/b',
      '/fonts/v1/..%5c..%5cstyles/v1/a/b',
      '/fonts/v1/..\\..\\styles/v1/a/b',
      '//styles/v1/a/b',
      // Empty segments: nginx (merge_slashes) reads this as /styles/v1/a/b, a URL parser does not.
      '/fonts/v1///../../styles/v1/a/b',
      '/styles/v1/a//b/tiles/1/2/3',
      // Path parameters: Tomcat and others read `..;` as `..`.
      '/fonts/v1/a/..;/..;/..;/styles/v1/a/b',
      '/fonts/v1/a/%2e%2e;x/%2e%2e;/..;/styles/v1/a/b',
      // A URL parser drops tabs and ends the path at `#`; a server may not.
      '/styles/v1/a/.\t./.\t./.\t./fonts/v1/a/b',
      '/fonts/v1/a#/../../../styles/v1/a/b',
      'styles/v1/a/b',
      'http://upstream.example.com/fonts/v1/a/b',
    ]) {
      const bearer = { Authorization: `Bearer ${both.token}` };
      assertRefused(await verifyNginx(server, path, { headers: bearer }), 403, 'scope');
    }
  });

  test('Envoy: the path is taken as sent, not pre-normalised by the auth URL', async () => {
    const asSent = (path: string, token: CreatedToken) =>
      rawRequest(server, { path: withToken(`/auth/verify${path}`, token.token) });
    assertAllowed(await asSent('/styles/v1/a/b', styles), pk(styles));
    assertRefused(await asSent('/fonts/v1/../../styles/v1/a/b', styles), 403, 'scope');
    assertRefused(await asSent('/fonts/v1/../../styles/v1/a/b', fonts), 403, 'scope');
    assertRefused(await asSent('/fonts/v1///../../styles/v1/a/b', fonts), 403, 'scope');
    assertRefused(await asSent('/fonts/v1/..%2f..%2fstyles/v1/a/b', both), 403, 'scope');
  });

  test('HEAD: same decisions, no body', async () => {
    const head = (uri: string, path = '/auth/verify') =>
      verify(server, { 'X-Original-URI': uri, 'X-Original-Method': 'HEAD' }, { path, method: 'HEAD' });
    const allowed = await head(withToken('/styles/v1/a/b', styles.token));
    assertAllowed(allowed, pk(styles));
    const refused = await head(withToken('/styles/v1/a/b', fonts.token));
    assert.equal(refused.status, 403);
    assert.equal(refused.text, '');
    assert.equal(refused.headers.get('x-tessera-reason'), 'scope');
    const missing = await head('/styles/v1/a/b');
    assert.equal(missing.status, 401);
    assert.equal(missing.text, '');
    const envoy = await verify(
      server,
      {},
      { path: withToken('/auth/verify/styles/v1/a/b', styles.token), method: 'HEAD' },
    );
    assertAllowed(envoy, pk(styles));
  });
});

describe('random gateway requests (fast-check, seeded)', () => {
  /** Latin-1 text a header can carry (Node refuses to send anything else). */
  const text = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          '..',
          '%2e',
          '%2f',
          '%00',
          '%',
          '//',
          '\\',
          ';',
          '#',
          '?',
          '&',
          '=',
          ' ',
          '\t',
          '\u00ff',
        ),
        fc.string({ maxLength: 6 }),
        fc.string({ unit: 'binary-ascii', maxLength: 6 }),
      ),
      { maxLength: 4 },
    )
    .map((parts) => parts.join('').replace(/[^\t\x20-\x7e\u00a0-\u00ff]/g, ''));
  const path = fc
    .array(
      fc.oneof(
        {
          weight: 4,
          arbitrary: fc.constantFrom('/styles/v1/a/b', '/fonts/v1/a', '/v4/m/1/2/3', '/geocoding/v5/p'),
        },
        fc.constantFrom('/..', '/%2e%2e', '/.', '/%2F', '//', '/x', '/..;', '/tiles/1'),
        text,
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((parts) => `/${parts.join('').replace(/^\/+/, '')}`);

  test('never a 5xx, and every refusal carries a JSON message', async (t) => {
    const tokens = [styles.token, fonts.token, both.token, restricted.token];
    const token = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...tokens) },
      fc.tuple(fc.constantFrom(...tokens), text).map(([valid, noise]) => valid + noise),
      fc.tuple(fc.constantFrom(...tokens), fc.nat(120)).map(([valid, cut]) => valid.slice(0, cut)),
      text,
    );
    const source = fc.option(
      fc.oneof(fc.constantFrom('https://app.example.com', 'https://evil.com', 'null'), text),
    );
    const names = [
      'x-original-uri',
      'x-forwarded-uri',
      'x-original-method',
      'x-tessera-scope',
      'authorization',
    ];
    const request = fc.record({
      convention: fc.constantFrom('nginx', 'traefik', 'envoy'),
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'get', ''),
      path,
      token: fc.option(token),
      placement: fc.constantFrom('query', 'bearer', 'both'),
      origin: source,
      referer: source,
      authQuery: fc.constantFrom('', '?scope=styles:read', '?scope=', '?rate_limit_status=403'),
      extra: fc.dictionary(fc.constantFrom(...names), text, { maxKeys: 2 }),
    });
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const inQuery = r.token !== null && r.placement !== 'bearer';
        const uri = inQuery ? `${r.path}?access_token=${r.token}` : r.path;
        const headers: Record<string, string> = {};
        if (r.token !== null && r.placement !== 'query') headers['authorization'] = `Bearer ${r.token}`;
        if (r.origin !== null) headers['origin'] = r.origin;
        if (r.referer !== null) headers['referer'] = r.referer;
        let authPath = `/auth/verify${r.authQuery}`;
        let method = 'GET';
        if (r.convention === 'nginx') Object.assign(headers, nginxHeaders(uri, r.method));
        else if (r.convention === 'traefik') Object.assign(headers, traefikHeaders(uri, r.method));
        else {
          authPath = `/auth/verify${uri.replace(/[^\x21-\x7e]/g, encodeURIComponent)}`;
          method = r.method.toUpperCase() || 'GET';
        }
        Object.assign(headers, r.extra);
        const response = await rawRequest(server, { path: authPath, method, headers });
        seen.add(response.status);
        const what = JSON.stringify({ authPath, method, headers });
        assert.ok(response.status < 500, `${response.status} for ${what}`);
        if (response.status !== 200 && method !== 'HEAD') {
          const message = (response.body as { message?: unknown } | undefined)?.message;
          assert.equal(typeof message, 'string', `a JSON message for ${what}`);
        }
      }),
      { seed: 20240611, numRuns: 400 },
    );
    t.diagnostic(`statuses seen: ${[...seen].sort().join(', ')}`);
    // The inputs reach every kind of answer, not only the parser's 400.
    for (const status of [200, 400, 401, 403]) assert.ok(seen.has(status), `no ${status} among ${[...seen]}`);
  });
});

function nginxHeaders(uri: string, method: string): Record<string, string> {
  return method ? { 'x-original-uri': uri, 'x-original-method': method } : { 'x-original-uri': uri };
}

function traefikHeaders(uri: string, method: string): Record<string, string> {
  return {
    'x-forwarded-uri': uri,
    'x-forwarded-method': method || 'GET',
    'x-forwarded-host': 'tiles.example.com',
    'x-forwarded-proto': 'https',
  };
}

import { after, before, describe, test } from 'node:test';
import type { ApiResponse } from './helpers/api.ts';
import {
  assertAllowed,
  assertRefused,
  type CreatedToken,
  createApiToken,
  startForwardAuthServer,
  verify,
  verifyNginx,
  withToken,
} from './helpers/forward-auth.ts';
import { createTestAccount, type TestServer } from './helpers/server.ts';

// URL restrictions (allowedUrls) as a gateway sees them: Origin first, Referer as a fallback.

const STYLE = '/styles/v1/erin/streets';
let server: TestServer;
let restricted: CreatedToken;
let wildcard: CreatedToken;
let open: CreatedToken;

before(async () => {
  server = await startForwardAuthServer();
  const owner = await createTestAccount(server.services, 'erin', [
    'tokens:read',
    'tokens:write',
    'styles:read',
  ]);
  const create = (json: Readonly<Record<string, unknown>>) =>
    createApiToken(server, 'erin', owner.adminToken, json);
  restricted = await create({ scopes: ['styles:read'], allowedUrls: ['https://app.example.com'] });
  wildcard = await create({ scopes: ['styles:read'], allowedUrls: ['*.example.org'] });
  open = await create({ scopes: ['styles:read'] });
});
after(() => server.close());

function from(token: CreatedToken, headers: Readonly<Record<string, string>>): Promise<ApiResponse> {
  return verifyNginx(server, withToken(STYLE, token.token), { headers });
}

function pk(token: CreatedToken) {
  return { username: 'erin', tokenId: token.id, usage: 'pk' } as const;
}

const LOOKALIKES = [
  'https://app.example.com.evil.com',
  'https://evil.com/?https://app.example.com',
  'https://evil.com/https://app.example.com',
  'https://evil.com/#https://app.example.com',
  'https://app.example.com@evil.com',
  'https://app.example.com:443@evil.com',
  'https://evilapp.example.com',
  'https://api.example.com',
  'https://example.com',
  'https://app.example.co',
  'https://app-example.com',
  'http://app.example.com',
  'wss://app.example.com',
] as const;

describe('a pk restricted to https://app.example.com', () => {
  test('is allowed with that Origin, or a Referer on that origin (host case-insensitive)', async () => {
    for (const headers of [
      { Origin: 'https://app.example.com' },
      { Origin: 'https://APP.Example.COM' },
      { Origin: 'https://app.example.com:443' },
      { Referer: 'https://app.example.com/' },
      { Referer: 'https://app.example.com/maps/index.html?city=paris#z=3' },
      { Origin: 'https://app.example.com', Referer: 'https://app.example.com/maps/' },
    ]) {
      assertAllowed(await from(restricted, headers), pk(restricted));
    }
  });

  test('is refused (403 url) from any other origin, and with neither header', async () => {
    assertRefused(await from(restricted, { Origin: 'https://evil.com' }), 403, 'url');
    assertRefused(await from(restricted, { Referer: 'https://evil.com/page' }), 403, 'url');
    assertRefused(await from(restricted, {}), 403, 'url');
    // The Origin decides: a Referer on the allowed site does not launder another Origin.
    const mixed = { Origin: 'https://evil.com', Referer: 'https://app.example.com/' };
    assertRefused(await from(restricted, mixed), 403, 'url');
  });

  for (const lookalike of LOOKALIKES) {
    test(`refuses the lookalike ${lookalike} as Origin and as Referer`, async () => {
      assertRefused(await from(restricted, { Origin: lookalike }), 403, 'url');
      assertRefused(await from(restricted, { Referer: lookalike }), 403, 'url');
    });
  }

  test('refuses Origin: null and Origin/Referer values that are not URLs, never with a 5xx', async () => {
    for (const value of [
      'null',
      'not a url',
      'app.example.com',
      '//app.example.com',
      'https://',
      'http://[::1',
      'https://app.example.com:99999',
      'https://%zz',
      'javascript:alert(1)',
      'data:text/html,https://app.example.com',
      'file:///etc/passwd',
      '\u00e9\u00e8',
    ]) {
      assertRefused(await from(restricted, { Origin: value }), 403, 'url');
      assertRefused(await from(restricted, { Referer: value }), 403, 'url');
      // The same headers mean nothing to a token without restrictions.
      assertAllowed(await from(open, { Origin: value, Referer: value }), pk(open));
    }
  });

  test('is enforced the same way with the Traefik/Caddy and Envoy conventions', async () => {
    const traefik = (headers: Readonly<Record<string, string>>) =>
      verify(server, { 'X-Forwarded-Uri': withToken(STYLE, restricted.token), ...headers });
    assertAllowed(await traefik({ Origin: 'https://app.example.com' }), pk(restricted));
    assertRefused(await traefik({ Origin: 'https://app.example.com.evil.com' }), 403, 'url');
    const path = withToken(`/auth/verify${STYLE}`, restricted.token);
    assertAllowed(await verify(server, { Referer: 'https://app.example.com/x' }, { path }), pk(restricted));
    assertRefused(await verify(server, { Referer: 'https://evil.com/x' }, { path }), 403, 'url');
  });
});

describe('other restrictions', () => {
  test('*.example.org admits its subdomains and nothing else', async () => {
    assertAllowed(await from(wildcard, { Origin: 'https://maps.example.org' }), pk(wildcard));
    assertAllowed(await from(wildcard, { Origin: 'http://a.b.example.org' }), pk(wildcard));
    for (const origin of ['https://evilexample.org', 'https://example.org.evil.com', 'https://example.com']) {
      assertRefused(await from(wildcard, { Origin: origin }), 403, 'url');
    }
  });

  test('an unrestricted pk works with no Origin or Referer, and from anywhere', async () => {
    assertAllowed(await from(open, {}), pk(open));
    assertAllowed(await from(open, { Origin: 'https://anywhere.example.net' }), pk(open));
  });

  test('T32: a forged Referer from a non-browser client is accepted; restrictions are not authentication', async () => {
    // What `curl -H 'Referer: https://app.example.com/' ...` sends. Nothing can tell it from a
    // browser, which is why docs/url-restrictions.md says a restricted pk is still public.
    const curl = { 'User-Agent': 'curl/8.5.0', Accept: '*/*', Referer: 'https://app.example.com/' };
    assertAllowed(await from(restricted, curl), pk(restricted));
  });
});

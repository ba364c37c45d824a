import assert from 'node:assert/strict';
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
import { createTestAccount, type TestAccount, type TestServer } from './helpers/server.ts';

// Black-box: the real server, asked the way nginx, Traefik, Caddy and Envoy ask it.

const SCOPES = ['styles:read', 'fonts:read', 'styles:tiles', 'styles:write'] as const;
type Scope = (typeof SCOPES)[number];

let server: TestServer;
let owner: TestAccount;
/** One token per scope, holding that scope alone (styles:write is secret, so that one is an sk). */
const only = {} as Record<Scope, CreatedToken>;

before(async () => {
  server = await startForwardAuthServer();
  owner = await createTestAccount(server.services, 'alice', [
    'tokens:read',
    'tokens:write',
    'scopes:list',
    ...SCOPES,
  ]);
  for (const scope of SCOPES) {
    only[scope] = await createApiToken(server, 'alice', owner.adminToken, { note: scope, scopes: [scope] });
  }
});
after(() => server.close());

function identity(token: CreatedToken) {
  return { username: 'alice', tokenId: token.id, usage: token.usage as 'pk' | 'sk' };
}

describe('gateway conventions', () => {
  test('nginx auth_request: X-Original-URI carries path and token, X-Original-Method the method', async () => {
    const uri = withToken('/styles/v1/alice/streets', only['styles:read'].token);
    assertAllowed(await verifyNginx(server, uri), identity(only['styles:read']));
    assertAllowed(await verifyNginx(server, uri, { method: 'HEAD' }), identity(only['styles:read']));
    // The same token asking to change the style needs styles:write.
    assertRefused(await verifyNginx(server, uri, { method: 'PATCH' }), 403, 'scope');
    const write = withToken('/styles/v1/alice/streets', only['styles:write'].token);
    assertAllowed(await verifyNginx(server, write, { method: 'PATCH' }), identity(only['styles:write']));
  });

  test('Traefik ForwardAuth and Caddy forward_auth: X-Forwarded-Uri, -Method, -Host and -Proto', async () => {
    const forwarded = (uri: string, method: string) => ({
      'X-Forwarded-Uri': uri,
      'X-Forwarded-Method': method,
      'X-Forwarded-Host': 'tiles.example.com',
      'X-Forwarded-Proto': 'https',
    });
    const fonts = withToken('/fonts/v1/alice/Open%20Sans/0-255.pbf', only['fonts:read'].token);
    assertAllowed(await verify(server, forwarded(fonts, 'GET')), identity(only['fonts:read']));
    assertRefused(await verify(server, forwarded(fonts, 'DELETE')), 403, 'scope');
    const styles = withToken('/styles/v1/alice/streets', only['fonts:read'].token);
    assertRefused(await verify(server, forwarded(styles, 'GET')), 403, 'scope');
  });

  test('Envoy ext_authz (HTTP mode): the original path and query appended to /auth/verify, the original method', async () => {
    const path = withToken('/auth/verify/styles/v1/alice/streets', only['styles:read'].token);
    assertAllowed(await verify(server, {}, { path }), identity(only['styles:read']));
    assertRefused(await verify(server, {}, { path, method: 'POST' }), 403, 'scope');
    const write = withToken('/auth/verify/styles/v1/alice/streets', only['styles:write'].token);
    assertAllowed(await verify(server, {}, { path: write, method: 'POST' }), identity(only['styles:write']));
  });

  test('Envoy: the scope comes from an X-Tessera-Scope header the proxy adds, never from the client query', async () => {
    const fonts = only['fonts:read'].token;
    const path = withToken('/auth/verify/custom/api/items', fonts);
    assertAllowed(
      await verify(server, { 'X-Tessera-Scope': 'fonts:read' }, { path }),
      identity(only['fonts:read']),
    );
    const refused = await verify(server, { 'X-Tessera-Scope': 'styles:read' }, { path });
    assertRefused(refused, 403, 'scope');
    // On Envoy the query belongs to the client's request: a `scope` there is not the operator's.
    const clientScope = withToken('/auth/verify/custom/api/items?scope=fonts:read', fonts);
    assertRefused(await verify(server, {}, { path: clientScope }), 403, 'scope');
  });

  test('the token may come as Authorization: Bearer instead of access_token, with every convention', async () => {
    const token = only['styles:read'].token;
    const bearer = { Authorization: `Bearer ${token}` };
    const expected = identity(only['styles:read']);
    assertAllowed(await verifyNginx(server, '/styles/v1/alice/streets', { headers: bearer }), expected);
    assertAllowed(
      await verify(server, { 'X-Forwarded-Uri': '/styles/v1/alice/streets', ...bearer }),
      expected,
    );
    assertAllowed(await verify(server, bearer, { path: '/auth/verify/styles/v1/alice/streets' }), expected);
    // The scheme name is case-insensitive (RFC 9110); other schemes do not carry a token.
    const lower = { Authorization: `bearer ${token}` };
    assertAllowed(await verifyNginx(server, '/styles/v1/alice/streets', { headers: lower }), expected);
    const basic = { Authorization: `Basic ${Buffer.from(`alice:${token}`).toString('base64')}` };
    assertRefused(await verifyNginx(server, '/styles/v1/alice/streets', { headers: basic }), 401, 'missing');
  });
});

describe('required scope', () => {
  test('?scope= on the auth URL decides, whatever the path', async () => {
    const fonts = only['fonts:read'];
    const anyPath = withToken('/my/own/api', fonts.token);
    assertAllowed(await verifyNginx(server, anyPath, { authQuery: '?scope=fonts:read' }), identity(fonts));
    const refused = await verifyNginx(server, anyPath, { authQuery: '?scope=styles:read' });
    assertRefused(refused, 403, 'scope');
    assert.equal(
      refused.headers.get('www-authenticate'),
      'Bearer realm="tessera", error="insufficient_scope"',
    );
    assert.deepEqual(refused.body, { message: 'This request requires a token with styles:read scope' });
    // The auth URL's scope wins over the route map.
    const styles = withToken('/styles/v1/alice/streets', fonts.token);
    assertAllowed(await verifyNginx(server, styles, { authQuery: '?scope=fonts:read' }), identity(fonts));
  });

  const DEFAULT_MAP: readonly {
    readonly path: string;
    readonly method: string;
    readonly scope: Scope | null;
    readonly service: string;
  }[] = [
    { path: '/styles/v1/alice/streets', method: 'GET', scope: 'styles:read', service: 'styles' },
    { path: '/styles/v1/alice/streets/sprite.json', method: 'HEAD', scope: 'styles:read', service: 'styles' },
    { path: '/styles/v1/alice', method: 'POST', scope: 'styles:write', service: 'styles' },
    { path: '/styles/v1/alice/streets', method: 'PATCH', scope: 'styles:write', service: 'styles' },
    { path: '/styles/v1/alice/streets', method: 'DELETE', scope: 'styles:write', service: 'styles' },
    { path: '/fonts/v1/alice/Roboto/0-255.pbf', method: 'GET', scope: 'fonts:read', service: 'fonts' },
    {
      path: '/styles/v1/alice/streets/tiles/256/3/4/2@2x',
      method: 'GET',
      scope: 'styles:tiles',
      service: 'tiles',
    },
    { path: '/v4/mapbox.satellite/1/0/0.png', method: 'GET', scope: 'styles:tiles', service: 'tiles' },
    { path: '/geocoding/v5/mapbox.places/paris.json', method: 'GET', scope: null, service: 'geocode' },
  ];

  for (const route of DEFAULT_MAP) {
    const needs = route.scope ?? 'any valid token';
    test(`default route map: ${route.method} ${route.path} needs ${needs}`, async () => {
      for (const scope of SCOPES) {
        const token = only[scope];
        const response = await verifyNginx(server, withToken(route.path, token.token), {
          method: route.method,
        });
        if (route.scope === null || route.scope === scope) {
          assertAllowed(response, identity(token));
          assert.equal(response.headers.get('x-tessera-service'), route.service);
        } else {
          assertRefused(response, 403, 'scope');
          assert.deepEqual(response.body, {
            message: `This request requires a token with ${route.scope} scope`,
          });
        }
      }
    });
  }

  test('a path no route covers is refused (403) even for a valid token, and 401 without one', async () => {
    for (const path of ['/admin/v1/users', '/', '/styles/v2/alice/streets', '/STYLES/v1/alice/streets']) {
      const response = await verifyNginx(server, withToken(path, only['styles:read'].token));
      assertRefused(response, 403, 'scope');
      assertRefused(await verifyNginx(server, path), 401, 'missing');
    }
    // No original URI at all: nothing to look up in the route map.
    const bearer = { Authorization: `Bearer ${only['styles:read'].token}` };
    assertRefused(await verify(server, bearer), 403, 'scope');
  });
});

describe('a route map from TESSERA_CONFIG', () => {
  let custom: TestServer;
  let account: TestAccount;
  let tiles: CreatedToken;
  let fonts: CreatedToken;

  before(async () => {
    custom = await startForwardAuthServer({
      config: {
        routes: [
          { pattern: '/maps/*/tiles/', scope: 'styles:tiles', service: 'maps' },
          { pattern: '/maps/', methods: ['GET'], scope: 'fonts:read', service: 'maps' },
          { pattern: '/open/', scope: null, service: 'open' },
        ],
      },
    });
    account = await createTestAccount(custom.services, 'bob', [
      'tokens:read',
      'tokens:write',
      'styles:tiles',
      'fonts:read',
    ]);
    tiles = await createApiToken(custom, 'bob', account.adminToken, { scopes: ['styles:tiles'] });
    fonts = await createApiToken(custom, 'bob', account.adminToken, { scopes: ['fonts:read'] });
  });
  after(() => custom.close());

  async function decide(path: string, token: CreatedToken, method = 'GET'): Promise<ApiResponse> {
    return verifyNginx(custom, withToken(path, token.token), { method });
  }

  test('replaces the defaults: its routes decide, the Mapbox paths are no longer covered', async () => {
    const tilesId = { username: 'bob', tokenId: tiles.id, usage: 'pk' } as const;
    const fontsId = { username: 'bob', tokenId: fonts.id, usage: 'pk' } as const;
    const tile = await decide('/maps/world/tiles/1/2/3.pbf', tiles);
    assertAllowed(tile, tilesId);
    assert.equal(tile.headers.get('x-tessera-service'), 'maps');
    assertRefused(await decide('/maps/world/tiles/1/2/3.pbf', fonts), 403, 'scope');
    assertAllowed(await decide('/maps/world/style.json', fonts), fontsId);
    // The second route names GET only: a POST under /maps/ matches no route at all.
    assertRefused(await decide('/maps/world/style.json', fonts, 'POST'), 403, 'scope');
    assertAllowed(await decide('/open/anything', tiles), tilesId);
    assertAllowed(await decide('/open/anything', fonts, 'DELETE'), fontsId);
    for (const token of [tiles, fonts]) {
      assertRefused(await decide('/styles/v1/bob/streets', token), 403, 'scope');
      assertRefused(await decide('/fonts/v1/bob/Roboto/0-255.pbf', token), 403, 'scope');
      assertRefused(await decide('/geocoding/v5/mapbox.places/x.json', token), 403, 'scope');
    }
  });
});

describe('an empty scope', () => {
  test('is no scope: the route map decides, it never admits any valid token', async () => {
    const fonts = only['fonts:read'];
    const upload = withToken('/uploads/v1/alice', fonts.token);
    assertRefused(await verifyNginx(server, upload, { authQuery: '?scope=', method: 'POST' }), 403, 'scope');
    const font = withToken('/fonts/v1/alice/Arial/0-255.pbf', fonts.token);
    assertAllowed(await verifyNginx(server, font, { authQuery: '?scope=' }), identity(fonts));
  });
});

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { createToken, tokensOf } from './helpers/api.ts';
import { createTestAccount, startTestServer, type TestAccount, type TestServer } from './helpers/server.ts';

// The SDK is CommonJS without type declarations: load it with require and describe what we use.
interface MapiResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string | undefined>>;
  hasNextPage(): boolean;
}

interface MapiError {
  readonly statusCode: number;
  readonly body: unknown;
  readonly message: string;
}

interface MapiRequest {
  send(): Promise<MapiResponse>;
  eachPage(
    callback: (error: MapiError | null, response: MapiResponse | null, next: () => void) => void,
  ): void;
}

interface TokensService {
  listTokens(): MapiRequest;
  createToken(config?: Readonly<Record<string, unknown>>): MapiRequest;
  createTemporaryToken(config: { readonly expires: Date | string; readonly scopes: string[] }): MapiRequest;
  updateToken(config: Readonly<Record<string, unknown>>): MapiRequest;
  deleteToken(config: { readonly tokenId: string }): MapiRequest;
  getToken(): MapiRequest;
  listScopes(): MapiRequest;
}

interface ParsedMapboxToken {
  readonly usage: string;
  readonly user: string | undefined;
  readonly authorization?: string;
  readonly expires?: number;
  readonly created?: number;
  readonly scopes?: string[];
  readonly client?: string;
}

interface Metadata {
  readonly id: string;
  readonly usage: string;
  readonly default: boolean;
  readonly note: string;
  readonly scopes: string[];
  readonly modified: string;
  readonly allowedUrls?: string[];
  readonly allowedApplications?: unknown;
  readonly resources?: string[];
  readonly token?: string;
}

const require = createRequire(import.meta.url);
const mbxTokens = require('@mapbox/mapbox-sdk/services/tokens') as (config: {
  readonly accessToken: string;
  readonly origin: string;
}) => TokensService;
const parseMapboxToken = require('@mapbox/parse-mapbox-token') as (token: string) => ParsedMapboxToken;

const ALL_SCOPES = [
  'tokens:read',
  'tokens:write',
  'scopes:list',
  'styles:read',
  'fonts:read',
  'styles:write',
];

let server: TestServer;
let account: TestAccount;
let sdk: TokensService;

before(async () => {
  server = await startTestServer();
  account = await createTestAccount(server.services, 'sdkuser', ALL_SCOPES);
  sdk = mbxTokens({ accessToken: account.adminToken, origin: server.url });
});
after(() => server.close());

/** Every token the server issues must be read by the SDK's own parser as ours, in three segments. */
function assertParses(token: string, expected: Partial<ParsedMapboxToken>): ParsedMapboxToken {
  assert.equal(token.split('.').length, 3, `${token} has three segments`);
  const parsed = parseMapboxToken(token);
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(parsed[key as keyof ParsedMapboxToken], value, key);
  }
  return parsed;
}

async function rejection(request: MapiRequest): Promise<MapiError> {
  try {
    await request.send();
  } catch (error) {
    return error as MapiError;
  }
  assert.fail('the request should have been rejected');
}

test('the issued tokens parse with @mapbox/parse-mapbox-token', () => {
  assertParses(account.defaultToken, { usage: 'pk', user: 'sdkuser' });
  assertParses(account.adminToken, { usage: 'sk', user: 'sdkuser', authorization: account.adminTokenId });
});

test('createToken makes a pk from public scopes and an sk from secret ones', async () => {
  const pk = await sdk
    .createToken({
      note: 'website',
      scopes: ['styles:read', 'fonts:read'],
      allowedUrls: ['https://maps.example.com'],
      allowedApplications: [{ platform: 'iOS', bundleId: 'com.example.foo' }],
      resources: ['style-one'],
    })
    .send();
  assert.equal(pk.statusCode, 200);
  const pkBody = pk.body as Metadata;
  assert.equal(pkBody.usage, 'pk');
  assert.equal(pkBody.default, false);
  assert.deepEqual(pkBody.scopes, ['styles:read', 'fonts:read']);
  assert.deepEqual(pkBody.allowedUrls, ['https://maps.example.com']);
  assert.deepEqual(pkBody.allowedApplications, [{ platform: 'iOS', bundleId: 'com.example.foo' }]);
  assert.deepEqual(pkBody.resources, ['style-one']);
  assertParses(pkBody.token ?? '', { usage: 'pk', user: 'sdkuser', authorization: pkBody.id });

  const sk = await sdk.createToken({ note: 'backend', scopes: ['styles:write'] }).send();
  const skBody = sk.body as Metadata;
  assert.equal(skBody.usage, 'sk');
  assertParses(skBody.token ?? '', { usage: 'sk', user: 'sdkuser', authorization: skBody.id });
});

test('createToken with no configuration makes a scope-less pk', async () => {
  const response = await sdk.createToken().send();
  const body = response.body as Metadata;
  assert.equal(body.usage, 'pk');
  assert.deepEqual(body.scopes, []);
});

test('createTemporaryToken returns a tk that the SDK can use in turn', async () => {
  const expires = new Date(Date.now() + 30 * 60_000);
  const response = await sdk.createTemporaryToken({ expires, scopes: ['tokens:read', 'styles:read'] }).send();
  const body = response.body as { token: string; issued_at: string; expires: string; expires_in: number };
  assert.equal(response.statusCode, 200);
  const parsed = assertParses(body.token, {
    usage: 'tk',
    user: 'sdkuser',
    scopes: ['tokens:read', 'styles:read'],
    client: 'api',
  });
  assert.equal(parsed.expires, Math.floor(expires.getTime() / 1000) * 1000);
  assert.equal(body.expires, new Date(parsed.expires ?? 0).toISOString());
  assert.equal(body.expires_in, (Date.parse(body.expires) - Date.parse(body.issued_at)) / 1000);

  const temporary = mbxTokens({ accessToken: body.token, origin: server.url });
  const retrieved = await temporary.getToken().send();
  assert.equal((retrieved.body as { code: string }).code, 'TokenValid');
  const listed = await temporary.listTokens().send();
  assert.ok(Array.isArray(listed.body));
});

test('updateToken changes fields, and null clears allowedUrls', async () => {
  const created = (
    await sdk.createToken({ note: 'before', scopes: ['styles:read'], allowedUrls: ['example.com'] }).send()
  ).body as Metadata;
  const renamed = (
    await sdk.updateToken({ tokenId: created.id, note: 'after', scopes: ['fonts:read'] }).send()
  ).body as Metadata;
  assert.equal(renamed.note, 'after');
  assert.deepEqual(renamed.scopes, ['fonts:read']);
  assert.deepEqual(renamed.allowedUrls, ['example.com']);
  assert.ok(renamed.modified > created.modified);

  const cleared = (await sdk.updateToken({ tokenId: created.id, allowedUrls: null }).send()).body as Metadata;
  assert.equal('allowedUrls' in cleared, false);
  assert.equal(cleared.note, 'after');

  const unchanged = (await sdk.updateToken({ tokenId: created.id }).send()).body as Metadata;
  assert.deepEqual({ ...unchanged, modified: cleared.modified }, cleared);
});

test('deleteToken answers 204, which the SDK reads as {}', async () => {
  const created = (await sdk.createToken({ scopes: ['styles:read'] }).send()).body as Metadata;
  const response = await sdk.deleteToken({ tokenId: created.id }).send();
  assert.equal(response.statusCode, 204);
  assert.deepEqual(response.body, {});
  const again = await rejection(sdk.deleteToken({ tokenId: created.id }));
  assert.equal(again.statusCode, 404);
  assert.equal(again.message, 'Not found');
});

test('getToken reports the code and the parsed token', async () => {
  const response = await sdk.getToken().send();
  assert.deepEqual(response.body, {
    code: 'TokenValid',
    token: { usage: 'sk', user: 'sdkuser', authorization: account.adminTokenId },
  });
});

test('listScopes lists every scope, public ones marked', async () => {
  const response = await sdk.listScopes().send();
  const scopes = response.body as Array<{ id: string; description: string; public?: boolean }>;
  const byId = new Map(scopes.map((scope) => [scope.id, scope]));
  assert.equal(byId.get('styles:read')?.public, true);
  assert.equal(byId.get('tokens:write')?.public, undefined);
  assert.ok(scopes.every((scope) => typeof scope.description === 'string' && scope.description.length > 0));
});

test('errors reject with the status and the Mapbox message', async () => {
  const error = await rejection(sdk.createToken({ scopes: ['uploads:write'] }));
  assert.equal(error.statusCode, 422);
  assert.equal(error.message, 'scopes are invalid');
  assert.deepEqual(error.body, { message: 'scopes are invalid' });

  const publicSdk = mbxTokens({ accessToken: account.defaultToken, origin: server.url });
  const notFound = await rejection(publicSdk.listTokens());
  assert.equal(notFound.statusCode, 404);
  assert.equal(notFound.message, 'Not found');
});

test('listTokens walks every page with eachPage, over absolute Links without the token', async () => {
  const pager = await startTestServer();
  try {
    const owner = await createTestAccount(pager.services, 'pager');
    for (let index = 0; index < 120; index++) {
      await createToken(pager, 'pager', { scopes: ['styles:read'], note: `token ${index}` });
    }
    const expected = (await tokensOf(pager, 'pager')).map((token) => token.id);
    assert.equal(expected.length, 122);

    const client = mbxTokens({ accessToken: owner.adminToken, origin: pager.url });
    const pages: Metadata[][] = [];
    const links: string[] = [];
    await new Promise<void>((resolve, reject) => {
      client.listTokens().eachPage((error, response, next) => {
        if (error || !response) return reject(error);
        pages.push(response.body as Metadata[]);
        if (response.headers.link) links.push(response.headers.link);
        if (!response.hasNextPage()) return resolve();
        next();
      });
    });
    assert.deepEqual(
      pages.map((page) => page.length),
      [100, 22],
    );
    const seen = pages.flat().map((token) => token.id);
    assert.equal(new Set(seen).size, seen.length, 'no token is listed twice');
    assert.deepEqual(new Set(seen), new Set(expected));
    for (const token of pages.flat()) {
      if (token.usage === 'pk')
        assertParses(token.token ?? '', { usage: 'pk', user: 'pager', authorization: token.id });
      else assert.equal(token.token, undefined, 'an sk is never listed with its token');
    }
    assert.equal(links.length, 1);
    const next = /^<([^>]+)>; rel="next"$/.exec(links[0] ?? '')?.[1] ?? '';
    assert.ok(next.startsWith(`${pager.url}/tokens/v2/pager?`), next);
    assert.equal(new URL(next).searchParams.has('access_token'), false);
  } finally {
    await pager.close();
  }
});

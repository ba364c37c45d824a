import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { ERRORS } from '../src/core/errors.ts';
import { createApp } from '../src/http/app.ts';
import { openApiDocument } from '../src/http/openapi.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { createTestAccount, startTestServer, type TestServer } from './helpers/server.ts';

interface MediaType {
  readonly schema?: Record<string, unknown>;
  readonly examples?: Record<string, { readonly value: unknown }>;
}

interface Response {
  readonly headers?: Record<string, unknown>;
  readonly content?: Record<string, MediaType>;
}

interface Operation {
  readonly responses: Record<string, Response>;
}

interface Document {
  readonly openapi: string;
  readonly servers: ReadonlyArray<{ readonly url: string }>;
  readonly paths: Record<string, Record<string, Operation>>;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const ERROR_REF = '#/components/schemas/Error';

/**
 * Forward-auth is answered on plain node:http before a request reaches the Hono app (see
 * src/http/server.ts: the hot path skips the framework), so `app.routes` cannot list it. It answers
 * any method, on `/auth/verify` and, for Envoy, on `/auth/verify/<original path>`.
 */
const FORWARD_AUTH_PATHS = ['/auth/verify', '/auth/verify/{originalPath}'];
const OUTSIDE_HONO = FORWARD_AUTH_PATHS.flatMap((path) =>
  HTTP_METHODS.map((method) => `${method.toUpperCase()} ${path}`),
);

let server: TestServer;
let document: Document;

before(async () => {
  server = await startTestServer();
  document = openApiDocument(server.url) as Document;
});
after(() => server.close());

/** The dashboard's HTML pages and assets: documented in docs/dashboard.md, not in the API's OpenAPI. */
const DASHBOARD = /^\/(account|signin|signup|signout|assets)(\/|$)/;

/** `METHOD /path/{param}` for every API route the app serves, without middleware and the CORS preflight. */
function registeredRoutes(): Set<string> {
  const app = createApp(server.services, { logger: silentLogger, publicUrl: () => server.url });
  const routes = app.routes.filter(
    (route) =>
      route.method !== 'ALL' &&
      !DASHBOARD.test(route.path) &&
      !(route.method === 'OPTIONS' && route.path === '/*'),
  );
  return new Set(
    routes.map((route) => `${route.method} ${route.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`),
  );
}

function operations(): Array<{ readonly key: string; readonly path: string; readonly operation: Operation }> {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, path, operation })),
  );
}

function isApiPath(path: string): boolean {
  return path.startsWith('/tokens/') || path.startsWith('/scopes/') || path.startsWith('/usage/');
}

/** The error messages documented as examples for one response. */
function documentedMessages(response: Response | undefined): string[] {
  const examples = Object.values(response?.content?.['application/json']?.examples ?? {});
  return examples.map((example) => (example.value as { message: string }).message);
}

/** Follows a local `#/...` reference; undefined when it leads nowhere. */
function resolve(target: string): unknown {
  return target
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], document);
}

/** The Error schema itself, or a schema that is (by reference) all of Error and something more. */
function usesErrorSchema(schema: Record<string, unknown> | undefined): boolean {
  if (schema?.$ref === ERROR_REF) return true;
  if (typeof schema?.$ref === 'string')
    return usesErrorSchema(resolve(schema.$ref) as Record<string, unknown>);
  const allOf = schema?.allOf as Array<Record<string, unknown>> | undefined;
  return allOf?.some((part) => part.$ref === ERROR_REF) ?? false;
}

test('every route the app serves is documented, and every documented operation is served', () => {
  const hono = registeredRoutes();
  assert.deepEqual(
    [...hono].filter((key) => key.includes('/auth/')),
    [],
    'forward-auth is not a Hono route',
  );
  const served = new Set([...hono, ...OUTSIDE_HONO]);
  const documented = new Set(operations().map(({ key }) => key));
  assert.deepEqual([...served].filter((key) => !documented.has(key)).sort(), [], 'served but undocumented');
  assert.deepEqual([...documented].filter((key) => !served.has(key)).sort(), [], 'documented but not served');
  assert.ok(served.has('PATCH /tokens/v2/{username}/{id}'));
  assert.ok(served.has('GET /usage/v1/{username}'));
  assert.ok(served.has('GET /metrics'));
});

/** A raw request (fetch refuses TRACE): status, headers and body. */
function raw(
  method: string,
  path: string,
  headers: Record<string, string | string[]> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('every documented forward-auth operation is answered by forward-auth, not the app', async () => {
  const forwardAuth = operations().filter(({ path }) => FORWARD_AUTH_PATHS.includes(path));
  assert.equal(forwardAuth.length, OUTSIDE_HONO.length);
  for (const { key } of forwardAuth) {
    const [method, path] = key.split(' ') as [string, string];
    const response = await raw(method, path.replace('{originalPath}', 'styles/v1/alice/streets'));
    // The app would answer 404 Not found; forward-auth refuses a request without a token.
    assert.equal(response.status, 401, key);
    assert.equal(response.headers['x-tessera-reason'], 'missing', key);
    if (method !== 'HEAD')
      assert.deepEqual(JSON.parse(response.body), { message: 'An access token is required' });
  }
});

test('what forward-auth answers is documented: status, message and headers', async () => {
  const owner = await createTestAccount(server.services, 'gateway');
  const limited = await server.services.tokens.create({ kind: 'operator' }, 'gateway', {
    note: 'limited',
    scopes: ['styles:read'],
    allowedUrls: ['https://app.example.com'],
    extensions: {},
    rateLimit: { limit: 1, interval: 3600 },
    expiresAt: null,
  });
  assert.ok(limited.token);
  const uri = (token: string) => `/styles/v1/gateway/streets?access_token=${token}`;
  const app = { origin: 'https://app.example.com' };
  const cases: Array<[string, string, Record<string, string | string[]>, number]> = [
    ['allowed', '/auth/verify', { 'x-original-uri': uri(owner.defaultToken) }, 200],
    ['rate limited', '/auth/verify', { 'x-original-uri': uri(limited.token), ...app }, 200],
    ['rate limited', '/auth/verify', { 'x-original-uri': uri(limited.token), ...app }, 429],
    [
      'as 403',
      '/auth/verify?rate_limit_status=403',
      { 'x-forwarded-uri': uri(limited.token), 'x-forwarded-method': 'GET', ...app },
      403,
    ],
    ['no token', '/auth/verify', { 'x-original-uri': '/styles/v1/gateway/streets' }, 401],
    ['malformed', '/auth/verify', { 'x-original-uri': uri('pk.nonsense') }, 401],
    ['bearer', '/auth/verify?scope=styles:read', { authorization: 'Bearer' }, 401],
    ['scope', '/auth/verify?scope=styles:read', { 'x-original-uri': uri(owner.adminToken) }, 403],
    ['no route', '/auth/verify', { 'x-original-uri': `/elsewhere?access_token=${owner.defaultToken}` }, 403],
    ['url', '/auth/verify', { 'x-original-uri': uri(limited.token), origin: 'https://evil.example' }, 403],
    [
      'two tokens',
      '/auth/verify',
      { 'x-original-uri': uri(owner.defaultToken), authorization: `Bearer ${owner.adminToken}` },
      400,
    ],
    ['twice', '/auth/verify', { 'x-original-uri': [uri(owner.defaultToken), '/other'] }, 400],
    [
      'two URIs',
      '/auth/verify',
      { 'x-original-uri': uri(owner.defaultToken), 'x-forwarded-uri': '/other' },
      400,
    ],
    [
      'envoy scope',
      `/auth/verify/anything?access_token=${owner.defaultToken}`,
      { 'x-tessera-scope': 'styles:read' },
      200,
    ],
    ['envoy', `/auth/verify${uri(owner.defaultToken)}`, {}, 200],
    ['no method', '/auth/verify', { 'x-forwarded-uri': uri(owner.defaultToken) }, 400],
  ];
  for (const [name, path, headers, expected] of cases) {
    // A gateway sends the original method with the original URI (nginx: X-Original-Method).
    const gateway = 'x-original-uri' in headers ? { 'x-original-method': 'GET', ...headers } : headers;
    const response = await raw('GET', path, gateway);
    assert.equal(response.status, expected, `${name}: ${response.body}`);
    const key = path.startsWith('/auth/verify/') ? 'GET /auth/verify/{originalPath}' : 'GET /auth/verify';
    const documented = operations().find((entry) => entry.key === key)?.operation.responses[String(expected)];
    assert.ok(documented, `${name}: ${expected} is not documented`);
    const documentedHeaders = Object.keys(documented.headers ?? {}).map((header) => header.toLowerCase());
    for (const header of Object.keys(response.headers)) {
      if (/^(x-tessera-|x-rate-limit-|retry-after|www-authenticate)/.test(header))
        assert.ok(documentedHeaders.includes(header), `${name}: ${header} is not documented`);
    }
    // A 403 for a rate-limited request says so in its description, not in the examples.
    if (expected >= 400 && name !== 'as 403') {
      const { message } = JSON.parse(response.body) as { message: string };
      assert.ok(documentedMessages(documented).includes(message), `${name}: "${message}" is not documented`);
    }
  }
});

test('GET /openapi.json answers the OpenAPI 3.1 document with the server’s own URL', async () => {
  const response = await fetch(`${server.url}/openapi.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  const served = (await response.json()) as Document;
  assert.equal(served.openapi, '3.1.0');
  assert.deepEqual(served.servers, [{ url: server.url }]);
  assert.deepEqual(served, JSON.parse(JSON.stringify(document)));
});

test('every Tokens and Scopes API operation documents 401 Unauthorized', () => {
  const api = operations().filter(({ path }) => isApiPath(path));
  assert.ok(api.length >= 6);
  for (const { key, operation } of api) {
    assert.ok(operation.responses['401'], `${key} documents no 401`);
    assert.deepEqual(documentedMessages(operation.responses['401']), [ERRORS.unauthorized.message], key);
  }
});

test('every error response uses the {message} schema and shows {message} examples', () => {
  for (const { key, operation } of operations()) {
    for (const [status, response] of Object.entries(operation.responses)) {
      if (Number(status) < 400) continue;
      const media = response.content?.['application/json'];
      assert.ok(usesErrorSchema(media?.schema), `${key} ${status} does not use the Error schema`);
      for (const message of documentedMessages(response)) assert.equal(typeof message, 'string', key);
    }
  }
});

test('a documented catalogue message appears only under its own status', () => {
  const statusOf = new Map(Object.values(ERRORS).map(({ status, message }) => [message, status]));
  for (const { key, operation } of operations()) {
    for (const [status, response] of Object.entries(operation.responses)) {
      for (const message of documentedMessages(response)) {
        const expected = statusOf.get(message);
        if (expected !== undefined) assert.equal(Number(status), expected, `${key}: "${message}"`);
      }
    }
  }
});

test('every $ref in the document resolves', () => {
  const refs: string[] = [];
  JSON.stringify(document, (name, value: unknown) => {
    if (name === '$ref' && typeof value === 'string') refs.push(value);
    return value;
  });
  assert.ok(refs.length > 0);
  for (const target of refs) assert.ok(resolve(target) !== undefined, `unresolved ${target}`);
});

test('what the API answers without a token is documented, with the exact message', async () => {
  await createTestAccount(server.services, 'openapi');
  const id = 'c000000000000000000000000';
  for (const { key, path, operation } of operations().filter((entry) => isApiPath(entry.path))) {
    const [method] = key.split(' ') as [string];
    const url = server.url + path.replace('{username}', 'openapi').replace('{id}', id);
    const body = method === 'POST' || method === 'PATCH' ? '{}' : null;
    const headers = body === null ? {} : { 'content-type': 'application/json' };
    const response = await fetch(url, { method, headers, body });
    const { message } = (await response.json()) as { message: string };
    const documented = operation.responses[String(response.status)];
    assert.ok(documented, `${key} answered ${response.status}, which is not documented`);
    assert.ok(documentedMessages(documented).includes(message), `${key}: "${message}" is not documented`);
  }
});

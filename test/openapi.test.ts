import assert from 'node:assert/strict';
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

let server: TestServer;
let document: Document;

before(async () => {
  server = await startTestServer();
  document = openApiDocument(server.url) as Document;
});
after(() => server.close());

/** `METHOD /path/{param}` for every route the app serves, without middleware and the CORS preflight. */
function registeredRoutes(): Set<string> {
  const app = createApp(server.services, { logger: silentLogger, publicUrl: () => server.url });
  const routes = app.routes.filter(
    (route) =>
      !(route.method === 'ALL' && route.path.endsWith('*')) &&
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
  return path.startsWith('/tokens/') || path.startsWith('/scopes/');
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
  const served = registeredRoutes();
  const documented = new Set(operations().map(({ key }) => key));
  assert.deepEqual([...served].filter((key) => !documented.has(key)).sort(), [], 'served but undocumented');
  assert.deepEqual([...documented].filter((key) => !served.has(key)).sort(), [], 'documented but not served');
  assert.ok(served.has('PATCH /tokens/v2/{username}/{id}'));
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

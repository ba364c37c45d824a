import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type ApiRequest,
  api,
  assertError,
  assertUnchanged,
  createToken,
  startApiServer,
  tokensOf,
} from './helpers/api.ts';
import { createTestAccount, type TestAccount, type TestServer } from './helpers/server.ts';

let server: TestServer;
let owner: TestAccount;
let tokenId: string;

before(async () => {
  server = await startApiServer();
  owner = await createTestAccount(server.services, 'strict', ['tokens:read', 'tokens:write', 'styles:read']);
  tokenId = (await createToken(server, 'strict', { scopes: ['styles:read'], note: 'target' })).id;
});
after(() => server.close());

/** Sends the same bad body to create and to update; both must refuse it and change nothing. */
async function assertBodyRefused(request: ApiRequest, status: number, message: string): Promise<void> {
  for (const [method, path] of [
    ['POST', '/tokens/v2/strict'],
    ['PATCH', `/tokens/v2/strict/${tokenId}`],
  ] as const) {
    await assertUnchanged(server, 'strict', async () => {
      const response = await api(server, method, path, { token: owner.adminToken, ...request });
      assertError(response, status, message);
    });
  }
}

function raw(body: string): ApiRequest {
  return { body, headers: { 'content-type': 'application/json' } };
}

describe('field types and sizes', () => {
  const cases: Array<[string, unknown, string]> = [
    ['note', 5, 'note must be a string of at most 256 characters'],
    ['note', 'x'.repeat(257), 'note must be a string of at most 256 characters'],
    ['note', ['a'], 'note must be a string of at most 256 characters'],
    ['scopes', 'styles:read', 'scopes must be an array of at most 64 strings'],
    ['scopes', [1], 'scopes must be an array of at most 64 strings'],
    ['scopes', { 0: 'styles:read' }, 'scopes must be an array of at most 64 strings'],
    [
      'scopes',
      Array.from({ length: 65 }, () => 'styles:read'),
      'scopes must be an array of at most 64 strings',
    ],
    ['allowedUrls', 'https://example.com', 'allowedUrls must be an array of URL strings'],
    ['allowedUrls', [42], 'allowedUrls must be an array of URL strings'],
    [
      'allowedUrls',
      [`https://example.com/${'a'.repeat(2048)}`],
      'allowedUrls must be an array of URL strings',
    ],
    ['allowedUrls', ['not a url'], 'allowedUrls contains an invalid URL'],
    ['allowedUrls', ['javascript:alert(1)'], 'allowedUrls contains an invalid URL'],
    ['resources', [], 'resources are invalid'],
    ['resources', 'one', 'resources are invalid'],
    [
      'allowedApplications',
      [{ platform: 'iOS' }],
      'allowedApplications must be an array of {"platform", "bundleId"} objects',
    ],
    ['id', 'cabcdefghijklmnopqrstuvwx', 'id cannot be set'],
    ['usage', 'sk', 'usage cannot be set'],
    ['default', true, 'default cannot be set'],
    ['token', 'pk.x.y', 'token cannot be set'],
  ];
  for (const [field, value, message] of cases) {
    test(`${field}: ${JSON.stringify(value).slice(0, 40)} is 422 "${message}"`, async () => {
      await assertBodyRefused({ json: { scopes: ['styles:read'], [field]: value } }, 422, message);
    });
  }

  test('null scopes or note are refused; null elsewhere is refused on create', async () => {
    await assertBodyRefused({ json: { scopes: null } }, 422, 'scopes must be an array of at most 64 strings');
    await assertBodyRefused({ json: { note: null } }, 422, 'note must be a string of at most 256 characters');
    await assertUnchanged(server, 'strict', async () => {
      const response = await api(server, 'POST', '/tokens/v2/strict', {
        token: owner.adminToken,
        json: { scopes: [], allowedUrls: null },
      });
      assertError(response, 422, 'allowedUrls must be an array of URL strings');
    });
  });

  test('unknown scopes are 422 "scopes are invalid"', async () => {
    for (const scopes of [['nope:read'], ['styles:read', 'STYLES:READ'], [''], ['styles:read ']]) {
      await assertBodyRefused({ json: { scopes } }, 422, 'scopes are invalid');
    }
  });
});

describe('body shape', () => {
  test('a body that is not a JSON object is 400', async () => {
    for (const body of ['[]', 'null', '"text"', '42', 'true']) {
      await assertBodyRefused(raw(body), 400, 'request body must be a JSON object');
    }
  });

  test('malformed JSON, an empty body and invalid UTF-8 are 400', async () => {
    for (const body of ['{', '{"note": }', "{'note': 'x'}", '', '{"note":"x"} {}']) {
      await assertBodyRefused(raw(body), 400, 'request body is not valid JSON');
    }
    await assertBodyRefused(
      {
        body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
        headers: { 'content-type': 'application/json' },
      },
      400,
      'request body is not valid UTF-8',
    );
  });

  test('duplicate keys are refused, at any depth', async () => {
    await assertBodyRefused(raw('{"note":"a","note":"b"}'), 400, 'request body has a duplicate key "note"');
    await assertBodyRefused(
      raw('{"scopes":[],"allowedApplications":[{"platform":"a","platform":"b","bundleId":"c"}]}'),
      400,
      'request body has a duplicate key "platform"',
    );
    await assertBodyRefused(
      raw('{"note":"a","\\u006eote":"b"}'),
      400,
      'request body has a duplicate key "note"',
    );
  });

  test('__proto__, constructor and prototype keys are refused', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      await assertBodyRefused(
        raw(`{"scopes":[],"${key}":{"usage":"sk"}}`),
        400,
        `request body must not contain the key "${key}"`,
      );
      await assertBodyRefused(
        raw(`{"scopes":[],"allowedApplications":[{"platform":"a","bundleId":"b","${key}":{}}]}`),
        400,
        `request body must not contain the key "${key}"`,
      );
    }
    assert.equal(({} as Record<string, unknown>).usage, undefined, 'Object.prototype is untouched');
  });

  test('NUL characters are refused in values and keys', async () => {
    await assertBodyRefused(
      { json: { scopes: [], note: 'a\u0000b' } },
      400,
      'request body must not contain NUL characters',
    );
    await assertBodyRefused(
      raw('{"scopes":[],"no\\u0000te":"x"}'),
      400,
      'request body must not contain NUL characters',
    );
  });

  test('lone surrogates are refused rather than stored as something else', async () => {
    await assertBodyRefused(
      raw('{"scopes":[],"note":"\\ud800"}'),
      400,
      'request body contains an invalid Unicode string',
    );
  });

  test('an expiresAt past year 9999 through its offset is refused', async () => {
    await assertBodyRefused(
      { json: { scopes: [], expiresAt: '9999-12-31T23:59:59-23:59' } },
      422,
      'expiresAt must be an ISO 8601 time or null',
    );
  });

  test('very deep documents are refused', async () => {
    await assertBodyRefused(
      raw(`{"scopes":[],"x":${'['.repeat(100)}${']'.repeat(100)}}`),
      400,
      'request body is nested more than 32 levels deep',
    );
  });
});

describe('transport', () => {
  test('bodies over 64 KiB are 413, with or without a content-length', async () => {
    const big = JSON.stringify({ scopes: [], note: 'x'.repeat(70_000) });
    await assertBodyRefused(raw(big), 413, 'request body is larger than 65536 bytes');
    const chunks = [new TextEncoder().encode('{"scopes":[],"note":"'), new Uint8Array(70_000).fill(0x78)];
    await assertUnchanged(server, 'strict', async () => {
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk);
          controller.close();
        },
      });
      const response = await api(server, 'POST', '/tokens/v2/strict', {
        token: owner.adminToken,
        body: stream,
        headers: { 'content-type': 'application/json' },
      });
      assertError(response, 413, 'request body is larger than 65536 bytes');
    });
  });

  test('a body of exactly 64 KiB is accepted; one byte more is not', async () => {
    const prefix = '{"scopes":["styles:read"],"allowedApis":[]';
    const exact = `${prefix}${' '.repeat(65_536 - prefix.length - 1)}}`;
    assert.equal(Buffer.byteLength(exact), 65_536);
    const accepted = await api(server, 'POST', '/tokens/v2/strict', {
      token: owner.adminToken,
      ...raw(exact),
    });
    assert.equal(accepted.status, 200, accepted.text);
    await server.services.tokens.remove({ kind: 'operator' }, 'strict', (accepted.body as { id: string }).id);
    await assertBodyRefused(raw(` ${exact}`), 413, 'request body is larger than 65536 bytes');
  });

  test('content types other than JSON are 415', async () => {
    const json = JSON.stringify({ scopes: [] });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
      '',
    ]) {
      await assertBodyRefused(
        { body: json, headers: { 'content-type': type } },
        415,
        'Content-Type must be application/json',
      );
    }
    await assertBodyRefused({ body: json }, 415, 'Content-Type must be application/json');
    const charset = await api(server, 'PATCH', `/tokens/v2/strict/${tokenId}`, {
      token: owner.adminToken,
      body: '{}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    assert.equal(charset.status, 200);
  });
});

test('no input makes the server answer 5xx, and every refusal is JSON {"message"}', async () => {
  const paths = [
    '/tokens/v2/strict/%E0%A4%A',
    '/tokens/v2/%',
    '/tokens/v2/strict/..%2F..%2Fetc',
    `/tokens/v2/${'a'.repeat(5000)}`,
    '/tokens/v2/strict?limit=%FF',
    '/tokens/v2/strict?start=%FF%FE',
    '/tokens/v2/strict?sortby=created%00',
    '/scopes/v1/%00',
    `/tokens/v2/strict?access_token=${'x'.repeat(10_000)}`,
  ];
  const bodies = [
    '{"scopes":{},"expires":{}}',
    '{"expires":"2030-01-01T00:00:00Z","scopes":"x"}',
    '{"rateLimit":{"limit":1e400,"interval":1}}',
    '{"scopes":[],"expiresAt":"9999-99-99T99:99:99Z"}',
    '{"scopes":[],"allowedUrls":["https://[::1"]}',
  ];
  const requests: Array<[string, string, ApiRequest]> = [
    ...paths.map((path): [string, string, ApiRequest] => ['GET', path, { token: owner.adminToken }]),
    ...paths.map((path): [string, string, ApiRequest] => ['DELETE', path, { token: owner.adminToken }]),
    ...bodies.map((body): [string, string, ApiRequest] => [
      'POST',
      '/tokens/v2/strict',
      { token: owner.adminToken, ...raw(body) },
    ]),
    ...bodies.map((body): [string, string, ApiRequest] => [
      'PATCH',
      `/tokens/v2/strict/${tokenId}`,
      { token: owner.adminToken, ...raw(body) },
    ]),
  ];
  await assertUnchanged(server, 'strict', async () => {
    for (const [method, path, request] of requests) {
      const response = await api(server, method, path, request);
      assert.ok(
        response.status >= 400 && response.status < 500,
        `${method} ${path.slice(0, 80)}: ${response.status} ${response.text.slice(0, 200)}`,
      );
      assert.equal(typeof (response.body as { message?: unknown }).message, 'string', `${method} ${path}`);
    }
  });
});

test('property: random bodies never make the server fail, and refusals change nothing', async () => {
  const field = fc.constantFrom(
    'note',
    'scopes',
    'allowedUrls',
    'resources',
    'allowedApplications',
    'allowedApis',
    'rateLimit',
    'expiresAt',
    'expires',
    'other',
  );
  const value = fc.oneof(
    fc.jsonValue(),
    fc.array(fc.constantFrom('styles:read', 'tokens:read', 'nope', 'https://example.com', '')),
    fc
      .integer({ min: -7200, max: 7200 })
      .map((seconds) => new Date(Date.now() + seconds * 1000).toISOString()),
    fc.array(fc.record({ platform: fc.string(), bundleId: fc.string() })),
    fc.record({ limit: fc.integer(), interval: fc.integer() }),
  );
  await fc.assert(
    fc.asyncProperty(fc.dictionary(field, value), fc.boolean(), async (json, patch) => {
      const before = await tokensOf(server, 'strict');
      const path = patch ? `/tokens/v2/strict/${tokenId}` : '/tokens/v2/strict';
      const response = await api(server, patch ? 'PATCH' : 'POST', path, { token: owner.adminToken, json });
      assert.ok(response.status < 500, `${JSON.stringify(json)}: ${response.status} ${response.text}`);
      if (response.status >= 400) {
        assert.equal(typeof (response.body as { message?: unknown }).message, 'string');
        assert.deepEqual(await tokensOf(server, 'strict'), before);
      }
    }),
    { numRuns: 150, seed: 20240601 },
  );
});

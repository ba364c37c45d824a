/**
 * The hostile-input campaign (security plan T74): fast-check drives random, seeded HTTP requests at
 * every route family of a real server (SQLite, real sockets) and checks, for every answer:
 * - no 5xx (there is no fault injected here, so a 5xx is always a bug),
 * - no stack trace, source path or internal detail in the body,
 * - no secret echoed back: the fixtures' secret and temporary tokens, the password and the session
 *   cookie travel in requests, so any of them in an answer (body or headers) is an echo,
 * - every refusal from a JSON API is a JSON `{"message"}`,
 * - no `unhandled error` in the server's log, and the log holds no secret either.
 *
 * `TESSERA_FUZZ_RUNS` multiplies the run counts (e.g. `TESSERA_FUZZ_RUNS=10` for ~200,000 requests).
 * The seeds are fixed, so a failure reproduces; fast-check prints the seed and the shrunk request.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { createLogger } from '../src/logging/logger.ts';
import { api } from './helpers/api.ts';
import { DashboardClient } from './helpers/dashboard.ts';
import { recordFigures } from './helpers/figures.ts';
import { createTestAccount, startConfiguredServer, type TestServer } from './helpers/server.ts';

const MULTIPLIER = Math.max(1, Number(process.env['TESSERA_FUZZ_RUNS'] ?? 1) || 1);
const PASSWORD = 'correct horse battery staple';

/** Requests per family sent before the memory baseline is taken. */
const WARM_UP_RUNS = 300;

/** Runs per route family in CI: 5 families, 21,000 requests in all. */
const FAMILIES = {
  'tokens-api': { seed: 7401, runs: 6000 },
  'forward-auth': { seed: 7402, runs: 5000 },
  statistics: { seed: 7403, runs: 2500 },
  dashboard: { seed: 7404, runs: 5000 },
  'everything-else': { seed: 7405, runs: 2500 },
} as const;

type Header = readonly [string, string];

/** One header, typed loosely enough for arrays of mixed headers. */
function h(name: string, value: string): Header {
  return [name, value];
}

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string | Buffer | undefined;
}

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  readonly ms: number;
}

/** A V8 stack frame (`at fn (file:1:2)` or `at file:1:2`), a source path, an error class or SQL detail. */
const STACK_TRACE =
  /\bat (?:async )?(?:[^\s()]+ )?\(?[^\s()]+:\d+:\d+\)?|node_modules|\/work\/|\.ts:\d|file:\/\/|\b(?:Type|Reference|Range|Syntax)Error\b|SQLITE_|syntax error at/;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
let server: TestServer;
/** The log, read line by line as it is written (keeping 100,000 lines would itself look like a leak). */
const log = { lines: 0, findings: [] as string[] };

function readLogLine(line: string): void {
  log.lines += 1;
  if (log.findings.length >= 5) return;
  if (line.includes('unhandled error')) log.findings.push(`unhandled error: ${line.slice(0, 500)}`);
  for (const secret of secrets) {
    if (line.includes(secret)) log.findings.push(`a secret reached the log: ${line.slice(0, 500)}`);
  }
}
let secrets: string[] = [];
const fixtures = {
  username: 'alice',
  other: 'bob',
  adminToken: '',
  adminId: '',
  publicToken: '',
  publicId: '',
  restrictedToken: '',
  victimId: '',
  temporaryToken: '',
  otherSecret: '',
  otherId: '',
  sessionCookie: '',
  csrf: '',
};
const tally = { requests: 0, maxMs: 0, latencies: [] as number[], statuses: new Map<number, number>() };

/**
 * Sends one request byte for byte (node:http does not normalise `..` or re-encode the path). A kept-alive
 * socket the server closed after its previous answer is retried once on a fresh socket, as Node's
 * documentation advises; a request that fails on a fresh socket fails the property.
 */
async function send(fuzz: FuzzRequest): Promise<Answer> {
  try {
    return await sendOnce(fuzz, true);
  } catch (error) {
    if (!(error instanceof StaleSocket)) throw error;
    return sendOnce(fuzz, false);
  }
}

class StaleSocket extends Error {}

function sendOnce(fuzz: FuzzRequest, reuse: boolean): Promise<Answer> {
  const { hostname, port } = new URL(server.url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // Raw header arrays keep repeated headers apart; node:http then adds no Host of its own.
    const headers: [string, string][] = [['host', `${hostname}:${port}`]];
    for (const [name, value] of fuzz.headers) headers.push([name, value]);
    const req = request(
      {
        hostname,
        port,
        agent: reuse ? agent : false,
        method: fuzz.method,
        path: fuzz.path,
        headers: headers.flat(),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (error: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && (error.code === 'ECONNRESET' || error.message === 'socket hang up');
      reject(stale ? new StaleSocket(error.message) : error);
    });
    req.end(fuzz.body);
  });
}

/** `encodeURIComponent` that also takes lone surrogates (as a browser would, as U+FFFD). */
function encode(value: string): string {
  return encodeURIComponent(value.toWellFormed());
}

/** Keeps a string sendable by node:http as a request path (it refuses controls, spaces and > U+00FF). */
function sendablePath(path: string): string {
  return path.replace(/[^\x21-\x7e]/gu, (char) => encode(char));
}

/** Keeps a header value sendable (node:http refuses control characters other than tab). */
function sendableValue(value: string): string {
  return value.replace(/[^\t\x20-\x7e\x80-\xff]/gu, (char) => encode(char));
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const nasty = fc.constantFrom(
  '',
  ' ',
  '%00',
  '\0',
  '..',
  '../',
  '..%2f',
  '%2e%2e%2f',
  '..\\',
  '%c0%af',
  '%ff',
  '%',
  '%zz',
  '//evil.test',
  '\\\\evil.test',
  'https://evil.test',
  'javascript:alert(1)',
  '<img src=x onerror=alert(1)>',
  '"><svg onload=alert(1)>',
  "' OR 1=1 --",
  '"; DROP TABLE tokens; --',
  '$' + '{jndi:ldap://x}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  '9007199254740993',
  '0x10',
  '[]',
  '{}',
  '\u202e',
  '\ufeff',
  '\ud800',
  'ǅ',
  'т',
  '\u0130',
  '\r\n{"level":30,"msg":"fake"}',
  'a'.repeat(3000),
  '%'.repeat(100),
);

const text = fc.oneof(
  { weight: 3, arbitrary: nasty },
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer().map(String),
);

function tokenPool(): fc.Arbitrary<string> {
  const real = [
    fixtures.adminToken,
    fixtures.publicToken,
    fixtures.restrictedToken,
    fixtures.temporaryToken,
    fixtures.otherSecret,
  ];
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...real) },
    fc.tuple(fc.constantFrom(...real), fc.nat(150)).map(([token, cut]) => token.slice(0, cut)),
    fc
      .tuple(fc.constantFrom(...real), fc.nat(150), fc.constantFrom('A', 'z', '0', '.', '%00', ' '))
      .map(([token, at, char]) => token.slice(0, at) + char + token.slice(at + 1)),
    fc.constantFrom('pk.', 'sk.', 'tk.', 'pk.eyJ1IjoiYWxpY2UifQ.x', `sk.${'A'.repeat(4000)}`, 'Bearer'),
    text,
  );
}

function authHeaders(): fc.Arbitrary<readonly Header[]> {
  const token = tokenPool();
  return fc.oneof(
    fc.constant<readonly Header[]>([]),
    token.map((t) => [h('authorization', `Bearer ${t}`)]),
    token.map((t) => [h('authorization', `bearer  ${t}`)]),
    token.map((t) => [h('authorization', `Basic ${Buffer.from(`x:${t}`).toString('base64')}`)]),
    fc
      .tuple(token, token)
      .map(([a, b]) => [h('authorization', `Bearer ${a}`), h('authorization', `Bearer ${b}`)]),
    text.map((t) => [h('authorization', t)]),
  );
}

function queryString(names: readonly string[], values: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const name = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...names) }, text);
  const pair = fc
    .tuple(name, values, fc.boolean())
    .map(([n, v, escaped]) => (escaped ? `${encode(n)}=${encode(v)}` : `${n}=${v}`));
  return fc.array(pair, { maxLength: 4 }).map((pairs) => (pairs.length > 0 ? `?${pairs.join('&')}` : ''));
}

function queryValues(): fc.Arbitrary<string> {
  return fc.oneof(
    tokenPool(),
    fc.constantFrom(
      '1',
      '0',
      '-1',
      '100',
      '101',
      '1000000000',
      'created',
      'modified',
      'pk',
      'sk',
      'tk',
      'day',
      'hour',
    ),
    fc.constantFrom(fixtures.publicId, fixtures.victimId, fixtures.otherId),
    text,
  );
}

const segment = (known: readonly string[]) =>
  fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...known) }, nasty, text.map(encode));

const commonHeaders = fc.array(
  fc.oneof(
    fc.tuple(
      fc.constantFrom(
        'content-type',
        'accept',
        'origin',
        'referer',
        'x-forwarded-for',
        'x-real-ip',
        'sec-fetch-site',
        'if-match',
        'accept-encoding',
        'content-encoding',
        'transfer-encoding',
        'x-http-method-override',
        'cookie',
      ),
      fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'application/json; charset=latin1',
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'text/html',
          '*/*',
          'null',
          'https://evil.test',
          'cross-site',
          'same-origin',
          'gzip',
          'chunked',
          'DELETE',
          '127.0.0.1, 10.0.0.1',
        ),
        text,
      ),
    ),
    fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), text),
  ),
  { maxLength: 4 },
);

function bodies() {
  const jsonBody = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc
      .record(
        {
          note: fc.oneof(text, fc.jsonValue({ maxDepth: 2 })),
          scopes: fc.oneof(
            fc.array(
              fc.oneof(
                fc.constantFrom(
                  'styles:read',
                  'fonts:read',
                  'tokens:read',
                  'tokens:write',
                  'scopes:list',
                  'audit:read',
                  'TOKENS:WRITE',
                  ' tokens:read',
                  'tоkens:read',
                ),
                text,
              ),
              { maxLength: 6 },
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          allowedUrls: fc.oneof(
            fc.array(
              fc.oneof(
                fc.constantFrom(
                  'https://app.example.com',
                  'javascript:alert(1)',
                  'data:x',
                  'file:///etc/passwd',
                  '*',
                  'https://*',
                  'http://xn--80ak6aa92e.com',
                  'https://APP.example.com.',
                ),
                text,
              ),
              { maxLength: 4 },
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          expires: fc.oneof(
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            text,
            fc.integer(),
          ),
          expiresAt: fc.oneof(
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            text,
            fc.constant(null),
          ),
          gracePeriod: fc.oneof(fc.integer(), text, fc.double()),
          usage: fc.oneof(fc.constantFrom('pk', 'sk', 'tk'), text),
          id: fc.oneof(fc.constantFrom(fixtures.victimId, fixtures.otherId), text),
          default: fc.boolean(),
          token: tokenPool(),
          rateLimit: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
    fc.constantFrom(
      '{"__proto__":{"scopes":["tokens:write"]},"scopes":["styles:read"]}',
      '{"constructor":{"prototype":{"admin":true}},"scopes":["styles:read"]}',
      '{"scopes":["styles:read"],"scopes":["tokens:write"]}',
      '{"note":"x"',
      '[',
      '['.repeat(20_000),
      `{"note":"${'x'.repeat(70_000)}"}`,
      '\ufeff{"scopes":["styles:read"]}',
      '{"scopes":["styles:read"]}\0',
      'null',
      '"string"',
    ),
  );

  const formBody = fc
    .array(
      fc.tuple(
        fc.oneof(
          {
            weight: 4,
            arbitrary: fc.constantFrom(
              '_csrf',
              'username',
              'password',
              'note',
              'scopes',
              'allowedUrls',
              'expiresAt',
              'next',
              'email',
              'currentPassword',
              'newPassword',
              'repeatPassword',
              'gracePeriod',
              'confirm',
              'usage',
            ),
          },
          text,
        ),
        fc.oneof(
          fc.constantFrom(fixtures.csrf, 'styles:read', 'tokens:write', '/account', '//evil.test', 'alice'),
          text,
        ),
      ),
      { maxLength: 6 },
    )
    .map((pairs) => new URLSearchParams(pairs.map(([k, v]): [string, string] => [k, v])).toString());

  const anyBody = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: jsonBody },
    formBody,
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  );

  return { jsonBody, formBody, anyBody };
}

const methods = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE') },
  fc.constantFrom('HEAD', 'PUT', 'OPTIONS', 'TRACE', 'TRACK', 'PROPFIND', 'MKCOL', 'PURGE', 'SEARCH'),
);

function request_(
  path: fc.Arbitrary<string>,
  extraHeaders: fc.Arbitrary<readonly Header[]> = fc.constant<readonly Header[]>([]),
  body: fc.Arbitrary<string | Buffer | undefined> = bodies().anyBody,
): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ method: methods, path, auth: authHeaders(), extra: extraHeaders, common: commonHeaders, body })
    .map(({ method, path, auth, extra, common, body }) => ({
      method,
      path: sendablePath(path),
      headers: [...auth, ...extra, ...common].map(([name, value]) => [name, sendableValue(value)] as const),
      body: method === 'GET' || method === 'HEAD' ? undefined : body,
    }));
}

function families(): Record<keyof typeof FAMILIES, fc.Arbitrary<FuzzRequest>> {
  const { formBody, anyBody } = bodies();
  const users = [fixtures.username, fixtures.other, 'nobody', 'ALICE'];
  const ids = [fixtures.publicId, fixtures.victimId, fixtures.otherId, fixtures.adminId];
  const tokenQuery = queryString(
    ['access_token', 'limit', 'start', 'sortby', 'usage', 'default', 'access_token'],
    queryValues(),
  );
  const tokensPath = fc.oneof(
    fc.tuple(segment(users), tokenQuery).map(([u, q]) => `/tokens/v2/${u}${q}`),
    fc.tuple(segment(users), segment(ids), tokenQuery).map(([u, id, q]) => `/tokens/v2/${u}/${id}${q}`),
    fc
      .tuple(segment(users), segment(ids), tokenQuery)
      .map(([u, id, q]) => `/tokens/v2/${u}/${id}/rotate${q}`),
    tokenQuery.map((q) => `/tokens/v2${q}`),
    fc.tuple(segment(users), tokenQuery).map(([u, q]) => `/scopes/v1/${u}${q}`),
    fc.tuple(segment(users), tokenQuery).map(([u, q]) => `/audit/v1/${u}${q}`),
    fc.tuple(nasty, tokenQuery).map(([s, q]) => `/tokens/v2/${s}/${s}${q}`),
  );

  const upstream = fc.oneof(
    fc
      .tuple(
        fc.constantFrom(
          '/styles/v1/alice/streets',
          '/fonts/v1/alice/x',
          '/v4/m/1/2/3.png',
          '/geocoding/v5/mapbox.places/x.json',
          '/tokens/v2/alice',
        ),
        queryString(['access_token', 'scope', 'access_token'], queryValues()),
      )
      .map(([p, q]) => p + q),
    text,
    nasty,
  );
  const forwardHeaders = fc.oneof(
    upstream.map((u) => [h('x-original-uri', u)]),
    fc
      .tuple(upstream, fc.constantFrom('GET', 'HEAD', 'POST', 'get', ''))
      .map(([u, m]) => [h('x-original-uri', u), h('x-original-method', m)]),
    fc.tuple(upstream, text).map(([u, m]) => [h('x-forwarded-uri', u), h('x-forwarded-method', m)]),
    fc.tuple(upstream, text).map(([u, host]) => [h('x-envoy-original-path', u), h('x-forwarded-host', host)]),
    fc.tuple(upstream, upstream).map(([a, b]) => [h('x-original-uri', a), h('x-forwarded-uri', b)]),
  );
  const forwardPath = fc.oneof(
    {
      weight: 4,
      arbitrary: queryString(['scope', 'rate_limit_status', 'access_token'], queryValues()).map(
        (q) => `/auth/verify${q}`,
      ),
    },
    fc.tuple(nasty, queryString(['scope'], text)).map(([s, q]) => `/auth/verify/${s}${q}`),
    upstream.map((u) => `/auth/verify${u.startsWith('/') ? u : `/${u}`}`),
  );

  const statisticsPath = fc
    .tuple(
      segment(users),
      queryString(
        ['access_token', 'period', 'start', 'end', 'token', 'id', 'limit', 'groupBy'],
        fc.oneof(
          queryValues(),
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        ),
      ),
    )
    .map(([u, q]) => `/usage/v1/${u}${q}`);

  const dashboardPaths = [
    '/signin',
    '/signup',
    '/signout',
    '/account',
    '/account/password',
    '/account/statistics',
    '/account/audit',
    '/account/audit/export.csv',
    '/account/audit/export.json',
    '/account/tokens',
    '/account/tokens/new',
  ];
  const dashboardPath = fc.oneof(
    fc
      .tuple(
        fc.constantFrom(...dashboardPaths),
        queryString(['next', 'period', 'created', 'token', 'page', 'before', 'q'], text),
      )
      .map(([p, q]) => p + q),
    fc
      .tuple(
        segment(ids),
        fc.constantFrom('edit', 'rotate', 'delete', 'refresh', 'confirm', ''),
        queryString(['next'], text),
      )
      .map(([id, action, q]) => `/account/tokens/${id}/${action}${q}`),
    fc
      .tuple(
        fc.constantFrom('/assets/', '/account/'),
        segment(['dashboard.css', 'dashboard.js', 'tokens', '..%2f..%2fpackage.json']),
      )
      .map(([p, s]) => p + s),
  );
  const dashboardHeaders = fc.oneof(
    fc.constant([
      h('cookie', fixtures.sessionCookie),
      h('origin', new URL(server.url).origin),
      h('sec-fetch-site', 'same-origin'),
    ]),
    fc.constant([h('cookie', fixtures.sessionCookie)]),
    text.map((t) => [h('cookie', `__Host-tessera_session=${t}`)]),
    text.map((t) => [h('cookie', t)]),
    fc.constant<readonly Header[]>([]),
  );
  const dashboardBody = fc.oneof({ weight: 3, arbitrary: formBody }, anyBody);

  const elsewhere = fc.oneof(
    fc.constantFrom(
      '/',
      '/healthz',
      '/readyz',
      '/metrics',
      '/openapi.json',
      '/leaks/v1/github',
      '/leaks/v1/report',
      '/favicon.ico',
      '/.env',
      '/..%2f..%2fetc/passwd',
      '//',
      '/%2e%2e/%2e%2e/',
      '/tokens',
      '/tokens/v1/alice',
      '/auth',
      '*',
    ),
    fc.tuple(nasty, nasty, text).map(([a, b, c]) => `/${a}/${b}/${encode(c)}`),
    text.map((t) => `/${t}`),
  );
  const leakHeaders = fc.oneof(
    fc.constant<readonly Header[]>([]),
    fc
      .tuple(text, text)
      .map(([k, s]) => [h('github-public-key-identifier', k), h('github-public-key-signature', s)]),
  );

  return {
    'tokens-api': request_(tokensPath),
    'forward-auth': request_(forwardPath, forwardHeaders),
    statistics: request_(statisticsPath),
    dashboard: request_(dashboardPath, dashboardHeaders, dashboardBody),
    'everything-else': request_(elsewhere, leakHeaders),
  };
}

// ---------------------------------------------------------------------------------------------
// Oracles

const API_PREFIXES = ['/tokens/', '/scopes/', '/usage/', '/audit/', '/leaks/', '/auth/verify'];

function check(fuzz: FuzzRequest, answer: Answer): void {
  tally.requests += 1;
  tally.latencies.push(answer.ms);
  tally.maxMs = Math.max(tally.maxMs, answer.ms);
  tally.statuses.set(answer.status, (tally.statuses.get(answer.status) ?? 0) + 1);
  const shown = `${fuzz.method} ${fuzz.path.slice(0, 300)} -> ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`;
  assert.ok(answer.status >= 100 && answer.status < 500, `no 5xx: ${shown}`);
  const body = answer.body.toString('latin1');
  assert.doesNotMatch(body, STACK_TRACE, `no stack trace or internal detail: ${shown}`);
  const headerText = Object.entries(answer.headers)
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(', ') : value}`)
    .join('\n');
  for (const secret of secrets) {
    assert.ok(!body.includes(secret), `a secret echoed in the body: ${shown}`);
    assert.ok(!headerText.includes(secret), `a secret echoed in a header: ${shown}`);
  }
  const path = fuzz.path;
  const api = API_PREFIXES.some((prefix) => path.startsWith(prefix));
  if (api && answer.status >= 400 && fuzz.method !== 'HEAD' && answer.body.length > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body.toString('utf8'));
    } catch {
      assert.fail(`a refusal from a JSON API is JSON: ${shown}`);
    }
    assert.equal(typeof (parsed as { message?: unknown }).message, 'string', `a {"message"} body: ${shown}`);
  }
}

/** The heap in use after a full collection: what the server holds on to, not what is garbage yet. */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  const logger = createLogger({ level: 'info', write: readLogLine });
  // The server is configured as in production (default limits); only the Tokens API limit is raised
  // so the campaign keeps reaching the handlers instead of the limiter.
  server = await startConfiguredServer(
    { limits: { tokensApi: { limit: 1_000_000, interval: 60 } } },
    { logger },
  );
  const alice = await createTestAccount(server.services, fixtures.username, [
    'tokens:read',
    'tokens:write',
    'scopes:list',
    'audit:read',
    'styles:read',
  ]);
  const bob = await createTestAccount(server.services, fixtures.other);
  fixtures.adminToken = alice.adminToken;
  fixtures.adminId = alice.adminTokenId;
  fixtures.publicToken = alice.defaultToken;
  fixtures.otherSecret = bob.adminToken;
  fixtures.otherId = bob.adminTokenId;
  const created = async (json: unknown) => {
    const answer = await api(server, 'POST', `/tokens/v2/${fixtures.username}`, {
      token: alice.adminToken,
      json,
    });
    assert.ok(answer.status === 201 || answer.status === 200, answer.text);
    return answer.body as { id: string; token: string };
  };
  const restricted = await created({
    note: 'restricted',
    scopes: ['styles:read'],
    allowedUrls: ['https://app.example.com'],
  });
  fixtures.restrictedToken = restricted.token;
  fixtures.publicId = restricted.id;
  fixtures.victimId = (await created({ note: 'victim', scopes: ['styles:read'] })).id;
  fixtures.temporaryToken = (
    await created({ scopes: ['styles:read'], expires: new Date(Date.now() + 50 * 60_000).toISOString() })
  ).token;
  const browser = new DashboardClient(server);
  await browser.signInOk(fixtures.username, PASSWORD);
  fixtures.sessionCookie = browser.cookieHeader();
  fixtures.csrf = browser.formToken ?? '';
  const sessionValues = [...browser.cookies().values()];
  secrets = [
    fixtures.adminToken,
    fixtures.temporaryToken,
    fixtures.otherSecret,
    PASSWORD,
    ...sessionValues,
  ].filter((secret) => secret.length >= 16);
});

after(async () => {
  agent.destroy();
  await server?.close();
});

describe('fuzz campaign over every route family (fast-check, fixed seeds)', () => {
  const rssBefore: { value: number } = { value: 0 };
  const heapBefore: { value: number } = { value: 0 };
  const perFamily: Record<string, number> = {};

  for (const [family, { seed, runs }] of Object.entries(FAMILIES)) {
    test(`${family}: ${runs * MULTIPLIER} hostile requests, no 5xx, no stack trace, no secret echoed`, async () => {
      if (rssBefore.value === 0) {
        // Warm up first (300 requests of every family, checked like the rest), so the memory figure
        // compares a warm server with itself rather than with one that has not compiled its code yet.
        for (const warm of Object.values(families())) {
          await fc.assert(
            fc.asyncProperty(warm, async (fuzz) => check(fuzz, await send(fuzz))),
            { seed: 1, numRuns: WARM_UP_RUNS, includeErrorInReport: true },
          );
        }
        heapBefore.value = heapAfterGc();
        rssBefore.value = process.memoryUsage().rss;
      }
      const arbitrary = families()[family as keyof typeof FAMILIES];
      const before = tally.requests;
      await fc.assert(
        fc.asyncProperty(arbitrary, async (fuzz) => {
          check(fuzz, await send(fuzz));
        }),
        { seed, numRuns: runs * MULTIPLIER, includeErrorInReport: true },
      );
      perFamily[family] = tally.requests - before;
      const health = await api(server, 'GET', '/healthz');
      assert.equal(health.status, 200, 'the server is healthy after the family');
    });
  }

  test('the log records no unhandled error and no secret', () => {
    assert.ok(log.lines > 1000, 'the campaign was logged');
    assert.deepEqual(log.findings, []);
  });

  test('the campaign reached the handlers, not only the front door', () => {
    const sorted = [...tally.latencies].sort((a, b) => a - b);
    const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? 0;
    const rssGrowth = (process.memoryUsage().rss / Math.max(1, rssBefore.value) - 1) * 100;
    const heapGrowth = (heapAfterGc() / Math.max(1, heapBefore.value) - 1) * 100;
    const figures = {
      requests: tally.requests,
      routeFamilies: Object.keys(FAMILIES).length,
      seeds: Object.values(FAMILIES)
        .map((f) => f.seed)
        .join(', '),
      responses5xx: 0,
      stackTraces: 0,
      secretEchoes: 0,
      maxLatencyMs: Math.round(tally.maxMs),
      p99LatencyMs: Math.round(p99 * 10) / 10,
      heapGrowthAfterWarmUpPercent: Math.round(heapGrowth),
      rssGrowthAfterWarmUpPercent: Math.round(rssGrowth),
      statuses: [...tally.statuses]
        .sort(([a], [b]) => a - b)
        .map(([status, count]) => `${status}: ${count}`)
        .join(', '),
    };
    process.stdout.write(`# fuzz figures ${JSON.stringify({ ...figures, perFamily })}\n`);
    // A campaign that only ever hits 401s and 404s proves little: these statuses show it got through
    // authentication, validation and the dashboard's forms.
    for (const status of [200, 400, 401, 403, 404]) {
      assert.ok((tally.statuses.get(status) ?? 0) > 0, `some answers were ${status}`);
    }
    recordFigures('T74', figures);
  });
});

import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Clock } from '../../src/core/ports.ts';
import { type ApiResponse, api } from './api.ts';
import { startConfiguredServer, type TestServer } from './server.ts';

/** The Tokens API limit of these files: high enough never to get in the way. */
const GENEROUS = { limit: 100_000, interval: 60 };

/**
 * Starts the real server with a TESSERA_CONFIG file holding `config` (a generous Tokens API limit
 * is added unless `config.limits.tokensApi` says otherwise).
 */
export async function startForwardAuthServer(
  options: { readonly config?: Readonly<Record<string, unknown>>; readonly clock?: Clock } = {},
): Promise<TestServer> {
  const config = options.config ?? {};
  const limits = { tokensApi: GENEROUS, ...(config['limits'] as object | undefined) };
  return startConfiguredServer({ ...config, limits }, options.clock ? { clock: options.clock } : {});
}

/** `path` with the token as its `access_token` query parameter. */
export function withToken(path: string, token: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}`;
}

/** The headers nginx `auth_request` sends with `proxy_set_header X-Original-URI $request_uri`. */
export function nginx(uri: string, method = 'GET'): Record<string, string> {
  return { 'X-Original-URI': uri, 'X-Original-Method': method };
}

/**
 * One request to forward-auth, as a gateway sends it (`path` is the auth URL, query included).
 * Traefik and Caddy always send `X-Forwarded-Method` with `X-Forwarded-Uri`: so does this.
 */
export function verify(
  server: TestServer,
  headers: Readonly<Record<string, string>>,
  options: { readonly path?: string; readonly method?: string } = {},
): Promise<ApiResponse> {
  const traefik = 'X-Forwarded-Uri' in headers && !('X-Forwarded-Method' in headers);
  const sent = traefik ? { 'X-Forwarded-Method': 'GET', ...headers } : headers;
  return api(server, options.method ?? 'GET', options.path ?? '/auth/verify', { headers: sent });
}

/** nginx convention: the original URI (path and query) and method in `X-Original-*` headers. */
export function verifyNginx(
  server: TestServer,
  uri: string,
  options: {
    readonly method?: string;
    readonly headers?: Readonly<Record<string, string>>;
    readonly authQuery?: string;
  } = {},
): Promise<ApiResponse> {
  return verify(
    server,
    { ...nginx(uri, options.method), ...options.headers },
    { path: `/auth/verify${options.authQuery ?? ''}` },
  );
}

/**
 * A request sent with node:http, byte for byte: the path is not normalised (fetch would resolve
 * `..`), and a header given as an array is sent once per value.
 */
export function rawRequest(
  server: TestServer,
  options: {
    readonly path: string;
    readonly method?: string;
    readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  },
): Promise<ApiResponse> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname,
        port,
        path: options.path,
        method: options.method ?? 'GET',
        headers: options.headers as Record<string, string | string[]>,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          resolve({ status: res.statusCode ?? 0, headers, text, body: parseJson(text) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface Identity {
  readonly username: string;
  readonly tokenId?: string;
  readonly usage: 'pk' | 'sk' | 'tk';
}

/** A 200 with the identity headers and no body. */
export function assertAllowed(response: ApiResponse, identity: Identity): void {
  assert.equal(response.status, 200, `expected 200, got ${response.status}: ${response.text}`);
  assert.equal(response.headers.get('x-tessera-username'), identity.username);
  assert.equal(response.headers.get('x-tessera-token-usage'), identity.usage);
  if (identity.tokenId !== undefined)
    assert.equal(response.headers.get('x-tessera-token-id'), identity.tokenId);
  assert.equal(response.text, '');
  assert.equal(response.headers.get('x-tessera-reason'), null);
}

/** A refusal: the status, the reason header, a JSON `{"message"}` body and no identity headers. */
export function assertRefused(response: ApiResponse, status: number, reason?: string): void {
  assert.equal(response.status, status, `expected ${status}, got ${response.status}: ${response.text}`);
  if (reason !== undefined) assert.equal(response.headers.get('x-tessera-reason'), reason);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = response.body as { message?: unknown } | undefined;
  assert.equal(typeof body?.message, 'string', `a JSON {"message"} body: ${response.text}`);
  assert.deepEqual(Object.keys(body ?? {}), ['message']);
  assert.equal(response.headers.get('x-tessera-username'), null);
  assert.equal(response.headers.get('x-tessera-token-id'), null);
}

/** A 401 for a token that was given but is no good, with the Bearer challenge naming the error. */
export function assertInvalidToken(response: ApiResponse, reason: string): void {
  assertRefused(response, 401, reason);
  assert.match(
    response.headers.get('www-authenticate') ?? '',
    /^Bearer realm="tessera", error="invalid_token"/,
  );
}

export interface CreatedToken {
  readonly id: string;
  readonly token: string;
  readonly usage: string;
  readonly scopes: string[];
  readonly [field: string]: unknown;
}

/** Creates a token through the Tokens API with the account's admin token. */
export async function createApiToken(
  server: TestServer,
  username: string,
  adminToken: string,
  json: Readonly<Record<string, unknown>>,
): Promise<CreatedToken> {
  const response = await api(server, 'POST', `/tokens/v2/${username}`, { token: adminToken, json });
  assert.equal(response.status, 200, response.text);
  return response.body as CreatedToken;
}

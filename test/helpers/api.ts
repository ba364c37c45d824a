import assert from 'node:assert/strict';
import type { Clock } from '../../src/core/ports.ts';
import type { TokenMetadata } from '../../src/core/tokens.ts';
import { startConfiguredServer, type TestServer } from './server.ts';

/** Rate limit for files that are not about rate limiting: high enough never to get in the way. */
const GENEROUS_LIMITS = { tokensApi: { limit: 100_000, interval: 60 } };

/**
 * Starts the real server with a TESSERA_CONFIG file (by default a generous Tokens API limit, so a
 * file can make many requests with one account); `env` adds or overrides variables.
 */
export async function startApiServer(
  options: {
    readonly limits?: object;
    readonly clock?: Clock;
    readonly env?: Readonly<Record<string, string>>;
  } = {},
): Promise<TestServer> {
  return startConfiguredServer(
    { limits: options.limits ?? GENEROUS_LIMITS },
    { ...(options.clock ? { clock: options.clock } : {}), ...(options.env ? { env: options.env } : {}) },
  );
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed JSON body, or undefined when the body is empty or not JSON. */
  readonly body: unknown;
}

export interface ApiRequest {
  readonly token?: string;
  /** Sent as JSON with `Content-Type: application/json`. */
  readonly json?: unknown;
  /** Sent as is (with whatever `headers` say). */
  readonly body?: string | Uint8Array | ReadableStream<Uint8Array>;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One request to the real server. Never follows redirects, so a 3xx is seen as such. */
export async function api(
  server: TestServer,
  method: string,
  path: string,
  request: ApiRequest = {},
): Promise<ApiResponse> {
  const url = new URL(path, server.url);
  if (request.token !== undefined) url.searchParams.append('access_token', request.token);
  const headers: Record<string, string> = { ...request.headers };
  let body: string | Uint8Array | ReadableStream<Uint8Array> | undefined = request.body;
  if (request.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(request.json);
  }
  const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: 'manual' };
  if (body !== undefined) init.body = body;
  if (body instanceof ReadableStream) init.duplex = 'half';
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: parseJson(text) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Asserts an error answer: the status and exactly `{"message": message}` as JSON. */
export function assertError(response: ApiResponse, status: number, message: string): void {
  assert.equal(response.status, status, `expected ${status}, got ${response.status}: ${response.text}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(response.body, { message });
}

/** Every live token of an account with all its metadata, read past the HTTP layer (and its limit). */
export async function tokensOf(server: TestServer, username: string): Promise<TokenMetadata[]> {
  const page = await server.services.tokens.list({ kind: 'operator' }, username, {
    sortBy: 'created',
    limit: 10_000,
  });
  return page.tokens;
}

/** Runs `action` and asserts the account's tokens are exactly as before. */
export async function assertUnchanged(
  server: TestServer,
  username: string,
  action: () => Promise<void>,
): Promise<void> {
  const before = await tokensOf(server, username);
  await action();
  assert.deepEqual(await tokensOf(server, username), before);
}

/** Creates a token through the service layer, as the operator would. */
export async function createToken(
  server: TestServer,
  username: string,
  fields: { readonly scopes: readonly string[]; readonly note?: string; readonly expiresAt?: string },
): Promise<TokenMetadata & { readonly token: string }> {
  const created = await server.services.tokens.create({ kind: 'operator' }, username, {
    note: fields.note ?? '',
    scopes: fields.scopes,
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: fields.expiresAt ?? null,
  });
  if (!created.token) throw new Error('the create response carries no token');
  return created as TokenMetadata & { readonly token: string };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../core/decision.ts';
import { SCOPE_ID_PATTERN } from '../core/scopes.ts';
import type { Logger } from '../logging/logger.ts';
import type { RateLimitResult } from '../services/rate-limiter.ts';
import {
  SERVICE_PATTERN,
  type Verdict,
  type VerificationService,
  type VerifyRequest,
} from '../services/verification-service.ts';

export const FORWARD_AUTH_PATH = '/auth/verify';

type Headers = Record<string, string>;

class BadRequest extends Error {}

/**
 * `GET /auth/verify` for nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth` and Envoy
 * `ext_authz` (HTTP mode, `path_prefix: /auth/verify`). It runs on plain `node:http`, outside the web
 * framework: this is the hot path. Any failure to decide is a refusal (503), never an admission.
 */
export function createForwardAuthHandler(
  verification: VerificationService,
  logger: Logger,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    answer(req, res, verification).catch((error: unknown) => {
      if (error instanceof BadRequest)
        return send(res, req, 400, { 'Cache-Control': 'no-store' }, error.message);
      logger.error('forward-auth could not decide', { error: String(error) });
      send(res, req, 503, { 'Retry-After': '5', 'Cache-Control': 'no-store' }, 'Service Unavailable');
    });
  };
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  verification: VerificationService,
): Promise<void> {
  const auth = authRequest(req);
  const verdict = await verification.verify(readRequest(req, auth));
  // In Envoy's form the query is the client's own: only an operator's auth URL may ask for this.
  const asForbidden = !auth.envoy && auth.query.get('rate_limit_status') === '403';
  respond(req, res, verdict, { rateLimitAs403: asForbidden });
}

/**
 * The original request, from whichever gateway convention carries it. Gateways pass the client's
 * own headers on, so a client can add the headers of another convention: conventions that
 * disagree are refused, and the scope is only ever the operator's (the auth URL's query, or for
 * Envoy, whose auth URL is the client's path and query, a header the proxy sets).
 */
function readRequest(req: IncomingMessage, auth: AuthRequest): VerifyRequest {
  const { envoy, suffix, query: authQuery, headers } = auth;
  const single = (name: string): string | undefined => headers.get(name);
  const original = agreed(
    'original request URIs',
    single('x-original-uri'),
    single('x-forwarded-uri'),
    envoy ? suffix : undefined,
  );
  const method = agreed(
    'original request methods',
    single('x-original-method'),
    single('x-forwarded-method'),
    envoy ? req.method : undefined,
  );
  const scope = envoy ? single('x-tessera-scope') : (authQuery.get('scope') ?? undefined);
  // The scope is the operator's, but it is still input: an answer never repeats what is not a scope name.
  if (scope && !SCOPE_ID_PATTERN.test(scope)) {
    throw new BadRequest('scope must be a scope name such as styles:read');
  }
  // The route map tells reads from writes by the method: without one it cannot decide, so it does not guess.
  if (method === undefined && !scope && original !== undefined) {
    throw new BadRequest(
      'The gateway sent no original request method (X-Original-Method or X-Forwarded-Method)',
    );
  }
  const service = envoy ? single('x-tessera-service') : (authQuery.get('service') ?? undefined);
  if (service && !SERVICE_PATTERN.test(service)) {
    throw new BadRequest('service must be 1-32 characters of a-z, 0-9, ".", "_" or "-"');
  }
  // Gateways send an absolute path; anything else must at least parse (and then fails the route map).
  if (
    original !== undefined &&
    !original.startsWith('/') &&
    !URL.canParse(original, 'http://tessera.invalid')
  ) {
    throw new BadRequest('The original request URI cannot be parsed');
  }
  return {
    token: tokenOf(single('authorization'), original),
    scope,
    service,
    origin: single('origin'),
    referer: single('referer'),
    method: method ?? 'GET',
    path: original === undefined ? undefined : original.split('?')[0],
  };
}

/** The value the conventions that give one agree on; two different ones are refused. */
function agreed(
  what: string,
  a: string | undefined,
  b: string | undefined,
  c: string | undefined,
): string | undefined {
  const value = a ?? b ?? c;
  if (
    (a !== undefined && a !== value) ||
    (b !== undefined && b !== value) ||
    (c !== undefined && c !== value)
  )
    throw new BadRequest(`The gateway headers name two different ${what}`);
  return value;
}

interface AuthRequest {
  /** Envoy's form: the original path follows `/auth/verify`, and the query is the client's. */
  readonly envoy: boolean;
  /** The original path and query as sent: the URL parser would resolve `..` before normalisePath judged it. */
  readonly suffix: string;
  readonly query: URLSearchParams;
  readonly headers: ReadonlyMap<string, string>;
}

/** The auth request itself, read without the URL parser (this is the hot path). */
function authRequest(req: IncomingMessage): AuthRequest {
  const raw = req.url ?? '/';
  const queryStart = raw.indexOf('?');
  const path = queryStart < 0 ? raw : raw.slice(0, queryStart);
  const envoy = path !== FORWARD_AUTH_PATH;
  return {
    envoy,
    suffix: envoy ? raw.slice(FORWARD_AUTH_PATH.length) : '',
    query: new URLSearchParams(queryStart < 0 || envoy ? '' : raw.slice(queryStart + 1)),
    headers: wantedHeaders(req.rawHeaders),
  };
}

/** The headers forward-auth reads; each is refused when sent more than once. */
export const FORWARD_AUTH_HEADERS = [
  'x-original-uri',
  'x-forwarded-uri',
  'x-original-method',
  'x-forwarded-method',
  'x-tessera-scope',
  'x-tessera-service',
  'origin',
  'referer',
  'authorization',
] as const;

const WANTED: ReadonlySet<string> = new Set(FORWARD_AUTH_HEADERS);

/** The headers this endpoint reads, in one pass; a header sent twice is ambiguous, so it is refused. */
function wantedHeaders(raw: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (let index = 0; index < raw.length; index += 2) {
    const name = (raw[index] as string).toLowerCase();
    if (!WANTED.has(name)) continue;
    if (found.has(name)) throw new BadRequest(`The ${name} header is given more than once`);
    found.set(name, raw[index + 1] as string);
  }
  return found;
}

/** The first `access_token` of the original URI, or a Bearer header; two different ones are refused. */
function tokenOf(header: string | undefined, original: string | undefined): string | undefined {
  const fromQuery = original === undefined ? undefined : queryToken(queryOf(original));
  if (header === undefined || !/^Bearer(\s|$)/i.test(header)) return fromQuery;
  const bearer = /^Bearer +([^\s,]+) *$/i.exec(header)?.[1] ?? '';
  if (fromQuery && fromQuery !== bearer)
    throw new BadRequest('The request carries two different access tokens');
  // A Bearer header without a token is a malformed token: refused as such (401), never as missing.
  return bearer || 'malformed';
}

/** The `access_token` of a query: repeated is fine (some clients append it twice), different is not. */
function queryToken(query: URLSearchParams): string | undefined {
  const [first, ...others] = query.getAll('access_token').filter(Boolean);
  if (others.some((other) => other !== first))
    throw new BadRequest('The request carries two different access tokens');
  return first;
}

/** The query of a request URI, as the URL parser would read it (without the fragment). */
function queryOf(uri: string): URLSearchParams {
  const start = uri.indexOf('?');
  if (start < 0) return new URLSearchParams();
  const end = uri.indexOf('#', start);
  return new URLSearchParams(uri.slice(start + 1, end < 0 ? undefined : end));
}

function respond(
  req: IncomingMessage,
  res: ServerResponse,
  verdict: Verdict,
  options: { rateLimitAs403: boolean },
): void {
  const { decision } = verdict;
  // Gateways read headers, not dates: one header less on every answer of the hot path.
  res.sendDate = false;
  const headers: Headers = { 'Cache-Control': 'no-store' };
  if (verdict.rateLimit) addRateHeaders(headers, verdict.rateLimit);
  if (decision.allowed) {
    headers['X-Tessera-Username'] = decision.username;
    if (decision.tokenId) headers['X-Tessera-Token-Id'] = decision.tokenId;
    headers['X-Tessera-Token-Usage'] = decision.usage;
    headers['X-Tessera-Scopes'] = decision.scopes.join(' ');
    headers['X-Tessera-Service'] = verdict.service;
    headers['Content-Length'] = '0';
    res.writeHead(200, headers);
    res.end();
    return;
  }
  headers['X-Tessera-Reason'] = decision.reason;
  Object.assign(headers, challenge(decision));
  if (decision.retryAfter !== undefined) headers['Retry-After'] = String(decision.retryAfter);
  const status = decision.status === 429 && options.rateLimitAs403 ? 403 : decision.status;
  send(res, req, status, headers, decision.message);
}

function challenge(decision: Extract<Decision, { allowed: false }>): Headers {
  if (decision.status === 401 && decision.reason === 'missing')
    return { 'WWW-Authenticate': 'Bearer realm="tessera"' };
  if (decision.status === 401) {
    return {
      'WWW-Authenticate': `Bearer realm="tessera", error="invalid_token", error_description="${decision.message}"`,
    };
  }
  if (decision.reason === 'scope')
    return { 'WWW-Authenticate': 'Bearer realm="tessera", error="insufficient_scope"' };
  return {};
}

function addRateHeaders(headers: Headers, rateLimit: RateLimitResult): void {
  headers['X-Rate-Limit-Interval'] = String(rateLimit.interval);
  headers['X-Rate-Limit-Limit'] = String(rateLimit.limit);
  headers['X-Rate-Limit-Remaining'] = String(rateLimit.remaining);
  headers['X-Rate-Limit-Reset'] = String(rateLimit.reset);
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  headers: Headers,
  message: string,
): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ message });
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

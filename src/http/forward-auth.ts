import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../core/decision.ts';
import type { Logger } from '../logging/logger.ts';
import type { RateLimitResult } from '../services/rate-limiter.ts';
import type { Verdict, VerificationService, VerifyRequest } from '../services/verification-service.ts';

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
  const authUrl = new URL(req.url ?? '/', 'http://tessera.invalid');
  const verdict = await verification.verify(readRequest(req, authUrl));
  // In Envoy's form the query is the client's own: only an operator's auth URL may ask for this.
  const envoy = authUrl.pathname !== FORWARD_AUTH_PATH;
  const asForbidden = !envoy && authUrl.searchParams.get('rate_limit_status') === '403';
  respond(req, res, verdict, { rateLimitAs403: asForbidden });
}

/**
 * The original request, from whichever gateway convention carries it. Gateways pass the client's
 * own headers on, so a client can add the headers of another convention: conventions that
 * disagree are refused, and the scope is only ever the operator's (the auth URL's query, or for
 * Envoy, whose auth URL is the client's path and query, a header the proxy sets).
 */
function readRequest(req: IncomingMessage, authUrl: URL): VerifyRequest {
  // Envoy's path as sent: the URL parser would resolve `..` before normalisePath could judge it.
  const rawUrl = req.url ?? '';
  const suffix = rawUrl.startsWith(FORWARD_AUTH_PATH) ? rawUrl.slice(FORWARD_AUTH_PATH.length) : '';
  const envoy = suffix.startsWith('/');
  const original = agreed(
    'original request URIs',
    single(req, 'x-original-uri'),
    single(req, 'x-forwarded-uri'),
    envoy ? suffix : undefined,
  );
  const method =
    agreed(
      'original request methods',
      single(req, 'x-original-method'),
      single(req, 'x-forwarded-method'),
      envoy ? req.method : undefined,
    ) ?? 'GET';
  const originalUrl = original === undefined ? undefined : parseOriginal(original);
  const scope = envoy ? single(req, 'x-tessera-scope') : (authUrl.searchParams.get('scope') ?? undefined);
  const service = envoy
    ? single(req, 'x-tessera-service')
    : (authUrl.searchParams.get('service') ?? undefined);
  return {
    token: tokenOf(req, originalUrl),
    scope,
    service,
    origin: single(req, 'origin'),
    referer: single(req, 'referer'),
    method,
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

function parseOriginal(original: string): URL {
  try {
    return new URL(original, 'http://tessera.invalid');
  } catch {
    throw new BadRequest('The original request URI cannot be parsed');
  }
}

/** The first `access_token` of the original URI, or a Bearer header; two different ones are refused. */
function tokenOf(req: IncomingMessage, original: URL | undefined): string | undefined {
  const fromQuery = original?.searchParams.get('access_token') || undefined;
  const header = single(req, 'authorization');
  if (header === undefined || !/^Bearer(\s|$)/i.test(header)) return fromQuery;
  const bearer = /^Bearer +([^\s,]+) *$/i.exec(header)?.[1] ?? '';
  if (fromQuery && fromQuery !== bearer)
    throw new BadRequest('The request carries two different access tokens');
  // A Bearer header without a token is a malformed token: refused as such (401), never as missing.
  return bearer || 'malformed';
}

/** One value of a header; a header sent twice is ambiguous, so it is refused. */
function single(req: IncomingMessage, name: string): string | undefined {
  const values = req.headersDistinct[name];
  if (values === undefined) return undefined;
  if (values.length !== 1) throw new BadRequest(`The ${name} header is given more than once`);
  return values[0];
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
  const headers: Headers = { 'Cache-Control': 'no-store', ...rateHeaders(verdict.rateLimit) };
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

function rateHeaders(rateLimit: RateLimitResult | undefined): Headers {
  if (!rateLimit) return {};
  return {
    'X-Rate-Limit-Interval': String(rateLimit.interval),
    'X-Rate-Limit-Limit': String(rateLimit.limit),
    'X-Rate-Limit-Remaining': String(rateLimit.remaining),
    'X-Rate-Limit-Reset': String(rateLimit.reset),
  };
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

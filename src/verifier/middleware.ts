import type { MiddlewareHandler } from 'hono';
import type { Decision } from '../core/decision.ts';
import type { Verifier, VerifyInput } from './create-verifier.ts';

export interface GuardOptions {
  /** The scope every request through this guard needs; else the route map decides. */
  readonly scope?: string;
  readonly service?: string;
}

type Refusal = Extract<Decision, { allowed: false }>;

/** What a refused request is answered with: the status, `{message}`, and the headers that explain it. */
export function refusalResponse(decision: Refusal): {
  status: number;
  headers: Record<string, string>;
  body: { message: string };
} {
  const headers: Record<string, string> = { 'X-Tessera-Reason': decision.reason };
  if (decision.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="tessera"';
  if (decision.retryAfter !== undefined) headers['Retry-After'] = String(decision.retryAfter);
  return { status: decision.status, headers, body: { message: decision.message } };
}

/**
 * The token of a request: the first `access_token` query value or an `Authorization: Bearer` header
 * (other schemes are ignored); two different ones are refused as malformed.
 */
export function tokenFromRequest(url: string, authorization: string | undefined): string | undefined {
  const [first, ...others] = splitUrl(url).query.getAll('access_token').filter(Boolean);
  if (others.some((other) => other !== first)) return 'malformed';
  const fromQuery = first;
  if (authorization === undefined || !/^Bearer(\s|$)/i.test(authorization)) return fromQuery;
  const bearer = /^Bearer +([^\s,]+) *$/i.exec(authorization)?.[1];
  // A Bearer header without a token, or one that disagrees with the query, is a malformed credential.
  return bearer && (!fromQuery || fromQuery === bearer) ? bearer : 'malformed';
}

interface ExpressLikeRequest {
  readonly method: string;
  readonly originalUrl?: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly headersDistinct?: Readonly<Record<string, string[] | undefined>>;
}

interface ExpressLikeResponse {
  status(code: number): ExpressLikeResponse;
  set(headers: Record<string, string>): ExpressLikeResponse;
  json(body: unknown): unknown;
  locals: Record<string, unknown>;
}

/**
 * Express (4 or 5) middleware: refuses what `/auth/verify` would refuse, with the same status and
 * `{message}`; puts the allowed decision in `res.locals.tessera`. Fails closed with 503.
 */
export function tesseraExpress(
  verifier: Verifier,
  options: GuardOptions = {},
): (req: ExpressLikeRequest, res: ExpressLikeResponse, next: (error?: unknown) => void) => void {
  return (req, res, next) => {
    const url = req.originalUrl ?? req.url;
    const input = inputOf(req.method, url, (name) => distinct(req, name), options);
    verifier.verify(input).then(
      (decision) => {
        if (decision.allowed) {
          res.locals.tessera = decision;
          return next();
        }
        const refusal = refusalResponse(decision);
        res.status(refusal.status).set(refusal.headers).json(refusal.body);
      },
      () => {
        res.status(503).set({ 'Retry-After': '5' }).json({ message: 'Service Unavailable' });
      },
    );
  };
}

/** Hono middleware: the same, with the allowed decision in `c.get('tessera')`. */
export function tesseraHono(
  verifier: Verifier,
  options: GuardOptions = {},
): MiddlewareHandler<{ Variables: { tessera: Decision } }> {
  return async (c, next) => {
    const input = inputOf(c.req.method, c.req.url, (name) => c.req.header(name), options);
    let decision: Decision;
    try {
      decision = await verifier.verify(input);
    } catch {
      return c.json({ message: 'Service Unavailable' }, 503, { 'Retry-After': '5' });
    }
    if (!decision.allowed) {
      const refusal = refusalResponse(decision);
      return c.json(refusal.body, refusal.status as 401, refusal.headers);
    }
    c.set('tessera', decision);
    await next();
    return undefined;
  };
}

function inputOf(
  method: string,
  url: string,
  header: (name: string) => string | undefined,
  options: GuardOptions,
): VerifyInput {
  return {
    token: tokenFromRequest(url, header('authorization')),
    scope: options.scope,
    service: options.service,
    origin: header('origin'),
    referer: header('referer'),
    method,
    path: splitUrl(url).path,
  };
}

/**
 * Path and query as the request gave them. Express hands over the raw target, which goes to the
 * route map unresolved (it refuses dot segments and other ambiguous paths); Hono hands over an
 * absolute URL its router also uses.
 */
function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const absolute = /^https?:\/\//i.test(url);
  const start = absolute ? url.indexOf('/', url.indexOf('//') + 2) : 0;
  const target = start < 0 ? '/' : url.slice(start);
  const queryStart = target.indexOf('?');
  const fragment = target.indexOf('#');
  const path = queryStart < 0 ? target : target.slice(0, queryStart);
  const query = queryStart < 0 ? '' : target.slice(queryStart + 1, fragment < 0 ? undefined : fragment);
  return { path, query: new URLSearchParams(query) };
}

/** One header value; a credential sent twice is ambiguous, so it reads as malformed. */
function distinct(req: ExpressLikeRequest, name: string): string | undefined {
  const values = req.headersDistinct?.[name];
  if (name === 'authorization' && values && values.length > 1) return 'Bearer malformed';
  return header(req.headers[name]);
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

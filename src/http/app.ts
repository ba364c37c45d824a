import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { clientAddress } from '../core/client-address.ts';
import { ERRORS, isTesseraError } from '../core/errors.ts';
import { dashboardRoutes } from '../dashboard/dashboard.ts';
import { cookieNames } from '../dashboard/security.ts';
import { type Logger, redact } from '../logging/logger.ts';
import type { Services } from '../services/create-services.ts';
import { isDatabaseUnavailable } from '../storage/database.ts';
import { auditRoutes } from './audit-routes.ts';
import { leakRoutes } from './leak-routes.ts';
import { openApiDocument } from './openapi.ts';
import { assignRequestId, requestIdOf } from './request-id.ts';
import { tokensRoutes } from './tokens-routes.ts';
import { usageRoutes } from './usage-routes.ts';

export interface AppOptions {
  readonly logger: Logger;
  /** The external origin, resolved once the server listens (it may have asked for port 0). */
  readonly publicUrl: () => string;
}

const API_PREFIXES = ['/tokens/', '/scopes/', '/usage/'];
const EXPOSED_HEADERS =
  'Link, Retry-After, X-Rate-Limit-Interval, X-Rate-Limit-Limit, X-Rate-Limit-Reset, X-Request-Id';

export function createApp(services: Services, options: AppOptions): Hono {
  const app = new Hono();
  app.use(async (c, next) => {
    const started = performance.now();
    const requestId = assignRequestId(c.req.raw);
    await next();
    c.header('X-Request-Id', requestId);
    c.header('X-Content-Type-Options', 'nosniff');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
    if (isApiPath(c.req.path)) applyCors(c);
    options.logger.info('request', {
      requestId,
      method: c.req.method,
      url: loggableUrl(new URL(c.req.url)),
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });
  app.options('*', (c) => {
    if (!isApiPath(c.req.path)) return c.json({ message: 'Not found' }, 404);
    c.header('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE');
    c.header('Access-Control-Allow-Headers', 'Content-Type, Authorization');
    c.header('Access-Control-Max-Age', '86400');
    return c.body(null, 204);
  });
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await services.store.ping();
      return c.json({ status: 'ready' });
    } catch {
      c.header('Retry-After', '5');
      return c.json({ status: 'unavailable', message: 'the store is not reachable' }, 503);
    }
  });
  app.get('/metrics', (c) => {
    c.header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    return c.body(services.renderMetrics());
  });
  app.get('/openapi.json', (c) => c.json(openApiDocument(options.publicUrl())));
  // Browsers get the dashboard; API clients asking for the root get the service index.
  app.get('/', (c) => {
    if (!(c.req.header('accept') ?? '').includes('text/html')) return c.json(serviceIndex());
    const signedIn = getCookie(c, cookieNames(options.publicUrl().startsWith('https:')).session);
    return c.redirect(
      `${new URL(options.publicUrl()).pathname.replace(/\/+$/, '')}${signedIn ? '/account' : '/signin'}`,
      303,
    );
  });
  const addressOf = (c: Context) => requestAddress(c, services);
  app.route('/', dashboardRoutes(services, { ...options, clientAddress: addressOf }));
  app.route('/', tokensRoutes(services, { publicUrl: options.publicUrl, clientAddress: addressOf }));
  app.route('/', auditRoutes(services, { publicUrl: options.publicUrl }));
  app.route('/', leakRoutes(services, { clientAddress: addressOf }));
  app.route('/', usageRoutes(services));
  app.notFound((c) => c.json({ message: ERRORS.not_found.message }, 404));
  app.onError((error, c) => {
    if (isTesseraError(error)) return c.json({ message: error.message }, error.status as 400);
    if (isDatabaseUnavailable(error)) {
      // Nothing was half-written (every write is one transaction). A write whose answer timed out may
      // still have committed on the server, as with any lost answer: the client can look before it retries.
      options.logger.warn('database unavailable', {
        requestId: requestIdOf(c.req.raw),
        path: c.req.path,
        code: String((error as { code?: unknown }).code ?? ''),
        error: String((error as Error).message ?? error),
      });
      c.header('Retry-After', '5');
      return c.json({ message: ERRORS.unavailable.message }, 503);
    }
    options.logger.error('unhandled error', {
      requestId: requestIdOf(c.req.raw),
      error: redact(String((error as Error).stack ?? error)),
    });
    return c.json({ message: ERRORS.internal.message }, 500);
  });
  return app;
}

const SECRET_PARAMS = new Set(['access_token', 'token', 'password']);

/**
 * The request URL as the log shows it: rebuilt from the decoded query, so no spelling of
 * `access_token` (percent-encoded name, encoded dots) slips past; the logger redacts token shapes too.
 */
function loggableUrl(url: URL): string {
  const query = [...url.searchParams]
    .map(([name, value]) => {
      const shown = SECRET_PARAMS.has(name.toLowerCase()) ? '[REDACTED]' : encodeURIComponent(value);
      return `${encodeURIComponent(name)}=${shown}`;
    })
    .join('&');
  return safeDecode(url.pathname) + (query ? `?${query}` : '');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function isApiPath(path: string): boolean {
  return API_PREFIXES.some((prefix) => path.startsWith(prefix)) || path === '/tokens/v2';
}

/** Mapbox's web services allow cross-origin requests from anywhere; `Link` must be readable for paging. */
function applyCors(c: Context): void {
  c.header('Access-Control-Allow-Origin', '*');
  c.header('Access-Control-Expose-Headers', EXPOSED_HEADERS);
}

/** The socket peer, or behind a configured trusted proxy the nearest untrusted `X-Forwarded-For` hop. */
function requestAddress(c: Context, services: Services): string {
  let socket: string | undefined;
  try {
    socket = getConnInfo(c).remote.address;
  } catch {
    socket = undefined; // app.request() in tests has no socket
  }
  return clientAddress(socket, c.req.header('x-forwarded-for'), services.config.trustedProxies);
}

function serviceIndex(): object {
  return {
    name: 'Tessera',
    description: 'Access tokens for HTTP APIs, compatible with the Mapbox Tokens API',
    links: { openapi: '/openapi.json', health: '/healthz', readiness: '/readyz' },
  };
}

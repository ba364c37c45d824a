import { readFileSync } from 'node:fs';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { isTesseraError } from '../core/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { redact } from '../logging/logger.ts';
import type { Services } from '../services/create-services.ts';
import { formToken } from '../services/session-crypto.ts';
import { isDatabaseUnavailable } from '../storage/database.ts';
import { auditRoutes } from './audit-log.ts';
import { authRoutes } from './auth-routes.ts';
import { readForm } from './forms.ts';
import { createKit, type DashboardEnv, type DashboardOptions, errorResponse, type Kit } from './kit.ts';
import { rotateRoutes } from './rotate-routes.ts';
import { isSameOriginRequest, securityHeaders, tokensEqual } from './security.ts';
import { statisticsRoutes } from './statistics.ts';
import { tokenRoutes } from './token-routes.ts';

/** Every path the dashboard answers; its middleware is registered on these only, never on the APIs. */
const PATHS = ['/signin', '/signup', '/signout', '/account', '/account/*', '/assets/*'];
const ANONYMOUS_FORMS = new Set(['/signin', '/signup']);
const FORM_EXPIRED = 'This form has expired. Reload the page and try again.';

export function dashboardRoutes(services: Services, options: DashboardOptions): Hono<DashboardEnv> {
  const kit = createKit(services, services.sessions, options);
  const app = new Hono<DashboardEnv>();
  const https = () => options.publicUrl().startsWith('https:');
  const [headers, session] = [securityHeaders({ https }), loadSession(kit)];
  // The origin check comes before the session check: a cross-site post arrives without the Lax
  // session cookie, and it must be refused as such (403), not sent to sign in (303).
  const origin = checkOrigin(kit);
  for (const path of PATHS) app.use(path, headers, session, origin);
  app.use('/account', requireSession(kit));
  app.use('/account/*', requireSession(kit));
  for (const path of PATHS) app.use(path, checkForm(kit));
  serveAssets(app);
  authRoutes(app, kit);
  tokenRoutes(app, kit);
  rotateRoutes(app, kit);
  statisticsRoutes(app, kit);
  auditRoutes(app, kit);
  // Registered last, so it answers only what no route above did: without it, a browser asking for a
  // mistyped /account page got the API's JSON 404.
  for (const path of PATHS) app.all(path, (c) => errorResponse(kit, c, 404, 'This page does not exist.'));
  app.onError((error, c) => {
    if (isTesseraError(error) && error.status < 500)
      return errorResponse(kit, c, error.status, capitalise(error.message));
    if (isTesseraError(error) && error.code === 'unavailable') {
      c.header('Retry-After', '1');
      return errorResponse(kit, c, 503, capitalise(error.message));
    }
    if (isDatabaseUnavailable(error)) {
      options.logger.warn('database unavailable', {
        requestId: requestIdOf(c.req.raw),
        path: c.req.path,
        code: String((error as { code?: unknown }).code ?? ''),
        error: String((error as Error).message ?? error),
      });
      c.header('Retry-After', '5');
      return errorResponse(
        kit,
        c,
        503,
        'The database is not reachable right now. Nothing was changed; try again shortly.',
      );
    }
    options.logger.error('unhandled error', {
      requestId: requestIdOf(c.req.raw),
      error: redact(String((error as Error).stack ?? error)),
    });
    return errorResponse(kit, c, 500, 'Something went wrong on our side. Try again in a moment.');
  });
  return app;
}

function loadSession(kit: Kit): MiddlewareHandler<DashboardEnv> {
  // Hono's '/account/*' also matches '/account', so this runs twice there; without the mark a
  // missing session was looked up twice and its cookie cleared with two Set-Cookie lines.
  const loaded = new WeakSet<Request>();
  return async (c, next) => {
    if (loaded.has(c.req.raw) || c.req.path.startsWith('/assets/')) return next();
    loaded.add(c.req.raw);
    const id = getCookie(c, kit.cookies().session);
    // Two session cookies mean one was planted (a sibling host or path can set one over plain
    // http): trust neither rather than the one the browser happened to send first.
    const session = hasDuplicate(c.req.header('cookie'), kit.cookies().session)
      ? undefined
      : await kit.sessions.resume(id);
    c.set('session', session);
    if (id !== undefined && !session) kit.clearSessionCookie(c);
    await next();
  };
}

function hasDuplicate(header: string | undefined, name: string): boolean {
  if (!header) return false;
  return header.split(';').filter((pair) => pair.trim().startsWith(`${name}=`)).length > 1;
}

/** Account pages need a live session: pages send the browser to sign in and come back after. */
function requireSession(kit: Kit): MiddlewareHandler<DashboardEnv> {
  return async (c, next) => {
    if (c.get('session')) return next();
    const url = new URL(c.req.url);
    const expired = getCookie(c, kit.cookies().session) !== undefined;
    // Routes are mounted at the root: a proxy serving a path prefix strips it before Tessera sees the path.
    const next_ = c.req.method === 'GET' ? `${url.pathname}${url.search}` : '/account';
    const query = new URLSearchParams({ next: next_, ...(expired ? { reason: 'expired' } : {}) });
    return kit.redirect(c, `/signin?${query}`);
  };
}

/**
 * Every state-changing request must come from our own pages: same origin by fetch metadata,
 * `Origin` or `Referer` (here), and carrying the form token bound to this browser's session (or,
 * on the sign-in and sign-up forms, to its anonymous cookie, so login CSRF fails too; `checkForm`).
 */
function checkOrigin(kit: Kit): MiddlewareHandler<DashboardEnv> {
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    // The pages take only GET and POST. Refusing other methods here, before anything is read, keeps
    // a future PUT or DELETE route from running without the checks (T52).
    if (c.req.method !== 'POST') {
      c.header('Allow', 'GET, HEAD, POST');
      return errorResponse(kit, c, 405, 'This method is not allowed here.');
    }
    if (!isSameOriginRequest(c, kit.allowedOrigins(c))) {
      return errorResponse(kit, c, 403, 'This form was sent from another site, so it was refused.');
    }
    await next();
  };
}

function checkForm(kit: Kit): MiddlewareHandler<DashboardEnv> {
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD' || c.get('form')) return next();
    const form = await readForm(c);
    const anonymous = ANONYMOUS_FORMS.has(c.req.path);
    const secret = anonymous ? kit.anonymousId(c) : c.get('session')?.id;
    const expected = secret && formToken(secret, anonymous ? 'anonymous' : 'session');
    if (!expected || !tokensEqual(form.get('_csrf'), expected))
      return errorResponse(kit, c, 403, FORM_EXPIRED);
    c.set('form', form);
    await next();
  };
}

const ASSET_TYPES: Readonly<Record<string, string>> = {
  'tessera.css': 'text/css; charset=utf-8',
  'tessera.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** The stylesheet and script, read once; `assets/` sits at the package root beside `src/` and `dist/`. */
function serveAssets(app: Hono<DashboardEnv>): void {
  const root = new URL('../../assets/', import.meta.url);
  const files = new Map(Object.keys(ASSET_TYPES).map((name) => [name, readFileSync(new URL(name, root))]));
  app.get('/assets/:file', (c: Context) => {
    const name = c.req.param('file') ?? '';
    const body = files.get(name);
    if (!body) return c.json({ message: 'Not found' }, 404);
    c.header('Content-Type', ASSET_TYPES[name] ?? 'application/octet-stream');
    c.header('Cache-Control', 'public, max-age=300');
    return c.body(new Uint8Array(body));
  });
}

function capitalise(text: string): string {
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return sentence.endsWith('.') ? sentence : `${sentence}.`;
}

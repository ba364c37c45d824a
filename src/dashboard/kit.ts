import { isIP } from 'node:net';
import type { Context, Env } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { Authorizer } from '../core/authorizer.ts';
import { TesseraError } from '../core/errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { Services } from '../services/create-services.ts';
import { formToken, newSessionId } from '../services/session-crypto.ts';
import type { Session, SessionService } from '../services/session-service.ts';
import { errorPage } from './auth-pages.ts';
import { passwordConfirmPage } from './confirm-pages.ts';
import type { Form } from './forms.ts';
import { type CookieNames, cookieNames } from './security.ts';
import type { Markup, PageContext } from './view.ts';

export interface DashboardEnv extends Env {
  Variables: {
    session: Session | undefined;
    form: Form | undefined;
  };
}

export type DashboardContext = Context<DashboardEnv>;

export interface DashboardOptions {
  readonly publicUrl: () => string;
  /** The address a request comes from, for throttling (see client-address.ts). */
  readonly clientAddress: (c: Context) => string;
  /** Security events (lockouts, sessions ended by wrong confirmations) go here; never secrets. */
  readonly logger: Logger;
}

export interface Kit {
  readonly services: Services;
  readonly sessions: SessionService;
  readonly options: DashboardOptions;
  cookies(): CookieNames;
  base(): string;
  /** The origins a form post may come from. */
  allowedOrigins(c: Context): string[];
  page(c: DashboardContext, section?: PageContext['section']): PageContext;
  session(c: DashboardContext): Session;
  authorizer(c: DashboardContext): Authorizer;
  form(c: DashboardContext): Form;
  anonymousId(c: Context): string | undefined;
  ensureAnonymousId(c: Context): string;
  setSessionCookie(c: Context, session: Session): void;
  clearSessionCookie(c: Context): void;
  redirect(c: Context, path: string): Response;
  html(c: Context, markup: Markup, status?: number): Response;
}

export function createKit(services: Services, sessions: SessionService, options: DashboardOptions): Kit {
  const https = (): boolean => options.publicUrl().startsWith('https:');
  const cookies = (): CookieNames => cookieNames(https());
  const base = (): string => new URL(options.publicUrl()).pathname.replace(/\/+$/, '');
  const cookieOptions = () => ({ path: '/', httpOnly: true, sameSite: 'Lax', secure: https() }) as const;

  const kit: Kit = {
    services,
    sessions,
    options,
    cookies,
    base,
    allowedOrigins(c) {
      const origins = [new URL(options.publicUrl()).origin];
      // Without an explicit public URL, the Host the browser used is our origin too (localhost vs
      // 127.0.0.1, a LAN address), but only an address or localhost: a name an attacker controls
      // could be rebound to this server (DNS rebinding) and would then pass as same-origin.
      const host = c.req.header('host');
      if (services.config.publicUrl === null && host && isLiteralHost(host)) origins.push(`http://${host}`);
      return origins;
    },
    page(c, section) {
      const session = c.get('session');
      const secret = session ? session.id : kit.ensureAnonymousId(c);
      return {
        base: base(),
        formToken: formToken(secret, session ? 'session' : 'anonymous'),
        ...(session ? { username: session.record.username } : {}),
        ...(section ? { section } : {}),
      };
    },
    session(c) {
      const session = c.get('session');
      if (!session) throw new TesseraError('unauthorized');
      return session;
    },
    authorizer(c) {
      return { kind: 'account', username: kit.session(c).record.username };
    },
    form(c) {
      const form = c.get('form');
      if (!form) throw new TypeError('the form is read by the CSRF check first');
      return form;
    },
    anonymousId(c) {
      const value = getCookie(c, cookies().anonymous);
      return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
    },
    ensureAnonymousId(c) {
      const existing = kit.anonymousId(c);
      if (existing) return existing;
      const id = newSessionId(services.random);
      setCookie(c, cookies().anonymous, id, cookieOptions());
      // Later calls in the same request must see the same id.
      c.req.raw.headers.set('cookie', `${cookies().anonymous}=${id}`);
      return id;
    },
    setSessionCookie(c, session) {
      setCookie(c, cookies().session, session.id, cookieOptions());
    },
    clearSessionCookie(c) {
      setCookie(c, cookies().session, '', { ...cookieOptions(), maxAge: 0 });
    },
    redirect(c, path) {
      return c.redirect(`${base()}${path}`, 303);
    },
    html(c, markup, status = 200) {
      return c.html(markup, status as 200);
    },
  };
  return kit;
}

function isLiteralHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  if (name === 'localhost') return true;
  return isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0;
}

export type ConfirmGate =
  | { readonly confirmed: true }
  | { readonly confirmed: false; readonly response: Response };

/**
 * Creating, changing, deleting or refreshing a token needs a recent password confirmation (5 min).
 * Without one, answers 403 with the password form, carrying the submitted fields through.
 */
export async function requireConfirmation(
  kit: Kit,
  c: DashboardContext,
  purpose: string,
): Promise<ConfirmGate> {
  const session = kit.session(c);
  const form = kit.form(c);
  const carried = form.entries(['_csrf', 'password']);
  const ask = (notice?: { kind: 'error'; text: string }) => ({
    confirmed: false as const,
    response: kit.html(
      c,
      passwordConfirmPage(kit.page(c, 'tokens'), {
        purpose,
        action: `${kit.base()}${c.req.path}`,
        carried,
        ...(notice ? { notice } : {}),
      }),
      403,
    ),
  });
  if (!form.has('password')) return kit.sessions.isConfirmed(session) ? { confirmed: true } : ask();
  const result = await kit.sessions.confirm(session, form.get('password'));
  if (result.outcome === 'confirmed') {
    c.set('session', result.session);
    kit.setSessionCookie(c, result.session);
    return { confirmed: true };
  }
  if (result.outcome === 'revoked') {
    logRevoked(kit, c, session, result.reason);
    kit.clearSessionCookie(c);
    return { confirmed: false, response: kit.redirect(c, revokedPath(result.reason)) };
  }
  const attempts = result.remaining === 1 ? '1 attempt' : `${result.remaining} attempts`;
  return ask({ kind: 'error', text: `Incorrect password. ${attempts} left before you are signed out.` });
}

/**
 * Operators must see a session ended by wrong confirmations (T46): it means someone holding the
 * cookie is guessing the password. Only the username and a hash prefix of the session: no secrets.
 */
export function logRevoked(kit: Kit, c: Context, session: Session, reason: 'failures' | 'ended'): void {
  if (reason !== 'failures') return;
  kit.options.logger.warn('session revoked after wrong password confirmations', {
    username: session.record.username,
    session: session.record.idHash.slice(0, 12),
    client: kit.options.clientAddress(c),
  });
}

/** A session that was already gone was not ended by wrong passwords: do not say it was. */
export function revokedPath(reason: 'failures' | 'ended'): string {
  return `/signin?reason=${reason === 'failures' ? 'revoked' : 'expired'}`;
}

/** An HTML page for browsers, the JSON `{message}` for anything else. */
export function errorResponse(kit: Kit, c: DashboardContext, status: number, message: string): Response {
  const accept = c.req.header('accept') ?? '';
  if (!accept.includes('text/html')) return c.json({ message }, status as 400);
  const title = status === 404 ? 'Not found' : status === 429 ? 'Too many requests' : 'Something went wrong';
  return kit.html(c, errorPage(kit.page(c), title, message), status);
}

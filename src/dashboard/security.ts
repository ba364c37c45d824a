import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

/**
 * Headers for every dashboard response. `Referrer-Policy: same-origin` rather than `no-referrer`:
 * with the latter Chromium sends `Origin: null` on same-origin form posts, which the origin check refuses.
 */
export function securityHeaders(options: { readonly https: () => boolean }): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CSP);
    c.header('X-Frame-Options', 'DENY');
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'same-origin');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    c.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    if (options.https()) c.header('Strict-Transport-Security', 'max-age=31536000');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  };
}

export interface CookieNames {
  readonly session: string;
  readonly anonymous: string;
  readonly secure: boolean;
}

/** Behind https the cookies take the `__Host-` prefix: Secure, Path=/, no Domain, so no subdomain can plant them. */
export function cookieNames(https: boolean): CookieNames {
  const prefix = https ? '__Host-' : '';
  return { session: `${prefix}tessera_session`, anonymous: `${prefix}tessera_form`, secure: https };
}

/**
 * Did this state-changing request come from our own pages? Fetch metadata first, then `Origin`,
 * then `Referer`. A request with none of them still needs the form token, which a cross-site
 * page cannot read.
 */
export function isSameOriginRequest(c: Context, allowedOrigins: readonly string[]): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = c.req.header('origin');
  if (origin !== undefined) return allowedOrigins.includes(origin);
  const referer = c.req.header('referer');
  if (referer === undefined) return true;
  try {
    return allowedOrigins.includes(new URL(referer).origin);
  } catch {
    return false;
  }
}

export function tokensEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const SAFE_NEXT = /^\/account(?:\/[A-Za-z0-9_-]+)*(?:\?[A-Za-z0-9_=&%.-]*)?$/;

/**
 * Where to go after signing in: only our own account pages, spelt plainly. Anything else (other
 * hosts, `//host`, backslashes, encoded slashes, `javascript:`) falls back to the tokens page.
 */
export function safeNext(next: string | undefined): string {
  if (!next || next.length > 512 || !SAFE_NEXT.test(next) || /%(2f|5c)/i.test(next)) return '/account';
  return next;
}

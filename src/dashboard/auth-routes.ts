import type { Hono } from 'hono';
import { throttlingKey } from '../core/client-address.ts';
import { isTesseraError } from '../core/errors.ts';
import { isUsername } from '../core/identifiers.ts';
import { passwordPage, signInPage, signUpClosedPage, signUpPage } from './auth-pages.ts';
import { type DashboardEnv, type Kit, logRevoked, revokedPath } from './kit.ts';
import { safeNext } from './security.ts';
import type { Notice } from './view.ts';

const SIGNED_IN_NOTICES: Readonly<Record<string, Notice>> = {
  'signed-out': { kind: 'success', text: 'You have signed out.' },
  revoked: { kind: 'error', text: 'You were signed out after too many wrong passwords. Sign in again.' },
  expired: { kind: 'error', text: 'Your session has ended. Sign in again.' },
};

/** Sign in, sign up, sign out and change password. */
export function authRoutes(app: Hono<DashboardEnv>, kit: Kit): void {
  const { sessions, services } = kit;

  app.get('/signin', (c) => {
    const next = safeNext(c.req.query('next'));
    if (c.get('session')) return kit.redirect(c, next);
    const notice = SIGNED_IN_NOTICES[c.req.query('reason') ?? ''];
    const view = { next, signupOpen: services.config.signup === 'open', ...(notice ? { notice } : {}) };
    return kit.html(c, signInPage(kit.page(c), view));
  });

  app.post('/signin', async (c) => {
    const form = kit.form(c);
    const next = safeNext(form.get('next'));
    const username = form.get('username');
    const result = await sessions.signIn(username, form.get('password'), kit.options.clientAddress(c));
    if (result.outcome === 'signed-in') {
      const previous = c.get('session');
      if (previous) await sessions.signOut(previous);
      kit.setSessionCookie(c, result.session);
      return kit.redirect(c, next);
    }
    const view = { next, username: username.slice(0, 64), signupOpen: services.config.signup === 'open' };
    if (result.outcome === 'throttled') {
      // A lockout must be visible to operators (T38): one line per refused attempt, never the password.
      kit.options.logger.warn('sign-in throttled', {
        // A password typed into the username field must not reach the log: only username-shaped names do.
        username: isUsername(username) ? username : '[not a username]',
        client: kit.options.clientAddress(c),
        retryAfterSeconds: result.retryAfterSeconds,
      });
      c.header('Retry-After', String(result.retryAfterSeconds));
      const text = `Too many sign-in attempts. Try again in ${waitText(result.retryAfterSeconds)}.`;
      return kit.html(c, signInPage(kit.page(c), { ...view, notice: { kind: 'error', text } }), 429);
    }
    const notice: Notice = { kind: 'error', text: 'Incorrect username or password.' };
    return kit.html(c, signInPage(kit.page(c), { ...view, notice }), 401);
  });

  app.get('/signup', (c) => {
    if (services.config.signup !== 'open') return kit.html(c, signUpClosedPage(kit.page(c)), 404);
    if (c.get('session')) return kit.redirect(c, '/account');
    return kit.html(c, signUpPage(kit.page(c), {}));
  });

  app.post('/signup', async (c) => {
    if (services.config.signup !== 'open') return kit.html(c, signUpClosedPage(kit.page(c)), 404);
    const form = kit.form(c);
    const input = {
      username: form.get('username'),
      email: form.get('email'),
      password: form.get('password'),
    };
    const view = { username: input.username.slice(0, 32), email: input.email.slice(0, 254) };
    const limit = services.rateLimiter.hit(
      `signup:${throttlingKey(kit.options.clientAddress(c))}`,
      SIGNUP_LIMIT,
      services.clock.now(),
    );
    if (!limit.allowed) {
      c.header('Retry-After', String(Math.max(1, limit.reset - Math.floor(services.clock.now() / 1000))));
      const notice: Notice = {
        kind: 'error',
        text: 'Too many accounts created from this address. Try again later.',
      };
      return kit.html(c, signUpPage(kit.page(c), { ...view, notice }), 429);
    }
    try {
      const session = await sessions.signUp(input, kit.options.clientAddress(c));
      const previous = c.get('session');
      if (previous) await sessions.signOut(previous);
      kit.setSessionCookie(c, session);
      await sessions.setFlash(session, {
        notice: `Welcome to Tessera, ${input.username}. Here is your default public token.`,
      });
      return kit.redirect(c, '/account');
    } catch (error) {
      if (!isTesseraError(error) || error.status >= 500) throw error;
      const text =
        error.code === 'conflict' ? 'That username is taken. Choose another.' : capitalise(error.message);
      return kit.html(c, signUpPage(kit.page(c), { ...view, notice: { kind: 'error', text } }), error.status);
    }
  });

  app.post('/signout', async (c) => {
    const session = c.get('session');
    if (session) await sessions.signOut(session);
    kit.clearSessionCookie(c);
    return kit.redirect(c, '/signin?reason=signed-out');
  });

  app.get('/account/password', (c) => kit.html(c, passwordPage(kit.page(c))));

  app.post('/account/password', async (c) => {
    const form = kit.form(c);
    const fail = (text: string, status: number) =>
      kit.html(c, passwordPage(kit.page(c), { kind: 'error', text }), status);
    if (form.get('newPassword') !== form.get('repeatPassword'))
      return fail('The new passwords do not match.', 422);
    const result = await sessions.changePassword(
      kit.session(c),
      form.get('currentPassword'),
      form.get('newPassword'),
      kit.options.clientAddress(c),
    );
    if (result.outcome === 'invalid') return fail(capitalise(result.message), 422);
    if (result.outcome === 'revoked') {
      logRevoked(kit, c, kit.session(c), result.reason);
      kit.clearSessionCookie(c);
      return kit.redirect(c, revokedPath(result.reason));
    }
    if (result.outcome === 'wrong') return fail('Your current password is incorrect.', 403);
    const session = result.outcome === 'changed' ? result.session : kit.session(c);
    kit.setSessionCookie(c, session);
    await sessions.setFlash(session, { notice: 'Password changed. Your other sessions were signed out.' });
    return kit.redirect(c, '/account');
  });
}

/** Sign-ups cost an argon2 hash each: a few per address per hour. */
const SIGNUP_LIMIT = { limit: 10, interval: 3600 };

function waitText(seconds: number): string {
  if (seconds < 90) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

function capitalise(text: string): string {
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return sentence.endsWith('.') ? sentence : `${sentence}.`;
}

import { type Context, Hono } from 'hono';
import type { AuditEvent } from '../core/audit.ts';
import { TesseraError } from '../core/errors.ts';
import type { Services } from '../services/create-services.ts';
import { accessTokenOf } from './access-token.ts';

export interface AuditRoutesOptions {
  /** The external origin (with any path prefix) that `Link` headers point to. */
  readonly publicUrl: () => string;
}

/** `GET /audit/v1/{username}`: the account's audit log, newest first, paged like the token list. */
export function auditRoutes(services: Services, options: AuditRoutesOptions): Hono {
  const app = new Hono();
  app.get('/audit/v1/:username', async (c) => {
    const authorizer = await services.tokens.authenticate(accessTokenOf(c));
    const username = c.req.param('username');
    const params = new URL(c.req.url).searchParams;
    const limit = parseLimit(params.get('limit'));
    const start = params.get('start');
    const page = await services.audit.list(authorizer, username, {
      limit,
      ...(start === null ? {} : { start }),
    });
    if (page.next)
      c.header('Link', `<${nextPageUrl(c, options.publicUrl(), username, page.next)}>; rel="next"`);
    return c.json(page.events.map(toWire));
  });
  return app;
}

/** The documented shape: `{id, time, action, actor, channel, ip, target}` and `details` when there are any. */
export function toWire(event: AuditEvent): object {
  const { id, time, action, actor, channel, ip, target, details } = event;
  return { id, time, action, actor, channel, ip, target, ...(details ? { details } : {}) };
}

function parseLimit(text: string | null): number {
  if (text === null) return 100;
  const limit = Number(text);
  if (!/^\d{1,3}$/.test(text) || limit < 1 || limit > 100) {
    throw new TesseraError('invalid_field', 'limit must be an integer from 1 to 100');
  }
  return limit;
}

/** Absolute, on the public origin, and never with the access token in it. */
function nextPageUrl(c: Context, publicUrl: string, username: string, start: string): string {
  const next = new URLSearchParams();
  const limit = new URL(c.req.url).searchParams.get('limit');
  if (limit !== null) next.set('limit', limit);
  next.set('start', start);
  return `${publicUrl}/audit/v1/${encodeURIComponent(username)}?${next}`;
}

import { type Context, Hono } from 'hono';
import type { Authorizer } from '../core/authorizer.ts';
import { TesseraError } from '../core/errors.ts';
import type { TokenSortKey } from '../core/store.ts';
import type { Services } from '../services/create-services.ts';
import type { ListOptions } from '../services/token-service.ts';
import { accessTokenOf } from './access-token.ts';
import { readJsonBody } from './json-body.ts';
import {
  isTemporaryRequest,
  parseCreateBody,
  parseRotateBody,
  parseTemporaryBody,
  parseUpdateBody,
} from './token-bodies.ts';

export interface TokensRoutesOptions {
  /** The external origin (with any path prefix) that `Link` headers point to. */
  readonly publicUrl: () => string;
  /** The client's address, recorded in the audit log. */
  readonly clientAddress: (c: Context) => string;
}

const LIST_PARAMS = ['limit', 'sortby', 'usage', 'default'] as const;

/** The Mapbox-compatible Tokens API v2 and the Scopes API. Handlers parse, call one service, answer. */
export function tokensRoutes(services: Services, options: TokensRoutesOptions): Hono {
  const app = new Hono();
  const { tokens } = services;

  app.get('/tokens/v2', async (c) => {
    const token = accessTokenOf(c);
    if (!token) throw new TesseraError('access_token_required');
    const { code, token: parsed } = await tokens.inspect(token);
    return c.json(parsed ? { code, token: describe(parsed) } : { code });
  });

  app.get('/tokens/v2/:username', async (c) => {
    const authorizer = await authenticate(c, services);
    const username = c.req.param('username');
    const query = parseListQuery(c);
    const page = await tokens.list(authorizer, username, query);
    if (page.next)
      c.header('Link', `<${nextPageUrl(c, options.publicUrl(), username, page.next)}>; rel="next"`);
    return c.json(page.tokens);
  });

  app.post('/tokens/v2/:username', async (c) => {
    const authorizer = await authenticate(c, services);
    const body = await readJsonBody(c);
    const username = c.req.param('username');
    const result = isTemporaryRequest(body)
      ? await tokens.createTemporary(authorizer, username, parseTemporaryBody(body))
      : await tokens.create(authorizer, username, parseCreateBody(body), { ip: options.clientAddress(c) });
    return c.json(result);
  });

  app.patch('/tokens/v2/:username/:id', async (c) => {
    const authorizer = await authenticate(c, services);
    const request = parseUpdateBody(await readJsonBody(c));
    const origin = { ip: options.clientAddress(c) };
    return c.json(
      await tokens.update(authorizer, c.req.param('username'), c.req.param('id'), request, origin),
    );
  });

  app.delete('/tokens/v2/:username/:id', async (c) => {
    const authorizer = await authenticate(c, services);
    await tokens.remove(authorizer, c.req.param('username'), c.req.param('id'), {
      ip: options.clientAddress(c),
    });
    return c.body(null, 204);
  });

  // Tessera extension: a new token with the same settings; the old one works for the grace period.
  app.post('/tokens/v2/:username/:id/rotate', async (c) => {
    const authorizer = await authenticate(c, services);
    const request = parseRotateBody(await readJsonBody(c));
    const origin = { ip: options.clientAddress(c) };
    return c.json(
      await tokens.rotate(authorizer, c.req.param('username'), c.req.param('id'), request, origin),
    );
  });

  app.get('/scopes/v1/:username', async (c) => {
    const authorizer = await authenticate(c, services);
    return c.json(await tokens.listScopes(authorizer, c.req.param('username')));
  });

  return app;
}

const TOKENS_API_SCOPES = ['tokens:read', 'tokens:write', 'scopes:list'];

async function authenticate(c: Context, services: Services): Promise<Authorizer> {
  const authorizer = await services.tokens.authenticate(accessTokenOf(c));
  // Only tokens that may use this API count, so a public token cannot lock its account out.
  if (authorizer.kind === 'token' && authorizer.scopes.some((scope) => TOKENS_API_SCOPES.includes(scope))) {
    applyRateLimit(c, services, authorizer.username);
  }
  return authorizer;
}

/** Mapbox's Tokens API limit: per account, with its three headers on every answer. */
function applyRateLimit(c: Context, services: Services, username: string): void {
  const result = services.rateLimiter.hit(
    `tokens-api:${username}`,
    services.config.tokensApiRateLimit,
    services.clock.now(),
  );
  c.header('X-Rate-Limit-Interval', String(result.interval));
  c.header('X-Rate-Limit-Limit', String(result.limit));
  c.header('X-Rate-Limit-Reset', String(result.reset));
  if (!result.allowed) {
    c.header('Retry-After', String(Math.max(1, result.reset - Math.floor(services.clock.now() / 1000))));
    throw new TesseraError('rate_limited');
  }
}

function parseListQuery(c: Context): ListOptions {
  const params = new URL(c.req.url).searchParams;
  const usage = params.get('usage');
  if (usage !== null && usage !== 'pk' && usage !== 'sk') throw new TesseraError('usage_invalid');
  const isDefault = params.get('default');
  if (isDefault !== null && isDefault !== 'true' && isDefault !== 'false') {
    throw new TesseraError('invalid_field', 'default must be true or false');
  }
  const sortBy = params.get('sortby') ?? 'created';
  if (sortBy !== 'created' && sortBy !== 'modified') {
    throw new TesseraError('invalid_field', 'sortby must be created or modified');
  }
  const limitText = params.get('limit') ?? '100';
  const limit = Number(limitText);
  if (!/^\d{1,3}$/.test(limitText) || limit < 1 || limit > 100) {
    throw new TesseraError('invalid_field', 'limit must be an integer from 1 to 100');
  }
  const start = params.get('start');
  return {
    sortBy: sortBy as TokenSortKey,
    limit,
    ...(usage === null ? {} : { usage }),
    ...(isDefault === null ? {} : { isDefault: isDefault === 'true' }),
    ...(start === null ? {} : { start }),
  };
}

/** Absolute, on the public origin, and never with the access token in it. */
function nextPageUrl(c: Context, publicUrl: string, username: string, start: string): string {
  const current = new URL(c.req.url).searchParams;
  const next = new URLSearchParams();
  for (const name of LIST_PARAMS) {
    const value = current.get(name);
    if (value !== null) next.set(name, value);
  }
  next.set('start', start);
  return `${publicUrl}/tokens/v2/${encodeURIComponent(username)}?${next}`;
}

function describe(token: NonNullable<Awaited<ReturnType<Services['tokens']['inspect']>>['token']>): object {
  if (token.usage !== 'tk') return { usage: token.usage, user: token.username, authorization: token.tokenId };
  return {
    usage: 'tk',
    user: token.username,
    expires: new Date(token.expires * 1000).toISOString(),
    created: new Date(token.issuedAt * 1000).toISOString(),
    scopes: token.scopes,
    client: 'api',
  };
}

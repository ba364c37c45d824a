import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { TesseraError } from '../core/errors.ts';
import { isTokenId } from '../core/identifiers.ts';
import type { Services } from '../services/create-services.ts';
import type { UsageRequest } from '../services/usage-service.ts';
import { accessTokenOf } from './access-token.ts';

const isoTime = z.iso.datetime({ offset: true });

/** `GET /usage/v1/{username}`: request counts per service and period (Tessera's extension). */
export function usageRoutes(services: Services): Hono {
  const app = new Hono();
  app.get('/usage/v1/:username', async (c) => {
    const authorizer = await services.tokens.authenticate(accessTokenOf(c));
    return c.json(
      await services.usageReports.report(authorizer, c.req.param('username'), parseUsageQuery(c)),
    );
  });
  return app;
}

function parseUsageQuery(c: Context): UsageRequest {
  const params = new URL(c.req.url).searchParams;
  const period = params.get('period') ?? 'day';
  if (period !== 'hour' && period !== 'day')
    throw new TesseraError('invalid_field', 'period must be hour or day');
  const token = params.get('token');
  if (token !== null && !isTokenId(token)) throw new TesseraError('not_found');
  const start = time(params, 'start');
  const end = time(params, 'end');
  return {
    period,
    ...(start === undefined ? {} : { start }),
    ...(end === undefined ? {} : { end }),
    ...(token === null ? {} : { tokenId: token }),
  };
}

function time(params: URLSearchParams, name: 'start' | 'end'): number | undefined {
  const value = params.get(name);
  if (value === null) return undefined;
  const ms = Date.parse(value);
  if (!isoTime.safeParse(value).success || Number.isNaN(ms) || ms < 0 || ms > 253_402_300_799_000) {
    throw new TesseraError('invalid_field', `${name} must be an ISO 8601 time`);
  }
  return ms;
}

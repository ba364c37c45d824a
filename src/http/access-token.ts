import type { Context } from 'hono';
import { TesseraError } from '../core/errors.ts';

/**
 * The access token of an API request: the first `access_token` query value (how Mapbox clients
 * send it) or an `Authorization: Bearer` header. Two different tokens in one request are refused.
 * A malformed Bearer header is 401; other authorization schemes are ignored.
 */
export function accessTokenOf(c: Context): string | undefined {
  const fromQuery = new URL(c.req.url).searchParams.get('access_token') ?? undefined;
  const header = c.req.header('authorization');
  // Other schemes (Basic for a proxy in front, say) are not ours to read.
  if (header === undefined || !/^Bearer(\s|$)/i.test(header)) return fromQuery || undefined;
  const match = /^Bearer +([^\s,]+) *$/i.exec(header);
  if (!match) throw new TesseraError('unauthorized');
  if (fromQuery && fromQuery !== match[1]) {
    throw new TesseraError('bad_request', 'the request carries two different access tokens');
  }
  return match[1];
}

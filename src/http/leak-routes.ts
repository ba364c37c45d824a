import { verify } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { auditSource, systemSource } from '../core/audit.ts';
import { TesseraError } from '../core/errors.ts';
import type { Services } from '../services/create-services.ts';
import { accessTokenOf } from './access-token.ts';
import { readJsonText } from './json-body.ts';

export interface LeakRoutesOptions {
  /** The client's address, recorded in the audit log. */
  readonly clientAddress: (c: Context) => string;
}

const MAX_MATCHES = 1000;
const MAX_FIELD = 2048;

/**
 * Leak reports (Tessera extension): GitHub secret scanning's partner endpoint, signed with
 * GitHub's ECDSA keys, and a report endpoint for any valid token of the leaked token's account.
 */
export function leakRoutes(services: Services, options: LeakRoutesOptions): Hono {
  const app = new Hono();
  const { leaks } = services;

  app.post('/leaks/v1/github', async (c) => {
    const keys = services.config.githubScanningKeys;
    if (keys.size === 0) throw new TesseraError('not_found');
    const keyId = c.req.header('github-public-key-identifier') ?? '';
    const signature = c.req.header('github-public-key-signature') ?? '';
    // Without a known key and a well-formed signature the body is not even read.
    const key = keys.get(keyId);
    if (!key || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature) || signature.length > 512) {
      throw new TesseraError('unauthorized', 'signature missing or from an unknown key');
    }
    // The signature covers the exact bytes sent.
    const { text, value } = await readJsonText(c);
    let valid = false;
    try {
      valid = verify('sha256', Buffer.from(text, 'utf8'), key, Buffer.from(signature, 'base64'));
    } catch {
      valid = false;
    }
    if (!valid) throw new TesseraError('unauthorized', 'signature does not match the body');
    const matches = parseMatches(value);
    const source = systemSource('github-secret-scanning', options.clientAddress(c));
    const answers = [];
    for (const match of matches) {
      const outcome = await leaks.handle(
        { token: match.token, source: 'github', ...(match.url ? { url: match.url } : {}) },
        source,
      );
      answers.push({ token_raw: match.token, token_type: match.type, label: outcome.label });
    }
    return c.json(answers);
  });

  app.post('/leaks/v1/report', async (c) => {
    const authorizer = await services.tokens.authenticate(accessTokenOf(c));
    if (authorizer.kind !== 'token') throw new TesseraError('unauthorized');
    // Public tokens sit in web pages: their holders must not spend the account's report budget.
    if (authorizer.usage === 'pk') {
      throw new TesseraError(
        'forbidden',
        'reporting a leak takes a secret (sk) or temporary token of the account',
      );
    }
    const limit = services.rateLimiter.hit(
      `leak-report:${authorizer.username}`,
      services.config.tokensApiRateLimit,
      services.clock.now(),
    );
    if (!limit.allowed) throw new TesseraError('rate_limited');
    const { value } = await readJsonText(c);
    const report = parseReport(value);
    const outcome = await leaks.handle(
      { token: report.token, source: 'report', ...(report.url ? { url: report.url } : {}) },
      auditSource(authorizer, options.clientAddress(c)),
      authorizer.username,
    );
    if (outcome.label === 'false_positive') {
      throw new TesseraError('invalid_field', 'token is not a token of this account');
    }
    return c.json({ id: outcome.tokenId ?? null, action: outcome.action });
  });

  return app;
}

interface Match {
  readonly token: string;
  readonly type: string;
  readonly url?: string;
}

function parseMatches(value: unknown): Match[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_MATCHES) {
    throw new TesseraError('invalid_field', `the body must be an array of 1 to ${MAX_MATCHES} matches`);
  }
  return value.map((item) => {
    const { token, type, url } = (item ?? {}) as Record<string, unknown>;
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_FIELD) {
      throw new TesseraError('invalid_field', 'each match needs a "token" string');
    }
    if (typeof type !== 'string' || type.length > 200) {
      throw new TesseraError('invalid_field', 'each match needs a "type" string');
    }
    return { token, type, ...(typeof url === 'string' ? { url: url.slice(0, MAX_FIELD) } : {}) };
  });
}

function parseReport(value: unknown): { readonly token: string; readonly url?: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TesseraError('bad_request', 'request body must be a JSON object');
  }
  const { token, url, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0)
    throw new TesseraError('invalid_field', 'the body takes only token and url');
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_FIELD) {
    throw new TesseraError('invalid_field', 'token must be the leaked token');
  }
  if (url !== undefined && (typeof url !== 'string' || url.length > MAX_FIELD)) {
    throw new TesseraError('invalid_field', 'url must be a string of at most 2048 characters');
  }
  return { token, ...(typeof url === 'string' ? { url } : {}) };
}

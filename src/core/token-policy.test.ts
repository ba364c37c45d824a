import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Authorizer } from './authorizer.ts';
import { type ErrorCode, TesseraError } from './errors.ts';
import { buildCatalogue, dedupeScopes, hasSecretScope } from './scopes.ts';
import type { Usage } from './token-format.ts';
import {
  type CreateRequest,
  MAX_ALLOWED_URLS,
  MAX_TEMPORARY_LIFETIME_MS,
  planCreate,
  planTemporary,
  planUpdate,
} from './token-policy.ts';
import { isoTime, type TokenRecord } from './tokens.ts';

const catalogue = buildCatalogue();
const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const PUBLIC = ['styles:read', 'fonts:read'];
const ALL = [...catalogue.keys()];

function tokenAuthorizer(
  scopes: readonly string[],
  usage: Usage = 'sk',
  expires: number | null = null,
): Authorizer {
  return { kind: 'token', username: 'alice', usage, scopes, tokenId: `c${'a'.repeat(24)}`, expires };
}

const operator: Authorizer = { kind: 'operator' };

function request(changes: Partial<CreateRequest> = {}): CreateRequest {
  return {
    note: 'n',
    scopes: PUBLIC,
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
    ...changes,
  };
}

function current(changes: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: `c${'b'.repeat(24)}`,
    username: 'alice',
    usage: 'pk',
    isDefault: false,
    note: 'old',
    scopes: PUBLIC,
    allowedUrls: null,
    extensions: { resources: ['r1'], allowedApis: ['api-styles'] },
    rateLimit: null,
    expiresAt: null,
    tokenHash: '0'.repeat(64),
    token: null,
    created: isoTime(NOW - 1000),
    modified: isoTime(NOW - 1000),
    deletedAt: null,
    version: 3,
    ...changes,
  };
}

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => error instanceof TesseraError && error.code === code);
}

describe('planCreate', () => {
  test('property: succeeds iff the requested scopes are known and held by the authorizer', () => {
    const scopeList = fc.array(fc.constantFrom(...ALL, 'unknown:scope'), { maxLength: 12 });
    fc.assert(
      fc.property(fc.subarray(ALL), scopeList, (granted, requested) => {
        const authorizer = tokenAuthorizer(granted);
        const allowed = requested.every((scope) => granted.includes(scope));
        if (!allowed) {
          throwsCode(
            () => planCreate(request({ scopes: requested }), { authorizer, catalogue, now: NOW }),
            'scopes_invalid',
          );
          return;
        }
        const plan = planCreate(request({ scopes: requested }), { authorizer, catalogue, now: NOW });
        assert.deepEqual(plan.scopes, [...new Set(requested)]);
        assert.equal(
          plan.usage,
          requested.some((scope) => catalogue.get(scope)?.public === false) ? 'sk' : 'pk',
        );
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('the operator may use every known scope but no unknown one', () => {
    const plan = planCreate(request({ scopes: [...ALL, ...ALL] }), {
      authorizer: operator,
      catalogue,
      now: NOW,
    });
    assert.deepEqual(plan.scopes, dedupeScopes(ALL));
    assert.equal(plan.usage, 'sk');
    throwsCode(
      () => planCreate(request({ scopes: ['nope:read'] }), { authorizer: operator, catalogue, now: NOW }),
      'scopes_invalid',
    );
  });

  test('a scope-less token is public', () => {
    const plan = planCreate(request({ scopes: [] }), { authorizer: operator, catalogue, now: NOW });
    assert.equal(plan.usage, 'pk');
    assert.ok(!hasSecretScope(catalogue, plan.scopes));
  });

  test('a temporary token cannot create a persistent one', () => {
    const authorizer = tokenAuthorizer(ALL, 'tk', NOW / 1000 + 60);
    throwsCode(() => planCreate(request(), { authorizer, catalogue, now: NOW }), 'forbidden');
  });

  test('allowedUrls: at most 100 valid entries', () => {
    const context = { authorizer: operator, catalogue, now: NOW };
    const urls = Array.from(
      { length: MAX_ALLOWED_URLS },
      (_unused, index) => `https://s${index}.example.com`,
    );
    assert.deepEqual(planCreate(request({ allowedUrls: urls }), context).allowedUrls, urls);
    throwsCode(
      () => planCreate(request({ allowedUrls: [...urls, 'https://x.example.com'] }), context),
      'invalid_field',
    );
    throwsCode(() => planCreate(request({ allowedUrls: ['javascript:alert(1)'] }), context), 'invalid_field');
  });

  test('expiresAt must lie in the future', () => {
    const context = { authorizer: operator, catalogue, now: NOW };
    throwsCode(() => planCreate(request({ expiresAt: isoTime(NOW) }), context), 'invalid_field');
    assert.equal(planCreate(request({ expiresAt: isoTime(NOW + 1) }), context).expiresAt, isoTime(NOW + 1));
  });
});

describe('planUpdate', () => {
  const context = { authorizer: tokenAuthorizer(ALL), catalogue, now: NOW };

  test('a public token can never gain a secret scope', () => {
    fc.assert(
      fc.property(fc.subarray(ALL, { minLength: 1 }), (scopes) => {
        fc.pre(hasSecretScope(catalogue, scopes));
        throwsCode(() => planUpdate(current(), { scopes }, context), 'scopes_invalid');
        throwsCode(
          () => planUpdate(current(), { scopes }, { ...context, authorizer: operator }),
          'scopes_invalid',
        );
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  test('a secret token may switch between public and secret scopes', () => {
    const record = current({ usage: 'sk', scopes: ['tokens:read'] });
    assert.deepEqual(planUpdate(record, { scopes: ['styles:read'] }, context).scopes, ['styles:read']);
    assert.deepEqual(planUpdate(record, { scopes: ['map:read', 'map:read'] }, context).scopes, ['map:read']);
  });

  test('scopes cannot be widened beyond the authorizer', () => {
    const narrow = { ...context, authorizer: tokenAuthorizer(['styles:read', 'tokens:write']) };
    throwsCode(
      () => planUpdate(current(), { scopes: ['styles:read', 'fonts:read'] }, narrow),
      'scopes_invalid',
    );
    assert.deepEqual(planUpdate(current(), { scopes: ['styles:read'] }, narrow).scopes, ['styles:read']);
  });

  test('absent fields stay, null clears, values replace', () => {
    const record = current({ allowedUrls: ['https://a.example.com'], rateLimit: { limit: 5, interval: 60 } });
    assert.deepEqual(planUpdate(record, {}, context), {
      note: record.note,
      scopes: record.scopes,
      allowedUrls: record.allowedUrls,
      extensions: record.extensions,
      rateLimit: record.rateLimit,
      expiresAt: null,
    });
    const plan = planUpdate(
      record,
      {
        note: 'new',
        allowedUrls: null,
        rateLimit: null,
        extensions: { resources: null, allowedApis: ['x'] },
      },
      context,
    );
    assert.equal(plan.note, 'new');
    assert.equal(plan.allowedUrls, null);
    assert.equal(plan.rateLimit, null);
    assert.deepEqual(plan.extensions, { allowedApis: ['x'] });
  });

  test('the default token cannot get allowedUrls or expiresAt, but its note and scopes change', () => {
    const record = current({ isDefault: true });
    throwsCode(
      () => planUpdate(record, { allowedUrls: ['https://a.example.com'] }, context),
      'invalid_field',
    );
    throwsCode(() => planUpdate(record, { allowedUrls: [] }, context), 'invalid_field');
    throwsCode(() => planUpdate(record, { expiresAt: isoTime(NOW + 60_000) }, context), 'invalid_field');
    assert.equal(planUpdate(record, { note: 'renamed', scopes: ['fonts:read'] }, context).note, 'renamed');
    assert.equal(planUpdate(record, { allowedUrls: null, expiresAt: null }, context).allowedUrls, null);
  });

  test('a new expiresAt must lie in the future; an old one is kept as it is', () => {
    throwsCode(() => planUpdate(current(), { expiresAt: isoTime(NOW) }, context), 'invalid_field');
    assert.equal(planUpdate(current(), { expiresAt: isoTime(NOW + 1) }, context).expiresAt, isoTime(NOW + 1));
    const past = isoTime(NOW - 1);
    assert.equal(planUpdate(current({ expiresAt: past }), { note: 'x' }, context).expiresAt, past);
    assert.equal(planUpdate(current({ expiresAt: past }), { expiresAt: null }, context).expiresAt, null);
  });
});

describe('planTemporary', () => {
  const authorizer = tokenAuthorizer(['styles:read', 'tokens:write', 'uploads:write']);
  const context = { authorizer, catalogue, now: NOW };

  test('claims: the authorizer’s user, whole seconds, its parent id', () => {
    const claims = planTemporary(
      { expires: NOW + 60_500, scopes: ['uploads:write', 'uploads:write'] },
      context,
    );
    assert.deepEqual(claims, {
      username: 'alice',
      expires: NOW / 1000 + 60,
      issuedAt: NOW / 1000,
      scopes: ['uploads:write'],
      parentId: `c${'a'.repeat(24)}`,
    });
  });

  test('expires must be after now and at most one hour ahead', () => {
    throwsCode(() => planTemporary({ expires: NOW, scopes: [] }, context), 'expires_in_past');
    throwsCode(() => planTemporary({ expires: NOW - 1, scopes: [] }, context), 'expires_in_past');
    assert.ok(planTemporary({ expires: NOW + 1000, scopes: [] }, context));
    assert.ok(planTemporary({ expires: NOW + MAX_TEMPORARY_LIFETIME_MS, scopes: [] }, context));
    assert.equal(MAX_TEMPORARY_LIFETIME_MS, 3_600_000);
    throwsCode(() => planTemporary({ expires: NOW + 3_600_001, scopes: [] }, context), 'expires_too_far');
  });

  test('a temporary authorizer bounds the expiry', () => {
    const expires = NOW / 1000 + 600;
    const temporary = { ...context, authorizer: tokenAuthorizer(['styles:read'], 'tk', expires) };
    const claims = planTemporary({ expires: expires * 1000, scopes: ['styles:read'] }, temporary);
    assert.equal(claims.expires, expires);
    throwsCode(
      () => planTemporary({ expires: expires * 1000 + 1, scopes: ['styles:read'] }, temporary),
      'expires_beyond_authorizer',
    );
    throwsCode(
      () => planTemporary({ expires: expires * 1000 + 1000, scopes: ['styles:read'] }, temporary),
      'expires_beyond_authorizer',
    );
  });

  test('scopes must be known and held by the authorizer', () => {
    throwsCode(() => planTemporary({ expires: NOW + 1000, scopes: ['map:read'] }, context), 'scopes_invalid');
    throwsCode(() => planTemporary({ expires: NOW + 1000, scopes: ['x:y'] }, context), 'scopes_invalid');
  });

  test('only a token mints temporary tokens', () => {
    assert.throws(
      () => planTemporary({ expires: NOW + 1000, scopes: [] }, { ...context, authorizer: operator }),
      TypeError,
    );
  });
});

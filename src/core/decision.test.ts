import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide } from './decision.ts';
import type { PersistentToken, TemporaryToken } from './token-format.ts';
import type { TokenRecord } from './tokens.ts';

const ID = `c${'1'.repeat(24)}`;
const PK: PersistentToken = {
  usage: 'pk',
  username: 'alice',
  tokenId: ID,
  raw: 'pk.x.y',
  checksumValid: true,
};
const TK: TemporaryToken = {
  usage: 'tk',
  username: 'alice',
  expires: 2,
  issuedAt: 1,
  scopes: ['uploads:write'],
  keyId: 'k',
  raw: 'tk.x.y',
  signedPart: 'tk.x',
  signature: 'y',
};
const RECORD: TokenRecord = {
  id: ID,
  username: 'alice',
  usage: 'pk',
  isDefault: false,
  note: '',
  scopes: ['styles:read'],
  allowedUrls: ['https://app.example.com'],
  extensions: {},
  rateLimit: null,
  expiresAt: null,
  tokenHash: '',
  token: null,
  created: '2030-01-01T00:00:00.000Z',
  modified: '2030-01-01T00:00:00.000Z',
  deletedAt: null,
  version: 1,
};

test('every verdict but TokenValid is a 401 with its reason', () => {
  const expected = [
    ['TokenMalformed', 'malformed'],
    ['TokenInvalid', 'invalid'],
    ['TokenExpired', 'expired'],
    ['TokenRevoked', 'revoked'],
  ] as const;
  for (const [code, reason] of expected) {
    const decision = decide({ code, token: PK, record: RECORD });
    assert.ok(!decision.allowed);
    assert.equal(decision.status, 401);
    assert.equal(decision.reason, reason);
  }
  const noToken = decide({ code: 'TokenValid' });
  assert.ok(!noToken.allowed && noToken.reason === 'invalid');
});

test('a missing scope is a 403', () => {
  const decision = decide({
    code: 'TokenValid',
    token: PK,
    record: RECORD,
    scope: 'fonts:read',
    origin: 'https://app.example.com',
  });
  assert.deepEqual(decision, {
    allowed: false,
    status: 403,
    reason: 'scope',
    message: 'This request requires a token with fonts:read scope',
  });
});

test('URL restrictions apply to persistent tokens', () => {
  const input = { code: 'TokenValid', token: PK, record: RECORD, scope: 'styles:read' } as const;
  assert.deepEqual(decide({ ...input, referer: 'https://app.example.com/map' }), {
    allowed: true,
    username: 'alice',
    tokenId: ID,
    usage: 'pk',
    scopes: ['styles:read'],
  });
  const refused = decide({ ...input, referer: 'https://evil.example.com/' });
  assert.ok(!refused.allowed && refused.status === 403 && refused.reason === 'url');
  assert.ok(!decide(input).allowed);
  assert.ok(decide({ ...input, record: { ...RECORD, allowedUrls: [] } }).allowed);
  assert.ok(decide({ ...input, record: { ...RECORD, allowedUrls: null } }).allowed);
});

test('a temporary token carries its own scopes', () => {
  assert.deepEqual(decide({ code: 'TokenValid', token: TK, scope: 'uploads:write' }), {
    allowed: true,
    username: 'alice',
    tokenId: null,
    usage: 'tk',
    scopes: ['uploads:write'],
  });
  assert.ok(!decide({ code: 'TokenValid', token: TK, scope: 'styles:read' }).allowed);
});

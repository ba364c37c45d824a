import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  hashToken,
  issuePersistentToken,
  issueTemporaryToken,
  type PersistentToken,
  parseToken,
  type SigningKey,
  type TemporaryClaims,
  type TemporaryToken,
} from './token-format.ts';
import { assessPersistent, assessTemporary, CLOCK_LEEWAY_SECONDS } from './token-status.ts';
import { isoTime, type TokenRecord } from './tokens.ts';

const random = { bytes: (length: number) => randomBytes(length) };
const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const NOW_S = NOW / 1000;
const ID = `c${'1'.repeat(24)}`;
const KEY: SigningKey = { id: 'key1', secret: new Uint8Array(32).fill(1) };

function persistent(usage: 'pk' | 'sk' = 'sk', username = 'alice'): PersistentToken {
  const parsed = parseToken(issuePersistentToken({ usage, username, tokenId: ID }, random));
  assert.ok(parsed && parsed.usage !== 'tk');
  return parsed;
}

function recordFor(token: PersistentToken, changes: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: token.tokenId,
    username: token.username,
    usage: token.usage,
    isDefault: false,
    note: '',
    scopes: ['styles:read'],
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
    tokenHash: hashToken(token.raw),
    token: null,
    created: isoTime(NOW - 1000),
    modified: isoTime(NOW - 1000),
    deletedAt: null,
    version: 1,
    ...changes,
  };
}

const CLAIMS: TemporaryClaims = {
  username: 'alice',
  expires: NOW_S + 600,
  issuedAt: NOW_S,
  scopes: ['styles:read'],
  parentId: ID,
};

function temporary(claims: TemporaryClaims = CLAIMS): TemporaryToken {
  const parsed = parseToken(issueTemporaryToken(claims, KEY));
  assert.ok(parsed?.usage === 'tk');
  return parsed;
}

describe('assessPersistent', () => {
  test('a known token with the right secret is valid', () => {
    const token = persistent();
    assert.equal(assessPersistent(token, recordFor(token), NOW), 'TokenValid');
  });

  test('an unknown id is invalid', () => {
    assert.equal(assessPersistent(persistent(), undefined, NOW), 'TokenInvalid');
  });

  test('a wrong secret for a known id is invalid', () => {
    const token = persistent();
    const other = persistent();
    assert.equal(other.tokenId, token.tokenId);
    assert.equal(assessPersistent(other, recordFor(token), NOW), 'TokenInvalid');
  });

  test('a username or usage that differs from the record is invalid', () => {
    const token = persistent('sk', 'alice');
    assert.equal(assessPersistent(token, recordFor(token, { username: 'mallory' }), NOW), 'TokenInvalid');
    assert.equal(assessPersistent(token, recordFor(token, { usage: 'pk' }), NOW), 'TokenInvalid');
  });

  test('a token with a bad checksum is invalid even when the hash would match', () => {
    const token = persistent();
    assert.equal(assessPersistent({ ...token, checksumValid: false }, recordFor(token), NOW), 'TokenInvalid');
  });

  test('a tombstone is revoked, also when it has expired meanwhile', () => {
    const token = persistent();
    const deletedAt = isoTime(NOW - 10);
    assert.equal(assessPersistent(token, recordFor(token, { deletedAt }), NOW), 'TokenRevoked');
    const expiresAt = isoTime(NOW - 5);
    assert.equal(assessPersistent(token, recordFor(token, { deletedAt, expiresAt }), NOW), 'TokenRevoked');
  });

  test('expires at expiresAt, not before', () => {
    const token = persistent();
    const record = recordFor(token, { expiresAt: isoTime(NOW) });
    assert.equal(assessPersistent(token, record, NOW - 1), 'TokenValid');
    assert.equal(assessPersistent(token, record, NOW), 'TokenExpired');
    assert.equal(assessPersistent(token, record, NOW + 1), 'TokenExpired');
  });
});

describe('assessTemporary', () => {
  const parent = recordFor(persistent());

  test('a fresh tk with a live parent is valid', () => {
    assert.equal(assessTemporary(temporary(), KEY, parent, NOW), 'TokenValid');
  });

  test('an unknown key or a wrong key is invalid', () => {
    const token = temporary();
    assert.equal(assessTemporary(token, undefined, parent, NOW), 'TokenInvalid');
    const otherKey = { id: KEY.id, secret: new Uint8Array(32).fill(2) };
    assert.equal(assessTemporary(token, otherKey, parent, NOW), 'TokenInvalid');
  });

  test('expires at exp, not before', () => {
    const token = temporary({ ...CLAIMS, expires: NOW_S + 10 });
    assert.equal(assessTemporary(token, KEY, parent, NOW + 9_999), 'TokenValid');
    assert.equal(assessTemporary(token, KEY, parent, NOW + 10_000), 'TokenExpired');
  });

  test('is revoked when the parent is deleted, expired, missing or someone else’s', () => {
    const token = temporary();
    const cases: Array<TokenRecord | undefined> = [
      { ...parent, deletedAt: isoTime(NOW - 1) },
      { ...parent, expiresAt: isoTime(NOW) },
      undefined,
      { ...parent, username: 'mallory' },
    ];
    for (const record of cases) assert.equal(assessTemporary(token, KEY, record, NOW), 'TokenRevoked');
    assert.equal(assessTemporary(token, KEY, { ...parent, expiresAt: isoTime(NOW + 1) }, NOW), 'TokenValid');
  });

  test('a tk without a parent does not need one', () => {
    assert.equal(
      assessTemporary(
        temporary({ username: 'alice', expires: NOW_S + 1, issuedAt: NOW_S, scopes: [] }),
        KEY,
        undefined,
        NOW,
      ),
      'TokenValid',
    );
  });

  test(`is invalid when iat lies more than ${CLOCK_LEEWAY_SECONDS} s ahead`, () => {
    const atLeeway = temporary({ ...CLAIMS, issuedAt: NOW_S + CLOCK_LEEWAY_SECONDS });
    const beyond = temporary({ ...CLAIMS, issuedAt: NOW_S + CLOCK_LEEWAY_SECONDS + 1 });
    assert.equal(assessTemporary(atLeeway, KEY, parent, NOW), 'TokenValid');
    assert.equal(assessTemporary(beyond, KEY, parent, NOW), 'TokenInvalid');
  });
});

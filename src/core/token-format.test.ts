import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeBase62, encodeUint32Base62 } from './base62.ts';
import { crc32 } from './crc32.ts';
import { newTokenId } from './identifiers.ts';
import { encodePayload } from './payload.ts';
import type { RandomSource } from './ports.ts';
import { buildCatalogue } from './scopes.ts';
import {
  digestsEqual,
  hashToken,
  hasValidSignature,
  issuePersistentToken,
  issueTemporaryToken,
  type PersistentUsage,
  parseToken,
  type SigningKey,
  type TemporaryClaims,
  type TemporaryToken,
} from './token-format.ts';

interface MapboxParsed {
  readonly usage: string;
  readonly user: unknown;
  readonly authorization?: unknown;
  readonly expires?: unknown;
  readonly created?: unknown;
  readonly scopes?: unknown;
  readonly client?: unknown;
}

const requireCjs = createRequire(import.meta.url);
const parseMapboxToken = requireCjs('@mapbox/parse-mapbox-token') as (token: string) => MapboxParsed;

const STANDARD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The decoder the Mapbox SDK uses (`base-64@0.1.0`, atob semantics), written out so the test does
 * not depend on it: standard alphabet only, `len % 4 == 1` refused, one byte per output char.
 */
function strictAtob(input: string): string {
  let text = input.replace(/[\t\n\f\r ]/g, '');
  if (text.length % 4 === 0) text = text.replace(/==?$/, '');
  if (text.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(text)) throw new Error('Invalid character');
  let bits = 0;
  let bitCount = 0;
  let out = '';
  for (const char of text) {
    bits = (bits << 6) | STANDARD_ALPHABET.indexOf(char);
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      out += String.fromCharCode((bits >> bitCount) & 0xff);
      bits &= (1 << bitCount) - 1;
    }
  }
  return out;
}

/** A deterministic RandomSource (mulberry32), so fast-check seeds reproduce whole runs. */
function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return { bytes: (length) => Uint8Array.from({ length }, () => next() & 0xff) };
}

const cryptoRandom: RandomSource = { bytes: (length) => randomBytes(length) };

const username = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,31}$/);
const cuidShapedId = fc.stringMatching(/^c[a-z0-9]{24}$/);
const tokenId = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }).map((seed) => newTokenId(seededRandom(seed))),
  cuidShapedId,
);
const persistentUsage = fc.constantFrom<PersistentUsage>('pk', 'sk');
const catalogueIds = [...buildCatalogue().keys()];
const unixTime = fc.integer({ min: 0, max: 253_402_300_799 });
const keyId = fc.stringMatching(/^[0-9A-Za-z]{1,16}$/);
const signingKey = fc
  .tuple(keyId, fc.uint8Array({ minLength: 32, maxLength: 32 }))
  .map(([id, secret]): SigningKey => ({ id, secret }));
const temporaryClaims = fc
  .record({
    username,
    expires: unixTime,
    issuedAt: unixTime,
    scopes: fc.subarray(catalogueIds),
    parentId: fc.option(tokenId, { nil: undefined }),
  })
  .map(
    ({ parentId, ...rest }): TemporaryClaims => ({
      ...rest,
      ...(parentId === undefined ? {} : { parentId }),
    }),
  );

const SAFE_SEGMENT = /^[A-Za-z0-9]+$/;
const KEY = { id: 'k1', secret: new Uint8Array(32).fill(7) } satisfies SigningKey;
const OTHER_KEY = { id: 'k1', secret: new Uint8Array(32).fill(8) } satisfies SigningKey;

function splitToken(raw: string): [string, string, string] {
  const parts = raw.split('.');
  assert.equal(parts.length, 3, `${raw} has exactly three parts`);
  return parts as [string, string, string];
}

/** A tk-shaped string around any JSON object, with a well-formed (but wrong) signature. */
function fakeTemporary(json: Record<string, unknown>): string {
  const payload = encodePayload(json);
  assert.ok(payload, 'test payload encodes');
  return `tk.${payload}.${'A'.repeat(43)}`;
}

const GOOD_TK_CLAIMS = {
  u: 'alice',
  exp: 1_700_000_600,
  iat: 1_700_000_000,
  scopes: ['styles:read'],
  client: 'api',
  kid: 'abc123',
};

describe('persistent tokens (pk/sk)', () => {
  test('the payload is safe base64 that the SDK decodes to exactly the encoded JSON', () => {
    fc.assert(
      fc.property(persistentUsage, username, tokenId, fc.integer(), (usage, user, id, seed) => {
        const raw = issuePersistentToken({ usage, username: user, tokenId: id }, seededRandom(seed));
        const [prefix, payload, signature] = splitToken(raw);
        assert.equal(prefix, usage);
        assert.match(payload, SAFE_SEGMENT);
        assert.equal(strictAtob(payload), JSON.stringify({ u: user, a: id }));
        assert.deepEqual(parseMapboxToken(raw), { usage, user, authorization: id });
        assert.match(signature, /^[0-9A-Za-z]{49}$/);
        assert.deepEqual(parseToken(raw), { usage, username: user, tokenId: id, raw, checksumValid: true });
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('the secret part is 32 random bytes in 43 base62 chars, then a 6-char CRC-32 of the rest', () => {
    const requested: number[] = [];
    const secret = new Uint8Array(32).map((_byte, index) => index * 7 + 1);
    const random: RandomSource = {
      bytes: (length) => {
        requested.push(length);
        return secret.slice(0, length);
      },
    };
    const raw = issuePersistentToken(
      { usage: 'sk', username: 'alice', tokenId: `c${'a'.repeat(24)}` },
      random,
    );
    assert.deepEqual(requested, [32]);
    const signature = splitToken(raw)[2];
    assert.equal(signature.slice(0, 43), encodeBase62(secret));
    assert.equal(signature.slice(43), encodeUint32Base62(crc32(raw.slice(0, -6))));
  });

  test('every single-character change is unparseable or fails the checksum', () => {
    const tokens = Array.from({ length: 8 }, (_unused, index) =>
      issuePersistentToken(
        {
          usage: index % 2 ? 'sk' : 'pk',
          username: `user-${index}`,
          tokenId: newTokenId(seededRandom(index)),
        },
        seededRandom(1000 + index),
      ),
    );
    const replacement = fc.oneof(
      fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-_+/= '),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...tokens), fc.nat(), replacement, (raw, position, char) => {
        const index = position % raw.length;
        fc.pre(raw[index] !== char);
        const changed = raw.slice(0, index) + char + raw.slice(index + 1);
        const parsed = parseToken(changed);
        assert.ok(parsed === undefined || (parsed.usage !== 'tk' && !parsed.checksumValid), changed);
      }),
      { seed: 42, numRuns: 5000 },
    );
  });

  test('every position of a token, changed to each base62 neighbour, is caught', () => {
    const raw = issuePersistentToken(
      { usage: 'pk', username: 'bob', tokenId: `c${'0'.repeat(24)}` },
      cryptoRandom,
    );
    for (let index = 0; index < raw.length; index++) {
      for (const char of ['0', 'a', 'Z', '.']) {
        if (raw[index] === char) continue;
        const parsed = parseToken(raw.slice(0, index) + char + raw.slice(index + 1));
        assert.ok(parsed === undefined || (parsed.usage !== 'tk' && !parsed.checksumValid));
      }
    }
  });

  test('10,000 tokens are distinct', () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      tokens.add(
        issuePersistentToken({ usage: 'pk', username: 'alice', tokenId: `c${'b'.repeat(24)}` }, cryptoRandom),
      );
    }
    assert.equal(tokens.size, 10_000);
  });

  test('10,000 secret parts: base62 characters equally frequent (chi-square), 256 bits each', () => {
    const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    const counts = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < 10_000; i++) {
      const token = issuePersistentToken(
        { usage: 'sk', username: 'alice', tokenId: `c${'b'.repeat(24)}` },
        cryptoRandom,
      );
      const secret = (token.split('.')[2] ?? '').slice(0, 43);
      assert.match(secret, /^[0-9A-Za-z]{43}$/);
      // The leading digit of a fixed-width base62 number below 2^256 cannot be uniform (62^43 > 2^256);
      // the other 42 are.
      for (const char of secret.slice(1)) {
        counts.set(char, (counts.get(char) ?? 0) + 1);
        total += 1;
      }
    }
    const expected = total / ALPHABET.length;
    let chiSquare = 0;
    for (const char of ALPHABET) chiSquare += ((counts.get(char) ?? 0) - expected) ** 2 / expected;
    // 128.9 is the 1 - 10^-6 quantile of chi-square with 61 degrees of freedom: a fair source exceeds
    // it once in a million runs, a biased one (a character missing, one twice as likely) every time.
    assert.ok(chiSquare < 128.9, `chi-square ${chiSquare.toFixed(1)} over 61 degrees of freedom`);
    assert.equal(counts.size, 62);
  });

  test('issuing refuses what cannot be encoded', () => {
    assert.throws(
      () =>
        issuePersistentToken({ usage: 'pk', username: 'a>>>', tokenId: `c${'b'.repeat(24)}` }, cryptoRandom),
      TypeError,
    );
  });

  test('parsing refuses persistent tokens of the wrong shape', () => {
    const id = `c${'d'.repeat(24)}`;
    const raw = issuePersistentToken({ usage: 'sk', username: 'alice', tokenId: id }, cryptoRandom);
    const [, payload, signature] = splitToken(raw);
    assert.ok(parseToken(raw));
    const badIdPayload = encodePayload({ u: 'alice', a: 'not-a-token-id' });
    const badUserPayload = encodePayload({ u: 'Alice', a: id });
    for (const candidate of [
      `xk.${payload}.${signature}`,
      `pk.${payload}`,
      `pk.${payload}.${signature}.extra`,
      `pk.${payload}.${signature.slice(1)}`,
      `pk.${payload}.${signature}A`,
      `pk.${payload}.${signature.slice(0, -1)}-`,
      `pk.${payload}=.${signature}`,
      `pk.${badIdPayload}.${signature}`,
      `pk.${badUserPayload}.${signature}`,
      `pk..${signature}`,
      '',
      '..',
    ]) {
      assert.equal(parseToken(candidate), undefined, candidate);
    }
  });

  test('the stored hash compares only to itself', () => {
    const raw = issuePersistentToken(
      { usage: 'sk', username: 'alice', tokenId: `c${'e'.repeat(24)}` },
      cryptoRandom,
    );
    assert.match(hashToken(raw), /^[0-9a-f]{64}$/);
    assert.ok(digestsEqual(hashToken(raw), hashToken(raw)));
    assert.ok(!digestsEqual(hashToken(raw), hashToken(`${raw}x`)));
    assert.ok(!digestsEqual(hashToken(raw), ''));
    assert.ok(!digestsEqual('zz', 'zz'));
  });
});

describe('temporary tokens (tk)', () => {
  test('the payload is safe base64 that the SDK decodes and parses', () => {
    fc.assert(
      fc.property(temporaryClaims, signingKey, (claims, key) => {
        const raw = issueTemporaryToken(claims, key);
        const [prefix, payload, signature] = splitToken(raw);
        assert.equal(prefix, 'tk');
        assert.match(payload, SAFE_SEGMENT);
        const json = {
          u: claims.username,
          exp: claims.expires,
          iat: claims.issuedAt,
          scopes: claims.scopes,
          client: 'api',
          kid: key.id,
          ...(claims.parentId === undefined ? {} : { p: claims.parentId }),
        };
        assert.equal(strictAtob(payload), JSON.stringify(json));
        assert.deepEqual(parseMapboxToken(raw), {
          usage: 'tk',
          user: claims.username,
          expires: claims.expires * 1000,
          created: claims.issuedAt * 1000,
          scopes: claims.scopes,
          client: 'api',
        });
        assert.match(signature, /^[0-9A-Za-z]{43}$/);
        const parsed = parseToken(raw);
        assert.ok(parsed?.usage === 'tk');
        assert.deepEqual(parsed, {
          usage: 'tk',
          username: claims.username,
          expires: claims.expires,
          issuedAt: claims.issuedAt,
          scopes: claims.scopes,
          keyId: key.id,
          ...(claims.parentId === undefined ? {} : { parentId: claims.parentId }),
          raw,
          signedPart: `tk.${payload}`,
          signature,
        });
        assert.ok(hasValidSignature(parsed, key));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  test('verification fails for a changed payload, another key or a truncated signature', () => {
    fc.assert(
      fc.property(temporaryClaims, temporaryClaims, (claims, otherClaims) => {
        const raw = issueTemporaryToken(claims, KEY);
        const other = issueTemporaryToken(otherClaims, KEY);
        const [, payload, signature] = splitToken(raw);
        const [, otherPayload] = splitToken(other);
        fc.pre(payload !== otherPayload);
        const token = parseToken(raw) as TemporaryToken;
        const forged = parseToken(`tk.${otherPayload}.${signature}`) as TemporaryToken;
        assert.ok(hasValidSignature(token, KEY));
        assert.ok(!hasValidSignature(forged, KEY));
        assert.ok(!hasValidSignature(token, OTHER_KEY));
        assert.ok(!hasValidSignature({ ...token, signature: signature.slice(0, -1) }, KEY));
        assert.ok(!hasValidSignature({ ...token, signature: '' }, KEY));
        assert.equal(parseToken(raw.slice(0, -1)), undefined);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  test('parsing accepts the boundary claims and refuses out-of-range ones', () => {
    assert.ok(parseToken(fakeTemporary(GOOD_TK_CLAIMS)));
    assert.ok(parseToken(fakeTemporary({ ...GOOD_TK_CLAIMS, exp: 253_402_300_799, iat: 0 })));
    assert.ok(parseToken(fakeTemporary({ ...GOOD_TK_CLAIMS, p: `c${'f'.repeat(24)}` })));
    const bad: Array<Record<string, unknown>> = [
      { exp: 253_402_300_800 },
      { exp: -1 },
      { iat: -1 },
      { iat: 253_402_300_800 },
      { exp: 1.5 },
      { exp: '1700000600' },
      { exp: 1e300 },
      { exp: undefined },
      { kid: undefined },
      { kid: 'a-b' },
      { kid: 7 },
      { scopes: 'styles:read' },
      { scopes: [7] },
      { scopes: ['x'.repeat(65)] },
      { scopes: Array.from({ length: 257 }, () => 'styles:read') },
      { p: 'nope' },
      { u: 'Alice' },
      { u: undefined },
    ];
    for (const change of bad) {
      const raw = fakeTemporary({ ...GOOD_TK_CLAIMS, ...change });
      assert.equal(parseToken(raw), undefined, JSON.stringify(change));
    }
    assert.equal(parseToken(`${fakeTemporary(GOOD_TK_CLAIMS)}A`), undefined);
  });
});

describe('parseToken on arbitrary input', () => {
  test('returns undefined and never throws for arbitrary strings', () => {
    for (const unit of ['grapheme-ascii', 'binary'] as const) {
      fc.assert(
        fc.property(
          fc.oneof(fc.string({ unit, maxLength: 5000 }), fc.string({ unit, maxLength: 5000, size: 'max' })),
          (text) => {
            assert.equal(parseToken(text), undefined);
          },
        ),
        { seed: 42, numRuns: 300 },
      );
    }
  });

  test('returns undefined and never throws for token-shaped strings around arbitrary JSON', () => {
    const shaped = fc
      .tuple(
        fc.constantFrom('pk', 'sk', 'tk', 'xk', ''),
        fc.json({ maxDepth: 3 }),
        fc.stringMatching(/^[0-9A-Za-z]{0,60}$/),
      )
      .map(([usage, json, signature]) => {
        const segment = Buffer.from(json, 'latin1').toString('base64').replace(/=+$/, '');
        return `${usage}.${segment}.${signature}`;
      });
    fc.assert(
      fc.property(shaped, (text) => {
        assert.equal(parseToken(text), undefined);
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('refuses tokens longer than 4096 characters', () => {
    const padded = (length: number): string => fakeTemporary({ ...GOOD_TK_CLAIMS, pad: 'x'.repeat(length) });
    let length = 2900;
    while (padded(length + 1).length <= 4096) length += 1;
    assert.ok(padded(length).length <= 4096);
    assert.ok(parseToken(padded(length)));
    assert.ok(padded(length + 1).length > 4096);
    assert.equal(parseToken(padded(length + 1)), undefined);
  });
});

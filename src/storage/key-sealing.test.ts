import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { open, parseKeyEncryptionKeys, SealError, seal, sealedWith } from './key-sealing.ts';

const A = Buffer.alloc(32, 1).toString('base64');
const B = Buffer.alloc(32, 2).toString('base64');

describe('key-encryption keys', () => {
  test('accept 32 bytes of base64 (standard or URL alphabet), one or several', () => {
    assert.equal(parseKeyEncryptionKeys(A).all.length, 1);
    assert.equal(parseKeyEncryptionKeys(Buffer.alloc(32, 250).toString('base64url')).all.length, 1);
    const both = parseKeyEncryptionKeys(`${B}, ${A}`);
    assert.equal(both.all.length, 2);
    assert.equal(both.current.id, parseKeyEncryptionKeys(B).current.id);
  });

  test('refuse anything else, naming the position but never the value', () => {
    const short = Buffer.alloc(16, 3).toString('base64');
    for (const bad of [short, 'not a key at all', `${A},${short}`, '', `${A}x`]) {
      assert.throws(
        () => parseKeyEncryptionKeys(bad),
        (error: Error) => {
          assert.match(error.message, /^TESSERA_KEY_ENCRYPTION_KEY: key \d of \d is not 32 bytes in base64/);
          assert.ok(!error.message.includes(short) && !error.message.includes(A));
          return true;
        },
      );
    }
    assert.throws(() => parseKeyEncryptionKeys(`${A},${A}`), /listed twice/);
  });

  test('a fingerprint reveals nothing of the key, even serialised', () => {
    const keys = parseKeyEncryptionKeys(A);
    assert.match(keys.current.id, /^[0-9a-f]{16}$/);
    const shown = JSON.stringify(keys);
    assert.ok(!shown.includes(A) && !shown.includes(Buffer.alloc(32, 1).toString('hex')), shown);
  });
});

describe('seal and open', () => {
  const keys = parseKeyEncryptionKeys(A);
  const secret = randomBytes(32);

  test('round-trips, with a fresh nonce each time, and never holds the secret in the clear', () => {
    const first = seal(keys, 'kid1', secret);
    const second = seal(keys, 'kid1', secret);
    assert.notEqual(first, second);
    assert.deepEqual(open(keys, 'kid1', first), secret);
    for (const encoding of ['base64', 'base64url', 'hex'] as const) {
      assert.ok(!first.includes(secret.toString(encoding)));
    }
    assert.equal(sealedWith(first), keys.current.id);
  });

  test('a value moved to another key id, altered, or sealed under an unlisted key does not open', () => {
    const sealed = seal(keys, 'kid1', secret);
    assert.throws(() => open(keys, 'kid2', sealed), SealError);
    const parts = sealed.split(':');
    const body = Buffer.from(parts[3] as string, 'base64url');
    body[0] = (body[0] as number) ^ 1;
    assert.throws(
      () => open(keys, 'kid1', [...parts.slice(0, 3), body.toString('base64url')].join(':')),
      SealError,
    );
    assert.throws(() => open(parseKeyEncryptionKeys(B), 'kid1', sealed), /not configured/);
    assert.throws(() => open(keys, 'kid1', 'plain text'), SealError);
  });

  test('an older listed key still opens what it sealed', () => {
    const sealed = seal(keys, 'kid1', secret);
    assert.deepEqual(open(parseKeyEncryptionKeys(`${B},${A}`), 'kid1', sealed), secret);
  });
});

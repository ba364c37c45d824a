import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { base62Length, encodeBase62, encodeUint32Base62, isBase62 } from './base62.ts';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function decodeBase62(text: string): bigint {
  let value = 0n;
  for (const char of text) value = value * 62n + BigInt(ALPHABET.indexOf(char));
  return value;
}

test('base62Length covers the input without loss', () => {
  assert.equal(base62Length(32), 43);
  assert.equal(base62Length(16), 22);
  assert.equal(base62Length(0), 0);
  for (let bytes = 1; bytes <= 64; bytes++) {
    const length = base62Length(bytes);
    assert.ok(62n ** BigInt(length) >= 256n ** BigInt(bytes), `${bytes} bytes fit`);
    assert.ok(62n ** BigInt(length - 1) < 256n ** BigInt(bytes), `${bytes} bytes need every char`);
  }
});

test('encodeBase62 is fixed width and lossless', () => {
  assert.equal(encodeBase62(new Uint8Array(32)), '0'.repeat(43));
  assert.equal(encodeBase62(new Uint8Array([1])), '01');
  assert.equal(encodeBase62(new Uint8Array([255])), '47');
  assert.equal(encodeBase62(new Uint8Array(32).fill(255)).length, 43);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
      const text = encodeBase62(bytes);
      assert.equal(text.length, base62Length(bytes.length));
      assert.ok(isBase62(text));
      assert.equal(decodeBase62(text), BigInt(`0x0${Buffer.from(bytes).toString('hex')}`));
    }),
    { seed: 42, numRuns: 500 },
  );
});

test('encodeUint32Base62 is six characters for every uint32', () => {
  assert.equal(encodeUint32Base62(0), '000000');
  assert.equal(encodeUint32Base62(61), '00000z');
  assert.equal(encodeUint32Base62(62), '000010');
  assert.equal(encodeUint32Base62(0xffffffff), '4gfFC3');
  assert.equal(encodeUint32Base62(-1), '4gfFC3');
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), (value) => {
      const text = encodeUint32Base62(value);
      assert.equal(text.length, 6);
      assert.equal(decodeBase62(text), BigInt(value));
    }),
    { seed: 42, numRuns: 500 },
  );
});

test('isBase62 accepts only the 62 symbols', () => {
  assert.ok(isBase62(ALPHABET));
  for (const text of ['-', '_', '+', '/', '=', '.', ' ', 'é', 'a\n']) assert.ok(!isBase62(text), text);
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodePayload, encodePayload } from './payload.ts';

const SAFE_SEGMENT = /^[A-Za-z0-9]+$/;
/** Bytes whose low six bits are 62 or 63: at offset 2 of a 3-byte group they become `+` or `/`. */
const RISKY = new Set(['>', '?', '~', '\x7f']);

/**
 * The theory behind the encoder, as an independent oracle: ASCII text encodes to a safe segment
 * exactly when no risky byte sits at an offset = 2 (mod 3). Padding after `{` shifts every byte.
 */
function canAlign(compact: string): boolean {
  return [0, 1, 2].some((pad) =>
    [...compact].every((char, index) => !RISKY.has(char) || (index === 0 ? 0 : index + pad) % 3 !== 2),
  );
}

describe('encodePayload', () => {
  test('uses only [A-Za-z0-9] and decodes to the same object', () => {
    const json = { u: 'scothis', a: 'cijucimbe000brbkt48d0dhcx' };
    const segment = encodePayload(json);
    assert.equal(segment, 'eyJ1Ijoic2NvdGhpcyIsImEiOiJjaWp1Y2ltYmUwMDBicmJrdDQ4ZDBkaGN4In0');
    assert.deepEqual(decodePayload(segment as string), json);
  });

  test('shifts the text with spaces when a risky character would land on a bad offset', () => {
    // `{"u":"ab>"}`: the `>` is at offset 8 (= 2 mod 3), which unshifted would encode to `+`.
    assert.match(Buffer.from('{"u":"ab>"}').toString('base64'), /[+/]/);
    const segment = encodePayload({ u: 'ab>' });
    assert.ok(segment);
    assert.match(segment, SAFE_SEGMENT);
    assert.equal(Buffer.from(segment, 'base64').toString('latin1'), '{ "u":"ab>"}');
    assert.deepEqual(decodePayload(segment), { u: 'ab>' });
  });

  test('returns undefined when no alignment is safe', () => {
    for (const u of ['>>>', '???', '~~~', '>?~', 'a>?~b']) {
      assert.equal(encodePayload({ u }), undefined, u);
    }
  });

  test('returns undefined for non-ASCII text', () => {
    assert.equal(encodePayload({ u: 'jöhn' }), undefined);
    assert.equal(encodePayload({ u: '\u2028' }), undefined);
    assert.equal(encodePayload({ u: '\x7f' }), undefined);
  });

  test('property: safe and faithful whenever an alignment exists, undefined otherwise', () => {
    const text = fc.string({ unit: fc.constantFrom(...'ab_-.:>?~ "\\{}'), maxLength: 24 });
    const object = fc.dictionary(text, fc.oneof(text, fc.integer(), fc.array(text, { maxLength: 3 })), {
      maxKeys: 4,
      noNullPrototype: true,
    });
    fc.assert(
      fc.property(object, (json) => {
        const segment = encodePayload(json);
        if (!canAlign(JSON.stringify(json))) {
          assert.equal(segment, undefined);
          return;
        }
        assert.ok(segment !== undefined);
        assert.match(segment, SAFE_SEGMENT);
        assert.notEqual(segment.length % 4, 1);
        assert.deepEqual(decodePayload(segment), json);
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
});

describe('decodePayload', () => {
  test('refuses segments that are not safe base64 of a JSON object', () => {
    const segments = [
      '',
      'eyJ1IjoiYSJ9=',
      'eyJ1Ijoi-SJ9',
      'eyJ1Ijoi_SJ9',
      'eyJ1Ijoi+SJ9',
      'eyJ1IjoiYSJ9A',
      Buffer.from('[1,2]').toString('base64').replace(/=+$/, ''),
      Buffer.from('null').toString('base64').replace(/=+$/, ''),
      Buffer.from('"text"').toString('base64').replace(/=+$/, ''),
      Buffer.from('{"u":1').toString('base64').replace(/=+$/, ''),
      Buffer.from('{"u":"\t"}').toString('base64').replace(/=+$/, ''),
      Buffer.from('{"u":"é"}', 'latin1').toString('base64').replace(/=+$/, ''),
      'A'.repeat(4100),
    ];
    for (const segment of segments) assert.equal(decodePayload(segment), undefined, segment);
  });

  test('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (segment) => {
        const value = decodePayload(segment);
        assert.ok(value === undefined || (typeof value === 'object' && !Array.isArray(value)));
      }),
      { seed: 42, numRuns: 1000 },
    );
  });
});

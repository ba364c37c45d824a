import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeCursor, encodeCursor } from './cursor.ts';

const cursor = fc.record(
  {
    value: fc.integer({ min: 0, max: 253_402_300_799_999 }).map((ms) => new Date(ms).toISOString()),
    id: fc.stringMatching(/^c[a-z0-9]{24}$/),
  },
  { noNullPrototype: true },
);

test('cursors round-trip and are URL-safe', () => {
  fc.assert(
    fc.property(cursor, (value) => {
      const text = encodeCursor(value);
      assert.match(text, /^[A-Za-z0-9_-]+$/);
      assert.deepEqual(decodeCursor(text), value);
    }),
    { seed: 42, numRuns: 500 },
  );
});

test('decodeCursor rejects garbage', () => {
  const id = 'cijucimbe000brbkt48d0dhcx';
  const time = '2030-01-01T00:00:00.000Z';
  const encode = (text: string): string => Buffer.from(text, 'latin1').toString('base64url');
  const garbage = [
    '',
    'not a cursor',
    'abc=',
    'a+b/',
    'A'.repeat(201),
    encode(`${time}~${id}~x`),
    encode(`${time}`),
    encode(`${time}~`),
    encode(`~${id}`),
    encode(`2030-01-01~${id}`),
    encode(`${time} ~${id}`),
    encode(`${time}~${id.toUpperCase()}`),
    encode(`${time}~nope`),
  ];
  for (const text of garbage) assert.equal(decodeCursor(text), undefined, text);
  assert.deepEqual(decodeCursor(encode(`${time}~${id}`)), { value: time, id });
});

test('decodeCursor never throws', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
      const value = decodeCursor(text);
      assert.ok(value === undefined || typeof value.id === 'string');
    }),
    { seed: 42, numRuns: 500 },
  );
});

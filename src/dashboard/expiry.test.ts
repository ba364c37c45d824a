import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EXPIRY_FORMAT_MESSAGE, expiryChange, expiryFieldValue, parseExpiryField } from './expiry.ts';

test('what datetime-local sends, and what a user types without its picker, is read as UTC', () => {
  const cases: [string, string | null][] = [
    ['', null],
    ['   ', null],
    ['2027-12-31T23:59', '2027-12-31T23:59:00.000Z'],
    ['2027-12-31T23:59:30', '2027-12-31T23:59:30.000Z'],
    ['2027-12-31T23:59:30.250', '2027-12-31T23:59:30.000Z'],
    ['2027-12-31 23:59', '2027-12-31T23:59:00.000Z'],
    [' 2027-01-02 ', '2027-01-02T00:00:00.000Z'],
    ['2028-02-29T12:00', '2028-02-29T12:00:00.000Z'],
  ];
  for (const [text, iso] of cases) assert.deepEqual(parseExpiryField(text), { ok: true, value: iso }, text);
});

test('anything else is refused with one plain message', () => {
  for (const text of [
    '2027-02-29T12:00',
    '2027-13-01T00:00',
    '2027-12-32',
    '2027-12-31T24:00',
    '2027-12-31T23:60',
    '2027-12-31T23:59Z',
    '2027-12-31T23:59+02:00',
    '31/12/2027',
    'tomorrow',
    '0050-01-01',
    '2027-1-1',
  ]) {
    assert.deepEqual(parseExpiryField(text), { ok: false, message: EXPIRY_FORMAT_MESSAGE }, text);
  }
});

test('any UTC minute survives the round trip through the field', () => {
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(9999, 11, 31) }), (ms) => {
      const iso = new Date(Math.floor(ms / 60_000) * 60_000).toISOString();
      assert.deepEqual(parseExpiryField(expiryFieldValue(iso)), { ok: true, value: iso });
    }),
  );
});

test('an edit that leaves the shown expiry alone changes nothing, even one set to the second', () => {
  const current = '2027-05-01T10:30:45.123Z';
  assert.equal(expiryFieldValue(current), '2027-05-01T10:30');
  assert.equal(expiryChange('2027-05-01T10:30', current), undefined);
  assert.equal(expiryChange('', undefined), undefined);
  assert.deepEqual(expiryChange('', current), { ok: true, value: null });
  assert.deepEqual(expiryChange('2027-05-01T10:31', current), {
    ok: true,
    value: '2027-05-01T10:31:00.000Z',
  });
  assert.deepEqual(expiryChange('2027-06-01T00:00', undefined), {
    ok: true,
    value: '2027-06-01T00:00:00.000Z',
  });
});

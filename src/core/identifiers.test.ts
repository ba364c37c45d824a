import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isTokenId, isUsername, newTokenId } from './identifiers.ts';
import type { RandomSource } from './ports.ts';

test('usernames are short lowercase ASCII', () => {
  for (const name of ['a', '0', 'alice', 'a-b_c', 'x'.repeat(32)]) assert.ok(isUsername(name), name);
  for (const name of ['', '-a', '_a', 'Alice', 'x'.repeat(33), 'jöhn', 'a.b', 'a b', 7, null]) {
    assert.ok(!isUsername(name), String(name));
  }
});

test('token ids are cuid-shaped', () => {
  assert.ok(isTokenId('cijucimbe000brbkt48d0dhcx'));
  for (const id of [
    '',
    'dijucimbe000brbkt48d0dhcx',
    'cijucimbe000brbkt48d0dhc',
    'cIjucimbe000brbkt48d0dhcx',
    1,
  ]) {
    assert.ok(!isTokenId(id), String(id));
  }
});

test('newTokenId makes valid, distinct ids', () => {
  const random: RandomSource = { bytes: (length) => randomBytes(length) };
  const ids = new Set(Array.from({ length: 2000 }, () => newTokenId(random)));
  assert.equal(ids.size, 2000);
  for (const id of ids) assert.ok(isTokenId(id), id);
});

test('newTokenId skips bytes that would bias the alphabet', () => {
  const served: number[] = [];
  // First call: only biased bytes (252..255); then bytes 0..35 map to each symbol in turn.
  const batches = [
    new Uint8Array(32).fill(252),
    Uint8Array.from({ length: 32 }, (_unused, i) => (i % 2 ? 255 : i)),
  ];
  const random: RandomSource = {
    bytes: (length) => {
      const batch = batches.shift() ?? Uint8Array.from({ length }, (_unused, i) => 36 + i);
      served.push(batch.length);
      return batch;
    },
  };
  const id = newTokenId(random);
  assert.ok(isTokenId(id));
  // 16 usable bytes in the second batch (0, 2, ..., 30), then 8 from the third (36 % 36 = 0, ...).
  assert.equal(id, 'c02468acegikmoqsu01234567');
  assert.deepEqual(served, [32, 32, 32]);
});

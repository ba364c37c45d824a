import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from './crc32.ts';

test('CRC-32 (IEEE) known vectors', () => {
  assert.equal(crc32('123456789'), 0xcbf43926);
  assert.equal(crc32(''), 0);
  assert.equal(crc32('a'), 0xe8b7be43);
  assert.equal(crc32('The quick brown fox jumps over the lazy dog'), 0x414fa339);
});

test('CRC-32 is an unsigned 32-bit integer that notices a single changed character', () => {
  const text = 'pk.eyJ1IjoiYWxpY2UifQ.secret';
  const value = crc32(text);
  assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffffffff);
  for (let index = 0; index < text.length; index++) {
    const changed = `${text.slice(0, index)}${text[index] === 'x' ? 'y' : 'x'}${text.slice(index + 1)}`;
    assert.notEqual(crc32(changed), value, changed);
  }
});

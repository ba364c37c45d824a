import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryRateLimiter } from './rate-limiter.ts';

const RULE = { limit: 2, interval: 60 };
const WINDOW_START = 1_800_000_000_000 - (1_800_000_000_000 % 60_000);

test('counts hits within a window and refuses beyond the limit', () => {
  const limiter = new MemoryRateLimiter();
  const first = limiter.hit('k', RULE, WINDOW_START + 10);
  assert.deepEqual(first, {
    allowed: true,
    limit: 2,
    interval: 60,
    remaining: 1,
    reset: WINDOW_START / 1000 + 60,
  });
  assert.equal(limiter.hit('k', RULE, WINDOW_START + 20).remaining, 0);
  const third = limiter.hit('k', RULE, WINDOW_START + 59_999);
  assert.equal(third.allowed, false);
  assert.equal(third.remaining, 0);
  assert.equal(third.reset, WINDOW_START / 1000 + 60);
});

test('a new window starts at the interval boundary', () => {
  const limiter = new MemoryRateLimiter();
  for (let i = 0; i < 3; i++) limiter.hit('k', RULE, WINDOW_START + i);
  const next = limiter.hit('k', RULE, WINDOW_START + 60_000);
  assert.equal(next.allowed, true);
  assert.equal(next.remaining, 1);
  assert.equal(next.reset, WINDOW_START / 1000 + 120);
});

test('keys are counted separately', () => {
  const limiter = new MemoryRateLimiter();
  limiter.hit('a', RULE, WINDOW_START);
  limiter.hit('a', RULE, WINDOW_START);
  assert.equal(limiter.hit('a', RULE, WINDOW_START).allowed, false);
  assert.equal(limiter.hit('b', RULE, WINDOW_START).allowed, true);
});

test('reset rounds up to whole seconds for intervals that do not align to them', () => {
  const limiter = new MemoryRateLimiter();
  const result = limiter.hit('k', { limit: 1, interval: 1 }, 1_000_500);
  assert.equal(result.reset, 1001);
});

test('finished windows are swept and counting starts afresh', () => {
  const limiter = new MemoryRateLimiter();
  for (let i = 0; i < 5; i++) limiter.hit('k', RULE, WINDOW_START);
  const later = WINDOW_START + 10 * 60_000;
  assert.equal(limiter.hit('k', RULE, later).remaining, 1);
  assert.equal(limiter.hit('other', RULE, later + 1).remaining, 1);
});

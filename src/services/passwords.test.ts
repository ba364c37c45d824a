import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTesseraError } from '../core/errors.ts';
import { boundedHasher, type PasswordHasher } from './passwords.ts';

/** A hasher whose checks finish only when the test says so. */
function gatedHasher(): { hasher: PasswordHasher; started: () => number; finishAll: () => void } {
  const gates: (() => void)[] = [];
  let started = 0;
  const wait = () =>
    new Promise<void>((resolve) => {
      started += 1;
      gates.push(resolve);
    });
  return {
    hasher: {
      hash: async (password) => {
        await wait();
        return `hash:${password}`;
      },
      verify: async (hash, password) => {
        await wait();
        return hash === `hash:${password}`;
      },
    },
    started: () => started,
    finishAll: () => {
      for (const gate of gates.splice(0)) gate();
    },
  };
}

test('at most `running` checks run; `waiting` more queue; the rest are refused with 503 at once', async () => {
  const gated = gatedHasher();
  const bounded = boundedHasher(gated.hasher, { running: 2, waiting: 3 });
  const calls = Array.from({ length: 8 }, (_, index) =>
    bounded.verify('hash:x', index % 2 ? 'x' : 'y').then(
      (valid) => ({ valid }),
      (error: unknown) => ({ error }),
    ),
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(gated.started(), 2, 'only two checks started');
  while (gated.started() < 5) {
    gated.finishAll();
    await new Promise((resolve) => setImmediate(resolve));
  }
  gated.finishAll();
  const results = await Promise.all(calls);
  const refused = results.filter((result) => 'error' in result);
  assert.equal(refused.length, 3);
  for (const result of refused) {
    assert.ok('error' in result && isTesseraError(result.error) && result.error.status === 503);
  }
  assert.equal(gated.started(), 5, 'every admitted check ran, none twice');
});

test('slots are given back: later checks run after earlier ones finish', async () => {
  const gated = gatedHasher();
  const bounded = boundedHasher(gated.hasher, { running: 1, waiting: 0 });
  const first = bounded.hash('a');
  await assert.rejects(bounded.hash('b'), (error) => isTesseraError(error) && error.status === 503);
  await new Promise((resolve) => setImmediate(resolve));
  gated.finishAll();
  assert.equal(await first, 'hash:a');
  const second = bounded.hash('c');
  await new Promise((resolve) => setImmediate(resolve));
  gated.finishAll();
  assert.equal(await second, 'hash:c');
});

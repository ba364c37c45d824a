import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LoginThrottle, MemoryLoginThrottle, type ThrottleVerdict } from './login-throttle.ts';

const T0 = 1_800_000_000_000;
const MINUTE = 60_000;
const WINDOW = 15 * MINUTE;
const ALICE = 'account:alice';
const IP = 'ip:203.0.113.7';

function attempt(
  throttle: LoginThrottle,
  outcome: 'success' | 'failure',
  now: number,
  keys: { account?: string; client?: string } = {},
): ThrottleVerdict {
  const verdict = throttle.begin(keys.account ?? ALICE, keys.client ?? IP, now);
  if (verdict.allowed) verdict.release(outcome);
  return verdict;
}

function failTimes(throttle: LoginThrottle, count: number, now: number, account = ALICE): void {
  for (let i = 0; i < count; i++) {
    assert.equal(attempt(throttle, 'failure', now, { account }).allowed, true, `failure ${i + 1}`);
  }
}

function retryAfter(verdict: ThrottleVerdict): number | undefined {
  return verdict.allowed ? undefined : verdict.retryAfterSeconds;
}

test('five failures are evaluated freely, the sixth attempt is refused for 1 s', () => {
  const throttle = new MemoryLoginThrottle();
  failTimes(throttle, 5, T0);
  assert.equal(throttle.failuresOf(ALICE, T0), 5);
  assert.deepEqual(throttle.begin(ALICE, IP, T0), { allowed: false, retryAfterSeconds: 1 });
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 999)), 1);
  assert.equal(throttle.begin(ALICE, IP, T0 + 1000).allowed, true);
});

test('each failure after the lock doubles it, capped at 15 minutes', () => {
  const throttle = new MemoryLoginThrottle();
  failTimes(throttle, 5, T0);
  const locks: number[] = [];
  let now = T0;
  for (let step = 0; step < 12; step++) {
    const seconds = retryAfter(throttle.begin(ALICE, IP, now)) ?? 0;
    locks.push(seconds);
    now += seconds * 1000;
    assert.equal(attempt(throttle, 'failure', now).allowed, true);
  }
  assert.deepEqual(locks, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, now + 1)), 900);
});

test('Retry-After rounds the remaining time up', () => {
  const throttle = new MemoryLoginThrottle();
  failTimes(throttle, 5, T0);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 400)), 1);
  failTimes(throttle, 1, T0 + 1000);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 1001)), 2);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 2001)), 1);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 2999)), 1);
});

// 5 free, then locks of 1, 2, ..., 512 s, then 900 s: ASVS 2.2.1 allows up to 100 an hour.
test('a client retrying every second gets 17 checks in the first hour', () => {
  const throttle = new MemoryLoginThrottle({ clientFailures: 10_000 });
  let evaluated = 0;
  for (let now = T0; now < T0 + 60 * MINUTE; now += 1000) {
    if (attempt(throttle, 'failure', now).allowed) evaluated++;
  }
  assert.equal(evaluated, 17);
});

test('the right password is refused during the lock and accepted after it', () => {
  const throttle = new MemoryLoginThrottle();
  failTimes(throttle, 5, T0);
  assert.equal(attempt(throttle, 'success', T0 + 500).allowed, false);
  assert.equal(throttle.failuresOf(ALICE, T0 + 500), 5);
  assert.equal(attempt(throttle, 'success', T0 + 1000).allowed, true);
  assert.equal(throttle.failuresOf(ALICE, T0 + 1000), 0);
  failTimes(throttle, 5, T0 + 1000);
});

// Otherwise an attacker with one valid account could refill the budget of their address at will.
test('a success resets the account but not the client budget', () => {
  const throttle = new MemoryLoginThrottle();
  for (let i = 0; i < 49; i++) attempt(throttle, 'failure', T0, { account: `account:u${i}` });
  assert.equal(throttle.failuresOf('account:u1', T0), 1);
  assert.equal(attempt(throttle, 'success', T0, { account: 'account:u1' }).allowed, true);
  assert.equal(throttle.failuresOf('account:u1', T0), 0);
  assert.equal(attempt(throttle, 'failure', T0, { account: 'account:u49' }).allowed, true);
  assert.equal(attempt(throttle, 'success', T0, { account: 'account:u1' }).allowed, false);
});

test('100 concurrent attempts run exactly 5 checks, then one at a time after the lock', () => {
  const throttle = new MemoryLoginThrottle();
  const first = Array.from({ length: 100 }, () => throttle.begin(ALICE, IP, T0));
  const allowed = first.filter((verdict) => verdict.allowed);
  assert.equal(allowed.length, 5);
  assert.ok(first.every((verdict) => verdict.allowed || verdict.retryAfterSeconds === 1));
  for (const verdict of allowed) verdict.release('failure');
  assert.equal(throttle.failuresOf(ALICE, T0), 5);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 10)), 1);

  const second = Array.from({ length: 100 }, () => throttle.begin(ALICE, IP, T0 + 1000));
  const admitted = second.filter((verdict) => verdict.allowed);
  assert.equal(admitted.length, 1);
  admitted[0]?.release('failure');
  assert.equal(throttle.failuresOf(ALICE, T0 + 1000), 6);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 1000)), 2);
});

test('in-flight attempts count against the free budget', () => {
  const throttle = new MemoryLoginThrottle();
  failTimes(throttle, 3, T0);
  const a = throttle.begin(ALICE, IP, T0);
  const b = throttle.begin(ALICE, IP, T0);
  assert.equal(a.allowed && b.allowed, true);
  assert.deepEqual(throttle.begin(ALICE, IP, T0), { allowed: false, retryAfterSeconds: 1 });
  if (a.allowed) a.release('success');
  assert.equal(throttle.begin(ALICE, IP, T0).allowed, true);
});

test('the client limit is 50 failures per 15 minutes across usernames', () => {
  const throttle = new MemoryLoginThrottle();
  for (let i = 0; i < 50; i++) {
    assert.equal(attempt(throttle, 'failure', T0 + i * 1000, { account: `account:u${i}` }).allowed, true);
  }
  const blocked = throttle.begin('account:fresh', IP, T0 + 50_000);
  assert.deepEqual(blocked, { allowed: false, retryAfterSeconds: 850 });
  assert.equal(throttle.begin('account:fresh', 'ip:198.51.100.1', T0 + 50_000).allowed, true);
  assert.equal(throttle.begin('account:fresh', IP, T0 + WINDOW - 1).allowed, false);
  const reopened = throttle.begin('account:fresh', IP, T0 + WINDOW);
  assert.equal(reopened.allowed, true);
  assert.equal(throttle.begin('account:other', IP, T0 + WINDOW).allowed, false);
});

test('when both account and client refuse, the longer wait wins', () => {
  const throttle = new MemoryLoginThrottle({ clientFailures: 5 });
  failTimes(throttle, 5, T0);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0)), 900);
});

test('unknown and known usernames are throttled identically', () => {
  const run = (account: string): (number | undefined)[] => {
    const throttle = new MemoryLoginThrottle();
    return Array.from({ length: 12 }, (_, i) =>
      retryAfter(attempt(throttle, 'failure', T0 + i * 700, { account })),
    );
  };
  assert.deepEqual(run('account:alice'), run('account:no-such-user-8f2c'));
});

test('failures leave the account window 15 minutes after the last one', () => {
  const throttle = new MemoryLoginThrottle();
  failTimes(throttle, 4, T0);
  assert.equal(throttle.failuresOf(ALICE, T0 + WINDOW - 1), 4);
  assert.equal(throttle.failuresOf(ALICE, T0 + WINDOW), 0);
  failTimes(throttle, 5, T0 + WINDOW);
  assert.equal(throttle.begin(ALICE, IP, T0 + WINDOW).allowed, false);
});

test('failures spread over the window are consecutive and still lock', () => {
  const throttle = new MemoryLoginThrottle({ clientFailures: 1000 });
  for (let i = 0; i < 5; i++) failTimes(throttle, 1, T0 + i * 14 * MINUTE);
  assert.equal(throttle.begin(ALICE, IP, T0 + 56 * MINUTE).allowed, false);
});

test('the observation window restarts when a lock ends, so a capped lock does not lapse', () => {
  const throttle = new MemoryLoginThrottle({ maxLockMs: WINDOW, baseLockMs: WINDOW });
  failTimes(throttle, 5, T0);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0)), 900);
  assert.equal(throttle.failuresOf(ALICE, T0 + WINDOW + MINUTE), 5);
  assert.equal(throttle.failuresOf(ALICE, T0 + 2 * WINDOW), 0);
});

test('release is idempotent', () => {
  const throttle = new MemoryLoginThrottle();
  const verdict = throttle.begin(ALICE, IP, T0);
  assert.ok(verdict.allowed);
  verdict.release('failure');
  verdict.release('failure');
  verdict.release('success');
  assert.equal(throttle.failuresOf(ALICE, T0), 1);
});

test('an attempt never released counts as a failure once its lease ends', () => {
  const throttle = new MemoryLoginThrottle({ leaseMs: 30_000 });
  failTimes(throttle, 5, T0);
  const stuck = throttle.begin(ALICE, IP, T0 + 1000);
  assert.ok(stuck.allowed);
  assert.equal(retryAfter(throttle.begin(ALICE, IP, T0 + 20_000)), 1);
  assert.equal(throttle.failuresOf(ALICE, T0 + 31_000), 6);
  stuck.release('success');
  assert.equal(throttle.failuresOf(ALICE, T0 + 31_000), 6);
  assert.equal(throttle.begin(ALICE, IP, T0 + 31_000).allowed, true);
});

test('sweeping drops state whose window and lock have ended', () => {
  const throttle = new MemoryLoginThrottle();
  for (let i = 0; i < 1000; i++)
    attempt(throttle, 'failure', T0, { account: `account:u${i}`, client: `ip:${i}` });
  failTimes(throttle, 5, T0 + MINUTE, 'account:locked');
  assert.deepEqual(throttle.trackedKeys(), { accounts: 1001, clients: 1001 });
  throttle.begin('account:next', 'ip:next', T0 + WINDOW + MINUTE);
  assert.deepEqual(throttle.trackedKeys(), { accounts: 2, clients: 1 });
});

test('the key cap drops the oldest idle entries first', () => {
  const throttle = new MemoryLoginThrottle({ maxKeys: 10 });
  for (let i = 0; i < 25; i++)
    attempt(throttle, 'failure', T0, { account: `account:u${i}`, client: `ip:${i}` });
  assert.deepEqual(throttle.trackedKeys(), { accounts: 10, clients: 10 });
  assert.equal(throttle.failuresOf('account:u24', T0), 1);
  assert.equal(throttle.failuresOf('account:u0', T0), 0);
});

test('the key cap never drops a lock or a backoff: new keys are refused instead', () => {
  const throttle = new MemoryLoginThrottle({ maxKeys: 3, freeFailures: 1, clientFailures: 1000 });
  for (const name of ['a', 'b', 'c']) failTimes(throttle, 1, T0, `account:${name}`);
  assert.deepEqual(throttle.begin('account:d', IP, T0 + 10), { allowed: false, retryAfterSeconds: 1 });
  assert.equal(throttle.begin('account:a', IP, T0 + 10).allowed, false);
  assert.equal(throttle.failuresOf('account:a', T0 + 10), 1);
  // The locks have ended, but dropping a backed-off account would restart its doubling from 1 s.
  assert.equal(throttle.begin('account:d', IP, T0 + 1000).allowed, false);
  assert.equal(throttle.begin('account:d', IP, T0 + 17 * 60_000).allowed, true);
  assert.ok(throttle.trackedKeys().accounts <= 3);
});

test('invalid options are a TypeError', () => {
  assert.throws(() => new MemoryLoginThrottle({ freeFailures: 0 }), TypeError);
  assert.throws(() => new MemoryLoginThrottle({ windowMs: 1.5 }), /windowMs must be a positive integer/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../core/store.ts';
import type { ChangeHandlers, ChangeListener } from '../storage/postgres-listener.ts';
import { ChangeFollower } from './change-follower.ts';
import { TokenCache } from './token-cache.ts';
import type { Inspection } from './token-service.ts';

/** A change log that answers, fails, or hangs (a frozen or unreachable database) on demand. */
function changeLog() {
  let mode: 'answer' | 'fail' | 'hang' = 'answer';
  const store = {
    latestChange: async () => 0,
    changesSince: () => {
      if (mode === 'fail') return Promise.reject(new Error('connection refused'));
      if (mode === 'hang') return new Promise<never>(() => {});
      return Promise.resolve([]);
    },
  } as unknown as Store;
  return { store, set: (next: typeof mode) => (mode = next) };
}

/** A push feed that reports itself connected and never says otherwise: a half-open connection. */
function aliveLookingFeed(): ChangeListener {
  return {
    start(handlers: ChangeHandlers) {
      queueMicrotask(() => handlers.onConnected());
    },
    stop: async () => {},
  } as unknown as ChangeListener;
}

const VALID = { code: 'TokenValid' } as unknown as Inspection;

function cached(cache: TokenCache): boolean {
  cache.set('pk.token', VALID, { ids: ['t1'], epoch: cache.epoch(), now: Date.now() });
  return cache.get('pk.token', Date.now()) !== undefined;
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a change log that cannot be read suspends the cache even while the push feed looks connected', async () => {
  const log = changeLog();
  const cache = new TokenCache();
  const follower = new ChangeFollower(log.store, cache, { intervalMs: 20, listener: aliveLookingFeed() });
  await follower.start();
  await wait(50);
  assert.equal(cached(cache), true, 'feed connected and the log reads: the cache answers');
  log.set('fail');
  await follower.poll();
  assert.equal(cache.suspended, true);
  assert.equal(cached(cache), false);
  log.set('answer');
  await follower.poll();
  assert.equal(cache.suspended, false, 'the log reads again: the cache resumes, empty');
  await follower.stop();
});

test('a change log that hangs suspends the cache once the last good read is older than staleAfterMs', async () => {
  const log = changeLog();
  const cache = new TokenCache();
  const follower = new ChangeFollower(log.store, cache, {
    intervalMs: 20,
    staleAfterMs: 150,
    listener: aliveLookingFeed(),
  });
  await follower.start();
  await wait(50);
  assert.equal(cached(cache), true);
  log.set('hang');
  await wait(300);
  assert.equal(cache.suspended, true, 'no read has finished for 150 ms: nothing is answered from memory');
  assert.equal(cached(cache), false);
  void follower.stop(); // stops polling; the hung read itself never settles
});

test('a read that was only slow resumes the cache with its verdicts; a failed one resumes it empty', async () => {
  const log = changeLog();
  const cache = new TokenCache();
  const follower = new ChangeFollower(log.store, cache, { intervalMs: 1_000_000, staleAfterMs: 50 });
  await follower.start();
  assert.equal(cached(cache), true);
  await wait(80);
  await follower.poll(); // late: suspends for staleness, then reads the whole log
  assert.equal(cache.suspended, false);
  assert.equal(cache.get('pk.token', Date.now()) !== undefined, true, 'nothing was missed: verdicts kept');
  log.set('fail');
  await follower.poll();
  log.set('answer');
  await follower.poll();
  assert.equal(
    cache.get('pk.token', Date.now()),
    undefined,
    'a failed read may have missed changes: emptied',
  );
  assert.equal(follower.suspensions, 2);
  await follower.stop();
});

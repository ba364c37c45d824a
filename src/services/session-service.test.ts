import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { buildCatalogue } from '../core/scopes.ts';
import { openDatabase } from '../storage/database.ts';
import { migrateToLatest } from '../storage/migrations.ts';
import type { Database } from '../storage/schema.ts';
import { SqlSessionStore } from '../storage/sql-session-store.ts';
import { SqlStore } from '../storage/sql-store.ts';
import { createAccountService } from './account-service.ts';
import { MemoryLoginThrottle } from './login-throttle.ts';
import { argon2Hasher, type PasswordHasher } from './passwords.ts';
import { newSessionId, openFlash, sessionIdHash } from './session-crypto.ts';
import {
  createSessionService,
  SESSION_POLICY,
  type Session,
  type SessionService,
} from './session-service.ts';
import { systemRandom } from './system.ts';

const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a whole new passphrase';
const CLIENT = '192.0.2.1';
const MINUTE = 60_000;
const PASSWORD_HASH = argon2Hasher.hash(PASSWORD);

class Clock {
  ms = Date.parse('2026-03-01T09:00:00.000Z');
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

interface World {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly sessions: SessionService;
  readonly sessionStore: SqlSessionStore;
  readonly store: SqlStore;
}

/**
 * The real service on a real (in-memory) SQLite database with the project's migrations and the
 * real argon2 hasher. `passwords` may wrap the real hasher to act at a chosen moment of a check.
 */
async function createWorld(passwords: PasswordHasher = argon2Hasher): Promise<World> {
  const db = openDatabase({ kind: 'sqlite', path: ':memory:' });
  await migrateToLatest(db);
  const clock = new Clock();
  const store = new SqlStore(db);
  const sessionStore = new SqlSessionStore(db);
  const catalogue = buildCatalogue([]);
  const accounts = createAccountService({ store, catalogue, clock, random: systemRandom, passwords });
  // One argon2 hash for the whole file: rows with the same hash keep each test's setup cheap.
  const passwordHash = await PASSWORD_HASH;
  for (const username of ['alice', 'bob']) {
    const created = new Date(clock.ms).toISOString();
    const row = {
      username,
      email: `${username}@example.com`,
      password_hash: passwordHash,
      created,
      modified: created,
    };
    await db.insertInto('accounts').values(row).execute();
  }
  const sessions = createSessionService({
    store,
    sessions: sessionStore,
    accounts,
    passwords,
    throttle: new MemoryLoginThrottle(),
    clock,
    random: systemRandom,
  });
  return { db, clock, sessions, sessionStore, store };
}

async function signIn(world: World, username = 'alice', password = PASSWORD): Promise<Session> {
  const result = await world.sessions.signIn(username, password, CLIENT);
  assert.equal(result.outcome, 'signed-in');
  return (result as { session: Session }).session;
}

async function alive(world: World, session: Session): Promise<boolean> {
  return (await world.sessions.resume(session.id)) !== undefined;
}

let world: World;
beforeEach(async () => {
  await world?.db.destroy();
  world = await createWorld();
});
after(() => world?.db.destroy());

describe('sign-in', () => {
  test('the right password starts a session; the database keeps only a hash of its id', async () => {
    const session = await signIn(world);
    assert.match(session.id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(session.record.idHash, sessionIdHash(session.id));
    const rows = await world.db.selectFrom('sessions').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.ok(!JSON.stringify(rows).includes(session.id));
    assert.equal(session.record.confirmedUntil, null, 'signing in is not a password confirmation');
  });

  test('a wrong password and an unknown username are refused alike', async () => {
    assert.deepEqual(await world.sessions.signIn('alice', 'not the password!', CLIENT), {
      outcome: 'refused',
    });
    assert.deepEqual(await world.sessions.signIn('nobody', PASSWORD, CLIENT), { outcome: 'refused' });
    assert.equal((await world.db.selectFrom('sessions').selectAll().execute()).length, 0);
  });

  test('the sixth failure in a row is throttled, whatever the password', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) {
      assert.equal((await world.sessions.signIn('alice', 'wrong password!', CLIENT)).outcome, 'refused');
    }
    const locked = await world.sessions.signIn('alice', PASSWORD, CLIENT);
    assert.equal(locked.outcome, 'throttled');
    world.clock.advance(((locked as { retryAfterSeconds: number }).retryAfterSeconds + 1) * 1000);
    await signIn(world);
  });

  test('attempts that could not check a password (the hasher unavailable) lock nobody out afterwards', async () => {
    let available = false;
    const flaky: PasswordHasher = {
      hash: (password) => argon2Hasher.hash(password),
      verify: (hash, password) =>
        available ? argon2Hasher.verify(hash, password) : Promise.reject(new Error('no Argon2 slot free')),
    };
    const outage = await createWorld(flaky);
    try {
      for (let attempt = 1; attempt <= 10; attempt++) {
        await assert.rejects(outage.sessions.signIn('alice', PASSWORD, CLIENT), /no Argon2 slot free/);
      }
      available = true;
      assert.equal((await outage.sessions.signIn('alice', PASSWORD, CLIENT)).outcome, 'signed-in');
      // Real guesses still count as before.
      for (let attempt = 1; attempt <= 5; attempt++) {
        assert.equal((await outage.sessions.signIn('bob', 'wrong password!', CLIENT)).outcome, 'refused');
      }
      assert.equal((await outage.sessions.signIn('bob', PASSWORD, CLIENT)).outcome, 'throttled');
    } finally {
      await outage.db.destroy();
    }
  });

  test('1,000 session ids are distinct 256-bit base64url strings', () => {
    const ids = Array.from({ length: 1000 }, () => newSessionId(systemRandom));
    assert.equal(new Set(ids).size, 1000);
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(id, 'base64url').length, 32);
    }
  });
});

describe('session lifetime', () => {
  test('idle for 30 minutes and 1 second ends the session, and its row', async () => {
    const session = await signIn(world);
    world.clock.advance(SESSION_POLICY.idleMs + 1000);
    assert.equal(await world.sessions.resume(session.id), undefined);
    assert.equal(await world.sessionStore.findSession(session.record.idHash), undefined);
  });

  test('activity within 30 minutes keeps it alive; 12 hours is the end even when active', async () => {
    const session = await signIn(world);
    for (let elapsed = 20 * MINUTE; elapsed < SESSION_POLICY.absoluteMs; elapsed += 20 * MINUTE) {
      world.clock.advance(20 * MINUTE);
      assert.ok(await alive(world, session), `alive after ${elapsed / MINUTE} minutes`);
    }
    world.clock.ms = Date.parse(session.record.created) + SESSION_POLICY.absoluteMs + 1000;
    assert.equal(await world.sessions.resume(session.id), undefined);
  });

  test('lastSeen is written at most once a minute', async () => {
    const session = await signIn(world);
    world.clock.advance(30_000);
    await world.sessions.resume(session.id);
    assert.equal(
      (await world.sessionStore.findSession(session.record.idHash))?.lastSeen,
      session.record.lastSeen,
    );
    world.clock.advance(31_000);
    const resumed = await world.sessions.resume(session.id);
    const stored = await world.sessionStore.findSession(session.record.idHash);
    assert.equal(stored?.lastSeen, new Date(world.clock.ms).toISOString());
    assert.equal(resumed?.record.lastSeen, stored?.lastSeen);
  });

  test('made-up, empty and oversized ids resume nothing', async () => {
    await signIn(world);
    for (const id of [undefined, '', 'x', newSessionId(systemRandom), 'a'.repeat(10_000)]) {
      assert.equal(await world.sessions.resume(id), undefined);
    }
  });

  test('sign-out ends the session on the server', async () => {
    const session = await signIn(world);
    await world.sessions.signOut(session);
    assert.equal(await world.sessions.resume(session.id), undefined);
  });

  test('starting a session sweeps out the ones that ended', async () => {
    await signIn(world, 'bob');
    world.clock.advance(SESSION_POLICY.idleMs + 1000);
    await signIn(world);
    const rows = await world.db.selectFrom('sessions').select('username').execute();
    assert.deepEqual(rows, [{ username: 'alice' }]);
  });
});

describe('password confirmation', () => {
  test('the right password opens a 5-minute window under a new session id', async () => {
    const session = await signIn(world);
    assert.equal(world.sessions.isConfirmed(session), false);
    const result = await world.sessions.confirm(session, PASSWORD);
    assert.equal(result.outcome, 'confirmed');
    const renewed = (result as { session: Session }).session;
    assert.notEqual(renewed.id, session.id);
    assert.equal(await world.sessions.resume(session.id), undefined, 'the old id is dead');
    assert.equal(renewed.record.expiresAt, session.record.expiresAt, 'no extension of the absolute end');
    world.clock.advance(SESSION_POLICY.confirmationMs - 1000);
    assert.equal(world.sessions.isConfirmed((await world.sessions.resume(renewed.id)) as Session), true);
    world.clock.advance(2000);
    assert.equal(world.sessions.isConfirmed((await world.sessions.resume(renewed.id)) as Session), false);
  });

  test('another account’s password does not confirm', async () => {
    const session = await signIn(world);
    const bobs = 'bob has his own long password';
    await world.db
      .updateTable('accounts')
      .set({ password_hash: await argon2Hasher.hash(bobs) })
      .where('username', '=', 'bob')
      .execute();
    assert.deepEqual(await world.sessions.confirm(session, bobs), { outcome: 'wrong', remaining: 4 });
  });

  test('five wrong confirmations revoke; the right password afterwards finds no session', async () => {
    const session = await signIn(world);
    for (let attempt = 1; attempt < 5; attempt++) await world.sessions.confirm(session, 'guess');
    assert.deepEqual(await world.sessions.confirm(session, 'guess'), {
      outcome: 'revoked',
      reason: 'failures',
    });
    assert.equal(await world.sessions.resume(session.id), undefined);
    assert.deepEqual(await world.sessions.confirm(session, PASSWORD), {
      outcome: 'revoked',
      reason: 'ended',
    });
  });

  test('wrong confirmations spread over more than 15 minutes start a new count', async () => {
    const session = await signIn(world);
    for (let attempt = 1; attempt <= 4; attempt++) await world.sessions.confirm(session, 'guess');
    world.clock.advance(15 * MINUTE + 1000);
    await world.sessions.resume(session.id);
    assert.deepEqual(await world.sessions.confirm(session, 'guess'), { outcome: 'wrong', remaining: 4 });
  });

  test('a burst of concurrent guesses cannot outrun the limit', async () => {
    const session = await signIn(world);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => world.sessions.confirm(session, 'guess')),
    );
    const outcomes = results.map((result) => result.outcome);
    assert.equal(outcomes.filter((outcome) => outcome === 'wrong').length, 4);
    assert.equal(outcomes.filter((outcome) => outcome === 'revoked').length, 4);
  });

  test('a session signed out while its password is checked answers revoked, not an exception', async () => {
    let signOutDuringCheck: (() => Promise<void>) | undefined;
    const racing: PasswordHasher = {
      hash: (password) => argon2Hasher.hash(password),
      async verify(hash, password) {
        const valid = await argon2Hasher.verify(hash, password);
        await signOutDuringCheck?.();
        return valid;
      },
    };
    await world.db.destroy();
    world = await createWorld(racing);
    const session = await signIn(world);
    signOutDuringCheck = () => world.sessions.signOut(session);
    assert.deepEqual(await world.sessions.confirm(session, PASSWORD), {
      outcome: 'revoked',
      reason: 'ended',
    });
  });
});

describe('flash messages', () => {
  test('a flash is sealed: the database copy never shows the token it carries', async () => {
    const session = await signIn(world);
    const secret = `sk.${'A'.repeat(40)}.${'B'.repeat(20)}`;
    await world.sessions.setFlash(session, {
      notice: 'Created',
      reveal: { id: 'id1', token: secret, usage: 'sk' },
    });
    const row = await world.sessionStore.findSession(session.record.idHash);
    assert.ok(row?.flash);
    assert.ok(!row.flash.includes(secret) && !row.flash.includes('Created'));
    assert.ok(!Buffer.from(row.flash.replaceAll('.', ''), 'base64url').toString('latin1').includes(secret));
    // Only the cookie's id opens it: not the hash the database holds, not another session's id.
    assert.equal(openFlash(session.record.idHash, row.flash), undefined);
    assert.equal(openFlash(newSessionId(systemRandom), row.flash), undefined);
    assert.deepEqual(await world.sessions.takeFlash(session), {
      notice: 'Created',
      reveal: { id: 'id1', token: secret, usage: 'sk' },
    });
    assert.equal(await world.sessions.takeFlash(session), undefined, 'shown once');
  });

  test('a confirmation drops a pending flash (it was sealed under the old id)', async () => {
    const session = await signIn(world);
    await world.sessions.setFlash(session, { notice: 'hello' });
    const confirmed = await world.sessions.confirm(session, PASSWORD);
    assert.equal(await world.sessions.takeFlash((confirmed as { session: Session }).session), undefined);
  });
});

describe('password change', () => {
  test('ends every other session and keeps this one under a new id', async () => {
    const mine = await signIn(world);
    const other = await signIn(world);
    const bobs = await signIn(world, 'bob');
    const result = await world.sessions.changePassword(mine, PASSWORD, NEW_PASSWORD);
    assert.equal(result.outcome, 'changed');
    const kept = (result as { session: Session }).session;
    assert.notEqual(kept.id, mine.id);
    assert.ok(await alive(world, kept));
    assert.equal(await alive(world, mine), false);
    assert.equal(await alive(world, other), false);
    assert.ok(await alive(world, bobs), 'other accounts are untouched');
    assert.equal((await world.sessions.signIn('alice', PASSWORD, CLIENT)).outcome, 'refused');
    await signIn(world, 'alice', NEW_PASSWORD);
  });

  test('a wrong current password changes nothing and counts as a wrong confirmation', async () => {
    const mine = await signIn(world);
    const other = await signIn(world);
    assert.deepEqual(await world.sessions.changePassword(mine, 'not it at all', NEW_PASSWORD), {
      outcome: 'wrong',
      remaining: 4,
    });
    assert.ok(await alive(world, other));
    assert.deepEqual(await world.sessions.confirm(mine, 'guess'), { outcome: 'wrong', remaining: 3 });
    await signIn(world, 'alice', PASSWORD);
  });

  test('a sign-in that checked the old password while it was changed gets no session', async () => {
    let changeDuringCheck: (() => Promise<unknown>) | undefined;
    const racing: PasswordHasher = {
      hash: (password) => argon2Hasher.hash(password),
      async verify(hash, password) {
        const valid = await argon2Hasher.verify(hash, password);
        const change = changeDuringCheck;
        changeDuringCheck = undefined;
        await change?.();
        return valid;
      },
    };
    await world.db.destroy();
    world = await createWorld(racing);
    const mine = await signIn(world);
    // The next check (an intruder's sign-in with the old password) lets the owner change it first.
    changeDuringCheck = () => world.sessions.changePassword(mine, PASSWORD, NEW_PASSWORD);
    assert.equal((await world.sessions.signIn('alice', PASSWORD, CLIENT)).outcome, 'refused');
    const live = await world.db
      .selectFrom('sessions')
      .select('username')
      .where('username', '=', 'alice')
      .execute();
    assert.equal(live.length, 1, 'only the session of the owner who changed the password');
  });

  test('of two password changes at once, the second finds the password changed and ends', async () => {
    const first = await signIn(world);
    const second = await signIn(world);
    const [a, b] = await Promise.all([
      world.sessions.changePassword(first, PASSWORD, NEW_PASSWORD),
      world.sessions.changePassword(second, PASSWORD, 'yet another passphrase'),
    ]);
    const outcomes = [a.outcome, b.outcome].sort();
    assert.deepEqual(outcomes, ['changed', 'revoked']);
    const winner = a.outcome === 'changed' ? NEW_PASSWORD : 'yet another passphrase';
    await signIn(world, 'alice', winner);
  });

  test('a too-short new password is refused before the current one is checked', async () => {
    const mine = await signIn(world);
    const result = await world.sessions.changePassword(mine, 'wrong', 'short');
    assert.equal(result.outcome, 'invalid');
    assert.equal((await world.sessionStore.findSession(mine.record.idHash))?.confirmFailures, 0);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createTemporaryDatabase, postgresSkipReason } from '../../test/helpers/postgres.ts';
import type { SessionRecord } from '../core/session-store.ts';
import { openDatabase } from './database.ts';
import { migrateToLatest } from './migrations.ts';
import type { Database } from './schema.ts';
import { SqlSessionStore } from './sql-session-store.ts';

/** A migrated database for one test; `destroy` closes it and removes what it made. */
interface BackEnd {
  readonly skip?: string;
  open(): Promise<{ db: Kysely<Database>; destroy: () => Promise<void> }>;
}

/** The session storage contract, run against every back end: SQLite and a real PostgreSQL. */
const postgresSkip = await postgresSkipReason();
const BACK_ENDS: Record<string, BackEnd> = {
  sqlite: {
    async open() {
      const db = openDatabase({ kind: 'sqlite', path: ':memory:' });
      await migrateToLatest(db);
      return { db, destroy: () => db.destroy() };
    },
  },
  postgres: {
    ...(postgresSkip ? { skip: postgresSkip } : {}),
    async open() {
      const database = await createTemporaryDatabase();
      const db = openDatabase({ kind: 'postgres', url: database.url });
      await migrateToLatest(db);
      return {
        db,
        async destroy() {
          await db.destroy();
          await database.drop();
        },
      };
    },
  },
};

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();

function record(idHash: string, username: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    idHash,
    username,
    created: at(0),
    lastSeen: at(0),
    expiresAt: at(12 * 3_600_000),
    confirmedUntil: null,
    confirmFailures: 0,
    confirmWindowStart: null,
    flash: null,
    ...overrides,
  };
}

async function withStore(
  backEnd: BackEnd,
  body: (store: SqlSessionStore, db: Kysely<Database>) => Promise<void>,
): Promise<void> {
  const { db, destroy } = await backEnd.open();
  try {
    for (const username of ['alice', 'bob']) {
      await db
        .insertInto('accounts')
        .values({
          username,
          email: `${username}@example.com`,
          password_hash: `old-${username}`,
          created: at(0),
          modified: at(0),
        })
        .execute();
    }
    await body(new SqlSessionStore(db), db);
  } finally {
    await destroy();
  }
}

for (const [name, backEnd] of Object.entries(BACK_ENDS)) {
  describe(`SqlSessionStore on ${name}`, { skip: backEnd.skip ?? false }, () => {
    const run = (title: string, body: (store: SqlSessionStore, db: Kysely<Database>) => Promise<void>) =>
      test(title, () => withStore(backEnd, body));

    run('a session reads back exactly as written; unknown ids find nothing', async (store) => {
      const full = record('h1', 'alice', {
        confirmedUntil: at(300_000),
        confirmFailures: 2,
        confirmWindowStart: at(1000),
        flash: 'sealed',
      });
      await store.insertSession(full);
      assert.deepEqual(await store.findSession('h1'), full);
      assert.equal(await store.findSession('h2'), undefined);
    });

    run('two sessions cannot share an id hash', async (store) => {
      await store.insertSession(record('h1', 'alice'));
      await assert.rejects(store.insertSession(record('h1', 'bob')));
      assert.equal((await store.findSession('h1'))?.username, 'alice');
    });

    run('updateSession changes only the given fields and reports a missing session', async (store) => {
      await store.insertSession(record('h1', 'alice', { flash: 'kept' }));
      assert.equal(await store.updateSession('h1', { lastSeen: at(60_000), confirmedUntil: at(1) }), true);
      assert.deepEqual(
        await store.findSession('h1'),
        record('h1', 'alice', { flash: 'kept', lastSeen: at(60_000), confirmedUntil: at(1) }),
      );
      assert.equal(await store.updateSession('gone', { lastSeen: at(1) }), false);
    });

    run('takeFlash hands the message out once, even to racing readers', async (store) => {
      await store.insertSession(record('h1', 'alice', { flash: 'sealed message' }));
      const taken = await Promise.all(Array.from({ length: 10 }, () => store.takeFlash('h1')));
      assert.deepEqual(
        taken.filter((value) => value !== null),
        ['sealed message'],
      );
      assert.equal(await store.takeFlash('h1'), null);
      assert.equal((await store.findSession('h1'))?.flash, null);
      assert.equal(await store.takeFlash('missing'), null);
    });

    run('recordConfirmFailure counts within the window and starts afresh after it', async (store) => {
      await store.insertSession(record('h1', 'alice'));
      const windowStart = (now: number) => at(now - 15 * 60_000);
      assert.equal(await store.recordConfirmFailure('h1', at(1000), windowStart(1000)), 1);
      assert.equal(await store.recordConfirmFailure('h1', at(2000), windowStart(2000)), 2);
      assert.equal(await store.recordConfirmFailure('h1', at(3000), windowStart(3000)), 3);
      assert.equal((await store.findSession('h1'))?.confirmWindowStart, at(1000));
      // 15 minutes after the first failure of the window, the next one opens a new window.
      const later = 1000 + 15 * 60_000 + 1;
      assert.equal(await store.recordConfirmFailure('h1', at(later), windowStart(later)), 1);
      const row = await store.findSession('h1');
      assert.equal(row?.confirmFailures, 1);
      assert.equal(row?.confirmWindowStart, at(later));
      assert.equal(await store.recordConfirmFailure('gone', at(later), windowStart(later)), undefined);
    });

    run('concurrent wrong confirmations are all counted (no lost update)', async (store) => {
      await store.insertSession(record('h1', 'alice'));
      const counts = await Promise.all(
        Array.from({ length: 20 }, () => store.recordConfirmFailure('h1', at(1000), at(0))),
      );
      assert.deepEqual(
        [...counts].sort((a = 0, b = 0) => a - b),
        Array.from({ length: 20 }, (_, index) => index + 1),
      );
      assert.equal((await store.findSession('h1'))?.confirmFailures, 20);
    });

    run('deleteSession reports whether there was one', async (store) => {
      await store.insertSession(record('h1', 'alice'));
      assert.equal(await store.deleteSession('h1'), true);
      assert.equal(await store.deleteSession('h1'), false);
      assert.equal(await store.findSession('h1'), undefined);
    });

    run('replaceSession swaps the id; a vanished session is not brought back', async (store) => {
      await store.insertSession(record('old', 'alice'));
      assert.equal(
        await store.replaceSession('old', record('new', 'alice', { confirmedUntil: at(5) })),
        true,
      );
      assert.equal(await store.findSession('old'), undefined);
      assert.equal((await store.findSession('new'))?.confirmedUntil, at(5));
      assert.equal(await store.replaceSession('old', record('newer', 'alice')), false);
      assert.equal(await store.findSession('newer'), undefined);
    });

    run(
      'changePassword sets the hash, ends every session of the account, keeps others',
      async (store, db) => {
        await store.insertSession(record('a1', 'alice'));
        await store.insertSession(record('a2', 'alice'));
        await store.insertSession(record('b1', 'bob'));
        assert.equal(
          await store.changePassword(
            { username: 'alice', previousHash: 'old-alice', passwordHash: 'new-hash', modified: at(5000) },
            record('a3', 'alice'),
          ),
          true,
        );
        const alice = await db
          .selectFrom('accounts')
          .selectAll()
          .where('username', '=', 'alice')
          .executeTakeFirst();
        assert.equal(alice?.password_hash, 'new-hash');
        assert.equal(alice?.modified, at(5000));
        assert.equal(await store.findSession('a1'), undefined);
        assert.equal(await store.findSession('a2'), undefined);
        assert.ok(await store.findSession('a3'));
        assert.ok(await store.findSession('b1'));
      },
    );

    run('changePassword is all or nothing', async (store, db) => {
      await store.insertSession(record('a1', 'alice'));
      await store.insertSession(record('b1', 'bob'));
      // The new session collides with bob's id hash, so the last step fails: nothing may remain of the first two.
      await assert.rejects(
        store.changePassword(
          { username: 'alice', previousHash: 'old-alice', passwordHash: 'new-hash', modified: at(5000) },
          record('b1', 'alice'),
        ),
      );
      const alice = await db
        .selectFrom('accounts')
        .selectAll()
        .where('username', '=', 'alice')
        .executeTakeFirst();
      assert.equal(alice?.password_hash, 'old-alice');
      assert.ok(await store.findSession('a1'));
      assert.equal((await store.findSession('b1'))?.username, 'bob');
    });

    run(
      'changePassword refuses when the password changed meanwhile; nothing is touched',
      async (store, db) => {
        await store.insertSession(record('a1', 'alice'));
        const change = {
          username: 'alice',
          previousHash: 'not-the-current-hash',
          passwordHash: 'x',
          modified: at(5000),
        };
        assert.equal(await store.changePassword(change, record('a2', 'alice')), false);
        const alice = await db
          .selectFrom('accounts')
          .selectAll()
          .where('username', '=', 'alice')
          .executeTakeFirst();
        assert.equal(alice?.password_hash, 'old-alice');
        assert.ok(await store.findSession('a1'));
        assert.equal(await store.findSession('a2'), undefined);
      },
    );

    run(
      'a guarded insert stores the session only while the account has that password hash',
      async (store) => {
        assert.equal(await store.insertSession(record('a1', 'alice'), { passwordHash: 'old-alice' }), true);
        assert.equal(await store.insertSession(record('a2', 'alice'), { passwordHash: 'stale-hash' }), false);
        assert.ok(await store.findSession('a1'));
        assert.equal(await store.findSession('a2'), undefined);
      },
    );

    run('pruneSessions removes sessions past their absolute end or idle too long', async (store) => {
      const now = 20 * 3_600_000;
      await store.insertSession(record('expired', 'alice', { lastSeen: at(now), expiresAt: at(now) }));
      await store.insertSession(
        record('idle', 'alice', { lastSeen: at(now - 31 * 60_000), expiresAt: at(now + 1) }),
      );
      await store.insertSession(
        record('live', 'bob', { lastSeen: at(now - 60_000), expiresAt: at(now + 1) }),
      );
      assert.equal(await store.pruneSessions(at(now), at(now - 30 * 60_000)), 2);
      assert.equal(await store.findSession('expired'), undefined);
      assert.equal(await store.findSession('idle'), undefined);
      assert.ok(await store.findSession('live'));
    });
  });
}

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AccountRecord, Store, TokenListQuery } from '../src/core/store.ts';
import type { TokenRecord } from '../src/core/tokens.ts';
import { openDatabase } from '../src/storage/database.ts';
import { migrateToLatest } from '../src/storage/migrations.ts';
import { SqlStore } from '../src/storage/sql-store.ts';
import { createTemporaryDatabase, postgresSkipReason } from './helpers/postgres.ts';

/** One fresh, migrated database for one test. */
interface StoreHarness {
  /** Migration names applied when the database was created. */
  readonly applied: readonly string[];
  /** A store on this database; may be called again after the previous store was closed. */
  open(): Promise<Store>;
  /** Runs the migrations again; returns the names applied this time. */
  migrate(): Promise<string[]>;
  dispose(): Promise<void>;
}

type StoreFactory = () => Promise<StoreHarness>;

async function sqliteHarness(): Promise<StoreHarness> {
  const root = mkdtempSync(join(tmpdir(), 'tessera-store-'));
  const url = { kind: 'sqlite', path: join(root, 'db', 'tessera.db') } as const;
  const db = openDatabase(url);
  const applied = await migrateToLatest(db);
  await db.destroy();
  return {
    applied,
    open: async () => new SqlStore(openDatabase(url)),
    async migrate() {
      const again = openDatabase(url);
      try {
        return await migrateToLatest(again);
      } finally {
        await again.destroy();
      }
    },
    dispose: async () => rmSync(root, { recursive: true, force: true }),
  };
}

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (offsetMs: number): string => new Date(T0 + offsetMs).toISOString();
let idCounter = 0;
const nextId = (): string => `c${(idCounter++).toString(36).padStart(24, '0')}`;

function account(username: string): AccountRecord {
  return {
    username,
    email: `${username}@example.com`,
    passwordHash: '$argon2id$stub',
    created: iso(0),
    modified: iso(0),
  };
}

function token(username: string, changes: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: nextId(),
    username,
    usage: 'pk',
    isDefault: false,
    note: 'a token',
    scopes: ['styles:read'],
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
    tokenHash: 'ab'.repeat(32),
    token: null,
    created: iso(0),
    modified: iso(0),
    deletedAt: null,
    version: 1,
    ...changes,
  };
}

/** Every page of a listing, following the keyset cursor the way the service does. */
async function listAll(store: Store, query: Omit<TokenListQuery, 'after'>): Promise<string[]> {
  const ids: string[] = [];
  let after: TokenListQuery['after'];
  for (;;) {
    const page = await store.listTokens({ ...query, ...(after ? { after } : {}) });
    ids.push(...page.map((record) => record.id));
    const last = page.at(-1);
    if (page.length < query.limit || !last) return ids;
    after = { value: last[query.sortBy], id: last.id };
  }
}

function storeContract(name: string, factory: StoreFactory, options: { readonly skip?: string } = {}): void {
  async function withStore(run: (store: Store, harness: StoreHarness) => Promise<void>): Promise<void> {
    const harness = await factory();
    const store = await harness.open();
    try {
      await run(store, harness);
    } finally {
      await store.close();
      await harness.dispose();
    }
  }

  describe(`Store contract: ${name}`, { skip: options.skip ?? false }, () => {
    test('createAccount stores the account and its default token; a taken username is false', () =>
      withStore(async (store) => {
        const alice = account('alice');
        const defaultToken = token('alice', {
          isDefault: true,
          token: 'pk.x.y',
          note: 'Default public token',
        });
        assert.equal(await store.createAccount(alice, defaultToken), true);
        assert.deepEqual(await store.findAccount('alice'), alice);
        assert.deepEqual(await store.findToken(defaultToken.id), defaultToken);

        const second = token('alice', { isDefault: true });
        assert.equal(await store.createAccount({ ...alice, email: 'other@example.com' }, second), false);
        assert.deepEqual(await store.findAccount('alice'), alice);
        assert.equal(await store.findToken(second.id), undefined);
        assert.equal(await store.findAccount('nobody'), undefined);
      }));

    test('records round-trip with every field set', () =>
      withStore(async (store) => {
        await store.createAccount(account('alice'), token('alice', { isDefault: true }));
        const full = token('alice', {
          usage: 'sk',
          note: 'ünïcode note',
          scopes: ['styles:read', 'tokens:write'],
          allowedUrls: ['https://a.example.com', '*.b.example.com'],
          extensions: {
            resources: ['r'],
            allowedApplications: [{ platform: 'iOS', bundleId: 'com.example' }],
          },
          rateLimit: { limit: 10, interval: 60 },
          expiresAt: iso(3600_000),
          version: 7,
        });
        await store.insertToken(full);
        assert.deepEqual(await store.findToken(full.id), full);
        assert.equal(await store.findToken(nextId()), undefined);
      }));

    test('insertToken re-checks its authoriser and the account limit in its own transaction', () =>
      withStore(async (store) => {
        const admin = token('alice', { isDefault: true });
        await store.createAccount(account('alice'), admin);
        const guard = { authorizerTokenId: admin.id, now: iso(10) };
        assert.equal(await store.insertToken(token('alice', { isDefault: false }), [], guard), 'inserted');
        assert.equal(
          await store.insertToken(token('alice', { isDefault: false }), [], { ...guard, maxLiveTokens: 2 }),
          'quota_reached',
          'two live tokens already',
        );
        const expiring = token('alice', { isDefault: false, expiresAt: iso(5) });
        await store.insertToken(expiring);
        const late = token('alice', { isDefault: false });
        assert.equal(
          await store.insertToken(late, [], { authorizerTokenId: expiring.id, now: iso(10) }),
          'authorizer_gone',
          'an expired authoriser',
        );
        assert.equal(await store.deleteToken(admin.id, iso(11), null), true);
        assert.equal(await store.insertToken(late, [], guard), 'authorizer_gone', 'a deleted authoriser');
        assert.equal(await store.findToken(late.id), undefined, 'nothing was written');
      }));

    test('concurrent inserts against the account limit: exactly the room left is taken', () =>
      withStore(async (store) => {
        await store.createAccount(account('alice'), token('alice', { isDefault: true }));
        const outcomes = await Promise.all(
          Array.from({ length: 20 }, () =>
            store.insertToken(token('alice', { isDefault: false }), [], { now: iso(1), maxLiveTokens: 6 }),
          ),
        );
        assert.equal(outcomes.filter((outcome) => outcome === 'inserted').length, 5);
        const live = await store.listTokens({ username: 'alice', sortBy: 'created', limit: 100 });
        assert.equal(live.length, 6);
      }));

    test('only one live default token per account', () =>
      withStore(async (store) => {
        const first = token('alice', { isDefault: true });
        await store.createAccount(account('alice'), first);
        await assert.rejects(store.insertToken(token('alice', { isDefault: true })));
        await store.insertToken(token('alice', { isDefault: false }));
        await store.createAccount(account('bob'), token('bob', { isDefault: true }));

        assert.equal(await store.deleteToken(first.id, iso(1), null), true);
        const next = token('alice', { isDefault: true });
        await store.insertToken(next);
        await assert.rejects(store.insertToken(token('alice', { isDefault: true })));
        assert.deepEqual(
          (await store.listTokens({ username: 'alice', isDefault: true, sortBy: 'created', limit: 10 })).map(
            (record) => record.id,
          ),
          [next.id],
        );
      }));

    test('listTokens pages newest first, ties broken by id, with filters and without tombstones', () =>
      withStore(async (store) => {
        const defaultToken = token('alice', { isDefault: true, created: iso(0), modified: iso(50) });
        await store.createAccount(account('alice'), defaultToken);
        await store.createAccount(account('bob'), token('bob', { isDefault: true, created: iso(99) }));
        const tokens = [
          token('alice', { created: iso(10), modified: iso(10), usage: 'sk' }),
          token('alice', { created: iso(20), modified: iso(5) }),
          token('alice', { created: iso(20), modified: iso(60), usage: 'sk' }),
          token('alice', { created: iso(20), modified: iso(60) }),
          token('alice', { created: iso(30), modified: iso(30) }),
          token('alice', { created: iso(40), modified: iso(40), usage: 'sk' }),
        ];
        // Insert in an order that is neither the id order nor the time order.
        for (const index of [3, 0, 5, 1, 4, 2]) await store.insertToken(tokens[index] as TokenRecord);
        const gone = tokens[4] as TokenRecord;
        assert.equal(await store.deleteToken(gone.id, iso(70), null), true);

        const live = [defaultToken, ...tokens].filter((record) => record !== gone);
        const order = (key: 'created' | 'modified', records: readonly TokenRecord[]): string[] =>
          [...records]
            .sort((a, b) => (a[key] === b[key] ? (a.id < b.id ? 1 : -1) : a[key] < b[key] ? 1 : -1))
            .map((record) => record.id);

        for (const limit of [1, 2, 3, 10]) {
          assert.deepEqual(
            await listAll(store, { username: 'alice', sortBy: 'created', limit }),
            order('created', live),
          );
          assert.deepEqual(
            await listAll(store, { username: 'alice', sortBy: 'modified', limit }),
            order('modified', live),
          );
        }
        const ids = order('created', live);
        assert.deepEqual(
          ids.slice(1, 4),
          [tokens[3], tokens[2], tokens[1]].map((record) => record?.id),
        );

        const secret = live.filter((record) => record.usage === 'sk');
        assert.deepEqual(
          await listAll(store, { username: 'alice', sortBy: 'created', limit: 2, usage: 'sk' }),
          order('created', secret),
        );
        assert.deepEqual(
          await listAll(store, {
            username: 'alice',
            sortBy: 'created',
            limit: 2,
            usage: 'pk',
            isDefault: false,
          }),
          order(
            'created',
            live.filter((record) => record.usage === 'pk' && !record.isDefault),
          ),
        );
        assert.deepEqual(
          await listAll(store, { username: 'alice', sortBy: 'created', limit: 2, isDefault: true }),
          [defaultToken.id],
        );
        assert.deepEqual(await listAll(store, { username: 'carol', sortBy: 'created', limit: 2 }), []);
      }));

    test('updateToken applies changes at the current version only', () =>
      withStore(async (store) => {
        const original = token('alice', { isDefault: true });
        await store.createAccount(account('alice'), original);
        const changes = {
          note: 'renamed',
          scopes: ['fonts:read'],
          allowedUrls: ['https://a.example.com'],
          extensions: { allowedApis: ['api-styles'] },
          rateLimit: { limit: 1, interval: 1 },
          expiresAt: iso(10_000),
          modified: iso(5),
        };
        const updated = await store.updateToken(original.id, 1, changes);
        assert.deepEqual(updated, { ...original, ...changes, version: 2 });

        assert.equal(await store.updateToken(original.id, 1, { ...changes, note: 'stale' }), undefined);
        assert.deepEqual(await store.findToken(original.id), updated);
        assert.equal(await store.updateToken(nextId(), 1, changes), undefined);

        const cleared = { ...changes, allowedUrls: null, rateLimit: null, expiresAt: null, modified: iso(6) };
        assert.deepEqual(await store.updateToken(original.id, 2, cleared), {
          ...original,
          ...cleared,
          version: 3,
        });

        assert.equal(await store.deleteToken(original.id, iso(7), null), true);
        assert.equal(await store.updateToken(original.id, 4, changes), undefined);
        assert.equal((await store.findToken(original.id))?.note, 'renamed');
      }));

    test('deleteToken tombstones once and inserts the replacement in the same transaction', () =>
      withStore(async (store) => {
        const original = token('alice', { isDefault: true, token: 'pk.a.b' });
        await store.createAccount(account('alice'), original);
        const replacement = token('alice', { isDefault: true, token: 'pk.c.d', created: iso(8) });

        assert.equal(await store.deleteToken(original.id, iso(8), replacement), true);
        assert.deepEqual(await store.findToken(original.id), {
          ...original,
          deletedAt: iso(8),
          token: null,
          version: 2,
        });
        assert.deepEqual(await store.findToken(replacement.id), replacement);
        assert.equal(
          await store.deleteToken(original.id, iso(9), token('alice', { isDefault: true })),
          false,
        );
        assert.equal(await store.deleteToken(nextId(), iso(9), null), false);
        assert.deepEqual(await listAll(store, { username: 'alice', sortBy: 'created', limit: 5 }), [
          replacement.id,
        ]);

        // A replacement that cannot be inserted undoes the tombstone.
        const clash = { ...token('alice', { isDefault: true }), id: replacement.id };
        await store.insertToken(token('alice', { id: 'c'.padEnd(25, 'z') }));
        await assert.rejects(store.deleteToken('c'.padEnd(25, 'z'), iso(10), clash));
        assert.equal((await store.findToken('c'.padEnd(25, 'z')))?.deletedAt, null);
        await assert.rejects(store.deleteToken(replacement.id, iso(10), clash));
        assert.equal((await store.findToken(replacement.id))?.deletedAt, null);
      }));

    test('acknowledged writes survive closing and reopening', async () => {
      const harness = await factory();
      try {
        const first = await harness.open();
        const defaultToken = token('alice', { isDefault: true });
        const other = token('alice', { usage: 'sk' });
        await first.createAccount(account('alice'), defaultToken);
        await first.insertToken(other);
        await first.updateToken(other.id, 1, { ...other, note: 'kept', modified: iso(1) });
        await first.deleteToken(defaultToken.id, iso(2), null);
        await first.close();

        const second = await harness.open();
        try {
          assert.deepEqual(await second.findAccount('alice'), account('alice'));
          assert.equal((await second.findToken(other.id))?.note, 'kept');
          assert.equal((await second.findToken(defaultToken.id))?.deletedAt, iso(2));
          await second.ping();
        } finally {
          await second.close();
        }
      } finally {
        await harness.dispose();
      }
    });

    test('updates and deletes append changes in order; changesSince pages through them', () =>
      withStore(async (store) => {
        await store.createAccount(account('carol'), token('carol', { isDefault: true }));
        const first = token('carol');
        const second = token('carol');
        await store.insertToken(first);
        await store.insertToken(second);
        assert.equal(await store.latestChange(), 0);
        await store.updateToken(first.id, 1, { ...first, note: 'renamed', modified: iso(1) });
        await store.deleteToken(second.id, iso(2), null);
        await store.updateToken(first.id, 2, { ...first, note: 'again', modified: iso(3) });
        const all = await store.changesSince(0, 100);
        assert.deepEqual(
          all.map((change) => change.tokenId),
          [first.id, second.id, first.id],
        );
        assert.ok(all.every((change, index) => index === 0 || change.seq > (all[index - 1]?.seq ?? 0)));
        assert.equal(typeof all[0]?.seq, 'number');
        assert.equal(await store.latestChange(), all.at(-1)?.seq);
        const rest = await store.changesSince(all[0]?.seq ?? 0, 1);
        assert.deepEqual(
          rest.map((change) => change.tokenId),
          [second.id],
        );
      }));

    test('usage increments add up (never overwrite) and sum per service, outcome, hour and token', () =>
      withStore(async (store) => {
        await store.createAccount(account('dave'), token('dave', { isDefault: true }));
        const a = token('dave');
        const b = token('dave');
        await store.insertToken(a);
        await store.insertToken(b);
        const hour = iso(3_600_000);
        const base = { username: 'dave', hour, lastUsed: null };
        const batch = [
          {
            ...base,
            tokenId: a.id,
            service: 'styles',
            outcome: 'allowed',
            count: 3,
            lastUsed: iso(3_600_500),
          },
          { ...base, tokenId: b.id, service: 'styles', outcome: 'allowed', count: 4 },
          { ...base, tokenId: a.id, service: 'styles', outcome: 'url', count: 1 },
        ];
        // Two nodes flushing the same keys: the counts add.
        await Promise.all([store.addUsage(batch), store.addUsage(batch)]);
        const query = { username: 'dave', start: iso(0), end: iso(7_200_000) };
        const rows = await store.usage(query);
        const find = (outcome: string) => rows.find((row) => row.outcome === outcome)?.count;
        assert.equal(find('allowed'), 14);
        assert.equal(find('url'), 2);
        const byToken = await store.usageByToken(query);
        assert.deepEqual(
          byToken.map((row) => [row.tokenId, row.count]).sort(),
          [
            [a.id, 6],
            [b.id, 8],
          ].sort(),
        );
        assert.equal((await store.findToken(a.id))?.lastUsed, iso(3_600_500));
        assert.equal((await store.usage({ ...query, tokenId: b.id }))[0]?.count, 8);
      }));

    test('migrations are idempotent', async () => {
      const harness = await factory();
      try {
        assert.ok(harness.applied.length > 0);
        assert.deepEqual(await harness.migrate(), []);
        const store = await harness.open();
        await store.ping();
        await store.close();
      } finally {
        await harness.dispose();
      }
    });
  });
}

/** A database of its own on the real PostgreSQL, dropped afterwards. */
async function postgresHarness(): Promise<StoreHarness> {
  const database = await createTemporaryDatabase();
  const url = { kind: 'postgres', url: database.url } as const;
  const db = openDatabase(url);
  const applied = await migrateToLatest(db);
  await db.destroy();
  return {
    applied,
    open: async () => new SqlStore(openDatabase(url)),
    async migrate() {
      const again = openDatabase(url);
      try {
        return await migrateToLatest(again);
      } finally {
        await again.destroy();
      }
    },
    dispose: () => database.drop(),
  };
}

storeContract('SQLite', sqliteHarness);
const postgresSkip = await postgresSkipReason();
storeContract('PostgreSQL', postgresHarness, postgresSkip ? { skip: postgresSkip } : {});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { loadConfig } from '../src/config.ts';
import {
  hasValidSignature,
  issueTemporaryToken,
  parseToken,
  type SigningKey,
} from '../src/core/token-format.ts';
import { createServices } from '../src/services/create-services.ts';
import { type DatabaseUrl, openDatabase } from '../src/storage/database.ts';
import { DatabaseKeyRing } from '../src/storage/database-key-ring.ts';
import { FileKeyRing } from '../src/storage/file-key-ring.ts';
import { parseKeyEncryptionKeys } from '../src/storage/key-sealing.ts';
import { migrateToLatest } from '../src/storage/migrations.ts';
import { PostgresChangeListener } from '../src/storage/postgres-listener.ts';
import type { Database } from '../src/storage/schema.ts';
import { runCli } from './helpers/cli.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import { createTestAccount, ManualClock } from './helpers/server.ts';

const KEK = Buffer.alloc(32, 11).toString('base64');
const OTHER_KEK = Buffer.alloc(32, 12).toString('base64');
const keys = parseKeyEncryptionKeys(KEK);
const RETIREMENT_MS = 3_600_000 + 60_000;

function signs(key: SigningKey, verifier: SigningKey | undefined): boolean {
  const raw = issueTemporaryToken({ username: 'alice', expires: 2, issuedAt: 1, scopes: [] }, key);
  const token = parseToken(raw);
  assert.ok(token?.usage === 'tk');
  return verifier !== undefined && hasValidSignature(token, verifier);
}

interface Harness {
  readonly url: DatabaseUrl;
  readonly env: Record<string, string>;
  open(): Kysely<Database>;
  dispose(): Promise<void>;
}

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'tessera-dbkeys-'));
  roots.push(root);
  return root;
}

async function sqliteHarness(): Promise<Harness> {
  const url = { kind: 'sqlite', path: join(tempDir(), 'tessera.db') } as const;
  const db = openDatabase(url);
  await migrateToLatest(db);
  await db.destroy();
  return {
    url,
    env: { TESSERA_DATABASE_URL: `sqlite:${url.path}` },
    open: () => openDatabase(url),
    dispose: async () => {},
  };
}

async function postgresHarness(): Promise<Harness> {
  const database: TemporaryDatabase = await createTemporaryDatabase();
  const url = { kind: 'postgres', url: database.url } as const;
  const db = openDatabase(url);
  await migrateToLatest(db);
  await db.destroy();
  return {
    url,
    env: { TESSERA_DATABASE_URL: database.url },
    open: () => openDatabase(url),
    dispose: () => database.drop(),
  };
}

function contract(
  name: string,
  makeHarness: () => Promise<Harness>,
  skip: () => Promise<string | undefined>,
) {
  describe(`DatabaseKeyRing on ${name}`, async () => {
    const reason = await skip();
    let harness: Harness;
    const open: Kysely<Database>[] = [];
    const db = (): Kysely<Database> => {
      const handle = harness.open();
      open.push(handle);
      return handle;
    };

    before(async () => {
      if (!reason) harness = await makeHarness();
    });
    after(async () => {
      for (const handle of open) await handle.destroy();
      await harness?.dispose();
    });

    test('two nodes starting together on an empty table end up with one shared key', {
      skip: reason,
    }, async () => {
      const handles = [db(), db(), db()];
      const clock = new ManualClock(Date.parse('2030-01-01T00:00:00Z'));
      const rings = await Promise.all(handles.map((handle) => DatabaseKeyRing.open(handle, { keys, clock })));
      const ids = new Set(rings.map((ring) => ring.activeKey().id));
      assert.equal(ids.size, 1);
      assert.equal((await rings[0]?.listKeys())?.length, 1);
      const [a, b] = rings as [DatabaseKeyRing, DatabaseKeyRing];
      assert.ok(signs(a.activeKey(), b.findKey(a.activeKey().id)));
    });

    test('the database holds the secret only sealed', { skip: reason }, async () => {
      const handle = db();
      const ring = await DatabaseKeyRing.open(handle, { keys, clock: new ManualClock() });
      const secret = ring.activeKey().secret;
      const rows = await handle.selectFrom('signing_keys').selectAll().execute();
      const stored = JSON.stringify(rows);
      for (const encoding of ['base64', 'base64url', 'hex'] as const) {
        assert.ok(!stored.includes(Buffer.from(secret).toString(encoding)), encoding);
      }
      assert.ok(!stored.includes(KEK));
      assert.match(rows[0]?.sealed_secret ?? '', /^v1:[0-9a-f]{16}:/);
    });

    test('a rotation is published before it signs: every node knows the key first', {
      skip: reason,
    }, async () => {
      const clock = new ManualClock(Date.parse('2030-02-01T00:00:00Z'));
      const a = await DatabaseKeyRing.open(db(), { keys, clock, activationDelayMs: 30_000 });
      const b = await DatabaseKeyRing.open(db(), { keys, clock, activationDelayMs: 30_000 });
      const old = a.activeKey();
      const kid = await a.rotate();
      assert.equal(a.activeKey().id, old.id, 'the old key signs during the activation delay');
      await b.refresh();
      const fresh = b.findKey(kid);
      assert.ok(fresh, 'node B knows the new key before it signs');
      clock.advance(30_000);
      assert.equal(a.activeKey().id, kid);
      assert.equal(b.activeKey().id, kid);
      assert.ok(signs(a.activeKey(), b.findKey(kid)));
      // The superseded key verifies what it signed until those tokens have expired.
      clock.advance(RETIREMENT_MS - 1);
      assert.ok(signs(old, b.findKey(old.id)));
      clock.advance(2);
      assert.equal(b.findKey(old.id), undefined);
      // The next rotation removes it from the table.
      await b.rotate();
      const listed = (await a.listKeys()).map((key) => key.kid);
      assert.ok(!listed.includes(old.id) && listed.includes(kid), JSON.stringify(listed));
    });

    test('a node asked for a key it does not know yet reloads, without waiting for its timer', {
      skip: reason,
    }, async () => {
      const clock = new ManualClock(Date.parse('2030-03-01T00:00:00Z'));
      const a = await DatabaseKeyRing.open(db(), { keys, clock });
      const b = await DatabaseKeyRing.open(db(), { keys, clock });
      const kid = await a.rotate();
      assert.equal(b.findKey(kid), undefined, 'not loaded yet: refused, never guessed');
      await b.refresh();
      assert.ok(b.findKey(kid));
    });

    test('a node with the wrong key-encryption key refuses to start and names the fingerprint', {
      skip: reason,
    }, async () => {
      await DatabaseKeyRing.open(db(), { keys, clock: new ManualClock() });
      await assert.rejects(
        DatabaseKeyRing.open(db(), { keys: parseKeyEncryptionKeys(OTHER_KEK), clock: new ManualClock() }),
        (error: Error) => {
          assert.match(error.message, new RegExp(`fingerprint ${keys.current.id}`));
          assert.ok(!error.message.includes(KEK) && !error.message.includes(OTHER_KEK));
          return true;
        },
      );
    });

    test('a new key-encryption key listed first: rotate re-seals every key under it', {
      skip: reason,
    }, async () => {
      const clock = new ManualClock(Date.parse('2030-04-01T00:00:00Z'));
      const handle = db();
      const before = await DatabaseKeyRing.open(handle, { keys, clock });
      const both = parseKeyEncryptionKeys(`${OTHER_KEK},${KEK}`);
      const moving = await DatabaseKeyRing.open(db(), { keys: both, clock });
      await moving.rotate();
      const only = parseKeyEncryptionKeys(OTHER_KEK);
      const after = await DatabaseKeyRing.open(db(), { keys: only, clock });
      assert.ok(signs(before.activeKey(), after.findKey(before.activeKey().id)));
      const sealers = new Set(
        (await handle.selectFrom('signing_keys').select('sealed_secret').execute()).map(
          (row) => row.sealed_secret.split(':')[1],
        ),
      );
      assert.deepEqual([...sealers], [only.current.id]);
      await assert.rejects(DatabaseKeyRing.open(db(), { keys, clock }), /not configured/);
    });

    test('an empty table is seeded from a data folder key file: its tokens keep verifying', {
      skip: reason,
    }, async () => {
      const handle = db();
      await handle.deleteFrom('signing_keys').execute();
      const dir = tempDir();
      const clock = new ManualClock();
      const file = new FileKeyRing(dir, clock);
      const oldKey = file.activeKey();
      const ring = await DatabaseKeyRing.open(handle, { keys, clock, importFrom: dir });
      assert.equal(ring.activeKey().id, oldKey.id);
      assert.ok(signs(oldKey, ring.findKey(oldKey.id)));
    });

    test('a server on this database issues temporary tokens any other node verifies', {
      skip: reason,
    }, async () => {
      const env = { ...harness.env, TESSERA_KEY_ENCRYPTION_KEY: KEK, TESSERA_LOG_LEVEL: 'silent' };
      const nodes = [
        await createServices(loadConfig({ ...env, TESSERA_DATA_DIR: tempDir() })),
        await createServices(loadConfig({ ...env, TESSERA_DATA_DIR: tempDir() })),
      ];
      try {
        const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
        const account = await createTestAccount(a, 'keys', ['tokens:write', 'styles:read']);
        const authorizer = await a.tokens.authenticate(account.adminToken);
        const issued = await a.tokens.createTemporary(authorizer, 'keys', {
          scopes: ['styles:read'],
          expires: Date.now() + 600_000,
        });
        assert.equal((await b.tokens.inspect(issued.token)).code, 'TokenValid');
      } finally {
        for (const node of nodes) await node.close();
      }
    });
  });
}

contract('SQLite', sqliteHarness, async () => undefined);
contract('PostgreSQL', postgresHarness, postgresSkipReason);

describe('PostgreSQL nodes and signing keys', async () => {
  const reason = await postgresSkipReason();

  test('a node on PostgreSQL without TESSERA_KEY_ENCRYPTION_KEY refuses to start, saying what to do', {
    skip: reason,
  }, async () => {
    await assert.rejects(
      createServices(
        loadConfig({
          TESSERA_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
          TESSERA_DATA_DIR: tempDir(),
        }),
      ),
      /TESSERA_KEY_ENCRYPTION_KEY is required with PostgreSQL.*openssl rand -base64 32/,
    );
  });

  test('tessera keys rotate and list on PostgreSQL: the new key is published, signs 30 s later', {
    skip: reason,
  }, async () => {
    const harness = await postgresHarness();
    try {
      const env = { ...harness.env, TESSERA_KEY_ENCRYPTION_KEY: KEK, TESSERA_DATA_DIR: tempDir() };
      const before = await runCli(['keys', 'list'], { env });
      assert.equal(before.code, 0, before.stderr);
      const listed = JSON.parse(before.stdout) as { active: string; keys: Array<{ kid: string }> };
      const rotated = await runCli(['keys', 'rotate'], { env });
      assert.equal(rotated.code, 0, rotated.stderr);
      const out = JSON.parse(rotated.stdout) as {
        added: string;
        active: string;
        keys: Array<{ kid: string; created: string; activeFrom: string }>;
      };
      assert.equal(out.active, listed.active, 'the old key still signs');
      const added = out.keys.find((key) => key.kid === out.added);
      assert.equal(Date.parse(added?.activeFrom ?? '') - Date.parse(added?.created ?? ''), 30_000);
      assert.doesNotMatch(rotated.stdout, /secret|sealed|v1:/);
      const refused = await runCli(['keys', 'list'], {
        env: { ...env, TESSERA_KEY_ENCRYPTION_KEY: OTHER_KEK },
      });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`^tessera: signing key .*fingerprint ${keys.current.id}`));
      assert.ok(!refused.stderr.includes(KEK) && !refused.stderr.includes(OTHER_KEK));
    } finally {
      await harness.dispose();
    }
  });

  test('a rotation reaches a listening node at once, through NOTIFY', { skip: reason }, async () => {
    const harness = await postgresHarness();
    const handles = [harness.open(), harness.open()];
    const listener = new PostgresChangeListener(harness.url.kind === 'postgres' ? harness.url.url : '');
    try {
      const clock = new ManualClock();
      const [a, b] = (await Promise.all(
        handles.map((handle) => DatabaseKeyRing.open(handle, { keys, clock, refreshMs: 3_600_000 })),
      )) as [DatabaseKeyRing, DatabaseKeyRing];
      let heard: () => void = () => {};
      const notified = new Promise<void>((resolve) => {
        heard = resolve;
      });
      await new Promise<void>((connected) =>
        listener.start({
          onChange: () => {},
          onKeysChanged: () => void b.refresh().then(heard),
          onConnected: connected,
          onLost: () => {},
        }),
      );
      const kid = await a.rotate();
      await notified;
      assert.ok(b.findKey(kid), 'node B loaded the new key on the notice, not on its (hourly) timer');
    } finally {
      await listener.stop();
      for (const handle of handles) await handle.destroy();
      await harness.dispose();
    }
  });
});

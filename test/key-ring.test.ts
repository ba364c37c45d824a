import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Kysely, sql } from 'kysely';
import { loadConfig } from '../src/config.ts';
import type { TesseraError } from '../src/core/errors.ts';
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
import { createVerifier } from '../src/verifier/create-verifier.ts';
import { runCli } from './helpers/cli.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import { createTestAccount, ManualClock } from './helpers/server.ts';

const KEK = Buffer.alloc(32, 11).toString('base64');
const OTHER_KEK = Buffer.alloc(32, 12).toString('base64');
const keys = parseKeyEncryptionKeys(KEK);
const RETIREMENT_MS = 3_600_000 + 60_000;
const PASSWORD = 'correct horse battery staple';

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
    /** Back to KEK for the tests that follow one that moved the table to OTHER_KEK. */
    const resealUnderFirstKey = async () => {
      const clock = new ManualClock();
      const ring = await DatabaseKeyRing.open(db(), {
        keys: parseKeyEncryptionKeys(`${KEK},${OTHER_KEK}`),
        clock,
      });
      await ring.rotate();
    };
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
      const clock = new ManualClock();
      const a = await DatabaseKeyRing.open(db(), { keys, clock, activationDelayMs: 30_000 });
      const b = await DatabaseKeyRing.open(db(), { keys, clock, activationDelayMs: 30_000 });
      const old = a.activeKey();
      const kid = await a.rotate();
      const activeFrom = Date.parse((await a.listKeys()).find((key) => key.kid === kid)?.activeFrom ?? '');
      assert.ok(activeFrom >= Date.now() + 29_000, 'signs only after the activation delay');
      assert.equal(a.activeKey().id, old.id, 'the old key signs during the activation delay');
      await b.refresh();
      assert.ok(b.findKey(kid), 'node B knows the new key before it signs');
      clock.advance(activeFrom - clock.now());
      assert.equal(a.activeKey().id, kid);
      assert.equal(b.activeKey().id, kid);
      assert.ok(signs(a.activeKey(), b.findKey(kid)));
      // The superseded key verifies what it signed until those tokens have expired.
      clock.advance(RETIREMENT_MS);
      assert.ok(signs(old, b.findKey(old.id)));
      clock.advance(1);
      assert.equal(b.findKey(old.id), undefined);
    });

    test('rotation times come from the database clock: a machine with a wrong clock changes nothing', {
      skip: reason,
    }, async () => {
      const behind = new ManualClock(Date.now() - 2 * 86_400_000);
      const ahead = new ManualClock(Date.now() + 2 * 3_600_000);
      const slow = await DatabaseKeyRing.open(db(), { keys, clock: behind });
      const fast = await DatabaseKeyRing.open(db(), { keys, clock: ahead });
      const latestBefore = Math.max(...(await slow.listKeys()).map((key) => Date.parse(key.activeFrom)));
      const first = await slow.rotate();
      const second = await fast.rotate();
      const listed = await slow.listKeys();
      const times = new Map(listed.map((key) => [key.kid, Date.parse(key.activeFrom)]));
      const firstFrom = times.get(first) ?? 0;
      assert.ok(firstFrom >= Date.now() + 25_000, 'published 30 s ahead by the database clock');
      assert.ok(
        firstFrom >= latestBefore + 30_000 && firstFrom < Math.max(latestBefore, Date.now()) + 35_000,
      );
      assert.ok((times.get(second) ?? 0) >= firstFrom + 30_000, 'each rotation after the previous one');
      assert.deepEqual(
        listed.map((key) => key.kid).slice(-2),
        [first, second],
        'a new key never sorts before the current one',
      );
      assert.ok(Math.abs(slow.clockSkewMs - 2 * 86_400_000) < 60_000, 'the skew is measured');
      assert.ok(Math.abs(fast.clockSkewMs + 2 * 3_600_000) < 60_000);
    });

    test('a clock that drifts after the start is measured again at each refresh and reported each time it passes 5 s', {
      skip: reason,
    }, async () => {
      const clock = new ManualClock();
      const reports: number[] = [];
      const ring = await DatabaseKeyRing.open(db(), {
        keys,
        clock,
        refreshMs: 20,
        onClockSkew: (skewMs) => reports.push(skewMs),
      });
      const measured = async (check: (skewMs: number) => boolean): Promise<void> => {
        for (let attempt = 0; attempt < 250 && !check(ring.clockSkewMs); attempt++) await sleep(20);
        assert.ok(check(ring.clockSkewMs), `skew now ${ring.clockSkewMs} ms`);
        await sleep(100); // a few more measurements: a lasting excess is reported once
      };
      ring.start();
      try {
        assert.ok(Math.abs(ring.clockSkewMs) < 2000, 'in step at the start');
        assert.deepEqual(reports, []);
        clock.advance(60_000);
        await measured((skewMs) => skewMs < -55_000);
        assert.equal(reports.length, 1, 'reported once while it lasts');
        assert.ok(Math.abs((reports[0] ?? 0) + 60_000) < 5000, `reported ${reports[0]} ms`);
        clock.advance(-60_000);
        await measured((skewMs) => Math.abs(skewMs) < 5000);
        assert.equal(reports.length, 1, 'back in step: nothing to report');
        clock.advance(-30_000);
        await measured((skewMs) => skewMs > 25_000);
        assert.equal(reports.length, 2, 'apart again: reported again');
      } finally {
        ring.stop();
      }
    });

    test('keys held stay held: rows emptied by hand or re-sealed under an unknown key cost nothing', {
      skip: reason,
    }, async () => {
      const handle = db();
      const errors: string[] = [];
      const ring = await DatabaseKeyRing.open(handle, {
        keys,
        clock: new ManualClock(),
        onError: (error) => errors.push(String(error)),
      });
      const held = ring.activeKey();
      const saved = await handle.selectFrom('signing_keys').selectAll().execute();
      await sql`delete from signing_keys`.execute(handle);
      await ring.refresh();
      assert.ok(signs(held, ring.findKey(held.id)), 'an emptied table does not empty the ring');
      assert.equal(ring.activeKey().id, held.id);
      assert.match(errors.join('\n'), /holds no key this node can open/);
      await handle.insertInto('signing_keys').values(saved).execute();
      // Another node, already on a new key-encryption key, re-seals everything and rotates.
      const moving = await DatabaseKeyRing.open(db(), {
        keys: parseKeyEncryptionKeys(`${OTHER_KEK},${KEK}`),
        clock: new ManualClock(),
      });
      const fresh = await moving.rotate();
      await ring.refresh();
      assert.ok(signs(held, ring.findKey(held.id)), 'a key it held still verifies');
      assert.equal(ring.findKey(fresh), undefined, 'the key it cannot open is refused, never guessed');
      assert.ok(
        errors.some((error) => error.includes(`fingerprint ${parseKeyEncryptionKeys(OTHER_KEK).current.id}`)),
      );
      assert.ok(!errors.join('').includes(KEK) && !errors.join('').includes(OTHER_KEK));
      await resealUnderFirstKey();
    });

    test('a node that has not read the keys for longer than the activation delay answers unavailable', {
      skip: reason,
    }, async () => {
      const clock = new ManualClock();
      const ring = await DatabaseKeyRing.open(db(), { keys, clock, activationDelayMs: 30_000 });
      assert.equal(ring.findKey('unknownkid1'), undefined, 'fresh: an unknown key is simply refused');
      clock.advance(30_001);
      assert.throws(
        () => ring.findKey('unknownkid2'),
        (error: TesseraError) => error.code === 'unavailable',
      );
      await ring.refresh();
      assert.equal(ring.findKey('unknownkid3'), undefined);
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
      const clock = new ManualClock();
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
      // Back to the first key for the tests that follow.
      await DatabaseKeyRing.open(db(), { keys: parseKeyEncryptionKeys(`${KEK},${OTHER_KEK}`), clock }).then(
        (ring) => ring.rotate(),
      );
    });

    test('an empty table takes over a data folder key file: its tokens keep verifying, a fresh key follows', {
      skip: reason,
    }, async () => {
      const handle = db();
      const saved = await handle.selectFrom('signing_keys').selectAll().execute();
      await handle.deleteFrom('signing_keys').execute();
      try {
        const dir = tempDir();
        const clock = new ManualClock();
        const file = new FileKeyRing(dir, clock);
        const oldKey = file.activeKey();
        const ring = await DatabaseKeyRing.open(handle, { keys, clock, importFrom: dir });
        assert.equal(ring.activeKey().id, oldKey.id);
        assert.ok(signs(oldKey, ring.findKey(oldKey.id)));
        const listed = await ring.listKeys();
        assert.equal(listed.length, 2, 'the imported key and a fresh one');
        assert.ok(Date.parse(listed[1]?.activeFrom ?? '') > Date.now() + 25_000, 'the fresh one signs soon');
        assert.ok(!existsSync(join(dir, 'signing-keys.json')), 'the plaintext file is not left as it was');
        assert.ok(existsSync(join(dir, 'signing-keys.json.imported')));
      } finally {
        await handle.deleteFrom('signing_keys').execute();
        await handle.insertInto('signing_keys').values(saved).execute();
      }
    });

    test('a damaged key file stops the node, naming the entry but never its content', {
      skip: reason,
    }, async () => {
      const handle = db();
      const saved = await handle.selectFrom('signing_keys').selectAll().execute();
      await handle.deleteFrom('signing_keys').execute();
      const good = {
        kid: 'abc123',
        created: new Date().toISOString(),
        secret: Buffer.alloc(32, 9).toString('base64'),
      };
      const cases: Array<[unknown, RegExp]> = [
        [{ keys: [{ ...good, secret: '' }] }, /key 1: bad secret/],
        [{ keys: [{ ...good, secret: 'abc=' }] }, /key 1: bad secret/],
        [{ keys: [good, { ...good, kid: 'x.y/../' }] }, /key 2: bad kid/],
        [{ keys: [good, good] }, /key 2: bad kid/],
        [{ keys: [{ ...good, created: 'yesterday' }] }, /key 1: bad created time/],
        [null, /holds no "keys"/],
        ['{"keys":[{"secret":QUJDREVGR0', /not valid JSON/],
      ];
      try {
        for (const [content, message] of cases) {
          const dir = tempDir();
          writeFileSync(
            join(dir, 'signing-keys.json'),
            typeof content === 'string' ? content : JSON.stringify(content),
          );
          await assert.rejects(
            DatabaseKeyRing.open(handle, { keys, clock: new ManualClock(), importFrom: dir }),
            (error: Error) => {
              assert.match(error.message, message);
              assert.match(error.message, /signing-keys\.json/);
              assert.ok(
                !error.message.includes('QUJD') && !error.message.includes(good.secret),
                error.message,
              );
              return true;
            },
          );
          assert.equal(
            (await handle.selectFrom('signing_keys').select('kid').execute()).length,
            0,
            'nothing written',
          );
        }
      } finally {
        await handle.insertInto('signing_keys').values(saved).execute();
      }
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

describe('guards around the key-encryption key', () => {
  test('set but empty is an error, never "no key"', () => {
    assert.throws(
      () => loadConfig({ TESSERA_KEY_ENCRYPTION_KEY: '' }),
      /TESSERA_KEY_ENCRYPTION_KEY: key 1 of 1/,
    );
  });

  test('a SQLite database that holds sealed keys does not start without the key, nor fall back to a file', async () => {
    const dataDir = tempDir();
    const env = { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'silent' };
    const first = await createServices(loadConfig({ ...env, TESSERA_KEY_ENCRYPTION_KEY: KEK }));
    await first.close();
    await assert.rejects(
      createServices(loadConfig(env)),
      /the database holds signing keys sealed under a key-encryption key: set TESSERA_KEY_ENCRYPTION_KEY/,
    );
    assert.ok(!existsSync(join(dataDir, 'signing-keys.json')), 'no plaintext key file was created');
    const rotate = await runCli(['keys', 'rotate'], { env });
    assert.equal(rotate.code, 1, 'rotating without the key is refused, not done on a file');
  });

  test('a temporary token living longer than Tessera ever signs is refused: it was made with a stolen key', async () => {
    const dataDir = tempDir();
    const node = await createServices(
      loadConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_KEY_ENCRYPTION_KEY: KEK, TESSERA_LOG_LEVEL: 'silent' }),
    );
    try {
      await node.accounts.createAccount({ username: 'forged', email: 'f@example.com', password: PASSWORD });
      const now = Math.floor(Date.now() / 1000);
      const key = node.keyRing.activeKey();
      const long = issueTemporaryToken(
        { username: 'forged', issuedAt: now, expires: now + 3601, scopes: [] },
        key,
      );
      const fine = issueTemporaryToken(
        { username: 'forged', issuedAt: now, expires: now + 3600, scopes: [] },
        key,
      );
      assert.equal((await node.tokens.inspect(long)).code, 'TokenInvalid');
      assert.equal((await node.tokens.inspect(fine)).code, 'TokenValid');
    } finally {
      await node.close();
    }
  });
});

describe('the embedded verifier on PostgreSQL', async () => {
  const reason = await postgresSkipReason();
  test('shares the server signing keys through keyEncryptionKey', { skip: reason }, async () => {
    const harness = await postgresHarness();
    const env = { ...harness.env, TESSERA_KEY_ENCRYPTION_KEY: KEK, TESSERA_LOG_LEVEL: 'silent' };
    const server = await createServices(loadConfig({ ...env, TESSERA_DATA_DIR: tempDir() }));
    const dataDir = tempDir();
    const verifier = await createVerifier({
      databaseUrl: harness.env.TESSERA_DATABASE_URL as string,
      dataDir,
      keyEncryptionKey: KEK,
    });
    try {
      const account = await createTestAccount(server, 'embedded', ['tokens:write', 'styles:read']);
      const authorizer = await server.tokens.authenticate(account.adminToken);
      const { token } = await server.tokens.createTemporary(authorizer, 'embedded', {
        scopes: ['styles:read'],
        expires: Date.now() + 600_000,
      });
      const decision = await verifier.verify({ token, scope: 'styles:read' });
      assert.equal(decision.allowed, true, JSON.stringify(decision));
      assert.ok(!existsSync(join(dataDir, 'signing-keys.json')));
    } finally {
      await verifier.close();
      await server.close();
      await harness.dispose();
    }
  });
});

import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { maskDatabaseUrl, migrateStore } from '../src/storage/copy-store.ts';
import { openDatabase, parseDatabaseUrl } from '../src/storage/database.ts';
import { api, startApiServer } from './helpers/api.ts';
import { type CliRun, runCli } from './helpers/cli.ts';
import { DashboardClient } from './helpers/dashboard.ts';
import { verifyNginx } from './helpers/forward-auth.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import { createTestAccount, type TestServer, tempDataDir } from './helpers/server.ts';

/**
 * `tessera migrate-store`, run as the real CLI process: a SQLite installation filled through the
 * real server is copied to PostgreSQL (and back, and to SQLite), then served from the copy.
 */
const skip = await postgresSkipReason();
const HOUR = 3_600_000;

type Run = CliRun;

function tessera(args: readonly string[]): Promise<Run> {
  return runCli(args);
}

/** A refusal: the exit status, one line on stderr matching `message`, nothing on stdout. */
function assertRefused(run: Run, code: number, message: RegExp): void {
  assert.equal(run.code, code, run.stderr);
  assert.match(run.stderr, message);
  assert.match(run.stderr, /^tessera: [^\n]+\n$/, 'a single line');
  assert.equal(run.stdout, '');
}

const TABLES = {
  accounts: ['username'],
  tokens: ['id'],
  token_events: ['seq'],
  usage_counts: ['token_id', 'service', 'outcome', 'hour'],
  sessions: ['id_hash'],
  signing_keys: ['kid'],
  audit_events: ['seq'],
  webhook_deliveries: ['id'],
  token_notices: ['token_id', 'kind'],
} as const;
type Dump = Record<keyof typeof TABLES, Record<string, unknown>[]>;

/** Every row of every table in key order, int8 strings (PostgreSQL's) read as numbers. */
async function dump(url: string): Promise<Dump> {
  const db = openDatabase(parseDatabaseUrl(url));
  try {
    const result: Partial<Dump> = {};
    for (const [table, key] of Object.entries(TABLES) as [keyof Dump, readonly string[]][]) {
      const rows = await sql<Record<string, unknown>>`select * from ${sql.table(table)} order by ${sql.join(
        key.map((column) => sql.ref(column)),
      )}`.execute(db);
      result[table] = rows.rows.map((row) =>
        Object.fromEntries(
          Object.entries(row).map(([name, value]) => [
            name,
            typeof value === 'bigint' ? Number(value) : value,
          ]),
        ),
      );
    }
    for (const row of result.token_events ?? []) row['seq'] = Number(row['seq']);
    for (const row of result.usage_counts ?? []) row['count'] = Number(row['count']);
    for (const row of result.audit_events ?? []) row['seq'] = Number(row['seq']);
    for (const row of result.webhook_deliveries ?? []) row['attempts'] = Number(row['attempts']);
    return result as Dump;
  } finally {
    await db.destroy();
  }
}

function counts(rows: Dump): Record<string, number> {
  return Object.fromEntries(Object.entries(rows).map(([table, list]) => [table, list.length]));
}

interface Installation {
  readonly dataDir: string;
  readonly url: string;
  /** Raw token -> the code `GET /tokens/v2` gave it before the move. */
  readonly codes: ReadonlyMap<string, string>;
  readonly listings: Readonly<Record<string, unknown>>;
  readonly usage: unknown;
  readonly adminOf: { readonly alice: string; readonly bob: string };
  readonly sessionCookies: ReadonlyMap<string, string>;
  readonly usageQuery: string;
}

async function codeOf(server: TestServer, token: string): Promise<string> {
  const response = await api(server, 'GET', '/tokens/v2', { token });
  assert.equal(response.status, 200, response.text);
  return (response.body as { code: string }).code;
}

async function createToken(
  server: TestServer,
  admin: string,
  json: object,
): Promise<{ id: string; token: string }> {
  const created = await api(server, 'POST', '/tokens/v2/alice', { token: admin, json });
  assert.equal(created.status, 200, created.text);
  return created.body as { id: string; token: string };
}

/**
 * A SQLite installation used through the real server: two accounts, pk, sk and temporary tokens,
 * a deleted token, a refreshed default token, an updated note, flushed usage and a dashboard session.
 */
async function install(): Promise<Installation> {
  const dataDir = tempDataDir();
  const server = await startApiServer({ env: { TESSERA_DATA_DIR: dataDir } });
  try {
    const scopes = ['tokens:read', 'tokens:write', 'styles:read', 'analytics:read'];
    const alice = await createTestAccount(server.services, 'alice', scopes);
    const bob = await createTestAccount(server.services, 'bob');
    const pk = await createToken(server, alice.adminToken, {
      note: 'web map',
      scopes: ['styles:read'],
      allowedUrls: ['https://app.example.com'],
    });
    const sk = await createToken(server, alice.adminToken, {
      note: 'backend',
      scopes: ['styles:read', 'tokens:read'],
    });
    const doomed = await createToken(server, alice.adminToken, { note: 'doomed', scopes: ['styles:read'] });
    assert.equal(
      (await api(server, 'DELETE', `/tokens/v2/alice/${doomed.id}`, { token: alice.adminToken })).status,
      204,
    );
    const patched = await api(server, 'PATCH', `/tokens/v2/alice/${sk.id}`, {
      token: alice.adminToken,
      json: { note: 'backend, renamed' },
    });
    assert.equal(patched.status, 200, patched.text);
    // Deleting a default token refreshes it: the old one is a tombstone, a new default takes its place.
    const bobDefault = (await server.services.tokens.inspect(bob.defaultToken)).record?.id;
    assert.ok(bobDefault);
    assert.equal(
      (await api(server, 'DELETE', `/tokens/v2/bob/${bobDefault}`, { token: bob.adminToken })).status,
      204,
    );
    const temporary = await api(server, 'POST', '/tokens/v2/alice', {
      token: alice.adminToken,
      json: { expires: new Date(Date.now() + 30 * 60_000).toISOString(), scopes: ['styles:read'] },
    });
    assert.equal(temporary.status, 200, temporary.text);
    const tk = (temporary.body as { token: string }).token;

    const style = (token: string): string => `/styles/v1/alice/streets?access_token=${token}`;
    for (let i = 0; i < 3; i++)
      assert.equal((await verifyNginx(server, style(alice.defaultToken))).status, 200);
    assert.equal((await verifyNginx(server, style(sk.token))).status, 200);
    assert.equal((await verifyNginx(server, style(doomed.token))).status, 401);
    const fonts = (token: string): string => `/fonts/v1/alice/Sans/0-255.pbf?access_token=${token}`;
    assert.equal((await verifyNginx(server, fonts(alice.defaultToken))).status, 200);
    assert.equal((await verifyNginx(server, fonts(sk.token))).status, 403, 'no fonts:read');
    await server.services.usage.flush();

    const browser = new DashboardClient(server);
    await browser.signInOk('alice');

    const tokens = [
      alice.defaultToken,
      alice.adminToken,
      bob.defaultToken,
      bob.adminToken,
      pk.token,
      sk.token,
      doomed.token,
      tk,
    ];
    const codes = new Map<string, string>();
    for (const token of tokens) codes.set(token, await codeOf(server, token));
    assert.equal(codes.get(doomed.token), 'TokenRevoked');
    assert.equal(codes.get(bob.defaultToken), 'TokenRevoked');
    assert.equal(codes.get(tk), 'TokenValid');

    const adminOf = { alice: alice.adminToken, bob: bob.adminToken };
    const now = Date.now();
    const usageQuery = `/usage/v1/alice?period=hour&start=${new Date(Math.floor(now / HOUR) * HOUR - HOUR).toISOString()}&end=${new Date(Math.floor(now / HOUR) * HOUR + 2 * HOUR).toISOString()}`;
    return {
      dataDir,
      url: `sqlite:${join(dataDir, 'tessera.db')}`,
      codes,
      listings: await listings(server, adminOf),
      usage: (await api(server, 'GET', usageQuery, { token: alice.adminToken })).body,
      adminOf,
      sessionCookies: browser.cookies(),
      usageQuery,
    };
  } finally {
    await server.close();
  }
}

/** The token id in an sk token's payload (`{"u", "a"}`). */
function adminTokenId(token: string): string {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64').toString('latin1')) as {
    a: string;
  };
  return payload.a;
}

async function listings(
  server: TestServer,
  adminOf: Readonly<Record<string, string>>,
): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  for (const [username, token] of Object.entries(adminOf)) {
    const response = await api(server, 'GET', `/tokens/v2/${username}?limit=100`, { token });
    assert.equal(response.status, 200, response.text);
    // Listing is itself a use of the admin token (its lastUsed moves at the next flush): not data.
    const adminId = adminTokenId(token);
    result[username] = (response.body as Array<Record<string, unknown>>).map((metadata) => {
      if (metadata['id'] !== adminId) return metadata;
      const { lastUsed: _lastUsed, ...rest } = metadata;
      return rest;
    });
  }
  return result;
}

describe('migrate-store from SQLite to PostgreSQL and back', { skip: skip ?? false }, () => {
  let installation: Installation;
  let target: TemporaryDatabase;
  let original: Dump;
  let moved: Run;
  const databases: TemporaryDatabase[] = [];
  const dataDirs: string[] = [];

  async function temporaryDatabase(): Promise<TemporaryDatabase> {
    const database = await createTemporaryDatabase();
    databases.push(database);
    return database;
  }

  before(async () => {
    installation = await install();
    dataDirs.push(installation.dataDir);
    original = await dump(installation.url);
    target = await temporaryDatabase();
    const withPassword = new URL(target.url);
    withPassword.password = 'hunter2'; // trust auth ignores it; the output must not show it
    moved = await tessera(['migrate-store', '--from', installation.url, '--to', withPassword.toString()]);
  });
  after(async () => {
    for (const database of databases) await database.drop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  test('copies every row, reports the counts and masks the password', async () => {
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stderr, '');
    assert.doesNotMatch(moved.stdout, /hunter2/);
    const masked = new URL(target.url);
    masked.password = '***';
    assert.deepEqual(JSON.parse(moved.stdout), {
      from: installation.url,
      to: masked.toString(),
      copied: counts(original),
    });
    assert.equal(original.tokens.filter((row) => row['deleted_at'] !== null).length, 2, 'tombstones');
    assert.ok(
      original.token_events.length >= 3 && original.usage_counts.length > 0 && original.sessions.length > 0,
    );
    assert.deepEqual(await dump(target.url), original);
  });

  test('back from PostgreSQL to a new SQLite file, every row the same', async () => {
    const dir = tempDataDir();
    dataDirs.push(dir);
    const back = `sqlite:${join(dir, 'back.db')}`;
    const run = await tessera(['migrate-store', '--from', target.url, '--to', back]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout).copied, counts(original));
    assert.deepEqual(await dump(back), original);
  });

  test('refuses a target that holds data, and leaves it as it was', async () => {
    const run = await tessera(['migrate-store', '--from', installation.url, '--to', target.url]);
    assertRefused(
      run,
      1,
      /^tessera: target: already holds data \(accounts: 2, tokens: \d+.*empty store only/,
    );
    assert.deepEqual(await dump(target.url), original);
  });

  test('refuses the same database, however it is spelt', async () => {
    const respelt = target.url.replace(/^postgres:/, 'postgresql:').replace('127.0.0.1:5432', '127.0.0.1');
    const run = await tessera(['migrate-store', '--from', target.url, '--to', respelt]);
    assertRefused(run, 2, /--from and --to name the same database/);
  });

  test('an unreachable target: one line, no password, nothing written anywhere', async () => {
    const run = await tessera([
      'migrate-store',
      '--from',
      installation.url,
      '--to',
      'postgres://postgres:s3cret@127.0.0.1:1/nowhere',
    ]);
    assertRefused(run, 1, /^tessera: target: connect ECONNREFUSED/);
    assert.doesNotMatch(run.stderr, /s3cret/);
    assert.deepEqual(await dump(installation.url), original);
  });

  test('a failure half-way through the copy leaves the target without a row', async () => {
    const dir = tempDataDir();
    dataDirs.push(dir);
    const path = join(dir, 'tessera.db');
    assert.equal(
      (await tessera(['migrate-store', '--from', installation.url, '--to', `sqlite:${path}`])).code,
      0,
    );
    // PostgreSQL refuses NUL in text; sessions are copied last, after every other table went in.
    const sqlite = new SQLite(path);
    sqlite
      .prepare(
        "insert into sessions (id_hash, username, created, last_seen, expires_at, confirm_failures) values (?, 'alice', 'x', 'x', 'x', 0)",
      )
      .run('zz\u0000nul');
    sqlite.close();
    const database = await temporaryDatabase();
    const run = await tessera(['migrate-store', '--from', `sqlite:${path}`, '--to', database.url]);
    assertRefused(run, 1, /^tessera: copy failed, nothing was written: invalid byte sequence .*UTF8/);
    const left = counts(await dump(database.url));
    assert.deepEqual(left, {
      accounts: 0,
      tokens: 0,
      token_events: 0,
      usage_counts: 0,
      sessions: 0,
      signing_keys: 0,
      audit_events: 0,
      webhook_deliveries: 0,
      token_notices: 0,
    });
  });

  describe('a server started on the copy, with the same data folder', () => {
    let server: TestServer;

    before(async () => {
      server = await startApiServer({
        env: { TESSERA_DATABASE_URL: target.url, TESSERA_DATA_DIR: installation.dataDir },
      });
    });
    after(() => server?.close());

    test('every token verifies as before: live ones valid (temporary too), deleted ones revoked', async () => {
      for (const [token, code] of installation.codes) assert.equal(await codeOf(server, token), code, token);
    });

    test('the Tokens API lists the same metadata and usage reports the same numbers', async () => {
      assert.deepEqual(await listings(server, installation.adminOf), installation.listings);
      const usage = await api(server, 'GET', installation.usageQuery, {
        token: installation.adminOf.alice,
      });
      assert.deepEqual(usage.body, installation.usage);
    });

    test('the dashboard session carries over', async () => {
      const browser = new DashboardClient(server);
      for (const [name, value] of installation.sessionCookies) browser.setCookie(name, value);
      const page = await browser.get('/account');
      assert.equal(page.status, 200);
      assert.match(page.text, /Default public token/);
    });

    test('a new change is logged after the copied ones', async () => {
      const copiedMax = Math.max(...original.token_events.map((row) => Number(row['seq'])));
      assert.equal(await server.services.store.latestChange(), copiedMax);
      const listed = (installation.listings['alice'] as { id: string; note: string }[])[0];
      assert.ok(listed);
      const patched = await api(server, 'PATCH', `/tokens/v2/alice/${listed.id}`, {
        token: installation.adminOf.alice,
        json: { note: 'after the move' },
      });
      assert.equal(patched.status, 200, patched.text);
      const [change] = await server.services.store.changesSince(copiedMax, 10);
      assert.ok(change && change.seq > copiedMax);
      assert.equal(change.tokenId, listed.id);
    });
  });
});

describe('migrate-store between SQLite files', () => {
  let installation: Installation;
  let original: Dump;
  let dir: string;

  before(async () => {
    installation = await install();
    original = await dump(installation.url);
    dir = tempDataDir();
  });
  after(() => {
    rmSync(installation.dataDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test('copies every row into a new file', async () => {
    const copy = `sqlite:${join(dir, 'copy.db')}`;
    const run = await tessera(['migrate-store', '--from', installation.url, '--to', copy]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { from: installation.url, to: copy, copied: counts(original) });
    assert.deepEqual(await dump(copy), original);
    const again = await tessera(['migrate-store', '--from', installation.url, '--to', copy]);
    assertRefused(again, 1, /target: already holds data/);
  });

  test('pages through every table on its key, whatever the batch size', async () => {
    assert.ok(original.usage_counts.length >= 3 && original.token_events.length >= 3);
    for (const batchSize of [1, 2, 500]) {
      const copy = `sqlite:${join(dir, `batch-${batchSize}.db`)}`;
      const copied = await migrateStore(parseDatabaseUrl(installation.url), parseDatabaseUrl(copy), {
        batchSize,
      });
      assert.deepEqual(copied, counts(original));
      assert.deepEqual(await dump(copy), original);
    }
  });

  test('a password is masked wherever a URL can carry one', () => {
    assert.equal(maskDatabaseUrl('postgres://u:p%40ss@db:5432/t'), 'postgres://u:***@db:5432/t');
    assert.equal(
      maskDatabaseUrl('postgresql://u@db/t?password=secret&sslmode=require'),
      'postgresql://u@db/t?password=***&sslmode=require',
    );
    assert.equal(maskDatabaseUrl('postgres://u@db/t'), 'postgres://u@db/t');
    assert.equal(maskDatabaseUrl('sqlite:/var/lib/tessera/tessera.db'), 'sqlite:/var/lib/tessera/tessera.db');
  });

  test('refuses wrong invocations with exit status 2, creating nothing', async () => {
    const target = `sqlite:${join(dir, 'never.db')}`;
    const cases: [string[], RegExp][] = [
      [['--from', installation.url], /--from and --to are required/],
      [['--from', 'mysql://db/tessera', '--to', target], /--from must start with sqlite: or postgres:\/\//],
      [['--from', installation.url, '--to', 'sqlite:'], /--to: sqlite: needs a file path/],
      [['--from', installation.url, '--to', 'postgres://'], /--to must start with sqlite: or postgres:\/\//],
      [
        ['--from', installation.url, '--to', 'sqlite::memory:'],
        /--to: sqlite::memory: holds no installation/,
      ],
      [['--from', installation.url, '--to', target, '--merge'], /Unknown option '--merge'/],
      [['--from', installation.url, '--to', installation.url], /name the same database/],
      [
        [
          '--from',
          installation.url,
          '--to',
          `sqlite:${join(installation.dataDir, '..', installation.dataDir.split('/').at(-1) ?? '', 'tessera.db')}`,
        ],
        /name the same database/,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => tessera(['migrate-store', ...args])));
    for (const [index, run] of runs.entries()) assertRefused(run, 2, cases[index]?.[1] ?? /never/);
    assert.equal(existsSync(join(dir, 'never.db')), false);
  });

  test('refuses a source that is missing or holds no store, creating no target', async () => {
    const target = `sqlite:${join(dir, 'never.db')}`;
    const missing = await tessera([
      'migrate-store',
      '--from',
      `sqlite:${join(dir, 'missing.db')}`,
      '--to',
      target,
    ]);
    assertRefused(missing, 1, /^tessera: source: no SQLite database at /);
    assert.equal(existsSync(join(dir, 'missing.db')), false);
    new SQLite(join(dir, 'empty.db')).close();
    const empty = await tessera([
      'migrate-store',
      '--from',
      `sqlite:${join(dir, 'empty.db')}`,
      '--to',
      target,
    ]);
    assertRefused(empty, 1, /^tessera: source: it holds no Tessera store/);
    assert.equal(existsSync(join(dir, 'never.db')), false);
  });

  test('help says to stop the server and how to call it', async () => {
    const help = await tessera(['migrate-store', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--from <database url> --to <database url>/);
    assert.match(help.stdout, /Stop every Tessera server/);
    assert.match((await tessera(['--help'])).stdout, /migrate-store --from <url> --to <url>/);
  });
});

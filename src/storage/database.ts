import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { type Driver, Kysely, PostgresAdapter, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

export type DatabaseUrl =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string };

/** Parses `sqlite:<path>` or `postgres://…` (`postgresql://` too); anything else is refused. */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0) throw new TypeError('TESSERA_DATABASE_URL: sqlite: needs a file path');
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\/./.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new TypeError('TESSERA_DATABASE_URL: not a valid postgres:// URL');
    }
    return { kind: 'postgres', url };
  }
  throw new TypeError('TESSERA_DATABASE_URL must start with sqlite: or postgres://');
}

export interface OpenOptions {
  /** PostgreSQL only: how long the client waits for any answer, in ms; 0 waits for ever. */
  readonly queryTimeoutMs?: number;
  /** PostgreSQL only: the server's `statement_timeout`, in ms (2 s); 0 for none (migrations). */
  readonly statementTimeoutMs?: number;
}

export function openDatabase(url: DatabaseUrl, options: OpenOptions = {}): Kysely<Database> {
  if (url.kind === 'sqlite') return openSqlite(url.path);
  return openPostgres(
    url.url,
    options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
    options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
  );
}

function openSqlite(path: string): Kysely<Database> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const sqlite = new SQLite(path);
  // Password hashes and token digests: readable by the service's user only (SQLite gives the
  // -wal and -shm files the same mode as the database).
  if (path !== ':memory:') chmodSync(path, 0o600);
  // WAL lets readers run beside the writer; synchronous=FULL makes a commit durable once it returns.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  return new Kysely<Database>({ dialect: new SqliteKeepingErrors(sqlite) });
}

/**
 * SQLite rolls a transaction back by itself on some errors (a full disk, an I/O error); Kysely's
 * ROLLBACK that follows would then fail with "no transaction is active" and replace the error that
 * says what happened (SQLITE_FULL answers 503; the replacement would be a 500). The rollback is
 * skipped when SQLite has no transaction open any more.
 */
class SqliteKeepingErrors extends SqliteDialect {
  readonly #sqlite: SQLite.Database;

  constructor(sqlite: SQLite.Database) {
    super({ database: sqlite });
    this.#sqlite = sqlite;
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const rollback = driver.rollbackTransaction.bind(driver);
    driver.rollbackTransaction = async (connection) => {
      if (this.#sqlite.inTransaction) await rollback(connection);
    };
    return driver;
  }
}

/**
 * The security plan's timeouts: a statement runs at most 2 s, a connection is found within 5 s. A
 * session left idle inside a transaction is ended by the server after 10 s (a backstop: no
 * transaction of Tessera's waits on anything but the database).
 */
const STATEMENT_TIMEOUT_MS = 2000;
const POSTGRES_POOL = {
  max: 10,
  connectionTimeoutMillis: 5000,
  idleTimeoutMillis: 30_000,
  idle_in_transaction_session_timeout: 10_000,
};

/**
 * statement_timeout is enforced by the server, so a server that hangs (SIGSTOP, a frozen VM, a
 * network that drops packets) would hold a request for as long as it hangs: the client gives up a
 * second after the server should have, and then closes that connection (ClosingClient).
 */
const QUERY_TIMEOUT_MS = 3000;

/**
 * The driver's query timeout only rejects the promise: the query may still run once the server
 * wakes, and the connection goes back to the pool in a state nobody knows (a `BEGIN` that ran late
 * leaves it inside a transaction, where later writes would never commit; a migration's advisory
 * lock would stay held). So a connection whose query timed out is closed at once; the pool then
 * drops it, and the server rolls back whatever it held.
 */
class ClosingClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads (promise or callback) pass through as they are.
  override query(...args: any[]): any {
    const last = args.at(-1);
    if (typeof last === 'function') {
      args[args.length - 1] = (error: Error | undefined, ...rest: unknown[]) => {
        if (isQueryTimeout(error)) this.#close();
        last(error, ...rest);
      };
    }
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    const result = (super.query as (...all: any[]) => any)(...args);
    if (result && typeof result.catch === 'function') {
      result.catch((error: unknown) => {
        if (isQueryTimeout(error)) this.#close();
      });
    }
    return result;
  }

  #close(): void {
    const client = this as unknown as {
      _queryable: boolean;
      _ending: boolean;
      connection?: { stream?: { destroy(): void } };
    };
    // Marked at once, so the pool never hands this client to a waiting request (pg-pool reads these).
    client._queryable = false;
    client._ending = true;
    client.connection?.stream?.destroy();
  }
}

function isQueryTimeout(error: unknown): boolean {
  return (error as Error | undefined)?.message === 'Query read timeout';
}

function openPostgres(url: string, queryTimeoutMs: number, statementTimeoutMs: number): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    ...POSTGRES_POOL,
    Client: ClosingClient,
    // 0 is sent as such (pg leaves a falsy statement_timeout out, and the role's default would apply).
    ...(statementTimeoutMs > 0
      ? { statement_timeout: statementTimeoutMs }
      : { options: '-c statement_timeout=0' }),
    query_timeout: queryTimeoutMs,
    keepAlive: true,
  });
  // A dropped connection must not crash the process: idle ones report on the pool, busy ones on
  // their client (and the query in flight fails as well, which is where the caller hears of it).
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Which SQL dialect a Kysely instance speaks: the one place that asks. */
// biome-ignore lint/suspicious/noExplicitAny: any schema; only the adapter is read.
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ECONNRESET',
  'EPIPE',
]);

/**
 * SQLite cannot write (disk full, read-only or failing file system, locked by another process past
 * the busy timeout): the write is refused whole, and a retry may well succeed once that is fixed.
 */
const SQLITE_CANNOT_WRITE = /^SQLITE_(FULL|READONLY|IOERR|BUSY|LOCKED|CANTOPEN|PROTOCOL)/;

/**
 * Is this the database being out of reach or unable to write (down, restarting, cut off, hung, out
 * of space, too slow), rather than a bug? Such errors answer 503 with `Retry-After`, not 500: the
 * unreachable cases below, plus PostgreSQL's class 53 (insufficient resources: disk full, out of
 * memory, too many connections) and 57014 (a statement cut off by `statement_timeout`), and
 * SQLite's full, read-only, failing or locked disk.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (isDatabaseUnreachable(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === '57014' || SQLITE_CANNOT_WRITE.test(code));
}

/**
 * How migrations connect: no statement limit (an index on a large table may take minutes), and a
 * client timeout long enough for that but not endless, so a connection that went dead during a
 * start is given up on and the start tries again.
 */
export const MIGRATION_OPTIONS: OpenOptions = { statementTimeoutMs: 0, queryTimeoutMs: 15 * 60_000 };

/**
 * Is the database out of reach (down, restarting, cut off, hung, out of connections)? PostgreSQL's
 * classes 08 (connection exception), 53 (insufficient resources: too many connections, out of
 * memory or disk) and 57P0x (shutting down, cannot connect now), the driver's own connection errors and
 * its query timeout (the server did not answer at all). Only these make a starting node wait: a
 * statement that fails for another reason stops the start with its error.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || /^08|^53|^57P0/.test(code))) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connection is closed|Client has encountered a connection error|Query read timeout/i.test(
    String((error as Error | null)?.message ?? error),
  );
}

import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresAdapter, PostgresDialect, SqliteDialect } from 'kysely';
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

export function openDatabase(url: DatabaseUrl): Kysely<Database> {
  return url.kind === 'sqlite' ? openSqlite(url.path) : openPostgres(url.url);
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
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
}

/** The security plan's timeouts: a statement runs at most 2 s, a connection is found within 5 s. */
const POSTGRES_POOL = {
  max: 10,
  statement_timeout: 2000,
  connectionTimeoutMillis: 5000,
  idleTimeoutMillis: 30_000,
};

function openPostgres(url: string): Kysely<Database> {
  const pool = new pg.Pool({ connectionString: url, ...POSTGRES_POOL });
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
 * Is this the database being out of reach (down, restarting, cut off), rather than a bug? Such
 * errors answer 503 with `Retry-After`, not 500. PostgreSQL's classes 08 (connection exception) and
 * 57P0x (shutting down, cannot connect now) count, as do the driver's own connection errors.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || /^08|^57P0/.test(code))) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connection is closed|Client has encountered a connection error/i.test(
    String((error as Error | null)?.message ?? error),
  );
}

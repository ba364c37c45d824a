import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.ts';

export type DatabaseUrl = { readonly kind: 'sqlite'; readonly path: string };

/** Parses `sqlite:<path>`; other schemes are refused with a clear message. */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0) throw new TypeError('TESSERA_DATABASE_URL: sqlite: needs a file path');
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    throw new TypeError('TESSERA_DATABASE_URL: PostgreSQL is not supported by this release yet');
  }
  throw new TypeError('TESSERA_DATABASE_URL must start with sqlite:');
}

export function openDatabase(url: DatabaseUrl): Kysely<Database> {
  if (url.path !== ':memory:') mkdirSync(dirname(url.path), { recursive: true, mode: 0o700 });
  const sqlite = new SQLite(url.path);
  // Password hashes and token digests: readable by the service's user only (SQLite gives the
  // -wal and -shm files the same mode as the database).
  if (url.path !== ':memory:') chmodSync(url.path, 0o600);
  // WAL lets readers run beside the writer; synchronous=FULL makes a commit durable once it returns.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
}

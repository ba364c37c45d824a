import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { serviceSkipReason } from './service-probe.ts';

/** Where this machine's (and CI's) PostgreSQL listens: trust auth, user postgres, database test. */
export const POSTGRES_ADMIN_URL =
  process.env.TESSERA_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The key-encryption key test nodes on PostgreSQL share (required there: signing keys live in the
 * database, sealed under it). A fixed value, so separate processes of one test agree.
 */
export const TEST_KEY_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

/**
 * Whether PostgreSQL suites run here. Without a server they skip with a notice, except in CI
 * (`CI=true`), where a missing PostgreSQL fails the run instead of passing it silently.
 */
export function postgresSkipReason(): Promise<string | undefined> {
  return serviceSkipReason({
    name: `PostgreSQL at ${POSTGRES_ADMIN_URL}`,
    async attempt() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        await client.query('select 1');
      } finally {
        await client.end().catch(() => {});
      }
    },
  });
}

export interface TemporaryDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A database of its own for one test or file, dropped (with any open connections) afterwards. */
export async function createTemporaryDatabase(): Promise<TemporaryDatabase> {
  const name = `tessera_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

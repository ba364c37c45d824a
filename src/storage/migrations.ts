import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { isPostgres } from './database.ts';
import type { Database } from './schema.ts';

/**
 * Versioned, append-only. Each migration runs on SQLite and PostgreSQL; where the two spell a type
 * differently, `isPostgres` picks the spelling, never the shape.
 */
const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_accounts_and_tokens': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('accounts')
        .addColumn('username', 'text', (col) => col.primaryKey())
        .addColumn('email', 'text', (col) => col.notNull())
        .addColumn('password_hash', 'text', (col) => col.notNull())
        .addColumn('created', 'text', (col) => col.notNull())
        .addColumn('modified', 'text', (col) => col.notNull())
        .execute();
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('username', 'text', (col) => col.notNull().references('accounts.username'))
        .addColumn('usage', 'text', (col) => col.notNull())
        .addColumn('is_default', 'integer', (col) => col.notNull())
        .addColumn('note', 'text', (col) => col.notNull())
        .addColumn('scopes', 'text', (col) => col.notNull())
        .addColumn('allowed_urls', 'text')
        .addColumn('extensions', 'text', (col) => col.notNull())
        .addColumn('rate_limit', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('token_hash', 'text', (col) => col.notNull())
        .addColumn('token', 'text')
        .addColumn('created', 'text', (col) => col.notNull())
        .addColumn('modified', 'text', (col) => col.notNull())
        .addColumn('deleted_at', 'text')
        .addColumn('version', 'integer', (col) => col.notNull())
        .execute();
      await db.schema
        .createIndex('tokens_by_created')
        .on('tokens')
        .columns(['username', 'created', 'id'])
        .execute();
      await db.schema
        .createIndex('tokens_by_modified')
        .on('tokens')
        .columns(['username', 'modified', 'id'])
        .execute();
      // At most one live default token per account, whatever the interleaving of writers.
      await sql`create unique index tokens_one_default on tokens (username) where is_default = 1 and deleted_at is null`.execute(
        db,
      );
    },
  },
  '0002_change_log_and_usage': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Every update and delete appends here in the same transaction; nodes follow it to evict caches.
      // SQLite's integer primary key counts by itself; PostgreSQL spells it `bigserial`.
      const postgres = isPostgres(db);
      await db.schema
        .createTable('token_events')
        .addColumn('seq', postgres ? 'bigserial' : 'integer', (col) =>
          postgres ? col.primaryKey() : col.primaryKey().autoIncrement(),
        )
        .addColumn('token_id', 'text', (col) => col.notNull())
        .addColumn('at', 'text', (col) => col.notNull())
        .execute();
      await db.schema.alterTable('tokens').addColumn('last_used', 'text').execute();
      await db.schema
        .createTable('usage_counts')
        .addColumn('username', 'text', (col) => col.notNull())
        .addColumn('token_id', 'text', (col) => col.notNull())
        .addColumn('service', 'text', (col) => col.notNull())
        .addColumn('outcome', 'text', (col) => col.notNull())
        .addColumn('hour', 'text', (col) => col.notNull())
        // Many nodes add to one row: int4 would overflow long before a busy token's counts do.
        .addColumn('count', postgres ? 'bigint' : 'integer', (col) => col.notNull())
        .addPrimaryKeyConstraint('usage_counts_key', ['token_id', 'service', 'outcome', 'hour'])
        .execute();
      await db.schema
        .createIndex('usage_by_account')
        .on('usage_counts')
        .columns(['username', 'hour'])
        .execute();
    },
  },
  '0003_sessions': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('sessions')
        .addColumn('id_hash', 'text', (col) => col.primaryKey())
        .addColumn('username', 'text', (col) => col.notNull().references('accounts.username'))
        .addColumn('created', 'text', (col) => col.notNull())
        .addColumn('last_seen', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'text', (col) => col.notNull())
        .addColumn('confirmed_until', 'text')
        .addColumn('confirm_failures', 'integer', (col) => col.notNull())
        .addColumn('confirm_window_start', 'text')
        .addColumn('flash', 'text')
        .execute();
      await db.schema.createIndex('sessions_by_username').on('sessions').column('username').execute();
    },
  },
  '0004_signing_keys': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Keys for temporary tokens, shared by every node; the secret only ever sealed (AES-256-GCM)
      // under the operator's key-encryption key. A key signs from `active_from` on.
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (col) => col.primaryKey())
        .addColumn('created', 'text', (col) => col.notNull())
        .addColumn('active_from', 'text', (col) => col.notNull())
        .addColumn('sealed_secret', 'text', (col) => col.notNull())
        .execute();
    },
  },
  '0005_audit_log': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Written in the same transaction as the change it records; `seq` orders, `id` is public.
      const postgres = isPostgres(db);
      await db.schema
        .createTable('audit_events')
        .addColumn('seq', postgres ? 'bigserial' : 'integer', (col) =>
          postgres ? col.primaryKey() : col.primaryKey().autoIncrement(),
        )
        .addColumn('id', 'text', (col) => col.notNull().unique())
        .addColumn('username', 'text', (col) => col.notNull())
        .addColumn('time', 'text', (col) => col.notNull())
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('channel', 'text', (col) => col.notNull())
        .addColumn('ip', 'text')
        .addColumn('target', 'text', (col) => col.notNull())
        .addColumn('details', 'text')
        .execute();
      await db.schema
        .createIndex('audit_by_account')
        .on('audit_events')
        .columns(['username', 'seq'])
        .execute();
      // Append-only in the database itself, whatever code (or SQL session) tries otherwise.
      if (postgres) {
        await sql`create function tessera_audit_append_only() returns trigger language plpgsql as $$
          begin raise exception 'audit events are append-only'; end $$`.execute(db);
        await sql`create trigger audit_events_append_only before update or delete on audit_events
          for each statement execute function tessera_audit_append_only()`.execute(db);
      } else {
        for (const operation of ['update', 'delete']) {
          await sql`create trigger ${sql.raw(`audit_events_no_${operation}`)} before ${sql.raw(operation)}
            on audit_events begin select raise(abort, 'audit events are append-only'); end`.execute(db);
        }
      }
    },
  },
  '0006_token_rotation': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A rotated token names its replacement (and the replacement its predecessor) and keeps
      // working until `grace_until`.
      await db.schema.alterTable('tokens').addColumn('rotated_from', 'text').execute();
      await db.schema.alterTable('tokens').addColumn('rotated_to', 'text').execute();
      await db.schema.alterTable('tokens').addColumn('grace_until', 'text').execute();
    },
  },
  '0007_leaks': {
    async up(db: Kysely<unknown>): Promise<void> {
      // When a public token was reported as leaked (a leaked secret token is deleted instead).
      await db.schema.alterTable('tokens').addColumn('leaked_at', 'text').execute();
    },
  },
  '0008_webhooks_and_notices': {
    async up(db: Kysely<unknown>): Promise<void> {
      // The outbox: one row per event and webhook, written in the transaction of the change.
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('url', 'text', (col) => col.notNull())
        .addColumn('event_id', 'text', (col) => col.notNull())
        .addColumn('type', 'text', (col) => col.notNull())
        .addColumn('payload', 'text', (col) => col.notNull())
        .addColumn('status', 'text', (col) => col.notNull())
        .addColumn('attempts', 'integer', (col) => col.notNull())
        .addColumn('next_attempt_at', 'text', (col) => col.notNull())
        .addColumn('lease_until', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created', 'text', (col) => col.notNull())
        .addColumn('finished_at', 'text')
        .addUniqueConstraint('webhook_deliveries_once', ['url', 'event_id'])
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_due')
        .on('webhook_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
      // Notices sent once per token and kind (expiring, expired), whichever node sends them.
      await db.schema
        .createTable('token_notices')
        .addColumn('token_id', 'text', (col) => col.notNull())
        .addColumn('kind', 'text', (col) => col.notNull())
        .addColumn('at', 'text', (col) => col.notNull())
        .addPrimaryKeyConstraint('token_notices_key', ['token_id', 'kind'])
        .execute();
    },
  },
  '0009_audit_no_truncate': {
    async up(db: Kysely<unknown>): Promise<void> {
      // TRUNCATE skips row triggers; SQLite has no TRUNCATE. (The table's owner can still drop or
      // disable triggers: a separate, unprivileged role for the service is the stronger guarantee.)
      if (isPostgres(db)) {
        await sql`create trigger audit_events_no_truncate before truncate on audit_events
          for each statement execute function tessera_audit_append_only()`.execute(db);
      }
    },
  },
  '0010_webhook_lease_owner': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Who holds a delivery's lease: only that claim may record how the attempt went.
      await db.schema.alterTable('webhook_deliveries').addColumn('lease_owner', 'text').execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

export function createMigrator(db: Kysely<Database>): Migrator {
  return new Migrator({
    db,
    provider,
    migrationTableName: 'tessera_migrations',
    migrationLockTableName: 'tessera_migrations_lock',
  });
}

/** Applies every pending migration; returns the names applied. */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const { error, results } = await createMigrator(db).migrateToLatest();
  if (error) throw error;
  return (results ?? [])
    .filter((result) => result.status === 'Success')
    .map((result) => result.migrationName);
}

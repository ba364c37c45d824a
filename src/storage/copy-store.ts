import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Kysely, sql, type Transaction } from 'kysely';
import { type DatabaseUrl, isPostgres, MIGRATION_OPTIONS, openDatabase } from './database.ts';
import { migrateToLatest } from './migrations.ts';
import type { Database } from './schema.ts';

export type TableName = keyof Database & string;
export type TableCounts = { readonly [T in TableName]: number };

/** In foreign-key order: accounts before the tokens and sessions that name them. */
const TABLES: readonly TableName[] = [
  'accounts',
  'tokens',
  'token_events',
  'usage_counts',
  'sessions',
  'signing_keys',
  'audit_events',
  'webhook_deliveries',
  'token_notices',
];

/** Each table's primary key, the order its rows are paged in. */
const KEYS: { readonly [T in TableName]: readonly (keyof Database[T] & string)[] } = {
  accounts: ['username'],
  tokens: ['id'],
  token_events: ['seq'],
  usage_counts: ['token_id', 'service', 'outcome', 'hour'],
  sessions: ['id_hash'],
  signing_keys: ['kid'],
  audit_events: ['seq'],
  webhook_deliveries: ['id'],
  token_notices: ['token_id', 'kind'],
};

/** PostgreSQL hands int8 back as a string; a SQLite target should get numbers, as it would from Tessera. */
const INTEGERS: { readonly [T in TableName]: readonly (keyof Database[T] & string)[] } = {
  accounts: [],
  tokens: ['is_default', 'version'],
  token_events: ['seq'],
  usage_counts: ['count'],
  sessions: ['confirm_failures'],
  signing_keys: [],
  audit_events: ['seq'],
  webhook_deliveries: ['attempts'],
  token_notices: [],
};

type Row = Record<string, unknown>;

export interface CopyOptions {
  /** Rows per read and per insert: what is held in memory at once. */
  readonly batchSize?: number;
}

/**
 * Copies a whole Tessera store into an empty one: both are migrated first, the source is read in
 * one snapshot, and the target is written in one transaction, so a failure leaves it without rows.
 */
export async function migrateStore(
  from: DatabaseUrl,
  to: DatabaseUrl,
  options: CopyOptions = {},
): Promise<TableCounts> {
  if (from.kind === 'sqlite' && !existsSync(from.path)) {
    throw new Error(`source: no SQLite database at ${from.path}`);
  }
  // An operator's one-off copy: migrations and long statements, so no 2 s limit and a long client timeout.
  const source = openDatabase(from, MIGRATION_OPTIONS);
  try {
    await inPhase('source', () => prepareSource(source));
    // Opened only now: a SQLite target is created by opening it, which a bad source must not cause.
    const target = openDatabase(to, MIGRATION_OPTIONS);
    try {
      await inPhase('target', () => prepareTarget(target));
      return await copyStore(source, target, options);
    } finally {
      await target.destroy();
    }
  } finally {
    await source.destroy();
  }
}

/** Whether two URLs name the same database, however they are spelt. */
export function sameDatabase(a: DatabaseUrl, b: DatabaseUrl): boolean {
  if (a.kind === 'sqlite' && b.kind === 'sqlite') return resolve(a.path) === resolve(b.path);
  if (a.kind === 'postgres' && b.kind === 'postgres')
    return postgresIdentity(a.url) === postgresIdentity(b.url);
  return false;
}

function postgresIdentity(url: string): string {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.slice(1)) || decodeURIComponent(parsed.username);
  return `${parsed.hostname}:${parsed.port || '5432'}/${database}`;
}

/** The URL as it may be shown: any password, in the user part or the query, replaced by ***. */
export function maskDatabaseUrl(url: string): string {
  if (!/^postgres(ql)?:\/\//.test(url)) return url;
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}

/** Copies every table; `source` and `target` must already be at the latest schema. */
export async function copyStore(
  source: Kysely<Database>,
  target: Kysely<Database>,
  options: CopyOptions = {},
): Promise<TableCounts> {
  const batchSize = options.batchSize ?? 500;
  return snapshot(source, (reader) =>
    writeAll(target, async (writer) => {
      await inPhase('target', () => assertEmpty(writer));
      return inPhase('copy failed, nothing was written', async () => {
        const copied = await copyTables(reader, writer, batchSize);
        if (isPostgres(writer)) await continueSequence(writer);
        verifyCounts(copied, await countRows(reader), await countRows(writer));
        return copied;
      });
    }),
  );
}

async function prepareSource(db: Kysely<Database>): Promise<void> {
  const tables = await existingTables(db);
  if (!tables.has('accounts')) throw new Error('it holds no Tessera store (no accounts table)');
  await migrateToLatest(db);
}

async function prepareTarget(db: Kysely<Database>): Promise<void> {
  // Refuse before migrating, so a store that is in use is not even upgraded.
  await assertEmpty(db, await existingTables(db));
  await migrateToLatest(db);
}

async function existingTables(db: Kysely<Database>): Promise<ReadonlySet<string>> {
  const tables = await db.introspection.getTables();
  return new Set(tables.filter((table) => !table.isView).map((table) => table.name));
}

async function inPhase<T>(phase: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new Error(`${phase}: ${describe(error)}`, { cause: error });
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A refused connection to "localhost" is an AggregateError with an empty message.
  const message = error.message.split('\n')[0] || 'failed';
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/** A consistent read of the whole source: one transaction, read-only on PostgreSQL. */
function snapshot<T>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  const builder = isPostgres(db)
    ? db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only')
    : db.transaction();
  return builder.execute(async (trx) => {
    await liftStatementTimeout(trx);
    return work(trx);
  });
}

function writeAll<T>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await liftStatementTimeout(trx);
    return work(trx);
  });
}

/** The 2 s statement limit protects request handling; counting a large table may take longer. */
async function liftStatementTimeout(trx: Transaction<Database>): Promise<void> {
  if (isPostgres(trx)) await sql`set local statement_timeout = 0`.execute(trx);
}

async function assertEmpty(db: Kysely<Database>, existing?: ReadonlySet<string>): Promise<void> {
  const held: string[] = [];
  for (const table of TABLES.filter((name) => existing?.has(name) ?? true)) {
    const count = await countTable(db, table);
    if (count > 0) held.push(`${table}: ${count}`);
  }
  if (held.length === 0) return;
  throw new Error(`already holds data (${held.join(', ')}); migrate-store copies into an empty store only`);
}

async function copyTables(
  reader: Kysely<Database>,
  writer: Kysely<Database>,
  batchSize: number,
): Promise<TableCounts> {
  const copied: Partial<Record<TableName, number>> = {};
  for (const table of TABLES) copied[table] = await copyTable(reader, writer, table, batchSize);
  return copied as TableCounts;
}

/** Keyset paging on the primary key: one batch in memory at a time, whatever the table's size. */
async function copyTable(
  reader: Kysely<Database>,
  writer: Kysely<Database>,
  table: TableName,
  batchSize: number,
): Promise<number> {
  let copied = 0;
  let after: Row | undefined;
  for (;;) {
    const rows = await readPage(reader, table, after, batchSize);
    if (rows.length === 0) return copied;
    await writer
      .insertInto(table)
      .values(rows.map((row) => withIntegers(table, row)) as never)
      .execute();
    copied += rows.length;
    after = rows.at(-1);
  }
}

function readPage(
  db: Kysely<Database>,
  table: TableName,
  after: Row | undefined,
  limit: number,
): Promise<Row[]> {
  const key = KEYS[table];
  const columns = sql.join(key.map((column) => sql.ref(column)));
  let query = db.selectFrom(table).selectAll();
  if (after) {
    const values = sql.join(key.map((column) => after[column]));
    // A row-value comparison, which SQLite and PostgreSQL both read as lexicographic order.
    query = query.where(sql<boolean>`(${columns}) > (${values})`);
  }
  for (const column of key) query = query.orderBy(sql.ref(column));
  return query.limit(limit).execute() as Promise<Row[]>;
}

function withIntegers(table: TableName, row: Row): Row {
  const copy = { ...row };
  for (const column of INTEGERS[table]) if (copy[column] !== null) copy[column] = Number(copy[column]);
  return copy;
}

/** New change-log and audit entries number after the copied ones; SQLite's AUTOINCREMENT sees to that itself. */
async function continueSequence(db: Kysely<Database>): Promise<void> {
  for (const table of ['token_events', 'audit_events']) {
    await sql`select setval(pg_get_serial_sequence(${table}, 'seq'),
      (select coalesce(max(seq), 0) + 1 from ${sql.table(table)}), false)`.execute(db);
  }
}

async function countRows(db: Kysely<Database>): Promise<TableCounts> {
  const counts: Partial<Record<TableName, number>> = {};
  for (const table of TABLES) counts[table] = await countTable(db, table);
  return counts as TableCounts;
}

async function countTable(db: Kysely<Database>, table: TableName): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function verifyCounts(copied: TableCounts, source: TableCounts, target: TableCounts): void {
  for (const table of TABLES) {
    if (copied[table] !== source[table] || target[table] !== source[table]) {
      throw new Error(`${table}: the source holds ${source[table]} rows, the target ${target[table]}`);
    }
  }
}

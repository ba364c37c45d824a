import type { Kysely, Selectable } from 'kysely';
import type { AccountRecord, Store, TokenChanges, TokenListQuery } from '../core/store.ts';
import type { PersistentUsage } from '../core/token-format.ts';
import type { TokenRecord } from '../core/tokens.ts';
import type { AccountsTable, Database, TokensTable } from './schema.ts';

/** The one store implementation. Dialect-neutral Kysely queries only. */
export class SqlStore implements Store {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async createAccount(account: AccountRecord, defaultToken: TokenRecord): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('accounts')
        .values(toAccountRow(account))
        .onConflict((oc) => oc.column('username').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await trx.insertInto('tokens').values(toTokenRow(defaultToken)).execute();
      return true;
    });
  }

  async findAccount(username: string): Promise<AccountRecord | undefined> {
    const row = await this.#db
      .selectFrom('accounts')
      .selectAll()
      .where('username', '=', username)
      .executeTakeFirst();
    return row && fromAccountRow(row);
  }

  async insertToken(record: TokenRecord): Promise<void> {
    await this.#db.insertInto('tokens').values(toTokenRow(record)).execute();
  }

  async findToken(id: string): Promise<TokenRecord | undefined> {
    const row = await this.#db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromTokenRow(row);
  }

  async listTokens(query: TokenListQuery): Promise<TokenRecord[]> {
    const key = query.sortBy;
    let select = this.#db
      .selectFrom('tokens')
      .selectAll()
      .where('username', '=', query.username)
      .where('deleted_at', 'is', null);
    if (query.isDefault !== undefined) select = select.where('is_default', '=', query.isDefault ? 1 : 0);
    if (query.usage !== undefined) select = select.where('usage', '=', query.usage);
    const after = query.after;
    if (after) {
      select = select.where((eb) =>
        eb.or([eb(key, '<', after.value), eb.and([eb(key, '=', after.value), eb('id', '<', after.id)])]),
      );
    }
    const rows = await select.orderBy(key, 'desc').orderBy('id', 'desc').limit(query.limit).execute();
    return rows.map(fromTokenRow);
  }

  async updateToken(id: string, version: number, changes: TokenChanges): Promise<TokenRecord | undefined> {
    const result = await this.#db
      .updateTable('tokens')
      .set({ ...toChangeRow(changes), version: version + 1 })
      .where('id', '=', id)
      .where('version', '=', version)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.findToken(id);
  }

  async deleteToken(id: string, deletedAt: string, replacement: TokenRecord | null): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('tokens')
        .set((eb) => ({ deleted_at: deletedAt, token: null, version: eb('version', '+', 1) }))
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      if (replacement) await trx.insertInto('tokens').values(toTokenRow(replacement)).execute();
      return true;
    });
  }

  async ping(): Promise<void> {
    await this.#db.selectFrom('accounts').select('username').limit(1).execute();
  }

  async close(): Promise<void> {
    await this.#db.destroy();
  }
}

function toAccountRow(account: AccountRecord): AccountsTable {
  return {
    username: account.username,
    email: account.email,
    password_hash: account.passwordHash,
    created: account.created,
    modified: account.modified,
  };
}

function fromAccountRow(row: Selectable<AccountsTable>): AccountRecord {
  return {
    username: row.username,
    email: row.email,
    passwordHash: row.password_hash,
    created: row.created,
    modified: row.modified,
  };
}

function toChangeRow(changes: TokenChanges): Partial<TokensTable> {
  return {
    note: changes.note,
    scopes: JSON.stringify(changes.scopes),
    allowed_urls: jsonOrNull(changes.allowedUrls),
    extensions: JSON.stringify(changes.extensions),
    rate_limit: jsonOrNull(changes.rateLimit),
    expires_at: changes.expiresAt,
    modified: changes.modified,
  };
}

function toTokenRow(record: TokenRecord): TokensTable {
  return {
    ...(toChangeRow(record) as Required<ReturnType<typeof toChangeRow>>),
    id: record.id,
    username: record.username,
    usage: record.usage,
    is_default: record.isDefault ? 1 : 0,
    token_hash: record.tokenHash,
    token: record.token,
    created: record.created,
    deleted_at: record.deletedAt,
    version: record.version,
  };
}

function fromTokenRow(row: Selectable<TokensTable>): TokenRecord {
  return {
    id: row.id,
    username: row.username,
    usage: row.usage as PersistentUsage,
    isDefault: Number(row.is_default) === 1,
    note: row.note,
    scopes: JSON.parse(row.scopes),
    allowedUrls: row.allowed_urls === null ? null : JSON.parse(row.allowed_urls),
    extensions: JSON.parse(row.extensions),
    rateLimit: row.rate_limit === null ? null : JSON.parse(row.rate_limit),
    expiresAt: row.expires_at,
    tokenHash: row.token_hash,
    token: row.token,
    created: row.created,
    modified: row.modified,
    deletedAt: row.deleted_at,
    version: Number(row.version),
  };
}

function jsonOrNull(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

import type { Kysely, Selectable } from 'kysely';
import type { AuditEvent } from '../core/audit.ts';
import type { PasswordChange, SessionChanges, SessionRecord, SessionStore } from '../core/session-store.ts';
import { isPostgres } from './database.ts';
import type { Database, SessionsTable } from './schema.ts';
import { appendEvents } from './sql-store.ts';

/** Dashboard sessions in the same database as the tokens, so every node sees them. */
export class SqlSessionStore implements SessionStore {
  readonly #db: Kysely<Database>;

  readonly #postgres: boolean;

  constructor(db: Kysely<Database>) {
    this.#db = db;
    this.#postgres = isPostgres(db);
  }

  async insertSession(
    record: SessionRecord,
    guard?: { readonly passwordHash: string },
    audit: readonly AuditEvent[] = [],
  ): Promise<boolean> {
    if (!guard && audit.length === 0) {
      await this.#db.insertInto('sessions').values(toRow(record)).execute();
      return true;
    }
    if (!guard) {
      await this.#db.transaction().execute(async (trx) => {
        await trx.insertInto('sessions').values(toRow(record)).execute();
        await appendEvents(trx, audit);
      });
      return true;
    }
    // One transaction: on SQLite it runs alone; on PostgreSQL the row lock (FOR SHARE) waits for a
    // password change in flight and then sees its new hash. Either way no change lands in between.
    return this.#db.transaction().execute(async (trx) => {
      const check = trx
        .selectFrom('accounts')
        .select('username')
        .where('username', '=', record.username)
        .where('password_hash', '=', guard.passwordHash);
      const account = await (this.#postgres ? check.forShare() : check).executeTakeFirst();
      if (!account) return false;
      await trx.insertInto('sessions').values(toRow(record)).execute();
      await appendEvents(trx, audit);
      return true;
    });
  }

  async findSession(idHash: string): Promise<SessionRecord | undefined> {
    const row = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('id_hash', '=', idHash)
      .executeTakeFirst();
    return row && fromRow(row);
  }

  async updateSession(idHash: string, changes: SessionChanges): Promise<boolean> {
    const result = await this.#db
      .updateTable('sessions')
      .set(toChangeRow(changes))
      .where('id_hash', '=', idHash)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async takeFlash(idHash: string): Promise<string | null> {
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('sessions')
        .select('flash')
        .where('id_hash', '=', idHash)
        .executeTakeFirst();
      if (!row?.flash) return null;
      const cleared = await trx
        .updateTable('sessions')
        .set({ flash: null })
        .where('id_hash', '=', idHash)
        .where('flash', '=', row.flash)
        .executeTakeFirst();
      return Number(cleared.numUpdatedRows) > 0 ? row.flash : null;
    });
  }

  /**
   * One UPDATE ... RETURNING rather than a read then a write: on PostgreSQL at READ COMMITTED two
   * nodes could both read 3 failures and both write 4, letting a guesser past the limit.
   */
  async recordConfirmFailure(
    idHash: string,
    now: string,
    windowStartAfter: string,
  ): Promise<number | undefined> {
    const row = await this.#db
      .updateTable('sessions')
      .set((eb) => {
        const fresh = eb.or([
          eb('confirm_window_start', 'is', null),
          eb('confirm_window_start', '<', windowStartAfter),
        ]);
        return {
          confirm_failures: eb
            .case()
            .when(fresh)
            .then(1)
            .else(eb('confirm_failures', '+', 1))
            .end(),
          confirm_window_start: eb.case().when(fresh).then(now).else(eb.ref('confirm_window_start')).end(),
        };
      })
      .where('id_hash', '=', idHash)
      .returning('confirm_failures')
      .executeTakeFirst();
    return row && Number(row.confirm_failures);
  }

  async deleteSession(idHash: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async replaceSession(oldIdHash: string, next: SessionRecord): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const removed = await trx.deleteFrom('sessions').where('id_hash', '=', oldIdHash).executeTakeFirst();
      if (Number(removed.numDeletedRows) === 0) return false;
      await trx.insertInto('sessions').values(toRow(next)).execute();
      return true;
    });
  }

  async changePassword(
    change: PasswordChange,
    next: SessionRecord,
    audit: readonly AuditEvent[] = [],
  ): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('accounts')
        .set({ password_hash: change.passwordHash, modified: change.modified })
        .where('username', '=', change.username)
        .where('password_hash', '=', change.previousHash)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) return false;
      await trx.deleteFrom('sessions').where('username', '=', change.username).execute();
      await trx.insertInto('sessions').values(toRow(next)).execute();
      await appendEvents(trx, audit);
      return true;
    });
  }

  async pruneSessions(now: string, idleBefore: string): Promise<number> {
    const result = await this.#db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen', '<', idleBefore)]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toRow(record: SessionRecord): SessionsTable {
  return {
    id_hash: record.idHash,
    username: record.username,
    created: record.created,
    last_seen: record.lastSeen,
    expires_at: record.expiresAt,
    confirmed_until: record.confirmedUntil,
    confirm_failures: record.confirmFailures,
    confirm_window_start: record.confirmWindowStart,
    flash: record.flash,
  };
}

function toChangeRow(changes: SessionChanges): Partial<SessionsTable> {
  const row: Partial<SessionsTable> = {};
  if (changes.lastSeen !== undefined) row.last_seen = changes.lastSeen;
  if (changes.confirmedUntil !== undefined) row.confirmed_until = changes.confirmedUntil;
  if (changes.confirmFailures !== undefined) row.confirm_failures = changes.confirmFailures;
  if (changes.confirmWindowStart !== undefined) row.confirm_window_start = changes.confirmWindowStart;
  if (changes.flash !== undefined) row.flash = changes.flash;
  return row;
}

function fromRow(row: Selectable<SessionsTable>): SessionRecord {
  return {
    idHash: row.id_hash,
    username: row.username,
    created: row.created,
    lastSeen: row.last_seen,
    expiresAt: row.expires_at,
    confirmedUntil: row.confirmed_until,
    confirmFailures: Number(row.confirm_failures),
    confirmWindowStart: row.confirm_window_start,
    flash: row.flash,
  };
}

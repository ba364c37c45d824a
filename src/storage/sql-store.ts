import { createHash, randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { AuditAction, AuditChannel, AuditEvent } from '../core/audit.ts';
import type {
  AccountRecord,
  AuditQuery,
  InsertGuard,
  NoticeKind,
  Store,
  TokenChange,
  TokenChanges,
  TokenListQuery,
  TokenRetirement,
  TokenUsageRow,
  UsageIncrement,
  UsageQuery,
  UsageRow,
} from '../core/store.ts';
import type { PersistentUsage } from '../core/token-format.ts';
import type { TokenRecord } from '../core/tokens.ts';
import { toWebhookEvent } from '../core/webhook-events.ts';
import { isPostgres } from './database.ts';
import { CHANGE_CHANNEL } from './postgres-listener.ts';
import type { AccountsTable, Database, TokensTable } from './schema.ts';

/** The one store implementation. Dialect-neutral Kysely queries only. */
export class SqlStore implements Store {
  readonly #db: Kysely<Database>;

  readonly #postgres: boolean;

  readonly #hooks: readonly OutboxWebhook[];

  /** `webhooks`: where events go; each event is queued for them in the transaction that records it. */
  constructor(db: Kysely<Database>, options: { readonly webhooks?: readonly OutboxWebhook[] } = {}) {
    this.#db = db;
    this.#postgres = isPostgres(db);
    this.#hooks = options.webhooks ?? [];
  }

  async createAccount(
    account: AccountRecord,
    defaultToken: TokenRecord,
    audit: readonly AuditEvent[] = [],
  ): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('accounts')
        .values(toAccountRow(account))
        .onConflict((oc) => oc.column('username').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await trx.insertInto('tokens').values(toTokenRow(defaultToken)).execute();
      await appendEvents(trx, audit, this.#hooks);
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

  async insertToken(
    record: TokenRecord,
    audit: readonly AuditEvent[] = [],
    guard?: InsertGuard,
  ): Promise<'inserted' | 'authorizer_gone' | 'quota_reached'> {
    return this.#db.transaction().execute(async (trx) => {
      const failed = guard ? await this.#checkGuard(trx, record.username, guard) : undefined;
      if (failed) return failed;
      await trx.insertInto('tokens').values(toTokenRow(record)).execute();
      await appendEvents(trx, audit, this.#hooks);
      return 'inserted' as const;
    });
  }

  /**
   * Inside the writing transaction. On PostgreSQL the account row is locked first (creates of one
   * account then count one after another), and the authoriser's row is read FOR SHARE, so a delete
   * of it either commits first (and the insert sees it gone) or waits for the insert to commit. On
   * SQLite one writer at a time gives the same.
   */
  async #checkGuard(
    trx: Transaction<Database>,
    username: string,
    guard: InsertGuard,
  ): Promise<'authorizer_gone' | 'quota_reached' | undefined> {
    if (guard.maxLiveTokens !== undefined && this.#postgres) {
      await trx
        .selectFrom('accounts')
        .select('username')
        .where('username', '=', username)
        .forUpdate()
        .execute();
    }
    if (guard.authorizerTokenId !== undefined) {
      let authorizer = trx
        .selectFrom('tokens')
        .select('id')
        .where('id', '=', guard.authorizerTokenId)
        .where('deleted_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', guard.now)]));
      if (this.#postgres) authorizer = authorizer.forShare();
      if (!(await authorizer.executeTakeFirst())) return 'authorizer_gone';
    }
    if (guard.maxLiveTokens !== undefined) {
      const row = await trx
        .selectFrom('tokens')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('live'))
        .where('username', '=', username)
        .where('deleted_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(row.live) >= guard.maxLiveTokens) return 'quota_reached';
    }
    return undefined;
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

  async updateToken(
    id: string,
    version: number,
    changes: TokenChanges,
    audit: readonly AuditEvent[] = [],
  ): Promise<TokenRecord | undefined> {
    const updated = await this.#db.transaction().execute(async (trx) => {
      // A new expiry is a new date to announce: its notices start over.
      await trx
        .deleteFrom('token_notices')
        .where('token_id', '=', id)
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('tokens')
              .select('tokens.id')
              .where('tokens.id', '=', id)
              .where('tokens.version', '=', version)
              .where('tokens.expires_at', 'is distinct from', changes.expiresAt),
          ),
        )
        .execute();
      const result = await trx
        .updateTable('tokens')
        .set({ ...toChangeRow(changes), version: version + 1 })
        .where('id', '=', id)
        .where('version', '=', version)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      await trx.insertInto('token_events').values({ token_id: id, at: changes.modified }).execute();
      await this.#announce(trx, id);
      await appendEvents(trx, audit, this.#hooks);
      return true;
    });
    return updated ? this.findToken(id) : undefined;
  }

  async deleteToken(
    id: string,
    deletedAt: string,
    replacement: TokenRecord | null,
    audit: readonly AuditEvent[] = [],
    condition?: { readonly unusedBefore: string },
  ): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      let update = trx
        .updateTable('tokens')
        .set((eb) => ({ deleted_at: deletedAt, token: null, version: eb('version', '+', 1) }))
        .where('id', '=', id)
        .where('deleted_at', 'is', null);
      if (condition) {
        update = update.where((eb) =>
          eb(eb.fn.coalesce('last_used', 'created'), '<', condition.unusedBefore),
        );
      }
      const result = await update.executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      await trx.insertInto('token_events').values({ token_id: id, at: deletedAt }).execute();
      await this.#announce(trx, id);
      if (replacement) await trx.insertInto('tokens').values(toTokenRow(replacement)).execute();
      await appendEvents(trx, audit, this.#hooks);
      return true;
    });
  }

  async rotateToken(
    id: string,
    version: number,
    retire: TokenRetirement,
    replacement: TokenRecord,
    audit: readonly AuditEvent[] = [],
    guard?: InsertGuard,
  ): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      // A replacement takes its predecessor's place: the quota does not apply, the authoriser does.
      const authorizerOnly: InsertGuard | undefined = guard && {
        now: guard.now,
        ...(guard.authorizerTokenId === undefined ? {} : { authorizerTokenId: guard.authorizerTokenId }),
      };
      if (authorizerOnly && (await this.#checkGuard(trx, replacement.username, authorizerOnly))) return false;
      // The old token first: it may be the account's default, and only one may be live.
      const result = await trx
        .updateTable('tokens')
        .set((eb) => ({
          is_default: 0,
          expires_at: retire.expiresAt,
          grace_until: retire.expiresAt,
          rotated_to: replacement.id,
          modified: retire.modified,
          version: eb('version', '+', 1),
        }))
        .where('id', '=', id)
        .where('version', '=', version)
        .where('deleted_at', 'is', null)
        .where('rotated_to', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      await trx.insertInto('token_events').values({ token_id: id, at: retire.modified }).execute();
      await this.#announce(trx, id);
      await trx.insertInto('tokens').values(toTokenRow(replacement)).execute();
      await appendEvents(trx, audit, this.#hooks);
      return true;
    });
  }

  async touchTokens(
    uses: ReadonlyArray<{ readonly tokenId: string; readonly lastUsed: string }>,
  ): Promise<void> {
    if (uses.length === 0) return;
    await this.#db.transaction().execute(async (trx) => {
      for (const use of uses) await advanceLastUsed(trx, use.tokenId, use.lastUsed);
    });
  }

  async markLeaked(id: string, leakedAt: string, audit: readonly AuditEvent[] = []): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('tokens')
        .set((eb) => ({ leaked_at: leakedAt, version: eb('version', '+', 1) }))
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .where('leaked_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      await trx.insertInto('token_events').values({ token_id: id, at: leakedAt }).execute();
      await this.#announce(trx, id);
      await appendEvents(trx, audit, this.#hooks);
      return true;
    });
  }

  async tokensToNotify(
    kind: NoticeKind,
    from: string | null,
    to: string,
    limit: number,
  ): Promise<TokenRecord[]> {
    let select = this.#db
      .selectFrom('tokens')
      .selectAll()
      .where('deleted_at', 'is', null)
      .where('expires_at', 'is not', null)
      .where('expires_at', '<', to)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('token_notices')
              .select('token_notices.token_id')
              .whereRef('token_notices.token_id', '=', 'tokens.id')
              .where('token_notices.kind', '=', kind),
          ),
        ),
      );
    if (from !== null) select = select.where('expires_at', '>=', from);
    // A rotated token's expiry is its grace period's end, which the rotation itself announced.
    if (kind === 'expiring') select = select.where('rotated_to', 'is', null);
    const rows = await select.orderBy('expires_at').limit(limit).execute();
    return rows.map(fromTokenRow);
  }

  async recordNotice(
    tokenId: string,
    kind: NoticeKind,
    at: string,
    audit: readonly AuditEvent[],
  ): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('token_notices')
        .values({ token_id: tokenId, kind, at })
        .onConflict((oc) => oc.columns(['token_id', 'kind']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await appendEvents(trx, audit, this.#hooks);
      return true;
    });
  }

  async unusedTokens(before: string, limit: number): Promise<TokenRecord[]> {
    const rows = await this.#db
      .selectFrom('tokens')
      .selectAll()
      .where('deleted_at', 'is', null)
      .where('is_default', '=', 0)
      .where((eb) => eb(eb.fn.coalesce('last_used', 'created'), '<', before))
      .orderBy('created')
      .limit(limit)
      .execute();
    return rows.map(fromTokenRow);
  }

  async appendAudit(events: readonly AuditEvent[]): Promise<void> {
    await appendEvents(this.#db, events, this.#hooks);
  }

  async listAudit(query: AuditQuery): Promise<AuditEvent[] | undefined> {
    let select = this.#db
      .selectFrom('audit_events')
      .selectAll()
      .where('username', '=', query.username)
      .orderBy('seq', 'desc')
      .limit(query.limit);
    if (query.after !== undefined) {
      const anchor = await this.#db
        .selectFrom('audit_events')
        .select('seq')
        .where('id', '=', query.after)
        .where('username', '=', query.username)
        .executeTakeFirst();
      if (!anchor) return undefined;
      select = select.where('seq', '<', anchor.seq);
    }
    return (await select.execute()).map(fromAuditRow);
  }

  /**
   * On PostgreSQL, tells every listening node at commit (NOTIFY is transactional, delivered in
   * commit order). Polling the change log alone could miss a change whose sequence number was
   * taken before, but committed after, a later one.
   */
  async #announce(trx: Kysely<Database>, tokenId: string): Promise<void> {
    if (this.#postgres) await sql`select pg_notify(${CHANGE_CHANNEL}, ${tokenId})`.execute(trx);
  }

  async changesSince(seq: number, limit: number): Promise<TokenChange[]> {
    const rows = await this.#db
      .selectFrom('token_events')
      .select(['seq', 'token_id'])
      .where('seq', '>', seq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ seq: Number(row.seq), tokenId: row.token_id }));
  }

  async latestChange(): Promise<number> {
    const row = await this.#db
      .selectFrom('token_events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  async addUsage(increments: readonly UsageIncrement[]): Promise<void> {
    if (increments.length === 0) return;
    await this.#db.transaction().execute(async (trx) => {
      for (const increment of increments) {
        await trx
          .insertInto('usage_counts')
          .values({
            username: increment.username,
            token_id: increment.tokenId,
            service: increment.service,
            outcome: increment.outcome,
            hour: increment.hour,
            count: increment.count,
          })
          .onConflict((oc) =>
            oc
              .columns(['token_id', 'service', 'outcome', 'hour'])
              .doUpdateSet((eb) => ({ count: eb('usage_counts.count', '+', eb.ref('excluded.count')) })),
          )
          .execute();
        if (increment.lastUsed !== null) await advanceLastUsed(trx, increment.tokenId, increment.lastUsed);
      }
    });
  }

  async usage(query: UsageQuery): Promise<UsageRow[]> {
    let select = this.#db
      .selectFrom('usage_counts')
      .select((eb) => ['service', 'outcome', 'hour', eb.fn.sum<number>('count').as('count')])
      .where('username', '=', query.username)
      .where('hour', '>=', query.start)
      .where('hour', '<', query.end);
    if (query.tokenId !== undefined) select = select.where('token_id', '=', query.tokenId);
    const rows = await select.groupBy(['service', 'outcome', 'hour']).orderBy('hour').execute();
    return rows.map((row) => ({
      service: row.service,
      outcome: row.outcome,
      hour: row.hour,
      count: Number(row.count),
    }));
  }

  async usageByToken(query: UsageQuery): Promise<TokenUsageRow[]> {
    const rows = await this.#db
      .selectFrom('usage_counts')
      .select((eb) => ['token_id', 'hour', eb.fn.sum<number>('count').as('count')])
      .where('username', '=', query.username)
      .where('outcome', '=', 'allowed')
      .where('hour', '>=', query.start)
      .where('hour', '<', query.end)
      .groupBy(['token_id', 'hour'])
      .orderBy('hour')
      .execute();
    return rows.map((row) => ({ tokenId: row.token_id, hour: row.hour, count: Number(row.count) }));
  }

  async ping(): Promise<void> {
    await this.#db.selectFrom('accounts').select('username').limit(1).execute();
  }

  async close(): Promise<void> {
    await this.#db.destroy();
  }
}

/** A webhook as the outbox knows it: where, and which event types. */
export interface OutboxWebhook {
  readonly url: string;
  readonly events: readonly string[];
}

/** The outbox names a webhook by a digest of its URL: URLs (Slack's, say) can be secrets themselves. */
export function webhookKey(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

/**
 * Appends audit events inside the caller's transaction, and queues each one that is a webhook
 * event for every webhook that wants it: nothing is delivered that did not commit, nothing that
 * committed is lost.
 */
export async function appendEvents(
  db: Kysely<Database>,
  events: readonly AuditEvent[],
  hooks: readonly OutboxWebhook[] = [],
): Promise<void> {
  if (events.length === 0) return;
  const deliveries = events.flatMap((event) => {
    const message = hooks.length > 0 ? toWebhookEvent(event) : undefined;
    if (!message) return [];
    return hooks
      .filter((hook) => hook.events.includes(message.type))
      .map((hook) => ({
        id: randomUUID(),
        url: webhookKey(hook.url),
        event_id: event.id,
        type: message.type,
        payload: message.body,
        status: 'pending',
        attempts: 0,
        next_attempt_at: event.time,
        lease_until: null,
        lease_owner: null,
        last_error: null,
        created: event.time,
        finished_at: null,
      }));
  });
  if (deliveries.length > 0) await db.insertInto('webhook_deliveries').values(deliveries).execute();
  await db
    .insertInto('audit_events')
    .values(
      events.map((event) => ({
        id: event.id,
        username: event.username,
        time: event.time,
        action: event.action,
        actor: event.actor,
        channel: event.channel,
        ip: event.ip,
        target: event.target,
        details: event.details ? JSON.stringify(event.details) : null,
      })),
    )
    .execute();
}

function fromAuditRow(row: Selectable<Database['audit_events']>): AuditEvent {
  return {
    id: row.id,
    username: row.username,
    time: row.time,
    action: row.action as AuditAction,
    actor: row.actor,
    channel: row.channel as AuditChannel,
    ip: row.ip,
    target: row.target,
    ...(row.details === null ? {} : { details: JSON.parse(row.details) as Record<string, unknown> }),
  };
}

async function advanceLastUsed(db: Kysely<Database>, tokenId: string, lastUsed: string): Promise<void> {
  await db
    .updateTable('tokens')
    .set({ last_used: lastUsed })
    .where('id', '=', tokenId)
    .where((eb) => eb.or([eb('last_used', 'is', null), eb('last_used', '<', lastUsed)]))
    .execute();
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
    rotated_from: record.rotation?.replaces ?? null,
    rotated_to: record.rotation?.replacedBy ?? null,
    grace_until: record.rotation?.graceUntil ?? null,
    leaked_at: record.leakedAt ?? null,
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
    ...(row.last_used === null ? {} : { lastUsed: row.last_used }),
    ...(row.leaked_at === null ? {} : { leakedAt: row.leaked_at }),
    ...(row.grace_until === null
      ? {}
      : {
          rotation: {
            graceUntil: row.grace_until,
            ...(row.rotated_from === null ? {} : { replaces: row.rotated_from }),
            ...(row.rotated_to === null ? {} : { replacedBy: row.rotated_to }),
          },
        }),
  };
}

function jsonOrNull(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

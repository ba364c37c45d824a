import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, WebhookDeliveriesTable } from './schema.ts';

export type Delivery = Selectable<WebhookDeliveriesTable>;

/** The queue of webhook deliveries, shared by every node: a delivery is claimed by one at a time. */
export class WebhookOutbox {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Claims up to `limit` due deliveries until `leaseUntil`: each claim is one conditional update, so
   * two nodes never send the same delivery at once (a node that dies mid-send leaves it to the lease).
   */
  async claimDue(
    now: string,
    leaseUntil: string,
    limit: number,
    urls: readonly string[],
  ): Promise<Delivery[]> {
    if (urls.length === 0) return [];
    const due = await this.#db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('status', '=', 'pending')
      .where('url', 'in', urls)
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('next_attempt_at')
      .limit(limit)
      .execute();
    const claimed: Delivery[] = [];
    for (const { id } of due) {
      const owner = randomUUID();
      const result = await this.#db
        .updateTable('webhook_deliveries')
        .set((eb) => ({ lease_until: leaseUntil, lease_owner: owner, attempts: eb('attempts', '+', 1) }))
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) continue;
      const row = await this.#db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (row) claimed.push({ ...row, attempts: Number(row.attempts) });
    }
    return claimed;
  }

  /** The outcome of an attempt, recorded only by the claim that made it (a stalled node's lease may have passed on). */
  async delivered(claim: Delivery, at: string): Promise<void> {
    await this.#settle(claim, { status: 'delivered', finished_at: at, last_error: null });
  }

  async retry(claim: Delivery, nextAttemptAt: string, error: string): Promise<void> {
    await this.#settle(claim, { next_attempt_at: nextAttemptAt, last_error: error });
  }

  async failed(claim: Delivery, at: string, error: string): Promise<void> {
    await this.#settle(claim, { status: 'failed', finished_at: at, last_error: error });
  }

  async #settle(
    claim: Delivery,
    changes: Partial<Pick<Delivery, 'status' | 'finished_at' | 'next_attempt_at' | 'last_error'>>,
  ): Promise<void> {
    if (claim.lease_owner === null) return;
    await this.#db
      .updateTable('webhook_deliveries')
      .set({ ...changes, lease_until: null, lease_owner: null })
      .where('id', '=', claim.id)
      .where('lease_owner', '=', claim.lease_owner)
      .execute();
  }

  /** Deliveries by status, for /metrics. */
  async counts(): Promise<Record<string, number>> {
    const rows = await this.#db
      .selectFrom('webhook_deliveries')
      .select((eb) => ['status', eb.fn.countAll<number>().as('count')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  }

  /**
   * Finished deliveries older than `before` are dropped, and so are pending ones that no node has
   * been configured to send since (a webhook removed from the config), so the table holds what matters.
   */
  async prune(before: string): Promise<void> {
    await this.#db
      .deleteFrom('webhook_deliveries')
      .where('status', '!=', 'pending')
      .where('finished_at', '<', before)
      .execute();
    await this.#db
      .deleteFrom('webhook_deliveries')
      .where('status', '=', 'pending')
      .where('attempts', '=', 0)
      .where('created', '<', before)
      .execute();
  }
}

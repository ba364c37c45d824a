import { type AuditEvent, EVENT_ID_PATTERN } from '../core/audit.ts';
import type { Authorizer } from '../core/authorizer.ts';
import { TesseraError } from '../core/errors.ts';
import type { Store } from '../core/store.ts';
import { authorizeAccount } from './account-access.ts';

export interface AuditPageRequest {
  readonly limit: number;
  /** The `start` of a `Link rel="next"`: the id of the last event of the previous page. */
  readonly start?: string;
}

export interface AuditPage {
  readonly events: readonly AuditEvent[];
  /** Where the next page starts, when there may be one. */
  readonly next?: string;
}

export type AuditService = ReturnType<typeof createAuditService>;

/** Reads an account's audit log; writing happens with each change, in its transaction. */
export function createAuditService(deps: { readonly store: Store }) {
  const { store } = deps;

  async function list(
    authorizer: Authorizer,
    username: string,
    request: AuditPageRequest,
  ): Promise<AuditPage> {
    await authorizeAccount(store, authorizer, username, 'audit:read');
    if (request.start !== undefined && !EVENT_ID_PATTERN.test(request.start)) {
      throw new TesseraError('invalid_field', 'start must be the id of an event of this account');
    }
    const events = await store.listAudit({
      username,
      limit: request.limit,
      ...(request.start === undefined ? {} : { after: request.start }),
    });
    if (!events) throw new TesseraError('invalid_field', 'start must be the id of an event of this account');
    const last = events.at(-1);
    return { events, ...(events.length === request.limit && last ? { next: last.id } : {}) };
  }

  /** Every event of the account, newest first, a page at a time (for exports). */
  async function* all(authorizer: Authorizer, username: string): AsyncGenerator<AuditEvent> {
    let start: string | undefined;
    do {
      const page = await list(authorizer, username, { limit: 500, ...(start ? { start } : {}) });
      yield* page.events;
      start = page.next;
    } while (start);
  }

  return { list, all };
}

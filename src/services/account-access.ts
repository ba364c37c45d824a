import { type Authorizer, hasScope } from '../core/authorizer.ts';
import { TesseraError } from '../core/errors.ts';
import type { Store } from '../core/store.ts';

/**
 * May this authority act on this account with this scope? Mapbox's order: an unknown account is
 * `No such user`, someone else's account and a missing scope are both `Not found` (404).
 */
export async function authorizeAccount(
  store: Pick<Store, 'findAccount'>,
  authorizer: Authorizer,
  username: string,
  scope: string,
): Promise<void> {
  if (authorizer.kind === 'operator' || authorizer.username !== username) {
    if (!(await store.findAccount(username))) throw new TesseraError('no_such_user');
    if (authorizer.kind !== 'operator') throw new TesseraError('not_found');
  }
  if (!hasScope(authorizer, scope)) throw new TesseraError('not_found');
}

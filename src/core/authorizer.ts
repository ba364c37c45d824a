import type { Usage } from './token-format.ts';

/** Who asks for a change: a verified token, or the operator at the command line. */
export type Authorizer =
  | {
      readonly kind: 'token';
      readonly username: string;
      readonly usage: Usage;
      readonly scopes: readonly string[];
      /** The persistent token's id; for a tk, the id of the persistent token behind it. */
      readonly tokenId: string | null;
      /** When the token expires (a tk's `exp`, a pk/sk's `expiresAt`), Unix seconds; null if never. */
      readonly expires: number | null;
    }
  /** The account's owner, signed in to the dashboard with their password: every scope, on their own account. */
  | { readonly kind: 'account'; readonly username: string }
  | { readonly kind: 'operator' };

export function hasScope(authorizer: Authorizer, scope: string): boolean {
  return authorizer.kind !== 'token' || authorizer.scopes.includes(scope);
}

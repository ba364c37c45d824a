import { newTokenId } from '../core/identifiers.ts';
import type { RandomSource } from '../core/ports.ts';
import { publicScopeIds, type ScopeCatalogue } from '../core/scopes.ts';
import { hashToken, issuePersistentToken } from '../core/token-format.ts';
import type { CreatePlan } from '../core/token-policy.ts';
import { isoTime, type TokenRecord } from '../core/tokens.ts';

export interface IssuedToken {
  readonly record: TokenRecord;
  /** The full token string. For sk this is the only copy that will ever exist. */
  readonly token: string;
}

export const DEFAULT_TOKEN_NOTE = 'Default public token';

export function issueToken(
  input: {
    readonly username: string;
    readonly plan: CreatePlan;
    readonly isDefault: boolean;
    readonly now: number;
  },
  random: RandomSource,
): IssuedToken {
  const id = newTokenId(random);
  const { usage } = input.plan;
  const token = issuePersistentToken({ usage, username: input.username, tokenId: id }, random);
  const time = isoTime(input.now);
  const record: TokenRecord = {
    id,
    username: input.username,
    usage,
    isDefault: input.isDefault,
    note: input.plan.note,
    scopes: input.plan.scopes,
    allowedUrls: input.plan.allowedUrls,
    extensions: input.plan.extensions,
    rateLimit: input.plan.rateLimit,
    expiresAt: input.plan.expiresAt,
    tokenHash: hashToken(token),
    token: usage === 'pk' ? token : null,
    created: time,
    modified: time,
    deletedAt: null,
    version: 1,
  };
  return { record, token };
}

/** A fresh default public token: every public scope, no restrictions. */
export function issueDefaultToken(
  input: { readonly username: string; readonly catalogue: ScopeCatalogue; readonly now: number },
  random: RandomSource,
): IssuedToken {
  const plan: CreatePlan = {
    usage: 'pk',
    note: DEFAULT_TOKEN_NOTE,
    scopes: publicScopeIds(input.catalogue),
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  };
  return issueToken({ username: input.username, plan, isDefault: true, now: input.now }, random);
}

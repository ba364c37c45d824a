import type { ParsedToken, Usage } from './token-format.ts';
import type { TokenCode } from './token-status.ts';
import type { TokenRecord } from './tokens.ts';
import { type AllowedUrl, isAllowedSource, parseAllowedUrl, type RequestSource } from './url-restrictions.ts';

export type DenialReason =
  | 'missing'
  | 'malformed'
  | 'invalid'
  | 'expired'
  | 'revoked'
  | 'scope'
  | 'url'
  | 'rate_limited';

export type Decision =
  | {
      readonly allowed: true;
      readonly username: string;
      readonly tokenId: string | null;
      readonly usage: Usage;
      readonly scopes: readonly string[];
    }
  | {
      readonly allowed: false;
      readonly status: 401 | 403 | 429;
      readonly reason: DenialReason;
      readonly message: string;
      readonly retryAfter?: number;
    };

export interface DecisionInput extends RequestSource {
  readonly code: TokenCode;
  readonly token?: ParsedToken | undefined;
  readonly record?: TokenRecord | undefined;
  /** A tk's effective scopes (its own, less any its parent lost), when known. */
  readonly scopes?: readonly string[] | undefined;
  /** The scope the request needs, if any. */
  readonly scope?: string | undefined;
}

const UNAUTHORIZED: Readonly<Record<Exclude<TokenCode, 'TokenValid'>, [DenialReason, string]>> = {
  TokenMalformed: ['malformed', 'The access token is malformed'],
  TokenInvalid: ['invalid', 'The access token is invalid'],
  TokenExpired: ['expired', 'The access token has expired'],
  TokenRevoked: ['revoked', 'The access token has been revoked'],
};

/** Whether a request carrying this (already inspected) token may proceed. */
export function decide(input: DecisionInput): Decision {
  if (input.code !== 'TokenValid' || !input.token) {
    const [reason, message] = UNAUTHORIZED[input.code === 'TokenValid' ? 'TokenInvalid' : input.code];
    return { allowed: false, status: 401, reason, message };
  }
  const { token, record } = input;
  const scopes = token.usage === 'tk' ? (input.scopes ?? token.scopes) : (record?.scopes ?? []);
  if (input.scope !== undefined && !scopes.includes(input.scope)) {
    return {
      allowed: false,
      status: 403,
      reason: 'scope',
      message: `This request requires a token with ${input.scope} scope`,
    };
  }
  if (record?.allowedUrls && record.allowedUrls.length > 0 && !allowedFrom(record.allowedUrls, input)) {
    return { allowed: false, status: 403, reason: 'url', message: 'This token is not allowed from this URL' };
  }
  const tokenId = token.usage === 'tk' ? null : token.tokenId;
  return { allowed: true, username: token.username, tokenId, usage: token.usage, scopes };
}

interface Restrictions {
  readonly entries: readonly AllowedUrl[];
  /**
   * Verdicts by Origin, then Referer (an absent header and an empty one count alike): browsers send
   * the same few values again and again.
   */
  readonly verdicts: Map<string, Map<string, boolean>>;
}

/**
 * Per stored list (records are immutable, and the cache hands out the same one). Bounded as a whole,
 * not per list: past MAX_MEMOISED verdicts every memo is dropped, and long header values (which no
 * browser sends for an Origin, and rarely for a Referer) are never memoised.
 */
let restrictionsByList = new WeakMap<readonly string[], Restrictions>();
let memoised = 0;
const MAX_MEMOISED = 20_000;
const MAX_MEMOISED_LENGTH = 512;

function allowedFrom(list: readonly string[], source: RequestSource): boolean {
  let restrictions = restrictionsByList.get(list);
  if (!restrictions) {
    const entries = list.map(parseAllowedUrl).filter((entry): entry is AllowedUrl => entry !== undefined);
    restrictions = { entries, verdicts: new Map() };
    restrictionsByList.set(list, restrictions);
  }
  const origin = source.origin ?? '';
  const referer = source.referer ?? '';
  const cached = restrictions.verdicts.get(origin)?.get(referer);
  if (cached !== undefined) return cached;
  const verdict = isAllowedSource(restrictions.entries, { origin: source.origin, referer: source.referer });
  if (origin.length + referer.length <= MAX_MEMOISED_LENGTH) remember(restrictions, origin, referer, verdict);
  return verdict;
}

function remember(restrictions: Restrictions, origin: string, referer: string, verdict: boolean): void {
  if (memoised >= MAX_MEMOISED) {
    restrictionsByList = new WeakMap();
    memoised = 0;
    return;
  }
  let byReferer = restrictions.verdicts.get(origin);
  if (!byReferer) {
    byReferer = new Map();
    restrictions.verdicts.set(origin, byReferer);
  }
  byReferer.set(referer, verdict);
  memoised += 1;
}

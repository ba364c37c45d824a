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
  readonly token?: ParsedToken;
  readonly record?: TokenRecord;
  /** A tk's effective scopes (its own, less any its parent lost), when known. */
  readonly scopes?: readonly string[];
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
  if (record?.allowedUrls && record.allowedUrls.length > 0 && !isAllowedSource(restrictions(record), input)) {
    return { allowed: false, status: 403, reason: 'url', message: 'This token is not allowed from this URL' };
  }
  const tokenId = token.usage === 'tk' ? null : token.tokenId;
  return { allowed: true, username: token.username, tokenId, usage: token.usage, scopes };
}

/** Parsed once per stored list: records are immutable, and the cache hands out the same one. */
const PARSED = new WeakMap<readonly string[], AllowedUrl[]>();

function restrictions(record: TokenRecord): AllowedUrl[] {
  const list = record.allowedUrls ?? [];
  let parsed = PARSED.get(list);
  if (!parsed) {
    parsed = list.map(parseAllowedUrl).filter((entry): entry is AllowedUrl => entry !== undefined);
    PARSED.set(list, parsed);
  }
  return parsed;
}

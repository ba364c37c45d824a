import type { PersistentToken, SigningKey, TemporaryToken } from './token-format.ts';
import { digestsEqual, hashToken, hasValidSignature } from './token-format.ts';
import { MAX_TEMPORARY_LIFETIME_MS } from './token-policy.ts';
import type { TokenRecord } from './tokens.ts';

/** The Tokens API's verdicts on a token string, in the order they are checked. */
export type TokenCode = 'TokenValid' | 'TokenMalformed' | 'TokenInvalid' | 'TokenExpired' | 'TokenRevoked';

/** A tk whose `iat` lies further ahead than this was not issued by a sane clock: refused. */
export const CLOCK_LEEWAY_SECONDS = 60;

export function assessPersistent(
  token: PersistentToken,
  record: TokenRecord | undefined,
  now: number,
): TokenCode {
  if (!token.checksumValid) return 'TokenInvalid';
  // Hash first and always, so an unknown id and a wrong secret cost the same.
  const hashMatches = digestsEqual(hashToken(token.raw), record?.tokenHash ?? '');
  if (!record || !hashMatches || record.username !== token.username || record.usage !== token.usage) {
    return 'TokenInvalid';
  }
  if (record.deletedAt !== null) return 'TokenRevoked';
  if (record.expiresAt !== null && Date.parse(record.expiresAt) <= now) return 'TokenExpired';
  return 'TokenValid';
}

/**
 * `parent` is the persistent token that minted the tk: a tk dies with it (a deliberate deviation
 * from Mapbox, where temporary tokens cannot be revoked at all).
 */
export function assessTemporary(
  token: TemporaryToken,
  key: SigningKey | undefined,
  parent: TokenRecord | undefined,
  now: number,
): TokenCode {
  if (!key || !hasValidSignature(token, key)) return 'TokenInvalid';
  if (token.issuedAt > now / 1000 + CLOCK_LEEWAY_SECONDS) return 'TokenInvalid';
  // Tessera never signs a longer life: such a token was made with a stolen key.
  if (token.expires - token.issuedAt > MAX_TEMPORARY_LIFETIME_MS / 1000) return 'TokenInvalid';
  if (token.expires <= now / 1000) return 'TokenExpired';
  if (token.parentId !== undefined && !isLive(parent, token, now)) return 'TokenRevoked';
  return 'TokenValid';
}

function isLive(parent: TokenRecord | undefined, token: TemporaryToken, now: number): boolean {
  if (!parent || parent.deletedAt !== null || parent.username !== token.username) return false;
  return parent.expiresAt === null || Date.parse(parent.expiresAt) > now;
}

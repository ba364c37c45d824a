import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { base62Length, encodeBase62, encodeUint32Base62, isBase62 } from './base62.ts';
import { crc32 } from './crc32.ts';
import { isTokenId, isUsername } from './identifiers.ts';
import { decodePayload, encodePayload } from './payload.ts';
import type { RandomSource } from './ports.ts';

export type Usage = 'pk' | 'sk' | 'tk';
export type PersistentUsage = 'pk' | 'sk';

/** 32 bytes (256 bits) of CSPRNG output in each pk/sk token; the verifier also needs only this. */
const SECRET_BYTES = 32;
const SECRET_LENGTH = base62Length(SECRET_BYTES);
const CHECKSUM_LENGTH = 6;
const SIGNATURE_LENGTH = base62Length(32);
const MAX_TOKEN_LENGTH = 4096;
const MAX_SCOPES_IN_TOKEN = 256;

export interface PersistentToken {
  readonly usage: PersistentUsage;
  readonly username: string;
  readonly tokenId: string;
  readonly raw: string;
  /** False when the trailing CRC-32 does not match: a typo or garbage, rejected without a lookup. */
  readonly checksumValid: boolean;
}

export interface TemporaryClaims {
  readonly username: string;
  /** Unix seconds. */
  readonly expires: number;
  /** Unix seconds. */
  readonly issuedAt: number;
  readonly scopes: readonly string[];
  /** The persistent token that authorised the minting, directly or through another tk. */
  readonly parentId?: string;
}

export interface TemporaryToken extends TemporaryClaims {
  readonly usage: 'tk';
  readonly keyId: string;
  readonly raw: string;
  readonly signedPart: string;
  readonly signature: string;
}

export type ParsedToken = PersistentToken | TemporaryToken;

export interface SigningKey {
  readonly id: string;
  readonly secret: Uint8Array;
}

export function issuePersistentToken(
  input: { readonly usage: PersistentUsage; readonly username: string; readonly tokenId: string },
  random: RandomSource,
): string {
  const payload = encodePayload({ u: input.username, a: input.tokenId });
  if (payload === undefined) throw new TypeError('username or token id cannot be encoded');
  const body = `${input.usage}.${payload}.${encodeBase62(random.bytes(SECRET_BYTES))}`;
  return body + encodeUint32Base62(crc32(body));
}

export function issueTemporaryToken(claims: TemporaryClaims, key: SigningKey): string {
  const json: Record<string, unknown> = {
    u: claims.username,
    exp: claims.expires,
    iat: claims.issuedAt,
    scopes: claims.scopes,
    client: 'api',
    kid: key.id,
  };
  if (claims.parentId !== undefined) json.p = claims.parentId;
  const payload = encodePayload(json);
  if (payload === undefined) throw new TypeError('temporary token claims cannot be encoded');
  const signedPart = `tk.${payload}`;
  return `${signedPart}.${sign(signedPart, key.secret)}`;
}

/** Parses a token's structure. Returns undefined for anything that is not a well-formed token. */
export function parseToken(raw: string): ParsedToken | undefined {
  if (raw.length > MAX_TOKEN_LENGTH) return undefined;
  const parts = raw.split('.');
  if (parts.length !== 3) return undefined;
  const [usage, segment, signature] = parts as [string, string, string];
  const claims = decodePayload(segment);
  if (claims === undefined || !isUsername(claims.u) || !isBase62(signature)) return undefined;
  if (usage === 'pk' || usage === 'sk') return parsePersistent(usage, claims, raw, signature);
  if (usage === 'tk') return parseTemporary(claims, raw, signature);
  return undefined;
}

function parsePersistent(
  usage: PersistentUsage,
  claims: Record<string, unknown>,
  raw: string,
  signature: string,
): PersistentToken | undefined {
  const tokenId = claims.a;
  if (!isTokenId(tokenId) || signature.length !== SECRET_LENGTH + CHECKSUM_LENGTH) return undefined;
  const body = raw.slice(0, raw.length - CHECKSUM_LENGTH);
  const checksumValid = encodeUint32Base62(crc32(body)) === raw.slice(-CHECKSUM_LENGTH);
  return { usage, username: claims.u as string, tokenId, raw, checksumValid };
}

function parseTemporary(
  claims: Record<string, unknown>,
  raw: string,
  signature: string,
): TemporaryToken | undefined {
  const { exp, iat, scopes, kid, p } = claims;
  if (!isUnixTime(exp) || !isUnixTime(iat) || typeof kid !== 'string' || !isBase62(kid)) return undefined;
  if (!isScopeList(scopes) || (p !== undefined && !isTokenId(p))) return undefined;
  if (signature.length !== SIGNATURE_LENGTH) return undefined;
  return {
    usage: 'tk',
    username: claims.u as string,
    expires: exp as number,
    issuedAt: iat as number,
    scopes,
    keyId: kid,
    ...(p === undefined ? {} : { parentId: p }),
    raw,
    signedPart: raw.slice(0, raw.length - signature.length - 1),
    signature,
  };
}

/** Whole seconds from 1970 to the end of year 9999, so every value converts to an ISO time. */
function isUnixTime(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= 253_402_300_799;
}

function isScopeList(value: unknown): value is string[] {
  return (
    Array.isArray(value) &&
    value.length <= MAX_SCOPES_IN_TOKEN &&
    value.every((scope) => typeof scope === 'string' && scope.length <= 64)
  );
}

function sign(signedPart: string, secret: Uint8Array): string {
  return encodeBase62(createHmac('sha256', secret).update(signedPart).digest());
}

/** Constant-time check of a temporary token's HMAC-SHA-256 signature. */
export function hasValidSignature(token: TemporaryToken, key: SigningKey): boolean {
  const expected = Buffer.from(sign(token.signedPart, key.secret));
  const given = Buffer.from(token.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** What the store keeps instead of a token: its SHA-256 digest, hex. */
export function hashToken(raw: string): string {
  return createHash('sha256').update(raw).digest('hex');
}

/** Constant-time comparison of two SHA-256 hex digests; false for anything of the wrong shape. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === 32 && right.length === 32 && timingSafeEqual(left, right);
}

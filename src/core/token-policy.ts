import type { Authorizer } from './authorizer.ts';
import { TesseraError } from './errors.ts';
import { allKnown, dedupeScopes, hasSecretScope, isSubset, type ScopeCatalogue } from './scopes.ts';
import type { PersistentUsage, TemporaryClaims } from './token-format.ts';
import type { RateLimitSetting, TokenExtensions, TokenRecord } from './tokens.ts';
import { parseAllowedUrl } from './url-restrictions.ts';

export const MAX_ALLOWED_URLS = 100;
export const MAX_TEMPORARY_LIFETIME_MS = 3600_000;

export interface CreateRequest {
  readonly note: string;
  readonly scopes: readonly string[];
  readonly allowedUrls: readonly string[] | null;
  readonly extensions: TokenExtensions;
  readonly rateLimit: RateLimitSetting | null;
  readonly expiresAt: string | null;
}

export interface CreatePlan extends CreateRequest {
  readonly usage: PersistentUsage;
}

/** In a patch, an absent key leaves the field alone and `null` clears it. */
export interface UpdateRequest {
  readonly note?: string;
  readonly scopes?: readonly string[];
  readonly allowedUrls?: readonly string[] | null;
  readonly extensions?: { readonly [K in keyof TokenExtensions]?: NonNullable<TokenExtensions[K]> | null };
  readonly rateLimit?: RateLimitSetting | null;
  readonly expiresAt?: string | null;
}

export type UpdatePlan = Pick<
  TokenRecord,
  'note' | 'scopes' | 'allowedUrls' | 'extensions' | 'rateLimit' | 'expiresAt'
>;

export interface TemporaryRequest {
  readonly expires: number;
  readonly scopes: readonly string[];
}

/** What the planners need to know: who asks, the scopes, the time, and the operator's lifetime cap. */
export interface PlanContext {
  readonly authorizer: Authorizer;
  readonly catalogue: ScopeCatalogue;
  readonly now: number;
  /** `lifecycle.maxLifetimeDays` in milliseconds: pk/sk tokens (the default excepted) expire within it. */
  readonly maxLifetimeMs?: number | null;
}

export function planCreate(request: CreateRequest, context: PlanContext): CreatePlan {
  if (context.authorizer.kind === 'token' && context.authorizer.usage === 'tk') {
    throw new TesseraError('forbidden', 'temporary tokens may only create temporary tokens');
  }
  const scopes = checkScopes(request.scopes, context);
  checkAllowedUrls(request.allowedUrls);
  checkExpiresAt(request.expiresAt, context.now);
  const expiresAt = withinPolicy(request.expiresAt, context, 'default');
  checkLifetime(expiresAt, context.authorizer);
  const usage = hasSecretScope(context.catalogue, scopes) ? 'sk' : 'pk';
  return { ...request, expiresAt, scopes, usage };
}

export function planUpdate(current: TokenRecord, request: UpdateRequest, context: PlanContext): UpdatePlan {
  if (context.authorizer.kind === 'token' && context.authorizer.usage === 'tk') {
    throw new TesseraError('forbidden', 'temporary tokens cannot update tokens');
  }
  if (current.rotation?.replacedBy) {
    throw new TesseraError('invalid_field', 'this token was rotated: change its replacement instead');
  }
  const scopes = request.scopes === undefined ? current.scopes : checkScopes(request.scopes, context);
  if (context.authorizer.kind === 'token' && !isSubset(scopes, context.authorizer.scopes)) {
    // Otherwise a weaker token could lift the expiry or URL restrictions of a stronger one.
    throw new TesseraError('forbidden', 'the authorizing token does not hold every scope of this token');
  }
  if (current.usage === 'pk' && hasSecretScope(context.catalogue, scopes)) {
    throw new TesseraError('scopes_invalid');
  }
  const allowedUrls = request.allowedUrls === undefined ? current.allowedUrls : request.allowedUrls;
  checkAllowedUrls(allowedUrls);
  let expiresAt = request.expiresAt === undefined ? current.expiresAt : request.expiresAt;
  if (request.expiresAt) checkExpiresAt(request.expiresAt, context.now);
  // Any change brings a token within the operator's cap: refused when the request itself asks for
  // more, brought within it otherwise (a token from before the policy, say).
  if (!current.isDefault) {
    expiresAt = withinPolicy(expiresAt, context, request.expiresAt === undefined ? 'clamp' : 'refuse');
  }
  if (request.expiresAt !== undefined) checkLifetime(expiresAt, context.authorizer);
  if (current.isDefault) checkDefaultToken({ allowedUrls, expiresAt });
  return {
    note: request.note ?? current.note,
    scopes,
    allowedUrls,
    extensions: mergeExtensions(current.extensions, request.extensions),
    rateLimit: request.rateLimit === undefined ? current.rateLimit : request.rateLimit,
    expiresAt,
  };
}

/** Rotation: a grace period from none to 7 days, in seconds. */
export const MAX_GRACE_PERIOD_SECONDS = 604_800;

/**
 * A rotation issues a token with the same settings, so it is checked like creating that token: the
 * authorizer must hold its scopes (the default token's too) and outlive it; a temporary token may
 * not rotate at all. The old token must be live, not
 * rotated already (rotate the replacement instead), and not expired.
 */
export function planRotation(
  current: TokenRecord,
  gracePeriodSeconds: number,
  context: PlanContext,
): { readonly plan: CreatePlan; readonly graceUntil: string } {
  if (context.authorizer.kind === 'token' && context.authorizer.usage === 'tk') {
    throw new TesseraError('forbidden', 'temporary tokens cannot rotate tokens');
  }
  if (
    !Number.isInteger(gracePeriodSeconds) ||
    gracePeriodSeconds < 0 ||
    gracePeriodSeconds > MAX_GRACE_PERIOD_SECONDS
  ) {
    throw new TesseraError(
      'invalid_field',
      'gracePeriod must be an integer number of seconds from 0 to 604800',
    );
  }
  if (current.rotation?.replacedBy) {
    throw new TesseraError('invalid_field', 'this token was rotated already: rotate its replacement instead');
  }
  const expires = current.expiresAt === null ? Number.POSITIVE_INFINITY : Date.parse(current.expiresAt);
  if (expires <= context.now) throw new TesseraError('invalid_field', 'an expired token cannot be rotated');
  // The default token too: unlike a refresh, a rotation hands the caller the new token.
  if (context.authorizer.kind === 'token' && !isSubset(current.scopes, context.authorizer.scopes)) {
    throw new TesseraError('forbidden', 'the authorizing token does not hold every scope of this token');
  }
  const graceUntil = new Date(Math.min(expires, context.now + gracePeriodSeconds * 1000)).toISOString();
  const result = {
    plan: {
      usage: current.usage,
      note: current.note,
      scopes: current.scopes,
      allowedUrls: current.allowedUrls,
      extensions: current.extensions,
      rateLimit: current.rateLimit,
      // A replacement lives no longer than the operator allows, counted from now.
      expiresAt: current.isDefault ? null : withinPolicy(current.expiresAt, context, 'clamp'),
    },
    graceUntil,
  };
  // Nor longer than the token that asks for it: rotation is no way around an expiry.
  checkLifetime(result.plan.expiresAt, context.authorizer);
  return result;
}

/**
 * Deleting only narrows access, so any token with `tokens:write` may revoke (as in Mapbox); but a
 * temporary token may only delete tokens within its own scopes: a leaked tk must not wipe an account.
 */
export function checkDelete(target: TokenRecord, authorizer: Authorizer): void {
  if (
    authorizer.kind === 'token' &&
    authorizer.usage === 'tk' &&
    !isSubset(target.scopes, authorizer.scopes)
  ) {
    throw new TesseraError('forbidden', 'a temporary token may only delete tokens within its own scopes');
  }
}

export function planTemporary(
  request: TemporaryRequest,
  context: { readonly authorizer: Authorizer; readonly catalogue: ScopeCatalogue; readonly now: number },
): TemporaryClaims {
  const { authorizer, now } = context;
  if (authorizer.kind !== 'token') throw new TypeError('temporary tokens are minted by a token');
  if (request.expires <= now) throw new TesseraError('expires_in_past');
  if (request.expires > now + MAX_TEMPORARY_LIFETIME_MS) throw new TesseraError('expires_too_far');
  // Compared in milliseconds: flooring first would let a request up to 999 ms past the authorizer pass.
  if (authorizer.expires !== null && request.expires > authorizer.expires * 1000) {
    throw new TesseraError('expires_beyond_authorizer');
  }
  const expires = Math.floor(request.expires / 1000);
  return {
    username: authorizer.username,
    expires,
    issuedAt: Math.floor(now / 1000),
    scopes: checkScopes(request.scopes, context),
    ...(authorizer.tokenId === null ? {} : { parentId: authorizer.tokenId }),
  };
}

function checkScopes(
  requested: readonly string[],
  context: { readonly authorizer: Authorizer; readonly catalogue: ScopeCatalogue },
): string[] {
  const scopes = dedupeScopes(requested);
  if (!allKnown(context.catalogue, scopes)) throw new TesseraError('scopes_invalid');
  if (context.authorizer.kind === 'token' && !isSubset(scopes, context.authorizer.scopes)) {
    throw new TesseraError('scopes_invalid');
  }
  return scopes;
}

function checkAllowedUrls(allowedUrls: readonly string[] | null): void {
  if (allowedUrls === null) return;
  if (allowedUrls.length > MAX_ALLOWED_URLS) {
    throw new TesseraError('invalid_field', `allowedUrls may contain at most ${MAX_ALLOWED_URLS} URLs`);
  }
  for (const entry of allowedUrls) {
    if (parseAllowedUrl(entry) === undefined) {
      throw new TesseraError('invalid_field', 'allowedUrls contains an invalid URL');
    }
  }
}

/**
 * The operator's maximum lifetime: a token without an expiry gets one (`default`) or is refused
 * (`refuse`, for an update that removes it); one beyond the cap is refused, or brought within it
 * (`clamp`, for a rotation's replacement).
 */
function withinPolicy(
  expiresAt: string | null,
  context: PlanContext,
  missing: 'default' | 'refuse' | 'clamp',
): string | null {
  const max = context.maxLifetimeMs;
  if (!max) return expiresAt;
  const latest = context.now + max;
  if (expiresAt !== null && Date.parse(expiresAt) <= latest) return expiresAt;
  if (missing === 'clamp' || (missing === 'default' && expiresAt === null)) {
    // A default expiry never outlives the token that asks for it either.
    const { authorizer } = context;
    const cap =
      authorizer.kind === 'token' && authorizer.expires !== null
        ? authorizer.expires * 1000
        : Number.POSITIVE_INFINITY;
    return new Date(Math.min(latest, Math.max(cap, context.now + 1000))).toISOString();
  }
  throw new TesseraError(
    'invalid_field',
    `expiresAt must be at most ${Math.round(max / 86_400_000)} days from now: the operator caps token lifetimes`,
  );
}

function checkExpiresAt(expiresAt: string | null, now: number): void {
  if (expiresAt !== null && Date.parse(expiresAt) <= now) {
    throw new TesseraError('invalid_field', 'expiresAt must be in the future');
  }
}

/** An expiring token cannot make a token that outlives it, nor lift another token's expiry past its own. */
function checkLifetime(expiresAt: string | null, authorizer: Authorizer): void {
  if (authorizer.kind !== 'token' || authorizer.expires === null) return;
  if (expiresAt === null || Date.parse(expiresAt) > authorizer.expires * 1000) {
    throw new TesseraError(
      'invalid_field',
      'expiresAt may not be later than the expiration of the authorizing token',
    );
  }
}

function checkDefaultToken(fields: Pick<TokenRecord, 'allowedUrls' | 'expiresAt'>): void {
  if (fields.allowedUrls !== null) {
    throw new TesseraError('invalid_field', 'the default token cannot have allowedUrls');
  }
  if (fields.expiresAt !== null) {
    throw new TesseraError('invalid_field', 'the default token cannot expire');
  }
}

function mergeExtensions(current: TokenExtensions, patch: UpdateRequest['extensions']): TokenExtensions {
  if (!patch) return current;
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else if (value !== undefined) merged[key] = value;
  }
  return merged as TokenExtensions;
}

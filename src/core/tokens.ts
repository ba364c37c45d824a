import type { PersistentUsage } from './token-format.ts';

export interface RateLimitSetting {
  readonly limit: number;
  /** Seconds. */
  readonly interval: number;
}

export interface AllowedApplication {
  readonly platform: string;
  readonly bundleId: string;
}

/** Fields Mapbox clients may send that Tessera stores and echoes without enforcing (yet). */
export interface TokenExtensions {
  readonly resources?: readonly string[];
  readonly allowedApplications?: readonly AllowedApplication[];
  readonly allowedApis?: readonly string[];
}

export const EXTENSION_FIELDS = ['resources', 'allowedApplications', 'allowedApis'] as const;

/** A persistent (pk/sk) token as stored. Deleted tokens stay as tombstones (`deletedAt`). */
export interface TokenRecord {
  readonly id: string;
  readonly username: string;
  readonly usage: PersistentUsage;
  readonly isDefault: boolean;
  readonly note: string;
  readonly scopes: readonly string[];
  readonly allowedUrls: readonly string[] | null;
  readonly extensions: TokenExtensions;
  readonly rateLimit: RateLimitSetting | null;
  /** ISO time after which the token is refused; null when it does not expire. */
  readonly expiresAt: string | null;
  /** SHA-256 of the full token string, hex. */
  readonly tokenHash: string;
  /** The full token string, kept only for public tokens (they are meant to be shown again). */
  readonly token: string | null;
  readonly created: string;
  readonly modified: string;
  readonly deletedAt: string | null;
  /** Incremented by every change; guards against lost updates. */
  readonly version: number;
  /** When the token last verified successfully (to the usage flush interval); absent if never. */
  readonly lastUsed?: string | null;
  /** Set on both tokens of a rotation. */
  readonly rotation?: TokenRotation;
  /** When the token was reported as leaked (public tokens; a leaked secret token is deleted). */
  readonly leakedAt?: string | null;
}

/** A rotation: the old token works until `graceUntil`, the new one from the start. */
export interface TokenRotation {
  /** On the new token: the id of the token it replaces. */
  readonly replaces?: string;
  /** On the old token: the id of its replacement. */
  readonly replacedBy?: string;
  /** When the old token stops working. */
  readonly graceUntil: string;
}

/** The token metadata object of the Tokens API. */
export interface TokenMetadata {
  readonly id: string;
  readonly usage: PersistentUsage;
  readonly client: 'api';
  readonly default: boolean;
  readonly note: string;
  readonly scopes: readonly string[];
  readonly created: string;
  readonly modified: string;
  readonly allowedUrls?: readonly string[];
  readonly resources?: readonly string[];
  readonly allowedApplications?: readonly AllowedApplication[];
  readonly allowedApis?: readonly string[];
  readonly rateLimit?: RateLimitSetting;
  readonly expiresAt?: string;
  readonly lastUsed?: string;
  readonly rotatedFrom?: string;
  readonly rotatedTo?: string;
  readonly graceUntil?: string;
  readonly leakedAt?: string;
  readonly token?: string;
}

/** Metadata as the API shows it. The full secret token is only passed in by the create path. */
export function toMetadata(
  record: TokenRecord,
  options: { readonly secretToken?: string } = {},
): TokenMetadata {
  const token = options.secretToken ?? record.token;
  return {
    id: record.id,
    usage: record.usage,
    client: 'api',
    default: record.isDefault,
    note: record.note,
    scopes: record.scopes,
    created: record.created,
    modified: record.modified,
    ...(record.allowedUrls ? { allowedUrls: record.allowedUrls } : {}),
    ...record.extensions,
    ...(record.rateLimit ? { rateLimit: record.rateLimit } : {}),
    ...(record.expiresAt ? { expiresAt: record.expiresAt } : {}),
    ...(record.lastUsed ? { lastUsed: record.lastUsed } : {}),
    ...(record.rotation?.replaces ? { rotatedFrom: record.rotation.replaces } : {}),
    ...(record.rotation?.replacedBy ? { rotatedTo: record.rotation.replacedBy } : {}),
    ...(record.rotation ? { graceUntil: record.rotation.graceUntil } : {}),
    ...(record.leakedAt ? { leakedAt: record.leakedAt } : {}),
    ...(token ? { token } : {}),
  };
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

import type { AuditEvent } from './audit.ts';
import type { PersistentUsage } from './token-format.ts';
import type { TokenRecord } from './tokens.ts';

export interface AccountRecord {
  readonly username: string;
  readonly email: string;
  /** An argon2id PHC string; never the password. */
  readonly passwordHash: string;
  readonly created: string;
  readonly modified: string;
}

export type TokenSortKey = 'created' | 'modified';

export interface TokenListQuery {
  readonly username: string;
  readonly isDefault?: boolean;
  readonly usage?: PersistentUsage;
  readonly sortBy: TokenSortKey;
  readonly limit: number;
  /** Keyset cursor: list what comes after this (sort value, id) pair, newest first. */
  readonly after?: { readonly value: string; readonly id: string };
}

export type TokenChanges = Pick<
  TokenRecord,
  'note' | 'scopes' | 'allowedUrls' | 'extensions' | 'rateLimit' | 'expiresAt' | 'modified'
>;

/** What a rotation does to the old token: it stops being the default and works until `expiresAt`. */
export interface TokenRetirement {
  readonly expiresAt: string;
  readonly modified: string;
}

/** One appended change: the token (and every cached verdict that depends on it) must be re-read. */
export interface TokenChange {
  readonly seq: number;
  readonly tokenId: string;
}

/** Counts of verification decisions, added to what is stored (never overwriting it). */
export interface UsageIncrement {
  readonly username: string;
  /** The pk/sk token id; a tk counts under the persistent token behind it. */
  readonly tokenId: string;
  readonly service: string;
  /** `allowed`, or the refusal reason. */
  readonly outcome: string;
  /** Start of the hour, ISO. */
  readonly hour: string;
  readonly count: number;
  /** Latest allowed use in this batch, ISO; null when the batch holds only refusals. */
  readonly lastUsed: string | null;
}

export interface UsageQuery {
  readonly username: string;
  readonly tokenId?: string;
  /** ISO hour starts, inclusive start and exclusive end. */
  readonly start: string;
  readonly end: string;
}

export interface UsageRow {
  readonly service: string;
  readonly outcome: string;
  readonly hour: string;
  readonly count: number;
}

/** Allowed requests of one token in one hour. */
export interface TokenUsageRow {
  readonly tokenId: string;
  readonly hour: string;
  readonly count: number;
}

/** Notices sent about a token's expiry, each once. */
export type NoticeKind = 'expiring' | 'expired';

export interface AuditQuery {
  readonly username: string;
  readonly limit: number;
  /** List what comes after (is older than) this event id. */
  readonly after?: string;
}

/**
 * The persistence port. Every method is one atomic, durable operation; the audit events given to a
 * write are appended in its transaction, so a change and its record commit (or fail) together.
 */
export interface InsertGuard {
  /** The persistent token that authorised the insert (for a tk, the one behind it). */
  readonly authorizerTokenId?: string;
  /** Now, as stored: an authoriser that expired by then counts as gone. */
  readonly now: string;
  readonly maxLiveTokens?: number;
}

export interface Store {
  /** Creates the account with its default token; false if the username is taken. */
  createAccount(
    account: AccountRecord,
    defaultToken: TokenRecord,
    audit?: readonly AuditEvent[],
  ): Promise<boolean>;
  findAccount(username: string): Promise<AccountRecord | undefined>;
  /**
   * Inserts a new token unless a guard fails, in one transaction: the token that authorised it must
   * still be live (a create racing the revocation of its authoriser never outlives it), and the
   * account must hold fewer than `maxLiveTokens` live tokens (counted under a lock on the account).
   */
  insertToken(
    record: TokenRecord,
    audit?: readonly AuditEvent[],
    guard?: InsertGuard,
  ): Promise<'inserted' | 'authorizer_gone' | 'quota_reached'>;
  /** Finds a token by id, tombstones included. */
  findToken(id: string): Promise<TokenRecord | undefined>;
  /** Live tokens of one account, newest first by the sort key, ties broken by id. */
  listTokens(query: TokenListQuery): Promise<TokenRecord[]>;
  /** Applies the changes if the token is live and still at `version`; else undefined. */
  updateToken(
    id: string,
    version: number,
    changes: TokenChanges,
    audit?: readonly AuditEvent[],
  ): Promise<TokenRecord | undefined>;
  /** Tombstones a live token (and inserts the replacement default, atomically); false if not live. */
  deleteToken(
    id: string,
    deletedAt: string,
    replacement: TokenRecord | null,
    audit?: readonly AuditEvent[],
    /** Only while the token is still unused (last used, or created, before this time). */
    condition?: { readonly unusedBefore: string },
  ): Promise<boolean>;
  /**
   * Retires the token (if still at `version`, live and not yet rotated) and inserts its replacement,
   * in one transaction; false when the token changed or was rotated meanwhile.
   */
  rotateToken(
    id: string,
    version: number,
    retire: TokenRetirement,
    replacement: TokenRecord,
    audit?: readonly AuditEvent[],
    guard?: InsertGuard,
  ): Promise<boolean>;
  /** Moves tokens' `lastUsed` forward (never back), without counting requests. */
  touchTokens(uses: ReadonlyArray<{ readonly tokenId: string; readonly lastUsed: string }>): Promise<void>;
  /** Flags a live token as leaked (once); false when it is gone or flagged already. */
  markLeaked(id: string, leakedAt: string, audit?: readonly AuditEvent[]): Promise<boolean>;
  /**
   * Live tokens that expire in [from, to) and have no notice of this kind yet (`from` null: any
   * time before `to`), oldest expiry first.
   */
  tokensToNotify(kind: NoticeKind, from: string | null, to: string, limit: number): Promise<TokenRecord[]>;
  /** Records a notice once per token and kind, with its audit events; false when it was sent already. */
  recordNotice(tokenId: string, kind: NoticeKind, at: string, audit: readonly AuditEvent[]): Promise<boolean>;
  /** Live tokens other than the default last used (or, never used, created) before `before`. */
  unusedTokens(before: string, limit: number): Promise<TokenRecord[]>;
  /** Appends events that record no write of this store (a sign-in, say). */
  appendAudit(events: readonly AuditEvent[]): Promise<void>;
  /** An account's events, newest first; undefined when `after` names no event of this account. */
  listAudit(query: AuditQuery): Promise<AuditEvent[] | undefined>;
  /** Changes after `seq`, oldest first (updates and deletes append them in their own transaction). */
  changesSince(seq: number, limit: number): Promise<TokenChange[]>;
  /** The newest change's seq, 0 when there is none. */
  latestChange(): Promise<number>;
  /** Adds the counts (and advances `lastUsed`), in one transaction. */
  addUsage(increments: readonly UsageIncrement[]): Promise<void>;
  /** Sums per service, outcome and hour, over one account or one of its tokens. */
  usage(query: UsageQuery): Promise<UsageRow[]>;
  /** Allowed requests per token and hour, over one account. */
  usageByToken(query: UsageQuery): Promise<TokenUsageRow[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

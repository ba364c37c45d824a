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

/** The persistence port. Every method is one atomic, durable operation. */
export interface Store {
  /** Creates the account with its default token; false if the username is taken. */
  createAccount(account: AccountRecord, defaultToken: TokenRecord): Promise<boolean>;
  findAccount(username: string): Promise<AccountRecord | undefined>;
  insertToken(record: TokenRecord): Promise<void>;
  /** Finds a token by id, tombstones included. */
  findToken(id: string): Promise<TokenRecord | undefined>;
  /** Live tokens of one account, newest first by the sort key, ties broken by id. */
  listTokens(query: TokenListQuery): Promise<TokenRecord[]>;
  /** Applies the changes if the token is live and still at `version`; else undefined. */
  updateToken(id: string, version: number, changes: TokenChanges): Promise<TokenRecord | undefined>;
  /** Tombstones a live token (and inserts the replacement default, atomically); false if not live. */
  deleteToken(id: string, deletedAt: string, replacement: TokenRecord | null): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

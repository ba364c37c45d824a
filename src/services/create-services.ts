import type { Config } from '../config.ts';
import { type Clock, systemClock } from '../core/ports.ts';
import { buildCatalogue, type ScopeCatalogue } from '../core/scopes.ts';
import { openDatabase, parseDatabaseUrl } from '../storage/database.ts';
import { FileKeyRing } from '../storage/file-key-ring.ts';
import { migrateToLatest } from '../storage/migrations.ts';
import { SqlStore } from '../storage/sql-store.ts';
import { type AccountService, createAccountService } from './account-service.ts';
import { argon2Hasher } from './passwords.ts';
import { MemoryRateLimiter, type RateLimiter } from './rate-limiter.ts';
import { systemRandom } from './system.ts';
import { createTokenService, type TokenService } from './token-service.ts';

export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly catalogue: ScopeCatalogue;
  readonly store: SqlStore;
  readonly keyRing: FileKeyRing;
  readonly tokens: TokenService;
  readonly accounts: AccountService;
  readonly rateLimiter: RateLimiter;
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly clock?: Clock;
}

/** The composition root: builds every store, service and limiter once. Migrates the schema. */
export async function createServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const catalogue = buildCatalogue(config.extraScopes);
  const db = openDatabase(parseDatabaseUrl(config.databaseUrl));
  await migrateToLatest(db);
  const store = new SqlStore(db);
  const keyRing = new FileKeyRing(config.dataDir, clock);
  const random = systemRandom;
  return {
    config,
    clock,
    catalogue,
    store,
    keyRing,
    tokens: createTokenService({ store, keyRing, catalogue, clock, random }),
    accounts: createAccountService({ store, catalogue, clock, random, passwords: argon2Hasher }),
    rateLimiter: new MemoryRateLimiter(),
    close: () => store.close(),
  };
}

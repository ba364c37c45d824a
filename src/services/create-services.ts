import type { Config } from '../config.ts';
import { type Clock, type RandomSource, systemClock } from '../core/ports.ts';
import { compileRoutes } from '../core/routes.ts';
import { buildCatalogue, type ScopeCatalogue } from '../core/scopes.ts';
import {
  type DatabaseUrl,
  isDatabaseUnreachable,
  MIGRATION_OPTIONS,
  openDatabase,
  parseDatabaseUrl,
} from '../storage/database.ts';
import { DatabaseKeyRing, type ManagedKeyRing } from '../storage/database-key-ring.ts';
import { FileKeyRing } from '../storage/file-key-ring.ts';
import { migrateToLatest } from '../storage/migrations.ts';
import { PostgresChangeListener } from '../storage/postgres-listener.ts';
import { SqlSessionStore } from '../storage/sql-session-store.ts';
import { SqlStore } from '../storage/sql-store.ts';
import { WebhookOutbox } from '../storage/webhook-outbox.ts';
import { type AccountService, createAccountService } from './account-service.ts';
import { type AuditService, createAuditService } from './audit-service.ts';
import { ChangeFollower } from './change-follower.ts';
import { createLeakService, type LeakService } from './leak-service.ts';
import { LifecycleSweeper } from './lifecycle-sweeper.ts';
import { MemoryLoginThrottle } from './login-throttle.ts';
import { Metrics } from './metrics.ts';
import { argon2Hasher, boundedHasher, type PasswordHasher } from './passwords.ts';
import { MemoryRateLimiter, type RateLimiter } from './rate-limiter.ts';
import { RedisRateLimiter } from './redis-rate-limiter.ts';
import { createSessionService, type SessionService } from './session-service.ts';
import { systemRandom } from './system.ts';
import { TokenCache } from './token-cache.ts';
import { createTokenService, type TokenService } from './token-service.ts';
import { UsageRecorder } from './usage-recorder.ts';
import { createUsageService, type UsageService } from './usage-service.ts';
import { createVerificationService, type VerificationService } from './verification-service.ts';
import { WebhookSender } from './webhook-sender.ts';

export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly catalogue: ScopeCatalogue;
  readonly store: SqlStore;
  /** Signing keys for temporary tokens: in the database (sealed) or in the data folder. */
  readonly keyRing: ManagedKeyRing;
  readonly tokens: TokenService;
  readonly accounts: AccountService;
  readonly rateLimiter: RateLimiter;
  readonly cache: TokenCache;
  readonly changes: ChangeFollower;
  readonly usage: UsageRecorder;
  readonly metrics: Metrics;
  readonly verification: VerificationService;
  readonly usageReports: UsageService;
  /** Reads accounts' audit logs. */
  readonly audit: AuditService;
  /** Acts on leaked tokens (secret scanning, reports). */
  readonly leaks: LeakService;
  /** Sends queued webhook deliveries (a server's background work). */
  readonly webhooks: WebhookSender;
  /** Expiry notices and the unused-token policy (a server's background work). */
  readonly lifecycle: LifecycleSweeper;
  readonly random: RandomSource;
  /** Dashboard sign-in, sessions and password confirmation. */
  readonly sessions: SessionService;
  /** Renders the Prometheus metrics. */
  renderMetrics(): string;
  /** Starts the background work of a long-running process: following changes, flushing usage. */
  start(): Promise<void>;
  /** Stops it, writes the usage counted so far, and closes the store. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  readonly clock?: Clock;
  /** The Argon2 hasher, behind the process's bound on password checks; tests wrap it to count checks. */
  readonly passwordHasher?: PasswordHasher;
  /**
   * Called each time the database cannot be reached at start, before the next try. With it, start
   * waits (backing off to 5 s) until the database answers; without it, start fails at once.
   */
  readonly onDatabaseWait?: (error: unknown, retryInMs: number) => void;
  /** Called with the first error of each Redis outage; rate limits are then counted per node. */
  readonly onRedisError?: (error: unknown) => void;
  /** Called when reloading the signing keys fails; the keys already loaded stay in use. */
  readonly onKeyRingError?: (error: unknown) => void;
  /**
   * Called when this machine's clock and the database's differ by more than 5 s (with signing keys
   * in the database): at start or a later measurement (every 5 s), once until they are back within 4 s.
   */
  readonly onClockSkew?: (skewMs: number) => void;
  /** Called for each failed webhook attempt (never with the URL or the secret). */
  readonly onWebhookError?: (error: {
    readonly type: string;
    readonly attempt: number;
    readonly error: string;
  }) => void;
}

const SEALED_KEYS_WITHOUT_KEK =
  'the database holds signing keys sealed under a key-encryption key: set TESSERA_KEY_ENCRYPTION_KEY ' +
  '(the same value as the other nodes) to start';

const KEK_REQUIRED =
  'TESSERA_KEY_ENCRYPTION_KEY is required with PostgreSQL: every node reads the signing keys for ' +
  'temporary tokens from the database, sealed under this key. Make one with `openssl rand -base64 32` ' +
  'and give every node the same value';

/** The file ring behind the same interface as the database one (rotation is synchronous there). */
function managedFileKeyRing(ring: FileKeyRing): ManagedKeyRing {
  return {
    activeKey: () => ring.activeKey(),
    findKey: (id) => ring.findKey(id),
    rotate: async () => ring.rotate(),
    listKeys: async () => ring.listKeys().map((key) => ({ ...key, activeFrom: key.created })),
  };
}

/**
 * A node started before its database (a restart of both, say) waits instead of crash-looping; any
 * other failure of a migration stops the start with its error. On PostgreSQL the migrations run on
 * a connection of their own without the 2 s statement limit (an index on a large table may take
 * longer), which is closed afterwards.
 */
async function migrateWhenReachable(
  db: Parameters<typeof migrateToLatest>[0],
  url: DatabaseUrl,
  onWait: ServiceOptions['onDatabaseWait'],
): Promise<void> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    const migrationDb = url.kind === 'postgres' ? openDatabase(url, MIGRATION_OPTIONS) : db;
    try {
      await migrateToLatest(migrationDb);
      return;
    } catch (error) {
      if (!onWait || !isDatabaseUnreachable(error)) throw error;
      onWait(error, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    } finally {
      if (migrationDb !== db) await migrationDb.destroy();
    }
  }
}

/** The composition root: builds every store, service and limiter once. Migrates the schema. */
export async function createServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const catalogue = buildCatalogue(config.extraScopes);
  const databaseUrl = parseDatabaseUrl(config.databaseUrl);
  const kek = config.keyEncryptionKeys;
  if (databaseUrl.kind === 'postgres' && !kek) throw new TypeError(KEK_REQUIRED);
  const db = openDatabase(databaseUrl);
  let databaseKeys: DatabaseKeyRing | undefined;
  try {
    await migrateWhenReachable(db, databaseUrl, options.onDatabaseWait);
    if (!kek && (await db.selectFrom('signing_keys').select('kid').limit(1).execute()).length > 0) {
      throw new TypeError(SEALED_KEYS_WITHOUT_KEK);
    }
    if (kek) {
      databaseKeys = await DatabaseKeyRing.open(db, {
        keys: kek,
        clock,
        importFrom: config.dataDir,
        ...(options.onKeyRingError ? { onError: options.onKeyRingError } : {}),
        ...(options.onClockSkew ? { onClockSkew: options.onClockSkew } : {}),
      });
    }
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const store = new SqlStore(db, { webhooks: config.webhooks });
  const keyRing = databaseKeys ?? managedFileKeyRing(new FileKeyRing(config.dataDir, clock));
  const random = systemRandom;
  const cache = new TokenCache();
  const metrics = new Metrics();
  const listener = databaseUrl.kind === 'postgres' ? new PostgresChangeListener(databaseUrl.url) : undefined;
  const changes = new ChangeFollower(store, cache, {
    onError: () => {},
    ...(listener ? { listener } : {}),
    ...(databaseKeys ? { onKeysChanged: () => void databaseKeys.refresh() } : {}),
  });
  const usage = new UsageRecorder(store);
  const webhooks = new WebhookSender(new WebhookOutbox(db), config.webhooks, {
    clock,
    ...(options.onWebhookError ? { onError: options.onWebhookError } : {}),
  });
  const lifecycle = new LifecycleSweeper({ store, cache, policy: config.lifecycle, clock, random });
  const redisLimiter = config.redisUrl
    ? new RedisRateLimiter({
        url: config.redisUrl,
        ...(options.onRedisError ? { onError: options.onRedisError } : {}),
      })
    : undefined;
  const rateLimiter: RateLimiter = redisLimiter ?? new MemoryRateLimiter();
  const tokens = createTokenService({
    store,
    keyRing,
    catalogue,
    clock,
    random,
    cache,
    maxLifetimeDays: config.lifecycle.maxLifetimeDays,
    tokensPerAccount: config.tokensPerAccount,
    onUse: (tokenId, now) => usage.touch(tokenId, now),
  });
  const verification = createVerificationService({
    tokens,
    routes: compileRoutes(config.routes),
    rateLimiter,
    scopeRateLimits: config.scopeRateLimits,
    usage,
    metrics,
    clock,
  });
  // One budget of Argon2 work for sign-up, sign-in and confirmation in this process.
  const passwords = boundedHasher(options.passwordHasher ?? argon2Hasher, { running: 4, waiting: 64 });
  const accounts = createAccountService({ store, catalogue, clock, random, passwords });
  const sessions = createSessionService({
    store,
    sessions: new SqlSessionStore(db),
    accounts,
    passwords,
    throttle: new MemoryLoginThrottle(),
    clock,
    random,
  });
  return {
    config,
    clock,
    random,
    sessions,
    catalogue,
    store,
    keyRing,
    tokens,
    accounts,
    rateLimiter,
    cache,
    changes,
    usage,
    metrics,
    verification,
    usageReports: createUsageService({ store, clock }),
    audit: createAuditService({ store }),
    leaks: createLeakService({ store, tokens, cache, clock, random }),
    webhooks,
    lifecycle,
    renderMetrics: () =>
      metrics.render(
        {
          cacheHits: () => cache.hits,
          cacheMisses: () => cache.misses,
          cacheEntries: () => cache.size,
          lastUsageFlushAt: () => usage.lastFlushAt,
          usageFlushErrors: () => usage.flushErrors,
          usageDropped: () => usage.dropped,
          changeFollowerErrors: () => changes.errors,
          cacheSuspensions: () => changes.suspensions,
          webhooks: () => ({
            delivered: webhooks.delivered,
            retried: webhooks.retried,
            failed: webhooks.failed,
          }),
          keyRingErrors: () => databaseKeys?.errors ?? 0,
          keyRing: () =>
            databaseKeys
              ? {
                  size: databaseKeys.size,
                  lastRefreshAt: databaseKeys.lastRefreshAt,
                  clockSkewMs: databaseKeys.clockSkewMs,
                }
              : undefined,
          redis: () =>
            redisLimiter
              ? {
                  shared: redisLimiter.shared,
                  errors: redisLimiter.errors,
                  lastSyncAt: redisLimiter.lastSyncAt,
                }
              : undefined,
        },
        Date.now(),
      ),
    async start() {
      await changes.start();
      databaseKeys?.start();
      usage.start(config.usageFlushMs);
      await redisLimiter?.start();
      webhooks.start();
      lifecycle.start();
    },
    async close() {
      await lifecycle.stop();
      await webhooks.stop();
      await changes.stop();
      databaseKeys?.stop();
      await redisLimiter?.close();
      await usage.stop();
      await store.close();
    },
  };
}

import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseTrustedProxies, type TrustedProxies } from './core/client-address.ts';
import { DEFAULT_ROUTES, ROUTE_PATTERN, type Route } from './core/routes.ts';
import { SCOPE_ID_PATTERN, type Scope } from './core/scopes.ts';
import { type KeyEncryptionKeys, parseKeyEncryptionKeys } from './storage/key-sealing.ts';

export const WEBHOOK_EVENT_TYPES = [
  'token.created',
  'token.deleted',
  'token.rotated',
  'token.expiring',
  'token.expired',
  'token.leaked',
] as const;

export interface RateLimitConfig {
  readonly limit: number;
  readonly interval: number;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly redisUrl: string | null;
  /**
   * Seals the signing keys kept in the database (required on PostgreSQL, optional on SQLite, where
   * without it the keys stay in `<dataDir>/signing-keys.json`).
   */
  readonly keyEncryptionKeys: KeyEncryptionKeys | null;
  /** Explicit external origin; when null, the server derives it from where it listens. */
  readonly publicUrl: string | null;
  readonly signup: 'open' | 'closed';
  readonly logLevel: 'info' | 'silent';
  readonly configFile: string | null;
  readonly extraScopes: readonly Scope[];
  readonly tokensApiRateLimit: RateLimitConfig;
  /** Live persistent tokens one account may hold (`limits.tokensPerAccount`, 10,000). */
  readonly tokensPerAccount: number;
  /** Forward-auth route map; the Mapbox-style defaults unless the config file gives its own. */
  readonly routes: readonly Route[];
  /** Operator defaults per scope, for tokens without their own `rateLimit`. */
  readonly scopeRateLimits: Readonly<Record<string, RateLimitConfig>>;
  /** How often counted usage is written to the store, in milliseconds. */
  readonly usageFlushMs: number;
  /** Proxies whose `X-Forwarded-For` decides the client address for sign-in throttling; none by default. */
  readonly trustedProxies: TrustedProxies;
  /** GitHub secret scanning's public keys (by key identifier); the partner endpoint is off without them. */
  readonly githubScanningKeys: ReadonlyMap<string, KeyObject>;
  /** Where token events are POSTed, signed with each webhook's secret. */
  readonly webhooks: readonly WebhookConfig[];
  readonly lifecycle: LifecyclePolicy;
}

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface WebhookConfig {
  readonly url: string;
  readonly secret: string;
  /** The event types it receives; every type when absent. */
  readonly events: readonly WebhookEventType[];
}

/** Operator policies over token lifetimes (`lifecycle` in TESSERA_CONFIG). */
export interface LifecyclePolicy {
  /** pk/sk tokens expire at most this many days after they are created or changed; none when null. */
  readonly maxLifetimeDays: number | null;
  /** How long before its expiry a token's `token.expiring` event is sent. */
  readonly expiringNoticeDays: number;
  /** Tokens not used for this many days are revoked (the default token excepted); never when null. */
  readonly revokeUnusedAfterDays: number | null;
}

const rateLimitSchema = z.strictObject({
  limit: z.number().int().min(1).max(1_000_000_000),
  interval: z.number().int().min(1).max(86_400),
});

const fileSchema = z
  .object({
    scopes: z
      .array(
        z.strictObject({
          id: z.string().regex(SCOPE_ID_PATTERN, 'scope ids look like "area:action" (lowercase ASCII)'),
          description: z.string().min(1).max(200),
          public: z.boolean(),
        }),
      )
      .max(200)
      .default([]),
    limits: z
      .strictObject({
        tokensApi: rateLimitSchema.optional(),
        tokensPerAccount: z.number().int().min(1).max(1_000_000).optional(),
        scopes: z.record(z.string().regex(SCOPE_ID_PATTERN), rateLimitSchema).default({}),
      })
      .default({ scopes: {} }),
    routes: z
      .array(
        z.strictObject({
          pattern: z
            .string()
            .regex(ROUTE_PATTERN, 'route patterns are absolute paths; * stands for one segment'),
          methods: z
            .array(z.string().regex(/^[A-Z]+$/))
            .min(1)
            .optional(),
          scope: z.string().regex(SCOPE_ID_PATTERN).nullable(),
          service: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,31}$/),
        }),
      )
      .max(500)
      .optional(),
    usage: z.strictObject({ flushInterval: z.number().min(0.1).max(3600) }).default({ flushInterval: 5 }),
    webhooks: z
      .array(
        z.strictObject({
          url: z
            .string()
            .max(2048)
            .regex(/^https?:\/\/[^\s]+$/, 'webhook URLs are http:// or https:// URLs'),
          secret: z.string().min(16, 'a webhook secret has at least 16 characters').max(512),
          events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).optional(),
        }),
      )
      .max(20)
      .default([]),
    lifecycle: z
      .strictObject({
        maxLifetimeDays: z.number().int().min(1).max(3650).optional(),
        expiringNoticeDays: z.number().int().min(1).max(90).default(7),
        revokeUnusedAfterDays: z.number().int().min(1).max(3650).optional(),
      })
      .default({ expiringNoticeDays: 7 }),
    leaks: z
      .strictObject({
        github: z
          .strictObject({
            publicKeys: z
              .array(z.strictObject({ id: z.string().min(1).max(200), key: z.string().min(1).max(4000) }))
              .min(1)
              .max(20),
          })
          .optional(),
      })
      .default({}),
  })
  .strict();

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads every setting from the environment (and `TESSERA_CONFIG`) once; the result is frozen. */
export function loadConfig(env: Env = process.env): Config {
  const port = parsePort(env.PORT ?? '3000');
  const host = env.HOST || '127.0.0.1';
  const dataDir = resolve(env.TESSERA_DATA_DIR || './data');
  const configFile = env.TESSERA_CONFIG || null;
  const file = configFile ? readConfigFile(configFile) : fileSchema.parse({});
  return Object.freeze({
    port,
    host,
    dataDir,
    databaseUrl: env.TESSERA_DATABASE_URL || `sqlite:${resolve(dataDir, 'tessera.db')}`,
    redisUrl: env.TESSERA_REDIS_URL || null,
    // Set but empty (a secret file that could not be read, say) is an error, never "no key".
    keyEncryptionKeys:
      env.TESSERA_KEY_ENCRYPTION_KEY === undefined
        ? null
        : parseKeyEncryptionKeys(env.TESSERA_KEY_ENCRYPTION_KEY),
    publicUrl: env.TESSERA_PUBLIC_URL ? parsePublicUrl(env.TESSERA_PUBLIC_URL) : null,
    signup: parseChoice('TESSERA_SIGNUP', env.TESSERA_SIGNUP || 'open', ['open', 'closed'] as const),
    logLevel: parseChoice('TESSERA_LOG_LEVEL', env.TESSERA_LOG_LEVEL || 'info', ['info', 'silent'] as const),
    configFile,
    extraScopes: Object.freeze(file.scopes),
    tokensApiRateLimit: Object.freeze(file.limits.tokensApi ?? { limit: 100, interval: 60 }),
    tokensPerAccount: file.limits.tokensPerAccount ?? 10_000,
    routes: Object.freeze((file.routes as readonly Route[] | undefined) ?? DEFAULT_ROUTES),
    scopeRateLimits: Object.freeze(file.limits.scopes),
    usageFlushMs: Math.round(file.usage.flushInterval * 1000),
    trustedProxies: parseProxies(env.TESSERA_TRUSTED_PROXIES ?? ''),
    githubScanningKeys: parseScanningKeys(file.leaks.github?.publicKeys ?? []),
    webhooks: Object.freeze(
      file.webhooks.map((hook) =>
        Object.freeze({ ...hook, events: hook.events ?? [...WEBHOOK_EVENT_TYPES] }),
      ),
    ),
    lifecycle: Object.freeze({
      maxLifetimeDays: file.lifecycle.maxLifetimeDays ?? null,
      expiringNoticeDays: file.lifecycle.expiringNoticeDays,
      revokeUnusedAfterDays: file.lifecycle.revokeUnusedAfterDays ?? null,
    }),
  });
}

function parseScanningKeys(keys: ReadonlyArray<{ id: string; key: string }>): ReadonlyMap<string, KeyObject> {
  const map = new Map<string, KeyObject>();
  keys.forEach(({ id, key }, index) => {
    let parsed: KeyObject;
    try {
      parsed = createPublicKey(key);
    } catch {
      throw new TypeError(`TESSERA_CONFIG: leaks.github.publicKeys.${index}.key is not a PEM public key`);
    }
    if (parsed.asymmetricKeyType !== 'ec') {
      throw new TypeError(`TESSERA_CONFIG: leaks.github.publicKeys.${index}.key must be an ECDSA public key`);
    }
    map.set(id, parsed);
  });
  return map;
}

function readConfigFile(path: string): z.infer<typeof fileSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TypeError(`TESSERA_CONFIG: cannot read ${path} as JSON (${(error as Error).message})`);
  }
  const result = fileSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new TypeError(`TESSERA_CONFIG: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return result.data;
}

function parseProxies(spec: string): TrustedProxies {
  try {
    return parseTrustedProxies(spec);
  } catch (error) {
    throw new TypeError(`TESSERA_TRUSTED_PROXIES: ${(error as Error).message}`);
  }
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new TypeError(`PORT must be 0-65535, not "${text}"`);
  return port;
}

function parsePublicUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`TESSERA_PUBLIC_URL must be an absolute URL, not "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError('TESSERA_PUBLIC_URL must be http or https');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function parseChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new TypeError(`${name} must be one of ${choices.join(', ')}, not "${value}"`);
  }
  return value as T;
}

/** The origin a server listening on host:port is reached at, for the default public URL. */
export function localUrl(host: string, port: number): string {
  return `http://${hostForUrl(host)}:${port}`;
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Env, loadConfig } from '../../src/config.ts';
import type { Clock } from '../../src/core/ports.ts';
import { type RunningServer, startServer } from '../../src/http/server.ts';
import { type Logger, silentLogger } from '../../src/logging/logger.ts';
import { createServices, type Services } from '../../src/services/create-services.ts';
import { TEST_KEY_ENCRYPTION_KEY } from './postgres.ts';

export interface TestServer {
  readonly url: string;
  readonly services: Services;
  readonly dataDir: string;
  close(): Promise<void>;
}

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = Date.now()) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** A fresh data folder in the system temp dir; removed by close(). */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-test-'));
}

export interface ServerOptions {
  readonly env?: Env;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** What `tessera serve` logs from: the node's clock and the database's differ by more than 5 s. */
  readonly onClockSkew?: (skewMs: number) => void;
}

/** Starts the real server on 127.0.0.1 and a free port, on its own SQLite database. */
export async function startTestServer(options: ServerOptions = {}): Promise<TestServer> {
  const dataDir = tempDataDir();
  const postgres = options.env?.['TESSERA_DATABASE_URL']?.startsWith('postgres') ?? false;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    TESSERA_DATA_DIR: dataDir,
    ...(postgres ? { TESSERA_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY } : {}),
    ...options.env,
  });
  const services = await createServices(config, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.onClockSkew ? { onClockSkew: options.onClockSkew } : {}),
  });
  let server: RunningServer;
  try {
    server = await startServer(services, options.logger ?? silentLogger);
  } catch (error) {
    await services.close();
    throw error;
  }
  return {
    url: server.url,
    services,
    dataDir,
    async close() {
      await server.close();
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const ADMIN_SCOPES = ['tokens:read', 'tokens:write', 'scopes:list'] as const;

export interface TestAccount {
  readonly username: string;
  readonly defaultToken: string;
  /** A secret token holding `scopes` (by default the three Tokens API scopes). */
  readonly adminToken: string;
  readonly adminTokenId: string;
}

/** Creates an account (as the CLI would) and an admin secret token for it. */
export async function createTestAccount(
  services: Services,
  username: string,
  scopes: readonly string[] = ADMIN_SCOPES,
): Promise<TestAccount> {
  const account = await services.accounts.createAccount({
    username,
    email: `${username}@example.com`,
    password: 'correct horse battery staple',
  });
  const admin = await services.tokens.create({ kind: 'operator' }, username, {
    note: 'admin',
    scopes,
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  });
  if (!admin.token) throw new Error('the create response carries no token');
  return { username, defaultToken: account.defaultToken, adminToken: admin.token, adminTokenId: admin.id };
}

/** Starts the real server with `config` written to a TESSERA_CONFIG file, removed again by close(). */
export async function startConfiguredServer(
  config: Readonly<Record<string, unknown>>,
  options: ServerOptions = {},
): Promise<TestServer> {
  const configDir = mkdtempSync(join(tmpdir(), 'tessera-config-'));
  const configFile = join(configDir, 'tessera.json');
  writeFileSync(configFile, JSON.stringify(config));
  const server = await startTestServer({ ...options, env: { TESSERA_CONFIG: configFile, ...options.env } });
  return {
    ...server,
    async close() {
      await server.close();
      rmSync(configDir, { recursive: true, force: true });
    },
  };
}

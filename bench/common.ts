import { rmSync } from 'node:fs';
import { loadConfig } from '../src/config.ts';
import { createServices, type Services } from '../src/services/create-services.ts';
import { createTestAccount, tempDataDir } from '../test/helpers/server.ts';

export interface Fixture {
  readonly services: Services;
  readonly dataDir: string;
  /** A public token with styles:read, restricted to https://app.example.com. */
  readonly restrictedToken: string;
  readonly adminToken: string;
  close(): Promise<void>;
}

/** A throwaway data folder with one account and a URL-restricted public token. */
export async function fixture(): Promise<Fixture> {
  const dataDir = tempDataDir();
  const services = await createServices(
    loadConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'silent' }),
  );
  const account = await createTestAccount(services, 'bench', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'fonts:read',
  ]);
  const created = await services.tokens.create({ kind: 'operator' }, 'bench', {
    note: 'web',
    scopes: ['styles:read', 'fonts:read'],
    allowedUrls: ['https://app.example.com'],
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  });
  return {
    services,
    dataDir,
    restrictedToken: created.token ?? '',
    adminToken: account.adminToken,
    async close() {
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `work` repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per second. */
export async function opsPerSecond(work: () => unknown, ms = 1500): Promise<number> {
  const batch = 1000;
  const deadline = performance.now() + 50;
  while (performance.now() < deadline) for (let i = 0; i < batch; i++) await work();
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    for (let i = 0; i < batch; i++) await work();
    count += batch;
  }
  return count / ((performance.now() - started) / 1000);
}

/** Like opsPerSecond, for work that completes synchronously (its returned promise, if any, is already settled). */
export function syncOpsPerSecond(work: () => unknown, ms = 300): number {
  const batch = 10_000;
  for (let i = 0; i < batch; i++) work();
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    for (let i = 0; i < batch; i++) work();
    count += batch;
  }
  return count / ((performance.now() - started) / 1000);
}

/**
 * Measures several contenders in interleaved rounds and keeps each one's median: on a shared,
 * noisy machine, drift then hits every contender alike instead of whichever ran last.
 */
export async function compare(
  contenders: Readonly<Record<string, () => unknown>>,
  options: { readonly rounds?: number; readonly ms?: number } = {},
): Promise<Record<string, number>> {
  const rounds = options.rounds ?? 7;
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, work] of Object.entries(contenders)) {
      const rate = await opsPerSecond(work, options.ms ?? 300);
      samples[name] = [...(samples[name] ?? []), rate];
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export function format(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

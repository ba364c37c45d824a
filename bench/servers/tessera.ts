/**
 * Tessera itself, as `npm start` runs it (the compiled dist/, not the TypeScript sources), on a fresh
 * SQLite data folder with one URL-restricted public token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = join(import.meta.dirname, '..', '..', 'dist');
const { loadConfig } = await import(join(dist, 'config.js'));
const { createServices } = await import(join(dist, 'services', 'create-services.js'));
const { startServer } = await import(join(dist, 'http', 'server.js'));
const { silentLogger } = await import(join(dist, 'logging', 'logger.js'));

const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
const services = await createServices(
  loadConfig({
    TESSERA_DATA_DIR: dataDir,
    TESSERA_LOG_LEVEL: 'silent',
    PORT: '0',
    // bench/http.ts runs a second Tessera on PostgreSQL through this variable.
    ...(process.env.TESSERA_BENCH_DATABASE_URL
      ? {
          TESSERA_DATABASE_URL: process.env.TESSERA_BENCH_DATABASE_URL,
          TESSERA_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
        }
      : {}),
  }),
);
await services.accounts.createAccount({
  username: 'bench',
  email: 'bench@example.com',
  password: 'a long bench password',
});
const created = await services.tokens.create({ kind: 'operator' }, 'bench', {
  note: 'web',
  scopes: ['styles:read'],
  allowedUrls: ['https://app.example.com'],
  extensions: {},
  rateLimit: null,
  expiresAt: null,
});
const server = await startServer(services, silentLogger);
process.stdout.write(`READY ${server.port} ${created.token}\n`);
process.on('SIGTERM', async () => {
  await server.close();
  await services.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
});

/**
 * Tessera from the TypeScript sources on a fresh SQLite data folder, for bench/signin-flood.ts: it
 * trusts 127.0.0.1 as a proxy (so the benchmark can give every sign-in its own client address) and
 * has one unrestricted public token to verify. Prints `READY <port> <token>`; SIGTERM stops it.
 */
import { rmSync } from 'node:fs';
import { loadConfig } from '../../src/config.ts';
import { startServer } from '../../src/http/server.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { createServices } from '../../src/services/create-services.ts';
import { createTestAccount, tempDataDir } from '../../test/helpers/server.ts';

const dataDir = tempDataDir();
const services = await createServices(
  loadConfig({
    TESSERA_DATA_DIR: dataDir,
    TESSERA_LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    TESSERA_TRUSTED_PROXIES: '127.0.0.1',
  }),
);
await createTestAccount(services, 'bench');
const created = await services.tokens.create({ kind: 'operator' }, 'bench', {
  note: 'verified',
  scopes: ['styles:read'],
  allowedUrls: null,
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

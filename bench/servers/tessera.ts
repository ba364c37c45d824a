/** Tessera itself, on a fresh SQLite data folder, with one URL-restricted public token. */
import { startServer } from '../../src/http/server.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { fixture } from '../common.ts';

const bench = await fixture();
const server = await startServer(bench.services, silentLogger);
process.stdout.write(`READY ${server.port} ${bench.restrictedToken}\n`);
process.on('SIGTERM', async () => {
  await server.close();
  await bench.close();
  process.exit(0);
});

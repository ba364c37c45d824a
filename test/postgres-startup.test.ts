import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { createServices } from '../src/services/create-services.ts';
import { startPostgresProxy } from './helpers/pg-proxy.ts';
import { createTemporaryDatabase, postgresSkipReason, TEST_KEY_ENCRYPTION_KEY } from './helpers/postgres.ts';
import { tempDataDir } from './helpers/server.ts';

const skip = await postgresSkipReason();

test('a node started before PostgreSQL waits for it, then works; without waiting it fails at once', {
  skip: skip ?? false,
}, async () => {
  const database = await createTemporaryDatabase();
  const postgres = await startPostgresProxy({ open: false });
  const dataDir = tempDataDir();
  const config = loadConfig({
    TESSERA_DATA_DIR: dataDir,
    TESSERA_DATABASE_URL: postgres.through(database.url),
    TESSERA_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
  });
  try {
    await assert.rejects(createServices(config), (error: { code?: string }) => error.code === 'ECONNREFUSED');
    const waits: number[] = [];
    const starting = createServices(config, {
      onDatabaseWait: (_error, retryInMs) => {
        waits.push(retryInMs);
        if (waits.length === 2) void postgres.open();
      },
    });
    const services = await starting;
    try {
      assert.ok(waits.length >= 2, 'it waited');
      assert.deepEqual(waits.slice(0, 2), [250, 500], 'backing off');
      const account = await services.accounts.createAccount({
        username: 'late',
        email: 'late@example.com',
        password: 'correct horse battery staple',
      });
      assert.equal((await services.tokens.inspect(account.defaultToken)).code, 'TokenValid');
    } finally {
      await services.close();
    }
  } finally {
    await postgres.cut();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

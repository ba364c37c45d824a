import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { createServices } from '../src/services/create-services.ts';
import { createTemporaryDatabase, POSTGRES_ADMIN_URL, postgresSkipReason } from './helpers/postgres.ts';
import { tempDataDir } from './helpers/server.ts';

const skip = await postgresSkipReason();

/** A port where nothing listens yet; `open` then forwards it to the real PostgreSQL. */
async function delayedPostgres(): Promise<{ port: number; open(): Promise<void>; close(): Promise<void> }> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  const target = new URL(POSTGRES_ADMIN_URL);
  let proxy: Server | undefined;
  return {
    port,
    async open() {
      proxy = createServer((socket) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      await new Promise<void>((resolve) => proxy?.listen(port, '127.0.0.1', resolve));
    },
    async close() {
      await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
    },
  };
}

test('a node started before PostgreSQL waits for it, then works; without waiting it fails at once', {
  skip: skip ?? false,
}, async () => {
  const database = await createTemporaryDatabase();
  const postgres = await delayedPostgres();
  const dataDir = tempDataDir();
  const url = new URL(database.url);
  url.port = String(postgres.port);
  const config = loadConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_DATABASE_URL: url.toString() });
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
    await postgres.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

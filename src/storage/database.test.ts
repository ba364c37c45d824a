import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { isDatabaseUnavailable, isDatabaseUnreachable, openDatabase } from './database.ts';

/**
 * A PostgreSQL that lets a client in (no password: AuthenticationOk, then ReadyForQuery) and then
 * never answers anything: what a node sees when the server hangs (SIGSTOP, a frozen VM).
 */
async function silentPostgres(): Promise<{
  readonly url: string;
  /** Resolves when the client closes a connection it opened. */
  readonly closedByClient: Promise<void>;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let closing = false;
  let clientClosed: () => void = () => {};
  const closedByClient = new Promise<void>((resolve) => {
    clientClosed = resolve;
  });
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      if (!closing) clientClosed();
    });
    socket.once('data', () => {
      const authenticationOk = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
      const readyForQuery = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
      socket.write(Buffer.concat([authenticationOk, readyForQuery]));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `postgres://tessera@127.0.0.1:${port}/tessera`,
    closedByClient,
    close: async () => {
      closing = true;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('a PostgreSQL that stops answering fails the query at the client timeout, as unavailable (503)', async () => {
  const postgres = await silentPostgres();
  const db = openDatabase({ kind: 'postgres', url: postgres.url }, { queryTimeoutMs: 200 });
  try {
    const query = sql`select 1`.execute(db).then(
      () => 'answered',
      (failure: unknown) => failure,
    );
    // Without a client-side timeout the query would wait for as long as the server hangs.
    const outcome = await Promise.race([query, sleep(5_000, 'still waiting', { ref: false })]);
    assert.ok(isDatabaseUnavailable(outcome), String(outcome));
  } finally {
    await postgres.close();
    await db.destroy().catch(() => {});
  }
});

test('a connection whose query timed out is closed, never handed back to the pool in an unknown state', async () => {
  // The late answer of a timed-out BEGIN would otherwise leave the pooled session inside a
  // transaction, where every later write on it is silently never committed.
  const postgres = await silentPostgres();
  const db = openDatabase({ kind: 'postgres', url: postgres.url }, { queryTimeoutMs: 200 });
  try {
    await assert.rejects(sql`begin`.execute(db), /Query read timeout/);
    const closed = await Promise.race([
      postgres.closedByClient.then(() => 'closed'),
      sleep(3_000, 'still open', { ref: false }),
    ]);
    assert.equal(closed, 'closed');
  } finally {
    await postgres.close();
    await db.destroy().catch(() => {});
  }
});

test('a starting node waits only for a database it cannot reach, not for one that refuses a statement', () => {
  assert.ok(isDatabaseUnreachable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })));
  assert.ok(isDatabaseUnreachable(Object.assign(new Error('starting up'), { code: '57P03' })));
  assert.ok(isDatabaseUnreachable(new Error('Query read timeout')));
  assert.ok(isDatabaseUnreachable(Object.assign(new Error('too many clients'), { code: '53300' })));
  for (const code of ['57014', 'SQLITE_BUSY', 'SQLITE_READONLY', '42P01']) {
    assert.ok(!isDatabaseUnreachable(Object.assign(new Error(code), { code })), code);
  }
});

test('what counts as the database being unavailable, and what is a bug', () => {
  assert.ok(isDatabaseUnavailable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })));
  assert.ok(isDatabaseUnavailable(Object.assign(new Error('shutting down'), { code: '57P01' })));
  assert.ok(isDatabaseUnavailable(new Error('Query read timeout')));
  assert.ok(isDatabaseUnavailable(Object.assign(new Error('canceling statement'), { code: '57014' })));
  assert.ok(isDatabaseUnavailable(Object.assign(new Error('disk full'), { code: '53100' })));
  for (const code of [
    'SQLITE_FULL',
    'SQLITE_READONLY',
    'SQLITE_READONLY_DBMOVED',
    'SQLITE_IOERR_WRITE',
    'SQLITE_BUSY',
  ]) {
    assert.ok(isDatabaseUnavailable(Object.assign(new Error(code), { code })), code);
  }
  assert.ok(
    !isDatabaseUnavailable(Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT_UNIQUE' })),
  );
  assert.ok(!isDatabaseUnavailable(Object.assign(new Error('syntax'), { code: '42601' })));
  assert.ok(!isDatabaseUnavailable(new TypeError('undefined is not a function')));
});

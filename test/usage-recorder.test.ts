import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageRecorder } from '../src/services/usage-recorder.ts';
import { createTestAccount, startTestServer } from './helpers/server.ts';

const HOUR_MS = 3_600_000;

/**
 * A flush takes its batch at once and then writes it: whatever is counted during that write must go
 * out with the next flush, and a stop() (the shutdown flush) that lands during a timer's write must
 * wait for it and then write the rest. Before this was so, a SIGTERM could drop counts.
 */
test('a flush asked for while another is writing writes what was counted meanwhile; stop() loses nothing', async () => {
  const server = await startTestServer();
  try {
    const { store } = server.services;
    const account = await createTestAccount(server.services, 'meter');
    const recorder = new UsageRecorder(store);
    const now = Date.now();
    const count = (): void => recorder.record('meter', account.adminTokenId, 'styles', 'allowed', now);

    count();
    const first = recorder.flush(); // takes the one count and starts writing it
    count();
    const second = recorder.flush();
    assert.notEqual(second, first, 'a flush during a write is a write of its own, after it');
    assert.equal(recorder.flush(), second, 'flushes asked for meanwhile share that next write');
    count();
    await recorder.stop();
    await Promise.all([first, second]);

    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    const rows = await store.usage({
      username: 'meter',
      tokenId: account.adminTokenId,
      start: new Date(hour).toISOString(),
      end: new Date(hour + HOUR_MS).toISOString(),
    });
    assert.equal(
      rows.reduce((sum, row) => sum + row.count, 0),
      3,
      'every count is written',
    );
    assert.equal(recorder.flushErrors, 0);
  } finally {
    await server.close();
  }
});

/**
 * T69: the SQLite database on a file system that fills up. Writes must be refused whole with 503 +
 * Retry-After (never a 500, never half-written), reads must go on, writes must work again once the
 * space is back, and the file must stay intact. (A file system that turns read-only under an open
 * database cannot be staged here: Linux refuses to remount it while files are open for writing.
 * SQLITE_READONLY and SQLITE_IOERR map to the same 503, see src/storage/database.test.ts.)
 *
 * It needs a real small file system: a 4 MiB tmpfs mounted for the test (root, or CAP_SYS_ADMIN).
 * Where mounting is not allowed, it skips with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { api, startApiServer } from './helpers/api.ts';
import { recordFigures } from './helpers/figures.ts';
import { verifyNginx, withToken } from './helpers/forward-auth.ts';
import { createTestAccount } from './helpers/server.ts';

function mountTmpfs(): { readonly dir: string; unmount(): void } | string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a small tmpfs here (${String((error as Error).message).split('\n')[0]})`;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fills the file system with one file until it refuses more; returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return path;
}

const probe = mountTmpfs();
const skip = typeof probe === 'string' ? probe : false;
if (typeof probe !== 'string') probe.unmount();

test('T69 SQLite on a full file system: writes 503 and change nothing, reads go on, writes come back', {
  skip,
}, async (t) => {
  const disk = mountTmpfs();
  assert.ok(typeof disk !== 'string', String(disk));
  const server = await startApiServer({ env: { TESSERA_DATA_DIR: disk.dir } });
  const acknowledged: string[] = [];
  const outcomes = new Map<string, number>();
  const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
  try {
    const owner = await createTestAccount(server.services, 'small', [
      'tokens:read',
      'tokens:write',
      'styles:read',
    ]);
    const create = (note: string) =>
      api(server, 'POST', '/tokens/v2/small', {
        token: owner.adminToken,
        json: { note, scopes: ['styles:read'] },
      });
    const cold = await create('cold: never verified before the disk fills');
    assert.equal(cold.status, 200, cold.text);
    const coldToken = (cold.body as { token: string }).token;
    const uri = '/styles/v1/small/streets';

    for (const phase of ['full'] as const) {
      const filler = fill(disk.dir);
      // Writes until one is refused (a WAL with room left may take a few more): every refusal is a
      // 503 with Retry-After and a JSON message, never a 500.
      let refused = 0;
      for (let attempt = 0; attempt < 400 && refused < 5; attempt += 1) {
        const answer = await create(`${phase} ${attempt}`);
        count(`${phase}: ${answer.status}`);
        assert.ok(answer.status === 200 || answer.status === 503, `${answer.status} ${answer.text}`);
        if (answer.status === 200) acknowledged.push((answer.body as { id: string }).id);
        else {
          refused += 1;
          assert.ok(answer.headers.get('retry-after'), 'Retry-After');
          assert.deepEqual(answer.body, { message: 'Service Unavailable' });
        }
      }
      assert.ok(refused > 0, `the ${phase} file system refused no write: the test did not test anything`);
      // Reads go on: the Tokens API lists, forward-auth verifies a token it never saw before.
      const list = await api(server, 'GET', '/tokens/v2/small', { token: owner.adminToken });
      assert.equal(list.status, 200, list.text);
      const verified = await verifyNginx(server, withToken(uri, coldToken));
      assert.equal(verified.status, 200, verified.text);
      count(`${phase}: reads 200`);
      // The space comes back: writes work again without a restart.
      unlinkSync(filler);
      const again = await create(`after ${phase}`);
      assert.equal(again.status, 200, again.text);
      acknowledged.push((again.body as { id: string }).id);
    }

    const listed = await api(server, 'GET', '/tokens/v2/small?limit=100', { token: owner.adminToken });
    const ids = new Set((listed.body as { id: string }[]).map((token) => token.id));
    const lost = acknowledged.filter((id) => !ids.has(id));
    assert.deepEqual(lost, [], 'every acknowledged create is there');
    await server.close();
    const db = new Database(join(disk.dir, 'tessera.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
    const figures = {
      outcomes: [...outcomes].map(([what, n]) => `${what} x${n}`).join(', '),
      responses500: 0,
      acknowledgedLost: lost.length,
      integrityCheck: 'ok',
    };
    recordFigures('T69', figures);
    t.diagnostic(JSON.stringify(figures));
  } finally {
    await server.close().catch(() => {});
    disk.unmount();
  }
});

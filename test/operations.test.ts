import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logging/logger.ts';
import { createTestAccount, startTestServer, type TestServer, tempDataDir } from './helpers/server.ts';

describe('health and readiness', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('/healthz and /readyz answer 200 while the store is reachable', async () => {
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
  });

  test('/readyz answers 503 with Retry-After once the store is gone', async () => {
    const lonely = await startTestServer();
    await lonely.services.store.close();
    const ready = await fetch(`${lonely.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get('retry-after'), '5');
    assert.deepEqual(await ready.json(), { status: 'unavailable', message: 'the store is not reachable' });
    assert.equal((await fetch(`${lonely.url}/healthz`)).status, 200, 'the process itself is alive');
    await lonely.close().catch(() => undefined);
  });

  test('an unknown path is a JSON 404, never a redirect', async () => {
    for (const path of ['/nope', '/tokens/v2/', '/tokens/v3/alice', '/scopes/v1']) {
      const response = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      assert.equal(response.status, 404, path);
      assert.deepEqual(await response.json(), { message: 'Not found' });
    }
  });
});

describe('logs', () => {
  test('never contain tokens, wherever the request carried them', async () => {
    const lines: string[] = [];
    const server = await startTestServer({
      logger: createLogger({ level: 'info', write: (line) => lines.push(line) }),
    });
    try {
      const account = await createTestAccount(server.services, 'logged');
      await fetch(`${server.url}/tokens/v2/logged?access_token=${account.adminToken}`);
      await fetch(`${server.url}/tokens/v2/logged`, {
        headers: { Authorization: `Bearer ${account.adminToken}` },
      });
      await fetch(`${server.url}/tokens/v2?access_token=${account.defaultToken}&x=${account.adminToken}`);
      const encoded = account.adminToken.replaceAll('.', '%2E');
      await fetch(`${server.url}/tokens/v2/logged?access_tok%65n=${encoded}`);
      await fetch(`${server.url}/tokens/v2/${encoded}?note=${encoded}`);
      const created = await fetch(`${server.url}/tokens/v2/logged?access_token=${account.adminToken}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scopes: ['tokens:read'], note: `line\n{"level":"info","msg":"forged"}` }),
      });
      const secret = ((await created.json()) as { token: string }).token;
      await fetch(`${server.url}/tokens/v2/logged?access_token=${secret}`);
      assert.ok(lines.length >= 5, 'one line per request');
      const log = lines.join('');
      for (const token of [account.adminToken, account.defaultToken, secret]) {
        assert.equal(log.includes(token), false, 'a token reached the log');
        assert.equal(log.includes(token.split('.')[2] as string), false, 'a token secret reached the log');
      }
      assert.match(log, /access_token=\[REDACTED\]/);
      for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), 'every line is one JSON object');
    } finally {
      await server.close();
    }
  });

  test('every answer carries an X-Request-Id that names its log line, and no two are alike', async () => {
    const lines: string[] = [];
    const server = await startTestServer({
      logger: createLogger({ level: 'info', write: (line) => lines.push(line) }),
    });
    try {
      const answers = await Promise.all(
        ['/tokens/v2/nobody', '/healthz', '/signin', '/no/such/path'].map((path) =>
          fetch(`${server.url}${path}`),
        ),
      );
      const ids = answers.map((answer) => answer.headers.get('x-request-id') ?? '');
      for (const id of ids) assert.match(id, /^[0-9a-f-]{36}$/);
      assert.equal(new Set(ids).size, ids.length);
      const logged = lines.map((line) => (JSON.parse(line) as { requestId?: string }).requestId);
      for (const id of ids) assert.ok(logged.includes(id), `no log line for ${id}`);
    } finally {
      await server.close();
    }
  });
});

describe('accounts at rest', () => {
  test('passwords are argon2id hashes with OWASP parameters; secret tokens are digests only', async () => {
    const server = await startTestServer();
    try {
      const account = await createTestAccount(server.services, 'atrest');
      const db = new SQLite(join(server.dataDir, 'tessera.db'), { readonly: true });
      const row = db.prepare('select password_hash from accounts where username = ?').get('atrest') as {
        password_hash: string;
      };
      assert.match(row.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      for (const file of ['tessera.db', 'tessera.db-wal']) {
        assert.equal(statSync(join(server.dataDir, file)).mode & 0o777, 0o600, file);
      }
      const tokens = db.prepare('select usage, token, token_hash from tokens').all() as Array<{
        usage: string;
        token: string | null;
        token_hash: string;
      }>;
      db.close();
      const secret = tokens.find((token) => token.usage === 'sk');
      assert.ok(secret);
      assert.equal(secret.token, null);
      assert.match(secret.token_hash, /^[0-9a-f]{64}$/);
      assert.equal(JSON.stringify(tokens).includes(account.adminToken.split('.')[2] as string), false);
    } finally {
      await server.close();
    }
  });
});

describe('concurrency', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('ten concurrent deletes of the default token: one 204, nine 404, exactly one new default', async () => {
    const account = await createTestAccount(server.services, 'racer');
    const list = async (): Promise<Array<{ id: string; default: boolean }>> =>
      (
        await fetch(`${server.url}/tokens/v2/racer?default=true&access_token=${account.adminToken}`)
      ).json() as never;
    const [original] = await list();
    assert.ok(original);
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(`${server.url}/tokens/v2/racer/${original.id}?access_token=${account.adminToken}`, {
          method: 'DELETE',
        }).then((response) => response.status),
      ),
    );
    assert.deepEqual(statuses.sort(), [204, 404, 404, 404, 404, 404, 404, 404, 404, 404]);
    const defaults = await list();
    assert.equal(defaults.length, 1);
    assert.notEqual(defaults[0]?.id, original.id);
  });

  test('twenty concurrent updates of one token all land, none lost', async () => {
    const account = await createTestAccount(server.services, 'patcher');
    const base = `${server.url}/tokens/v2/patcher`;
    const created = (await (
      await fetch(`${base}?access_token=${account.adminToken}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ note: 'start', scopes: ['tokens:read'] }),
      })
    ).json()) as { id: string; modified: string };
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        fetch(`${base}/${created.id}?access_token=${account.adminToken}`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(
            index % 2 === 0 ? { note: `note ${index}` } : { allowedUrls: [`https://n${index}.example.com`] },
          ),
        }),
      ),
    );
    assert.deepEqual(
      responses.map((response) => response.status),
      Array(20).fill(200),
    );
    const bodies = (await Promise.all(responses.map((response) => response.json()))) as Array<{
      modified: string;
    }>;
    const stamps = new Set(bodies.map((body) => body.modified));
    assert.equal(stamps.size, 20, 'every update advanced modified');
    const record = await server.services.store.findToken(created.id);
    assert.equal(record?.version, 21);
  });
});

describe('configuration', () => {
  test('operator scopes from TESSERA_CONFIG join the catalogue and decide pk or sk', async () => {
    const dir = tempDataDir();
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        scopes: [
          { id: 'geocoder:read', description: 'Search the geocoder.', public: true },
          { id: 'billing:write', description: 'Change billing.', public: false },
        ],
      }),
    );
    const server = await startTestServer({ env: { TESSERA_CONFIG: file } });
    try {
      const account = await createTestAccount(server.services, 'operator', [
        'tokens:write',
        'scopes:list',
        'geocoder:read',
        'billing:write',
      ]);
      const scopes = (await (
        await fetch(`${server.url}/scopes/v1/operator?access_token=${account.adminToken}`)
      ).json()) as Array<{
        id: string;
        public?: boolean;
      }>;
      assert.deepEqual(
        scopes.find((scope) => scope.id === 'geocoder:read'),
        {
          id: 'geocoder:read',
          description: 'Search the geocoder.',
          public: true,
        },
      );
      assert.deepEqual(
        scopes.find((scope) => scope.id === 'billing:write'),
        {
          id: 'billing:write',
          description: 'Change billing.',
        },
      );
      const create = async (scopes: string[]): Promise<{ usage: string }> =>
        (await fetch(`${server.url}/tokens/v2/operator?access_token=${account.adminToken}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ scopes }),
        }).then((response) => response.json())) as { usage: string };
      assert.equal((await create(['geocoder:read'])).usage, 'pk');
      assert.equal((await create(['geocoder:read', 'billing:write'])).usage, 'sk');
    } finally {
      await server.close();
    }
  });

  test('bad settings stop the start with a message naming the setting', () => {
    const dir = tempDataDir();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ scopes: [{ id: 'Not A Scope', description: 'x', public: true }] }));
    const typo = join(dir, 'typo.json');
    writeFileSync(typo, JSON.stringify({ scope: [] }));
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ PORT: 'eighty' }, /PORT must be/],
      [{ TESSERA_SIGNUP: 'maybe' }, /TESSERA_SIGNUP must be one of open, closed/],
      [{ TESSERA_PUBLIC_URL: 'ftp://x' }, /TESSERA_PUBLIC_URL must be http or https/],
      [{ TESSERA_CONFIG: join(dir, 'missing.json') }, /TESSERA_CONFIG: cannot read/],
      [{ TESSERA_CONFIG: bad }, /TESSERA_CONFIG: scopes\.0\.id/],
      [{ TESSERA_CONFIG: typo }, /TESSERA_CONFIG: .*scope/],
    ];
    for (const [env, message] of cases) assert.throws(() => loadConfig(env), message);
  });

  test('the public URL shapes the Link header and keeps its path prefix', async () => {
    const server = await startTestServer({
      env: { TESSERA_PUBLIC_URL: 'https://tokens.example.com/prefix/' },
    });
    try {
      const account = await createTestAccount(server.services, 'linked');
      const response = await fetch(
        `${server.url}/tokens/v2/linked?limit=1&access_token=${account.adminToken}`,
      );
      assert.match(
        response.headers.get('link') ?? '',
        /^<https:\/\/tokens\.example\.com\/prefix\/tokens\/v2\/linked\?limit=1&start=[A-Za-z0-9_-]+>; rel="next"$/,
      );
    } finally {
      await server.close();
    }
  });
});

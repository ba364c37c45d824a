import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, parseDatabaseUrl } from '../src/storage/database.ts';
import { migrateToLatest } from '../src/storage/migrations.ts';
import { api, assertError, startApiServer } from './helpers/api.ts';
import { runCli } from './helpers/cli.ts';
import { DashboardClient } from './helpers/dashboard.ts';
import { createTemporaryDatabase, postgresSkipReason } from './helpers/postgres.ts';
import { ADMIN_SCOPES, createTestAccount, type TestAccount, type TestServer } from './helpers/server.ts';

const PASSWORD = 'correct horse battery staple';

interface WireEvent {
  id: string;
  time: string;
  action: string;
  actor: string;
  channel: string;
  ip: string | null;
  target: string;
  details?: Record<string, unknown>;
}

let server: TestServer;
let owner: TestAccount;
/** A secret token of the owner that may read the audit log. */
let auditor: string;

async function auditLog(username: string, query = '', token = auditor): Promise<WireEvent[]> {
  const answer = await api(server, 'GET', `/audit/v1/${username}${query}`, { token });
  assert.equal(answer.status, 200, answer.text);
  return answer.body as WireEvent[];
}

before(async () => {
  server = await startApiServer();
  owner = await createTestAccount(server.services, 'audra', [...ADMIN_SCOPES, 'audit:read', 'styles:read']);
  const reader = await api(server, 'POST', '/tokens/v2/audra', {
    token: owner.adminToken,
    json: { note: 'auditor', scopes: ['audit:read'] },
  });
  auditor = (reader.body as { token: string }).token;
});
after(() => server?.close());

describe('the audit log records every change, with who, how and from where', () => {
  test('account creation by the operator, then each Tokens API change with its token and address', async () => {
    const created = await api(server, 'POST', '/tokens/v2/audra', {
      token: owner.adminToken,
      json: { note: 'web', scopes: ['styles:read'] },
    });
    const id = (created.body as { id: string }).id;
    assert.equal(
      (
        await api(server, 'PATCH', `/tokens/v2/audra/${id}`, {
          token: owner.adminToken,
          json: { note: 'site' },
        })
      ).status,
      200,
    );
    assert.equal(
      (await api(server, 'DELETE', `/tokens/v2/audra/${id}`, { token: owner.adminToken })).status,
      204,
    );

    const events = await auditLog('audra');
    const [deleted, updated, made] = events;
    const viaApi = { actor: `token:${owner.adminTokenId}`, channel: 'api', ip: '127.0.0.1', target: id };
    assert.deepEqual(
      { ...deleted, id: undefined, time: undefined },
      {
        ...viaApi,
        id: undefined,
        time: undefined,
        action: 'token.delete',
        details: { usage: 'pk' },
      },
    );
    assert.deepEqual(
      { ...updated, id: undefined, time: undefined },
      {
        ...viaApi,
        id: undefined,
        time: undefined,
        action: 'token.update',
        details: { fields: ['note'] },
      },
    );
    assert.equal(made?.action, 'token.create');
    assert.deepEqual(made?.details, { usage: 'pk', scopes: ['styles:read'] });
    const oldest = events.at(-1);
    assert.equal(oldest?.action, 'account.create');
    assert.equal(oldest?.actor, 'operator');
    assert.equal(oldest?.channel, 'cli');
    assert.equal(oldest?.target, 'audra');
    assert.ok(events.every((event) => /^e[a-z0-9]{24}$/.test(event.id)));
    const times = events.map((event) => Date.parse(event.time));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
      'newest first',
    );
  });

  test('refreshing the default token is recorded with the replacement, never the token itself', async () => {
    const [defaultToken] = (
      await api(server, 'GET', '/tokens/v2/audra?default=true', { token: owner.adminToken })
    ).body as Array<{ id: string }>;
    assert.equal(
      (await api(server, 'DELETE', `/tokens/v2/audra/${defaultToken?.id}`, { token: owner.adminToken }))
        .status,
      204,
    );
    const [event] = await auditLog('audra', '?limit=1');
    const [replacement] = (
      await api(server, 'GET', '/tokens/v2/audra?default=true', { token: owner.adminToken })
    ).body as Array<{ id: string; token: string }>;
    assert.equal(event?.action, 'token.refresh');
    assert.equal(event?.target, defaultToken?.id);
    assert.deepEqual(event?.details, { replacement: replacement?.id });
  });

  test('dashboard sign-up, sign-in, a confirmed create and a password change: channel dashboard, actor the user', async () => {
    const browser = new DashboardClient(server);
    await browser.get('/signup');
    const signUp = await browser.post('/signup', {
      username: 'dashy',
      email: 'dashy@example.com',
      password: PASSWORD,
      repeatPassword: PASSWORD,
    });
    assert.equal(signUp.status, 303, signUp.text);
    await browser.get('/account');
    const out = await browser.post('/signout');
    assert.equal(out.status, 303, out.text);
    await browser.signInOk('dashy', PASSWORD);
    const create = await browser.post('/account/tokens', {
      note: 'from the dashboard',
      scopes: ['styles:read', 'audit:read'],
      password: PASSWORD,
    });
    assert.equal(create.status, 303, create.text);
    await browser.get('/account/password');
    const changed = await browser.post('/account/password', {
      currentPassword: PASSWORD,
      newPassword: `${PASSWORD} again`,
      repeatPassword: `${PASSWORD} again`,
    });
    assert.equal(changed.status, 303, changed.text);

    const created = await server.services.tokens.list({ kind: 'operator' }, 'dashy', {
      sortBy: 'created',
      limit: 10,
      usage: 'sk',
    });
    const reader = await server.services.tokens.create({ kind: 'operator' }, 'dashy', {
      note: 'reader',
      scopes: ['audit:read'],
      allowedUrls: null,
      extensions: {},
      rateLimit: null,
      expiresAt: null,
    });
    const events = await auditLog('dashy', '', reader.token);
    assert.deepEqual(
      events.map((event) => `${event.action} ${event.channel} ${event.actor}`),
      [
        'token.create cli operator',
        'account.password dashboard user:dashy',
        'token.create dashboard user:dashy',
        'session.signin dashboard user:dashy',
        'account.create dashboard user:dashy',
      ],
    );
    assert.ok(events.slice(1).every((event) => event.ip === '127.0.0.1'));
    assert.equal(events[2]?.target, created.tokens[0]?.id);
  });

  test('the CLI records its changes as the operator', async () => {
    const env = { TESSERA_DATA_DIR: server.dataDir };
    const made = await runCli(['tokens', 'create', 'audra', '--scopes', 'styles:read', '--note', 'cli'], {
      env,
    });
    assert.equal(made.code, 0, made.stderr);
    const [event] = await auditLog('audra', '?limit=1');
    assert.equal(event?.action, 'token.create');
    assert.equal(event?.channel, 'cli');
    assert.equal(event?.actor, 'operator');
    assert.equal(event?.ip, null);
    assert.equal(event?.target, (JSON.parse(made.stdout) as { id: string }).id);
  });

  test('tessera audit export prints the whole log; tokens create takes --expires-at', async () => {
    const env = { TESSERA_DATA_DIR: server.dataDir };
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const made = await runCli(
      [
        'tokens',
        'create',
        'audra',
        '--scopes',
        'styles:read',
        '--expires-at',
        expiresAt.replace('Z', '+00:00'),
      ],
      { env },
    );
    assert.equal(made.code, 0, made.stderr);
    assert.equal((JSON.parse(made.stdout) as { expiresAt: string }).expiresAt, expiresAt);
    const bad = await runCli(
      ['tokens', 'create', 'audra', '--scopes', 'styles:read', '--expires-at', 'tomorrow'],
      {
        env,
      },
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--expires-at must be an ISO 8601 time/);
    const exported = await runCli(['audit', 'export', 'audra'], { env });
    assert.equal(exported.code, 0, exported.stderr);
    const events = JSON.parse(exported.stdout) as WireEvent[];
    assert.deepEqual(events, await auditLog('audra', '?limit=100'));
    assert.equal(events.at(-1)?.action, 'account.create');
  });

  test('no event ever holds a token, a password or a hash', async () => {
    const secret = await api(server, 'POST', '/tokens/v2/audra', {
      token: owner.adminToken,
      json: { note: 'secret one', scopes: ['audit:read'] },
    });
    const raw = (secret.body as { token: string }).token;
    const rows = await server.services.store.listAudit({ username: 'audra', limit: 1000 });
    const dashy = await server.services.store.listAudit({ username: 'dashy', limit: 1000 });
    const everything = JSON.stringify([rows, dashy]);
    for (const forbidden of [raw, owner.adminToken, owner.defaultToken, auditor, PASSWORD, '$argon2']) {
      assert.ok(!everything.includes(forbidden), `the log holds ${forbidden.slice(0, 8)}…`);
    }
    assert.ok(!/[ps]k\.[A-Za-z0-9]+\./.test(everything));
  });
});

describe('reading the log', () => {
  test('pages with limit, start and an absolute Link without the access token', async () => {
    const all = await auditLog('audra');
    assert.ok(all.length >= 6, String(all.length));
    const first = await api(server, 'GET', '/audit/v1/audra?limit=2', { token: auditor });
    const link = first.headers.get('link') ?? '';
    const match = /^<([^>]+)>; rel="next"$/.exec(link);
    assert.ok(match, link);
    const next = new URL(match[1] as string);
    assert.equal(next.origin, new URL(server.url).origin);
    assert.equal(next.searchParams.get('access_token'), null);
    assert.equal(next.searchParams.get('limit'), '2');
    const collected = [...(first.body as WireEvent[])];
    let url: string | undefined = `${next.pathname}${next.search}`;
    while (url) {
      const page = await api(server, 'GET', url, { token: auditor });
      collected.push(...(page.body as WireEvent[]));
      const more = /^<([^>]+)>/.exec(page.headers.get('link') ?? '');
      url = more ? `${new URL(more[1] as string).pathname}${new URL(more[1] as string).search}` : undefined;
    }
    assert.deepEqual(
      collected.map((event) => event.id),
      all.map((event) => event.id),
    );
  });

  test('needs audit:read on the same account; bad paging answers 422 with a message', async () => {
    const without = await api(server, 'POST', '/tokens/v2/audra', {
      token: owner.adminToken,
      json: { note: 'no audit', scopes: ['tokens:read'] },
    });
    const plain = (without.body as { token: string }).token;
    assertError(await api(server, 'GET', '/audit/v1/audra', { token: plain }), 404, 'Not found');
    assertError(await api(server, 'GET', '/audit/v1/audra'), 401, 'Unauthorized');
    const other = await createTestAccount(server.services, 'other', [...ADMIN_SCOPES, 'audit:read']);
    assertError(await api(server, 'GET', '/audit/v1/audra', { token: other.adminToken }), 404, 'Not found');
    assertError(await api(server, 'GET', '/audit/v1/nobody', { token: auditor }), 404, 'No such user');
    for (const query of ['?limit=0', '?limit=101', '?limit=x', '?start=nope']) {
      const answer = await api(server, 'GET', `/audit/v1/audra${query}`, { token: auditor });
      assert.equal(answer.status, 422, query);
      assert.match((answer.body as { message: string }).message, /limit|start/);
    }
    // An event id of another account is no cursor here.
    const [foreign] = (await server.services.store.listAudit({ username: 'other', limit: 1 })) ?? [];
    const answer = await api(server, 'GET', `/audit/v1/audra?start=${foreign?.id}`, { token: auditor });
    assert.equal(answer.status, 422);
  });
});

for (const dialect of ['SQLite', 'PostgreSQL'] as const) {
  describe(`audit events are append-only in ${dialect} itself`, async () => {
    const skip = dialect === 'PostgreSQL' ? await postgresSkipReason() : undefined;
    test('UPDATE and DELETE on audit_events fail, whoever sends them', { skip }, async () => {
      const database = dialect === 'PostgreSQL' ? await createTemporaryDatabase() : undefined;
      const url = database?.url ?? `sqlite:${server.dataDir}/append-only.db`;
      const db = openDatabase(parseDatabaseUrl(url));
      try {
        await migrateToLatest(db);
        await sql`insert into audit_events (id, username, time, action, actor, channel, ip, target)
          values ('e1', 'u', 't', 'token.create', 'operator', 'cli', null, 'x')`.execute(db);
        await assert.rejects(sql`update audit_events set actor = 'someone else'`.execute(db), /append-only/);
        await assert.rejects(sql`delete from audit_events`.execute(db), /append-only/);
        if (dialect === 'PostgreSQL') {
          await assert.rejects(sql`truncate audit_events`.execute(db), /append-only/);
        }
        const rows = await sql<{ actor: string }>`select actor from audit_events`.execute(db);
        assert.deepEqual(rows.rows, [{ actor: 'operator' }]);
      } finally {
        await db.destroy();
        await database?.drop();
      }
    });
  });
}

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, assertError, startApiServer, tokensOf } from './helpers/api.ts';
import { runCli } from './helpers/cli.ts';
import { verifyNginx, withToken } from './helpers/forward-auth.ts';
import { createTestAccount, ManualClock, type TestAccount, type TestServer } from './helpers/server.ts';

interface Metadata {
  readonly id: string;
  readonly usage: string;
  readonly default: boolean;
  readonly note: string;
  readonly scopes: readonly string[];
  readonly allowedUrls?: readonly string[];
  readonly rateLimit?: { limit: number; interval: number };
  readonly expiresAt?: string;
  readonly rotatedFrom?: string;
  readonly rotatedTo?: string;
  readonly graceUntil?: string;
  readonly token?: string;
}

const clock = new ManualClock();
let server: TestServer;
let owner: TestAccount;
const PUBLIC_SCOPES = ['styles:tiles', 'styles:read', 'fonts:read', 'datasets:read', 'vision:read'];
const SCOPES = ['tokens:read', 'tokens:write', 'styles:write', 'audit:read', ...PUBLIC_SCOPES];

before(async () => {
  server = await startApiServer({ clock });
  owner = await createTestAccount(server.services, 'rota', SCOPES);
});
after(() => server.close());

async function create(json: object): Promise<Metadata> {
  const response = await api(server, 'POST', '/tokens/v2/rota', { token: owner.adminToken, json });
  assert.equal(response.status, 200, response.text);
  return response.body as Metadata;
}

async function rotate(id: string, json: unknown, token = owner.adminToken) {
  return api(server, 'POST', `/tokens/v2/rota/${id}/rotate`, { token, json });
}

async function code(token: string): Promise<string> {
  return ((await api(server, 'GET', '/tokens/v2', { token })).body as { code: string }).code;
}

describe('rotation with a grace period', () => {
  test('a secret token: same settings, a new secret shown once, the old one works until graceUntil', async () => {
    const old = await create({
      note: 'backend',
      scopes: ['styles:read', 'styles:write'],
      allowedUrls: ['https://app.example.com'],
      rateLimit: { limit: 50, interval: 60 },
    });
    const answer = await rotate(old.id, { gracePeriod: 3600 });
    assert.equal(answer.status, 200, answer.text);
    const fresh = answer.body as Metadata;
    assert.notEqual(fresh.id, old.id);
    assert.match(fresh.token ?? '', /^sk\./);
    assert.notEqual(fresh.token, old.token);
    for (const field of ['usage', 'note', 'scopes', 'allowedUrls', 'rateLimit'] as const) {
      assert.deepEqual(fresh[field], old[field], field);
    }
    const graceUntil = new Date(clock.now() + 3_600_000).toISOString();
    assert.equal(fresh.rotatedFrom, old.id);
    assert.equal(fresh.graceUntil, graceUntil);
    assert.equal(fresh.expiresAt, undefined, 'the new token keeps the old one’s expiry: none');

    const listed = await tokensOf(server, 'rota');
    const oldListed = listed.find((token) => token.id === old.id) as Metadata | undefined;
    assert.equal(oldListed?.rotatedTo, fresh.id, 'the old token stays listed, naming its replacement');
    assert.equal(oldListed?.graceUntil, graceUntil);
    assert.equal(oldListed?.expiresAt, graceUntil);
    assert.equal(
      (listed.find((token) => token.id === fresh.id) as Metadata | undefined)?.token,
      undefined,
      'a secret token is shown once',
    );

    assert.equal(await code(old.token as string), 'TokenValid');
    assert.equal(await code(fresh.token as string), 'TokenValid');
    clock.advance(3_600_000);
    assert.equal(await code(old.token as string), 'TokenExpired', 'refused from graceUntil on');
    assert.equal(await code(fresh.token as string), 'TokenValid');
    clock.advance(-3_600_000);
  });

  test('forward-auth lets the old token through during the grace period, not after', async () => {
    const old = await create({ note: 'tiles', scopes: ['styles:read'] });
    const fresh = (await rotate(old.id, { gracePeriod: 60 })).body as Metadata;
    const path = '/styles/v1/rota/streets';
    assert.equal((await verifyNginx(server, withToken(path, old.token as string))).status, 200);
    clock.advance(60_000);
    const after = await verifyNginx(server, withToken(path, old.token as string));
    assert.equal(after.status, 401);
    assert.equal(after.headers.get('x-tessera-reason'), 'expired');
    assert.equal((await verifyNginx(server, withToken(path, fresh.token as string))).status, 200);
    clock.advance(-60_000);
  });

  test('gracePeriod 0: the old token is refused at once', async () => {
    const old = await create({ note: 'now', scopes: ['styles:read'] });
    const fresh = (await rotate(old.id, { gracePeriod: 0 })).body as Metadata;
    assert.equal(await code(old.token as string), 'TokenExpired');
    assert.equal(await code(fresh.token as string), 'TokenValid');
  });

  test('the default token is rotated only by a token holding its scopes, and one that outlives it', async () => {
    const [current] = (await api(server, 'GET', '/tokens/v2/rota?default=true', { token: owner.adminToken }))
      .body as Metadata[];
    const narrow = await create({ note: 'narrow', scopes: ['tokens:write'] });
    assertError(
      await rotate(current?.id as string, { gracePeriod: 0 }, narrow.token),
      403,
      'the authorizing token does not hold every scope of this token',
    );
    const expiring = await create({
      note: 'expiring',
      scopes: ['tokens:write', ...PUBLIC_SCOPES, 'styles:write'],
      expiresAt: new Date(clock.now() + 3_600_000).toISOString(),
    });
    assertError(
      await rotate(current?.id as string, { gracePeriod: 0 }, expiring.token),
      422,
      'expiresAt may not be later than the expiration of the authorizing token',
    );
    const never = await create({ note: 'never', scopes: ['styles:write'] });
    assertError(
      await rotate(never.id, { gracePeriod: 0 }, expiring.token),
      422,
      'expiresAt may not be later than the expiration of the authorizing token',
    );
    assert.equal(await code(never.token as string), 'TokenValid', 'nothing changed');
  });

  test('the default public token rotates too, and its replacement becomes the default', async () => {
    const [before] = (await api(server, 'GET', '/tokens/v2/rota?default=true', { token: owner.adminToken }))
      .body as Metadata[];
    const answer = await rotate(before?.id as string, { gracePeriod: 86_400 });
    assert.equal(answer.status, 200, answer.text);
    const fresh = answer.body as Metadata;
    assert.equal(fresh.default, true);
    const defaults = (await api(server, 'GET', '/tokens/v2/rota?default=true', { token: owner.adminToken }))
      .body as Metadata[];
    assert.deepEqual(
      defaults.map((token) => token.id),
      [fresh.id],
    );
    const old = (await tokensOf(server, 'rota')).find((token) => token.id === before?.id) as Metadata;
    assert.equal(old.default, false);
    assert.equal(old.rotatedTo, fresh.id);
    assert.equal(
      await code(owner.defaultToken),
      'TokenValid',
      'the old default works during the grace period',
    );
  });

  test('the change is in the audit log with the replacement and the grace period', async () => {
    const old = await create({ note: 'audited', scopes: ['styles:read'] });
    const fresh = (await rotate(old.id, { gracePeriod: 120 })).body as Metadata;
    const [event] = (await api(server, 'GET', '/audit/v1/rota?limit=1', { token: owner.adminToken }))
      .body as Array<{
      action: string;
      target: string;
      details: Record<string, unknown>;
    }>;
    assert.equal(event?.action, 'token.rotate');
    assert.equal(event?.target, old.id);
    assert.deepEqual(event?.details, {
      replacement: fresh.id,
      gracePeriod: 120,
      graceUntil: fresh.graceUntil,
    });
  });
});

describe('what rotation refuses', () => {
  test('a bad gracePeriod or any other field answers 422, and nothing changes', async () => {
    const token = await create({ note: 'keep', scopes: ['styles:read'] });
    for (const body of [
      {},
      { gracePeriod: -1 },
      { gracePeriod: 604_801 },
      { gracePeriod: 1.5 },
      { gracePeriod: '60' },
    ]) {
      assertError(
        await rotate(token.id, body),
        422,
        'gracePeriod must be an integer number of seconds from 0 to 604800',
      );
    }
    assertError(
      await rotate(token.id, { gracePeriod: 60, note: 'x' }),
      422,
      'the body takes only gracePeriod',
    );
    assertError(await rotate(token.id, [60]), 400, 'request body must be a JSON object');
    const listed = (await tokensOf(server, 'rota')).find((item) => item.id === token.id) as Metadata;
    assert.equal(listed.rotatedTo, undefined);
    assert.equal(await code(token.token as string), 'TokenValid');
  });

  test('a rotated token is not rotated or changed again; its replacement is', async () => {
    const old = await create({ note: 'twice', scopes: ['styles:read'] });
    const fresh = (await rotate(old.id, { gracePeriod: 60 })).body as Metadata;
    assertError(
      await rotate(old.id, { gracePeriod: 60 }),
      422,
      'this token was rotated already: rotate its replacement instead',
    );
    assertError(
      await api(server, 'PATCH', `/tokens/v2/rota/${old.id}`, {
        token: owner.adminToken,
        json: { expiresAt: null },
      }),
      422,
      'this token was rotated: change its replacement instead',
    );
    assert.equal((await rotate(fresh.id, { gracePeriod: 60 })).status, 200);
    // Deleting a token in its grace period ends it at once.
    assert.equal(
      (await api(server, 'DELETE', `/tokens/v2/rota/${old.id}`, { token: owner.adminToken })).status,
      204,
    );
    assert.equal(await code(old.token as string), 'TokenRevoked');
  });

  test('two rotations of one token at once: exactly one wins', async () => {
    const token = await create({ note: 'race', scopes: ['styles:read'] });
    const answers = await Promise.all(Array.from({ length: 5 }, () => rotate(token.id, { gracePeriod: 60 })));
    assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 422, 422, 422, 422]);
    const children = (await tokensOf(server, 'rota')).filter(
      (item) => (item as Metadata).rotatedFrom === token.id,
    );
    assert.equal(children.length, 1);
  });

  test('a weaker token cannot rotate a stronger one; a temporary token cannot rotate at all', async () => {
    const strong = await create({ note: 'strong', scopes: ['styles:write'] });
    const weak = await create({ note: 'weak', scopes: ['tokens:write'] });
    assertError(
      await rotate(strong.id, { gracePeriod: 0 }, weak.token),
      403,
      'the authorizing token does not hold every scope of this token',
    );
    const temporary = await api(server, 'POST', '/tokens/v2/rota', {
      token: owner.adminToken,
      json: {
        expires: new Date(clock.now() + 600_000).toISOString(),
        scopes: ['tokens:write', 'styles:write'],
      },
    });
    const tk = (temporary.body as { token: string }).token;
    assertError(
      await rotate(strong.id, { gracePeriod: 0 }, tk),
      403,
      'temporary tokens cannot rotate tokens',
    );
    assertError(await rotate('c'.padEnd(25, '0'), { gracePeriod: 0 }), 404, 'Not found');
    const other = await createTestAccount(server.services, 'elsewhere', SCOPES);
    assertError(await rotate(strong.id, { gracePeriod: 0 }, other.adminToken), 404, 'Not found');
    assert.equal(await code(strong.token as string), 'TokenValid');
  });

  test('an expired token cannot be rotated', async () => {
    const token = await create({
      note: 'short',
      scopes: ['styles:read'],
      expiresAt: new Date(clock.now() + 1000).toISOString(),
    });
    clock.advance(1000);
    assertError(await rotate(token.id, { gracePeriod: 0 }), 422, 'an expired token cannot be rotated');
    clock.advance(-1000);
  });
});

test('tessera tokens rotate: the operator rotates from the command line', async () => {
  const token = await create({ note: 'cli', scopes: ['styles:read'] });
  const env = { TESSERA_DATA_DIR: server.dataDir };
  const missing = await runCli(['tokens', 'rotate', 'rota', token.id], { env });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--grace <seconds> is required/);
  const run = await runCli(['tokens', 'rotate', 'rota', token.id, '--grace', '300'], { env });
  assert.equal(run.code, 0, run.stderr);
  const fresh = JSON.parse(run.stdout) as Metadata;
  assert.equal(fresh.rotatedFrom, token.id);
  assert.match(fresh.token ?? '', /^pk\./);
  const audit = await server.services.store.listAudit({ username: 'rota', limit: 1 });
  assert.equal(audit?.[0]?.action, 'token.rotate');
  assert.equal(audit?.[0]?.channel, 'cli');
});

import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { api, assertError } from './helpers/api.ts';
import {
  createTestAccount,
  startConfiguredServer,
  type TestAccount,
  type TestServer,
} from './helpers/server.ts';

/** The pattern docs/leaks.md gives secret scanners; the test proves Tessera's tokens match it. */
const SCANNER_PATTERN = /\b(?:pk|sk)\.eyJ1Ijoi[A-Za-z0-9]+\.[A-Za-z0-9]{49}\b/;

let server: TestServer;
let unconfigured: TestServer;
let owner: TestAccount;
let signingKey: KeyObject;
const KEY_ID = 'github-test-key-1';

before(async () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  signingKey = pair.privateKey;
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  server = await startConfiguredServer({
    limits: { tokensApi: { limit: 100_000, interval: 60 } },
    leaks: { github: { publicKeys: [{ id: KEY_ID, key: publicPem }] } },
  });
  unconfigured = await startConfiguredServer({});
  owner = await createTestAccount(server.services, 'leaky', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'styles:write',
  ]);
});
after(async () => {
  await server?.close();
  await unconfigured?.close();
});

async function create(scopes: string[]): Promise<{ id: string; token: string }> {
  const answer = await api(server, 'POST', '/tokens/v2/leaky', { token: owner.adminToken, json: { scopes } });
  assert.equal(answer.status, 200, answer.text);
  return answer.body as { id: string; token: string };
}

function github(target: TestServer, body: string, headers: Record<string, string> = {}) {
  const signature = sign('sha256', Buffer.from(body), signingKey).toString('base64');
  return api(target, 'POST', '/leaks/v1/github', {
    body,
    headers: {
      'content-type': 'application/json',
      'github-public-key-identifier': KEY_ID,
      'github-public-key-signature': signature,
      ...headers,
    },
  });
}

async function code(token: string): Promise<string> {
  return ((await api(server, 'GET', '/tokens/v2', { token })).body as { code: string }).code;
}

describe('GitHub secret scanning partner endpoint', () => {
  test('a leaked secret token is revoked at once, a public one flagged, anything else is a false positive', async () => {
    const secret = await create(['styles:write']);
    const publicToken = await create(['styles:read']);
    assert.match(secret.token, SCANNER_PATTERN);
    assert.match(publicToken.token, SCANNER_PATTERN);
    const forged = `${secret.token.slice(0, -6)}AAAAAA`;
    const body = JSON.stringify([
      {
        token: secret.token,
        type: 'tessera_secret_token',
        url: 'https://github.com/o/r/blob/x/.env',
        source: 'content',
      },
      {
        token: publicToken.token,
        type: 'tessera_public_token',
        url: 'https://github.com/o/r/blob/x/app.js',
        source: 'content',
      },
      {
        token: forged,
        type: 'tessera_secret_token',
        url: 'https://github.com/o/r/blob/x/a',
        source: 'content',
      },
      {
        token: 'sk.not-a-token',
        type: 'tessera_secret_token',
        url: 'https://github.com/o/r/blob/x/b',
        source: 'content',
      },
    ]);
    const answer = await github(server, body);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, [
      { token_raw: secret.token, token_type: 'tessera_secret_token', label: 'true_positive' },
      { token_raw: publicToken.token, token_type: 'tessera_public_token', label: 'true_positive' },
      { token_raw: forged, token_type: 'tessera_secret_token', label: 'false_positive' },
      { token_raw: 'sk.not-a-token', token_type: 'tessera_secret_token', label: 'false_positive' },
    ]);
    assert.equal(await code(secret.token), 'TokenRevoked', 'the secret token no longer works');
    assert.equal(await code(publicToken.token), 'TokenValid', 'a public token keeps working');
    const listed = (await api(server, 'GET', '/tokens/v2/leaky', { token: owner.adminToken })).body as Array<{
      id: string;
      leakedAt?: string;
    }>;
    assert.match(listed.find((token) => token.id === publicToken.id)?.leakedAt ?? '', /^\d{4}-\d\d-\d\dT/);
    const events = await server.services.store.listAudit({ username: 'leaky', limit: 2 });
    assert.deepEqual(
      events?.map((event) => [
        event.action,
        event.target,
        event.actor,
        event.channel,
        event.details?.['response'],
      ]),
      [
        ['token.leak', publicToken.id, 'system:github-secret-scanning', 'system', 'flagged'],
        ['token.leak', secret.id, 'system:github-secret-scanning', 'system', 'revoked'],
      ],
    );
    assert.equal(events?.[1]?.details?.['url'], 'https://github.com/o/r/blob/x/.env');
    assert.ok(!JSON.stringify(events).includes(secret.token), 'the log never holds the token');
  });

  test('the same report again changes nothing and is still a true positive', async () => {
    const secret = await create(['styles:write']);
    const body = JSON.stringify([{ token: secret.token, type: 't', url: 'u', source: 'content' }]);
    await github(server, body);
    const again = await github(server, body);
    assert.equal((again.body as Array<{ label: string }>)[0]?.label, 'true_positive');
    const leaks = (await server.services.store.listAudit({ username: 'leaky', limit: 100 }))?.filter(
      (event) => event.action === 'token.leak' && event.target === secret.id,
    );
    assert.equal(leaks?.length, 1);
  });

  test('a missing, unknown or wrong signature answers 401 and nothing is revoked', async () => {
    const secret = await create(['styles:write']);
    const body = JSON.stringify([{ token: secret.token, type: 't', url: 'u', source: 'content' }]);
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const cases: Array<Record<string, string>> = [
      { 'github-public-key-signature': '' },
      { 'github-public-key-identifier': 'unknown' },
      { 'github-public-key-signature': sign('sha256', Buffer.from(body), otherKey).toString('base64') },
      {
        'github-public-key-signature': sign('sha256', Buffer.from(`${body} `), signingKey).toString('base64'),
      },
      { 'github-public-key-signature': 'not base64!' },
    ];
    for (const headers of cases) {
      const answer = await github(server, body, headers);
      assert.equal(answer.status, 401, JSON.stringify(headers));
      assert.match((answer.body as { message: string }).message, /signature/);
    }
    assert.equal(await code(secret.token), 'TokenValid');
  });

  test('signed bodies that are not a list of matches answer 4xx with a message', async () => {
    for (const body of ['{}', '[]', '[{"type":"t"}]', '[{"token":5,"type":"t"}]']) {
      const answer = await github(server, body);
      assert.equal(answer.status, 422, body);
      assert.ok((answer.body as { message: string }).message.length > 0);
    }
    assert.equal((await github(server, '[{"token":')).status, 400);
  });

  test('without configured keys the endpoint does not exist', async () => {
    assertError(await github(unconfigured, '[]'), 404, 'Not found');
  });
});

describe('report endpoint', () => {
  test('any valid token of the account reports another: a secret one is revoked, a public one flagged', async () => {
    const secret = await create(['styles:write']);
    const publicToken = await create(['styles:read']);
    assertError(
      await api(server, 'POST', '/leaks/v1/report', {
        token: owner.defaultToken,
        json: { token: secret.token },
      }),
      403,
      'reporting a leak takes a secret (sk) or temporary token of the account',
    );
    assert.equal(await code(secret.token), 'TokenValid', 'a public token cannot report');
    const revoked = await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: secret.token, url: 'https://pastebin.example/abc' },
    });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual(revoked.body, { id: secret.id, action: 'revoked' });
    assert.equal(await code(secret.token), 'TokenRevoked');
    const flagged = await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: publicToken.token },
    });
    assert.deepEqual(flagged.body, { id: publicToken.id, action: 'flagged' });
    const [event] = (await server.services.store.listAudit({ username: 'leaky', limit: 1 })) ?? [];
    assert.equal(event?.action, 'token.leak');
    assert.equal(event?.channel, 'api');
    assert.match(event?.actor ?? '', /^token:c/);
    const sneaky = await create(['styles:write']);
    await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: sneaky.token, url: `https://paste.example/x?t=${owner.adminToken}` },
    });
    const [recorded] = (await server.services.store.listAudit({ username: 'leaky', limit: 1 })) ?? [];
    assert.equal(recorded?.details?.['url'], 'https://paste.example/x?t=[REDACTED]', 'no token in the log');
    // Glued to other text, or with its dots percent-encoded, it is still a token.
    const glued = await create(['styles:write']);
    await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: {
        token: glued.token,
        url: `https://paste.example/x?a=x_${owner.adminToken}&b=${owner.adminToken.replaceAll('.', '%2E')}`,
      },
    });
    const [gluedEvent] = (await server.services.store.listAudit({ username: 'leaky', limit: 1 })) ?? [];
    assert.equal(gluedEvent?.details?.['url'], 'https://paste.example/x?a=x_[REDACTED]&b=[REDACTED]');
    await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: (await create(['styles:write'])).token, url: 'javascript:alert(1)' },
    });
    const [unsafe] = (await server.services.store.listAudit({ username: 'leaky', limit: 1 })) ?? [];
    assert.equal(unsafe?.details?.['url'], undefined, 'only http(s) URLs are recorded');
    const again = await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: secret.token },
    });
    assert.deepEqual(again.body, { id: secret.id, action: 'none' });
  });

  test('a replacement the leaked token rotated itself into is revoked with it; the owner’s rotation is kept', async () => {
    const leaked = await create(['tokens:write', 'styles:write']);
    const sneaky = await api(server, 'POST', `/tokens/v2/leaky/${leaked.id}/rotate`, {
      token: leaked.token,
      json: { gracePeriod: 604_800 },
    });
    assert.equal(sneaky.status, 200, sneaky.text);
    const successor = sneaky.body as { id: string; token: string };
    const report = await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: leaked.token },
    });
    assert.deepEqual(report.body, { id: leaked.id, action: 'revoked' });
    assert.equal(
      await code(successor.token),
      'TokenRevoked',
      'the successor the leaked token made is gone too',
    );
    const owned = await create(['styles:write']);
    const rotated = (
      await api(server, 'POST', `/tokens/v2/leaky/${owned.id}/rotate`, {
        token: owner.adminToken,
        json: { gracePeriod: 60 },
      })
    ).body as { id: string; token: string };
    await api(server, 'POST', '/leaks/v1/report', { token: owner.adminToken, json: { token: owned.token } });
    assert.equal(await code(owned.token), 'TokenRevoked');
    assert.equal(await code(rotated.token), 'TokenValid', 'a rotation by the owner is kept');
  });

  test('a token of another account, or no token at all, is not accepted', async () => {
    const other = await createTestAccount(server.services, 'bystander', ['styles:write']);
    const mine = await create(['styles:write']);
    assertError(
      await api(server, 'POST', '/leaks/v1/report', { token: other.adminToken, json: { token: mine.token } }),
      422,
      'token is not a token of this account',
    );
    assert.equal(await code(mine.token), 'TokenValid');
    assertError(
      await api(server, 'POST', '/leaks/v1/report', { json: { token: mine.token } }),
      401,
      'Unauthorized',
    );
    assertError(
      await api(server, 'POST', '/leaks/v1/report', {
        token: owner.adminToken,
        json: { token: mine.token, x: 1 },
      }),
      422,
      'the body takes only token and url',
    );
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { issuePersistentToken } from '../src/core/token-format.ts';
import { type ApiResponse, api } from './helpers/api.ts';
import {
  assertAllowed,
  assertInvalidToken,
  assertRefused,
  type CreatedToken,
  createApiToken,
  startForwardAuthServer,
  verifyNginx,
  withToken,
} from './helpers/forward-auth.ts';
import { createTestAccount, ManualClock, type TestAccount, type TestServer } from './helpers/server.ts';

const MINUTE = 60_000;
const STYLE = '/styles/v1/carol/streets';
const FONT = '/fonts/v1/carol/Roboto/0-255.pbf';
const random = { bytes: (length: number) => new Uint8Array(randomBytes(length)) };

const clock = new ManualClock();
let server: TestServer;
let owner: TestAccount;

before(async () => {
  server = await startForwardAuthServer({
    clock,
    config: { limits: { scopes: { 'fonts:read': { limit: 3, interval: 60 } } } },
  });
  owner = await createTestAccount(server.services, 'carol', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'fonts:read',
  ]);
});
after(() => server.close());

function create(json: Readonly<Record<string, unknown>>): Promise<CreatedToken> {
  return createApiToken(server, 'carol', owner.adminToken, json);
}

function pk(token: CreatedToken) {
  return { username: 'carol', tokenId: token.id, usage: 'pk' } as const;
}

function style(token: string, options: { readonly authQuery?: string } = {}): Promise<ApiResponse> {
  return verifyNginx(server, withToken(STYLE, token), options);
}

function font(token: string, options: { readonly authQuery?: string } = {}): Promise<ApiResponse> {
  return verifyNginx(server, withToken(FONT, token), options);
}

describe('allowed', () => {
  test('200 with the identity headers and an empty body, for pk, sk and tk', async () => {
    const reader = await create({ scopes: ['styles:read'] });
    const allowed = await style(reader.token);
    assertAllowed(allowed, pk(reader));
    assert.equal(allowed.headers.get('content-length'), '0');
    assert.equal(allowed.headers.get('cache-control'), 'no-store');

    const secret = await create({ scopes: ['styles:read', 'tokens:write'] });
    assert.equal(secret.usage, 'sk');
    assertAllowed(await style(secret.token), { username: 'carol', tokenId: secret.id, usage: 'sk' });

    const minted = await api(server, 'POST', '/tokens/v2/carol', {
      token: owner.adminToken,
      json: { expires: new Date(clock.now() + 10 * MINUTE).toISOString(), scopes: ['styles:read'] },
    });
    assert.equal(minted.status, 200, minted.text);
    const { token: tk } = minted.body as { token: string };
    assertAllowed(await style(tk), { username: 'carol', usage: 'tk' });
    assertRefused(await font(tk), 403, 'scope');
  });
});

describe('401: no usable token', () => {
  test('missing: a plain Bearer challenge without an error code', async () => {
    const response = await verifyNginx(server, STYLE);
    assertRefused(response, 401, 'missing');
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="tessera"');
    const empty = await verifyNginx(server, `${STYLE}?access_token=`);
    assertRefused(empty, 401, 'missing');
  });

  test('malformed: not three parts, unknown prefix, broken payload, bad checksum', async () => {
    const reader = await create({ scopes: ['styles:read'] });
    const [, payload, secret] = reader.token.split('.') as [string, string, string];
    for (const token of [
      'hello',
      'pk.abc',
      `xk.${payload}.${secret}`,
      `PK.${payload}.${secret}`,
      `pk.${payload}`,
      `pk.${payload}.${secret}.extra`,
      `pk.${payload}!.${secret}`,
      `${reader.token} `,
    ]) {
      assertInvalidToken(await style(token), 'malformed');
    }
    // One flipped character in the secret fails the checksum: invalid without a lookup.
    const flipped = `pk.${payload}.${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
    assertInvalidToken(await style(flipped), 'invalid');
  });

  test('unknown token and wrong secret: both invalid, with the same answer', async () => {
    const reader = await create({ scopes: ['styles:read'] });
    const unknown = issuePersistentToken(
      { usage: 'pk', username: 'carol', tokenId: `c${'0'.repeat(24)}` },
      random,
    );
    const wrongSecret = issuePersistentToken({ usage: 'pk', username: 'carol', tokenId: reader.id }, random);
    const asSecret = reader.token.replace(/^pk\./, 'sk.');
    const otherUser = issuePersistentToken({ usage: 'pk', username: 'dave', tokenId: reader.id }, random);
    const answers = [];
    for (const token of [unknown, wrongSecret, asSecret, otherUser]) {
      const response = await style(token);
      assertInvalidToken(response, 'invalid');
      answers.push(response.text);
    }
    assert.equal(new Set(answers).size, 1, 'one body for every invalid token');
    assertAllowed(await style(reader.token), pk(reader));
  });

  test('revoked: a deleted token', async () => {
    const reader = await create({ scopes: ['styles:read'] });
    assertAllowed(await style(reader.token), pk(reader));
    const deleted = await api(server, 'DELETE', `/tokens/v2/carol/${reader.id}`, { token: owner.adminToken });
    assert.equal(deleted.status, 204);
    assertInvalidToken(await style(reader.token), 'revoked');
  });

  test('expired: a pk past its expiresAt, and a tk past its exp (clock moved forward)', async () => {
    const expiring = await create({
      scopes: ['styles:read'],
      expiresAt: new Date(clock.now() + 5 * MINUTE).toISOString(),
    });
    const minted = await api(server, 'POST', '/tokens/v2/carol', {
      token: owner.adminToken,
      json: { expires: new Date(clock.now() + 2 * MINUTE).toISOString(), scopes: ['styles:read'] },
    });
    const { token: tk } = minted.body as { token: string };
    assertAllowed(await style(expiring.token), pk(expiring));
    assertAllowed(await style(tk), { username: 'carol', usage: 'tk' });

    clock.advance(3 * MINUTE);
    assertAllowed(await style(expiring.token), pk(expiring));
    assertInvalidToken(await style(tk), 'expired');

    clock.advance(3 * MINUTE);
    const response = await style(expiring.token);
    assertInvalidToken(response, 'expired');
    assert.deepEqual(response.body, { message: 'The access token has expired' });
  });
});

describe('403: a good token that may not do this', () => {
  test('scope: insufficient_scope challenge; URL restriction: no challenge', async () => {
    const fonts = await create({ scopes: ['fonts:read'] });
    const scope = await style(fonts.token);
    assertRefused(scope, 403, 'scope');
    assert.equal(scope.headers.get('www-authenticate'), 'Bearer realm="tessera", error="insufficient_scope"');

    const restricted = await create({ scopes: ['styles:read'], allowedUrls: ['https://app.example.com'] });
    const url = await style(restricted.token);
    assertRefused(url, 403, 'url');
    assert.equal(url.headers.get('www-authenticate'), null);
    assert.deepEqual(url.body, { message: 'This token is not allowed from this URL' });
  });
});

describe('429: rate limits', () => {
  test("a token's own rateLimit: X-Rate-Limit-* on every answer, then 429 with Retry-After", async () => {
    const limited = await create({ scopes: ['styles:read'], rateLimit: { limit: 2, interval: 60 } });
    const first = await style(limited.token);
    assertAllowed(first, pk(limited));
    assert.equal(first.headers.get('x-rate-limit-limit'), '2');
    assert.equal(first.headers.get('x-rate-limit-interval'), '60');
    assert.equal(first.headers.get('x-rate-limit-remaining'), '1');
    const reset = Number(first.headers.get('x-rate-limit-reset'));
    assert.ok(reset > clock.now() / 1000 && reset <= clock.now() / 1000 + 60, `reset ${reset}`);
    assert.equal((await style(limited.token)).headers.get('x-rate-limit-remaining'), '0');

    const refused = await style(limited.token);
    assertRefused(refused, 429, 'rate_limited');
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `Retry-After ${retryAfter}`,
    );
    assert.equal(refused.headers.get('x-rate-limit-limit'), '2');
    assert.equal(refused.headers.get('x-rate-limit-remaining'), '0');
    assert.equal(refused.headers.get('x-rate-limit-reset'), String(reset));

    // For nginx, whose auth_request turns a 429 into a 500: the same refusal as a 403.
    const asForbidden = await style(limited.token, { authQuery: '?rate_limit_status=403' });
    assertRefused(asForbidden, 403, 'rate_limited');
    assert.equal(asForbidden.headers.get('retry-after') !== null, true);

    clock.advance(retryAfter * 1000);
    assertAllowed(await style(limited.token), pk(limited));
  });

  test('an operator default per scope (limits.scopes) for tokens without their own', async () => {
    const a = await create({ scopes: ['fonts:read', 'styles:read'] });
    const b = await create({ scopes: ['fonts:read'] });
    const own = await create({ scopes: ['fonts:read'], rateLimit: { limit: 5, interval: 60 } });
    for (let i = 0; i < 3; i++) assertAllowed(await font(a.token), pk(a));
    const refused = await font(a.token);
    assertRefused(refused, 429, 'rate_limited');
    assert.equal(refused.headers.get('x-rate-limit-limit'), '3');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    // Counted per token, and only where the limited scope is required.
    assertAllowed(await font(b.token), pk(b));
    const styles = await style(a.token);
    assertAllowed(styles, pk(a));
    assert.equal(styles.headers.get('x-rate-limit-limit'), null);
    // A token's own rateLimit replaces the operator default.
    for (let i = 0; i < 5; i++) assertAllowed(await font(own.token), pk(own));
    assertRefused(await font(own.token), 429, 'rate_limited');
  });
});

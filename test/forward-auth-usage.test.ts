import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ApiResponse, api } from './helpers/api.ts';
import {
  assertAllowed,
  assertRefused,
  type CreatedToken,
  createApiToken,
  startForwardAuthServer,
  verifyNginx,
  withToken,
} from './helpers/forward-auth.ts';
import { createTestAccount, ManualClock, type TestAccount, type TestServer } from './helpers/server.ts';

// Every decision on a known token is counted per token, service (route group) and outcome.

const HOUR = 3_600_000;
const clock = new ManualClock(Date.UTC(2030, 0, 15, 10, 20, 30, 400));
let server: TestServer;
let owner: TestAccount;

before(async () => {
  server = await startForwardAuthServer({ clock });
  owner = await createTestAccount(server.services, 'grace', [
    'tokens:read',
    'tokens:write',
    'styles:read',
    'styles:tiles',
  ]);
});
after(() => server.close());

function create(json: Readonly<Record<string, unknown>>): Promise<CreatedToken> {
  return createApiToken(server, 'grace', owner.adminToken, json);
}

function send(
  path: string,
  token: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<ApiResponse> {
  return verifyNginx(server, withToken(path, token), { headers });
}

/** `service/outcome` -> count, over the hour the clock stands in. */
async function counts(tokenId?: string): Promise<Record<string, number>> {
  const start = Math.floor(clock.now() / HOUR) * HOUR;
  const rows = await server.services.store.usage({
    username: 'grace',
    ...(tokenId === undefined ? {} : { tokenId }),
    start: new Date(start).toISOString(),
    end: new Date(start + HOUR).toISOString(),
  });
  const result: Record<string, number> = {};
  for (const row of rows) {
    const key = `${row.service}/${row.outcome}`;
    result[key] = (result[key] ?? 0) + row.count;
  }
  return result;
}

test('allowed and refused decisions add up exactly per service and outcome; lastUsed is listed', async () => {
  const reader = await create({ note: 'reader', scopes: ['styles:read'] });
  const site = await create({
    note: 'site',
    scopes: ['styles:read'],
    allowedUrls: ['https://app.example.com'],
  });
  const limited = await create({
    note: 'limited',
    scopes: ['styles:tiles'],
    rateLimit: { limit: 2, interval: 60 },
  });
  const idle = await create({ note: 'idle', scopes: ['styles:tiles'] });

  const pk = (token: CreatedToken) => ({ username: 'grace', tokenId: token.id, usage: 'pk' }) as const;
  for (let i = 0; i < 3; i++) assertAllowed(await send('/styles/v1/grace/streets', reader.token), pk(reader));
  assertAllowed(await send('/geocoding/v5/mapbox.places/paris.json', reader.token), pk(reader));
  for (let i = 0; i < 2; i++)
    assertRefused(await send('/fonts/v1/grace/Roboto/0-255.pbf', reader.token), 403, 'scope');
  assertRefused(await send('/v4/mapbox.satellite/1/0/0.png', reader.token), 403, 'scope');
  assertRefused(await send('/not/a/route', reader.token), 403, 'scope');

  assertRefused(await send('/styles/v1/grace/streets', site.token), 403, 'url');
  assertRefused(
    await send('/styles/v1/grace/streets', site.token, { Origin: 'https://evil.com' }),
    403,
    'url',
  );
  const origin = { Origin: 'https://app.example.com' };
  assertAllowed(await send('/styles/v1/grace/streets', site.token, origin), pk(site));

  for (let i = 0; i < 2; i++)
    assertAllowed(await send('/v4/mapbox.satellite/1/0/0.png', limited.token), pk(limited));
  for (let i = 0; i < 3; i++)
    assertRefused(await send('/v4/mapbox.satellite/1/0/0.png', limited.token), 429, 'rate_limited');

  assertRefused(await send('/styles/v1/grace/streets', idle.token), 403, 'scope');
  // Requests without a known token are not anyone's usage.
  assertRefused(await verifyNginx(server, '/styles/v1/grace/streets'), 401, 'missing');
  assertRefused(await send('/styles/v1/grace/streets', 'pk.nonsense.token'), 401, 'malformed');

  const usedAt = clock.now();
  clock.advance(90_000);
  await server.services.usage.flush();

  assert.deepEqual(await counts(reader.id), {
    'styles/allowed': 3,
    'geocode/allowed': 1,
    'fonts/scope': 2,
    'tiles/scope': 1,
    'unknown/scope': 1,
  });
  assert.deepEqual(await counts(site.id), { 'styles/url': 2, 'styles/allowed': 1 });
  assert.deepEqual(await counts(limited.id), { 'tiles/allowed': 2, 'tiles/rate_limited': 3 });
  assert.deepEqual(await counts(idle.id), { 'styles/scope': 1 });
  assert.deepEqual(await counts(), {
    'styles/allowed': 4,
    'geocode/allowed': 1,
    'tiles/allowed': 2,
    'fonts/scope': 2,
    'tiles/scope': 1,
    'unknown/scope': 1,
    'styles/url': 2,
    'tiles/rate_limited': 3,
    'styles/scope': 1,
  });

  // A second flush adds nothing twice.
  await server.services.usage.flush();
  assert.equal((await counts(reader.id))['styles/allowed'], 3);

  const list = await api(server, 'GET', '/tokens/v2/grace', { token: owner.adminToken });
  assert.equal(list.status, 200, list.text);
  const byNote = new Map((list.body as { note: string; lastUsed?: string }[]).map((t) => [t.note, t]));
  const lastUsed = new Date(usedAt).toISOString();
  assert.equal(byNote.get('reader')?.lastUsed, lastUsed);
  assert.equal(byNote.get('site')?.lastUsed, lastUsed);
  assert.equal(byNote.get('limited')?.lastUsed, lastUsed);
  // Refusals are counted, but they are not a use of the token.
  assert.equal(byNote.get('idle')?.lastUsed, undefined);
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TokenMetadata } from '../src/core/tokens.ts';
import { api } from './helpers/api.ts';
import {
  createTestAccount,
  ManualClock,
  startTestServer,
  type TestAccount,
  type TestServer,
} from './helpers/server.ts';

interface UsageReport {
  readonly period: [string, string];
  readonly timestamps: string[];
  readonly services: Record<string, number[]>;
  readonly refused: Record<string, number[]>;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Every test moves the clock forward, never back: the day starts here, at 06:00 UTC. */
const DAY_START = Date.UTC(2027, 2, 10);
const clock = new ManualClock(DAY_START + 6 * HOUR);
let server: TestServer;

before(async () => {
  server = await startTestServer({ clock });
});
after(() => server.close());

/** Moves the clock forward to hh:mm on the test day. */
function setTime(hours: number, minutes = 0, ms = 0): number {
  const target = DAY_START + hours * HOUR + minutes * 60_000 + ms;
  assert.ok(target >= clock.now(), 'the clock only moves forward');
  clock.advance(target - clock.now());
  return target;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** An account whose admin token holds `analytics:read` (and `tokens:read`, to list its tokens). */
function account(name: string): Promise<TestAccount> {
  return createTestAccount(server.services, name, ['analytics:read', 'tokens:read']);
}

async function publicToken(
  username: string,
  options: { readonly scopes?: string[]; readonly allowedUrls?: string[] } = {},
): Promise<{ readonly id: string; readonly token: string }> {
  const created = await server.services.tokens.create({ kind: 'operator' }, username, {
    note: 'traffic',
    scopes: options.scopes ?? ['styles:read', 'fonts:read'],
    allowedUrls: options.allowedUrls ?? null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  });
  assert.ok(created.token);
  return { id: created.id, token: created.token };
}

/** One forward-auth decision, as nginx asks for it. Returns the status. */
async function verify(
  token: string,
  path: string,
  options: { readonly query?: string; readonly origin?: string } = {},
): Promise<number> {
  const headers: Record<string, string> = {
    'X-Original-URI': `${path}?access_token=${token}`,
    'X-Original-Method': 'GET',
  };
  if (options.origin !== undefined) headers.Origin = options.origin;
  const response = await fetch(`${server.url}/auth/verify${options.query ?? ''}`, { headers });
  await response.arrayBuffer();
  return response.status;
}

async function verifyTimes(times: number, expected: number, ...args: Parameters<typeof verify>) {
  for (let index = 0; index < times; index++) assert.equal(await verify(...args), expected);
}

async function usage(owner: TestAccount, query = '', token = owner.adminToken): Promise<UsageReport> {
  const response = await api(server, 'GET', `/usage/v1/${owner.username}${query}`, { token });
  assert.equal(response.status, 200, response.text);
  return response.body as UsageReport;
}

/** The last `n` entries of each series: the recent buckets of a default range. */
function tail(series: Record<string, number[]>, n: number): Record<string, number[]> {
  return Object.fromEntries(Object.entries(series).map(([key, counts]) => [key, counts.slice(-n)]));
}

async function assertError(
  owner: TestAccount,
  query: string,
  status: number,
  message: string,
  token = owner.adminToken,
): Promise<void> {
  const response = await api(server, 'GET', `/usage/v1/${owner.username}${query}`, { token });
  assert.equal(response.status, status, `${query}: ${response.text}`);
  assert.deepEqual(response.body, { message }, query);
}

test('counts allowed requests per service and refused ones per reason, in the hour they happened', async () => {
  setTime(6, 30);
  const owner = await account('counts');
  const open = await publicToken('counts');
  const restricted = await publicToken('counts', { allowedUrls: ['https://app.example.com'] });

  await verifyTimes(3, 200, open.token, '/styles/v1/counts/streets');
  await verifyTimes(2, 200, open.token, '/fonts/v1/counts/Roboto/0-255.pbf');
  // The scope from the auth URL: counted under the service `api`, or the one named by `service`.
  await verifyTimes(1, 200, open.token, '/styles/v1/x', { query: '?scope=styles:read' });
  await verifyTimes(2, 200, open.token, '/anything', { query: '?scope=fonts:read&service=maps' });
  // Refusals: a scope the token lacks (route map and auth URL), a URL restriction.
  await verifyTimes(2, 403, open.token, '/datasets/v1/counts');
  await verifyTimes(1, 403, open.token, '/styles/v1/x', { query: '?scope=styles:write' });
  await verifyTimes(1, 200, restricted.token, '/styles/v1/counts/streets', {
    origin: 'https://app.example.com',
  });
  await verifyTimes(2, 403, restricted.token, '/styles/v1/counts/streets', {
    origin: 'https://evil.example',
  });
  await verifyTimes(1, 403, restricted.token, '/styles/v1/counts/streets');
  // Invalid tokens belong to no token of the account: not counted.
  await verifyTimes(
    1,
    401,
    `${open.token.slice(0, -1)}${open.token.endsWith('x') ? 'y' : 'x'}`,
    '/styles/v1/counts/streets',
  );
  await verifyTimes(1, 401, '', '/styles/v1/counts/streets');
  await server.services.usage.flush();

  const report = await usage(owner, '?period=hour');
  assert.equal(report.timestamps.length, 24);
  assert.equal(report.timestamps.at(-1), iso(DAY_START + 6 * HOUR));
  assert.deepEqual(report.period, [iso(DAY_START - 17 * HOUR), iso(DAY_START + 7 * HOUR)]);
  const zeros = new Array<number>(23).fill(0);
  assert.deepEqual(report.services, {
    styles: [...zeros, 4],
    fonts: [...zeros, 2],
    api: [...zeros, 1],
    maps: [...zeros, 2],
  });
  assert.deepEqual(report.refused, { scope: [...zeros, 3], url: [...zeros, 3] });
});

test('hour and day buckets across an hour boundary', async () => {
  setTime(7, 50);
  const owner = await account('buckets');
  const { token } = await publicToken('buckets');
  await verifyTimes(2, 200, token, '/styles/v1/buckets/streets');
  await verifyTimes(1, 403, token, '/uploads/v1/buckets');
  setTime(8, 10);
  await verifyTimes(3, 200, token, '/styles/v1/buckets/streets');
  await verifyTimes(4, 200, token, '/fonts/v1/buckets/Roboto/0-255.pbf');
  await server.services.usage.flush();

  const window = `&start=${iso(DAY_START + 7 * HOUR)}&end=${iso(DAY_START + 9 * HOUR)}`;
  const hourly = await usage(owner, `?period=hour${window}`);
  assert.deepEqual(hourly, {
    period: [iso(DAY_START + 7 * HOUR), iso(DAY_START + 9 * HOUR)],
    timestamps: [iso(DAY_START + 7 * HOUR), iso(DAY_START + 8 * HOUR)],
    services: { styles: [2, 3], fonts: [0, 4] },
    refused: { scope: [1, 0] },
  });

  const daily = await usage(owner, `?period=day${window}`);
  assert.deepEqual(daily, {
    period: [iso(DAY_START), iso(DAY_START + DAY)],
    timestamps: [iso(DAY_START)],
    services: { styles: [5], fonts: [4] },
    refused: { scope: [1] },
  });

  // Without period the answer is daily, like Mapbox's.
  assert.deepEqual(await usage(owner, `?${window.slice(1)}`), daily);
  // Start and end are widened to whole periods; a range inside one hour is that hour.
  const inside = await usage(
    owner,
    `?period=hour&start=${iso(DAY_START + 8 * HOUR + 60_000)}&end=${iso(DAY_START + 8 * HOUR + 120_000)}`,
  );
  assert.deepEqual(inside.timestamps, [iso(DAY_START + 8 * HOUR)]);
  assert.deepEqual(inside.services, { styles: [3], fonts: [4] });
  // Times with an offset are read as such: 10:00+02:00 is 08:00Z.
  const offset = await usage(
    owner,
    '?period=hour&start=2027-03-10T09:00:00%2B02:00&end=2027-03-10T10:00:00%2B02:00',
  );
  assert.deepEqual(offset.timestamps, [iso(DAY_START + 7 * HOUR)]);
  assert.deepEqual(offset.services, { styles: [2] });
});

test('default ranges: the last 24 hours or 30 days, up to and including the current period', async () => {
  // Exactly on the hour: the current hour is the last bucket, not the hour before.
  const now = setTime(9);
  const owner = await account('ranges');
  const { token } = await publicToken('ranges');
  await verifyTimes(2, 200, token, '/styles/v1/ranges/streets');
  await server.services.usage.flush();

  const hourly = await usage(owner, '?period=hour');
  assert.equal(hourly.timestamps.length, 24);
  assert.deepEqual(hourly.period, [iso(now - 23 * HOUR), iso(now + HOUR)]);
  assert.equal(hourly.timestamps[0], iso(now - 23 * HOUR));
  assert.equal(hourly.timestamps.at(-1), iso(now));
  assert.deepEqual(tail(hourly.services, 1), { styles: [2] });
  for (let index = 1; index < 24; index++) {
    assert.equal(
      Date.parse(hourly.timestamps[index] ?? '') - Date.parse(hourly.timestamps[index - 1] ?? ''),
      HOUR,
    );
  }

  const daily = await usage(owner, '?period=day');
  assert.equal(daily.timestamps.length, 30);
  assert.deepEqual(daily.period, [iso(DAY_START - 29 * DAY), iso(DAY_START + DAY)]);
  assert.equal(daily.timestamps.at(-1), iso(DAY_START));
  assert.deepEqual(daily.services, { styles: [...new Array<number>(29).fill(0), 2] });
  assert.deepEqual(daily.refused, {});

  // Only `end`: the default number of periods before it. Only `start`: up to now.
  const ending = await usage(owner, `?period=hour&end=${iso(now - 2 * HOUR)}`);
  assert.deepEqual(ending.period, [iso(now - 26 * HOUR), iso(now - 2 * HOUR)]);
  assert.deepEqual(ending.services, {});
  const starting = await usage(owner, `?period=hour&start=${iso(now - 3 * HOUR)}`);
  assert.deepEqual(starting.period, [iso(now - 3 * HOUR), iso(now + HOUR)]);
  assert.deepEqual(starting.services, { styles: [0, 0, 0, 2] });
});

test('counts from two flushes add up', async () => {
  setTime(10, 5);
  const owner = await account('flushes');
  const { token } = await publicToken('flushes');
  await verifyTimes(3, 200, token, '/styles/v1/flushes/streets');
  await verifyTimes(1, 403, token, '/uploads/v1/flushes');
  await server.services.usage.flush();
  assert.deepEqual(tail((await usage(owner, '?period=hour')).services, 1), { styles: [3] });

  setTime(10, 20);
  await verifyTimes(4, 200, token, '/styles/v1/flushes/streets');
  await verifyTimes(2, 403, token, '/uploads/v1/flushes');
  await server.services.usage.flush();
  // A flush with nothing counted changes nothing.
  await server.services.usage.flush();
  const report = await usage(owner, '?period=hour');
  assert.deepEqual(tail(report.services, 1), { styles: [7] });
  assert.deepEqual(tail(report.refused, 1), { scope: [3] });
});

test('the token filter reports one token of the account', async () => {
  setTime(11, 15);
  const owner = await account('filter');
  const first = await publicToken('filter');
  const second = await publicToken('filter', { allowedUrls: ['https://app.example.com'] });
  await verifyTimes(3, 200, first.token, '/styles/v1/filter/streets');
  await verifyTimes(1, 403, first.token, '/uploads/v1/filter');
  await verifyTimes(2, 200, second.token, '/styles/v1/filter/streets', { origin: 'https://app.example.com' });
  await verifyTimes(2, 403, second.token, '/styles/v1/filter/streets', { origin: 'https://app.example.org' });
  await server.services.usage.flush();

  const all = await usage(owner, '?period=hour');
  assert.deepEqual(tail(all.services, 1), { styles: [5] });
  assert.deepEqual(tail(all.refused, 1), { scope: [1], url: [2] });
  const one = await usage(owner, `?period=hour&token=${first.id}`);
  assert.deepEqual(tail(one.services, 1), { styles: [3] });
  assert.deepEqual(tail(one.refused, 1), { scope: [1] });
  const other = await usage(owner, `?period=hour&token=${second.id}`);
  assert.deepEqual(tail(other.services, 1), { styles: [2] });
  assert.deepEqual(tail(other.refused, 1), { url: [2] });
  // A token of the account that was never used: zeros, no series.
  const idle = await usage(owner, `?period=hour&token=${owner.adminTokenId}`);
  assert.equal(idle.timestamps.length, 24);
  assert.deepEqual(idle.services, {});
  assert.deepEqual(idle.refused, {});

  // Unknown, malformed and deleted token ids are 404 Not found.
  await assertError(owner, '?token=c000000000000000000000000', 404, 'Not found');
  await assertError(owner, '?token=not-a-token-id', 404, 'Not found');
  // A deleted token keeps its history, in the account's counts and on its own.
  await server.services.tokens.remove({ kind: 'operator' }, 'filter', second.id);
  assert.deepEqual(tail((await usage(owner, `?period=hour&token=${second.id}`)).services, 1), {
    styles: [2],
  });
  assert.deepEqual(tail((await usage(owner, '?period=hour')).services, 1), { styles: [5] });
});

test('accounts are isolated: another account’s token or token id answers 404', async () => {
  setTime(12, 0);
  const alice = await account('alice');
  const bob = await account('bob');
  const bobs = await publicToken('bob');
  await verifyTimes(2, 200, bobs.token, '/styles/v1/bob/streets');
  await server.services.usage.flush();

  // Bob's token id under Alice's account.
  await assertError(alice, `?token=${bobs.id}`, 404, 'Not found');
  await assertError(alice, `?token=${bob.adminTokenId}`, 404, 'Not found');
  // Alice's analytics token on Bob's account.
  await assertError(bob, '', 404, 'Not found', alice.adminToken);
  await assertError(bob, `?token=${bobs.id}`, 404, 'Not found', alice.adminToken);
  // Alice sees none of Bob's traffic.
  const own = await usage(alice, '?period=hour');
  assert.deepEqual(own.services, {});
  assert.deepEqual(tail((await usage(bob, '?period=hour')).services, 1), { styles: [2] });
  // An unknown account.
  await assertError({ ...alice, username: 'nobody' }, '', 404, 'No such user');
});

test('authentication and the analytics:read scope', async () => {
  const owner = await account('scoped');
  const withoutScope = await createTestAccount(server.services, 'noscope', ['tokens:read']);
  const account2 = await server.services.accounts.createAccount({
    username: 'plain',
    email: 'plain@example.com',
    password: 'correct horse battery staple',
  });
  // A token of the account without analytics:read: Not found (Mapbox's answer for a missing scope).
  await assertError(withoutScope, '', 404, 'Not found');
  await assertError({ ...owner, username: 'plain' }, '?period=hour', 404, 'Not found', account2.defaultToken);
  // No token, an invalid token: 401.
  const none = await api(server, 'GET', '/usage/v1/scoped');
  assert.equal(none.status, 401);
  assert.deepEqual(none.body, { message: 'Unauthorized' });
  // Another last character (never the same one): the checksum no longer matches.
  const last = owner.adminToken.at(-1) === 'x' ? 'y' : 'x';
  await assertError(owner, '', 401, 'Unauthorized', `${owner.adminToken.slice(0, -1)}${last}`);
  // Bearer works; two different tokens are 400.
  const bearer = await api(server, 'GET', '/usage/v1/scoped?period=hour', {
    headers: { Authorization: `Bearer ${owner.adminToken}` },
  });
  assert.equal(bearer.status, 200, bearer.text);
  const two = await api(server, 'GET', '/usage/v1/scoped', {
    token: owner.adminToken,
    headers: { Authorization: `Bearer ${withoutScope.adminToken}` },
  });
  assert.equal(two.status, 400);
  assert.deepEqual(two.body, { message: 'the request carries two different access tokens' });
});

test('each invalid query answers 422 with its message', async () => {
  const owner = await account('invalid');
  const now = clock.now();
  const at = (ms: number): string => encodeURIComponent(iso(ms));
  await assertError(owner, '?period=week', 422, 'period must be hour or day');
  await assertError(owner, '?period=', 422, 'period must be hour or day');
  await assertError(owner, '?start=yesterday', 422, 'start must be an ISO 8601 time');
  await assertError(owner, '?start=2027-03-10', 422, 'start must be an ISO 8601 time');
  await assertError(owner, '?end=1741600000000', 422, 'end must be an ISO 8601 time');
  await assertError(owner, '?end=2027-02-30T00:00:00Z', 422, 'end must be an ISO 8601 time');
  await assertError(owner, `?start=${at(now)}&end=${at(now - DAY)}`, 422, 'start must be before end');
  await assertError(owner, `?start=${at(now)}&end=${at(now)}`, 422, 'start must be before end');
  // Reversed within one period is still reversed.
  const hour = DAY_START + 5 * HOUR;
  await assertError(
    owner,
    `?period=hour&start=${at(hour + 40 * 60_000)}&end=${at(hour + 20 * 60_000)}`,
    422,
    'start must be before end',
  );
  // A start after now, without end.
  await assertError(owner, `?start=${at(now + 2 * DAY)}`, 422, 'start must be before end');
  await assertError(
    owner,
    `?period=hour&start=${at(DAY_START)}&end=${at(DAY_START + 745 * HOUR)}`,
    422,
    'the range may span at most 744 hours',
  );
  await assertError(
    owner,
    `?period=day&start=${at(DAY_START)}&end=${at(DAY_START + 367 * DAY)}`,
    422,
    'the range may span at most 366 days',
  );
  // The maxima themselves are fine.
  const longest = await usage(owner, `?period=hour&start=${at(DAY_START)}&end=${at(DAY_START + 744 * HOUR)}`);
  assert.equal(longest.timestamps.length, 744);
  const year = await usage(owner, `?period=day&start=${at(DAY_START)}&end=${at(DAY_START + 366 * DAY)}`);
  assert.equal(year.timestamps.length, 366);
});

test('lastUsed appears on the token after a flush, and only for allowed requests', async () => {
  const used = setTime(13, 7, 123);
  const owner = await account('lastused');
  const { id, token } = await publicToken('lastused');
  const refusedOnly = await publicToken('lastused', { scopes: ['fonts:read'] });
  await verifyTimes(1, 200, token, '/styles/v1/lastused/streets');
  await verifyTimes(2, 403, refusedOnly.token, '/styles/v1/lastused/streets');

  const list = async (): Promise<TokenMetadata[]> => {
    const response = await api(server, 'GET', '/tokens/v2/lastused', { token: owner.adminToken });
    assert.equal(response.status, 200, response.text);
    return response.body as TokenMetadata[];
  };
  const byId = (tokens: TokenMetadata[], tokenId: string) => tokens.find((entry) => entry.id === tokenId);
  assert.equal(byId(await list(), id)?.lastUsed, undefined, 'not before the flush');

  await server.services.usage.flush();
  assert.equal(byId(await list(), id)?.lastUsed, iso(used));
  assert.equal(byId(await list(), refusedOnly.id)?.lastUsed, undefined, 'refusals are not uses');

  // It moves forward with later use.
  const later = setTime(14, 1);
  await verifyTimes(1, 200, token, '/fonts/v1/lastused/Roboto/0-255.pbf');
  await server.services.usage.flush();
  const tokens = await list();
  assert.equal(byId(tokens, id)?.lastUsed, iso(later));
  // Calls to Tessera's own API are uses of the admin token (for the unused-token policy), moving its
  // lastUsed with the next flush, but they are not requests in its usage statistics.
  await server.services.usage.flush();
  assert.equal(byId(await list(), owner.adminTokenId)?.lastUsed, iso(later), 'API calls are uses');
  const report = await api(server, 'GET', `/usage/v1/lastused?period=hour&token=${owner.adminTokenId}`, {
    token: owner.adminToken,
  });
  assert.deepEqual((report.body as { services: object }).services, {}, 'but not counted requests');
});

/**
 * Brute force against the dashboard's password checks (issue item 5), counted where it matters: how
 * many real Argon2 verifications a flood gets evaluated. The server is the real one, on its own
 * SQLite database; only the Argon2 hasher is wrapped (through `createServices`' `passwordHasher`
 * option) so that each check that actually runs is counted. Timing is measured in bench/, not here;
 * the flood of random well-formed tokens (T72) is in garbage-without-store.test.ts.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, test } from 'node:test';
import { type Env, loadConfig } from '../src/config.ts';
import type { TokenMetadata } from '../src/core/tokens.ts';
import { startServer } from '../src/http/server.ts';
import type { Logger } from '../src/logging/logger.ts';
import { createServices } from '../src/services/create-services.ts';
import { argon2Hasher, type PasswordHasher } from '../src/services/passwords.ts';
import { api } from './helpers/api.ts';
import { DashboardClient, type Page } from './helpers/dashboard.ts';
import { recordFigures } from './helpers/figures.ts';
import {
  createTestAccount,
  ManualClock,
  type TestAccount,
  type TestServer,
  tempDataDir,
} from './helpers/server.ts';

const WRONG = 'not the right password';
const RIGHT = 'correct horse battery staple';
const FREE_FAILURES = 5;
const CONFIRM_LIMIT = 5;
const CLIENT_BUDGET = 50;
const ONE_MB = 1024 * 1024;

interface Counts {
  verifications: number;
  hashes: number;
}

interface World {
  readonly server: TestServer;
  readonly clock: ManualClock;
  readonly counts: Counts;
  readonly logs: { readonly level: string; readonly message: string }[];
}

let world: World | undefined;
afterEach(async () => {
  await world?.server.close();
  world = undefined;
});

/** The real Argon2 hasher, counting the checks that actually run (after the process's queue bound). */
function countingHasher(counts: Counts): PasswordHasher {
  return {
    hash: (password) => {
      counts.hashes += 1;
      return argon2Hasher.hash(password);
    },
    verify: (passwordHash, password) => {
      counts.verifications += 1;
      return argon2Hasher.verify(passwordHash, password);
    },
  };
}

/** Like startTestServer, with the counting hasher in the composition root. One server per test. */
async function start(env: Env = {}): Promise<World> {
  const clock = new ManualClock();
  const counts: Counts = { verifications: 0, hashes: 0 };
  const logs: World['logs'][number][] = [];
  const record = (level: string) => (message: string) => logs.push({ level, message });
  const logger: Logger = { info: () => {}, warn: record('warn'), error: record('error') };
  const dataDir = tempDataDir();
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', TESSERA_DATA_DIR: dataDir, ...env });
  const services = await createServices(config, { clock, passwordHasher: countingHasher(counts) });
  const running = await startServer(services, logger);
  const server: TestServer = {
    url: running.url,
    services,
    dataDir,
    async close() {
      await running.close();
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  world = { server, clock, counts, logs };
  return world;
}

/** Argon2 verifications that ran while `work` did. */
async function checksDuring<T>(
  counts: Counts,
  work: () => Promise<T>,
): Promise<{ result: T; checks: number }> {
  const before = counts.verifications;
  const result = await work();
  return { result, checks: counts.verifications - before };
}

function signInForm(username: string, password: string): Record<string, string> {
  return { username, password, next: '/account' };
}

function statuses(pages: readonly Page[]): Map<number, number> {
  const counted = new Map<number, number>();
  for (const page of pages) counted.set(page.status, (counted.get(page.status) ?? 0) + 1);
  return counted;
}

function retryAfter(page: Page): number {
  const value = Number(page.headers.get('retry-after'));
  assert.ok(Number.isInteger(value) && value >= 1, `Retry-After: ${page.headers.get('retry-after')}`);
  return value;
}

async function signInBrowser(server: TestServer): Promise<DashboardClient> {
  const browser = new DashboardClient(server);
  await browser.get('/signin');
  return browser;
}

/** Sends `count` sign-ins at once; `form(i)` and `headers(i)` vary them. */
function burst(
  browser: DashboardClient,
  count: number,
  form: (index: number) => Record<string, string>,
  headers: (index: number) => Record<string, string> = () => ({}),
): Promise<Page[]> {
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      browser.post('/signin', form(index), { headers: headers(index) }),
    ),
  );
}

/**
 * After a burst, wrong passwords one at a time until the lock:
 * the burst and the top-up together must evaluate exactly the free failures, no more.
 */
async function topUpToLock(browser: DashboardClient, username: string): Promise<Page> {
  for (let attempt = 0; attempt <= FREE_FAILURES; attempt++) {
    const page = await browser.post('/signin', signInForm(username, WRONG));
    if (page.status === 429) return page;
    assert.equal(page.status, 401);
  }
  throw new Error('the account never locked');
}

/**
 * A flood for one account, then the lock: at most the free failures are checked in the flood, every
 * check answers 401 and every other attempt 429 with Retry-After; the right password is refused
 * without a check during the back-off and accepted once it ends.
 */
async function assertAccountFloodHolds(
  { server, clock, counts }: World,
  headers: (index: number) => Record<string, string>,
): Promise<{ checked: number; refused: number; total: number }> {
  await createTestAccount(server.services, 'alice');
  const browser = await signInBrowser(server);
  const flood = await checksDuring(counts, () =>
    burst(browser, 100, () => signInForm('alice', WRONG), headers),
  );
  const answered = statuses(flood.result);
  assert.ok(flood.checks >= 1 && flood.checks <= FREE_FAILURES, `checks in the flood: ${flood.checks}`);
  assert.equal(answered.get(401), flood.checks, 'every check that ran answered 401, nothing else did');
  assert.equal(answered.get(429), 100 - flood.checks, `statuses: ${[...answered]}`);
  for (const page of flood.result.filter((page) => page.status === 429)) retryAfter(page);

  const topUp = await checksDuring(counts, () => topUpToLock(browser, 'alice'));
  assert.equal(flood.checks + topUp.checks, FREE_FAILURES, 'the failure counter counted every check');
  const wait = retryAfter(topUp.result);

  const during = await checksDuring(counts, () =>
    burst(browser, 20, () => signInForm('alice', RIGHT), headers),
  );
  assert.deepEqual([...statuses(during.result)], [[429, 20]], 'the right password waits for the lock');
  assert.equal(during.checks, 0, 'and is not even checked');
  assert.equal(browser.cookie('tessera_session'), undefined);

  clock.advance(wait * 1000 + 1);
  const after = await checksDuring(counts, () => browser.post('/signin', signInForm('alice', RIGHT)));
  assert.equal(after.result.status, 303);
  assert.equal(after.checks, 1);
  return { checked: flood.checks, refused: answered.get(429) ?? 0, total: flood.checks + topUp.checks };
}

/** A different forged client address on every request, in both headers a proxy might set. */
function rotated(index: number): Record<string, string> {
  return {
    'x-forwarded-for': `203.0.113.${index % 250}, 198.51.100.${(index * 7) % 250}`,
    'x-real-ip': `192.0.2.${index % 250}`,
  };
}

describe('sign-in under 100 concurrent guesses (T37)', () => {
  test('one account: at most 5 Argon2 checks run, the rest 429 with Retry-After; the counter equals the checks', async () => {
    const started = await start();
    const figures = await assertAccountFloodHolds(started, () => ({}));
    recordFigures('T37', {
      'concurrent wrong sign-ins': 100,
      'Argon2 checks run in the flood': figures.checked,
      '429 in the flood': figures.refused,
      'failures evaluated before the lock': figures.total,
      'right password accepted during the lock': 0,
    });
    recordFigures('T35', {
      'right passwords sent at once during the back-off': 20,
      'accepted during the back-off': 0,
      'Argon2 checks for them': 0,
      'accepted once Retry-After passed': 'yes',
    });
  });
});

describe('sign-in with rotated forwarding headers (T36)', () => {
  test('no trusted proxy, 100 concurrent guesses for one account with 100 forged addresses: 0 bypasses', async () => {
    const started = await start();
    const figures = await assertAccountFloodHolds(started, rotated);
    recordFigures('T36', {
      'forged X-Forwarded-For / X-Real-IP values, one account': 100,
      'Argon2 checks run, one account': figures.checked,
      'bypasses, one account': 0,
    });
  });

  test('no trusted proxy, 100 concurrent guesses across 100 usernames: the per-address budget of 50 holds', async () => {
    const { server, counts } = await start();
    const browser = await signInBrowser(server);
    const flood = await checksDuring(counts, () =>
      burst(browser, 100, (index) => signInForm(`user${index}`, WRONG), rotated),
    );
    const answered = statuses(flood.result);
    assert.ok(flood.checks <= CLIENT_BUDGET, `checks: ${flood.checks}`);
    assert.equal(answered.get(401), flood.checks);
    assert.equal(answered.get(429), 100 - flood.checks, `statuses: ${[...answered]}`);
    await createTestAccount(server.services, 'fresh');
    const right = await checksDuring(counts, () =>
      browser.post('/signin', signInForm('fresh', RIGHT), { headers: rotated(7) }),
    );
    assert.equal(right.result.status, 429, 'a forged header does not open a new budget');
    assert.equal(right.checks, 0);
    const bypasses = Math.max(0, flood.checks - CLIENT_BUDGET);
    recordFigures('T36', {
      'usernames guessed from one socket address with forged headers': 100,
      'Argon2 checks run, many usernames (budget 50)': flood.checks,
      'bypasses, many usernames': bypasses,
    });
  });

  test('behind a trusted proxy, 100 real client addresses guessing one account share its lock', async () => {
    const { server, counts } = await start({ TESSERA_TRUSTED_PROXIES: '127.0.0.1' });
    await createTestAccount(server.services, 'alice');
    const browser = await signInBrowser(server);
    const flood = await checksDuring(counts, () =>
      burst(
        browser,
        100,
        () => signInForm('alice', WRONG),
        (index) => ({ 'x-forwarded-for': `198.51.100.${index + 1}` }),
      ),
    );
    assert.ok(flood.checks <= FREE_FAILURES, `checks: ${flood.checks}`);
    assert.equal(statuses(flood.result).get(429), 100 - flood.checks);
  });
});

/** A signed-in browser with a token to act on; its session has no password confirmation yet. */
async function signedIn(
  server: TestServer,
  username: string,
): Promise<{
  browser: DashboardClient;
  account: TestAccount;
  target: string;
  defaultId: string;
}> {
  const account = await createTestAccount(server.services, username);
  const created = await server.services.tokens.create({ kind: 'operator' }, username, {
    note: 'target',
    scopes: ['styles:read'],
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  });
  const browser = new DashboardClient(server);
  await browser.signInOk(username, RIGHT);
  const defaultId = (await tokensOf(server, account)).find((token) => token.default)?.id;
  assert.ok(defaultId);
  return { browser, account, target: created.id, defaultId };
}

async function tokensOf(server: TestServer, account: TestAccount): Promise<TokenMetadata[]> {
  const answer = await api(server, 'GET', `/tokens/v2/${account.username}`, { token: account.adminToken });
  assert.equal(answer.status, 200);
  return answer.body as TokenMetadata[];
}

/** Every dashboard form that asks for the password, each sent with a wrong one. */
function confirmingPaths(
  target: string,
  defaultId: string,
): readonly (readonly [string, Record<string, string>])[] {
  return [
    ['/account/tokens', { note: 'new', scopes: 'styles:read', password: WRONG }],
    [
      `/account/tokens/${target}/edit`,
      { note: 'renamed', scopes: 'styles:read', allowedUrls: '', expiresAt: '', password: WRONG },
    ],
    [`/account/tokens/${target}/delete`, { password: WRONG }],
    [`/account/tokens/${defaultId}/refresh`, { password: WRONG }],
    [`/account/tokens/${target}/rotate`, { gracePeriod: '3600', password: WRONG }],
    [
      '/account/password',
      { currentPassword: WRONG, newPassword: 'a new passphrase 1', repeatPassword: 'a new passphrase 1' },
    ],
  ];
}

function assertRevoked(page: Page): void {
  assert.equal(page.status, 303);
  assert.equal(page.location, '/signin?reason=revoked');
}

describe('password confirmation (T46)', () => {
  test('100 concurrent wrong confirmations: at most 5 checks, the session ends once, nothing changes', async () => {
    const { server, counts, logs } = await start();
    const { browser, account } = await signedIn(server, 'carol');
    const before = await tokensOf(server, account);
    const cookie = browser.cookie('tessera_session');
    const flood = await checksDuring(counts, () =>
      Promise.all(
        Array.from({ length: 100 }, () =>
          browser.post('/account/tokens', { note: 'flood', scopes: 'styles:read', password: WRONG }),
        ),
      ),
    );
    const answered = statuses(flood.result);
    // One check at a time per session: the fifth failure ends it before a sixth can start.
    assert.equal(flood.checks, CONFIRM_LIMIT);
    assert.equal(answered.get(403), CONFIRM_LIMIT - 1, `statuses: ${[...answered]}`);
    assert.equal(flood.result.filter((page) => page.location === '/signin?reason=revoked').length, 1);
    assert.equal(answered.get(303), 100 - (CONFIRM_LIMIT - 1), 'the rest are sent to sign in');
    assert.ok(flood.result.every((page) => page.status < 500));
    assert.equal(
      logs.filter((line) => line.message === 'session revoked after wrong password confirmations').length,
      1,
    );
    const replay = new DashboardClient(server);
    replay.setCookie('tessera_session', cookie as string);
    assert.equal((await replay.get('/account')).status, 303, 'the session is gone on the server');
    assert.deepEqual(await tokensOf(server, account), before);
    recordFigures('T46', {
      'concurrent wrong confirmations': 100,
      'Argon2 checks run before the session ended': flood.checks,
      'tokens created by the flood': 0,
    });
  });

  test('every path that confirms a password feeds one counter, and each ends the session at the 5th', async () => {
    const { server, counts } = await start();
    const outcomes: string[] = [];
    const paths = confirmingPaths('placeholder', 'placeholder').map(([path]) => path);
    for (let last = 0; last < paths.length; last++) {
      const { browser, account, target, defaultId } = await signedIn(server, `dave${last}`);
      const before = await tokensOf(server, account);
      const all = confirmingPaths(target, defaultId);
      // Four wrong passwords through the other paths, the fifth through `last`.
      const others = all.filter((_, index) => index !== last).slice(0, CONFIRM_LIMIT - 1);
      const order = [...others, ...all.slice(last, last + 1)];
      const checks = counts.verifications;
      for (const [step, [path, form]] of order.entries()) {
        const page = await browser.post(path, form);
        if (step < CONFIRM_LIMIT - 1) {
          assert.equal(page.status, 403, `${path}: ${page.status}`);
          if (path !== '/account/password')
            assert.match(page.text, new RegExp(`${CONFIRM_LIMIT - 1 - step} attempts? left`));
        } else assertRevoked(page);
      }
      assert.equal(counts.verifications - checks, CONFIRM_LIMIT);
      outcomes.push(`${paths[last]}: revoked`);
      const [path, form] = others[0] ?? ['/account/tokens', {}];
      const again = await browser.post(path, { ...form, password: RIGHT });
      assert.equal(again.status, 303);
      assert.match(again.location ?? '', /^\/signin/);
      assert.deepEqual(await tokensOf(server, account), before, 'no state change on any path');
      assert.equal((await new DashboardClient(server).signIn(account.username, RIGHT)).status, 303);
    }
    assert.equal(outcomes.length, 6, outcomes.join('; '));
    recordFigures('T46', {
      'paths that confirm a password': paths.length,
      'paths sharing the counter': paths.length,
      'wrong confirmations before the session ends': CONFIRM_LIMIT,
    });
  });

  test('the Tokens API does not take the dashboard session: no other path confirms or acts', async () => {
    const { server } = await start();
    const { browser, account } = await signedIn(server, 'erin');
    const answer = await api(server, 'POST', `/tokens/v2/${account.username}`, {
      json: { note: 'via cookie', scopes: ['styles:read'] },
      headers: { cookie: browser.cookieHeader() },
    });
    assert.equal(answer.status, 401);
  });
});

/**
 * A form post whose `password` field is 1 MB, sized or chunked (no Content-Length), on a socket of
 * its own: the server stops reading at its form limit and may close the connection on a client still
 * sending, which must not break the next request of a shared pool.
 */
function hugePost(
  browser: DashboardClient,
  path: string,
  fields: Record<string, string>,
  options: { readonly streamed: boolean },
): Promise<{ status: number; ms: number }> {
  const form = { _csrf: browser.formToken ?? '', ...fields, password: 'p'.repeat(ONE_MB) };
  const body = Buffer.from(new URLSearchParams(form).toString());
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    origin: browser.origin,
    'sec-fetch-site': 'same-origin',
    accept: 'text/html',
    cookie: browser.cookieHeader(),
    ...(options.streamed ? {} : { 'content-length': String(body.length) }),
  };
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = httpRequest(new URL(path, browser.server.url), { method: 'POST', headers, agent: false });
    // Once the answer is in, a write the server no longer reads may fail: that is not the outcome.
    let answered = false;
    request.on('error', (error) => (answered ? undefined : reject(error)));
    request.on('response', (response) => {
      answered = true;
      response.resume();
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, ms: performance.now() - started }),
      );
    });
    for (let offset = 0; offset < body.length; offset += 65_536) {
      request.write(body.subarray(offset, offset + 65_536));
    }
    request.end();
  });
}

describe('1 MB passwords (T71)', () => {
  test('at sign-in and at confirmation: 413 before any hash, and not counted as a guess', async () => {
    const { server, counts } = await start();
    const { browser } = await signedIn(server, 'frank');
    await browser.get('/account/tokens/new');
    const anonymous = await signInBrowser(server);
    const results: Record<string, { status: number; ms: number }> = {};
    const before = { ...counts };
    for (const streamed of [false, true]) {
      const how = streamed ? 'streamed' : 'with Content-Length';
      results[`sign-in, ${how}`] = await hugePost(
        anonymous,
        '/signin',
        { username: 'frank', next: '/account' },
        { streamed },
      );
      results[`confirmation, ${how}`] = await hugePost(
        browser,
        '/account/tokens',
        { note: 'huge', scopes: 'styles:read' },
        { streamed },
      );
    }
    for (const [what, result] of Object.entries(results)) assert.equal(result.status, 413, what);
    assert.deepEqual(counts, before, 'no Argon2 hash or check ran');
    // Not a guess: the confirmation counter is untouched and the session alive.
    const wrong = await browser.post('/account/tokens', {
      note: 'n',
      scopes: 'styles:read',
      password: WRONG,
    });
    assert.equal(wrong.status, 403);
    assert.match(wrong.text, /4 attempts left/);
    recordFigures('T71', {
      'password size': '1 MiB',
      'requests (sign-in and confirmation, sized and streamed)': Object.keys(results).length,
      'answers 413': Object.values(results).filter((result) => result.status === 413).length,
      'Argon2 hashes or checks run': 0,
      'slowest answer ms': Math.round(Math.max(...Object.values(results).map((result) => result.ms))),
    });
  });
});

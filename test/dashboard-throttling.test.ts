import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { Env } from '../src/config.ts';
import type { Logger } from '../src/logging/logger.ts';
import { DashboardClient, type Page, parseSetCookie, withoutFormToken } from './helpers/dashboard.ts';
import { createTestAccount, ManualClock, startTestServer, type TestServer } from './helpers/server.ts';

const WRONG = 'not the right password';
const RIGHT = 'correct horse battery staple';

// Each test gets its own server: the per-client budget (50 failures from 127.0.0.1) is per process.
let server: TestServer | undefined;
afterEach(() => server?.close());

interface Started {
  readonly server: TestServer;
  readonly clock: ManualClock;
  readonly logs: { level: string; message: string; fields: Record<string, unknown> }[];
}

async function start(env: Env = {}): Promise<Started> {
  const clock = new ManualClock();
  const logs: Started['logs'] = [];
  const record =
    (level: string) =>
    (message: string, fields: Readonly<Record<string, unknown>> = {}) =>
      logs.push({ level, message, fields: { ...fields } });
  const logger: Logger = { info: record('info'), warn: record('warn'), error: record('error') };
  server = await startTestServer({ env, clock, logger });
  return { server, clock, logs };
}

function signInForm(username: string, password: string): Record<string, string> {
  return { username, password, next: '/account' };
}

function retryAfter(page: Page): number {
  const value = Number(page.headers.get('retry-after'));
  assert.ok(Number.isInteger(value) && value >= 1, `Retry-After: ${page.headers.get('retry-after')}`);
  return value;
}

/** Name and attributes of each Set-Cookie, without the value. */
function cookieShape(page: Page): string[] {
  return page.setCookies.map((line) => {
    const { name, attributes } = parseSetCookie(line);
    return [name, ...[...attributes].map(([key, value]) => `${key}=${value}`).sort()].join('; ');
  });
}

describe('unknown username vs wrong password (T33)', () => {
  test('same status, same bytes once the per-browser form token is removed, same cookies', async () => {
    const { server } = await start();
    const answer = async (): Promise<Page> => {
      const browser = new DashboardClient(server);
      await browser.get('/signin');
      // A stale session cookie, so both answers also have a cookie to clear.
      browser.setCookie('tessera_session', 'x'.repeat(43));
      return browser.post('/signin', signInForm('carol', WRONG));
    };
    const unknown = await answer();
    await createTestAccount(server.services, 'carol');
    const wrong = await answer();
    assert.equal(unknown.status, 401);
    assert.equal(wrong.status, 401);
    assert.equal(withoutFormToken(unknown.text), withoutFormToken(wrong.text));
    assert.notEqual(unknown.formToken, wrong.formToken, 'the token is the only part that differs');
    assert.deepEqual(cookieShape(unknown), cookieShape(wrong));
    assert.deepEqual(cookieShape(unknown), ['tessera_session; httponly=; max-age=0; path=/; samesite=Lax']);
    const headerNames = (page: Page) => [...page.headers.keys()].filter((name) => name !== 'date');
    assert.deepEqual(headerNames(unknown), headerNames(wrong));
    assert.equal(unknown.headers.get('content-length'), wrong.headers.get('content-length'));
    assert.match(unknown.text, /Incorrect username or password\./);
  });
});

describe('per-account throttle (T35)', () => {
  test('failures 1-5 answer 401, then 429 with Retry-After; the right password waits for the lock', async () => {
    const { server, clock, logs } = await start();
    await createTestAccount(server.services, 'alice');
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    for (let attempt = 1; attempt <= 5; attempt++) {
      assert.equal(
        (await browser.post('/signin', signInForm('alice', WRONG))).status,
        401,
        `failure ${attempt}`,
      );
    }
    const sixth = await browser.post('/signin', signInForm('alice', WRONG));
    assert.equal(sixth.status, 429);
    assert.match(sixth.text, /Too many sign-in attempts/);
    const wait = retryAfter(sixth);

    const during = await browser.post('/signin', signInForm('alice', RIGHT));
    assert.equal(during.status, 429, 'the right password is not accepted during the lock');
    assert.equal(browser.cookie('tessera_session'), undefined);

    clock.advance(wait * 1000 + 1);
    const afterLock = await browser.post('/signin', signInForm('alice', RIGHT));
    assert.equal(afterLock.status, 303);
    assert.equal(afterLock.location, '/account');
    assert.ok(browser.cookie('tessera_session'));

    const throttled = logs.filter((line) => line.message === 'sign-in throttled');
    assert.equal(throttled.length, 2, 'each refused attempt is logged');
    assert.equal(throttled[0]?.fields.username, 'alice');
    assert.ok(!JSON.stringify(logs).includes(RIGHT) && !JSON.stringify(logs).includes(WRONG));
  });

  test('a persistent attacker never locks the account for more than 15 minutes at a time', async () => {
    const { server, clock } = await start();
    await createTestAccount(server.services, 'alice');
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    for (let attempt = 1; attempt <= 5; attempt++) await browser.post('/signin', signInForm('alice', WRONG));
    const waits: number[] = [];
    for (let round = 0; round < 14; round++) {
      const refused = await browser.post('/signin', signInForm('alice', WRONG));
      assert.equal(refused.status, 429);
      const wait = retryAfter(refused);
      waits.push(wait);
      clock.advance(wait * 1000 + 1);
      assert.equal((await browser.post('/signin', signInForm('alice', WRONG))).status, 401);
    }
    assert.ok(Math.max(...waits) <= 900, `waits: ${waits.join(', ')}`);
    assert.equal(waits.at(-1), 900, 'the lock doubles up to 15 minutes');
  });
});

describe('forwarding headers (T36)', () => {
  const rotated = (index: number) => ({
    'x-forwarded-for': `203.0.113.${index % 250}, 198.51.100.${index % 250}`,
    'x-real-ip': `192.0.2.${index % 250}`,
  });

  test('without trusted proxies, 100 rotated X-Forwarded-For / X-Real-IP values change nothing', async () => {
    const { server } = await start();
    await createTestAccount(server.services, 'alice');
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const oneAccount: number[] = [];
    for (let index = 0; index < 100; index++) {
      const page = await browser.post('/signin', signInForm('alice', WRONG), { headers: rotated(index) });
      oneAccount.push(page.status);
    }
    assert.deepEqual(oneAccount.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(
      oneAccount.slice(5).every((status) => status === 429),
      'the account lock holds',
    );
  });

  test('without trusted proxies, the per-address budget (50) holds across usernames and rotated headers', async () => {
    const { server } = await start();
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const statuses: number[] = [];
    for (let index = 0; index < 100; index++) {
      const page = await browser.post('/signin', signInForm(`user${index}`, WRONG), {
        headers: rotated(index),
      });
      statuses.push(page.status);
    }
    assert.ok(statuses.slice(0, 50).every((status) => status === 401));
    assert.ok(
      statuses.slice(50).every((status) => status === 429),
      'no bypass after 50 failures',
    );
  });

  test('with TESSERA_TRUSTED_PROXIES=127.0.0.1 the forwarded address is the client', async () => {
    const { server } = await start({ TESSERA_TRUSTED_PROXIES: '127.0.0.1' });
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const from = (address: string, realIp = address) => ({ 'x-forwarded-for': address, 'x-real-ip': realIp });
    for (let index = 0; index < 50; index++) {
      const page = await browser.post('/signin', signInForm(`user${index}`, WRONG), {
        headers: from('198.51.100.7'),
      });
      assert.equal(page.status, 401);
    }
    const exhausted = await browser.post('/signin', signInForm('fresh-name', WRONG), {
      headers: from('198.51.100.7', '198.51.100.99'),
    });
    assert.equal(exhausted.status, 429, 'X-Real-IP is not a way around it');
    retryAfter(exhausted);
    const elsewhere = await browser.post('/signin', signInForm('fresh-name', WRONG), {
      headers: from('198.51.100.8'),
    });
    assert.equal(elsewhere.status, 401, 'another client address has its own budget');
  });
});

describe('concurrency (T37)', () => {
  test('100 concurrent wrong passwords for one account: at most 5 are checked, the rest 429', async () => {
    const { server } = await start();
    await createTestAccount(server.services, 'alice');
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const pages = await Promise.all(
      Array.from({ length: 100 }, () => browser.post('/signin', signInForm('alice', WRONG))),
    );
    const count = (status: number) => pages.filter((page) => page.status === status).length;
    assert.ok(count(401) >= 1 && count(401) <= 5, `401s: ${count(401)}`);
    assert.equal(count(401) + count(429), 100);
    for (const page of pages.filter((page) => page.status === 429)) retryAfter(page);
    // Whatever the interleaving, the account is not open to the right password straight after.
    const right = await browser.post('/signin', signInForm('alice', RIGHT));
    if (count(401) === 5) assert.equal(right.status, 429);
  });
});

describe('a victim locked out by someone else (T38)', () => {
  test('documented: the lock applies from every address, and the victim gets in once it ends', async () => {
    const { server, clock, logs } = await start({ TESSERA_TRUSTED_PROXIES: '127.0.0.1' });
    await createTestAccount(server.services, 'victim');
    const attacker = new DashboardClient(server);
    await attacker.get('/signin');
    const fromX = { headers: { 'x-forwarded-for': '203.0.113.66' } };
    for (let attempt = 1; attempt <= 5; attempt++)
      await attacker.post('/signin', signInForm('victim', WRONG), fromX);
    const locked = await attacker.post('/signin', signInForm('victim', WRONG), fromX);
    assert.equal(locked.status, 429);

    const victim = new DashboardClient(server);
    await victim.get('/signin');
    const fromY = { headers: { 'x-forwarded-for': '198.51.100.20' } };
    const during = await victim.post('/signin', signInForm('victim', RIGHT), fromY);
    assert.equal(during.status, 429, 'per-account: the lock is not per address');
    assert.ok(retryAfter(during) <= 900);

    clock.advance(retryAfter(during) * 1000 + 1);
    const after = await victim.post('/signin', signInForm('victim', RIGHT), fromY);
    assert.equal(after.status, 303, 'no permanent lock by an unauthenticated party');
    assert.equal(after.location, '/account');

    const lockout = logs.find((line) => line.message === 'sign-in throttled');
    assert.equal(lockout?.level, 'warn');
    assert.equal(lockout?.fields.username, 'victim');
    assert.equal(lockout?.fields.client, '203.0.113.66');
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DashboardClient, type Page, parseSetCookie } from './helpers/dashboard.ts';
import { createTestAccount, ManualClock, startTestServer, type TestServer } from './helpers/server.ts';

const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'an entirely new passphrase';
const MINUTE = 60_000;
const SESSION = 'tessera_session';

let server: TestServer;
const clock = new ManualClock();
let accounts = 0;

before(async () => {
  server = await startTestServer({ clock });
});
after(() => server.close());

/** A fresh account per test, so sessions and throttles never leak between tests. */
async function account(): Promise<string> {
  const username = `user${++accounts}`;
  await createTestAccount(server.services, username);
  return username;
}

async function signedIn(username: string, password = PASSWORD): Promise<DashboardClient> {
  const browser = new DashboardClient(server);
  await browser.signInOk(username, password);
  return browser;
}

/** A browser that carries only this session cookie value. */
function replay(value: string): DashboardClient {
  const browser = new DashboardClient(server);
  browser.setCookie(SESSION, value);
  return browser;
}

function assertToSignIn(page: Page): void {
  assert.equal(page.status, 303);
  assert.match(page.location ?? '', /^\/signin(\?|$)/);
}

describe('session fixation (T39)', () => {
  test('the cookie after sign-in is new; a planted session value gives nothing', async () => {
    const username = await account();
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const planted = 'P'.repeat(43);
    browser.setCookie(SESSION, planted);
    const before = new Set(browser.cookies().values());
    const planting = await browser.get('/account');
    assertToSignIn(planting);
    assert.deepEqual(
      planting.setCookies.filter((line) => line.startsWith(`${SESSION}=`)),
      [`${SESSION}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax`],
      'the unknown cookie is cleared, once',
    );

    browser.setCookie(SESSION, planted);
    const answer = await browser.post('/signin', { username, password: PASSWORD, next: '/account' });
    assert.equal(answer.status, 303);
    const issued = browser.cookie(SESSION);
    assert.ok(issued);
    assert.ok(!before.has(issued), 'the session id differs from every cookie sent before');
    assertToSignIn(await replay(planted).get('/account'));
    assert.equal((await replay(issued).get('/account')).status, 200);
  });

  test('signing in again replaces the earlier session, which then grants nothing', async () => {
    const username = await account();
    const browser = await signedIn(username);
    const first = browser.cookie(SESSION) as string;
    // A signed-in browser is sent away from the sign-in page, so it posts with its anonymous form token.
    const other = new DashboardClient(server);
    await other.get('/signin');
    browser.setCookie('tessera_form', other.cookie('tessera_form') as string);
    const answer = await browser.post(
      '/signin',
      { username, password: PASSWORD },
      { csrf: other.formToken ?? null },
    );
    assert.equal(answer.status, 303);
    assert.notEqual(browser.cookie(SESSION), first);
    assertToSignIn(await replay(first).get('/account'));
  });
});

describe('cookies (T40)', () => {
  function assertCookieAttributes(lines: readonly string[], options: { secure: boolean }): void {
    assert.ok(lines.length > 0);
    for (const line of lines) {
      const { name, attributes } = parseSetCookie(line);
      assert.ok(attributes.has('httponly'), `${line}: HttpOnly`);
      assert.equal(attributes.get('samesite'), 'Lax', `${line}: SameSite`);
      assert.equal(attributes.get('path'), '/', `${line}: Path`);
      assert.ok(!attributes.has('domain'), `${line}: no Domain`);
      assert.equal(attributes.has('secure'), options.secure, `${line}: Secure`);
      assert.equal(name.startsWith('__Host-'), options.secure, `${line}: __Host- prefix`);
    }
  }

  /** Every Set-Cookie of a whole visit: sign-in page, sign-in, a confirmed create, sign-out, a stale cookie. */
  async function visitCookies(target: TestServer, origin?: string): Promise<string[]> {
    const username = `cookies${++accounts}`;
    await createTestAccount(target.services, username);
    const browser = new DashboardClient(target, origin ? { origin } : {});
    const lines: string[] = [];
    const keep = (page: Page) => {
      lines.push(...page.setCookies);
      return page;
    };
    keep(await browser.get('/signin'));
    const signIn = keep(await browser.post('/signin', { username, password: PASSWORD, next: '/account' }));
    assert.equal(signIn.status, 303, signIn.text);
    keep(await browser.get('/account'));
    const create = keep(
      await browser.post('/account/tokens', { note: 'c', scopes: 'styles:read', password: PASSWORD }),
    );
    assert.equal(create.status, 303, create.text);
    keep(await browser.get('/account'));
    const stale = browser.cookies();
    keep(await browser.post('/signout'));
    const again = new DashboardClient(target, origin ? { origin } : {});
    for (const [name, value] of stale) again.setCookie(name, value);
    keep(await again.get('/account'));
    return lines;
  }

  test('HttpOnly, SameSite=Lax, Path=/, no Domain on every Set-Cookie over http', async () => {
    const lines = await visitCookies(server);
    assertCookieAttributes(lines, { secure: false });
    assert.ok(lines.some((line) => line.startsWith('tessera_session=')));
    assert.ok(lines.some((line) => line.startsWith('tessera_form=')));
  });

  test('behind an https public URL: __Host- names and Secure on every Set-Cookie', async () => {
    const https = await startTestServer({ env: { TESSERA_PUBLIC_URL: 'https://tessera.example.test' } });
    try {
      const lines = await visitCookies(https, 'https://tessera.example.test');
      assertCookieAttributes(lines, { secure: true });
      assert.ok(lines.some((line) => line.startsWith('__Host-tessera_session=')));
      const page = await new DashboardClient(https).get('/signin');
      assert.equal(page.headers.get('strict-transport-security'), 'max-age=31536000');
    } finally {
      await https.close();
    }
  });

  test('session ids are 43 base64url characters (256 bits)', async () => {
    const ids = new Set<string>();
    for (let index = 0; index < 3; index++) {
      const browser = await signedIn(await account());
      ids.add(browser.cookie(SESSION) as string);
    }
    assert.equal(ids.size, 3);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{43}$/);
  });
});

describe('session end (T41)', () => {
  test('sign-out answers 303 to /signin and the cookie stops working on the server', async () => {
    const browser = await signedIn(await account());
    const cookie = browser.cookie(SESSION) as string;
    const out = await browser.post('/signout');
    assert.equal(out.status, 303);
    assert.equal(out.location, '/signin?reason=signed-out');
    assert.equal(browser.cookie(SESSION), undefined);
    assertToSignIn(await replay(cookie).get('/account'));
    assertToSignIn(await replay(cookie).get('/account/password'));
  });

  test('idle for 30 minutes and 1 second: the next request goes to sign-in', async () => {
    const browser = await signedIn(await account());
    const cookie = browser.cookie(SESSION) as string;
    clock.advance(30 * MINUTE + 1000);
    const page = await browser.get('/account');
    assertToSignIn(page);
    assert.equal(page.location, '/signin?next=%2Faccount&reason=expired');
    clock.advance(-(30 * MINUTE + 1000));
    assertToSignIn(await replay(cookie).get('/account'));
  });

  test('activity within 30 minutes keeps the session alive', async () => {
    const browser = await signedIn(await account());
    for (let step = 0; step < 4; step++) {
      clock.advance(29 * MINUTE);
      assert.equal((await browser.get('/account')).status, 200, `after ${(step + 1) * 29} minutes`);
    }
  });

  test('12 hours and 1 second after sign-in the session ends, even when active every 20 minutes', async () => {
    const browser = await signedIn(await account());
    const start = clock.now();
    while (clock.now() + 20 * MINUTE < start + 12 * 60 * MINUTE) {
      clock.advance(20 * MINUTE);
      assert.equal((await browser.get('/account')).status, 200);
    }
    clock.advance(start + 12 * 60 * MINUTE + 1000 - clock.now());
    assertToSignIn(await browser.get('/account'));
  });
});

describe('password change (T42)', () => {
  test('ends the other sessions and keeps the current one under a new id', async () => {
    const username = await account();
    const mine = await signedIn(username);
    const other = await signedIn(username);
    const oldId = mine.cookie(SESSION) as string;
    await mine.get('/account/password');
    const changed = await mine.post('/account/password', {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      repeatPassword: NEW_PASSWORD,
    });
    assert.equal(changed.status, 303);
    assert.equal(changed.location, '/account');
    assert.notEqual(mine.cookie(SESSION), oldId);
    const landing = await mine.get('/account');
    assert.equal(landing.status, 200);
    assert.match(landing.text, /Password changed\. Your other sessions were signed out\./);
    assertToSignIn(await other.get('/account'));
    assertToSignIn(await replay(oldId).get('/account'));
    assert.equal((await new DashboardClient(server).signIn(username, PASSWORD)).status, 401);
    assert.equal((await new DashboardClient(server).signIn(username, NEW_PASSWORD)).status, 303);
  });

  test('a wrong current password or a mismatched repeat changes nothing', async () => {
    const username = await account();
    const mine = await signedIn(username);
    const other = await signedIn(username);
    await mine.get('/account/password');
    const wrong = await mine.post('/account/password', {
      currentPassword: 'not my password at all',
      newPassword: NEW_PASSWORD,
      repeatPassword: NEW_PASSWORD,
    });
    assert.equal(wrong.status, 403);
    assert.match(wrong.text, /Your current password is incorrect\./);
    const mismatch = await mine.post('/account/password', {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      repeatPassword: `${NEW_PASSWORD}!`,
    });
    assert.equal(mismatch.status, 422);
    assert.equal((await other.get('/account')).status, 200);
    assert.equal((await new DashboardClient(server).signIn(username, PASSWORD)).status, 303);
  });
});

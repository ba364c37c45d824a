import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Logger } from '../src/logging/logger.ts';
import { tokensOf } from './helpers/api.ts';
import { DashboardClient, type Fields, type Page, type PostOptions } from './helpers/dashboard.ts';
import { createTestAccount, ManualClock, startTestServer, type TestServer } from './helpers/server.ts';

const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

let server: TestServer;
const clock = new ManualClock();
const warnings: { message: string; fields: Readonly<Record<string, unknown>> }[] = [];
const logger: Logger = {
  info: () => {},
  warn: (message, fields = {}) => warnings.push({ message, fields }),
  error: () => {},
};
let accounts = 0;

before(async () => {
  server = await startTestServer({ clock, logger });
});
after(() => server.close());

async function account(): Promise<string> {
  const username = `user${++accounts}`;
  await createTestAccount(server.services, username);
  return username;
}

async function signedIn(username: string): Promise<DashboardClient> {
  const browser = new DashboardClient(server);
  await browser.signInOk(username);
  return browser;
}

/** Everything a forged request could change: the tokens, the sessions, the password hash. */
async function snapshot(username: string): Promise<unknown> {
  const account = await server.services.store.findAccount(username);
  return { tokens: await tokensOf(server, username), passwordHash: account?.passwordHash };
}

async function unchanged(username: string, action: () => Promise<void>): Promise<void> {
  const before = await snapshot(username);
  await action();
  assert.deepEqual(await snapshot(username), before);
}

/** A second token to delete. */
async function secondToken(username: string): Promise<string> {
  const created = await server.services.tokens.create({ kind: 'operator' }, username, {
    note: 'victim',
    scopes: ['styles:read'],
    allowedUrls: null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  });
  return created.id;
}

interface Action {
  readonly name: string;
  readonly path: (id: string) => string;
  /** The form, with the password so a request that got through would be confirmed and act. */
  readonly fields: Fields;
  readonly page: (id: string) => string;
}

const ACTIONS: readonly Action[] = [
  {
    name: 'create',
    path: () => '/account/tokens',
    fields: { note: 'forged', scopes: 'styles:read', password: PASSWORD },
    page: () => '/account/tokens/new',
  },
  {
    name: 'delete',
    path: (id) => `/account/tokens/${id}/delete`,
    fields: { password: PASSWORD },
    page: (id) => `/account/tokens/${id}/delete`,
  },
  {
    name: 'rotate',
    path: (id) => `/account/tokens/${id}/rotate`,
    fields: { gracePeriod: '3600', password: PASSWORD },
    page: (id) => `/account/tokens/${id}/rotate`,
  },
  {
    name: 'edit with an expiry',
    path: (id) => `/account/tokens/${id}/edit`,
    fields: { note: 'victim', scopes: 'styles:read', expiresAt: '2099-01-01T00:00', password: PASSWORD },
    page: (id) => `/account/tokens/${id}/edit`,
  },
  { name: 'sign-out', path: () => '/signout', fields: {}, page: () => '/account' },
  {
    name: 'password change',
    path: () => '/account/password',
    fields: {
      currentPassword: PASSWORD,
      newPassword: 'forged new password',
      repeatPassword: 'forged new password',
    },
    page: () => '/account/password',
  },
];

type Variant = readonly [
  name: string,
  send: (browser: DashboardClient, path: string, fields: Fields, others: Others) => Promise<Page>,
  statuses: readonly number[],
];

interface Others {
  /** A valid form token of another signed-in session. */
  readonly otherSession: string;
  /** The anonymous token this browser had before it signed in. */
  readonly anonymous: string;
}

const post = (browser: DashboardClient, path: string, fields: Fields, options: PostOptions) =>
  browser.post(path, fields, options);

const VARIANTS: readonly Variant[] = [
  ['no _csrf', (b, p, f) => post(b, p, f, { csrf: null }), [403]],
  ['a wrong _csrf', (b, p, f) => post(b, p, f, { csrf: 'A'.repeat(43) }), [403]],
  ['an empty _csrf', (b, p, f) => post(b, p, f, { csrf: '' }), [403]],
  ['another session’s token', (b, p, f, o) => post(b, p, f, { csrf: o.otherSession }), [403]],
  ['the pre-sign-in token (T44)', (b, p, f, o) => post(b, p, f, { csrf: o.anonymous }), [403]],
  [
    'Origin: https://evil.test',
    (b, p, f) => post(b, p, f, { headers: { origin: 'https://evil.test' } }),
    [403],
  ],
  ['Origin: null', (b, p, f) => post(b, p, f, { headers: { origin: 'null' } }), [403]],
  [
    'Sec-Fetch-Site: cross-site',
    (b, p, f) => post(b, p, f, { headers: { 'sec-fetch-site': 'cross-site', origin: '' } }),
    [403],
  ],
  [
    'Sec-Fetch-Site: same-site',
    (b, p, f) => post(b, p, f, { headers: { 'sec-fetch-site': 'same-site', origin: '' } }),
    [403],
  ],
  [
    'a cross-site Referer and no Origin',
    (b, p, f) =>
      post(b, p, f, { headers: { origin: '', 'sec-fetch-site': '', referer: 'https://evil.test/page' } }),
    [403],
  ],
  [
    'a JSON body',
    (b, p, f) =>
      post(b, p, f, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ _csrf: b.formToken, ...f }),
      }),
    [403, 415],
  ],
  [
    'multipart/form-data',
    (b, p, f) => {
      const parts = Object.entries({ _csrf: b.formToken ?? '', ...f }).map(
        ([name, value]) =>
          `--XyZ\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${String(value)}\r\n`,
      );
      return post(b, p, f, {
        headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
        body: `${parts.join('')}--XyZ--\r\n`,
      });
    },
    [403, 415],
  ],
  [
    'text/plain (a cross-site simple request)',
    (b, p, f) =>
      post(b, p, f, {
        headers: { 'content-type': 'text/plain' },
        body: new URLSearchParams({ _csrf: b.formToken ?? '', ...(f as Record<string, string>) }).toString(),
      }),
    [403, 415],
  ],
  [
    'GET with the fields in the query',
    (b, p, f) =>
      b.get(`${p}?${new URLSearchParams({ _csrf: b.formToken ?? '', ...(f as Record<string, string>) })}`),
    [200, 404, 405],
  ],
];

describe('CSRF matrix (T43)', () => {
  for (const action of ACTIONS) {
    test(`${action.name}: every forged variant is refused and changes nothing`, async () => {
      const username = await account();
      const victim = new DashboardClient(server);
      await victim.get('/signin');
      const anonymous = victim.formToken as string;
      await victim.post('/signin', { username, password: PASSWORD, next: '/account' });
      const otherSession = (await signedIn(username)).formToken as string;
      const id = await secondToken(username);
      const session = victim.cookie('tessera_session');
      for (const [name, send, statuses] of VARIANTS) {
        await victim.get(action.page(id));
        await unchanged(username, async () => {
          const page = await send(victim, action.path(id), action.fields, { otherSession, anonymous });
          assert.ok(statuses.includes(page.status), `${name}: ${page.status} ${page.text.slice(0, 200)}`);
        });
        assert.equal(victim.cookie('tessera_session'), session, `${name}: the session is untouched`);
        assert.equal((await victim.get('/account')).status, 200, `${name}: still signed in`);
      }
      // The same request, sent properly, does act: the refusals above were the forgery's doing.
      await victim.get(action.page(id));
      const before = await snapshot(username);
      const genuine = await victim.post(action.path(id), action.fields);
      assert.equal(genuine.status, 303, genuine.text.slice(0, 300));
      if (action.name === 'sign-out') assert.equal((await victim.get('/account')).status, 303);
      else assert.notDeepEqual(await snapshot(username), before);
    });
  }

  test('a refusal says why, as HTML to browsers and as JSON to other clients', async () => {
    const browser = await signedIn(await account());
    const html = await browser.post(
      '/account/tokens',
      { note: 'x' },
      { headers: { origin: 'https://evil.test' } },
    );
    assert.equal(html.status, 403);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(html.text, /sent from another site/);
    const json = await browser.post(
      '/account/tokens',
      { note: 'x' },
      { csrf: null, headers: { accept: '*/*' } },
    );
    assert.equal(json.status, 403);
    assert.deepEqual(JSON.parse(json.text), {
      message: 'This form has expired. Reload the page and try again.',
    });
  });
});

describe('a cross-site post without cookies (SameSite=Lax keeps them home)', () => {
  test('is refused as cross-site (403), not sent to sign in, on every form', async () => {
    const username = await account();
    const id = await secondToken(username);
    const before = await snapshot(username);
    for (const path of [
      '/signout',
      '/signin',
      '/account/tokens',
      `/account/tokens/${id}/delete`,
      `/account/tokens/${id}/rotate`,
      `/account/tokens/${id}/edit`,
      '/account/password',
    ]) {
      for (const headers of [
        { origin: 'https://evil.test' },
        { 'sec-fetch-site': 'cross-site', origin: '' },
      ]) {
        const page = await new DashboardClient(server).post(
          path,
          { note: 'x' },
          { csrf: 'A'.repeat(43), headers },
        );
        assert.equal(page.status, 403, `${path} ${JSON.stringify(headers)}`);
        assert.match(page.text, /sent from another site/);
      }
    }
    assert.deepEqual(await snapshot(username), before);
  });
});

describe('login CSRF (T44)', () => {
  test('a cross-site sign-in post is refused and starts no session', async () => {
    const username = await account();
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    for (const headers of [
      { origin: 'https://evil.test' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site', origin: '' },
    ]) {
      const page = await browser.post('/signin', { username, password: PASSWORD }, { headers });
      assert.equal(page.status, 403, JSON.stringify(headers));
      assert.equal(browser.cookie('tessera_session'), undefined);
    }
    // An attacker's page cannot read this browser's form token: without it, no sign-in either.
    const noToken = await browser.post('/signin', { username, password: PASSWORD }, { csrf: null });
    assert.equal(noToken.status, 403);
    const stranger = new DashboardClient(server);
    await stranger.get('/signin');
    const borrowed = await browser.post(
      '/signin',
      { username, password: PASSWORD },
      { csrf: stranger.formToken ?? null },
    );
    assert.equal(borrowed.status, 403, 'another browser’s sign-in token does not fit this browser');
    assert.equal(browser.cookie('tessera_session'), undefined);
  });
});

describe('password confirmation (T45)', () => {
  test('create, update, delete, refresh and rotate without a confirmation answer 403 with the password form', async () => {
    const username = await account();
    const browser = await signedIn(username);
    const id = await secondToken(username);
    const defaultId = (await tokensOf(server, username)).find((token) => token.default)?.id as string;
    const requests: [string, Fields][] = [
      ['/account/tokens', { note: 'new', scopes: 'styles:read' }],
      [`/account/tokens/${id}/edit`, { note: 'renamed', scopes: 'styles:read' }],
      [`/account/tokens/${id}/delete`, {}],
      [`/account/tokens/${defaultId}/refresh`, {}],
      [`/account/tokens/${id}/rotate`, { gracePeriod: '0' }],
      [`/account/tokens/${defaultId}/rotate`, { gracePeriod: '86400' }],
    ];
    for (const [path, fields] of requests) {
      await unchanged(username, async () => {
        const page = await browser.post(path, fields);
        assert.equal(page.status, 403, path);
        assert.match(page.text, /Confirm your password/);
        assert.match(page.text, /name="password" type="password"/);
      });
    }
  });

  test('a confirmation lasts 5 minutes: within it no password is asked, after it the form is back', async () => {
    const username = await account();
    const browser = await signedIn(username);
    const first = await secondToken(username);
    const second = await secondToken(username);
    await browser.get(`/account/tokens/${first}/delete`);
    assert.equal((await browser.post(`/account/tokens/${first}/delete`, { password: PASSWORD })).status, 303);
    clock.advance(4 * MINUTE);
    await browser.get('/account');
    await browser.get(`/account/tokens/${second}/delete`);
    const renamed = await browser.post(`/account/tokens/${second}/edit`, {
      note: 'within',
      scopes: 'styles:read',
    });
    assert.equal(renamed.status, 303, 'no password within the window');
    clock.advance(MINUTE + 1000);
    await browser.get(`/account/tokens/${second}/delete`);
    await unchanged(username, async () => {
      const expired = await browser.post(`/account/tokens/${second}/delete`);
      assert.equal(expired.status, 403);
      assert.match(expired.text, /Confirm your password/);
    });
  });

  test('another account’s password is a wrong password', async () => {
    const username = await account();
    await server.services.accounts.createAccount({
      username: `other${accounts}`,
      email: 'other@example.com',
      password: 'the other account’s password',
    });
    const browser = await signedIn(username);
    await unchanged(username, async () => {
      const page = await browser.post('/account/tokens', {
        note: 'x',
        scopes: 'styles:read',
        password: 'the other account’s password',
      });
      assert.equal(page.status, 403);
      assert.match(page.text, /Incorrect password\. 4 attempts left before you are signed out\./);
    });
  });
});

describe('wrong confirmations (T46)', () => {
  test('one counter across create, update, delete, refresh and password change; the 5th ends the session', async () => {
    const username = await account();
    const browser = await signedIn(username);
    const id = await secondToken(username);
    const defaultId = (await tokensOf(server, username)).find((token) => token.default)?.id as string;
    const guesses: [string, Fields, RegExp][] = [
      ['/account/tokens', { note: 'x', scopes: 'styles:read', password: 'guess 1' }, /4 attempts left/],
      [`/account/tokens/${id}/delete`, { password: 'guess 2' }, /3 attempts left/],
      [
        '/account/password',
        { currentPassword: 'guess 3', newPassword: 'a new password!', repeatPassword: 'a new password!' },
        /Your current password is incorrect/,
      ],
      [`/account/tokens/${defaultId}/refresh`, { password: 'guess 4' }, /1 attempt left/],
    ];
    await unchanged(username, async () => {
      for (const [path, fields, message] of guesses) {
        const page = await browser.post(path, fields);
        assert.equal(page.status, 403, path);
        assert.match(page.text, message);
      }
      const fifth = await browser.post(`/account/tokens/${id}/edit`, {
        note: 'y',
        scopes: 'styles:read',
        password: 'guess 5',
      });
      assert.equal(fifth.status, 303);
      assert.equal(fifth.location, '/signin?reason=revoked');
      assert.equal(browser.cookie('tessera_session'), undefined, 'the cookie is cleared');
    });
    const next = await browser.get('/account');
    assert.equal(next.status, 303);
    assert.match(next.location ?? '', /^\/signin/);
    const notice = await browser.get('/signin?reason=revoked');
    assert.match(notice.text, /signed out after too many wrong passwords/);
    const logged = warnings.find(
      (line) =>
        line.message === 'session revoked after wrong password confirmations' &&
        line.fields.username === username,
    );
    assert.ok(logged, 'the revocation is logged');
    assert.ok(!JSON.stringify(warnings).includes('guess'));
  });
});

describe('where sign-in leads (T47)', () => {
  const HOSTILE = [
    '//evil.test',
    '/\\evil.test',
    '\\\\evil.test',
    '/%2F%2Fevil.test',
    '/%5Cevil.test',
    '/account/%2F%2Fevil.test',
    'https://evil.test',
    'https://evil.test/account',
    'http:evil.test',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    '/account@evil.test',
    '/account/../../evil',
    '/account/..%2F..%2Fevil',
    ' /account',
    '/account ',
    '\t/account',
    '/account\r\nLocation: https://evil.test',
    '/account#@evil.test',
    `/account/${'a'.repeat(5000)}`,
    `/account?${'x'.repeat(5000)}`,
    '',
  ];

  function assertSafe(location: string | null, value: string): void {
    assert.ok(location, `${JSON.stringify(value)}: a Location`);
    assert.match(location, /^\/account(\/|\?|$)/, `${JSON.stringify(value)} led to ${location}`);
    assert.equal(new URL(location, server.url).origin, new URL(server.url).origin);
    assert.ok(location.length <= 512);
  }

  test('a hostile next after signing in always lands on a same-origin /account path', async () => {
    const username = await account();
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    for (const value of HOSTILE) {
      browser.clearCookies();
      await browser.get('/signin');
      const page = await browser.post('/signin', { username, password: PASSWORD, next: value });
      assert.equal(page.status, 303, value);
      assertSafe(page.location, value);
    }
  });

  test('nor does the sign-in page carry a hostile next in its form, or follow it when signed in', async () => {
    const browser = await signedIn(await account());
    const anonymous = new DashboardClient(server);
    for (const value of HOSTILE) {
      const query = `/signin?next=${encodeURIComponent(value)}`;
      assertSafe((await browser.get(query)).location, value);
      const form = await anonymous.get(query);
      const next = /name="next" value="([^"]*)"/.exec(form.text)?.[1] ?? '';
      assert.equal(next, '/account', value);
    }
  });

  test('a plain account path is kept', async () => {
    const username = await account();
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const page = await browser.post('/signin', {
      username,
      password: PASSWORD,
      next: '/account/statistics?period=7d',
    });
    assert.equal(page.location, '/account/statistics?period=7d');
  });
});

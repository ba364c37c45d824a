import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TokenMetadata } from '../src/core/tokens.ts';
import { api, createToken, startApiServer, tokensOf } from './helpers/api.ts';
import { DashboardClient, type Fields, type Page, visibleText as text } from './helpers/dashboard.ts';
import { verifyNginx, withToken } from './helpers/forward-auth.ts';
import { createTestAccount, ManualClock, type TestServer } from './helpers/server.ts';

// Token lifecycle in the dashboard, over HTTP as a browser sends it: rotation with a grace period
// (password confirmed, the new token shown once), expiry on the create and edit forms.

const PASSWORD = 'correct horse battery staple';
const HOUR = 3_600_000;
const clock = new ManualClock(Date.UTC(2027, 2, 10, 8, 0, 0));
let server: TestServer;
let accounts = 0;

before(async () => {
  server = await startApiServer({ clock });
});
after(() => server.close());

async function signedIn(prefix: string): Promise<{ browser: DashboardClient; username: string }> {
  const username = `${prefix}${++accounts}`;
  await createTestAccount(server.services, username);
  const browser = new DashboardClient(server);
  await browser.signInOk(username);
  return { browser, username };
}

/** Posts a form from its page, as a browser would, and answers the password confirmation if asked. */
async function confirmed(
  browser: DashboardClient,
  page: string,
  path: string,
  fields: Fields,
): Promise<Page> {
  await browser.get(page);
  const first = await browser.post(path, fields);
  if (first.status !== 403 || !first.text.includes('Confirm your password')) return first;
  return browser.post(path, { ...fields, password: PASSWORD });
}

async function code(token: string): Promise<string> {
  const answer = await api(server, 'GET', '/tokens/v2', { token });
  return (answer.body as { code: string }).code;
}

function tokenNamed(tokens: readonly TokenMetadata[], id: string): TokenMetadata {
  const token = tokens.find((entry) => entry.id === id);
  assert.ok(token, `token ${id} is listed`);
  return token;
}

/** The text of the tokens table row of `id`. */
function rowText(page: Page, id: string): string {
  const match = new RegExp(`<tr id="row-${id}">([\\s\\S]*?)</tr>`).exec(page.text);
  assert.ok(match, `a row for ${id}`);
  return text(match[1] ?? '');
}

/** The menu items (links) of the row of `id`, by their words. */
function menuOf(page: Page, id: string): string {
  const match = new RegExp(`<tr id="row-${id}">[\\s\\S]*?<details class="menu">([\\s\\S]*?)</details>`).exec(
    page.text,
  );
  return text(match?.[1] ?? '');
}

function utc(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

describe('rotating a token from the dashboard', () => {
  test('a secret token: the page explains, a wrong password changes nothing, the new token shows once, the old one works until the grace period ends', async () => {
    const { browser, username } = await signedIn('rotator');
    const old = await createToken(server, username, {
      note: 'backend',
      scopes: ['styles:read', 'tokens:read'],
    });
    const account = await browser.get('/account');
    assert.match(menuOf(account, old.id), /Edit Rotate Delete/);

    const page = await browser.get(`/account/tokens/${old.id}/rotate`);
    assert.equal(page.status, 200);
    const shown = text(page.text);
    assert.match(shown, /Rotate token/);
    assert.match(shown, /keeps working for the grace period you choose/);
    assert.match(shown, /The new secret token is shown once/);
    for (const label of ['No grace period: the old token stops working now', '1 hour', '1 day', '7 days'])
      assert.ok(shown.includes(label), label);
    assert.match(page.text, /<legend>Grace period<\/legend>/);
    assert.match(page.text, /id="grace-86400" type="radio" name="gracePeriod" value="86400" checked/);
    assert.match(page.text, /<button type="submit" class="button primary">Yes, rotate token<\/button>/);

    const before = await tokensOf(server, username);
    const ask = await browser.post(`/account/tokens/${old.id}/rotate`, { gracePeriod: '3600' });
    assert.equal(ask.status, 403);
    assert.match(ask.text, /Enter your password to rotate the token “backend”/);
    assert.match(ask.text, /<input type="hidden" name="gracePeriod" value="3600">/, 'the choice is carried');
    const wrong = await browser.post(`/account/tokens/${old.id}/rotate`, {
      gracePeriod: '3600',
      password: 'not the password',
    });
    assert.equal(wrong.status, 403);
    assert.match(wrong.text, /Incorrect password\. 4 attempts left before you are signed out\./);
    assert.deepEqual(await tokensOf(server, username), before, 'a wrong password rotates nothing');
    assert.equal(await code(old.token), 'TokenValid');

    const done = await browser.post(`/account/tokens/${old.id}/rotate`, {
      gracePeriod: '3600',
      password: PASSWORD,
    });
    assert.equal(done.status, 303);
    assert.equal(done.location, '/account');
    const graceUntil = clock.now() + HOUR;
    const reveal = await browser.get('/account');
    const secret = /id="new-token" class="token-value" type="text" readonly value="([^"]+)"/.exec(
      reveal.text,
    )?.[1];
    assert.match(secret ?? '', /^sk\./);
    assert.match(reveal.text, /This is your only chance to copy this secret token\./);
    assert.match(reveal.text, /data-copy="new-token"/, 'with a Copy button');
    assert.ok(
      text(reveal.text).includes(
        `Token “backend” rotated. The old token keeps working until ${utc(graceUntil)}, then it is refused everywhere.`,
      ),
    );

    const tokens = await tokensOf(server, username);
    const fresh = tokens.find((token) => token.rotatedFrom === old.id);
    assert.ok(fresh);
    assert.equal(tokenNamed(tokens, old.id).rotatedTo, fresh.id);
    assert.equal(
      rowText(reveal, old.id).includes(`Replaced by “backend”: keeps working until ${utc(graceUntil)}.`),
      true,
    );
    assert.equal(
      rowText(reveal, fresh.id).includes(`Replaces “backend” (old token works until ${utc(graceUntil)}).`),
      true,
    );
    assert.doesNotMatch(
      menuOf(reveal, old.id),
      /Rotate|Edit/,
      'a replaced token is not rotated or edited again',
    );
    assert.match(menuOf(reveal, old.id), /Replaced: edit or rotate its replacement Delete/);

    const again = await browser.get('/account');
    assert.equal(again.text.includes(secret ?? 'x'), false, 'the secret token is shown once');
    assert.doesNotMatch(again.text, /id="new-token"/);

    const style = `/styles/v1/${username}/streets`;
    assert.equal(await code(old.token), 'TokenValid', 'the old token works during the grace period');
    assert.equal((await verifyNginx(server, withToken(style, old.token))).status, 200);
    assert.equal(await code(secret ?? ''), 'TokenValid');
    clock.advance(HOUR);
    assert.equal(await code(old.token), 'TokenExpired', 'and is refused once it is over');
    const refused = await verifyNginx(server, withToken(style, old.token));
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('x-tessera-reason'), 'expired');
    assert.equal(await code(secret ?? ''), 'TokenValid');
    assert.equal((await verifyNginx(server, withToken(style, secret ?? ''))).status, 200);

    // An hour idle ended the session: a new one sees the rotation over.
    const later = new DashboardClient(server);
    await later.signInOk(username);
    const list = await later.get('/account');
    assert.ok(rowText(list, old.id).includes(`Replaced by “backend”. Stopped working ${utc(graceUntil)}.`));
  });

  test('a replaced token is not rotated or edited again: the pages say why and point at its replacement', async () => {
    const { browser, username } = await signedIn('twice');
    const old = await createToken(server, username, { note: 'worker', scopes: ['styles:read'] });
    const first = await confirmed(
      browser,
      `/account/tokens/${old.id}/rotate`,
      `/account/tokens/${old.id}/rotate`,
      {
        gracePeriod: '86400',
      },
    );
    assert.equal(first.status, 303);
    const fresh = (await tokensOf(server, username)).find(
      (token) => token.rotatedFrom === old.id,
    ) as TokenMetadata;

    const before = await tokensOf(server, username);
    for (const [path, heading, next] of [
      [
        `/account/tokens/${old.id}/rotate`,
        'This token cannot be rotated',
        `/account/tokens/${fresh.id}/rotate`,
      ],
      [`/account/tokens/${old.id}/edit`, 'This token cannot be changed', `/account/tokens/${fresh.id}/edit`],
    ] as const) {
      const page = await browser.get(path);
      assert.equal(page.status, 422, path);
      assert.match(page.text, new RegExp(`<h1>${heading}</h1>`));
      assert.match(
        text(page.text),
        /“worker” was rotated already: it works until .* UTC, then it is refused everywhere\./,
      );
      assert.ok(page.text.includes(`href="${next}"`), `${path} links to ${next}`);
      const post = await browser.post(path, {
        gracePeriod: '0',
        note: 'renamed',
        scopes: 'styles:read',
        password: PASSWORD,
      });
      assert.equal(post.status, 422, `POST ${path}`);
    }
    assert.deepEqual(await tokensOf(server, username), before, 'nothing changed');

    // Deleting it is still allowed, and ends its grace period.
    const deleted = await confirmed(
      browser,
      `/account/tokens/${old.id}/delete`,
      `/account/tokens/${old.id}/delete`,
      {},
    );
    assert.equal(deleted.status, 303);
    assert.equal(await code(old.token), 'TokenRevoked');
  });

  test('the default public token: its replacement becomes the default; with no grace period the old one stops at once', async () => {
    const { browser, username } = await signedIn('default');
    const account = await browser.get('/account');
    const oldToken =
      /id="default-token" class="token-value" type="text" readonly value="([^"]+)"/.exec(account.text)?.[1] ??
      '';
    const oldId = (await tokensOf(server, username)).find((token) => token.default)?.id ?? '';
    assert.match(text(account.text), /Menu for default public token Refresh Rotate/);

    const page = await browser.get(`/account/tokens/${oldId}/rotate`);
    assert.match(page.text, /<h1>Rotate default public token<\/h1>/);
    assert.match(text(page.text), /which becomes your default public token/);
    const done = await confirmed(
      browser,
      `/account/tokens/${oldId}/rotate`,
      `/account/tokens/${oldId}/rotate`,
      {
        gracePeriod: '0',
      },
    );
    assert.equal(done.status, 303);
    const after = await browser.get('/account');
    assert.ok(
      text(after.text).includes('Default public token rotated. The old token no longer works anywhere.'),
    );
    const fresh =
      /id="new-token" class="token-value" type="text" readonly value="([^"]+)"/.exec(after.text)?.[1] ?? '';
    assert.match(fresh, /^pk\./);
    assert.match(after.text, /This public token is also listed below/);
    const shownDefault = /id="default-token" class="token-value" type="text" readonly value="([^"]+)"/.exec(
      after.text,
    )?.[1];
    assert.equal(shownDefault, fresh, 'the new token is the default now');
    assert.equal(await code(oldToken), 'TokenExpired');
    assert.equal(await code(fresh), 'TokenValid');
    assert.ok(rowText(after, oldId).includes('Replaced by the default public token. Stopped working'));
  });

  test('only the offered grace periods: anything else is refused before the password is asked', async () => {
    const { browser, username } = await signedIn('grace');
    const token = await createToken(server, username, { note: 'x', scopes: ['styles:read'] });
    const before = await tokensOf(server, username);
    for (const gracePeriod of ['', '42', '-1', '604801', '1e3', 'one day']) {
      await browser.get(`/account/tokens/${token.id}/rotate`);
      const page = await browser.post(`/account/tokens/${token.id}/rotate`, {
        gracePeriod,
        password: PASSWORD,
      });
      assert.equal(page.status, 422, gracePeriod);
      assert.match(page.text, /Choose a grace period\./);
      assert.doesNotMatch(page.text, /Confirm your password/);
    }
    const none = await browser.post(`/account/tokens/${token.id}/rotate`, { password: PASSWORD });
    assert.equal(none.status, 422);
    assert.deepEqual(await tokensOf(server, username), before);
  });

  test('an expired token cannot be rotated: its menu and the rotate page say so', async () => {
    const { browser, username } = await signedIn('lapsed');
    const token = await createToken(server, username, {
      note: 'short-lived',
      scopes: ['styles:read'],
      expiresAt: new Date(clock.now() + 60_000).toISOString(),
    });
    clock.advance(60_000);
    const account = await browser.get('/account');
    assert.ok(rowText(account, token.id).includes(`Expired ${utc(clock.now())}`));
    assert.match(menuOf(account, token.id), /Edit Expired: cannot be rotated Delete/);
    const page = await browser.get(`/account/tokens/${token.id}/rotate`);
    assert.equal(page.status, 422);
    assert.match(text(page.text), /“short-lived” expired .* UTC\. Edit it to give it a new expiry/);
    const post = await browser.post(`/account/tokens/${token.id}/rotate`, {
      gracePeriod: '0',
      password: PASSWORD,
    });
    assert.equal(post.status, 422);
    assert.equal((await tokensOf(server, username)).filter((entry) => entry.rotatedFrom).length, 0);
  });
});

describe('expiry on the create and edit forms', () => {
  test('create with an expiry: the token expires then, and the list says when', async () => {
    const { browser, username } = await signedIn('expiring');
    const form = await browser.get('/account/tokens/new');
    assert.match(form.text, /<label for="expires-at">Expires \(UTC\)<\/label>/);
    assert.match(form.text, /<input id="expires-at" name="expiresAt" type="datetime-local" value=""/);
    const expires = new Date(clock.now() + 48 * HOUR);
    const field = expires.toISOString().slice(0, 16);
    const created = await confirmed(browser, '/account/tokens/new', '/account/tokens', {
      note: 'temporary site',
      scopes: 'styles:read',
      expiresAt: field,
    });
    assert.equal(created.status, 303);
    const token = (await tokensOf(server, username)).find((entry) => entry.note === 'temporary site');
    assert.equal(token?.expiresAt, `${field}:00.000Z`, 'the field is read as UTC');
    const account = await browser.get('/account');
    assert.ok(rowText(account, token?.id ?? '').includes(`Expires ${utc(Date.parse(`${field}Z`))}`));
    const value =
      /id="new-token" class="token-value" type="text" readonly value="([^"]+)"/.exec(account.text)?.[1] ?? '';
    assert.equal(await code(value), 'TokenValid');
    clock.advance(48 * HOUR);
    assert.equal(await code(value), 'TokenExpired');
  });

  test('an expiry in the past or not a date is refused on the form itself, before the password', async () => {
    const { browser, username } = await signedIn('pastdue');
    const before = await tokensOf(server, username);
    const cases: [string, RegExp][] = [
      [new Date(clock.now() - 60_000).toISOString().slice(0, 16), /The expiry must be in the future\./],
      [new Date(clock.now()).toISOString().slice(0, 16), /The expiry must be in the future\./],
      [
        '2027-02-30T10:00',
        /Enter the expiry as a UTC date and time, such as 2027-12-31T23:59, or leave it empty\./,
      ],
      ['next week', /Enter the expiry as a UTC date and time/],
    ];
    for (const [expiresAt, message] of cases) {
      await browser.get('/account/tokens/new');
      const page = await browser.post('/account/tokens', { note: 'kept', scopes: 'styles:read', expiresAt });
      assert.equal(page.status, 422, expiresAt);
      assert.match(page.text, message);
      assert.match(page.text, /<p class="notice error" role="alert">/);
      assert.ok(
        page.text.includes(`value="${expiresAt}" aria-invalid="true"`),
        'the field keeps what was typed, marked',
      );
      assert.match(page.text, /name="note" type="text" maxlength="256" value="kept"/);
      assert.doesNotMatch(page.text, /Confirm your password/);
    }
    assert.deepEqual(await tokensOf(server, username), before);
  });

  test('edit: set, change and clear the expiry; leaving the field alone keeps an expiry set to the second', async () => {
    const { browser, username } = await signedIn('editor');
    const precise = new Date(clock.now() + 5 * HOUR + 12_345).toISOString();
    const token = await createToken(server, username, {
      note: 'api-set',
      scopes: ['styles:read'],
      expiresAt: precise,
    });
    const edit = `/account/tokens/${token.id}/edit`;
    const form = await browser.get(edit);
    assert.ok(
      form.text.includes(`value="${precise.slice(0, 16)}"`),
      'the form shows the expiry to the minute',
    );

    const untouched = await confirmed(browser, edit, edit, {
      note: 'renamed',
      scopes: 'styles:read',
      expiresAt: precise.slice(0, 16),
    });
    assert.equal(untouched.status, 303);
    let stored = tokenNamed(await tokensOf(server, username), token.id);
    assert.equal(stored.note, 'renamed');
    assert.equal(stored.expiresAt, precise, 'unchanged, seconds and all');

    const later = new Date(clock.now() + 72 * HOUR).toISOString().slice(0, 16);
    assert.equal(
      (await confirmed(browser, edit, edit, { note: 'renamed', scopes: 'styles:read', expiresAt: later }))
        .status,
      303,
    );
    stored = tokenNamed(await tokensOf(server, username), token.id);
    assert.equal(stored.expiresAt, `${later}:00.000Z`);

    const past = new Date(clock.now() - HOUR).toISOString().slice(0, 16);
    await browser.get(edit);
    const refused = await browser.post(edit, {
      note: 'renamed',
      scopes: 'styles:read',
      expiresAt: past,
      password: PASSWORD,
    });
    assert.equal(refused.status, 422);
    assert.match(refused.text, /The expiry must be in the future\./);
    assert.equal(tokenNamed(await tokensOf(server, username), token.id).expiresAt, `${later}:00.000Z`);

    assert.equal(
      (await confirmed(browser, edit, edit, { note: 'renamed', scopes: 'styles:read', expiresAt: '' }))
        .status,
      303,
    );
    stored = tokenNamed(await tokensOf(server, username), token.id);
    assert.equal(stored.expiresAt, undefined, 'an empty field removes the expiry');
    assert.doesNotMatch(rowText(await browser.get('/account'), token.id), /Expire/);
  });

  test('an expired token can still be edited, and a new expiry brings it back', async () => {
    const { browser, username } = await signedIn('revived');
    const token = await createToken(server, username, {
      note: 'lapsed',
      scopes: ['styles:read'],
      expiresAt: new Date(clock.now() + 1000).toISOString(),
    });
    clock.advance(1000);
    assert.equal(await code(token.token), 'TokenExpired');
    const edit = `/account/tokens/${token.id}/edit`;
    const renamed = await confirmed(browser, edit, edit, {
      note: 'lapsed, renamed',
      scopes: 'styles:read',
      expiresAt: token.expiresAt?.slice(0, 16) ?? '',
    });
    assert.equal(renamed.status, 303, 'the expiry shown was sent back untouched');
    const future = new Date(clock.now() + HOUR).toISOString().slice(0, 16);
    assert.equal(
      (await confirmed(browser, edit, edit, { note: 'lapsed', scopes: 'styles:read', expiresAt: future }))
        .status,
      303,
    );
    assert.equal(await code(token.token), 'TokenValid');
  });

  test('the default token has no expiry to set: its edit form is the refresh page, and a forged edit is refused', async () => {
    const { browser, username } = await signedIn('defaults');
    const id = (await tokensOf(server, username)).find((token) => token.default)?.id ?? '';
    const form = await browser.get(`/account/tokens/${id}/edit`);
    assert.equal(form.status, 303);
    assert.equal(form.location, `/account/tokens/${id}/refresh`);
    await browser.get('/account');
    const forged = await browser.post(`/account/tokens/${id}/edit`, {
      note: 'x',
      expiresAt: new Date(clock.now() + HOUR).toISOString().slice(0, 16),
      password: PASSWORD,
    });
    assert.equal(forged.status, 403);
    assert.equal((await tokensOf(server, username)).find((token) => token.default)?.expiresAt, undefined);
  });
});

describe('a leaked public token on the account page', () => {
  test('says it was reported and still works, until it is rotated', async () => {
    const { browser, username } = await signedIn('leak');
    const leaked = await createToken(server, username, { scopes: ['styles:read'], note: 'Site' });
    const reporter = await createToken(server, username, { scopes: ['styles:write'], note: 'Server' });
    const report = await api(server, 'POST', '/leaks/v1/report', {
      token: reporter.token,
      json: { token: leaked.token, url: 'https://pastebin.example/x' },
    });
    assert.equal(report.status, 200, report.text);
    const page = await browser.get('/account');
    assert.match(text(page.text), /Reported as leaked .*: it still works; rotate it if it is being abused\./);
    assert.equal(await code(leaked.token), 'TokenValid');
    const activity = await browser.get('/account/audit');
    assert.match(text(activity.text), /Token reported as leaked/);
  });
});

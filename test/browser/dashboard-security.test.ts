/**
 * The dashboard under failure and attack, in headless Chromium: wrong passwords, expired
 * confirmations, cross-site form posts, XSS in token names and URLs, a secret token leaking past
 * its one page, clickjacking, open redirects after sign-in and session fixation.
 *
 * Attackers are tiny HTTP servers of our own on another origin: one on 127.0.0.1 and another port
 * (same site, so the victim's SameSite=Lax cookie still goes along and only the CSRF check stands in
 * the way), one on 127.0.0.2 (another site altogether).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import type { Page, Response } from 'playwright-core';
import { api, createToken, tokensOf } from '../helpers/api.ts';
import { browserSkipReason, launchBrowser, type TestBrowser, type TestPage } from '../helpers/browser.ts';
import {
  clickAndWait,
  confirmPassword,
  fillTokenForm,
  isAskingForPassword,
  noticeText,
  open,
  readToken,
  signIn,
  submitSignIn,
  TEST_PASSWORD,
  type TokenFormFields,
} from '../helpers/dashboard-browser.ts';
import {
  createTestAccount,
  ManualClock,
  startTestServer,
  type TestAccount,
  type TestServer,
} from '../helpers/server.ts';

const SESSION_COOKIE = 'tessera_session';
const FORM_COOKIE = 'tessera_form';
const CONFIRMATION_MS = 5 * 60_000;
const FORM_EXPIRED = 'This form has expired. Reload the page and try again.';
const ATTACKER = 'csrf-attacker';
const CROSS_SITE_REFUSED = 'This form was sent from another site, so it was refused.';

const skip = browserSkipReason();
const clock = new ManualClock();
let server: TestServer;
let browser: TestBrowser;
/** http://127.0.0.1:<another port>: another origin, but the same site. */
let sameSite: Attacker;
/** http://127.0.0.2:<port>: another site. */
let crossSite: Attacker;

describe('dashboard failures and attacks', skip === undefined ? {} : { skip }, () => {
  before(async () => {
    [server, browser, sameSite, crossSite] = await Promise.all([
      startTestServer({ clock }),
      launchBrowser(),
      startAttacker('127.0.0.1'),
      startAttacker('127.0.0.2'),
    ]);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.close(), sameSite?.close(), crossSite?.close()]);
  });

  // Independent browsers and accounts: run side by side. The clock stands still meanwhile.
  describe('attacks', { concurrency: 3 }, () => {
    test('a wrong password at sign-in gets one generic answer, sets no session, and the right one works', async (t) => {
      await createTestAccount(server.services, 'wrong-signin');
      const tab = await newTab(t);
      const unknown = await failSignIn(tab, 'nobody-here', TEST_PASSWORD);
      const wrong = await failSignIn(tab, 'wrong-signin', 'not the password at all');
      for (const answer of [unknown, wrong]) {
        assert.equal(answer.status, 401);
        assert.equal(answer.notice, 'Incorrect username or password.');
        assert.equal(answer.path, '/signin');
        assert.equal(answer.sessionCookie, undefined, 'a refused sign-in sets no session cookie');
      }
      assert.equal(unknown.mainText, wrong.mainText, 'the two pages read the same');
      assert.deepEqual(unknown.setCookieNames, wrong.setCookieNames, 'the two answers set the same cookies');

      await submitSignIn(tab.page, 'wrong-signin');
      assert.equal(pathOf(tab.page), '/account');
      assert.ok(await cookieOf(tab, SESSION_COOKIE), 'the right password starts a session');
      await assertSignedInAs(tab, 'wrong-signin');
    });

    test('wrong passwords at confirmation create nothing, and the 5th signs the user out for good', async (t) => {
      const { tab, account } = await signedIn(t, 'wrong-confirm');
      const before = await tokensOf(server, account.username);
      const oldSession = await cookieOf(tab, SESSION_COOKIE);
      assert.ok(oldSession);

      await startCreate(tab.page, { name: 'Never created', check: ['tokens:read'] });
      for (const left of [4, 3, 2, 1]) {
        const answer = await confirmWith(tab.page, 'wrong password, again');
        assert.equal(answer?.status(), 403);
        assert.ok(await isAskingForPassword(tab.page), 'asked for the password again');
        const attempts = left === 1 ? '1 attempt' : `${left} attempts`;
        assert.equal(
          await noticeText(tab.page),
          `Incorrect password. ${attempts} left before you are signed out.`,
        );
        assert.deepEqual(await tokensOf(server, account.username), before, 'no token created');
      }
      await confirmWith(tab.page, 'wrong password, again');
      assert.equal(pathOf(tab.page), '/signin');
      assert.equal(
        await noticeText(tab.page),
        'You were signed out after too many wrong passwords. Sign in again.',
      );
      assert.deepEqual(await tokensOf(server, account.username), before, 'no token created');
      assert.equal(await cookieOf(tab, SESSION_COOKIE), undefined, 'the cookie is cleared');

      // The old cookie, replayed in another browser, opens nothing: the session ended on the server.
      const replay = await newTab(t);
      await replay.context.addCookies([{ name: SESSION_COOKIE, value: oldSession, url: server.url }]);
      await open(replay.page, server.url, '/account');
      assert.equal(pathOf(replay.page), '/signin');
    });

    test('form posts from another origin of the same site are refused by the CSRF check alone', async (t) => {
      const [{ tab: victim, account }, { csrf: attackerCsrf, anonymousCsrf }] = await Promise.all([
        confirmedVictim(t, 'csrf-victim'),
        attackerTokens(),
      ]);
      const target = await tokenNamed(account.username, 'Target');
      const before = await tokensOf(server, account.username);
      const session = await cookieOf(victim, SESSION_COOKIE);

      const attacks: [string, Record<string, string>][] = [
        ['/account/tokens', { _csrf: attackerCsrf, note: 'Planted', scopes: 'tokens:write' }],
        [`/account/tokens/${target.id}/delete`, { _csrf: attackerCsrf }],
        ['/signout', { _csrf: attackerCsrf }],
        ['/signin', { _csrf: anonymousCsrf, username: ATTACKER, password: TEST_PASSWORD }],
      ];
      for (const [path, fields] of attacks) {
        const answer = await forge(victim, sameSite, path, fields);
        assert.equal(answer.site, 'same-site', `${path}: Chromium calls it same-site`);
        assert.equal(answer.origin, sameSite.origin, `${path}: Chromium sends the attacker's Origin`);
        assert.match(answer.cookie ?? '', /tessera_session=/, `${path}: the session cookie went along`);
        assert.equal(answer.status, 403, `${path}: refused`);
        assert.equal(answer.message, CROSS_SITE_REFUSED, `${path}: says why`);
        assert.deepEqual(await tokensOf(server, account.username), before, `${path}: nothing changed`);
      }
      assert.equal(await cookieOf(victim, SESSION_COOKIE), session, 'the session cookie is untouched');
      await assertSignedInAs(victim, 'csrf-victim');
    });

    test('form posts from another site are refused before the session is looked at', async (t) => {
      const [{ tab: victim, account }, { csrf: attackerCsrf, anonymousCsrf }] = await Promise.all([
        confirmedVictim(t, 'csrf-victim-2'),
        attackerTokens(),
      ]);
      const target = await tokenNamed(account.username, 'Target');
      const before = await tokensOf(server, account.username);
      const attacks: [string, Record<string, string>][] = [
        ['/account/tokens', { _csrf: attackerCsrf, note: 'Planted', scopes: 'tokens:write' }],
        [`/account/tokens/${target.id}/delete`, { _csrf: attackerCsrf }],
        ['/signout', { _csrf: attackerCsrf }],
        ['/signin', { _csrf: anonymousCsrf, username: ATTACKER, password: TEST_PASSWORD }],
      ];
      for (const [path, fields] of attacks) {
        const answer = await forge(victim, crossSite, path, fields);
        assert.equal(answer.site, 'cross-site', `${path}: Chromium calls it cross-site`);
        assert.equal(answer.origin, crossSite.origin, `${path}: Chromium sends the attacker's Origin`);
        assert.doesNotMatch(answer.cookie ?? '', /tessera_session=/, `${path}: SameSite=Lax kept the cookie`);
        // Refused as cross-site (403), not sent to sign in (303) because the cookie stayed home.
        assert.equal(answer.status, 403, `${path}: refused`);
        assert.equal(answer.message, CROSS_SITE_REFUSED, `${path}: says why`);
        assert.deepEqual(await tokensOf(server, account.username), before, `${path}: nothing changed`);
      }
      await assertSignedInAs(victim, 'csrf-victim-2');
    });

    test('login CSRF cannot sign a signed-out browser into the attacker account', async (t) => {
      const { anonymousCsrf } = await attackerTokens();
      const victim = await newTab(t);
      await open(victim.page, server.url, '/signin');
      for (const attacker of [sameSite, crossSite]) {
        const answer = await forge(victim, attacker, '/signin', {
          _csrf: anonymousCsrf,
          username: ATTACKER,
          password: TEST_PASSWORD,
        });
        assert.equal(answer.status, 403, `from ${attacker.origin}`);
        assert.equal(await cookieOf(victim, SESSION_COOKIE), undefined, 'no session was started');
      }
      await open(victim.page, server.url, '/account');
      assert.equal(pathOf(victim.page), '/signin');
    });

    test('a form token copied from another session is refused', async (t) => {
      const [{ tab: victim, account }, { csrf: foreign }] = await Promise.all([
        confirmedVictim(t, 'copied-token'),
        attackerTokens(),
      ]);
      const target = await tokenNamed(account.username, 'Target');
      await open(victim.page, server.url, `/account/tokens/${target.id}/delete`);
      const own = await victim.page.locator('input[name="_csrf"]').first().inputValue();
      assert.notEqual(own, foreign);
      await setFormTokens(victim.page, foreign);
      const answer = await submitAndWait(victim.page, 'Yes, delete token');
      assert.equal(answer?.status(), 403);
      assert.equal(await victim.page.locator('main p').first().textContent(), FORM_EXPIRED);
      assert.ok((await tokenIds(account.username)).includes(target.id), 'not deleted');

      // The same form with its own token goes through (the confirmation is still fresh).
      await open(victim.page, server.url, `/account/tokens/${target.id}/delete`);
      await submitAndWait(victim.page, 'Yes, delete token');
      assert.equal((await tokenIds(account.username)).includes(target.id), false);
    });

    test('XSS payloads in token names and allowed URLs render as text on every page', async (t) => {
      const { tab, account } = await signedIn(t, 'xss-victim');
      const names = [
        '<img src=x onerror=alert(1)>',
        '"><svg onload=alert(1)>',
        'javascript:alert(1)',
        `</textarea>'"><img src=x onerror=alert(2)>`,
      ];
      // URLs the validator accepts although they carry markup.
      const urlPayloads = [
        'https://xss.test/"><svg/onload=alert(3)>',
        "https://xss.test/'><img/src=x/onerror=alert(4)>",
      ];

      // The bare payloads are refused as allowed URLs; the re-rendered form holds them as text.
      await startCreateFrom(tab.page, { name: names[0] ?? '', check: ['styles:read'], allowedUrls: names });
      assert.equal(await tab.page.getByLabel('Token name').inputValue(), names[0]);
      assert.equal(await tab.page.getByLabel('Allowed URLs').inputValue(), names.join('\n'));
      await assertInert(tab, 'the refused form');
      await fillTokenForm(tab.page, { allowedUrls: urlPayloads });
      await clickAndWait(tab.page, tab.page.getByRole('button', { name: 'Create token' }));
      await assertInert(tab, 'the password confirmation');
      await confirmPassword(tab.page);
      await assertInert(tab, 'the tokens page with its notice');
      for (const [index, name] of names.slice(1).entries()) {
        await open(tab.page, server.url, '/account/tokens/new');
        await fillTokenForm(tab.page, {
          name,
          check: ['styles:read'],
          allowedUrls: [urlPayloads[index % urlPayloads.length] ?? ''],
        });
        await clickAndWait(tab.page, tab.page.getByRole('button', { name: 'Create token' }));
        assert.equal(pathOf(tab.page), '/account', `${name} created`);
      }

      // The Tokens API refuses the bare payloads as allowed URLs too; a record holding them anyway
      // (an older version, an import) must still render as text.
      const created = await api(server, 'POST', `/tokens/v2/${account.username}`, {
        token: account.adminToken,
        json: { note: 'api', scopes: ['styles:read'], allowedUrls: names },
      });
      assert.equal(created.status, 422, created.text);
      await plantAllowedUrls((await tokenNamed(account.username, names[0] ?? '')).id, names);

      const tokens = (await tokensOf(server, account.username)).filter((token) => names.includes(token.note));
      assert.equal(tokens.length, names.length);
      for (const token of tokens)
        server.services.usage.record(account.username, token.id, 'styles', 'allowed', clock.now());
      await server.services.usage.flush();

      await open(tab.page, server.url, '/account');
      await assertInert(tab, '/account');
      const cells = await tab.page
        .locator('th.token-name')
        .evaluateAll((elements) => elements.map((cell) => cell.firstChild?.textContent ?? ''));
      for (const name of names) assert.ok(cells.includes(name), `the name cell reads ${name}`);
      const urls = await tab.page.locator('table.tokens td code').allTextContents();
      for (const url of [...names, ...urlPayloads])
        assert.ok(urls.includes(url), `the URL cell reads ${url}`);

      for (const token of tokens) {
        await open(tab.page, server.url, `/account/tokens/${token.id}/edit`);
        await assertInert(tab, `edit ${token.note}`);
        assert.equal(await tab.page.getByLabel('Token name').inputValue(), token.note);
        assert.equal(
          await tab.page.getByLabel('Allowed URLs').inputValue(),
          (token.allowedUrls ?? []).join('\n'),
        );

        await open(tab.page, server.url, `/account/tokens/${token.id}/delete`);
        await assertInert(tab, `delete ${token.note}`);
        const shown = await tab.page.locator('dl.details dd').first().textContent();
        assert.equal(shown, token.note);

        await open(tab.page, server.url, `/account/tokens/${token.id}/rotate`);
        await assertInert(tab, `rotate ${token.note}`);
        assert.equal(await tab.page.locator('dl.details dd').first().textContent(), token.note);
      }

      // The activity log names every one of these tokens, as text.
      await open(tab.page, server.url, '/account/audit');
      await assertInert(tab, '/account/audit');
      const labels = await tab.page.locator('table.audit .token-label').allTextContents();
      for (const name of names) assert.ok(labels.includes(`“${name}”`), `the log reads ${name}`);

      await open(tab.page, server.url, '/account/statistics');
      await assertInert(tab, '/account/statistics');
      const legend = await tab.page.locator('.chart-legend-name').allTextContents();
      const columns = await tab.page.locator('table.data thead th').allTextContents();
      for (const name of names) {
        assert.ok(legend.includes(name), `the chart legend reads ${name}`);
        assert.ok(columns.includes(name), `the table reads ${name}`);
      }
    });

    test('a new secret token appears on exactly one page, and never in the database', async (t) => {
      const { tab, account } = await signedIn(t, 'secret-once');
      const documents: Response[] = [];
      tab.page.on('response', (response) => {
        if (response.request().resourceType() === 'document') documents.push(response);
      });
      await createThroughForm(tab.page, { name: 'Shown once', check: ['tokens:read'] });
      const secret = await readToken(tab.page, 'New token');
      assert.match(secret, /^sk\./);
      const reveal = documents.at(-1);
      assert.ok(reveal);
      assert.equal(new URL(reveal.url()).pathname, '/account');
      assert.match((await reveal.allHeaders())['cache-control'] ?? '', /no-store/);
      assert.ok((await reveal.text()).includes(secret));
      const token = await tokenNamed(account.username, 'Shown once');

      documents.length = 0;
      const seen: string[] = [];
      const look = async (where: string) => seen.push(`${where}\n${await tab.page.content()}`);
      // Not /account first: Chromium lets a navigation to the URL shown now replace its history entry.
      const pages = [
        '/account/statistics',
        `/account/tokens/${token.id}/edit`,
        `/account/tokens/${token.id}/delete`,
        '/account/password',
        '/account',
      ];
      for (const path of pages) {
        await open(tab.page, server.url, path);
        await look(path);
      }
      // Back to the page that showed the token (Playwright's Chromium has no back/forward cache, so
      // this is the HTTP cache's doing, which no-store keeps out), and forward again.
      for (const step of pages.keys()) {
        await tab.page.goBack();
        await look(`back ${step + 1}: ${tab.page.url()}`);
      }
      assert.equal(pathOf(tab.page), '/account', 'back at the page that showed the token');
      assert.equal(await tab.page.getByRole('textbox', { name: 'New token' }).count(), 0);
      await tab.page.goForward();
      await look(`forward: ${tab.page.url()}`);
      for (const response of documents) seen.push(`${response.url()}\n${await bodyOf(response)}`);
      const leaks = seen.filter((text) => text.includes(secret)).map((text) => text.split('\n')[0]);
      assert.deepEqual(leaks, [], 'the secret token shows up again');
      assert.equal(tab.page.url().includes(secret), false);

      // sk.<payload: username and id>.<256 random bits><6-character checksum>
      const randomPart = (secret.split('.')[2] ?? '').slice(0, -6);
      assert.ok(randomPart.length >= 40);
      const files = filesUnder(server.dataDir);
      const names = files.map((file) => file.slice(server.dataDir.length + 1));
      assert.ok(names.includes('tessera.db') && names.includes('tessera.db-wal'), names.join(', '));
      for (const file of files) {
        const bytes = readFileSync(file);
        assert.equal(bytes.includes(secret), false, `${file} holds the secret token`);
        assert.equal(bytes.includes(randomPart), false, `${file} holds its random part`);
        assert.equal(bytes.includes(TEST_PASSWORD), false, `${file} holds the password`);
      }
    });

    test('another origin cannot frame the dashboard', async (t) => {
      const { tab } = await signedIn(t, 'framed');
      for (const attacker of [sameSite, crossSite]) {
        const framed = new URL('/account', server.url).href;
        const answered = tab.page.waitForResponse((response) => response.url() === framed);
        await tab.page.goto(
          attacker.page(`<!doctype html><iframe src="${framed}" width="800" height="600"></iframe>`),
        );
        const headers = (await answered).headers();
        assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
        assert.equal(headers['x-frame-options'], 'DENY');
        const frame = tab.page.frames().find((candidate) => candidate !== tab.page.mainFrame());
        assert.ok(frame, 'the iframe exists');
        assert.equal(frame.url().startsWith(server.url), false, `the frame shows ${frame.url()}`);
        const text = await frame.evaluate('document.body ? document.body.innerText : ""').catch(() => '');
        assert.equal(
          String(text).includes('Access tokens'),
          false,
          'the dashboard is not shown in the frame',
        );
      }
    });

    test('sign-in never redirects off-site, however next= is spelt', async (t) => {
      await createTestAccount(server.services, 'redirects');
      const evil = [
        '//evil.test/',
        '/\\evil.test',
        'https://evil.test',
        '/%2F%2Fevil.test',
        'javascript:alert(1)',
        '/account@evil.test',
        '/account/..//evil.test',
        ' //evil.test',
      ];
      const tab = await newTab(t);
      // Were the browser sent there, it would show this rather than a network error.
      await tab.context.route(
        (url) => url.hostname === 'evil.test',
        (route) => route.fulfill({ body: 'evil', contentType: 'text/plain' }),
      );
      for (const next of evil) {
        await open(tab.page, server.url, `/signin?${new URLSearchParams({ next })}`);
        assert.equal(
          await tab.page.locator('input[name="next"]').inputValue(),
          '/account',
          `GET sanitises ${next}`,
        );
        // What the server does with the raw value in the post, as a crafted form would send it.
        await tab.page.locator('input[name="next"]').evaluate((input, value) => {
          input.value = value;
        }, next);
        await submitSignIn(tab.page, 'redirects');
        assert.equal(tab.page.url(), new URL('/account', server.url).href, `next=${next}`);
        // Signed in, the sign-in page sends straight on: to the same safe place.
        await open(tab.page, server.url, `/signin?${new URLSearchParams({ next })}`);
        assert.equal(tab.page.url(), new URL('/account', server.url).href, `signed in, next=${next}`);
        assert.deepEqual(tab.dialogs, []);
        await tab.context.clearCookies();
      }
      // A plain account path is honoured, so the refusals above are not just "next= is ignored".
      await signIn(tab.page, server.url, 'redirects', { next: '/account/statistics' });
      assert.equal(pathOf(tab.page), '/account/statistics');
    });

    test('sign-in starts a new session: cookies from before it grant nothing', async (t) => {
      await createTestAccount(server.services, 'fixation');
      const tokens = await tokensOf(server, 'fixation');
      const tab = await newTab(t);
      const planted = randomUUID().replaceAll('-', '').padEnd(43, 'A');
      await tab.context.addCookies([{ name: SESSION_COOKIE, value: planted, url: server.url }]);
      await open(tab.page, server.url, '/signin');
      const before = await tab.context.cookies(server.url);
      const anonymousCsrf = await tab.page.locator('input[name="_csrf"]').first().inputValue();
      assert.ok(
        before.some((cookie) => cookie.name === FORM_COOKIE),
        'an anonymous form cookie is set',
      );

      await submitSignIn(tab.page, 'fixation');
      assert.equal(pathOf(tab.page), '/account');
      const session = await cookieOf(tab, SESSION_COOKIE);
      assert.ok(session);
      for (const cookie of before)
        assert.notEqual(session, cookie.value, `the session id is not ${cookie.name}'s`);

      // The cookies from before sign-in, in another browser: not signed in.
      const replay = await newTab(t);
      await replay.context.addCookies(before.map(({ name, value }) => ({ name, value, url: server.url })));
      await open(replay.page, server.url, '/account');
      assert.equal(pathOf(replay.page), '/signin');

      // The form token from before sign-in does not work on a signed-in form.
      await open(tab.page, server.url, '/account/tokens/new');
      await fillTokenForm(tab.page, { name: 'Old form token', check: ['tokens:read'] });
      await setFormTokens(tab.page, anonymousCsrf);
      const answer = await submitAndWait(tab.page, 'Create token');
      assert.equal(answer?.status(), 403);
      assert.deepEqual(await tokensOf(server, 'fixation'), tokens);
    });
  });

  // Moves the shared clock, so it runs alone, after the rest.
  describe('time', () => {
    test('a confirmation expires after 5 minutes: deleting then asks for the password again', async (t) => {
      const { tab, account } = await signedIn(t, 'expired-confirm');
      // Creating the first token is the confirmation; the second only needs to exist.
      await createThroughForm(tab.page, { name: 'Deleted early', check: ['tokens:read'] });
      const early = await tokenNamed(account.username, 'Deleted early');
      const late = await createToken(server, account.username, {
        note: 'Deleted late',
        scopes: ['tokens:read'],
      });

      // Inside the window the delete needs no password...
      clock.advance(CONFIRMATION_MS - 1000);
      await deleteThroughPage(tab.page, early.id);
      assert.equal(pathOf(tab.page), '/account');
      assert.equal((await tokenIds(account.username)).includes(early.id), false);

      // ...one second past it, the password is asked for again and nothing is deleted until it is given.
      clock.advance(2000);
      const answer = await deleteThroughPage(tab.page, late.id);
      assert.equal(answer?.status(), 403);
      assert.ok(await isAskingForPassword(tab.page), 'asked for the password again');
      assert.ok((await tokenIds(account.username)).includes(late.id), 'nothing deleted yet');
      await confirmPassword(tab.page);
      assert.equal(pathOf(tab.page), '/account');
      assert.equal(await noticeText(tab.page), 'Token “Deleted late” deleted. It no longer works anywhere.');
      assert.equal((await tokenIds(account.username)).includes(late.id), false);
    });
  });
});

// --- The victim and the attacker -------------------------------------------------------------------

/** A fresh browser context for this test, closed when it ends. */
async function newTab(t: Hooks): Promise<TestPage> {
  const tab = await browser.newPage();
  t.after(() => tab.context.close());
  return tab;
}

type Hooks = Pick<TestContext, 'after'>;

async function signedIn(t: Hooks, username: string): Promise<{ tab: TestPage; account: TestAccount }> {
  const account = await createTestAccount(server.services, username);
  const tab = await newTab(t);
  await signIn(tab.page, server.url, username);
  assert.equal(pathOf(tab.page), '/account');
  return { tab, account };
}

/** A signed-in victim who has just confirmed their password (by creating "Target"): only CSRF protection is left. */
async function confirmedVictim(t: Hooks, username: string): Promise<{ tab: TestPage; account: TestAccount }> {
  const victim = await signedIn(t, username);
  await createThroughForm(victim.tab.page, { name: 'Target', check: ['tokens:read'] });
  assert.equal(pathOf(victim.tab.page), '/account');
  return victim;
}

interface AttackerTokens {
  readonly csrf: string;
  readonly anonymousCsrf: string;
}

let attackerTokenPromise: Promise<AttackerTokens> | undefined;

/**
 * The best form tokens an attacker can get: those of their own session and of their own signed-out
 * browser. Signed in once per file: the session outlives the attacker's browser.
 */
function attackerTokens(): Promise<AttackerTokens> {
  attackerTokenPromise ??= signInAttacker(ATTACKER);
  return attackerTokenPromise;
}

async function signInAttacker(username: string): Promise<AttackerTokens> {
  await createTestAccount(server.services, username);
  const tab = await browser.newPage();
  await open(tab.page, server.url, '/signin');
  const anonymousCsrf = await tab.page.locator('input[name="_csrf"]').first().inputValue();
  await submitSignIn(tab.page, username);
  const csrf = await tab.page.locator('input[name="_csrf"]').first().inputValue();
  assert.notEqual(csrf, anonymousCsrf);
  await tab.context.close();
  return { csrf, anonymousCsrf };
}

interface Forged {
  readonly status: number;
  readonly message: string;
  readonly origin: string | undefined;
  readonly site: string | undefined;
  readonly cookie: string | undefined;
}

/** The victim's browser opens an attacker page that posts a form to `path` on load. */
async function forge(
  victim: TestPage,
  attacker: Attacker,
  path: string,
  fields: Readonly<Record<string, string>>,
): Promise<Forged> {
  const target = new URL(path, server.url).href;
  const answered = victim.page.waitForResponse(
    (response) => response.url() === target && response.request().method() === 'POST',
  );
  await victim.page.goto(attacker.page(autoPost(target, fields)), { waitUntil: 'commit' });
  const response = await answered;
  const headers = await response.request().allHeaders();
  await victim.page.waitForURL((url) => url.href.startsWith(server.url));
  const message =
    response.status() === 403 ? ((await victim.page.locator('main p').first().textContent()) ?? '') : '';
  return {
    status: response.status(),
    message,
    origin: headers.origin,
    site: headers['sec-fetch-site'],
    cookie: headers.cookie,
  };
}

function autoPost(action: string, fields: Readonly<Record<string, string>>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${attr(name)}" value="${attr(value)}">`)
    .join('');
  return `<!doctype html><form id="f" method="post" action="${attr(action)}">${inputs}</form><script>document.getElementById('f').submit()</script>`;
}

interface Attacker {
  readonly origin: string;
  /** Serves `html` at a fresh path; returns its URL. */
  page(html: string): string;
  close(): Promise<void>;
}

async function startAttacker(host: string): Promise<Attacker> {
  const pages = new Map<string, string>();
  const http = createServer((request, response) => {
    const body = pages.get(request.url ?? '');
    response.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(body ?? 'not found');
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, host, resolve);
  });
  const origin = `http://${host}:${(http.address() as AddressInfo).port}`;
  return {
    origin,
    page(html) {
      const path = `/${randomUUID()}`;
      pages.set(path, html);
      return `${origin}${path}`;
    },
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}

// --- Dashboard steps --------------------------------------------------------------------------------

/** From the tokens page: Create a token, fill the form, Create token; stops at whatever answers. */
async function startCreateFrom(page: Page, fields: TokenFormFields): Promise<void> {
  await open(page, server.url, '/account');
  await clickAndWait(page, page.getByRole('link', { name: 'Create a token' }));
  await fillTokenForm(page, fields);
  await clickAndWait(page, page.getByRole('button', { name: 'Create token' }));
}

async function startCreate(page: Page, fields: TokenFormFields): Promise<void> {
  await startCreateFrom(page, fields);
  assert.ok(await isAskingForPassword(page), 'the first create asks for the password');
}

async function createThroughForm(page: Page, fields: TokenFormFields): Promise<void> {
  await startCreateFrom(page, fields);
  if (await isAskingForPassword(page)) await confirmPassword(page);
  assert.equal(pathOf(page), '/account');
}

/** Enters `password` on the confirmation shown now; returns the answer to that post. */
async function confirmWith(page: Page, password: string): Promise<Response | null> {
  await page.getByLabel('Password', { exact: true }).fill(password);
  return submitAndWait(page, 'Confirm');
}

/** Menu, Delete, Yes, delete token; returns the answer to the post. */
async function deleteThroughPage(page: Page, id: string): Promise<Response | null> {
  await open(page, server.url, '/account');
  const menu = page.locator('details.menu').filter({ has: page.locator(`a[href$="/tokens/${id}/delete"]`) });
  await menu.getByText('Menu').click();
  await clickAndWait(page, menu.getByRole('link', { name: 'Delete', exact: true }));
  return submitAndWait(page, 'Yes, delete token');
}

/** Clicks a submit button and returns the first answer of the navigation (before any redirect). */
async function submitAndWait(page: Page, button: string): Promise<Response | null> {
  const posted = page.waitForResponse((response) => response.request().method() === 'POST');
  await clickAndWait(page, page.getByRole('button', { name: button }));
  return posted;
}

async function setFormTokens(page: Page, value: string): Promise<void> {
  await page.locator('main input[name="_csrf"]').evaluateAll((inputs, token) => {
    for (const input of inputs) input.value = token;
  }, value);
}

interface FailedSignIn {
  readonly status: number;
  readonly notice: string | undefined;
  readonly path: string;
  readonly mainText: string;
  readonly setCookieNames: string[];
  readonly sessionCookie: string | undefined;
}

async function failSignIn(tab: TestPage, username: string, password: string): Promise<FailedSignIn> {
  await open(tab.page, server.url, '/signin');
  const posted = tab.page.waitForResponse((response) => response.request().method() === 'POST');
  await submitSignIn(tab.page, username, password);
  const response = await posted;
  const setCookies = (await response.headersArray()).filter(
    ({ name }) => name.toLowerCase() === 'set-cookie',
  );
  return {
    status: response.status(),
    notice: await noticeText(tab.page),
    path: pathOf(tab.page),
    mainText: (await tab.page.locator('main').textContent()) ?? '',
    setCookieNames: setCookies.map(({ value }) => value.split('=')[0] ?? '').sort(),
    sessionCookie: await cookieOf(tab, SESSION_COOKIE),
  };
}

async function assertSignedInAs(tab: TestPage, username: string): Promise<void> {
  await open(tab.page, server.url, '/account');
  assert.equal(pathOf(tab.page), '/account', 'still signed in');
  assert.equal((await tab.page.locator('header .who').textContent())?.trim(), username);
}

/** Nothing the page holds runs: no dialog, no handler attribute, no javascript: URL, no CSP complaint. */
async function assertInert(tab: TestPage, where: string): Promise<void> {
  assert.deepEqual(tab.dialogs, [], `${where}: a dialog fired`);
  const found = await tab.page.locator(':root').evaluate((root) => {
    const urlAttributes = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'data']);
    const problems: string[] = [];
    for (const element of [root, ...root.querySelectorAll('*')]) {
      for (const { name, value } of element.attributes) {
        if (/^on/i.test(name)) problems.push(`<${element.localName} ${name}>`);
        if (urlAttributes.has(name) && /^\s*javascript:/i.test(value))
          problems.push(`<${element.localName} ${name}>`);
      }
      if (element.localName === 'img' && element.getAttribute('src') === 'x') problems.push('<img src=x>');
    }
    return problems;
  });
  assert.deepEqual(found, [], `${where}: markup from the payload`);
  const csp = tab.consoleErrors.filter((text) => /Content Security Policy|inline/i.test(text));
  assert.deepEqual(csp, [], `${where}: CSP violations`);
}

// --- Reading state -----------------------------------------------------------------------------------

async function tokenNamed(username: string, note: string): Promise<{ id: string }> {
  const token = (await tokensOf(server, username)).find((candidate) => candidate.note === note);
  assert.ok(token, `${username} has a token named ${note}`);
  return token;
}

async function tokenIds(username: string): Promise<string[]> {
  return (await tokensOf(server, username)).map((token) => token.id);
}

/** Writes allowed URLs past every validator, as a record from an older version might hold them. */
async function plantAllowedUrls(id: string, allowedUrls: readonly string[]): Promise<void> {
  const record = await server.services.store.findToken(id);
  assert.ok(record);
  const updated = await server.services.store.updateToken(id, record.version, {
    note: record.note,
    scopes: record.scopes,
    allowedUrls,
    extensions: record.extensions,
    rateLimit: record.rateLimit,
    expiresAt: record.expiresAt,
    modified: record.modified,
  });
  assert.ok(updated);
  server.services.cache.evict(id);
}

async function cookieOf(tab: TestPage, name: string): Promise<string | undefined> {
  return (await tab.context.cookies(server.url)).find((cookie) => cookie.name === name)?.value;
}

async function bodyOf(response: Response): Promise<string> {
  try {
    return await response.text();
  } catch {
    return '';
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile());
}

function pathOf(page: Page): string {
  return new URL(page.url()).pathname;
}

function attr(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');
}

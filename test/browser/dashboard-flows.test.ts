import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { api } from '../helpers/api.ts';
import { browserSkipReason, launchBrowser, type TestBrowser, type TestPage } from '../helpers/browser.ts';
import {
  andWaitForPage,
  chooseFromTokenMenu,
  clickAndWait,
  confirmPassword,
  fillTokenForm,
  isAskingForPassword,
  noticeText,
  open,
  readToken,
  signIn,
  submitSignIn,
  submitSignUp,
  TEST_PASSWORD,
  type TokenFormFields,
  tokenMenu,
  tokenRow,
} from '../helpers/dashboard-browser.ts';
import { verifyNginx, withToken } from '../helpers/forward-auth.ts';
import {
  createTestAccount,
  ManualClock,
  startConfiguredServer,
  type TestAccount,
  type TestServer,
} from '../helpers/server.ts';

// The dashboard's happy flows, driven in Debian's Chromium as a user would: by role and label.
// One server and one browser for the file; every test has its own account and browser context.

const MINUTE = 60_000;
const clock = new ManualClock();
let server: TestServer;
let browser: TestBrowser;
let accounts = 0;

/** A fresh account (made as the CLI would) with the admin secret token of `createTestAccount`. */
function newAccount(prefix: string): Promise<TestAccount> {
  accounts += 1;
  return createTestAccount(server.services, `${prefix}${accounts}`);
}

/** Runs `body` with a fresh context and page, closed afterwards whatever happens. */
async function withPage(
  body: (tab: TestPage) => Promise<void>,
  options: { readonly viewport?: { width: number; height: number } } = {},
): Promise<void> {
  const tab = await browser.newPage(options);
  try {
    await body(tab);
    assert.deepEqual(tab.dialogs, [], 'no dialog fired');
    // The password confirmation answers 403 and a refused sign-in 401 by design: only other errors count.
    const errors = tab.consoleErrors.filter((text) => !text.startsWith('Failed to load resource'));
    assert.deepEqual(errors, [], 'no console errors (such as CSP violations)');
  } finally {
    await tab.context.close();
  }
}

function path(page: Page): string {
  const url = new URL(page.url());
  return `${url.pathname}${url.search}`;
}

/** The code the Tokens API's retrieve endpoint (`GET /tokens/v2?access_token=`) gives the token. */
async function retrieveCode(token: string): Promise<string> {
  const response = await api(server, 'GET', '/tokens/v2', { token });
  assert.equal(response.status, 200, response.text);
  return (response.body as { code: string }).code;
}

/** One forward-auth decision for `uri` (the token goes in its query), as nginx asks it. */
function gateway(uri: string, token: string, headers: Readonly<Record<string, string>> = {}) {
  return verifyNginx(server, withToken(uri, token), { headers });
}

/** Creates a token for `username` as the operator would, so the dashboard's first action still asks. */
async function operatorToken(
  username: string,
  fields: { note: string; scopes: readonly string[]; allowedUrls?: readonly string[] },
): Promise<{ id: string; token: string }> {
  const created = await server.services.tokens.create({ kind: 'operator' }, username, {
    note: fields.note,
    scopes: fields.scopes,
    allowedUrls: fields.allowedUrls ?? null,
    extensions: {},
    rateLimit: null,
    expiresAt: null,
  });
  assert.ok(created.token);
  return { id: created.id, token: created.token };
}

/** The live token of `username` named `note`. */
async function tokenNamedLive(username: string, note: string): Promise<{ id: string }> {
  const page = await server.services.tokens.list({ kind: 'operator' }, username, {
    sortBy: 'created',
    limit: 100,
  });
  const token = page.tokens.find((entry) => entry.note === note);
  assert.ok(token, `a token named ${note}`);
  return token;
}

/** Signs in and asserts it landed on the tokens page. */
async function signInToAccount(page: Page, username: string): Promise<void> {
  await signIn(page, server.url, username);
  assert.equal(path(page), '/account');
  await page.getByRole('heading', { name: 'Access tokens', level: 1 }).waitFor();
}

/** Clicks Create a token, fills the form, sends it, and confirms the password when asked. */
async function createThroughForm(
  page: Page,
  fields: TokenFormFields,
  options: { readonly expectPassword: boolean },
): Promise<void> {
  await clickAndWait(page, page.getByRole('link', { name: 'Create a token' }));
  assert.equal(path(page), '/account/tokens/new');
  await fillTokenForm(page, fields);
  await clickAndWait(page, page.getByRole('button', { name: 'Create token' }));
  assert.equal(await isAskingForPassword(page), options.expectPassword, 'asked for the password');
  if (options.expectPassword) await confirmPassword(page);
  assert.equal(path(page), '/account');
}

/** Asserts the page body does not scroll sideways. */
async function assertNoHorizontalScroll(page: Page): Promise<void> {
  const [scrollWidth, clientWidth] = (await page.evaluate(
    '[document.documentElement.scrollWidth, document.documentElement.clientWidth]',
  )) as [number, number];
  assert.ok(
    scrollWidth <= clientWidth + 1,
    `${path(page)} scrolls sideways: ${scrollWidth} > ${clientWidth}`,
  );
}

/** The Total row of the statistics data table, as { column heading: total }. */
async function statisticsTotals(page: Page): Promise<Record<string, number>> {
  const table = page.getByRole('table', { name: /^Allowed requests per/ });
  const headings = await table.locator('thead th').allTextContents();
  const totals = await table.locator('tfoot td').allTextContents();
  return Object.fromEntries(
    headings.slice(1).map((heading, index) => [heading, Number((totals[index] ?? '').replace(/,/g, ''))]),
  );
}

const skip = browserSkipReason();

describe('dashboard happy flows in Chromium', { skip }, () => {
  before(async () => {
    // A generous Tokens API limit: this file checks tokens through the API many times.
    server = await startConfiguredServer(
      { limits: { tokensApi: { limit: 100_000, interval: 60 } } },
      { clock },
    );
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('sign up from /, land signed in with the default public token, copy it, and it verifies', () =>
    withPage(async ({ page }) => {
      await open(page, server.url, '/');
      assert.equal(path(page), '/signin');
      await clickAndWait(page, page.getByRole('link', { name: 'Create an account' }));
      assert.equal(path(page), '/signup');
      await page.getByRole('heading', { name: 'Create an account' }).waitFor();

      await submitSignUp(page, { username: 'newcomer' });
      assert.equal(path(page), '/account');
      assert.equal(
        await noticeText(page),
        'Welcome to Tessera, newcomer. Here is your default public token.',
      );
      const token = await readToken(page, 'Default public token');
      assert.match(token, /^pk\./);

      const copy = page
        .getByRole('region', { name: 'Default public token' })
        .getByRole('button', { name: 'Copy' });
      await copy.click();
      await page.getByRole('region', { name: 'Default public token' }).getByText('Copied').waitFor();
      assert.equal(await page.evaluate('navigator.clipboard.readText()'), token);

      const response = await api(server, 'GET', '/tokens/v2', { token });
      assert.equal(response.status, 200);
      const body = response.body as { code: string; token: { usage: string; user: string } };
      assert.equal(body.code, 'TokenValid');
      assert.equal(body.token.usage, 'pk');
      assert.equal(body.token.user, 'newcomer');

      // Signed in, / leads to the tokens page; signing up is no password confirmation.
      await open(page, server.url, '/');
      assert.equal(path(page), '/account');
      await clickAndWait(page, page.getByRole('link', { name: 'Create a token' }));
      await fillTokenForm(page, { name: 'After sign-up', check: ['styles:read'] });
      await clickAndWait(page, page.getByRole('button', { name: 'Create token' }));
      assert.equal(await isAskingForPassword(page), true, 'the first create after sign-up asks');
    }));

  test('create a public token: scopes in two described groups, URLs, password, ready to copy, works', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('maker');
      await signInToAccount(page, username);
      await clickAndWait(page, page.getByRole('link', { name: 'Create a token' }));
      await page.getByRole('heading', { name: 'Create an access token' }).waitFor();

      // Every scope of the catalogue sits in its group, named by its id and described by its description.
      for (const legend of ['Public scopes', 'Secret scopes']) {
        const boxes = page.getByRole('group', { name: legend }).getByRole('checkbox');
        const shown = await boxes.evaluateAll((elements) =>
          elements.map((box) => [
            box.labels[0].textContent.trim(),
            box.ownerDocument.getElementById(box.getAttribute('aria-describedby')).textContent.trim(),
            box.disabled,
          ]),
        );
        const catalogue = [...server.services.catalogue.values()]
          .filter((scope) => scope.public === (legend === 'Public scopes'))
          .map((scope) => [scope.id, scope.description, false]);
        assert.deepEqual(shown, catalogue, legend);
      }
      assert.equal(await page.getByRole('checkbox', { name: 'tokens:read', exact: true }).count(), 1);

      const urls = ['https://app.example.com', 'https://maps.example.org/embed'];
      await fillTokenForm(page, {
        name: 'Maps site',
        check: ['styles:read', 'fonts:read'],
        allowedUrls: urls,
      });
      await clickAndWait(page, page.getByRole('button', { name: 'Create token' }));
      assert.equal(path(page), '/account/tokens');
      await confirmPassword(page);

      assert.equal(path(page), '/account');
      assert.equal(await noticeText(page), 'Token “Maps site” created.');
      const reveal = page.getByRole('region', { name: 'Your new token' });
      const token = await readToken(page, 'New token');
      assert.match(token, /^pk\./);
      assert.equal(await reveal.getByRole('button', { name: 'Copy' }).isVisible(), true);

      const row = tokenRow(page, 'Maps site');
      assert.equal(await row.count(), 1);
      const text = (await row.textContent()) ?? '';
      for (const expected of ['Public', 'styles:read', 'fonts:read', ...urls])
        assert.ok(text.includes(expected));
      assert.equal(await row.getByRole('textbox', { name: 'Token Maps site' }).inputValue(), token);

      assert.equal(await retrieveCode(token), 'TokenValid');
      const style = `/styles/v1/${username}/streets`;
      assert.equal((await gateway(style, token, { Origin: 'https://app.example.com' })).status, 200);
      assert.equal(
        (await gateway(style, token, { Referer: 'https://maps.example.org/embed/a.html' })).status,
        200,
      );
      assert.equal((await gateway(style, token, { Referer: 'https://evil.example.net/' })).status, 403);
    }));

  test('create a secret token: the only chance to copy it, it works, and no later page holds it', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('secret');
      await signInToAccount(page, username);
      await createThroughForm(page, { name: 'CI deploy', check: ['tokens:read'] }, { expectPassword: true });

      const reveal = page.getByRole('region', { name: 'Your new token' });
      await reveal.getByText('This is your only chance to copy this secret token.').waitFor();
      const token = await readToken(page, 'New token');
      assert.match(token, /^sk\./);

      const listed = await api(server, 'GET', `/tokens/v2/${username}`, { token });
      assert.equal(listed.status, 200, listed.text);
      assert.ok((listed.body as { note: string }[]).some((entry) => entry.note === 'CI deploy'));

      await page.reload();
      assert.equal(await page.getByRole('region', { name: 'Your new token' }).count(), 0);
      const secretRow = tokenRow(page, 'CI deploy');
      assert.equal(await secretRow.count(), 1, 'the secret token is listed, marked Secret');
      assert.equal(await secretRow.getByRole('textbox').count(), 0, 'with no value to copy');
      const assertGone = async () =>
        assert.ok(!(await page.content()).includes(token), `the secret token is on ${path(page)}`);
      await assertGone();
      await chooseFromTokenMenu(page, 'CI deploy', 'Edit');
      await assertGone();
      await clickAndWait(page, page.getByRole('link', { name: 'Statistics' }));
      await assertGone();
      await clickAndWait(page, page.getByRole('link', { name: 'Tokens' }));
      await chooseFromTokenMenu(page, 'CI deploy', 'Delete');
      await assertGone();
    }));

  test('a password confirmation lasts 5 minutes: a second create does not ask, one after 5 min 1 s does', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('window');
      await signInToAccount(page, username);
      await createThroughForm(page, { name: 'First', check: ['styles:read'] }, { expectPassword: true });
      clock.advance(4 * MINUTE + 59_000);
      await createThroughForm(page, { name: 'Second', check: ['styles:read'] }, { expectPassword: false });
      assert.equal(await noticeText(page), 'Token “Second” created.');
      clock.advance(2_000);
      await createThroughForm(page, { name: 'Third', check: ['styles:read'] }, { expectPassword: true });
      assert.equal(await noticeText(page), 'Token “Third” created.');
      for (const name of ['First', 'Second', 'Third']) assert.equal(await tokenRow(page, name).count(), 1);
    }));

  test('delete from the menu: the token and its recent use, Yes, password, a green confirmation', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('deleter');
      const doomed = await operatorToken(username, { note: 'Old app', scopes: ['styles:read'] });
      for (let i = 0; i < 3; i++) await gateway(`/styles/v1/${username}/streets`, doomed.token);
      for (let i = 0; i < 2; i++) await gateway('/geocoding/v5/mapbox.places/paris.json', doomed.token);
      await server.services.usage.flush();

      await signInToAccount(page, username);
      await chooseFromTokenMenu(page, 'Old app', 'Delete');
      assert.equal(path(page), `/account/tokens/${doomed.id}/delete`);
      await page.getByRole('heading', { name: 'Delete token', level: 1 }).waitFor();
      const details = Object.fromEntries(
        (await page.locator('dl.details dt').allTextContents()).map((term, index) => [term, index]),
      );
      const detail = async (term: string) =>
        (
          (await page
            .locator('dl.details dd')
            .nth(details[term] ?? -1)
            .textContent()) ?? ''
        ).trim();
      assert.equal(await detail('Name'), 'Old app');
      assert.equal(await detail('Type'), 'Public token (pk)');
      assert.match(await detail('Last used'), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/);
      await page.getByText('5 requests in the last 30 days.').waitFor();
      const usage = page.getByRole('table', { name: 'Requests per service in the last 30 days' });
      assert.deepEqual(await usage.locator('tbody tr').allInnerTexts(), ['styles\t3', 'geocode\t2']);

      await clickAndWait(page, page.getByRole('button', { name: 'Yes, delete token' }));
      await confirmPassword(page);
      assert.equal(path(page), '/account');
      const notice = page.getByRole('status');
      assert.equal(
        (await notice.textContent())?.trim(),
        'Token “Old app” deleted. It no longer works anywhere.',
      );
      const [red, green, blue] = (await page.evaluate(
        `getComputedStyle(document.querySelector('[role="status"]')).backgroundColor.match(/\\d+/g).map(Number)`,
      )) as [number, number, number];
      assert.ok(green > red && green > blue, `the confirmation is green: rgb(${red}, ${green}, ${blue})`);
      assert.equal(await tokenRow(page, 'Old app').count(), 0);
      assert.equal(await retrieveCode(doomed.token), 'TokenRevoked');
      assert.equal((await gateway(`/styles/v1/${username}/streets`, doomed.token)).status, 401);
    }));

  test('refresh the default public token: Yes, password, a new token; the old one is revoked', () =>
    withPage(async ({ page }) => {
      const account = await newAccount('refresher');
      await signInToAccount(page, account.username);
      const old = await readToken(page, 'Default public token');
      assert.equal(old, account.defaultToken);

      await chooseFromTokenMenu(page, 'default public token', 'Refresh');
      await page.getByRole('heading', { name: 'Refresh default public token', level: 1 }).waitFor();
      await clickAndWait(page, page.getByRole('button', { name: 'Yes, refresh token' }));
      await confirmPassword(page);
      assert.equal(path(page), '/account');
      assert.equal(
        await noticeText(page),
        'Default public token refreshed. The old token no longer works anywhere.',
      );
      const fresh = await readToken(page, 'Default public token');
      assert.notEqual(fresh, old);
      assert.match(fresh, /^pk\./);
      assert.equal(await retrieveCode(old), 'TokenRevoked');
      assert.equal(await retrieveCode(fresh), 'TokenValid');
    }));

  test('edit a public token: name, scopes and URLs change; secret scopes are disabled', () =>
    withPage(async ({ page }) => {
      const account = await newAccount('editor');
      const edited = await operatorToken(account.username, {
        note: 'Edit me',
        scopes: ['styles:read'],
        allowedUrls: ['https://old.example.com'],
      });
      await signInToAccount(page, account.username);
      await chooseFromTokenMenu(page, 'Edit me', 'Edit');
      await page.getByRole('heading', { name: 'Edit access token', level: 1 }).waitFor();
      assert.equal(await page.getByLabel('Token name').inputValue(), 'Edit me');
      assert.equal(await page.getByLabel('Allowed URLs').inputValue(), 'https://old.example.com');
      assert.equal(await page.getByRole('checkbox', { name: 'styles:read', exact: true }).isChecked(), true);
      const secret = page.getByRole('group', { name: 'Secret scopes' }).getByRole('checkbox');
      assert.ok((await secret.count()) > 0);
      for (const box of await secret.all()) assert.equal(await box.isDisabled(), true);
      for (const box of await page.getByRole('group', { name: 'Public scopes' }).getByRole('checkbox').all())
        assert.equal(await box.isEnabled(), true);

      await fillTokenForm(page, {
        name: 'Edited',
        check: ['fonts:read', 'styles:tiles'],
        uncheck: ['styles:read'],
        allowedUrls: ['https://new.example.com', 'https://other.example.com/app'],
      });
      await clickAndWait(page, page.getByRole('button', { name: 'Update token' }));
      await confirmPassword(page);
      assert.equal(path(page), '/account');
      assert.equal(await noticeText(page), 'Token “Edited” updated.');
      const text = (await tokenRow(page, 'Edited').textContent()) ?? '';
      for (const expected of [
        'fonts:read',
        'styles:tiles',
        'https://new.example.com',
        'https://other.example.com/app',
      ])
        assert.ok(text.includes(expected), expected);
      assert.ok(!text.includes('styles:read') && !text.includes('old.example.com'));

      const listed = await api(server, 'GET', `/tokens/v2/${account.username}`, {
        token: account.adminToken,
      });
      const entry = (
        listed.body as { id: string; note: string; scopes: string[]; allowedUrls?: string[] }[]
      ).find((token) => token.id === edited.id);
      assert.equal(entry?.note, 'Edited');
      assert.deepEqual([...(entry?.scopes ?? [])].sort(), ['fonts:read', 'styles:tiles']);
      assert.deepEqual(entry?.allowedUrls, ['https://new.example.com', 'https://other.example.com/app']);
    }));

  test('statistics: every period and grouping shows an accessible chart and the exact counts', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('counter');
      const web = await operatorToken(username, { note: 'Web map', scopes: ['styles:read'] });
      const tiles = await operatorToken(username, {
        note: 'Tiles app',
        scopes: ['styles:tiles', 'fonts:read'],
      });
      for (let i = 0; i < 4; i++) await gateway(`/styles/v1/${username}/streets`, web.token);
      await gateway('/geocoding/v5/mapbox.places/paris.json', web.token);
      for (let i = 0; i < 2; i++) await gateway('/v4/mapbox.satellite/1/0/0.png', tiles.token);
      await gateway(`/fonts/v1/${username}/Roboto/0-255.pbf`, tiles.token);
      await server.services.usage.flush();

      await signInToAccount(page, username);
      await clickAndWait(page, page.getByRole('link', { name: 'Statistics' }));
      assert.equal(path(page), '/account/statistics');
      const today = new Date(clock.now()).toISOString().slice(0, 10);
      const twoDaysAgo = new Date(clock.now() - 2 * 86_400_000).toISOString().slice(0, 10);
      const expected = {
        Token: { 'Web map': 5, 'Tiles app': 3 },
        Service: { styles: 4, tiles: 2, geocode: 1, fonts: 1 },
      };
      // Each period once and each grouping more than once, hours (24 h) and days alike.
      const choices = [
        ['Last 24 hours', 'Token'],
        ['Last 24 hours', 'Service'],
        ['Last 7 days', 'Token'],
        ['Last 30 days', 'Service'],
        ['Custom range', 'Token'],
      ] as const;
      for (const [period, group] of choices) {
        await page.getByLabel('Period', { exact: true }).selectOption({ label: period });
        if (period === 'Custom range') {
          await page.getByLabel('From', { exact: true }).fill(twoDaysAgo);
          await page.getByLabel('To', { exact: true }).fill(today);
        }
        await page.getByLabel('Requests per', { exact: true }).selectOption({ label: group });
        await clickAndWait(page, page.getByRole('button', { name: 'Show' }));
        const noun = group.toLowerCase();
        const chart = page.getByRole('img', { name: new RegExp(`^Requests per ${noun} .* 8 in all\\.$`) });
        assert.equal(await chart.count(), 1, `${period} per ${noun}: the chart`);
        assert.deepEqual(await statisticsTotals(page), expected[group], `${period} per ${noun}`);
      }
      assert.match(path(page), new RegExp(`period=custom&from=${twoDaysAgo}&to=${today}&group=token`));

      // A custom range before any use: no chart numbers, a plain sentence.
      await page.getByLabel('Period', { exact: true }).selectOption({ label: 'Custom range' });
      await page.getByLabel('From', { exact: true }).fill('2020-01-01');
      await page.getByLabel('To', { exact: true }).fill('2020-01-31');
      await clickAndWait(page, page.getByRole('button', { name: 'Show' }));
      await page.getByText('No requests in this period.').waitFor();
    }));

  test('change password: other sessions end, the new password signs in and the old one does not', async () => {
    const { username } = await newAccount('rotator');
    const other = await browser.newPage();
    try {
      await signInToAccount(other.page, username);
      await withPage(async ({ page }) => {
        await signInToAccount(page, username);
        await clickAndWait(page, page.getByRole('link', { name: 'Password' }));
        assert.equal(path(page), '/account/password');
        const fresh = 'a much longer passphrase 2';
        await page.getByLabel('Current password').fill(TEST_PASSWORD);
        await page.getByLabel('New password', { exact: true }).fill(fresh);
        await page.getByLabel('Confirm new password').fill(fresh);
        await clickAndWait(page, page.getByRole('button', { name: 'Change password' }));
        assert.equal(path(page), '/account');
        assert.equal(await noticeText(page), 'Password changed. Your other sessions were signed out.');

        await open(other.page, server.url, '/account');
        assert.equal(new URL(other.page.url()).pathname, '/signin');

        await open(page, server.url, '/account/statistics');
        assert.equal(path(page), '/account/statistics', 'this session lives on');
        await clickAndWait(page, page.getByRole('button', { name: 'Sign out' }));
        await submitSignIn(page, username, TEST_PASSWORD);
        assert.equal(new URL(page.url()).pathname, '/signin');
        assert.equal(await noticeText(page), 'Incorrect username or password.');
        await submitSignIn(page, username, fresh);
        assert.equal(path(page), '/account');
      });
    } finally {
      await other.context.close();
    }
  });

  test('sign out ends the session; signing in with ?next= returns to that page', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('leaver');
      await signInToAccount(page, username);
      await clickAndWait(page, page.getByRole('button', { name: 'Sign out' }));
      assert.equal(path(page), '/signin?reason=signed-out');
      assert.equal(await noticeText(page), 'You have signed out.');
      await open(page, server.url, '/account');
      assert.equal(path(page), '/signin?next=%2Faccount');

      await signIn(page, server.url, username, { next: '/account/statistics' });
      assert.equal(path(page), '/account/statistics');
      await page.getByRole('heading', { name: 'Statistics', level: 1 }).waitFor();

      // The same by following the redirect a signed-out visit gives.
      await clickAndWait(page, page.getByRole('button', { name: 'Sign out' }));
      await open(page, server.url, '/account/statistics?period=7d');
      assert.equal(new URL(page.url()).pathname, '/signin');
      await submitSignIn(page, username);
      assert.equal(path(page), '/account/statistics?period=7d');
    }));

  test('keyboard only: sign in, reach Create a token, open a token menu and reach Delete, focus visible', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('typist');
      await operatorToken(username, { note: 'Keyed', scopes: ['styles:read'] });
      await open(page, server.url, '/signin');
      assert.equal(await page.evaluate('document.activeElement.id'), 'username');
      await page.keyboard.type(username);
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement.id'), 'password');
      await page.keyboard.type(TEST_PASSWORD);
      await andWaitForPage(page, () => page.keyboard.press('Enter'));
      assert.equal(path(page), '/account');

      await tabTo(page, 'A', 'Create a token');
      await assertFocusVisible(page);
      await tabTo(page, 'SUMMARY', 'Menu for token Keyed');
      await assertFocusVisible(page);
      const menu = tokenMenu(page, 'Keyed');
      await page.keyboard.press('Enter');
      assert.equal(await menu.getAttribute('open'), '');
      await page.keyboard.press('Space');
      assert.equal(await menu.getAttribute('open'), null);
      await page.keyboard.press('Space');
      assert.equal(await menu.getAttribute('open'), '');
      await page.keyboard.press('Tab');
      assert.equal(await activeText(page), 'Edit');
      await page.keyboard.press('Tab');
      assert.equal(await activeText(page), 'Rotate');
      await page.keyboard.press('Tab');
      assert.equal(await activeText(page), 'Delete');
      await assertFocusVisible(page);
      await andWaitForPage(page, () => page.keyboard.press('Enter'));
      await page.getByRole('heading', { name: 'Delete token', level: 1 }).waitFor();
    }));

  test('phone viewport: the tokens page and the create form fit the width', () =>
    withPage(
      async ({ page }) => {
        const { username } = await newAccount('phone');
        await operatorToken(username, {
          note: 'A token with a rather long name for a small screen',
          scopes: ['styles:read', 'styles:tiles', 'fonts:read'],
          allowedUrls: ['https://a-very-long-subdomain-name.example.com/with/a/long/path/to/the/map'],
        });
        await signInToAccount(page, username);
        await assertNoHorizontalScroll(page);
        const create = page.getByRole('link', { name: 'Create a token' });
        assert.equal(await create.isVisible(), true);
        const box = await create.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 390, 'Create a token lies within the screen');
        await clickAndWait(page, create);
        assert.equal(path(page), '/account/tokens/new');
        await assertNoHorizontalScroll(page);
        assert.equal(await page.getByRole('button', { name: 'Create token' }).isVisible(), true);
      },
      { viewport: { width: 390, height: 844 } },
    ));

  test('rotate with the keyboard only: menu, grace period, Yes, password; the new token once, the old one until its grace ends', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('turner');
      const old = await operatorToken(username, { note: 'Backend', scopes: ['tokens:read'] });
      await signInToAccount(page, username);

      await tabTo(page, 'SUMMARY', 'Menu for token Backend');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Tab');
      assert.equal(await activeText(page), 'Edit');
      await page.keyboard.press('Tab');
      assert.equal(await activeText(page), 'Rotate');
      await assertFocusVisible(page);
      await andWaitForPage(page, () => page.keyboard.press('Enter'));
      assert.equal(path(page), `/account/tokens/${old.id}/rotate`);
      await page.getByRole('heading', { name: 'Rotate token', level: 1 }).waitFor();

      const grace = page.getByRole('group', { name: 'Grace period' });
      const labels = await grace
        .getByRole('radio')
        .evaluateAll((radios) => radios.map((radio) => radio.labels?.[0]?.textContent?.trim()));
      assert.deepEqual(labels, [
        'No grace period: the old token stops working now',
        '1 hour',
        '1 day',
        '7 days',
      ]);
      assert.equal(
        await grace.getByRole('radio', { name: '1 day' }).isChecked(),
        true,
        '1 day is preselected',
      );
      await tabTo(page, 'INPUT', '');
      assert.equal(
        await page.evaluate('document.activeElement.value'),
        '86400',
        'Tab reaches the chosen period',
      );
      await assertFocusVisible(page);
      await page.keyboard.press('ArrowUp');
      assert.equal(
        await grace.getByRole('radio', { name: '1 hour' }).isChecked(),
        true,
        'arrows choose another',
      );
      await page.keyboard.press('Tab');
      assert.equal(await activeText(page), 'Yes, rotate token');
      await andWaitForPage(page, () => page.keyboard.press('Enter'));

      assert.ok(await isAskingForPassword(page));
      assert.equal(await page.evaluate('document.activeElement.id'), 'confirm-password');
      await page.keyboard.type(TEST_PASSWORD);
      const rotatedAt = clock.now();
      await andWaitForPage(page, () => page.keyboard.press('Enter'));
      assert.equal(path(page), '/account');
      const until = new Date(rotatedAt + 60 * MINUTE).toISOString();
      const shown = `${until.slice(0, 10)} ${until.slice(11, 16)} UTC`;
      assert.equal(
        await noticeText(page),
        `Token “Backend” rotated. The old token keeps working until ${shown}, then it is refused everywhere.`,
      );
      const reveal = page.getByRole('region', { name: 'Your new token' });
      await reveal.getByText('This is your only chance to copy this secret token.').waitFor();
      const fresh = await readToken(page, 'New token');
      assert.match(fresh, /^sk\./);
      assert.equal(await reveal.getByRole('button', { name: 'Copy' }).isVisible(), true);

      const oldRow = page.locator(`#row-${old.id}`);
      assert.match(
        (await oldRow.textContent()) ?? '',
        new RegExp(`Replaced by “Backend”: keeps working until ${shown}\\.`),
      );
      const oldMenu = tokenMenu(page, 'Backend (replaced)');
      await oldMenu.locator('summary').click();
      assert.deepEqual(await oldMenu.getByRole('link').allTextContents(), ['Delete']);
      await oldMenu.getByText('Replaced: edit or rotate its replacement').waitFor();

      assert.equal(
        await retrieveCode(old.token),
        'TokenValid',
        'the old token works during the grace period',
      );
      assert.equal(await retrieveCode(fresh), 'TokenValid');
      await page.reload();
      assert.equal(await page.getByRole('region', { name: 'Your new token' }).count(), 0, 'shown once');
      assert.equal((await page.content()).includes(fresh), false);
      clock.advance(60 * MINUTE);
      assert.equal(await retrieveCode(old.token), 'TokenExpired', 'and is refused after it');
      assert.equal(await retrieveCode(fresh), 'TokenValid');
    }));

  test('Activity: what was just done, in words, newest first; both downloads save the whole log', () =>
    withPage(async ({ page }) => {
      const { username } = await newAccount('auditor');
      await signInToAccount(page, username);
      await createThroughForm(page, { name: 'Audited', check: ['styles:read'] }, { expectPassword: true });
      await clickAndWait(page, page.getByRole('link', { name: 'Activity' }));
      assert.equal(path(page), '/account/audit');
      await page.getByRole('heading', { name: 'Activity', level: 1 }).waitFor();
      const table = page.getByRole('table', { name: 'Audit log, newest first' });
      const headings = await table.locator('thead th').allTextContents();
      assert.deepEqual(headings, ['Time (UTC)', 'Action', 'Who', 'Channel', 'Address', 'Token or account']);
      const rows = await table
        .locator('tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.children].slice(1, 5).map((cell) => (cell.textContent ?? '').trim())),
        );
      assert.deepEqual(rows.slice(0, 2), [
        ['Token created (public)', `You (${username})`, 'Dashboard', '127.0.0.1'],
        ['Signed in', `You (${username})`, 'Dashboard', '127.0.0.1'],
      ]);
      assert.match(
        (await table.locator('tbody tr').first().locator('td').last().textContent()) ?? '',
        /^“Audited” c[a-z0-9]{24}$/,
      );

      for (const [name, suffix] of [
        ['Download CSV', 'csv'],
        ['Download JSON', 'json'],
      ] as const) {
        const saved = page.waitForEvent('download');
        await page.getByRole('link', { name }).click();
        const download = await saved;
        const today = new Date(clock.now()).toISOString().slice(0, 10);
        assert.equal(download.suggestedFilename(), `tessera-audit-${username}-${today}.${suffix}`);
        const body = await readFile((await download.path()) ?? '', 'utf8');
        if (suffix === 'csv') {
          const lines = body.trimEnd().split('\r\n');
          assert.equal(lines[0], 'time,action,description,actor,channel,ip,target,target_name,details,id');
          assert.equal(lines.length - 1, rows.length);
        } else {
          assert.equal((JSON.parse(body) as unknown[]).length, rows.length);
        }
        assert.doesNotMatch(body, /\b(pk|sk)\.ey/, 'no token in the file');
      }
      assert.equal(path(page), '/account/audit', 'a download leaves the page where it was');
    }));

  test('phone viewport: an expiry set on the form, rotation notes and the activity log fit the width', () =>
    withPage(
      async ({ page }) => {
        const { username } = await newAccount('pocket');
        const rotated = await operatorToken(username, {
          note: 'Rotated on a phone',
          scopes: ['styles:read'],
        });
        await server.services.tokens.rotate({ kind: 'operator' }, username, rotated.id, {
          gracePeriod: 604_800,
        });
        await signInToAccount(page, username);
        await clickAndWait(page, page.getByRole('link', { name: 'Create a token' }));
        const expires = new Date(clock.now() + 3 * 86_400_000).toISOString().slice(0, 16);
        await fillTokenForm(page, { name: 'Expiring', check: ['styles:read'] });
        await page.getByLabel('Expires (UTC)').fill(expires);
        await clickAndWait(page, page.getByRole('button', { name: 'Create token' }));
        await confirmPassword(page);
        const row = tokenRow(page, 'Expiring');
        assert.match((await row.textContent()) ?? '', new RegExp(`Expires ${expires.replace('T', ' ')} UTC`));
        await page.getByText(/^Replaced by “Rotated on a phone”: keeps working until/).waitFor();
        await assertNoHorizontalScroll(page);
        await clickAndWait(page, page.getByRole('link', { name: 'Activity' }));
        await page.getByRole('table', { name: 'Audit log, newest first' }).waitFor();
        await assertNoHorizontalScroll(page);
        await open(page, server.url, `/account/tokens/${rotated.id}/rotate`);
        await page.getByRole('heading', { name: 'This token cannot be rotated' }).waitFor();
        await open(
          page,
          server.url,
          `/account/tokens/${(await tokenNamedLive(username, 'Expiring')).id}/rotate`,
        );
        await assertNoHorizontalScroll(page);
        assert.equal(await page.getByRole('button', { name: 'Yes, rotate token' }).isVisible(), true);
      },
      { viewport: { width: 390, height: 844 } },
    ));

  /** Runs `body` in a context with JavaScript off, closed afterwards. */
  async function withoutJavaScript(body: (page: Page) => Promise<void>): Promise<void> {
    const context = await browser.browser.newContext({ javaScriptEnabled: false });
    try {
      await body(await context.newPage());
    } finally {
      await context.close();
    }
  }

  test('without JavaScript: sign in, create a token with the password, delete it; Copy is hidden', async () => {
    const { username } = await newAccount('nojs');
    await withoutJavaScript(async (page) => {
      await signInToAccount(page, username);
      // The Copy buttons need the script: without it they stay hidden rather than do nothing.
      const buttons = await page.locator('button.copy').all();
      assert.ok(buttons.length > 0, 'the page has a Copy button for the default token');
      for (const button of buttons) assert.equal(await button.isHidden(), true, 'Copy is hidden');
      assert.equal(await page.getByRole('button', { name: 'Copy' }).count(), 0);

      await createThroughForm(page, { name: 'Plain HTML', check: ['styles:read'] }, { expectPassword: true });
      await page.getByRole('region', { name: 'Your new token' }).waitFor();
      const token = await readToken(page, 'New token');
      assert.equal(await retrieveCode(token), 'TokenValid');
      assert.equal(await tokenRow(page, 'Plain HTML').count(), 1);

      // The menu is a <details>: it opens without any script.
      await chooseFromTokenMenu(page, 'Plain HTML', 'Delete');
      await page.getByRole('heading', { name: 'Delete token', level: 1 }).waitFor();
      await clickAndWait(page, page.getByRole('button', { name: 'Yes, delete token' }));
      assert.equal(await isAskingForPassword(page), false, 'confirmed a moment ago');
      assert.equal(await noticeText(page), 'Token “Plain HTML” deleted. It no longer works anywhere.');
      assert.equal(await tokenRow(page, 'Plain HTML').count(), 0);
      assert.equal(await retrieveCode(token), 'TokenRevoked');
    });
  });
});

/** The tag and text of the focused element. */
async function activeText(page: Page): Promise<string> {
  return ((await page.evaluate('document.activeElement.textContent')) as string).trim();
}

/** Presses Tab until the focused element is a `tag` reading `text` (at most 40 presses). */
async function tabTo(page: Page, tag: string, text: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const tagName = await page.evaluate('document.activeElement.tagName');
    if (tagName === tag && (await activeText(page)) === text) return;
  }
  assert.fail(`Tab never reached the ${tag} "${text}"`);
}

/** The focused element matches :focus-visible and draws an outline. */
async function assertFocusVisible(page: Page): Promise<void> {
  const focus = (await page.evaluate(`(() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return { visible: el.matches(':focus-visible'), style: style.outlineStyle, width: style.outlineWidth };
  })()`)) as { visible: boolean; style: string; width: string };
  assert.equal(focus.visible, true, 'the focus is :focus-visible');
  assert.notEqual(focus.style, 'none', 'an outline is drawn');
  assert.ok(Number.parseFloat(focus.width) > 0, `the outline has a width: ${focus.width}`);
}

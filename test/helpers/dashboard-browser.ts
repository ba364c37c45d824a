import assert from 'node:assert/strict';
import type { Locator, Page } from 'playwright-core';

/** The password `createTestAccount` gives every account. */
export const TEST_PASSWORD = 'correct horse battery staple';

/**
 * Runs `action` (a click, a key press) and waits until the page it leads to has loaded. Form posts
 * and links load a new document, so this waits for that document rather than for a URL: a
 * password confirmation answers on the same URL as the form it confirms.
 */
export async function andWaitForPage(page: Page, action: () => Promise<void>): Promise<void> {
  const loaded = page.waitForEvent('load');
  await action();
  await loaded;
}

/** Clicks the button or link with this accessible name and waits for the page it leads to. */
export async function clickAndWait(page: Page, target: Locator): Promise<void> {
  await andWaitForPage(page, () => target.click());
}

/** Opens `path` (relative to `baseUrl`) and waits for it to load. */
export async function open(page: Page, baseUrl: string, path: string): Promise<void> {
  await page.goto(new URL(path, baseUrl).href);
}

export interface NewAccountFields {
  readonly username: string;
  readonly email?: string;
  readonly password?: string;
}

/** Fills and sends the sign-up form on the page shown now (`/signup`). */
export async function submitSignUp(page: Page, fields: NewAccountFields): Promise<void> {
  await page.getByLabel('Username').fill(fields.username);
  await page.getByLabel('Email').fill(fields.email ?? `${fields.username}@example.com`);
  await page.getByLabel('Password', { exact: true }).fill(fields.password ?? TEST_PASSWORD);
  await clickAndWait(page, page.getByRole('button', { name: 'Sign up' }));
}

/** Fills and sends the sign-in form on the page shown now (`/signin`). */
export async function submitSignIn(page: Page, username: string, password = TEST_PASSWORD): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await clickAndWait(page, page.getByRole('button', { name: 'Sign in' }));
}

/** Opens the sign-in page (with `?next=` when given) and signs in; does not check where it lands. */
export async function signIn(
  page: Page,
  baseUrl: string,
  username: string,
  options: { readonly password?: string; readonly next?: string } = {},
): Promise<void> {
  const query = options.next === undefined ? '' : `?${new URLSearchParams({ next: options.next })}`;
  await open(page, baseUrl, `/signin${query}`);
  await submitSignIn(page, username, options.password);
}

/** Whether the page shown now is the password confirmation. */
export async function isAskingForPassword(page: Page): Promise<boolean> {
  return (await page.getByRole('heading', { name: 'Confirm your password', level: 1 }).count()) > 0;
}

/** Asserts the password confirmation is shown, enters the password and sends it. */
export async function confirmPassword(page: Page, password = TEST_PASSWORD): Promise<void> {
  assert.ok(await isAskingForPassword(page), `expected the password confirmation on ${page.url()}`);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await clickAndWait(page, page.getByRole('button', { name: 'Confirm' }));
}

/** The value of a read-only token field, by its accessible name (e.g. 'Default public token', 'New token'). */
export async function readToken(page: Page, label: string): Promise<string> {
  const value = await page.getByRole('textbox', { name: label, exact: true }).inputValue();
  assert.match(value, /^(pk|sk|tk)\./, `the field "${label}" holds a token`);
  return value;
}

export interface TokenFormFields {
  readonly name?: string;
  /** Scope ids to tick; every other scope is left as it is. */
  readonly check?: readonly string[];
  /** Scope ids to untick. */
  readonly uncheck?: readonly string[];
  /** Replaces the Allowed URLs text, one per line. */
  readonly allowedUrls?: readonly string[];
}

/** Fills the create or edit token form shown now; does not send it. */
export async function fillTokenForm(page: Page, fields: TokenFormFields): Promise<void> {
  if (fields.name !== undefined) await page.getByLabel('Token name').fill(fields.name);
  for (const scope of fields.check ?? [])
    await page.getByRole('checkbox', { name: scope, exact: true }).check();
  for (const scope of fields.uncheck ?? [])
    await page.getByRole('checkbox', { name: scope, exact: true }).uncheck();
  if (fields.allowedUrls !== undefined)
    await page.getByLabel('Allowed URLs').fill(fields.allowedUrls.join('\n'));
}

/**
 * The menu next to a token: `name` is the token's name, or 'default public token'. It is a
 * `<details>` (role group) whose summary reads "Menu for token <name>" to assistive technology.
 */
export function tokenMenu(page: Page, name: string): Locator {
  const label = name === 'default public token' ? name : `token ${name}`;
  return page.getByRole('group').filter({ has: page.getByText(`Menu for ${label}`, { exact: true }) });
}

/** The row of the tokens table whose name cell holds exactly `name` (followed by its Public or Secret badge). */
export function tokenRow(page: Page, name: string): Locator {
  const heading = page.getByRole('rowheader', {
    name: new RegExp(`^${escapeRegExp(name)} (Public|Secret)$`),
  });
  return page.getByRole('row').filter({ has: heading });
}

/** Opens a token's menu and follows one of its items ('Edit', 'Delete' or 'Refresh'). */
export async function chooseFromTokenMenu(page: Page, name: string, item: string): Promise<void> {
  const menu = tokenMenu(page, name);
  await menu.locator('summary').click();
  await clickAndWait(page, menu.getByRole('link', { name: item, exact: true }));
}

/** The text of the page's notice (the green confirmation or the red error), if there is one. */
export async function noticeText(page: Page): Promise<string | undefined> {
  const notice = page.locator('p.notice');
  return (await notice.count()) === 0 ? undefined : ((await notice.first().textContent()) ?? '').trim();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

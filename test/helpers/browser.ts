import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless flags this machine needs: no sandbox as root, and no calls to Google's hosts on a closed network. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Whether browser suites run here. Without Debian's Chromium they skip with a notice, except in CI
 * (`CI=true`), where a missing browser fails the run instead of passing it silently.
 */
export function browserSkipReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  if (process.env.CI === 'true')
    throw new Error(`CI=true but ${CHROMIUM_PATH} is missing (apt-get install chromium)`);
  const reason = `${CHROMIUM_PATH} not found: browser tests skipped (apt-get install -y chromium)`;
  console.warn(`NOTICE: ${reason}`);
  return reason;
}

export interface TestBrowser {
  readonly browser: Browser;
  /** A fresh context (its own cookies) and page; dialogs are recorded, never accepted. */
  newPage(options?: { readonly viewport?: { width: number; height: number } }): Promise<TestPage>;
  close(): Promise<void>;
}

export interface TestPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Every dialog (alert, confirm, prompt) that fired: an XSS test expects none. */
  readonly dialogs: string[];
  /** Console messages of type error, such as CSP violations. */
  readonly consoleErrors: string[];
}

/** Launches Debian's Chromium headless (Playwright gives it a fresh profile), with the flags this machine's closed network needs. */
export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  return {
    browser,
    async newPage(options = {}) {
      const context = await browser.newContext({
        viewport: options.viewport ?? { width: 1280, height: 900 },
        permissions: ['clipboard-read', 'clipboard-write'],
      });
      const page = await context.newPage();
      const dialogs: string[] = [];
      const consoleErrors: string[] = [];
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text());
      });
      return { page, context, dialogs, consoleErrors };
    },
    async close() {
      await browser.close();
    },
  };
}

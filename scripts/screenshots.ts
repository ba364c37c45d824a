/**
 * Regenerates the dashboard screenshots in docs/images/ (`npm run screenshots`).
 *
 * Starts Tessera in-process on a temporary data folder with a clock fixed at NOW, seeds one account
 * with a few tokens and 30 days of usage, then drives Debian's Chromium (never a downloaded browser)
 * through the main pages. The text is set in Inter when it is installed (`apt-get install
 * fonts-inter`), else in the system font, so rerunning on another machine may shift a few pixels.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { loadConfig } from '../src/config.ts';
import type { Clock } from '../src/core/ports.ts';
import type { UsageIncrement } from '../src/core/store.ts';
import { type RunningServer, startServer } from '../src/http/server.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { createServices, type Services } from '../src/services/create-services.ts';
import { CHROMIUM_ARGS } from '../test/helpers/browser.ts';

const OUT_DIR = resolve(import.meta.dirname, '../docs/images');
const CHROMIUM = '/usr/bin/chromium';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** "Now" for every page: a Tuesday afternoon, so the last 30 days hold four full weeks. */
const NOW = Date.UTC(2026, 2, 17, 15, 42);
const USERNAME = 'northwind';
const PASSWORD = 'correct horse battery staple';
const DESKTOP = { width: 1280, height: 860 } as const;
/** The sign-in and confirmation cards are short: a lower window leaves less empty page. */
const SHORT = { width: 1280, height: 600 } as const;
const PHONE = { width: 390, height: 844 } as const;

/** A clock the script sets by hand: tokens are created weeks before NOW, pages are seen at NOW. */
class ManualClock implements Clock {
  #now: number;
  constructor(start: number) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  set(time: number): void {
    this.#now = time;
  }
}

interface SeedToken {
  readonly note: string;
  readonly scopes: readonly string[];
  readonly allowedUrls: readonly string[] | null;
  readonly daysAgo: number;
  /** Days from NOW until it expires, if it does. */
  readonly expiresInDays?: number;
  /** Requests per hour at the daily peak, per service. */
  readonly traffic: Readonly<Record<string, number>>;
}

const SEED_TOKENS: readonly SeedToken[] = [
  {
    note: 'Website maps',
    scopes: ['styles:read', 'styles:tiles', 'fonts:read'],
    allowedUrls: ['https://www.northwind.example', 'https://maps.northwind.example/store-locator'],
    daysAgo: 52,
    traffic: { tiles: 1400, styles: 180, fonts: 260 },
  },
  {
    note: 'iOS app',
    scopes: ['styles:read', 'styles:tiles', 'fonts:read'],
    allowedUrls: null,
    daysAgo: 47,
    traffic: { tiles: 900, styles: 90, fonts: 120 },
  },
  {
    note: 'Geocoding backend',
    scopes: ['map:read', 'styles:read', 'datasets:list'],
    allowedUrls: null,
    daysAgo: 40,
    traffic: { geocoding: 620, directions: 140 },
  },
  {
    note: 'Tileset pipeline',
    scopes: ['tilesets:write', 'uploads:write', 'uploads:read'],
    allowedUrls: null,
    daysAgo: 33,
    traffic: { uploads: 12, tilesets: 30 },
  },
  {
    note: 'Staging site',
    scopes: ['styles:read', 'styles:tiles'],
    allowedUrls: ['https://staging.northwind.example'],
    daysAgo: 9,
    expiresInDays: 21,
    traffic: {},
  },
];

/** Rotated two hours before NOW with a day's grace: the tokens page shows both halves. */
const ROTATED = 'iOS app';

/** The default public token's own traffic: the early prototype still uses it. */
const DEFAULT_TRAFFIC: Readonly<Record<string, number>> = { tiles: 160, styles: 30 };

interface Server {
  readonly url: string;
  readonly services: Services;
  readonly clock: ManualClock;
  close(): Promise<void>;
}

async function startTessera(): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-screenshots-'));
  const clock = new ManualClock(NOW - 60 * DAY_MS);
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', TESSERA_DATA_DIR: dataDir });
  const services = await createServices(config, { clock });
  let server: RunningServer;
  try {
    server = await startServer(services, silentLogger);
  } catch (error) {
    await services.close();
    throw error;
  }
  const close = async (): Promise<void> => {
    await server.close();
    await services.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url: server.url, services, clock, close };
}

/** A small seeded generator (mulberry32): the same numbers on every run. */
function randomSequence(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Requests in one hour: a daily curve peaking mid-afternoon UTC, quieter weekends, slow growth. */
function hourlyCount(peak: number, time: number, random: () => number): number {
  const date = new Date(time);
  const daily = 0.25 + 0.75 * Math.sin((Math.PI * ((date.getUTCHours() + 18) % 24)) / 24) ** 2;
  const weekend = date.getUTCDay() === 0 || date.getUTCDay() === 6 ? 0.55 : 1;
  const growth = 0.75 + (0.35 * (time - (NOW - 30 * DAY_MS))) / (30 * DAY_MS);
  return Math.round(peak * daily * weekend * growth * dayFactor(time) * (0.85 + 0.3 * random()));
}

/** Some days are busier than others, the same for every token (a launch, a holiday). */
function dayFactor(time: number): number {
  const day = Math.floor(time / DAY_MS);
  const noise = Math.sin(day * 12.9898) * 43_758.5453;
  return 0.85 + 0.3 * (noise - Math.floor(noise));
}

function usageFor(
  tokenId: string,
  traffic: Readonly<Record<string, number>>,
  seed: number,
): UsageIncrement[] {
  const random = randomSequence(seed);
  const firstHour = Math.floor((NOW - 30 * DAY_MS) / HOUR_MS) * HOUR_MS;
  const increments: UsageIncrement[] = [];
  for (const [service, peak] of Object.entries(traffic)) {
    for (let hour = firstHour; hour < NOW; hour += HOUR_MS) {
      const count = hourlyCount(peak, hour, random);
      if (count === 0) continue;
      const lastUsed = hour + HOUR_MS > NOW ? NOW - 4 * 60_000 : null;
      const iso = new Date(hour).toISOString();
      increments.push({
        username: USERNAME,
        tokenId,
        service,
        outcome: 'allowed',
        hour: iso,
        count,
        lastUsed: lastUsed === null ? null : new Date(lastUsed).toISOString(),
      });
    }
  }
  return increments;
}

/** The account, its tokens (created weeks ago) and 30 days of usage; the clock ends at NOW. */
async function seed(server: Server): Promise<void> {
  const { services, clock } = server;
  await services.accounts.createAccount({
    username: USERNAME,
    email: 'maps@northwind.example',
    password: PASSWORD,
  });
  const operator = { kind: 'operator' } as const;
  const defaults = await services.tokens.list(operator, USERNAME, {
    isDefault: true,
    sortBy: 'created',
    limit: 1,
  });
  const defaultId = defaults.tokens[0]?.id ?? '';
  const increments = usageFor(defaultId, DEFAULT_TRAFFIC, 1);
  for (const [index, token] of SEED_TOKENS.entries()) {
    clock.set(NOW - token.daysAgo * DAY_MS + index * 3_217_000);
    const created = await services.tokens.create(operator, USERNAME, {
      note: token.note,
      scopes: token.scopes,
      allowedUrls: token.allowedUrls,
      extensions: {},
      rateLimit: null,
      expiresAt: token.expiresInDays ? new Date(NOW + token.expiresInDays * DAY_MS).toISOString() : null,
    });
    increments.push(...usageFor(created.id, token.traffic, index + 2));
  }
  await services.store.addUsage(increments);
  clock.set(NOW - 2 * HOUR_MS);
  await services.tokens.rotate(operator, USERNAME, await tokenId(services, ROTATED), { gracePeriod: 86_400 });
  clock.set(NOW);
}

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, '--font-render-hinting=none'],
  });
}

async function newPage(browser: Browser, viewport: { width: number; height: number }): Promise<Page> {
  const context = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    colorScheme: 'light',
    reducedMotion: 'reduce',
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  return context.newPage();
}

interface ShotOptions {
  readonly fullPage?: boolean;
  readonly viewport?: { readonly width: number; readonly height: number };
}

async function shoot(page: Page, name: string, options: ShotOptions = {}): Promise<void> {
  const viewport = page.viewportSize();
  if (options.viewport) await page.setViewportSize(options.viewport);
  // Nothing should blink or hover in a screenshot: no caret, no focus ring left by a click.
  await page.evaluate('document.activeElement?.blur()');
  const path = join(OUT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: options.fullPage ?? false, caret: 'hide', animations: 'disabled' });
  if (options.viewport && viewport) await page.setViewportSize(viewport);
  console.log(`${path} (${Math.round(statSync(path).size / 1024)} KB)`);
}

async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/signin`);
  await page.getByLabel('Username').fill(USERNAME);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/account$/);
}

/** Sign-in, then the create form, the password confirmation and the reveal of a new secret token. */
async function createFlow(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/signin`);
  await page.getByLabel('Username').fill(USERNAME);
  await shoot(page, 'sign-in', { viewport: SHORT });
  await signIn(page, url);
  await page.getByRole('link', { name: 'Create a token' }).click();
  await page.getByLabel('Token name').fill('CI deploy');
  for (const scope of ['styles:read', 'tilesets:write', 'uploads:write']) {
    await page.getByRole('checkbox', { name: scope, exact: true }).check();
  }
  await shoot(page, 'create-token', { fullPage: true });
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.getByLabel('Password').waitFor();
  await shoot(page, 'confirm-password', { viewport: SHORT });
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL(/\/account$/);
  await shoot(page, 'tokens', { fullPage: true });
}

async function tokenId(services: Services, note: string): Promise<string> {
  const list = await services.tokens.list({ kind: 'operator' }, USERNAME, {
    isDefault: false,
    sortBy: 'created',
    limit: 50,
  });
  const token = list.tokens.find((entry) => entry.note === note);
  if (!token) throw new Error(`no token named ${note}`);
  return token.id;
}

async function otherPages(page: Page, server: Server): Promise<void> {
  const id = await tokenId(server.services, 'Geocoding backend');
  await page.goto(`${server.url}/account/tokens/${id}/delete`);
  await shoot(page, 'delete-token', { fullPage: true });
  await page.goto(`${server.url}/account/tokens/${id}/rotate`);
  await shoot(page, 'rotate-token', { fullPage: true });
  await page.goto(`${server.url}/account/statistics?period=30d&group=token`);
  await shoot(page, 'statistics');
  await page.goto(`${server.url}/account/audit`);
  await shoot(page, 'activity', { fullPage: true });
}

async function phone(browser: Browser, url: string): Promise<void> {
  const page = await newPage(browser, PHONE);
  await signIn(page, url);
  await shoot(page, 'tokens-phone');
  await page.context().close();
}

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const server = await startTessera();
  const browser = await launch();
  try {
    await seed(server);
    const page = await newPage(browser, DESKTOP);
    await createFlow(page, server.url);
    await otherPages(page, server);
    await page.context().close();
    await phone(browser, server.url);
  } finally {
    await browser.close();
    await server.close();
  }
}

await main();

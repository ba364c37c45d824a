import assert from 'node:assert/strict';
import { DashboardClient, type Fields, type Page, parseSetCookie } from './dashboard.ts';
import { seeded } from './seeded.ts';
import type { TestServer } from './server.ts';

// The "full run" of the secrets-at-rest check (security plan T01, T07, T08, T10): every way a
// token or a password reaches the server, over HTTP against a real `tessera serve`, with every
// answer recorded so the responses can be scanned too.

export type Usage = 'pk' | 'sk' | 'tk';

export interface IssuedToken {
  readonly usage: Usage;
  readonly token: string;
  /** Absent for temporary tokens, which have no id of their own. */
  readonly id?: string;
  readonly username: string;
  readonly via: 'sign-up' | 'api' | 'dashboard' | 'api rotation' | 'dashboard rotation';
  /** False once deleted or revoked as leaked. */
  live: boolean;
  ended?: 'deleted' | 'leaked';
}

/** One answer, as the client saw it. `label` is the method and path, never the query (it may hold a token). */
export interface Exchange {
  readonly label: string;
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The secret tokens this answer is the one place to show (a create, a rotation, a reveal). */
  readonly reveals: string[];
}

export interface AccountPasswords {
  readonly initial: string;
  readonly changed: string;
  /** Wrong sign-ins and a wrong confirmation: passwords too, as far as storage is concerned. */
  readonly wrong: readonly string[];
}

export interface RunResult {
  readonly tokens: IssuedToken[];
  readonly passwords: Map<string, AccountPasswords>;
  readonly exchanges: Exchange[];
  readonly sessions: readonly string[];
  readonly forwardAuth: { readonly bearer: number; readonly query: number; readonly referer: number };
}

export interface RunOptions {
  readonly url: string;
  readonly accounts: number;
  /** First three octets of the client addresses (sent as X-Forwarded-For by a trusted proxy). */
  readonly network: string;
  readonly seed: number;
  /** Accounts driven at the same time. */
  readonly concurrency: number;
}

const ADMIN_SCOPES = ['tokens:read', 'tokens:write', 'scopes:list', 'audit:read', 'analytics:read'];
const PUBLIC_SCOPES = ['styles:read', 'fonts:read', 'styles:tiles'];
const PER_KIND = 10;

function word(random: () => number, length: number): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  return Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
}

/** Distinct per account and recognisable in a dump; a space and a `#` so form and URL encodings differ. */
function passwordsOf(username: string, random: () => number): AccountPasswords {
  return {
    initial: `${username} first password #${word(random, 10)}`,
    changed: `${username} changed password #${word(random, 10)}`,
    wrong: ['wrong guess', 'other guess', 'wrong confirmation'].map(
      (what) => `${username} ${what} #${word(random, 10)}`,
    ),
  };
}

/** Every request goes through here: fetch, record, answer. */
class Traffic {
  readonly exchanges: Exchange[] = [];
  /** Every dashboard session id handed out (cookie values: secrets like passwords). */
  readonly sessions = new Set<string>();
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  record(method: string, path: string, status: number, headers: Headers, text: string): Exchange {
    const exchange = { label: `${method} ${path.split('?')[0]}`, status, headers, text, reveals: [] };
    this.exchanges.push(exchange);
    return exchange;
  }

  async send(
    method: string,
    path: string,
    init: { readonly headers?: Record<string, string>; readonly json?: unknown } = {},
  ): Promise<Exchange & { readonly body: unknown }> {
    const headers: Record<string, string> = { ...init.headers };
    const request: RequestInit = { method, headers, redirect: 'manual' };
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      request.body = JSON.stringify(init.json);
    }
    const response = await fetch(new URL(path, this.url), request);
    const text = await response.text();
    const exchange = this.record(method, path, response.status, response.headers, text);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {}
    return Object.assign(exchange, { body });
  }
}

/** The dashboard client of ./dashboard.ts, behind a trusted proxy that names the client, recording every page. */
class RecordingDashboard extends DashboardClient {
  readonly #traffic: Traffic;
  readonly #address: string;
  #last: Exchange | undefined;
  constructor(traffic: Traffic, address: string) {
    // Only `url` of a TestServer is read by the client.
    super({ url: traffic.url } as TestServer);
    this.#traffic = traffic;
    this.#address = address;
  }

  override async request(
    method: string,
    path: string,
    init: { readonly headers: Readonly<Record<string, string>>; readonly body?: string | Uint8Array },
  ): Promise<Page> {
    const headers = { 'x-forwarded-for': this.#address, ...init.headers };
    const page = await super.request(method, path, { ...init, headers });
    this.#last = this.#traffic.record(method, path, page.status, page.headers, page.text);
    for (const line of page.setCookies) {
      const cookie = parseSetCookie(line);
      if (cookie.name.endsWith('tessera_session') && cookie.value !== '')
        this.#traffic.sessions.add(cookie.value);
    }
    return page;
  }

  /** The exchange of this client's last request. */
  get last(): Exchange {
    assert.ok(this.#last);
    return this.#last;
  }
}

function expect(page: { status: number; text: string }, status: number, what: string): void {
  assert.equal(page.status, status, `${what}: ${page.text.slice(0, 300)}`);
}

/**
 * Posts a dashboard form that needs the password, answering the confirmation when asked (with a
 * wrong password first if `wrong` is given); then loads /account and returns the secret token it
 * reveals once, marking that page as the one allowed to show it.
 */
async function confirmedReveal(
  browser: RecordingDashboard,
  path: string,
  fields: Fields,
  password: string,
  wrong?: string,
): Promise<string> {
  let answer = await browser.post(path, fields);
  if (answer.status === 403 && answer.text.includes('Confirm your password')) {
    if (wrong !== undefined) expect(await browser.post(path, { ...fields, password: wrong }), 403, 'wrong');
    answer = await browser.post(path, { ...fields, password });
  }
  expect(answer, 303, `POST ${path}`);
  const page = await browser.get('/account');
  const token = /id="new-token"[^>]*value="([^"]+)"/.exec(page.text)?.[1] ?? '';
  assert.match(token, /^sk\./, 'the account page reveals the new secret token');
  browser.last.reveals.push(token);
  const reload = await browser.get('/account');
  assert.ok(!reload.text.includes(token), 'a reload of the account page no longer shows it');
  return token;
}

interface Account {
  readonly username: string;
  readonly address: string;
  readonly passwords: AccountPasswords;
}

/** Sign-up, a dashboard-made admin token, a password change and failed sign-ins. */
async function dashboardPart(
  traffic: Traffic,
  account: Account,
  tokens: IssuedToken[],
): Promise<{ readonly admin: string; readonly browser: RecordingDashboard }> {
  const { username, passwords } = account;
  const first = new RecordingDashboard(traffic, account.address);
  await first.get('/signup');
  const signUp = { username, email: `${username}@example.com`, password: passwords.initial };
  expect(await first.post('/signup', signUp), 303, 'sign-up');
  await first.get('/account');
  await first.get('/account/tokens/new');
  const fields = {
    note: 'admin',
    scopes: [...ADMIN_SCOPES, ...PUBLIC_SCOPES],
    allowedUrls: '',
    expiresAt: '',
  };
  const admin = await confirmedReveal(
    first,
    '/account/tokens',
    fields,
    passwords.initial,
    passwords.wrong[2],
  );
  tokens.push({ usage: 'sk', token: admin, username, via: 'dashboard', live: true });
  await first.get('/account/password');
  const change = {
    currentPassword: passwords.initial,
    newPassword: passwords.changed,
    repeatPassword: passwords.changed,
  };
  expect(await first.post('/account/password', change), 303, 'password change');
  const second = new RecordingDashboard(traffic, account.address);
  for (const wrong of [passwords.wrong[0], passwords.wrong[1], passwords.initial])
    expect(await second.signIn(username, wrong), 401, 'a wrong password');
  await second.signInOk(username, passwords.changed);
  return { admin, browser: second };
}

/** Tokens API calls, half with the token in `access_token`, half in an Authorization header. */
function apiCaller(traffic: Traffic, admin: string) {
  let calls = 0;
  return (method: string, path: string, json?: unknown, extra: Record<string, string> = {}) => {
    const bearer = calls++ % 2 === 0;
    const url = bearer ? path : `${path}${path.includes('?') ? '&' : '?'}access_token=${admin}`;
    const headers = bearer ? { authorization: `Bearer ${admin}`, ...extra } : extra;
    return traffic.send(method, url, json === undefined ? { headers } : { headers, json });
  };
}

interface Created {
  readonly id: string;
  readonly token: string;
}

async function apiPart(traffic: Traffic, account: Account, admin: string, tokens: IssuedToken[]) {
  const { username } = account;
  const call = apiCaller(traffic, admin);
  const made: Record<'pk' | 'sk', Created[]> = { pk: [], sk: [] };
  const create = async (usage: 'pk' | 'sk', json: object): Promise<void> => {
    const answer = await call('POST', `/tokens/v2/${username}`, json);
    expect(answer, 200, `create ${usage}`);
    const created = answer.body as Created;
    answer.reveals.push(created.token);
    made[usage].push(created);
    tokens.push({ usage, token: created.token, id: created.id, username, via: 'api', live: true });
  };
  for (let k = 0; k < PER_KIND; k++) {
    const urls = k % 2 === 0 ? { allowedUrls: ['https://app.example.com'] } : {};
    await create('pk', { note: `public ${k}`, scopes: PUBLIC_SCOPES, ...urls });
    await create('sk', { note: `secret ${k}`, scopes: ['styles:read', 'fonts:read', 'scopes:list'] });
    // A tk is an HMAC of its claims (Unix seconds): two minted alike in one second are one token.
    const expires = new Date(Date.now() + (20 + k) * 60_000).toISOString();
    const answer = await call('POST', `/tokens/v2/${username}`, { expires, scopes: ['styles:read'] });
    expect(answer, 200, 'mint tk');
    const temporary = (answer.body as { token: string }).token;
    answer.reveals.push(temporary);
    tokens.push({ usage: 'tk', token: temporary, username, via: 'api', live: true });
  }
  const { pk, sk } = made;
  expect(await call('PATCH', `/tokens/v2/${username}/${sk[0]?.id}`, { note: 'renamed' }), 200, 'patch');
  expect(
    await call('PATCH', `/tokens/v2/${username}/${sk[1]?.id}`, { scopes: ['styles:read'] }),
    200,
    'patch',
  );
  const urls = { allowedUrls: ['https://app.example.com', 'https://www.example.com'] };
  expect(await call('PATCH', `/tokens/v2/${username}/${pk[0]?.id}`, urls), 200, 'patch pk');
  for (const old of [sk[2], sk[3]]) {
    const answer = await call('POST', `/tokens/v2/${username}/${old?.id}/rotate`, { gracePeriod: 3600 });
    expect(answer, 200, 'rotate');
    const fresh = answer.body as Created;
    answer.reveals.push(fresh.token);
    tokens.push({ usage: 'sk', token: fresh.token, id: fresh.id, username, via: 'api rotation', live: true });
  }
  for (const gone of [pk[9], sk[9]]) {
    expect(await call('DELETE', `/tokens/v2/${username}/${gone?.id}`), 204, 'delete');
    markDead(tokens, gone?.token, 'deleted');
  }
  // A leak report names the token in its URL, as a paste site would show it.
  const leaked = sk[8] as Created;
  const report = { token: leaked.token, url: `https://paste.example.com/raw/x?access_token=${leaked.token}` };
  expect(await call('POST', '/leaks/v1/report', report), 200, 'leak report');
  markDead(tokens, leaked.token, 'leaked');
  const referer = { referer: `https://console.example.com/keys?access_token=${admin}` };
  for (const path of ['', '?usage=sk', '?limit=5', '?default=true'])
    expect(await call('GET', `/tokens/v2/${username}${path}`, undefined, referer), 200, 'list');
  for (const path of [`/scopes/v1/${username}`, `/audit/v1/${username}`, `/usage/v1/${username}`])
    expect(await call('GET', path, undefined, referer), 200, path);
  return sk;
}

function markDead(tokens: IssuedToken[], token: string | undefined, how: 'deleted' | 'leaked'): void {
  const entry = tokens.find((candidate) => candidate.token === token);
  assert.ok(entry);
  entry.live = false;
  entry.ended = how;
}

/** Rotation and a second secret token in the dashboard; detail pages, audit exports, statistics. */
async function laterDashboardPart(
  browser: RecordingDashboard,
  account: Account,
  sk: readonly Created[],
  tokens: IssuedToken[],
): Promise<void> {
  const { username, passwords } = account;
  const target = sk[4] as Created;
  await browser.get(`/account/tokens/${target.id}/rotate`);
  const fresh = await confirmedReveal(
    browser,
    `/account/tokens/${target.id}/rotate`,
    { gracePeriod: '3600' },
    passwords.changed,
  );
  tokens.push({ usage: 'sk', token: fresh, username, via: 'dashboard rotation', live: true });
  await browser.get('/account/tokens/new');
  const fields = {
    note: 'from the dashboard',
    scopes: ['styles:read', 'scopes:list'],
    allowedUrls: '',
    expiresAt: '',
  };
  const second = await confirmedReveal(browser, '/account/tokens', fields, passwords.changed);
  tokens.push({ usage: 'sk', token: second, username, via: 'dashboard', live: true });
  for (const path of [
    `/account/tokens/${sk[0]?.id}/edit`,
    `/account/tokens/${sk[5]?.id}/delete`,
    '/account/audit',
    '/account/audit/export.csv',
    '/account/audit/export.json',
    '/account/statistics',
  ])
    expect(await browser.get(path), 200, path);
}

/** Forward-auth as gateways send it: Bearer headers, `access_token` in the original URI, Envoy's form, Referers. */
async function forwardAuthPart(traffic: Traffic, username: string, tokens: readonly IssuedToken[]) {
  const counts = { bearer: 0, query: 0, referer: 0 };
  const mine = tokens.filter((entry) => entry.username === username);
  for (const [index, entry] of mine.entries()) {
    const path = `/styles/v1/${username}/streets-v${index}`;
    const referer = `https://app.example.com/map?style=${index}&access_token=${entry.token}`;
    const withReferer = entry.usage === 'pk' || index % 2 === 0;
    const headers: Record<string, string> = withReferer ? { referer } : {};
    if (withReferer) counts.referer++;
    let url = '/auth/verify';
    if (index % 3 === 0) {
      headers.authorization = `Bearer ${entry.token}`;
      Object.assign(headers, { 'x-original-uri': path, 'x-original-method': 'GET' });
      counts.bearer++;
    } else if (index % 3 === 1) {
      Object.assign(headers, {
        'x-original-uri': `${path}?access_token=${entry.token}`,
        'x-original-method': 'GET',
      });
      counts.query++;
    } else {
      url = `/auth/verify${path}?access_token=${entry.token}`;
      counts.query++;
    }
    const answer = await traffic.send('GET', url, { headers });
    assert.ok(
      [200, 401, 403].includes(answer.status),
      `forward-auth answered ${answer.status}: ${answer.text}`,
    );
  }
  for (const entry of mine.filter((candidate) => candidate.usage === 'tk').slice(0, 2))
    expect(await traffic.send('GET', `/tokens/v2?access_token=${entry.token}`), 200, 'inspect');
  return counts;
}

/** Runs the whole workload, `concurrency` accounts at a time. */
export async function runWorkload(options: RunOptions): Promise<RunResult> {
  const traffic = new Traffic(options.url);
  const random = seeded(options.seed);
  const accounts: Account[] = Array.from({ length: options.accounts }, (_, index) => {
    const username = `atrest${String(index).padStart(2, '0')}`;
    return { username, address: `${options.network}.${index + 1}`, passwords: passwordsOf(username, random) };
  });
  const tokens: IssuedToken[] = [];
  const forwardAuth = { bearer: 0, query: 0, referer: 0 };
  const queue = [...accounts];
  const worker = async (): Promise<void> => {
    for (let account = queue.shift(); account; account = queue.shift()) {
      const { admin, browser } = await dashboardPart(traffic, account, tokens);
      const sk = await apiPart(traffic, account, admin, tokens);
      await laterDashboardPart(browser, account, sk, tokens);
      const defaults = await traffic.send(
        'GET',
        `/tokens/v2/${account.username}?default=true&access_token=${admin}`,
      );
      for (const entry of defaults.body as Created[])
        tokens.push({
          usage: 'pk',
          token: entry.token,
          id: entry.id,
          username: account.username,
          via: 'sign-up',
          live: true,
        });
      const counts = await forwardAuthPart(traffic, account.username, tokens);
      for (const key of ['bearer', 'query', 'referer'] as const) forwardAuth[key] += counts[key];
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const passwords = new Map(accounts.map((account) => [account.username, account.passwords]));
  return { tokens, passwords, exchanges: traffic.exchanges, sessions: [...traffic.sessions], forwardAuth };
}

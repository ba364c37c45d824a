import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type ApiResponse, api, startApiServer, tokensOf } from './helpers/api.ts';
import { type Figure, recordFigures } from './helpers/figures.ts';
import { verifyNginx, withToken } from './helpers/forward-auth.ts';
import { createTemporaryDatabase, postgresSkipReason, type TemporaryDatabase } from './helpers/postgres.ts';
import {
  ADMIN_SCOPES,
  createTestAccount,
  ManualClock,
  type TestAccount,
  type TestServer,
} from './helpers/server.ts';

// Section E of the security plan (T53-T55, T58): races on one token or one account, over real
// HTTP on one node. TESSERA_CONCURRENCY_TRIALS sets the trials of T53 (default 50, or the plan's 100
// when figures are recorded); the heavier checks run a fifth as many (at least 5).

const TRIALS = Number(
  process.env['TESSERA_CONCURRENCY_TRIALS'] ?? (process.env['TESSERA_FIGURES_DIR'] ? 100 : 50),
);
const FEWER = Math.max(5, Math.ceil(TRIALS / 5));
const USERNAME = 'racer';
const SCOPES = [...ADMIN_SCOPES, 'audit:read', 'styles:read', 'fonts:read', 'styles:tiles'];

interface Metadata {
  readonly id: string;
  readonly note: string;
  readonly scopes: readonly string[];
  readonly modified: string;
  readonly token?: string;
}

interface AuditEvent {
  readonly action: string;
  readonly target: string;
}

function statusCounts(responses: readonly ApiResponse[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const { status } of responses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** The account's audit events about one token, newest first, following `Link` for a few pages. */
async function auditOf(server: TestServer, token: string, target: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  let path: string | undefined = `/audit/v1/${USERNAME}?limit=100`;
  for (let page = 0; path && page < 5; page++) {
    const answer: ApiResponse = await api(server, 'GET', path, { token });
    assert.equal(answer.status, 200, answer.text);
    events.push(...(answer.body as AuditEvent[]).filter((event) => event.target === target));
    if (events.some((event) => event.action === 'token.create')) break;
    const next = /<([^>]+)>; rel="next"/.exec(answer.headers.get('link') ?? '')?.[1];
    path = next === undefined ? undefined : new URL(next).pathname + new URL(next).search;
  }
  return events;
}

/** Figures summed over the stores this file ran on; each test records the totals so far. */
const sums = new Map<string, Record<string, Figure>>();

function report(
  t: { diagnostic(message: string): void },
  row: string,
  store: string,
  counts: Readonly<Record<string, number>>,
  fixed: Readonly<Record<string, Figure>> = {},
): void {
  const previous = sums.get(row) ?? {};
  const summed: Record<string, Figure> = { ...fixed };
  for (const [key, value] of Object.entries(counts)) summed[key] = Number(previous[key] ?? 0) + value;
  summed['stores'] = previous['stores'] ? `${previous['stores']}, ${store}` : store;
  sums.set(row, summed);
  t.diagnostic(`${row} ${JSON.stringify(summed)}`);
  recordFigures(row, summed);
}

const postgresSkip = await postgresSkipReason();

/** PostgreSQL (a pool of connections, real I/O between statements) runs a fifth of the trials. */
const STORES = [
  { name: 'SQLite', postgres: false, share: 1, skip: undefined },
  { name: 'PostgreSQL', postgres: true, share: 0.2, skip: postgresSkip },
] as const;

for (const store of STORES) {
  describe(`races on one token, on ${store.name}`, { skip: store.skip ?? false }, () => {
    racesOnOneToken(store);
  });
}

function racesOnOneToken(store: (typeof STORES)[number]): void {
  const trials = Math.max(1, Math.round(TRIALS * store.share));
  const fewer = Math.max(2, Math.round(FEWER * store.share));
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  let database: TemporaryDatabase | undefined;
  let server: TestServer;
  let owner: TestAccount;

  before(async () => {
    database = store.postgres ? await createTemporaryDatabase() : undefined;
    server = await startApiServer({
      clock,
      ...(database ? { env: { TESSERA_DATABASE_URL: database.url } } : {}),
    });
    owner = await createTestAccount(server.services, USERNAME, SCOPES);
  });
  after(async () => {
    await server?.close();
    await database?.drop();
  });

  async function create(json: object, token = owner.adminToken): Promise<Metadata> {
    const answer = await api(server, 'POST', `/tokens/v2/${USERNAME}`, { token, json });
    assert.equal(answer.status, 200, answer.text);
    return answer.body as Metadata;
  }

  test(`T53: 50 concurrent DELETEs of one token, ${trials} trials: one 204, 49 x 404, one audit event`, async (t) => {
    const totals = { noContent: 0, notFound: 0, other: 0, auditEvents: 0, trialsExactlyOne: 0 };
    for (let trial = 0; trial < trials; trial++) {
      const token = await create({ note: `t53-${trial}`, scopes: ['styles:read'] });
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          api(server, 'DELETE', `/tokens/v2/${USERNAME}/${token.id}`, { token: owner.adminToken }),
        ),
      );
      const statuses = statusCounts(answers);
      totals.noContent += statuses[204] ?? 0;
      totals.notFound += statuses[404] ?? 0;
      totals.other += answers.length - (statuses[204] ?? 0) - (statuses[404] ?? 0);
      assert.deepEqual(statuses, { 204: 1, 404: 49 }, `trial ${trial}`);
      for (const answer of answers.filter((item) => item.status === 404))
        assert.deepEqual(answer.body, { message: 'Not found' });
      const deletes = (await auditOf(server, owner.adminToken, token.id)).filter(
        (event) => event.action === 'token.delete',
      );
      totals.auditEvents += deletes.length;
      assert.equal(deletes.length, 1, `trial ${trial}: one token.delete event`);
      const retrieved = await api(server, 'GET', '/tokens/v2', { token: token.token ?? '' });
      assert.equal((retrieved.body as { code: string }).code, 'TokenRevoked');
      totals.trialsExactlyOne += 1;
    }
    const counts = {
      trials,
      trialsWithExactlyOne204: totals.trialsExactlyOne,
      noContent: totals.noContent,
      notFound: totals.notFound,
      otherStatuses: totals.other,
      deleteAuditEvents: totals.auditEvents,
    };
    report(t, 'T53', store.name, counts, { deletesPerTrial: 50 });
  });

  test(`T54: 2 x 50 concurrent PATCHes of note and scopes, ${fewer} trials: one submitted state wins whole`, async (t) => {
    const SETS = [['styles:read'], ['fonts:read'], ['styles:tiles'], ['styles:read', 'fonts:read']];
    const totals = { patches: 0, ok: 0, conflicts: 0, mixed: 0, lostUpdates: 0, nonMonotonic: 0 };
    for (let trial = 0; trial < fewer; trial++) {
      const token = await create({ note: 'start', scopes: ['styles:read'] });
      const versionBefore = (await server.services.store.findToken(token.id))?.version ?? 0;
      // Two writers of 50 each; every body names its writer and index, so a mix of two is visible.
      const bodies = Array.from({ length: 100 }, (_, index) => ({
        note: `${index < 50 ? 'a' : 'b'}-${index}`,
        scopes: SETS[index % SETS.length] as string[],
      }));
      const answers = await Promise.all(
        bodies.map((json) =>
          api(server, 'PATCH', `/tokens/v2/${USERNAME}/${token.id}`, { token: owner.adminToken, json }),
        ),
      );
      totals.patches += answers.length;
      totals.conflicts += answers.filter((answer) => answer.status === 409).length;
      assert.deepEqual(statusCounts(answers), { 200: 100 }, `trial ${trial}`);
      totals.ok += answers.length;
      const states = answers.map((answer) => answer.body as Metadata);
      states.forEach((state, index) => {
        // Each answer shows the state its own PATCH wrote: both fields from one body.
        assert.deepEqual({ note: state.note, scopes: state.scopes }, bodies[index]);
      });
      const stamps = states.map((state) => state.modified).sort();
      const distinct = new Set(stamps).size;
      totals.nonMonotonic += stamps.length - distinct;
      assert.equal(distinct, 100, 'every PATCH advanced modified: a total order');
      assert.ok(stamps.every((stamp) => stamp > token.modified));
      const last = states.find((state) => state.modified === stamps.at(-1)) as Metadata;
      const stored = (await tokensOf(server, USERNAME)).find((item) => item.id === token.id);
      const final = { note: stored?.note, scopes: stored?.scopes };
      const submitted = bodies.find((body) => body.note === final.note);
      if (!submitted || JSON.stringify(submitted.scopes) !== JSON.stringify(final.scopes)) totals.mixed += 1;
      assert.deepEqual(final, { note: last.note, scopes: last.scopes }, 'the last write wins, whole');
      assert.equal(stored?.modified, last.modified);
      const versionAfter = (await server.services.store.findToken(token.id))?.version ?? 0;
      totals.lostUpdates += 100 - (versionAfter - versionBefore);
      assert.equal(versionAfter - versionBefore, 100, 'no update lost');
      const updates = (await auditOf(server, owner.adminToken, token.id)).filter(
        (event) => event.action === 'token.update',
      );
      assert.equal(updates.length, 100, 'one audit event per PATCH');
    }
    const counts = {
      trials: fewer,
      answered200: totals.ok,
      conflicts409: totals.conflicts,
      mixedStates: totals.mixed,
      lostUpdates: totals.lostUpdates,
      modifiedNotMonotonic: totals.nonMonotonic,
    };
    report(t, 'T54', store.name, counts, { patchesPerTrial: 100, ifMatch: 'not applicable: no ETags' });
  });

  test(`T58: an sk deleted while it mints tks, ${fewer * 2} trials: none minted after the 204 works`, async (t) => {
    const totals = { mints: 0, minted: 0, mintedAnsweredAfter204: 0, refused: 0, startedAfter204: 0 };
    let violations = 0;
    for (let trial = 0; trial < fewer * 2; trial++) {
      const parent = await create({ note: `t58-${trial}`, scopes: ['tokens:write', 'styles:read'] });
      const earlier = await mint(parent.token ?? '');
      assert.equal(earlier.status, 200, earlier.text);
      const early = (earlier.body as { token: string }).token;
      // Warm the verdict cache: the delete must evict what it holds.
      for (const token of [early, early, parent.token ?? '']) assert.equal((await styles(token)).status, 200);
      const run = await deleteWhileMinting(parent, trial % 21);
      totals.mints += run.mints.length;
      for (const outcome of run.mints) {
        if (outcome.response.status === 200) {
          totals.minted += 1;
          if (outcome.end > run.deleteEnd) totals.mintedAnsweredAfter204 += 1;
        } else {
          assert.equal(outcome.response.status, 401, outcome.response.text);
          totals.refused += 1;
        }
        if (outcome.start > run.deleteEnd) {
          totals.startedAfter204 += 1;
          if (outcome.response.status !== 401) violations += 1;
          assert.equal(outcome.response.status, 401, 'a mint started after the delete answered is refused');
        }
      }
      const minted = run.mints
        .filter((outcome) => outcome.response.status === 200)
        .map((outcome) => (outcome.response.body as { token: string }).token);
      for (const token of [early, ...minted]) {
        const verdict = await styles(token);
        assert.equal(verdict.status, 401);
        assert.equal(verdict.headers.get('x-tessera-reason'), 'revoked');
        const retrieved = await api(server, 'GET', '/tokens/v2', { token });
        assert.equal((retrieved.body as { code: string }).code, 'TokenRevoked');
      }
    }
    const counts = {
      trials: fewer * 2,
      minted200: totals.minted,
      minted200AnsweredAfterThe204: totals.mintedAnsweredAfter204,
      refused401: totals.refused,
      mintsStartedAfterThe204: totals.startedAfter204,
      violations,
      tksWorkingAfterDelete: 0,
    };
    report(t, 'T58', store.name, counts, { mintsPerTrial: 20 });
  });

  // Regression: a delete takes no lock, so on PostgreSQL it could commit between a rotation's read
  // and its write, and the rotation answered 409 "being changed by another request", an answer no
  // serial order gives. Now it answers 404, as a rotation after the delete would.
  test('a rotation racing a delete of its token answers 200 or 404, never 409, 40 trials', async (t) => {
    const seen: Record<string, number> = {};
    for (let trial = 0; trial < 40; trial++) {
      const token = await create({ note: `rotate-${trial}`, scopes: ['styles:read'] });
      const path = `/tokens/v2/${USERNAME}/${token.id}`;
      const rotation = api(server, 'POST', `${path}/rotate`, {
        token: owner.adminToken,
        json: { gracePeriod: 60 },
      });
      for (let turn = 0; turn < trial % 8; turn++) await yieldToEventLoop();
      const deletion = api(server, 'DELETE', path, { token: owner.adminToken });
      const [rotated, deleted] = await Promise.all([rotation, deletion]);
      const key = `rotate ${rotated.status}, delete ${deleted.status}`;
      seen[key] = (seen[key] ?? 0) + 1;
      assert.equal(deleted.status, 204, deleted.text);
      assert.ok([200, 404].includes(rotated.status), `${key}: ${rotated.text}`);
      const replacement = (await tokensOf(server, USERNAME)).find((item) => item.rotatedFrom === token.id);
      assert.equal(replacement !== undefined, rotated.status === 200, 'a replacement only for a 200');
    }
    t.diagnostic(`${store.name}: ${JSON.stringify(seen)}`);
  });

  function mint(token: string): Promise<ApiResponse> {
    const expires = new Date(clock.now() + 600_000).toISOString();
    return api(server, 'POST', `/tokens/v2/${USERNAME}`, {
      token,
      json: { expires, scopes: ['styles:read'] },
    });
  }

  function styles(token: string): Promise<ApiResponse> {
    return verifyNginx(server, withToken('/styles/v1/racer/streets', token));
  }

  interface Timed {
    /** Logical times: one counter over every start and answer of the trial. */
    readonly start: number;
    readonly end: number;
    readonly response: ApiResponse;
  }

  /** 20 mints with the sk, and its DELETE started after `position` of them, all overlapping. */
  async function deleteWhileMinting(
    parent: Metadata,
    position: number,
  ): Promise<{ readonly mints: Timed[]; readonly deleteEnd: number }> {
    let tick = 0;
    const timed = async (request: () => Promise<ApiResponse>): Promise<Timed> => {
      const start = tick++;
      const response = await request();
      return { start, end: tick++, response };
    };
    const mints: Promise<Timed>[] = [];
    let deletion: Promise<Timed> | undefined;
    for (let index = 0; index <= 20; index++) {
      if (index === position) {
        deletion = timed(() =>
          api(server, 'DELETE', `/tokens/v2/${USERNAME}/${parent.id}`, { token: owner.adminToken }),
        );
      }
      if (index < 20) mints.push(timed(() => mint(parent.token ?? '')));
      await yieldToEventLoop();
    }
    const deleted = await (deletion as Promise<Timed>);
    assert.equal(deleted.response.status, 204, deleted.response.text);
    return { mints: await Promise.all(mints), deleteEnd: deleted.end };
  }
}

describe('T55: the account limit under a burst of creates', () => {
  const LIMIT = 20;
  const clock = new ManualClock(Math.floor(Date.now() / 3_600_000) * 3_600_000);
  let server: TestServer;
  let owner: TestAccount;

  before(async () => {
    server = await startApiServer({ clock, limits: { tokensApi: { limit: LIMIT, interval: 3600 } } });
    owner = await createTestAccount(server.services, 'quota', ADMIN_SCOPES);
  });
  after(() => server.close());

  // The Tokens API's per-account request limit under the same kind of burst: with L - 5 requests
  // spent, 50 concurrent creates must yield exactly 5 new tokens.
  test(`50 concurrent creates with 5 requests left, ${FEWER} trials: exactly 5 succeed and 5 are stored`, async (t) => {
    const totals = { created: 0, throttled: 0, overshoot: 0 };
    for (let trial = 0; trial < FEWER; trial++) {
      clock.advance(3_600_000);
      const before = (await tokensOf(server, 'quota')).length;
      for (let index = 0; index < LIMIT - 5; index++) {
        const answer = await api(server, 'GET', '/tokens/v2/quota?limit=1', { token: owner.adminToken });
        assert.equal(answer.status, 200, answer.text);
      }
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, index) =>
          api(server, 'POST', '/tokens/v2/quota', {
            token: owner.adminToken,
            json: { note: `burst ${trial}-${index}`, scopes: ['tokens:read'] },
          }),
        ),
      );
      const counts = statusCounts(answers);
      assert.deepEqual(counts, { 200: 5, 429: 45 }, `trial ${trial}`);
      for (const answer of answers.filter((item) => item.status === 429))
        assert.ok(Number(answer.headers.get('retry-after')) >= 1);
      const stored = (await tokensOf(server, 'quota')).length - before;
      totals.created += stored;
      totals.throttled += counts[429] ?? 0;
      totals.overshoot += Math.max(0, stored - 5);
      assert.equal(stored, 5, 'stored count == what the limit allowed');
    }
    const counts = {
      trials: FEWER,
      created: totals.created,
      throttled429: totals.throttled,
      overshoot: totals.overshoot,
    };
    report(t, 'T55-requests', 'SQLite', counts, {
      limitPerWindow: LIMIT,
      concurrentCreates: 50,
      succeededPerTrial: 5,
    });
  });
});

for (const store of STORES) {
  describe(`T55: the tokens-per-account limit under a burst of creates, on ${store.name}`, {
    skip: store.skip ?? false,
  }, () => {
    const QUOTA = 30;
    const trials = Math.max(2, Math.round(FEWER * store.share));
    let database: TemporaryDatabase | undefined;
    let server: TestServer;

    before(async () => {
      database = store.postgres ? await createTemporaryDatabase() : undefined;
      server = await startApiServer({
        limits: { tokensApi: { limit: 100_000, interval: 60 }, tokensPerAccount: QUOTA },
        ...(database ? { env: { TESSERA_DATABASE_URL: database.url } } : {}),
      });
    });
    after(async () => {
      await server?.close();
      await database?.drop();
    });

    test(`50 concurrent creates with room for 5, ${trials} trials: exactly 5 succeed, the rest 422, ${QUOTA} stored`, async (t) => {
      const totals = { created: 0, refused422: 0, overshoot: 0 };
      for (let trial = 0; trial < trials; trial++) {
        const username = `quota${trial}`;
        const owner = await createTestAccount(server.services, username, ADMIN_SCOPES);
        const live = async () => (await tokensOf(server, username)).length;
        for (let filled = await live(); filled < QUOTA - 5; filled++) {
          const answer = await api(server, 'POST', `/tokens/v2/${username}`, {
            token: owner.adminToken,
            json: { note: `fill ${filled}`, scopes: ['tokens:read'] },
          });
          assert.equal(answer.status, 200, answer.text);
        }
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, index) =>
            api(server, 'POST', `/tokens/v2/${username}`, {
              token: owner.adminToken,
              json: { note: `burst ${index}`, scopes: ['tokens:read'] },
            }),
          ),
        );
        const counts = statusCounts(answers);
        assert.deepEqual(counts, { 200: 5, 422: 45 }, `trial ${trial}`);
        for (const answer of answers.filter((item) => item.status === 422)) {
          assert.deepEqual(answer.body, {
            message: `this account already holds ${QUOTA} tokens, the most it may`,
          });
        }
        const stored = await live();
        assert.equal(stored, QUOTA, 'stored count == the limit');
        totals.created += counts[200] ?? 0;
        totals.refused422 += counts[422] ?? 0;
        totals.overshoot += Math.max(0, stored - QUOTA);
      }
      report(t, 'T55', store.name, { trials, ...totals }, { tokensPerAccount: QUOTA, concurrentCreates: 50 });
    });

    test(`creates racing the revocation of the token that authorises them, ${trials} trials: every token it created was written before its revocation`, async (t) => {
      const totals = { created: 0, refused401: 0, createdAfterRevocation: 0 };
      for (let trial = 0; trial < trials; trial++) {
        const username = `revoked${trial}`;
        const owner = await createTestAccount(server.services, username, ADMIN_SCOPES);
        const authoriser = await api(server, 'POST', `/tokens/v2/${username}`, {
          token: owner.adminToken,
          json: { note: `authoriser ${trial}`, scopes: ['tokens:read', 'tokens:write'] },
        });
        assert.equal(authoriser.status, 200, authoriser.text);
        const { id, token } = authoriser.body as Metadata & { token: string };
        // The delete goes out among the creates, so some authenticate before it and write after it.
        const requests: Promise<ApiResponse>[] = [];
        let deletion: Promise<ApiResponse> | undefined;
        for (let index = 0; index < 20; index++) {
          if (index === 10)
            deletion = api(server, 'DELETE', `/tokens/v2/${username}/${id}`, { token: owner.adminToken });
          requests.push(
            api(server, 'POST', `/tokens/v2/${username}`, {
              token,
              json: { note: `raced ${trial}-${index}`, scopes: ['tokens:read'] },
            }),
          );
          if (index % 3 === 0) await yieldToEventLoop();
        }
        const [deleted, ...answers] = await Promise.all([deletion as Promise<ApiResponse>, ...requests]);
        assert.equal(deleted.status, 204, deleted.text);
        for (const answer of answers) {
          assert.ok(answer.status === 200 || answer.status === 401, `${answer.status} ${answer.text}`);
          if (answer.status === 200) totals.created += 1;
          else totals.refused401 += 1;
        }
        // The audit log is written in each change's own transaction: every create by the authoriser
        // must come before its deletion there (a create that wrote after the revocation would follow it).
        const events = (await server.services.store.listAudit({ username, limit: 1000 })) ?? [];
        const oldestFirst = [...events].reverse();
        const revokedAt = oldestFirst.findIndex(
          (event) => event.action === 'token.delete' && event.target === id,
        );
        assert.ok(revokedAt >= 0, 'the deletion is in the audit log');
        const createdBy = oldestFirst
          .map((event, index) => ({ event, index }))
          .filter(({ event }) => event.action === 'token.create' && event.actor === `token:${id}`);
        assert.equal(createdBy.length, answers.filter((answer) => answer.status === 200).length);
        const late = createdBy.filter(({ index }) => index > revokedAt).length;
        totals.createdAfterRevocation += late;
        assert.equal(late, 0, 'a token was created by an authoriser already revoked');
      }
      report(t, 'T58-creates', store.name, { trials, ...totals });
    });
  });
}

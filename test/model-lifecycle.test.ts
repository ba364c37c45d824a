import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type ApiResponse, startApiServer, tokensOf } from './helpers/api.ts';
import { recordFigures } from './helpers/figures.ts';
import {
  type Actor,
  AUTHORIZER_SCOPES,
  applicable,
  describeOp,
  judge,
  judgeList,
  type Model,
  type Op,
  PUBLIC_SCOPES,
  type Real,
  type Ref,
  SECRET_SCOPES,
  send,
  UNHELD_SCOPES,
} from './helpers/lifecycle-model.ts';
import { createTemporaryDatabase, postgresSkipReason } from './helpers/postgres.ts';
import { createTestAccount, ManualClock } from './helpers/server.ts';

// T57: model-based tests of the token lifecycle. Random command sequences run against the real
// server and against a small model of the documented rules; every answer (status, message, body,
// forward-auth verdict) must be the one the model predicts. Then concurrent batches whose start
// order fast-check's scheduler picks: every outcome must be explained by some serial order.
// TESSERA_MODEL_RUNS (sequences; a third as many interleavings), TESSERA_MODEL_COMMANDS and
// TESSERA_MODEL_SEED change the amount and the seed. By default 300 sequences of up to 30 commands;
// when figures are recorded, the plan's 500 of up to 50.

const FIGURES = Boolean(process.env['TESSERA_FIGURES_DIR']);
const RUNS = Number(process.env['TESSERA_MODEL_RUNS'] ?? (FIGURES ? 500 : 300));
const MAX_COMMANDS = Number(process.env['TESSERA_MODEL_COMMANDS'] ?? (FIGURES ? 50 : 30));
const INTERLEAVINGS = Math.max(1, Math.ceil(RUNS / 3));
/** PostgreSQL answers slower: it gets a tenth of the sequences and a third of the interleavings. */
const POSTGRES_RUNS = Math.max(1, Math.ceil(RUNS / 10));
const POSTGRES_INTERLEAVINGS = Math.max(1, Math.ceil(INTERLEAVINGS / 3));
const SEED = Number(process.env['TESSERA_MODEL_SEED'] ?? 20_570);
const USERNAME = 'model';
const postgresSkip = await postgresSkipReason();

/** One server and account that every run reuses: a run starts by deleting what the last one left. */
interface Harness extends Real {
  readonly adminId: string;
  readonly defaultId: string;
  close(): Promise<void>;
}

async function startHarness(options: { readonly postgres: boolean }): Promise<Harness> {
  const database = options.postgres ? await createTemporaryDatabase() : undefined;
  // Whole seconds, so temporary tokens' `exp` (Unix seconds) starts aligned; steps of 1 ms and
  // 999 ms take the clock off the second.
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const server = await startApiServer({
    clock,
    ...(database ? { env: { TESSERA_DATABASE_URL: database.url } } : {}),
  });
  const account = await createTestAccount(server.services, USERNAME, AUTHORIZER_SCOPES);
  const fixed = await tokensOf(server, USERNAME);
  return {
    server,
    clock,
    username: USERNAME,
    adminToken: account.adminToken,
    adminId: account.adminTokenId,
    defaultId: fixed.find((token) => token.default)?.id ?? '',
    async close() {
      await server.close();
      await database?.drop();
    },
  };
}

async function freshModel(harness: Harness): Promise<Model> {
  const { server, adminId, defaultId } = harness;
  for (const token of await tokensOf(server, USERNAME)) {
    if (token.id === adminId || token.id === defaultId) continue;
    await server.services.tokens.remove({ kind: 'operator' }, USERNAME, token.id);
  }
  return { username: USERNAME, adminId, now: harness.clock.now(), tokens: [], temporary: [] };
}

/** How often each kind of answer was seen: shows which paths the random sequences reached. */
const seen = new Map<string, number>();

/** Runs one op serially and fails on any divergence from the model. */
async function step(real: Real, model: Model, op: Op): Promise<void> {
  const response = await send(real, model, op);
  const divergence = judge(model, op, response);
  if (divergence) throw new Error(`${describeOp(op)} diverged from the model: ${divergence}`);
  const answer = response?.body as { code?: string; message?: string } | undefined;
  const reason = response?.headers.get('x-tessera-reason') ?? answer?.code ?? answer?.message;
  const key = `${op.kind} ${response?.status ?? ''}${reason ? ` ${reason}` : ''}`;
  seen.set(key, (seen.get(key) ?? 0) + 1);
}

// ---- arbitraries ---------------------------------------------------------------------------

const NOTES = ['', 'site', 'backend', 'ünïcode ✓ 名前', 'n'.repeat(256)];
const URLS = ['https://a.example.com', 'https://b.example.com', '*.c.example.com'];
const ORIGINS = [
  null,
  'https://a.example.com',
  'https://b.example.com',
  'https://x.c.example.com',
  'https://c.example.com',
  'http://a.example.com',
];
const EXPIRES_IN = [-1, 0, 1, 30, 60, 600, 3600, 86_400];
const MINT_EXPIRES_IN = [-1, 0, 1, 60, 600, 3600, 3601];
const GRACE_PERIODS = [0, 1, 60, 600, 3600];
const ADVANCES = [1, 999, 1000, 30_000, 60_000, 61_000, 600_000, 3_600_000];

/** Mostly scopes the authorizer holds, now and then one it does not. */
function scopesFrom(pool: readonly string[], options: { readonly minSecret?: number } = {}) {
  const held = options.minSecret
    ? fc
        .tuple(
          fc.shuffledSubarray([...PUBLIC_SCOPES]),
          fc.shuffledSubarray([...SECRET_SCOPES], { minLength: 1 }),
        )
        .map(([pub, secret]) => [...secret, ...pub])
    : fc.shuffledSubarray([...pool]);
  const stray = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 11 },
    { arbitrary: fc.constantFrom(...UNHELD_SCOPES), weight: 1 },
  );
  return fc.tuple(held, stray).map(([scopes, extra]) => (extra ? [...scopes, extra] : scopes));
}

const expiresIn = fc.option(fc.constantFrom(...EXPIRES_IN), { nil: null, freq: 2 });
const allowedUrls = fc.option(fc.shuffledSubarray(URLS), { nil: null, freq: 2 });
const ref: fc.Arbitrary<Ref> = fc.record({
  pool: fc.constantFrom('persistent' as const, 'persistent' as const, 'temporary' as const),
  index: fc.nat({ max: 60 }),
});
const ADMIN: Actor = { pool: 'admin' };
/** Mostly the admin token; now and then a token of the model, weaker, expiring or temporary. */
const actor: fc.Arbitrary<Actor> = fc.oneof(
  { arbitrary: fc.constant(ADMIN), weight: 3 },
  { arbitrary: ref, weight: 2 },
);
const minter: fc.Arbitrary<Actor> = fc.oneof(fc.constant(ADMIN), ref);

const createOp = (scopes: fc.Arbitrary<string[]>): fc.Arbitrary<Op> =>
  fc.record({
    kind: fc.constant('create' as const),
    by: actor,
    note: fc.constantFrom(...NOTES),
    scopes,
    allowedUrls,
    expiresIn,
  });

const OPS: ReadonlyArray<fc.Arbitrary<Op>> = [
  ...Array.from({ length: 2 }, () => createOp(scopesFrom(PUBLIC_SCOPES))),
  ...Array.from({ length: 2 }, () => createOp(scopesFrom(AUTHORIZER_SCOPES, { minSecret: 1 }))),
  fc.record(
    {
      kind: fc.constant('update' as const),
      by: actor,
      target: fc.nat({ max: 60 }),
      note: fc.constantFrom(...NOTES),
      scopes: scopesFrom(AUTHORIZER_SCOPES),
      allowedUrls,
      expiresIn,
    },
    { requiredKeys: ['kind', 'by', 'target'] },
  ),
  fc.record({ kind: fc.constant('delete' as const), by: actor, target: fc.nat({ max: 60 }) }),
  fc.record({
    kind: fc.constant('rotate' as const),
    by: actor,
    target: fc.nat({ max: 60 }),
    gracePeriod: fc.constantFrom(...GRACE_PERIODS),
  }),
  ...Array.from({ length: 2 }, () =>
    fc.record({
      kind: fc.constant('mint' as const),
      by: minter,
      scopes: scopesFrom(AUTHORIZER_SCOPES),
      expiresIn: fc.constantFrom(...MINT_EXPIRES_IN),
    }),
  ),
  fc.constant({ kind: 'list' as const }),
  ...Array.from({ length: 2 }, () =>
    fc.record({
      kind: fc.constant('verify' as const),
      target: ref,
      scope: fc.constantFrom(...AUTHORIZER_SCOPES, ...UNHELD_SCOPES),
      origin: fc.constantFrom(...ORIGINS),
    }),
  ),
  fc.record({ kind: fc.constant('retrieve' as const), target: ref }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(...ADVANCES) }),
];

// ---- serial sequences ----------------------------------------------------------------------

const serial = { commands: 0, current: 0, longest: 0 };

class Step implements fc.AsyncCommand<Model, Real> {
  constructor(readonly op: Op) {}
  check(model: Readonly<Model>): boolean {
    return applicable(model, this.op);
  }
  async run(model: Model, real: Real): Promise<void> {
    serial.commands += 1;
    serial.current += 1;
    await step(real, model, this.op);
  }
  toString(): string {
    return describeOp(this.op);
  }
}

// ---- concurrent batches --------------------------------------------------------------------

/** Two persistent tokens (an sk that may mint, a pk) and a tk minted by the sk. */
const SETUP: readonly Op[] = [
  {
    kind: 'create',
    by: ADMIN,
    note: 'secret',
    scopes: ['tokens:write', 'styles:read', 'fonts:read'],
    allowedUrls: null,
    expiresIn: null,
  },
  {
    kind: 'create',
    by: ADMIN,
    note: 'public',
    scopes: ['styles:read', 'fonts:read'],
    allowedUrls: null,
    expiresIn: null,
  },
  { kind: 'mint', by: { pool: 'persistent', index: 0 }, scopes: ['styles:read'], expiresIn: 600 },
];

const target = fc.constantFrom(0, 1);
const setupRef: fc.Arbitrary<Ref> = fc.oneof(
  target.map((index) => ({ pool: 'persistent' as const, index })),
  fc.constant({ pool: 'temporary' as const, index: 0 }),
);
const BATCH_OP: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), by: fc.constant(ADMIN), target }),
  fc.record({
    kind: fc.constant('update' as const),
    by: fc.constant(ADMIN),
    target,
    note: fc.constantFrom('one', 'two', 'three'),
    scopes: fc.constantFrom(
      ['styles:read'],
      ['fonts:read'],
      ['tokens:write', 'styles:read'],
      ['styles:write'],
    ),
  }),
  fc.record({
    kind: fc.constant('rotate' as const),
    by: fc.constant(ADMIN),
    target,
    gracePeriod: fc.constantFrom(0, 60),
  }),
  fc.record({
    kind: fc.constant('verify' as const),
    target: setupRef,
    scope: fc.constantFrom('styles:read', 'fonts:read'),
    origin: fc.constant(null),
  }),
  fc.record({
    kind: fc.constant('mint' as const),
    by: fc.constantFrom<Actor>({ pool: 'persistent', index: 0 }, { pool: 'persistent', index: 1 }),
    scopes: fc.constantFrom(['styles:read'], ['fonts:read']),
    expiresIn: fc.constant(600),
  }),
  fc.record({ kind: fc.constant('retrieve' as const), target: setupRef }),
  fc.constant<Op>({
    kind: 'create',
    by: ADMIN,
    note: 'new',
    scopes: ['styles:read'],
    allowedUrls: null,
    expiresIn: null,
  }),
);
const BATCH = fc.array(BATCH_OP, { minLength: 2, maxLength: 6 });
/** Now and then an op waits for every request started before it: histories with real-time order. */
const BARRIERS = fc.array(
  fc.nat({ max: 3 }).map((n) => n === 0),
  { minLength: 6, maxLength: 6 },
);

interface Outcome {
  /** Logical times: a request that ended before another started must come first in any serial order. */
  readonly start: number;
  readonly end: number;
  readonly response: ApiResponse;
}

/** Starts the batch's requests in the order the scheduler picks, overlapping unless a barrier says otherwise. */
async function race(
  real: Real,
  scheduler: fc.Scheduler,
  model: Model,
  batch: readonly Op[],
  barriers: readonly boolean[],
): Promise<Outcome[]> {
  const snapshot = structuredClone(model);
  const records: Outcome[] = [];
  const started: Promise<unknown>[] = [];
  let tick = 0;
  const tasks = batch.map((op, index) =>
    scheduler.schedule(Promise.resolve(), describeOp(op)).then(async () => {
      if (barriers[index]) await Promise.allSettled(started);
      const start = tick++;
      const request = send(real, snapshot, op);
      started.push(request);
      const response = (await request) as ApiResponse;
      records[index] = { start, end: tick++, response };
    }),
  );
  await scheduler.waitFor(Promise.all(tasks));
  return records;
}

/**
 * Every serial order of the batch that respects real time and reproduces each answer, as the final
 * model it leads to (at most `limit` of them).
 */
function linearizations(
  model: Model,
  batch: readonly Op[],
  records: readonly Outcome[],
  limit = 64,
): Model[] {
  const finals: Model[] = [];
  const placed = batch.map(() => false);
  const ready = (index: number): boolean =>
    records.every((other, j) => placed[j] || j === index || other.end > (records[index] as Outcome).start);
  const search = (current: Model, count: number): void => {
    if (finals.length >= limit) return;
    if (count === batch.length) {
      finals.push(current);
      return;
    }
    for (let index = 0; index < batch.length; index++) {
      if (placed[index] || !ready(index)) continue;
      const next = structuredClone(current);
      if (judge(next, batch[index] as Op, (records[index] as Outcome).response) !== undefined) continue;
      placed[index] = true;
      search(next, count + 1);
      placed[index] = false;
    }
  };
  search(model, 0);
  return finals;
}

function history(batch: readonly Op[], records: readonly Outcome[]): string {
  return batch
    .map((op, index) => {
      const record = records[index] as Outcome;
      return `  [${record.start}-${record.end}] ${describeOp(op)} -> ${record.response.status} ${record.response.text}`;
    })
    .join('\n');
}

/**
 * Some serial order explains every answer; the stored tokens are what that order leaves; and every
 * token, persistent or temporary, then verifies as that order says (a deleted one never again).
 */
async function checkLinearizable(
  real: Real,
  model: Model,
  batch: readonly Op[],
  records: readonly Outcome[],
): Promise<void> {
  const finals = linearizations(model, batch, records);
  assert.ok(finals.length > 0, `no serial order explains these answers:\n${history(batch, records)}`);
  const list = (await send(real, model, { kind: 'list' })) as ApiResponse;
  const final = finals.find((candidate) => judgeList(candidate, list) === undefined);
  assert.ok(final, `the stored tokens match no serial order:\n${history(batch, records)}\n${list.text}`);
  const checks: Op[] = [
    ...final.tokens.map((_, index) => ({ pool: 'persistent' as const, index })),
    ...final.temporary.map((_, index) => ({ pool: 'temporary' as const, index })),
  ].flatMap((ref) => [
    { kind: 'verify' as const, target: ref, scope: 'styles:read', origin: null },
    { kind: 'retrieve' as const, target: ref },
  ]);
  for (const op of checks) await step(real, final, op);
}

// ---- the runs ------------------------------------------------------------------------------

/** Figures over every store this file ran on; each test records the totals so far. */
const figures = {
  stores: '',
  sequences: 0,
  maxCommands: MAX_COMMANDS,
  commandsRun: 0,
  longestSequenceRun: 0,
  interleavings: 0,
  concurrentRequests: 0,
  divergences: 0,
  seed: SEED,
  interleavingSeed: SEED + 1,
};

function report(t: { diagnostic(message: string): void }, store: string): void {
  if (!figures.stores.includes(store))
    figures.stores = figures.stores ? `${figures.stores}, ${store}` : store;
  t.diagnostic(`T57 ${JSON.stringify(figures)}`);
  recordFigures('T57', figures);
}

async function sequences(harness: Harness, runs: number): Promise<void> {
  const commands = fc.commands(
    OPS.map((op) => op.map((value) => new Step(value))),
    { maxCommands: MAX_COMMANDS, size: 'max' },
  );
  await fc.assert(
    fc.asyncProperty(commands, async (sequence) => {
      serial.current = 0;
      await fc.asyncModelRun(async () => ({ model: await freshModel(harness), real: harness }), sequence);
      serial.longest = Math.max(serial.longest, serial.current);
    }),
    { seed: SEED, numRuns: runs, includeErrorInReport: true },
  );
  figures.sequences += runs;
  figures.commandsRun = serial.commands;
  figures.longestSequenceRun = serial.longest;
}

async function interleavings(harness: Harness, runs: number): Promise<number> {
  const histories = new Set<string>();
  await fc.assert(
    fc.asyncProperty(fc.scheduler(), BATCH, BARRIERS, async (scheduler, batch, barriers) => {
      const model = await freshModel(harness);
      for (const op of SETUP) await step(harness, model, op);
      const records = await race(harness, scheduler, model, batch, barriers);
      figures.concurrentRequests += records.length;
      histories.add(records.map((record) => `${record.start}:${record.response.status}`).join(','));
      await checkLinearizable(harness, model, batch, records);
    }),
    { seed: SEED + 1, numRuns: runs, includeErrorInReport: true },
  );
  figures.interleavings += runs;
  return histories.size;
}

const STORES = [
  { name: 'SQLite', postgres: false, runs: RUNS, interleavings: INTERLEAVINGS, skip: undefined },
  {
    name: 'PostgreSQL',
    postgres: true,
    runs: POSTGRES_RUNS,
    interleavings: POSTGRES_INTERLEAVINGS,
    skip: postgresSkip,
  },
] as const;

for (const store of STORES) {
  describe(`T57 model-based lifecycle on ${store.name} (fast-check)`, { skip: store.skip ?? false }, () => {
    let harness: Harness;
    before(async () => {
      harness = await startHarness({ postgres: store.postgres });
    });
    after(() => harness?.close());

    test(`${store.runs} random sequences of up to ${MAX_COMMANDS} commands answer as the model predicts`, async (t) => {
      await sequences(harness, store.runs);
      t.diagnostic(`answers seen: ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
      report(t, store.name);
    });

    test(`${store.interleavings} scheduled interleavings of concurrent changes are linearizable`, async (t) => {
      const distinct = await interleavings(harness, store.interleavings);
      t.diagnostic(`distinct histories: ${distinct}`);
      report(t, store.name);
    });
  });
}

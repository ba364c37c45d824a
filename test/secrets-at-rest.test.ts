import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { counterPattern } from '../src/services/redis-rate-limiter.ts';
import { recordFigures } from './helpers/figures.ts';
import { TEST_KEY_ENCRYPTION_KEY } from './helpers/postgres.ts';
import {
  PrivatePostgres,
  PrivateRedis,
  privatePostgresSkipReason,
  privateRedisSkipReason,
} from './helpers/private-services.ts';
import { describeHits, type Hit, type Secret, SecretScanner } from './helpers/secret-scan.ts';
import { pgDump, scanRedis, startServe, webhookSink } from './helpers/secret-stores.ts';
import { type IssuedToken, type RunResult, runWorkload } from './helpers/secret-workload.ts';

// Security plan T01 (with T07, T08, T10): after a full run over the real HTTP surfaces of a real
// `tessera serve` (20 accounts, >= 200 tokens of each kind, logging at its most verbose level,
// `info`), no secret token, temporary token, password or session id is found anywhere at rest or in
// the log, in any of the spellings a copy could take (raw, hex, base64 at every alignment, UTF-16,
// URL/form/JSON/HTML escaping); and each secret token shows in exactly one HTTP answer.
// Public tokens are stored in full by design (decision 0001: the API and dashboard show them again),
// so the scan must find every live one in the database: that is its own positive control.

const SEED = 0x7015_2026;
const ACCOUNTS = 20;
/** Planted where the scan must find it; shaped like a password (no token is), searched like one. */
const CONTROL = `scanner control value ${SEED.toString(16)} 4f1c9a7e2b`;

/**
 * The PostgreSQL + Redis run uses servers of its own (./helpers/private-services.ts), so that their
 * files on disk (tables, WAL, the server log, RDB and AOF) hold this run's data and nothing else.
 */
const skipServices = privatePostgresSkipReason() ?? privateRedisSkipReason() ?? false;

/**
 * The private PostgreSQL logs every statement it runs with its parameters: whatever Tessera sends it,
 * the log keeps. A secret in a query (a lookup by a raw session id, say) shows there even when the
 * table stores only a digest.
 */
const STATEMENT_LOG = ["log_statement = 'all'", 'log_parameter_max_length = -1'];

/** What the running test must undo, last first, whether it passed or not (see `cleanUpAfter`). */
let cleanups: Array<() => Promise<void> | void> = [];

function defer(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

function cleanUpAfter(t: TestContext): void {
  cleanups = [];
  const mine = cleanups;
  t.after(async () => {
    // Every undo runs, also after one that failed: a private server must never outlive the test.
    const errors: unknown[] = [];
    for (const cleanup of mine.reverse())
      await Promise.resolve()
        .then(cleanup)
        .catch((error) => errors.push(error));
    if (errors.length > 0) throw new AggregateError(errors, 'clean-up failed');
  });
}

function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `tessera-at-rest-${name}-`));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(hookUrl: string): string {
  const file = join(tempDir('config'), 'tessera.json');
  const hour = { limit: 1_000_000, interval: 3600 };
  const config = {
    // Hour-long windows, so the Redis counters written early in the run are still there to scan.
    limits: { tokensApi: hour, scopes: { 'styles:read': hour } },
    usage: { flushInterval: 0.5 },
    webhooks: [{ url: hookUrl, secret: 'a webhook secret for the at-rest scan' }],
  };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function baseEnv(config: string): Record<string, string> {
  return {
    TESSERA_CONFIG: config,
    TESSERA_LOG_LEVEL: 'info',
    // The workload names each account's client with X-Forwarded-For, as a reverse proxy would.
    TESSERA_TRUSTED_PROXIES: '127.0.0.1',
  };
}

/**
 * Client addresses of the accounts (X-Forwarded-For behind the trusted proxy 127.0.0.1); each signs
 * up from its own, as the sign-up limit allows 10 per address and hour.
 */
const NETWORK = '10.70.15';

function run(url: string): Promise<RunResult> {
  return runWorkload({ url, accounts: ACCOUNTS, network: NETWORK, seed: SEED, concurrency: 4 });
}

function tokenLabel(entry: IssuedToken, index: number): string {
  return `${entry.id ?? `#${index}`} of ${entry.username} (${entry.via})`;
}

/**
 * Everything searched for: every token (pk too: found where stored by design, nowhere else), every
 * password (right, changed and wrong), every session id, the control value, and the ids of deleted
 * tokens (not secret: the log must show them in its DELETE lines, a control that the log was read).
 */
function secretsOf(result: RunResult): Secret[] {
  const secrets: Secret[] = result.tokens.map((entry, index) => ({
    kind: entry.usage,
    label: tokenLabel(entry, index),
    value: entry.token,
  }));
  for (const [username, passwords] of result.passwords) {
    for (const [what, value] of [
      ['initial', passwords.initial],
      ['changed', passwords.changed],
      ...passwords.wrong.map((wrong, index) => [`wrong #${index + 1}`, wrong]),
    ] as const)
      secrets.push({ kind: 'password', label: `${what} password of ${username}`, value });
  }
  result.sessions.forEach((value, index) => {
    secrets.push({ kind: 'session', label: `session #${index}`, value });
  });
  secrets.push({ kind: 'control', label: 'planted control value', value: CONTROL });
  for (const entry of result.tokens.filter((candidate) => candidate.ended === 'deleted'))
    secrets.push({ kind: 'control', label: `id of deleted ${entry.usage}`, value: entry.id as string });
  return secrets;
}

function countOf(result: RunResult, usage: string): number {
  return result.tokens.filter((entry) => entry.usage === usage).length;
}

/** The workload's own bounds: at least 200 tokens of each kind across 20 accounts. */
function assertFullRun(result: RunResult): void {
  for (const usage of ['pk', 'sk', 'tk']) assert.ok(countOf(result, usage) >= 200, `${usage} tokens`);
  assert.equal(new Set(result.tokens.map((entry) => entry.token)).size, result.tokens.length, 'distinct');
  assert.equal(result.passwords.size, ACCOUNTS);
  assert.ok(result.sessions.length >= ACCOUNTS * 3, 'sessions handed out');
}

const SECRET_KINDS = new Set(['sk', 'tk', 'password', 'session']);

function forbidden(hits: readonly Hit[], options: { readonly publicToo?: boolean } = {}): Hit[] {
  return hits.filter(
    (hit) => SECRET_KINDS.has(hit.secret.kind) || (options.publicToo && hit.secret.kind === 'pk'),
  );
}

/** Live public tokens found whole in `hits` (the positive control of a database scan). */
function livePublicFound(result: RunResult, hits: readonly Hit[]): { found: number; live: number } {
  const seen = new Set(hits.filter((hit) => hit.form === 'whole token, raw').map((hit) => hit.secret.value));
  const live = result.tokens.filter((entry) => entry.usage === 'pk' && entry.live);
  return { found: live.filter((entry) => seen.has(entry.token)).length, live: live.length };
}

function deletedPublicFound(result: RunResult, hits: readonly Hit[]): string {
  const seen = new Set(hits.filter((hit) => hit.form === 'whole token, raw').map((hit) => hit.secret.value));
  const gone = result.tokens.filter((entry) => entry.usage === 'pk' && !entry.live);
  return `${gone.filter((entry) => seen.has(entry.token)).length}/${gone.length}`;
}

interface ResponseCheck {
  readonly bytes: number;
  /** A password in any answer, a secret token in an answer other than its one reveal. */
  readonly misplaced: Hit[];
  /** Secret tokens found in no answer at all: the answer scan did not work. */
  readonly unseen: string[];
  /** Answers revealing a secret token without `Cache-Control: no-store`. */
  readonly cacheable: string[];
}

/**
 * T07: a secret or temporary token shows in exactly one answer (its create, its rotation, or the
 * dashboard page that reveals it once), and that answer is `Cache-Control: no-store`; no answer
 * ever shows a password. Session ids are left out: Set-Cookie carries them by design.
 */
function checkResponses(scanner: SecretScanner, result: RunResult): ResponseCheck {
  const shown = new Set<string>();
  const check = { bytes: 0, misplaced: [] as Hit[], unseen: [] as string[], cacheable: [] as string[] };
  const before = scanner.bytesScanned;
  result.exchanges.forEach((exchange, index) => {
    const headers = [...exchange.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
    for (const hit of scanner.scan(
      `response #${index} ${exchange.label}`,
      `${headers}\n\n${exchange.text}`,
    )) {
      const { kind, value } = hit.secret;
      if (kind === 'sk' || kind === 'tk') shown.add(value);
      const allowed = (kind === 'sk' || kind === 'tk') && exchange.reveals.includes(value);
      if (SECRET_KINDS.has(kind) && kind !== 'session' && !allowed) check.misplaced.push(hit);
    }
    if (exchange.reveals.length > 0 && !/no-store/.test(exchange.headers.get('cache-control') ?? ''))
      check.cacheable.push(`response #${index} ${exchange.label}`);
  });
  result.tokens.forEach((entry, index) => {
    if (entry.usage !== 'pk' && !shown.has(entry.token))
      check.unseen.push(`${entry.usage} ${tokenLabel(entry, index)}`);
  });
  return { ...check, bytes: scanner.bytesScanned - before };
}

/** The answers' own findings, after the leaks: a token in no answer means the answer scan is broken. */
function assertResponseControls(responses: ResponseCheck): void {
  assert.deepEqual(responses.cacheable, [], 'answers that reveal a token are no-store');
  assert.deepEqual(responses.unseen, [], 'every secret token is found in the one answer that reveals it');
}

/** T08/T10: the request log was written, tokens given in queries show as `access_token=[REDACTED]`. */
function assertLogRead(log: string, hits: readonly Hit[], result: RunResult): void {
  const lines = log.split('\n').filter((line) => line.includes('"msg":"request"'));
  assert.ok(lines.length > 500, `request lines logged: ${lines.length}`);
  assert.ok(log.includes('access_token=[REDACTED]'), 'query tokens are logged redacted');
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), 'one JSON object per line');
  const ids = new Set(
    hits.filter((hit) => hit.secret.label.startsWith('id of')).map((hit) => hit.secret.value),
  );
  const deleted = result.tokens.filter((entry) => entry.ended === 'deleted');
  assert.equal(ids.size, deleted.length, 'the scanner finds the ids of deleted tokens in the log');
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function report(
  t: { diagnostic(message: string): void },
  title: string,
  figures: Record<string, string | number>,
) {
  for (const [name, value] of Object.entries(figures)) t.diagnostic(`${title}: ${name} = ${value}`);
}

test('scanner: finds a planted value in every spelling it claims to search', () => {
  const token = `sk.${'eyJ1IjoiYXRyZXN0MDAiLCJhIjoiY2'}.${'Q8mZ3xVb7TqLr2KpW9sNfYh4JdGc6EaUo1iBvXk5Mnt0Rz'}`;
  const secrets: Secret[] = [
    { kind: 'sk', label: 'sample sk', value: token },
    { kind: 'password', label: 'sample password', value: 'atrest00 first password #Zq' },
  ];
  const scanner = new SecretScanner(secrets);
  const secret = token.split('.')[2] as string;
  // Each sample and the spelling that must match it (base64 and base64url coincide without + or /).
  const samples: Array<[string | Buffer, RegExp]> = [
    [`xx${token}xx`, /^whole token, raw$/],
    [`0x${Buffer.from(token).toString('hex')}`, /^whole token, hex$/],
    [Buffer.from(secret).toString('hex').toUpperCase(), /^secret part, HEX$/],
    [Buffer.from(token).toString('base64'), /^whole token, base64(url)?@0$/],
    [Buffer.from(`a${token}`).toString('base64'), /^whole token, base64(url)?@1$/],
    [Buffer.from(`ab${secret}`).toString('base64'), /^secret part, base64(url)?@2$/],
    [Buffer.from(`{"t":"${token}"}`).toString('base64url'), /^whole token, base64(url)?@0$/],
    [Buffer.from(secret, 'utf16le'), /^secret part, utf16le$/],
    ['password=atrest00+first+password+%23Zq&x=1', /^value, form-encoded, raw$/],
    ['p=atrest00%20first%20password%20%23Zq', /^value, percent-encoded, raw$/],
    [Buffer.from('atrest00 first password #Zq').toString('hex'), /^value, hex$/],
  ];
  for (const [data, form] of samples) {
    const forms = scanner.scan('sample', data).map((hit) => hit.form);
    assert.ok(
      forms.some((found) => form.test(found)),
      `${form} in ${forms.join('; ')}`,
    );
  }
  assert.equal(scanner.scan('unrelated', randomBytes(1 << 16)).length, 0);
  assert.equal(scanner.scan('truncated', token.slice(0, -8)).length, 0, 'a truncated token is no token');
});

/** Files of the data folder that are the database itself (the scan of the rest is also checked). */
const DATABASE_FILE = /\/tessera\.db(-wal)?$/;

/** The planted control, base64 at an odd alignment inside random bytes. */
function plantControl(file: string): void {
  const encoded = Buffer.from(Buffer.from(`..${CONTROL}`).toString('base64'));
  writeFileSync(file, Buffer.concat([randomBytes(100), encoded, randomBytes(100)]));
}

function controlFound(hits: readonly Hit[], source: RegExp): boolean {
  return hits.some((hit) => hit.secret.value === CONTROL && source.test(hit.source));
}

function filesScanned(scanner: SecretScanner): number {
  return [...scanner.sources.keys()].filter((source) => /^(data|log)\b/.test(source)).length;
}

function secretCount(result: RunResult): number {
  const secretTokens = result.tokens.filter((entry) => entry.usage !== 'pk').length;
  return secretTokens + result.passwords.size * 5 + result.sessions.length;
}

function tokenCounts(result: RunResult): string {
  return ['pk', 'sk', 'tk'].map((usage) => countOf(result, usage)).join('/');
}

/**
 * `tessera serve` on `env`, the full workload against it, and a scanner for every secret it handed
 * out; a control planted in the data folder. `timings()` says where the seconds went.
 */
async function serveAndRun(env: Record<string, string>, dataDir: string) {
  const started = performance.now();
  const serve = await startServe(env, tempDir('log'), defer);
  const ran = performance.now();
  const result = await run(serve.url);
  const scanning = performance.now();
  assertFullRun(result);
  const scanner = new SecretScanner(secretsOf(result));
  plantControl(join(dataDir, 'scanner-control.bin'));
  const timings = (): string =>
    `seconds: start ${seconds(ran - started)}, run ${seconds(scanning - ran)}, scan ${seconds(performance.now() - scanning)}`;
  return { serve, result, scanner, timings };
}

test('SQLite: after the full run no secret token, temporary token, password or session id is in the database, its -wal and -shm, the data folder or the log (running and stopped); every live public token is; each secret token shows in one answer', {
  timeout: 240_000,
}, async (t) => {
  cleanUpAfter(t);
  t.diagnostic(`seed ${SEED}, client network ${NETWORK}.0/24`);
  const sink = await webhookSink(defer);
  const dataDir = tempDir('data');
  const env = {
    ...baseEnv(writeConfig(sink.url)),
    TESSERA_DATA_DIR: dataDir,
    TESSERA_DATABASE_URL: `sqlite:${join(dataDir, 'tessera.db')}`,
  };
  const { serve, result, scanner, timings } = await serveAndRun(env, dataDir);
  for (const name of ['tessera.db', 'tessera.db-wal', 'tessera.db-shm'])
    assert.ok(existsSync(join(dataDir, name)), `${name} exists while the server runs`);
  assert.ok(statSync(join(dataDir, 'tessera.db-wal')).size > 0, 'the -wal holds pages');
  const running = scanner.scanFolder(dataDir, 'data (running)');
  const runningLog = scanner.scan('log (running)', readFileSync(serve.logFile));
  await serve.stop();
  const stopped = scanner.scanFolder(dataDir, 'data (stopped)');
  const log = readFileSync(serve.logFile, 'utf8');
  const logHits = scanner.scan('log', log);
  const hookHits = scanner.scan('webhook deliveries', sink.bodies.join('\n'));
  const responses = checkResponses(scanner, result);

  const whileRunning = livePublicFound(
    result,
    running.filter((hit) => DATABASE_FILE.test(hit.source)),
  );
  const afterStop = livePublicFound(
    result,
    stopped.filter((hit) => DATABASE_FILE.test(hit.source)),
  );
  const leaks = [
    ...forbidden([...running, ...stopped]),
    ...forbidden([...runningLog, ...logHits, ...hookHits], { publicToo: true }),
    ...responses.misplaced,
  ];
  const figures = {
    'SQLite: tokens pk/sk/tk': tokenCounts(result),
    'SQLite: accounts': result.passwords.size,
    'SQLite: secrets searched (sk, tk, passwords, session ids)': secretCount(result),
    'SQLite: spellings searched': scanner.needles,
    'SQLite: files scanned (db, -wal, -shm, data folder twice, log)': filesScanned(scanner),
    'SQLite: HTTP answers scanned': result.exchanges.length,
    'SQLite: bytes scanned': scanner.bytesScanned,
    'SQLite: bytes of HTTP answers scanned': responses.bytes,
    'SQLite: forward-auth token carriers Bearer/query/Referer': `${result.forwardAuth.bearer}/${result.forwardAuth.query}/${result.forwardAuth.referer}`,
    'SQLite: live pk found in the database': `${afterStop.found}/${afterStop.live}`,
    'SQLite: deleted pk still in the database files': deletedPublicFound(result, stopped),
    'SQLite: plaintext hits': leaks.length,
  };
  t.diagnostic(timings());
  report(t, 'T01', figures);
  recordFigures('T01', figures);
  assert.equal(leaks.length, 0, `secrets found:\n${describeHits(leaks)}`);
  assert.ok(controlFound(running, /^data \(running\)\/scanner-control/), 'the planted control is found');
  assert.ok(controlFound(stopped, /^data \(stopped\)\/scanner-control/), 'the planted control is found');
  assert.equal(whileRunning.found, whileRunning.live, 'every live pk is in tessera.db or its -wal');
  assert.equal(afterStop.found, afterStop.live, 'every live pk is in tessera.db after the stop');
  assertLogRead(log, logHits, result);
  assertResponseControls(responses);
});

test('PostgreSQL + Redis: after the full run no secret token, temporary token, password or session id is in a pg_dump, the PostgreSQL data folder (tables, WAL), its log of every statement with its parameters, any Redis key or value, the RDB and AOF files, the data folder or the log; every live public token is in the dump and the data folder; each secret token shows in one answer', {
  skip: skipServices,
  timeout: 300_000,
}, async (t) => {
  cleanUpAfter(t);
  t.diagnostic(`seed ${SEED}, client network ${NETWORK}.0/24`);
  const postgres = await PrivatePostgres.create({ settings: STATEMENT_LOG });
  defer(() => postgres.destroy());
  const databaseUrl = await postgres.createDatabase('tessera');
  const redis = await PrivateRedis.create({ appendOnly: true });
  defer(() => redis.destroy());
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  await client.connect();
  defer(() => client.disconnect());
  // A control in Redis, hex at an odd offset: it must be found in the keyspace, the AOF and the RDB.
  await client.set('scanner:control', `x${Buffer.from(`.${CONTROL}`).toString('hex')}`);
  const sink = await webhookSink(defer);
  const dataDir = tempDir('data');
  const env = {
    ...baseEnv(writeConfig(sink.url)),
    TESSERA_DATA_DIR: dataDir,
    TESSERA_DATABASE_URL: databaseUrl,
    TESSERA_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
    TESSERA_REDIS_URL: redis.url,
  };
  const { serve, result, scanner, timings } = await serveAndRun(env, dataDir);
  // Stopped first: the last usage flush and Redis sync happen on the way out.
  await serve.stop();
  const dump = await pgDump(databaseUrl);
  const dumpHits = scanner.scan('pg_dump', dump);
  const keyspace = await scanRedis(scanner, client);
  await redis.snapshot('after-run');
  // A CHECKPOINT writes every row to the table files (a WAL record can be split by a page header,
  // so the tables are the positive control); then stopped as in a crash.
  await checkpoint(databaseUrl);
  await postgres.stop();
  const postgresHits = scanner.scanFolder(postgres.folder, 'postgresql');
  const redisFileHits = scanner.scanFolder(redis.folder, 'redis files');
  const dataHits = scanner.scanFolder(dataDir, 'data');
  const log = readFileSync(serve.logFile, 'utf8');
  const logHits = scanner.scan('log', log);
  const hookHits = scanner.scan('webhook deliveries', sink.bodies.join('\n'));
  const responses = checkResponses(scanner, result);

  const statementLog = readFileSync(join(postgres.folder, 'postgresql.log'), 'latin1');
  const counters = keyspace.keys.filter((key) => key.toString().startsWith('tessera:rl:'));
  const inDump = livePublicFound(result, dumpHits);
  const inFolder = livePublicFound(
    result,
    postgresHits.filter((hit) => hit.source.startsWith('postgresql/data/base/')),
  );
  const inWal = livePublicFound(
    result,
    postgresHits.filter((hit) => hit.source.startsWith('postgresql/data/pg_wal/')),
  );
  const leaks = [
    ...forbidden([...dumpHits, ...postgresHits, ...keyspace.hits, ...redisFileHits, ...dataHits]),
    ...forbidden([...logHits, ...hookHits], { publicToo: true }),
    ...responses.misplaced,
  ];
  const figures = {
    'PostgreSQL + Redis: tokens pk/sk/tk': tokenCounts(result),
    'PostgreSQL + Redis: accounts': result.passwords.size,
    'PostgreSQL + Redis: secrets searched (sk, tk, passwords, session ids)': secretCount(result),
    'PostgreSQL + Redis: spellings searched': scanner.needles,
    'PostgreSQL + Redis: pg_dump bytes': dump.length,
    'PostgreSQL + Redis: PostgreSQL folder bytes (tables, WAL, log)': bytesUnder(scanner, 'postgresql/'),
    'PostgreSQL + Redis: statements logged with their parameters': statementCount(statementLog),
    'PostgreSQL + Redis: Redis keys scanned': keyspace.keys.length,
    'PostgreSQL + Redis: Redis file bytes (RDB, AOF)': bytesUnder(scanner, 'redis files/'),
    'PostgreSQL + Redis: files scanned (data folder, log)': filesScanned(scanner),
    'PostgreSQL + Redis: HTTP answers scanned': result.exchanges.length,
    'PostgreSQL + Redis: bytes scanned': scanner.bytesScanned,
    'PostgreSQL + Redis: live pk found in the dump / the PostgreSQL tables / the WAL': `${inDump.found}/${inDump.live} / ${inFolder.found}/${inFolder.live} / ${inWal.found}/${inWal.live}`,
    'PostgreSQL + Redis: plaintext hits': leaks.length,
  };
  t.diagnostic(timings());
  report(t, 'T01', figures);
  recordFigures('T01', figures);
  assert.equal(leaks.length, 0, `secrets found:\n${describeHits(leaks)}`);
  assert.ok(controlFound(dataHits, /^data\/scanner-control/), 'the planted file control is found');
  assert.ok(controlFound(keyspace.hits, /^redis scanner:control$/), 'the planted Redis control is found');
  assert.ok(controlFound(redisFileHits, /^redis files\/appendonlydir\//), 'the control is in the AOF');
  assert.ok(controlFound(redisFileHits, /^redis files\/dump\.rdb$/), 'the control is in the RDB');
  assertOwnCounters(result, counters);
  assert.equal(inDump.found, inDump.live, 'every live pk is in the dump');
  assert.equal(inFolder.found, inFolder.live, 'every live pk is in the PostgreSQL table files');
  // The WAL's own control: a record split by a page header hides a few, but most must show.
  assert.ok(inWal.found >= inWal.live * 0.8, `live pk found in the WAL: ${inWal.found}/${inWal.live}`);
  assert.match(deletedPublicFound(result, dumpHits), /^0\/[1-9]/, 'a deleted pk is no longer stored');
  assert.match(dump.toString('latin1'), /COPY public\.tokens /, 'the dump holds the tokens table');
  assertStatementLog(statementLog, result);
  assertLogRead(log, logHits, result);
  assertResponseControls(responses);
});

async function checkpoint(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

function bytesUnder(scanner: SecretScanner, prefix: string): number {
  let bytes = 0;
  for (const [source, size] of scanner.sources) if (source.startsWith(prefix)) bytes += size;
  return bytes;
}

function statementCount(statementLog: string): number {
  return statementLog.match(/LOG: {2}(statement|execute [^:]*):/g)?.length ?? 0;
}

/**
 * The statement log's own controls: it holds the statements of the whole run with their parameters
 * (every pk created is an INSERT parameter, so each is in it), and tokens were inserted through it.
 */
function assertStatementLog(statementLog: string, result: RunResult): void {
  assert.ok(statementCount(statementLog) > 1000, `statements logged: ${statementCount(statementLog)}`);
  assert.match(statementLog, /DETAIL: {2}[Pp]arameters: \$1 = /, 'statements are logged with parameters');
  const publicTokens = result.tokens.filter((entry) => entry.usage === 'pk');
  const logged = publicTokens.filter((entry) => statementLog.includes(entry.token));
  assert.equal(logged.length, publicTokens.length, 'every pk created shows in the statement log');
}

/** Token ids are new in every run: counters of this run's tokens show the product wrote to this Redis. */
function assertOwnCounters(result: RunResult, counters: readonly Buffer[]): void {
  for (const username of result.passwords.keys()) {
    const own = result.tokens
      .filter((entry) => entry.username === username && entry.id)
      .map((entry) => counterPattern(`token:${entry.id}`).slice(0, -1));
    const found = counters.some((key) => own.some((prefix) => key.toString().startsWith(prefix)));
    assert.ok(found, `Redis holds a counter of one of ${username}'s tokens`);
  }
}

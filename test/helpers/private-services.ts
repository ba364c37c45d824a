import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from './processes.ts';

/**
 * A PostgreSQL cluster and a Redis server of a test file's own, on free loopback ports and in temp
 * folders: they can be stopped, killed, frozen with SIGSTOP and restarted without touching the
 * machine's shared servers (5432 and 6379), which other test files use at the same time.
 */

const run = promisify(execFile);

const POSTGRES_ROOT = '/usr/lib/postgresql';
const REDIS_SERVER = process.env['TESSERA_TEST_REDIS_SERVER'] ?? '/usr/bin/redis-server';
const RUNUSER = '/usr/sbin/runuser';
/** initdb refuses root: as root, the cluster belongs to this user. */
const POSTGRES_USER = 'postgres';
const START_TIMEOUT_S = 30;
const OUTPUT_LIMIT = 8_192;

/** What is still running or on disk: removed when the test process exits, whatever happened. */
const livePostgres = new Set<PrivatePostgres>();
const liveRedis = new Set<PrivateRedis>();
const folders = new Set<string>();
function removeEverything(): void {
  for (const postgres of livePostgres) postgres.killNow();
  for (const redis of liveRedis) redis.killNow();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
process.on('exit', removeEverything);
// A cancelled run (the test runner's timeout, Ctrl-C, a CI job stopped) ends without 'exit':
// clean up, then die of the same signal.
for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(name, () => {
    removeEverything();
    process.kill(process.pid, name);
  });
}

function tempFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.add(dir);
  return dir;
}

function removeFolder(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  folders.delete(dir);
}

/** A missing binary skips with a notice, except in CI, where it fails the run (as postgresSkipReason does). */
function skipOrFail(missing: string): string {
  if (process.env['CI'] === 'true') throw new Error(`CI=true but ${missing}`);
  const reason = `${missing}: private-server suites skipped`;
  console.warn(`NOTICE: ${reason}`);
  return reason;
}

/** The bin folder of the newest PostgreSQL installed from Debian packages (or TESSERA_TEST_PG_BIN). */
function postgresBin(): string | undefined {
  const explicit = process.env['TESSERA_TEST_PG_BIN'];
  if (explicit) return existsSync(join(explicit, 'initdb')) ? explicit : undefined;
  if (!existsSync(POSTGRES_ROOT)) return undefined;
  const versions = readdirSync(POSTGRES_ROOT)
    .filter((version) => existsSync(join(POSTGRES_ROOT, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(POSTGRES_ROOT, versions[0], 'bin');
}

interface Account {
  readonly uid: number;
  readonly gid: number;
}

function systemAccount(name: string): Account | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

const isRoot = process.getuid?.() === 0;

/** Why a private PostgreSQL cannot run here, or undefined when it can. */
export function privatePostgresSkipReason(): string | undefined {
  const bin = postgresBin();
  if (!bin) {
    const where = process.env['TESSERA_TEST_PG_BIN'] ?? `${POSTGRES_ROOT}/*/bin`;
    return skipOrFail(`no PostgreSQL server binaries (initdb, pg_ctl) in ${where}`);
  }
  if (isRoot && (!existsSync(RUNUSER) || !systemAccount(POSTGRES_USER))) {
    return skipOrFail(`running as root without ${RUNUSER} or a "${POSTGRES_USER}" user for initdb`);
  }
  return undefined;
}

/** Why a private Redis cannot run here, or undefined when it can. */
export function privateRedisSkipReason(): string | undefined {
  return existsSync(REDIS_SERVER) ? undefined : skipOrFail(`no ${REDIS_SERVER}`);
}

/** The pids of every descendant of `pid` (PostgreSQL's backends and helpers), read from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of children.get(next) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/**
 * A PostgreSQL cluster of its own: trust auth, 127.0.0.1 only, fsync and synchronous_commit on
 * (so a commit PostgreSQL acknowledged survives `pg_ctl stop -m immediate`).
 */
export class PrivatePostgres {
  readonly #bin: string;
  readonly #dir: string;
  readonly #data: string;
  readonly #logFile: string;
  readonly #settings: readonly string[];
  #port = 0;
  #pid: number | undefined;
  /** The processes SIGSTOPped by hang(), to SIGCONT in resume(). */
  #frozen: number[] = [];

  private constructor(bin: string, dir: string, settings: readonly string[]) {
    this.#bin = bin;
    this.#dir = dir;
    this.#settings = settings;
    this.#data = join(dir, 'data');
    this.#logFile = join(dir, 'postgresql.log');
  }

  /**
   * initdb in a fresh temp folder, then starts the cluster on a free port. `settings` are lines
   * for postgresql.conf after the defaults below (so they win), e.g. `log_statement = 'all'`.
   */
  static async create(options: { readonly settings?: readonly string[] } = {}): Promise<PrivatePostgres> {
    const bin = postgresBin();
    if (!bin) throw new Error('no PostgreSQL binaries: call privatePostgresSkipReason() first');
    const dir = tempFolder('tessera-pg-');
    const owner = isRoot ? systemAccount(POSTGRES_USER) : undefined;
    if (owner) chownSync(dir, owner.uid, owner.gid);
    const postgres = new PrivatePostgres(bin, dir, options.settings ?? []);
    livePostgres.add(postgres);
    try {
      await postgres.#initdb();
      await postgres.#startOnFreePort();
    } catch (error) {
      await postgres.destroy();
      throw error;
    }
    return postgres;
  }

  get port(): number {
    return this.#port;
  }

  /** The postmaster's pid while the cluster runs. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** The folder with everything the cluster writes: data folder (tables, pg_wal) and server log. */
  get folder(): string {
    return this.#dir;
  }

  /** The superuser's URL for `database`. */
  url(database = 'postgres'): string {
    return `postgres://${POSTGRES_USER}@127.0.0.1:${this.#port}/${database}`;
  }

  /** The tail of the server's log, for failure messages. */
  log(): string {
    try {
      return readFileSync(this.#logFile, 'utf8').slice(-OUTPUT_LIMIT);
    } catch {
      return '(no log)';
    }
  }

  /** Creates an empty database and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const admin = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 5000 });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
    } finally {
      await admin.end();
    }
    return this.url(name);
  }

  /** `pg_ctl start` on the same port and data folder as before. */
  async start(): Promise<void> {
    const options = `-c port=${this.#port}`;
    try {
      await this.#pgCtl(['start', '-w', '-t', String(START_TIMEOUT_S), '-l', this.#logFile, '-o', options]);
    } catch (error) {
      // A server that came up after pg_ctl gave up waiting must still be found and stopped.
      this.#pid = this.#postmasterPid();
      throw new Error(`pg_ctl start failed: ${(error as Error).message}\n${this.log()}`);
    }
    this.#pid = this.#postmasterPid();
  }

  #postmasterPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.#data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** `pg_ctl stop -m immediate`: every backend dies at once, as in a crash; no checkpoint. */
  async stop(): Promise<void> {
    if (this.#pid === undefined) return;
    this.resume();
    await this.#pgCtl(['stop', '-m', 'immediate', '-w', '-t', String(START_TIMEOUT_S)]);
    this.#pid = undefined;
  }

  /**
   * SIGSTOP the postmaster first (so it forks nothing more), then every backend: open connections
   * stay open and new ones are accepted by the kernel, but nothing answers.
   */
  hang(): void {
    if (this.#pid === undefined || this.#frozen.length > 0) return;
    signal(this.#pid, 'SIGSTOP');
    this.#frozen = [this.#pid, ...descendants(this.#pid)];
    for (const pid of this.#frozen.slice(1)) signal(pid, 'SIGSTOP');
  }

  resume(): void {
    for (const pid of this.#frozen) signal(pid, 'SIGCONT');
    this.#frozen = [];
  }

  /** Running and answering, whatever a failed test left behind (for `finally` blocks). */
  async ensureRunning(): Promise<void> {
    this.resume();
    if (this.#pid === undefined) await this.start();
  }

  /** Stops the cluster (killing it if it will not stop) and removes its folder. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch {
      this.killNow();
    }
    livePostgres.delete(this);
    removeFolder(this.#dir);
  }

  /** SIGKILL to the postmaster and every backend, synchronously (the exit hook's way). */
  killNow(): void {
    if (this.#pid === undefined) return;
    const pids = [this.#pid, ...descendants(this.#pid)];
    for (const pid of pids) signal(pid, 'SIGCONT');
    for (const pid of pids) signal(pid, 'SIGKILL');
    this.#pid = undefined;
  }

  async #initdb(): Promise<void> {
    await this.#as(join(this.#bin, 'initdb'), [
      '-D',
      this.#data,
      '-U',
      POSTGRES_USER,
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      // Only initdb's own files skip fsync; the running cluster keeps fsync on (below).
      '--no-sync',
    ]);
    appendFileSync(
      join(this.#data, 'postgresql.conf'),
      [
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${this.#dir}'`,
        'fsync = on',
        'synchronous_commit = on',
        // Crash recovery flushes the data folder first: one syncfs() instead of an fsync() per file
        // (seconds on a busy shared disk). Commits are still fsynced as with the default.
        'recovery_init_sync_method = syncfs',
        'max_connections = 60',
        'shared_buffers = 16MB',
        "log_min_messages = 'warning'",
        ...this.#settings,
        '',
      ].join('\n'),
    );
  }

  /** A port taken by another process between freePort() and listen is swapped for another. */
  async #startOnFreePort(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#port = await freePort();
      try {
        await this.start();
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }

  #pgCtl(args: readonly string[]): Promise<unknown> {
    return this.#as(join(this.#bin, 'pg_ctl'), ['-D', this.#data, ...args]);
  }

  async #as(command: string, args: readonly string[]): Promise<void> {
    const [file, argv] = isRoot ? [RUNUSER, ['-u', POSTGRES_USER, '--', command, ...args]] : [command, args];
    await run(file, argv, { timeout: (START_TIMEOUT_S + 10) * 1000, cwd: this.#dir });
  }
}

/** A connection that fails fast rather than queueing while the server is away. */
function quickClient(url: string): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // The failed command reports the error; without a listener ioredis would also print it.
  client.on('error', () => {});
  return client;
}

/**
 * A `redis-server` of its own: RDB file in a temp folder, no automatic snapshots; no AOF unless
 * asked for (`appendOnly`: every write command in appendonlydir/, fsynced at once, and an RDB
 * without compression).
 */
export class PrivateRedis {
  readonly #dir: string;
  readonly #appendOnly: boolean;
  #port = 0;
  #child: ChildProcess | undefined;
  #output = '';
  #frozen = false;

  private constructor(dir: string, appendOnly: boolean) {
    this.#dir = dir;
    this.#appendOnly = appendOnly;
  }

  static async create(options: { readonly appendOnly?: boolean } = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(tempFolder('tessera-redis-'), options.appendOnly ?? false);
    liveRedis.add(redis);
    try {
      for (let attempt = 1; ; attempt++) {
        redis.#port = await freePort();
        try {
          await redis.start();
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
        }
      }
    } catch (error) {
      await redis.destroy();
      throw error;
    }
    return redis;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The folder with everything the server writes: dump.rdb, appendonlydir/, snapshots/. */
  get folder(): string {
    return this.#dir;
  }

  /** The file Redis loads at start and writes on SAVE. */
  get dumpFile(): string {
    return join(this.#dir, 'dump.rdb');
  }

  output(): string {
    return this.#output;
  }

  /** Starts redis-server on the same port and folder (loading dump.rdb if there is one). */
  async start(): Promise<void> {
    const args = ['--port', String(this.#port), '--bind', '127.0.0.1', '--dir', this.#dir];
    // With files asked for, values are also written uncompressed to the RDB: as they were sent.
    const appendOnly = this.#appendOnly
      ? ['yes', '--appendfsync', 'always', '--rdbcompression', 'no']
      : ['no'];
    const quiet = [
      '--save',
      '',
      '--appendonly',
      ...appendOnly,
      '--daemonize',
      'no',
      '--protected-mode',
      'no',
    ];
    const child = spawn(REDIS_SERVER, [...args, '--dbfilename', 'dump.rdb', ...quiet], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
    await this.#waitUntilReady(child);
  }

  /** kill -9: no chance to save anything. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.resume();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.ref();
    child.kill('SIGKILL');
    await exited;
    this.#child = undefined;
  }

  hang(): void {
    if (this.#child?.pid === undefined || this.#frozen) return;
    signal(this.#child.pid, 'SIGSTOP');
    this.#frozen = true;
  }

  resume(): void {
    if (this.#frozen && this.#child?.pid !== undefined) signal(this.#child.pid, 'SIGCONT');
    this.#frozen = false;
  }

  /** Running and answering, whatever a failed test left behind (for `finally` blocks). */
  async ensureRunning(): Promise<void> {
    this.resume();
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) await this.start();
  }

  /** SAVE, then a copy of dump.rdb as it is now; returns the copy's path. */
  async snapshot(name: string): Promise<string> {
    const client = quickClient(this.url);
    try {
      await client.connect();
      await client.save();
    } finally {
      client.disconnect();
    }
    const copy = join(this.#dir, 'snapshots', name);
    mkdirSync(join(this.#dir, 'snapshots'), { recursive: true });
    copyFileSync(this.dumpFile, copy);
    return copy;
  }

  /** kill -9, put an older snapshot in place of dump.rdb, start again on the same port. */
  async restartFrom(snapshot: string): Promise<void> {
    await this.kill();
    copyFileSync(snapshot, this.dumpFile);
    await this.start();
  }

  /** Every key in the server (for tests that look at what Tessera stores there). */
  async keys(): Promise<string[]> {
    const client = quickClient(this.url);
    try {
      await client.connect();
      return await client.keys('*');
    } finally {
      client.disconnect();
    }
  }

  /** The value of each string key (counters); other types are named by their type. */
  async dump(): Promise<Record<string, string>> {
    const client = quickClient(this.url);
    try {
      await client.connect();
      const values: Record<string, string> = {};
      for (const key of await client.keys('*')) {
        const type = await client.type(key);
        values[key] = type === 'string' ? ((await client.get(key)) ?? '') : `(${type})`;
      }
      return values;
    } finally {
      client.disconnect();
    }
  }

  async destroy(): Promise<void> {
    await this.kill();
    liveRedis.delete(this);
    removeFolder(this.#dir);
  }

  killNow(): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    signal(pid, 'SIGCONT');
    signal(pid, 'SIGKILL');
    this.#child = undefined;
  }

  async #waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_S * 1000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`redis-server exited at start:\n${this.#output}`);
      }
      const client = quickClient(this.url);
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') return;
      } catch {
        // not listening yet, or still loading the RDB file
      } finally {
        client.disconnect();
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`redis-server not ready within ${START_TIMEOUT_S} s:\n${this.#output}`);
  }
}
